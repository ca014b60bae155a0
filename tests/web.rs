//! The web console (`--web`) against the daemon binary: its pages in
//! headless Chromium (driven over the DevTools protocol), its websocket,
//! `/metrics`, and its refusals. The guest side of a console is a unix
//! socket chardev bridged to it, which the test dials as a guest would.
#![cfg(feature = "web")]
#[path = "common/cdp.rs"]
mod cdp;
mod common;

use common::{chardevd, require, Client, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon with a web console on loopback, a console `con` (history,
/// several clients, `CONSOLE_OPTS` more) whose guest side is `guest.sock`.
struct Rig {
    server: Server,
    port: u16,
    dir: tempfile::TempDir,
}

impl Rig {
    fn new(console_opts: &str, extra: &[&str]) -> Rig {
        Self::on_port(free_port(), console_opts, extra)
    }

    fn on_port(port: u16, console_opts: &str, extra: &[&str]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let guest = format!(
            "socket,id=guest,path={},server=on,wait=off",
            dir.path().join("guest.sock").display()
        );
        let con = format!(
            "socket,id=con,path={},server=on,wait=off,__org.chardevd_history=64K,__org.chardevd_max-clients=8{console_opts}",
            dir.path().join("con.sock").display()
        );
        let web = format!("tcp:127.0.0.1:{port}");
        let mut args = vec![
            "-chardev",
            &guest,
            "-chardev",
            &con,
            "-device",
            "bridge,id=br,chardev=guest,peer=con",
            "--web",
            &web,
        ];
        args.extend_from_slice(extra);
        let server = chardevd(&args);
        wait_http(port);
        Rig { server, port, dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The guest's end of the console.
    fn guest(&self) -> UnixStream {
        let s = UnixStream::connect(self.dir.path().join("guest.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn qmp(&self) -> Client {
        Client::negotiated(&self.server.socket)
    }
}

fn wait_http(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "no web console on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One raw HTTP exchange: the response's status line, headers and body.
fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(port: u16, path: &str) -> String {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"))
}

/// Read from the guest until `want` came (or 10 s).
fn guest_reads(g: &mut UnixStream, want: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(want.len()).any(|w| w == want) && Instant::now() < deadline {
        if let Ok(n) = g.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    got
}

fn browser() -> Option<cdp::Browser> {
    let found = cdp::chromium();
    if !require("chromium", found.is_some()) {
        return None;
    }
    Some(cdp::Browser::start(found.unwrap()))
}

fn artefacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-test")
}

const CONNECTED: &str = "window.chardevd && window.chardevd.state.connected === true";

#[test]
fn the_list_shows_a_chardev_added_and_removed_over_qmp() {
    let Some(b) = browser() else { return };
    let rig = Rig::new("", &[]);
    let page = b.open(&rig.url("/"));
    page.wait_for(
        "the list",
        "window.chardevd && window.chardevd.rows.some(r => r.id === 'con' && r.console)",
        20,
    );
    assert_eq!(
        page.eval("document.querySelector('tr[data-id=\"guest\"] td:nth-child(2)').textContent"),
        serde_json::json!("socket")
    );
    let sock = rig.dir.path().join("late.sock");
    let reply = rig.qmp().cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"late","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{}"}}}},"server":true,"wait":false,"__org.chardevd_history":4096}}}}}}}}"#,
        sock.display()
    ));
    assert!(reply.contains("return"), "{reply}");
    page.wait_for(
        "the added chardev",
        "window.chardevd.rows.some(r => r.id === 'late' && r.console)",
        10,
    );
    page.wait_for(
        "its row and terminal link",
        "!!document.querySelector('tr[data-id=\"late\"] a[href=\"/c/late\"]')",
        10,
    );
    let reply = rig
        .qmp()
        .cmd(r#"{"execute":"chardev-remove","arguments":{"id":"late"}}"#);
    assert!(reply.contains("return"), "{reply}");
    page.wait_for(
        "the removed chardev",
        "!window.chardevd.rows.some(r => r.id === 'late')",
        10,
    );
    page.screenshot(&artefacts().join("list.png"));
    // A terminal page on a chardev that is not a console says so.
    let tab = b.open(&rig.url("/c/guest"));
    tab.wait_for(
        "the reason",
        "document.getElementById('state').textContent.includes('not a console')",
        10,
    );
}

#[test]
fn a_terminal_types_reads_utf8_cut_anywhere_shares_output_and_keeps_history() {
    let Some(b) = browser() else { return };
    let rig = Rig::new("", &[]);
    let mut g = rig.guest();
    g.write_all(b"boot: before any viewer\r\n").unwrap();
    let tab1 = b.open(&rig.url("/c/con"));
    tab1.wait_for("the first tab", CONNECTED, 20);
    tab1.wait_for("the history", "window.chardevd.state.received > 0", 10);
    assert!(tab1.screen().contains("boot: before any viewer"), "{}", tab1.screen());
    // UTF-8 cut at every byte: each byte its own write, so its own frame.
    let text = "héllo € 😀 ok\r\n";
    for byte in text.as_bytes() {
        g.write_all(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_millis(15));
    }
    tab1.wait_for("the cut text", "window.chardevd.state.received >= 45", 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tab1.screen().contains("héllo € 😀 ok") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(tab1.screen().contains("héllo € 😀 ok"), "{}", tab1.screen());
    // Binary output does not break the page.
    g.write_all(b"\xff\xfe\x80\xc3 after binary\r\n").unwrap();
    // Keys as a terminal sends them.
    tab1.wait_for("the writer role", "window.chardevd.state.writer === true", 10);
    tab1.type_text("ls\r");
    tab1.ctrl('c');
    tab1.press("ArrowUp", 38);
    tab1.ctrl('a');
    let got = guest_reads(&mut g, b"\x1b[A\x01");
    assert_eq!(got, b"ls\r\x03\x1b[A\x01", "{:?}", String::from_utf8_lossy(&got));
    // A second tab: the history, then the same live output as the first.
    let tab2 = b.open(&rig.url("/c/con"));
    tab2.wait_for("the second tab", CONNECTED, 20);
    g.write_all(b"to both tabs\r\n").unwrap();
    for t in [&tab1, &tab2] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !t.screen().contains("to both tabs") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = t.screen();
        assert!(
            s.contains("to both tabs") && s.contains("after binary") && s.contains("héllo € 😀 ok"),
            "{s}"
        );
    }
    let clients = rig
        .qmp()
        .cmd(r#"{"execute":"__org.chardevd_query-clients","arguments":{"id":"con"}}"#);
    assert_eq!(clients.matches("\"address\": \"web:127.0.0.1:").count(), 2, "{clients}");
    // A reload: the history again, on a clean screen.
    tab1.reload();
    tab1.wait_for("the reloaded tab", CONNECTED, 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tab1.screen().contains("to both tabs") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = tab1.screen();
    assert!(
        s.contains("boot: before any viewer") && s.contains("héllo € 😀 ok") && s.contains("to both tabs"),
        "{s}"
    );
    assert_eq!(s.matches("to both tabs").count(), 1, "the history once: {s}");
    tab1.screenshot(&artefacts().join("terminal.png"));
    assert!(std::fs::metadata(artefacts().join("terminal.png")).unwrap().len() > 1000);
}

#[test]
fn a_watcher_page_is_read_only() {
    let Some(b) = browser() else { return };
    let rig = Rig::new(",__org.chardevd_input=none", &[]);
    let mut g = rig.guest();
    let tab = b.open(&rig.url("/c/con"));
    tab.wait_for("the tab", CONNECTED, 20);
    tab.wait_for("the read-only status", "window.chardevd.state.writer === false", 10);
    assert_eq!(
        tab.eval("document.getElementById('state').textContent"),
        serde_json::json!("read-only")
    );
    tab.type_text("nope\r");
    g.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 64];
    assert!(g.read(&mut buf).is_err(), "a watcher's keys reach nobody");
    g.write_all(b"still shown\r\n").unwrap();
    tab.wait_for("output", "window.chardevd.state.received >= 13", 10);
}

#[test]
fn a_page_reconnects_when_the_daemon_restarts() {
    let Some(b) = browser() else { return };
    let port = free_port();
    let rig = Rig::on_port(port, "", &[]);
    let tab = b.open(&rig.url("/c/con"));
    tab.wait_for("the tab", CONNECTED, 20);
    drop(rig);
    tab.wait_for("the drop", "window.chardevd.state.connected === false", 10);
    let rig = Rig::on_port(port, "", &[]);
    rig.guest().write_all(b"after the restart\r\n").unwrap();
    tab.wait_for(
        "the reconnection",
        "window.chardevd.state.opens >= 2 && window.chardevd.state.connected",
        20,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tab.screen().contains("after the restart") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(tab.screen().contains("after the restart"), "{}", tab.screen());
}

/// `/metrics` parsed: every sample well formed, each family typed once,
/// and the numbers those of `__org.chardevd_query-stats`.
#[test]
fn metrics_are_prometheus_text_with_the_query_stats_numbers() {
    let rig = Rig::new("", &[]);
    let mut g = rig.guest();
    g.write_all(&[b'x'; 1000]).unwrap();
    // The console has no client: with history, output is taken (not dropped).
    std::thread::sleep(Duration::from_millis(300));
    // (A session open across both reads: it counts in each.)
    let mut q = rig.qmp();
    let stats = q.cmd(r#"{"execute":"__org.chardevd_query-stats"}"#);
    let page = get(rig.port, "/metrics");
    let (head, body) = page.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let mut typed = std::collections::HashMap::new();
    let mut samples = std::collections::HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "typed twice: {name}"
            );
            assert!(["counter", "gauge"].contains(&kind));
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap();
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        assert!(typed.contains_key(name), "sample before its TYPE: {line}");
        samples.insert(key.to_owned(), value.parse::<u64>().unwrap());
    }
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    for c in stats["return"]["chardevs"].as_array().unwrap() {
        let l = c["label"].as_str().unwrap();
        assert_eq!(
            samples[&format!("chardevd_chardev_bytes_in_total{{chardev=\"{l}\"}}")],
            c["bytes-in"].as_u64().unwrap()
        );
        assert_eq!(
            samples[&format!("chardevd_chardev_bytes_out_total{{chardev=\"{l}\"}}")],
            c["bytes-out"].as_u64().unwrap()
        );
        assert_eq!(
            samples[&format!("chardevd_chardev_dropped_out_bytes_total{{chardev=\"{l}\",cause=\"unconnected\"}}")],
            c["dropped-unconnected"].as_u64().unwrap()
        );
        assert_eq!(
            samples[&format!("chardevd_chardev_dropped_in_bytes_total{{chardev=\"{l}\"}}")],
            c["dropped-in"].as_u64().unwrap()
        );
    }
    assert_eq!(samples["chardevd_chardev_bytes_in_total{chardev=\"guest\"}"], 1000);
    assert_eq!(samples["chardevd_chardev_open{chardev=\"guest\"}"], 1, "{body}");
    assert_eq!(samples["chardevd_chardev_clients{chardev=\"con\"}"], 0);
    assert_eq!(
        samples["chardevd_qmp_sessions"],
        stats["return"]["qmp"]["sessions"].as_u64().unwrap()
    );
    assert_eq!(samples["chardevd_qmp_sessions"], 1);
    drop(q);
}

#[test]
fn refusals_host_origin_token_and_exposure() {
    let rig = Rig::new("", &[]);
    let p = rig.port;
    assert!(get(p, "/").starts_with("HTTP/1.1 200"));
    let r = http(p, &format!("GET / HTTP/1.1\r\nHost: evil.example:{p}\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 421"), "DNS rebinding: {r}");
    let ws = |origin: &str| {
        http(
            p,
            &format!(
                "GET /ws/con HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ),
        )
    };
    assert!(
        ws("http://evil.example").starts_with("HTTP/1.1 403"),
        "a foreign origin"
    );
    let ok = ws(&format!("http://127.0.0.1:{p}"));
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
    assert!(
        ok.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{ok}"
    );
    let r = http(
        p,
        &format!(
            "GET /ws/guest HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nOrigin: http://127.0.0.1:{p}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
    );
    assert!(r.starts_with("HTTP/1.1 409") && r.contains("not a console"), "{r}");
    assert!(http(
        p,
        &format!("POST /api/chardevs HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n")
    )
    .starts_with("HTTP/1.1 405"));
    assert!(get(p, "/nothing").starts_with("HTTP/1.1 404"));
    // A token: asked for, taken once from the URL into a cookie.
    let token = "0123456789abcdef0123";
    let p2 = free_port();
    let dir = tempfile::tempdir().unwrap();
    let tfile = dir.path().join("token");
    std::fs::write(&tfile, format!("{token}\n")).unwrap();
    let server = chardevd(&["--web", &format!("tcp:127.0.0.1:{p2},token-file={}", tfile.display())]);
    wait_http(p2);
    assert!(get(p2, "/").starts_with("HTTP/1.1 401"));
    assert!(get(p2, "/metrics").starts_with("HTTP/1.1 401"));
    let r = get(p2, &format!("/?token={token}"));
    assert!(
        r.starts_with("HTTP/1.1 303") && r.contains("Set-Cookie: chardevd_token=") && r.contains("HttpOnly"),
        "{r}"
    );
    let r = http(
        p2,
        &format!("GET /metrics HTTP/1.1\r\nHost: x:{p2}\r\nCookie: chardevd_token={token}\r\n\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = http(
        p2,
        &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    drop(server);
    // Other hosts could reach it: refused without TLS and a token.
    let out = std::process::Command::new(common::chardevd_bin())
        .args(["--web", "tcp:0.0.0.0:0,token=0123456789abcdef"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("needs TLS"), "{err}");
}

/// Other hosts may reach it with TLS and a token: HTTPS, the token turned
/// into a secure cookie, a terminal over `wss:` in the browser.
#[test]
fn over_tls_with_a_token_from_any_address() {
    if !require("openssl", common::have("openssl")) || !require("curl", common::have("curl")) {
        return;
    }
    let Some(chromium) = cdp::chromium() else {
        require("chromium", false);
        return;
    };
    let pki = tempfile::tempdir().unwrap();
    common::make_pki(pki.path());
    let creds = format!(
        "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=off",
        pki.path().join("server").display()
    );
    let token = "a-long-enough-token-0123";
    let port = free_port();
    let web = format!("tcp:0.0.0.0:{port},tls-creds=tls0,token={token}");
    let rig = Rig::on_port(port, "", &["-object", &creds, "--web", &web]);
    let curl = |extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(pki.path().join("ca-cert.pem"))
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let url = format!("https://localhost:{port}/metrics");
    assert_eq!(curl(&[&url]), "401", "no token");
    assert_eq!(curl(&["-H", &format!("Authorization: Bearer {token}"), &url]), "200");
    assert_eq!(
        curl(&[&format!("http://localhost:{port}/metrics")]),
        "000",
        "no plain HTTP"
    );
    let b = cdp::Browser::start_with(chromium, &["--ignore-certificate-errors"]);
    let tab = b.open(&format!("https://localhost:{port}/c/con?token={token}"));
    tab.wait_for("the terminal over wss", CONNECTED, 20);
    assert_eq!(
        tab.eval("location.search"),
        serde_json::json!(""),
        "the token left the URL"
    );
    let mut g = rig.guest();
    g.write_all(b"over tls\r\n").unwrap();
    tab.wait_for("the output", "window.chardevd.state.received >= 10", 10);
    tab.type_text("ok");
    assert_eq!(guest_reads(&mut g, b"ok"), b"ok");
}

/// The web console from the library: `Config::web`, `Handle::web_addr`, a
/// console added with the typed API showing in the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_library() {
    use chardevd::backends::{ChardevBackend, Socket, SocketConsole};
    use chardevd::{Config, Handle, QmpAddr, WebConfig};
    let h = Handle::start(Config {
        web: Some(WebConfig::loopback(0)),
        ..Config::default()
    })
    .await
    .unwrap();
    let Some(QmpAddr::Tcp { port, .. }) = h.web_addr() else {
        panic!("no web address: {:?}", h.web_addr())
    };
    assert_ne!(port, 0, "the port bound");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("c.sock").display().to_string();
    let console = Socket::unix_server(sock).with_console(SocketConsole {
        history: Some(4096),
        ..SocketConsole::default()
    });
    h.chardev_add("lib", ChardevBackend::new(console)).await.unwrap();
    let list = tokio::task::spawn_blocking(move || get(port, "/api/chardevs"))
        .await
        .unwrap();
    assert!(
        list.contains(r#""console":true"#) && list.contains(r#""id":"lib""#),
        "{list}"
    );
    // Another web listener on the same port is refused, as a QMP one is.
    let again = h.web(WebConfig::loopback(port)).await.expect_err("the port is taken");
    assert!(again.to_string().contains(&port.to_string()), "{again}");
    h.quit().await.unwrap();
    h.wait().await;
}
