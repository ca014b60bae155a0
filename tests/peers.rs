//! Socket chardevs against the peers people use with them: socat, a telnet
//! client, openssl s_client (good, refused and missing certificates, with
//! tls-authz), a Python websocket client, and headless Chromium. Each peer is
//! started by the test and killed if it hangs; `.ci/install-deps` installs
//! them, and in CI a missing one fails the test.
mod common;

use bytes::Bytes;
use chardevd::backends::ChardevBackend;
use chardevd::backends::Socket;
use chardevd::backends::{InetSocketAddress, SocketAddressLegacy, UnixSocketAddress};
use chardevd::commands::{Endpoint, X509Props};
use chardevd::commands::{ObjectAdd, ObjectProps};
use chardevd::frontend::FrontendEvent;
use chardevd::{self as runtime, Config};
use common::*;
use std::process::Command;
use std::time::Duration;

fn tcp_server() -> ChardevBackend {
    ChardevBackend::new(Socket::new(SocketAddressLegacy::Inet(InetSocketAddress::new(
        "127.0.0.1",
        "0",
    ))))
}

async fn port(h: &runtime::Handle, id: &str) -> u16 {
    let rows = h.query_chardev().await.unwrap();
    let f = &rows.iter().find(|r| r.label == id).unwrap().filename;
    f.rsplit_once(':')
        .unwrap()
        .1
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn echo(h: &runtime::Handle, id: &str) {
    let echo = chardevd::commands::Device::Echo { chardev: id.into() };
    h.device_add(Some(&format!("echo-{id}")), echo).await.unwrap();
}

fn socat_present() -> bool {
    require("socat", have("socat"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socat_talks_to_a_server_and_serves_a_client_chardev() {
    if !socat_present() {
        return;
    }
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", tcp_server()).await.unwrap();
    echo(&h, "s").await;
    let p = port(&h, "s").await;
    let mut cmd = Command::new("socat");
    // `echo ... | socat`: socat half-closes when its stdin ends; the answer
    // to what it sent still reaches it (the link lingers for output).
    cmd.args(["-t", "2", "-", &format!("TCP:127.0.0.1:{p}")]);
    let out = tokio::task::spawn_blocking(move || output_within(cmd, Some(b"through socat\n"), 20))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through socat\n", "{out:?}");

    // A client chardev to a socat unix server.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("socat.sock");
    let mut server = Command::new("socat")
        .arg(format!("UNIX-LISTEN:{}", path.display()))
        .arg("SYSTEM:echo from-socat; sleep 5")
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = ChardevBackend::new(Socket {
        server: Some(false),
        ..Socket::new(SocketAddressLegacy::Unix(UnixSocketAddress {
            path: path.to_str().unwrap().into(),
            ..Default::default()
        }))
    });
    h.chardev_add("c", c).await.unwrap();
    let mut fe = h.attach("c").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    assert_eq!(read_data(&mut fe, 11).await, b"from-socat\n");
    let _ = server.kill();
    let _ = server.wait();
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telnet_client_negotiates_and_its_options_never_reach_the_frontend() {
    if !require("telnet", have("telnet")) {
        return;
    }
    let h = runtime::spawn(Config::default()).unwrap();
    let t = ChardevBackend::new(Socket {
        telnet: Some(true),
        ..Socket::new(SocketAddressLegacy::Inet(InetSocketAddress::new("127.0.0.1", "0")))
    });
    h.chardev_add("t", t).await.unwrap();
    let p = port(&h, "t").await;
    let mut fe = h.attach("t").await.unwrap();
    // telnet reads its input from a pipe: it negotiates, sends the line, and
    // stays until its input ends and the sleep is over.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("(echo typed by telnet; sleep 2) | telnet 127.0.0.1 {p}")]);
    let peer = tokio::task::spawn_blocking(move || output_within(cmd, None, 20));
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    let mut got = Vec::new();
    while !got.windows(15).any(|w| w == b"typed by telnet") {
        match next(&mut fe).await {
            FrontendEvent::Data(b) => got.extend_from_slice(&b),
            FrontendEvent::Break => {}
            other => panic!("{other:?} after {got:?}"),
        }
    }
    assert!(
        !got.contains(&0xff),
        "telnet's option replies are filtered out: {got:?}"
    );
    fe.write(Bytes::from_static(b"answer from the chardev\r\n"))
        .await
        .unwrap();
    let out = peer.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("answer from the chardev"), "{stdout}");
    h.shutdown();
    h.join();
}

/// A TLS server chardev `s` (verify-peer on) whose tls-authz allows only
/// `*CN=client.example.com`, with an echo device.
async fn tls_server(pki: &std::path::Path) -> (runtime::Handle, u16) {
    let cfg = Config {
        objects: vec![
            ObjectAdd {
                id: "tls0".into(),
                props: ObjectProps::TlsCredsX509(X509Props {
                    dir: Some(pki.join("server").display().to_string()),
                    endpoint: Some(Endpoint::Server),
                    verify_peer: Some(true),
                    ..Default::default()
                }),
            },
            ObjectAdd {
                id: "auth0".into(),
                props: ObjectProps::from_json(
                    "authz-list",
                    &serde_json::json!({"policy": "deny", "rules": [
                    {"match": "*CN=client.example.com", "policy": "allow", "format": "glob"}]}),
                )
                .unwrap(),
            },
        ],
        ..Default::default()
    };
    let h = runtime::spawn(cfg).unwrap();
    let s = ChardevBackend::new(Socket {
        tls_creds: Some("tls0".into()),
        tls_authz: Some("auth0".into()),
        ..Socket::new(SocketAddressLegacy::Inet(InetSocketAddress::new("127.0.0.1", "0")))
    });
    h.chardev_add("s", s).await.unwrap();
    echo(&h, "s").await;
    let p = port(&h, "s").await;
    (h, p)
}

fn s_client(pki: &std::path::Path, port: u16, who: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new("sh");
    let cert = match who {
        Some(w) => format!(
            "-cert {d}/{w}/client-cert.pem -key {d}/{w}/client-key.pem",
            d = pki.display()
        ),
        None => String::new(),
    };
    cmd.args([
        "-c",
        &format!(
            "(echo hello tls; sleep 2) | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:{port} -CAfile {}/ca-cert.pem {cert}",
            pki.display()
        ),
    ]);
    output_within(cmd, None, 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_gets_in_with_an_allowed_certificate_only() {
    if !require("openssl", have("openssl")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().to_path_buf();
    make_pki(&pki);
    let (h, p) = tls_server(&pki).await;
    let good = {
        let pki = pki.clone();
        tokio::task::spawn_blocking(move || s_client(&pki, p, Some("client")))
            .await
            .unwrap()
    };
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("hello tls"),
        "the allowed client is echoed: {good:?}"
    );
    let refused = {
        let pki = pki.clone();
        tokio::task::spawn_blocking(move || s_client(&pki, p, Some("intruder")))
            .await
            .unwrap()
    };
    // The refusal is the authz check's: the handshake went through (the
    // client verified the server), then the server closed without a word.
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !String::from_utf8_lossy(&refused.stdout).contains("hello tls")
            && said.contains("depth=0 C = GB, O = Chardevd Server, CN = localhost")
            // The close is an end of stream, or a reset when the client's
            // first bytes were still unread when the server closed.
            && (said.contains("unexpected eof while reading") || said.contains("errno=104"))
            && !said.contains("alert"),
        "tls-authz refuses C=FR,O=Other Org,CN=intruder after the handshake: {refused:?}"
    );
    let anonymous = {
        let pki = pki.clone();
        tokio::task::spawn_blocking(move || s_client(&pki, p, None))
            .await
            .unwrap()
    };
    // A client with no certificate fails the handshake itself.
    assert!(
        !String::from_utf8_lossy(&anonymous.stdout).contains("hello tls")
            && String::from_utf8_lossy(&anonymous.stderr).contains("alert certificate required"),
        "verify-peer wants a certificate: {anonymous:?}"
    );
    // The server still serves the allowed client.
    let again = tokio::task::spawn_blocking({
        let pki = pki.clone();
        move || s_client(&pki, p, Some("client"))
    })
    .await
    .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("hello tls"),
        "{again:?}"
    );
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_chardev_talks_to_a_tls_server_chardev() {
    if !require("openssl", have("openssl")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().to_path_buf();
    make_pki(&pki);
    let (h, p) = tls_server(&pki).await;
    h.object_add(
        "tlsc",
        chardevd::commands::ObjectProps::TlsCredsX509(chardevd::commands::X509Props {
            dir: Some(pki.join("client").display().to_string()),
            endpoint: Some(chardevd::commands::Endpoint::Client),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let c = ChardevBackend::new(Socket {
        server: Some(false),
        tls_creds: Some("tlsc".into()),
        ..Socket::new(SocketAddressLegacy::Inet(InetSocketAddress::new(
            "127.0.0.1",
            p.to_string(),
        )))
    });
    h.chardev_add("c", c).await.unwrap();
    let mut fe = h.attach("c").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened, "OPENED once TLS is up");
    fe.write(Bytes::from_static(b"over tls")).await.unwrap();
    assert_eq!(read_data(&mut fe, 8).await, b"over tls", "echoed by the server chardev");
    // Server credentials on a client are QEMU's error.
    let wrong = ChardevBackend::new(Socket {
        server: Some(false),
        tls_creds: Some("tls0".into()),
        ..Socket::new(SocketAddressLegacy::Inet(InetSocketAddress::new(
            "127.0.0.1",
            p.to_string(),
        )))
    });
    assert_eq!(
        h.chardev_add("w", wrong).await.unwrap_err().to_string(),
        "Failed to add chardev 'w': Expected TLS credentials for a client endpoint"
    );
    h.shutdown();
    h.join();
}

fn python_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success())
}

async fn websocket_server(h: &runtime::Handle) -> u16 {
    let w = ChardevBackend::new(Socket {
        websocket: Some(true),
        ..Socket::new(SocketAddressLegacy::Inet(InetSocketAddress::new("127.0.0.1", "0")))
    });
    h.chardev_add("w", w).await.unwrap();
    echo(h, "w").await;
    port(h, "w").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_websockets_client_exchanges_binary_messages() {
    if !require("python3 websockets", python_websockets()) {
        return;
    }
    let h = runtime::spawn(Config::default()).unwrap();
    let p = websocket_server(&h).await;
    let script = format!(
        "from websockets.sync.client import connect\n\
         with connect('ws://127.0.0.1:{p}/', subprotocols=['binary']) as ws:\n\
         \x20   ws.send(b'from python')\n\
         \x20   print(ws.recv(timeout=5))\n\
         \x20   ws.ping()\n"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &script]);
    let out = tokio::task::spawn_blocking(move || output_within(cmd, None, 20))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b'from python'", "{out:?}");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_speaks_to_a_websocket_chardev() {
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| have(c));
    let Some(chromium) = chromium else {
        require("chromium", false);
        return;
    };
    let h = runtime::spawn(Config::default()).unwrap();
    let p = websocket_server(&h).await;
    // A small HTTP server: serves the page, and takes the page's report.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><script>\n\
         const ws = new WebSocket('ws://127.0.0.1:{p}/', ['binary']);\n\
         ws.binaryType = 'arraybuffer';\n\
         ws.onopen = () => ws.send(new TextEncoder().encode('from the browser'));\n\
         ws.onmessage = (m) => fetch('/report?' + encodeURIComponent(ws.protocol + ' ' + new TextDecoder().decode(m.data)));\n\
         ws.onerror = () => fetch('/report?error');\n\
         </script>"
    );
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for stream in http.incoming() {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            if let Some(rest) = line.strip_prefix("GET /report?") {
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                return rest.split(' ').next().unwrap_or("").to_owned();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
        String::new()
    });
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("http://127.0.0.1:{http_port}/"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let report = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !server.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        server.is_finished().then(|| server.join().unwrap())
    })
    .await
    .unwrap();
    let _ = browser.kill();
    let _ = browser.wait();
    assert_eq!(
        report.as_deref(),
        Some("binary%20from%20the%20browser"),
        "the browser negotiated 'binary' and got its bytes back"
    );
    h.shutdown();
    h.join();
}
