//! The socket backend against real peers on loopback: TCP and unix servers
//! and clients, one client at a time, reconnect, telnet, websocket, yank,
//! descriptors passed with SCM_RIGHTS, unix path safety, backpressure both
//! ways, and a thousand connections without a descriptor leaked.
mod common;

use bytes::Bytes;
use chardevd::backends::ChardevBackend;
use chardevd::backends::Socket;
use chardevd::backends::{FdSocketAddress, InetSocketAddress, SocketAddressLegacy, UnixSocketAddress};
use chardevd::frontend::{Frontend, FrontendEvent};
use chardevd::{self as runtime, Config};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn inet(host: &str, port: u16) -> SocketAddressLegacy {
    SocketAddressLegacy::Inet(InetSocketAddress::new(host, port.to_string()))
}

fn unix(path: &std::path::Path) -> SocketAddressLegacy {
    SocketAddressLegacy::Unix(UnixSocketAddress {
        path: path.to_str().unwrap().into(),
        ..Default::default()
    })
}

fn server(addr: SocketAddressLegacy) -> ChardevBackend {
    ChardevBackend::new(Socket::new(addr))
}

fn client(addr: SocketAddressLegacy, reconnect_ms: Option<i64>) -> ChardevBackend {
    ChardevBackend::new(Socket {
        server: Some(false),
        reconnect_ms,
        ..Socket::new(addr)
    })
}

async fn filename(h: &runtime::Handle, id: &str) -> String {
    h.query_chardev()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.label == id)
        .map(|r| r.filename)
        .unwrap()
}

/// The port of `disconnected:tcp:HOST:PORT,server=on`.
fn port_of(filename: &str) -> u16 {
    let rest = filename.rsplit_once(':').unwrap().1;
    rest.split(',').next().unwrap().parse().unwrap()
}

async fn wait_filename(h: &runtime::Handle, id: &str, pred: impl Fn(&str) -> bool) -> String {
    for _ in 0..500 {
        let f = filename(h, id).await;
        if pred(&f) {
            return f;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("filename of {id} never matched: {}", filename(h, id).await);
}

fn read_exactly(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_server_serves_one_client_at_a_time_and_names_it_as_qemu_does() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", server(inet("127.0.0.1", 0))).await.unwrap();
    let f = filename(&h, "s").await;
    assert!(
        f.starts_with("disconnected:tcp:127.0.0.1:") && f.ends_with(",server=on"),
        "{f}"
    );
    let port = port_of(&f);
    let mut fe = h.attach("s").await.unwrap();
    // Output while nobody is connected is dropped, as QEMU drops it.
    assert_eq!(fe.write(Bytes::from_static(b"lost")).await.unwrap(), 4);

    let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    let local = a.local_addr().unwrap().port();
    assert_eq!(
        filename(&h, "s").await,
        format!("tcp:127.0.0.1:{port},server=on <-> 127.0.0.1:{local}")
    );
    a.write_all(b"from a").unwrap();
    assert_eq!(read_data(&mut fe, 6).await, b"from a");
    fe.write(Bytes::from_static(b"to a")).await.unwrap();
    assert_eq!(read_exactly(&mut a, 4), b"to a", "the dropped bytes never arrive");

    // A second client waits in the backlog until the first goes.
    let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    b.write_all(b"from b").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fe.try_recv().is_none(), "b is not served while a is connected");
    drop(a);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    assert_eq!(
        read_data(&mut fe, 6).await,
        b"from b",
        "what b sent while queued is read"
    );
    fe.write(Bytes::from_static(b"to b")).await.unwrap();
    assert_eq!(read_exactly(&mut b, 4), b"to b");
    fe.detach().await.unwrap();
    h.chardev_remove("s").await.unwrap();
    let mut rest = Vec::new();
    assert_eq!(b.read_to_end(&mut rest).unwrap(), 0, "removal closes the client");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "and the port");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_goes_away_is_seen_even_with_no_frontend() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", server(inet("127.0.0.1", 0))).await.unwrap();
    let port = port_of(&filename(&h, "s").await);
    let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_filename(&h, "s", |f| f.contains("<->")).await;
    drop(a);
    // QEMU keeps a frontend-less chardev "connected" after a FIN for ever.
    wait_filename(&h, "s", |f| f.starts_with("disconnected:")).await;
    let _b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_filename(&h, "s", |f| f.contains("<->")).await;

    // Also after a handshake that read exactly its request (QEMU's
    // websocket layer sees this one too).
    let ws = ChardevBackend::new(Socket {
        websocket: Some(true),
        ..Socket::new(inet("127.0.0.1", 0))
    });
    h.chardev_add("w", ws).await.unwrap();
    let port = port_of(&filename(&h, "w").await);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(&ws_request("dGhlIHNhbXBsZSBub25jZQ==", "")).unwrap();
    assert!(read_http_head(&mut c).starts_with("HTTP/1.1 101 "));
    wait_filename(&h, "w", |f| f.contains("<->")).await;
    drop(c);
    wait_filename(&h, "w", |f| f.starts_with("disconnected:")).await;
    h.shutdown();
    h.join();
}

/// `echo cmd | socat - TCP:...`: the client half-closes right after its
/// request; the answer, which comes from another actor a moment later,
/// still reaches it, and only then is the link dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_a_half_closed_client_still_reaches_it() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", server(inet("127.0.0.1", 0))).await.unwrap();
    let port = port_of(&filename(&h, "s").await);
    let mut fe = h.attach("s").await.unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    c.write_all(b"info version\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_data(&mut fe, 13).await, b"info version\n");
    tokio::time::sleep(Duration::from_millis(50)).await;
    fe.write(Bytes::from_static(b"10.0.2\r\n")).await.unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, b"10.0.2\r\n", "the answer, then the end");
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);

    // A client that sends nothing and goes is dropped (without lingering).
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    drop(c);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_servers_replace_only_stale_sockets_and_remove_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("u", server(unix(&path))).await.unwrap();
    assert_eq!(
        filename(&h, "u").await,
        format!("disconnected:unix:{},server=on", path.display())
    );
    let err = h.chardev_add("u2", server(unix(&path))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Failed to add chardev 'u2': Failed to bind socket to {}: a server is listening there",
            path.display()
        )
    );
    let mut fe = h.attach("u").await.unwrap();
    let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    assert_eq!(filename(&h, "u").await, format!("unix:{},server=on", path.display()));
    c.write_all(b"hi").unwrap();
    assert_eq!(read_data(&mut fe, 2).await, b"hi");
    drop(c);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    fe.detach().await.unwrap();
    h.chardev_remove("u").await.unwrap();
    eventually("the socket file goes with the chardev", || !path.exists()).await;

    // A stale socket (nobody listening) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    h.chardev_add("u", server(unix(&path))).await.unwrap();
    h.chardev_remove("u").await.unwrap();
    // A regular file is never unlinked (QEMU would).
    eventually("removed", || !path.exists()).await;
    std::fs::write(&path, b"precious").unwrap();
    let err = h.chardev_add("u3", server(unix(&path))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Failed to add chardev 'u3': Failed to bind socket to {}: it exists and is not a socket",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    let long = format!("/tmp/{}", "a".repeat(110));
    assert_eq!(
        h.chardev_add("l", server(unix(std::path::Path::new(&long))))
            .await
            .unwrap_err()
            .to_string(),
        format!("Failed to add chardev 'l': UNIX socket path '{long}' is too long")
    );
    h.shutdown();
    h.join();
}

/// chardev-change to the same address: the old server lends its listener
/// for the attempt (QEMU only manages this without a frontend, by deleting
/// the old chardev first), takes it back when the attempt fails, and its
/// client is not disturbed by a failed attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_the_same_address_lends_the_listener() {
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", server(unix(&path))).await.unwrap();
    let mut fe = h.attach("s").await.unwrap();
    let mut a = UnixStream::connect(&path).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);

    // A failed change: the listener comes back, the client stays.
    let bad = ChardevBackend::new(Socket {
        tls_creds: Some("nosuch".into()),
        ..Socket::new(unix(&path))
    });
    let err = h.chardev_change("s", bad).await.unwrap_err();
    assert_eq!(err.to_string(), "No TLS credentials with id 'nosuch'");
    a.write_all(b"still here").unwrap();
    assert_eq!(read_data(&mut fe, 10).await, b"still here");
    fe.write(Bytes::from_static(b"ok")).await.unwrap();
    assert_eq!(read_exactly(&mut a, 2), b"ok");
    drop(a);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    let b = UnixStream::connect(&path).expect("the old server listens again");
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    drop(b);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);

    // A good one: the same path now speaks telnet, to the same frontend.
    let telnet = ChardevBackend::new(Socket {
        telnet: Some(true),
        ..Socket::new(unix(&path))
    });
    h.chardev_change("s", telnet).await.unwrap();
    let mut c = UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(
        read_exactly(&mut c, chardevd::internals::telnet::TELNET_INIT.len()),
        chardevd::internals::telnet::TELNET_INIT
    );
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    c.write_all(b"hi").unwrap();
    assert_eq!(read_data(&mut fe, 2).await, b"hi");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connects_at_once_and_stays_down_without_reconnect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = runtime::spawn(Config::default()).unwrap();
    let refused = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().port()
    };
    assert_eq!(
        h.chardev_add("x", client(inet("127.0.0.1", refused), None))
            .await
            .unwrap_err()
            .to_string(),
        format!("Failed to add chardev 'x': Failed to connect to '127.0.0.1:{refused}': Connection refused")
    );
    h.chardev_add("c", client(inet("127.0.0.1", port), None)).await.unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let mut fe = h.attach("c").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    let f = filename(&h, "c").await;
    assert!(
        f.starts_with("tcp:127.0.0.1:") && f.ends_with(&format!(" <-> 127.0.0.1:{port}")),
        "{f}"
    );
    fe.write(Bytes::from_static(b"ping")).await.unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_exactly(&mut peer, 4), b"ping");
    drop(peer);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    assert_eq!(filename(&h, "c").await, format!("disconnected:tcp:127.0.0.1:{port}"));
    // Nothing more: no reconnect.
    assert!(tokio::time::timeout(Duration::from_millis(500), fe.recv())
        .await
        .is_err());
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_reconnect_ms_comes_back_by_itself() {
    let port = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().port()
    };
    let h = runtime::spawn(Config::default()).unwrap();
    // Added while the server is down.
    h.chardev_add("r", client(inet("127.0.0.1", port), Some(100)))
        .await
        .unwrap();
    assert_eq!(filename(&h, "r").await, format!("disconnected:tcp:127.0.0.1:{port}"));
    let mut fe = h.attach("r").await.unwrap();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (first, _) = listener.accept().unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    drop(first);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    let (mut second, _) = listener.accept().unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened, "reconnected after the drop");
    second.write_all(b"again").unwrap();
    assert_eq!(read_data(&mut fe, 5).await, b"again");
    // The deprecated `reconnect` (seconds) and `reconnect-ms` exclude each other.
    let both = ChardevBackend::new(Socket {
        server: Some(false),
        reconnect: Some(1),
        reconnect_ms: Some(1000),
        ..Socket::new(inet("127.0.0.1", port))
    });
    assert_eq!(
        h.chardev_add("b", both).await.unwrap_err().to_string(),
        "Failed to add chardev 'b': 'reconnect' and 'reconnect-ms' are mutually exclusive"
    );
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telnet_negotiates_and_filters_iac_with_breaks_split_across_reads() {
    let h = runtime::spawn(Config::default()).unwrap();
    let telnet = ChardevBackend::new(Socket {
        telnet: Some(true),
        ..Socket::new(inet("127.0.0.1", 0))
    });
    h.chardev_add("t", telnet).await.unwrap();
    let f = filename(&h, "t").await;
    assert!(f.starts_with("disconnected:telnet:127.0.0.1:"), "{f}");
    let mut fe = h.attach("t").await.unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port_of(&f))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(
        read_exactly(&mut c, 12),
        [0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00]
    );
    assert_eq!(
        next(&mut fe).await,
        FrontendEvent::Opened,
        "OPENED after the negotiation"
    );
    c.write_all(b"a\xff\xffb\xff\xfd\x01c\xff").unwrap();
    c.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.write_all(b"\xf3d").unwrap();
    let mut got = Vec::new();
    let mut breaks = 0;
    while got.len() < 5 || breaks == 0 {
        match next(&mut fe).await {
            FrontendEvent::Data(b) => got.extend_from_slice(&b),
            FrontendEvent::Break => {
                assert_eq!(got, b"a\xffbc", "the break comes where it was sent");
                breaks += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, b"a\xffbcd");
    // Output is not IAC-escaped (as in QEMU).
    fe.write(Bytes::from_static(b"\xff")).await.unwrap();
    assert_eq!(read_exactly(&mut c, 1), b"\xff");

    let tn3270 = ChardevBackend::new(Socket {
        tn3270: Some(true),
        ..Socket::new(inet("127.0.0.1", 0))
    });
    h.chardev_add("t3", tn3270).await.unwrap();
    let f = filename(&h, "t3").await;
    assert!(f.starts_with("disconnected:tcp:"), "tn3270 keeps the tcp word: {f}");
    let mut c = TcpStream::connect(("127.0.0.1", port_of(&f))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(
        read_exactly(&mut c, 21),
        [
            0xff, 0xfd, 0x19, 0xff, 0xfb, 0x19, 0xff, 0xfd, 0x00, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x18, 0xff, 0xfa, 0x18,
            0x01, 0xff, 0xf0
        ]
    );
    h.shutdown();
    h.join();
}

fn ws_request(key: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn masked(op: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7u8, 0x77, 0x9e, 0xf9];
    let mut f = vec![0x80 | op, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn read_http_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_frames_and_closes_as_qemu_does() {
    let h = runtime::spawn(Config::default()).unwrap();
    let ws = ChardevBackend::new(Socket {
        websocket: Some(true),
        ..Socket::new(inet("127.0.0.1", 0))
    });
    h.chardev_add("w", ws).await.unwrap();
    let f = filename(&h, "w").await;
    assert!(f.starts_with("disconnected:websocket:127.0.0.1:"), "{f}");
    let port = port_of(&f);
    h.device_add(Some("e"), chardevd::commands::Device::Echo { chardev: "w".into() })
        .await
        .unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&ws_request(
        "o9JHNiS3/0/0zYE1wa3yIw==",
        "Sec-WebSocket-Protocol: binary\r\n",
    ))
    .unwrap();
    let head = read_http_head(&mut c);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\nServer: QEMU VNC\r\nDate: "),
        "{head}"
    );
    assert!(head.ends_with(
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: b3DnPh7O8hyYE5sIjQxl/c1J+S8=\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
    ), "{head}");
    wait_filename(&h, "w", |f| f.starts_with("websocket:127.0.0.1:")).await;
    // test-char.c's frames.
    c.write_all(&masked(9, b"hello")).unwrap();
    assert_eq!(read_exactly(&mut c, 7), b"\x8a\x05hello");
    c.write_all(&masked(2, b"world")).unwrap();
    assert_eq!(read_exactly(&mut c, 7), b"\x82\x05world", "echoed in one binary frame");
    c.write_all(&[0x88, 0x82, 0xef, 0xaa, 0xc5, 0x97, 0xec, 0x42]).unwrap();
    assert_eq!(read_exactly(&mut c, 24), b"\x88\x16\x03\xe8peer requested close");
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 0);
    wait_filename(&h, "w", |f| f.starts_with("disconnected:websocket:")).await;

    // QEMU's refusals.
    let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad.write_all(&ws_request("tooshort", "")).unwrap();
    let mut answer = Vec::new();
    bad.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\nServer: QEMU VNC\r\nDate: "),
        "{answer}"
    );
    assert!(
        answer.ends_with("\r\nConnection: close\r\nSec-WebSocket-Version: 13\r\n"),
        "no final blank line: {answer:?}"
    );
    let mut nf = TcpStream::connect(("127.0.0.1", port)).unwrap();
    nf.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    nf.write_all(b"GET /foo HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    nf.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer:?}");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_handshake_that_never_finishes_is_dropped() {
    let h = runtime::spawn(Config::default()).unwrap();
    let ws = ChardevBackend::new(Socket {
        websocket: Some(true),
        ..Socket::new(inet("127.0.0.1", 0))
    });
    h.chardev_add("w", ws).await.unwrap();
    let port = port_of(&filename(&h, "w").await);
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET / HTT").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        slow.read_to_end(&mut rest).unwrap(),
        0,
        "closed after the handshake timeout"
    );
    // Meanwhile, and after, the one slot serves the next client.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&ws_request("o9JHNiS3/0/0zYE1wa3yIw==", "")).unwrap();
    assert!(read_http_head(&mut c).starts_with("HTTP/1.1 101"));
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yank_drops_the_connection_and_only_sockets_are_yankable() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", server(inet("127.0.0.1", 0))).await.unwrap();
    h.chardev_add("n", ChardevBackend::new(chardevd::backends::Null {}))
        .await
        .unwrap();
    let port = port_of(&filename(&h, "s").await);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    wait_filename(&h, "s", |f| f.contains("<->")).await;
    use chardevd::commands::{QueryYank, Yank, YankInstance};
    let chardev = |id: &str| YankInstance::Chardev { id: id.into() };
    let yank = |ids: &[&str]| Yank {
        instances: ids.iter().map(|i| chardev(i)).collect(),
    };
    assert_eq!(h.run(QueryYank).await.unwrap(), vec![chardev("s")]);
    assert_eq!(h.query_yank().await.unwrap(), vec![chardev("s")]);
    let err = h.run(yank(&["s", "n"])).await.unwrap_err();
    assert_eq!(
        (err.to_string(), err.class()),
        ("Instance not found".into(), chardevd::error::ErrorClass::DeviceNotFound)
    );
    assert!(
        filename(&h, "s").await.contains("<->"),
        "one bad instance: nothing is yanked"
    );
    h.run(yank(&["s"])).await.unwrap();
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "the peer sees the end");
    wait_filename(&h, "s", |f| f.starts_with("disconnected:")).await;
    let _again = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_filename(&h, "s", |f| f.contains("<->")).await;
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_runs_both_ways_and_nothing_is_lost() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", server(inet("127.0.0.1", 0))).await.unwrap();
    let port = port_of(&filename(&h, "s").await);
    let fe = h.attach("s").await.unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_filename(&h, "s", |f| f.contains("<->")).await;
    // The client reads nothing: the frontend's writes stop being accepted.
    let chunk = vec![b'x'; 65536];
    let mut queued = 0usize;
    for _ in 0..10_000 {
        let n = fe.try_write(&chunk).unwrap();
        queued += n;
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if fe.try_write(&chunk).unwrap() == 0 {
                break;
            }
        }
    }
    assert!(queued < 64 << 20, "writes stopped being accepted after {queued} bytes");
    // Reading everything gets every byte.
    let total = queued;
    let reader = std::thread::spawn(move || {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while got < total {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0);
            assert!(buf[..n].iter().all(|b| *b == b'x'));
            got += n;
        }
        got
    });
    assert!(reader.join().unwrap() >= total);
    fe.flush().await.unwrap();

    // The frontend reads nothing: the socket is not read, the client blocks.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    drop(fe);
    let mut fe2: Frontend = h.attach("s").await.unwrap();
    c.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut sent = 0usize;
    while let Ok(n) = c.write(&chunk) {
        sent += n;
        assert!(sent < 256 << 20, "the chardev kept reading");
    }
    assert!(sent > 0);
    // What the stalled chardev holds back is all there once the frontend
    // reads: every byte the client's writes got in, none twice.
    use tokio::io::AsyncReadExt;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while got < sent {
        let n = tokio::time::timeout(Duration::from_secs(10), fe2.read(&mut buf))
            .await
            .expect("the held bytes come")
            .unwrap();
        assert!(n > 0, "ended after {got} of {sent} bytes");
        assert!(buf[..n].iter().all(|b| *b == b'x'));
        got += n;
    }
    assert_eq!(got, sent);
    let more = tokio::time::timeout(Duration::from_millis(300), fe2.read(&mut buf)).await;
    assert!(more.is_err(), "nothing beyond what was sent: {more:?}");
    drop(c);
    drop(fe2);
    h.shutdown();
    h.join();
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[test]
fn a_thousand_connections_leak_no_descriptor() {
    let d = chardevd(&["-chardev", "socket,id=s,host=127.0.0.1,port=0,server=on,wait=off"]);
    let mut q = Client::negotiated(&d.socket);
    let reply = q.cmd(r#"{"execute":"query-chardev"}"#);
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let f = v["return"][0]["filename"].as_str().unwrap().to_owned();
    let port = port_of(&f);
    let pid = d.child.id();
    let wait_disconnected = |q: &mut Client| {
        for _ in 0..500 {
            if q.cmd(r#"{"execute":"query-chardev"}"#).contains("disconnected:") {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("never disconnected");
    };
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    drop(c);
    wait_disconnected(&mut q);
    // The status says disconnected a moment before the descriptor is closed.
    std::thread::sleep(Duration::from_millis(200));
    let before = fd_count(pid);
    for _ in 0..1000 {
        // Paced: the backlog holds one waiting client (as QEMU's), and a
        // connect beyond it waits for the kernel's SYN retry.
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        drop(c);
        std::thread::sleep(Duration::from_millis(3));
    }
    wait_disconnected(&mut q);
    std::thread::sleep(Duration::from_millis(200));
    wait_disconnected(&mut q);
    assert_eq!(fd_count(pid), before, "descriptors before and after 1,000 connections");
}

#[test]
fn a_listening_socket_passed_with_getfd_becomes_a_server() {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::io::IoSlice;
    use std::mem::MaybeUninit;
    use std::os::fd::AsFd;
    let d = chardevd(&[]);
    let mut q = Client::negotiated(&d.socket);
    assert_eq!(
        q.cmd(r#"{"execute":"getfd","arguments":{"fdname":"lis"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}"#
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let msg = br#"{"execute":"getfd","arguments":{"fdname":"lis"}}"#;
    let fds = [listener.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    assert!(anc.push(SendAncillaryMessage::ScmRights(&fds)));
    rustix::net::sendmsg(q.stream.as_fd(), &[IoSlice::new(msg)], &mut anc, SendFlags::empty()).unwrap();
    assert_eq!(q.line(), r#"{"return": {}}"#);
    drop(listener);
    let add = r#"{"execute":"chardev-add","arguments":{"id":"f","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"lis"}}}}}}"#;
    assert_eq!(q.cmd(add), r#"{"return": {}}"#);
    let rows = q.cmd(r#"{"execute":"query-chardev"}"#);
    assert!(
        rows.contains(&format!("disconnected:tcp:127.0.0.1:{port},server=on")),
        "{rows}"
    );
    assert_eq!(
        q.cmd(&add.replace("\"f\"", "\"g\"")),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'g': File descriptor named 'lis' has not been found"}}"#,
        "a descriptor is used up"
    );
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for _ in 0..500 {
        if q.cmd(r#"{"execute":"query-chardev"}"#).contains(" <-> ") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the passed socket did not accept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_options_are_checked_in_qemus_order_and_words() {
    let h = runtime::spawn(Config::default()).unwrap();
    let cases: Vec<(Socket, &str)> = vec![
        (
            Socket {
                reconnect: Some(0),
                ..Socket::new(inet("127.0.0.1", 0))
            },
            "'reconnect' option is incompatible with socket in server listen mode",
        ),
        (
            Socket {
                server: Some(false),
                wait: Some(false),
                ..Socket::new(inet("127.0.0.1", 1))
            },
            "'wait' option is incompatible with socket in client connect mode",
        ),
        (
            Socket {
                server: Some(false),
                websocket: Some(true),
                wait: Some(true),
                ..Socket::new(inet("127.0.0.1", 1))
            },
            "Websocket client is not implemented",
        ),
        (
            Socket {
                tls_authz: Some("az".into()),
                ..Socket::new(inet("127.0.0.1", 0))
            },
            "'tls_authz' option requires 'tls_creds' option",
        ),
        (
            Socket {
                tls_creds: Some("nosuch".into()),
                ..Socket::new(unix(std::path::Path::new("/tmp/x.sock")))
            },
            "No TLS credentials with id 'nosuch'",
        ),
        (
            Socket {
                reconnect: Some(1),
                server: Some(false),
                ..Socket::new(SocketAddressLegacy::Fd(FdSocketAddress { str: "x".into() }))
            },
            "'reconnect' option is incompatible with 'fd' address type",
        ),
        (
            Socket::new(SocketAddressLegacy::Fd(FdSocketAddress { str: "nosuch".into() })),
            "File descriptor named 'nosuch' has not been found",
        ),
        (
            Socket::new(SocketAddressLegacy::Inet(InetSocketAddress {
                ipv4: Some(false),
                ipv6: Some(false),
                ..InetSocketAddress::new("127.0.0.1", "0")
            })),
            "Cannot disable IPv4 and IPv6 at same time",
        ),
        (
            Socket::new(SocketAddressLegacy::Inet(InetSocketAddress {
                ipv6: Some(true),
                ..InetSocketAddress::new("127.0.0.1", "0")
            })),
            "address resolution failed for 127.0.0.1:0: Address family for hostname not supported",
        ),
        (
            Socket::new(unix(std::path::Path::new("/nonexistent-dir/x.sock"))),
            "Failed to bind socket to /nonexistent-dir/x.sock: No such file or directory",
        ),
    ];
    for (i, (s, want)) in cases.into_iter().enumerate() {
        let err = h.chardev_add(&format!("c{i}"), ChardevBackend::new(s)).await;
        assert_eq!(
            err.map(|_| "added").unwrap_err().to_string(),
            format!("Failed to add chardev 'c{i}': {want}")
        );
    }
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    assert_eq!(
        h.chardev_add("busy", server(inet("127.0.0.1", port)))
            .await
            .unwrap_err()
            .to_string(),
        "Failed to add chardev 'busy': Failed to find an available port: Address already in use"
    );
    h.shutdown();
    h.join();
}

#[test]
fn wait_on_holds_up_only_the_session_that_asked() {
    let d = chardevd(&[]);
    let mut a = Client::negotiated(&d.socket);
    let mut b = Client::negotiated(&d.socket);
    let port = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().port()
    };
    a.send(
        format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"w","backend":{{"type":"socket","data":{{"addr":{{"type":"inet","data":{{"host":"127.0.0.1","port":"{port}"}}}},"wait":true}}}}}}}}"#
        )
        .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.try_line(Duration::from_millis(200)).is_none(), "waits for its client");
    assert!(
        b.cmd(r#"{"execute":"query-version"}"#).contains("qemu"),
        "others are answered"
    );
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(a.line(), r#"{"return": {}}"#);
}

#[test]
fn the_command_line_takes_qemus_socket_keys_and_waits_for_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let port = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().port()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chardevd"))
        .arg("-chardev")
        .arg(format!("socket,id=s,host=127.0.0.1,port={port},server=on,telnet=on"))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !sock.exists(),
        "the daemon waits for the socket's client before going on"
    );
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_exactly(&mut c, 3), [0xff, 0xfb, 0x01]);
    wait_for_socket_file(&sock);
    let mut q = Client::negotiated(&sock);
    assert!(q.cmd(r#"{"execute":"query-chardev"}"#).contains("telnet:127.0.0.1:"));
    let _ = child.kill();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let _ = child.wait();
    assert!(
        err.contains(&format!(
            "waiting for connection on: disconnected:telnet:127.0.0.1:{port},server=on"
        )),
        "{err}"
    );
}
