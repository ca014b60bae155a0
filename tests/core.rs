//! What the core promises, end to end: pipelining clients are never dropped
//! or deadlocked, a client that reads nothing costs bounded memory, one
//! session's large payload never holds up another, events are state, and the
//! embedding handle fails exactly as QMP does.
mod common;

use bytes::Bytes;
use chardevd::backends::{ChardevBackend, Null, Ringbuf};
use chardevd::frontend::FrontendEvent;
use chardevd::QmpAddr;
use chardevd::{self as runtime, Config};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Write 5,000 add/remove pairs before reading anything, then read every reply.
fn pipeline_pairs(stream: &mut (impl Read + Write), pairs: usize) {
    let mut batch = Vec::new();
    for i in 0..pairs {
        batch.extend_from_slice(
            format!(
                r#"{{"execute":"chardev-add","arguments":{{"id":"c{i}","backend":{{"type":"null","data":{{}}}}}},"id":{i}}}"#
            )
            .as_bytes(),
        );
        batch.extend_from_slice(
            format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"c{i}"}},"id":{i}}}"#).as_bytes(),
        );
    }
    stream
        .write_all(&batch)
        .expect("the server keeps reading while the client does not");
    let mut got = 0;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while got < 2 * pairs {
        let n = stream.read(&mut chunk).expect("a reply");
        assert!(n > 0, "the connection closed after {got} replies");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..p + 2).collect();
            let line = String::from_utf8(line).unwrap();
            let i = got / 2;
            assert_eq!(line, format!("{{\"return\": {{}}, \"id\": {i}}}\r\n"), "reply {got}");
            got += 1;
        }
    }
}

#[test]
fn a_client_that_pipelines_5000_add_remove_pairs_gets_every_reply_over_unix_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let h = runtime::spawn(Config {
        qmp: vec![
            QmpAddr::Unix {
                path: sock.clone(),
                access: Default::default(),
            },
            QmpAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 0,
            },
        ],
        ..Default::default()
    })
    .unwrap();
    let mut u = Client::negotiated(&sock);
    pipeline_pairs(&mut u.stream, 5000);
    let mut t = TcpStream::connect(("127.0.0.1", tcp_port(&h))).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut greeting = vec![0u8; 4096];
    let _ = t.read(&mut greeting).unwrap();
    t.write_all(b"{\"execute\":\"qmp_capabilities\"}").unwrap();
    let mut ok = [0u8; 16];
    t.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"{\"return\": {}}\r\n");
    pipeline_pairs(&mut t, 5000);
    h.shutdown();
    h.join();
}

fn rss_kib(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_never_reads_costs_bounded_memory() {
    let d = chardevd(&["--stall-timeout", "600"]);
    let mut c = Client::negotiated(&d.socket);
    let pid = d.child.id();
    let before = rss_kib(pid);
    // Each reply is about 16 KiB: 20,000 of them would be 320 MiB.
    let mut writer = c.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let cmd = b"{\"execute\":\"query-qmp-schema\"}".repeat(20_000);
        let _ = writer.write_all(&cmd);
    });
    // Wait until the daemon stops taking input (its output budget is full)
    // and its memory stops growing.
    let mut last = rss_kib(pid);
    let mut steady = 0;
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(50));
        let now = rss_kib(pid);
        steady = if now.abs_diff(last) < 256 { steady + 1 } else { 0 };
        last = now;
        if steady >= 20 {
            break;
        }
    }
    let grown = last.saturating_sub(before);
    eprintln!("RSS before {before} KiB, with a client that reads nothing {last} KiB (+{grown} KiB)");
    assert!(
        grown < 48 * 1024,
        "output is bounded by the session budget (4 MiB) plus buffers: grew {grown} KiB"
    );
    // The daemon still serves others, and the stuck client still gets its
    // replies once it reads.
    let mut other = Client::negotiated(&d.socket);
    assert!(other.cmd(r#"{"execute":"query-version"}"#).contains("\"qemu\""));
    let mut sink = vec![0u8; 1 << 20];
    let mut total = 0usize;
    while total < 1 << 20 {
        total += c.stream.read(&mut sink).unwrap();
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Both);
    let _ = flood.join();
}

#[test]
fn a_64_mib_base64_read_holds_up_no_other_session() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let h = runtime::spawn(Config {
        qmp: vec![QmpAddr::Unix {
            path: sock.clone(),
            access: Default::default(),
        }],
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        h.chardev_add("big", ChardevBackend::new(Ringbuf { size: Some(64 << 20) }))
            .await
            .unwrap();
        let fe = h.attach("big").await.unwrap();
        fe.write(Bytes::from(vec![b'x'; 64 << 20])).await.unwrap();
    });
    let mut a = Client::negotiated(&sock);
    let mut b = Client::negotiated(&sock);
    a.send(br#"{"execute":"ringbuf-read","arguments":{"device":"big","size":67108864,"format":"base64"}}"#);
    // While session A's 86 MiB reply is being made, session B keeps being
    // answered: count B's round trips before A's first byte arrives.
    a.stream.set_nonblocking(true).unwrap();
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    let mut first = [0u8; 1];
    loop {
        let t = std::time::Instant::now();
        assert!(b.cmd(r#"{"execute":"query-chardev"}"#).contains("\"big\""));
        slowest = slowest.max(t.elapsed());
        answered += 1;
        match a.stream.read(&mut first) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        assert!(answered < 1_000_000);
    }
    eprintln!("session B was answered {answered} times (slowest {slowest:?}) while A's 64 MiB read was encoded");
    assert!(answered >= 10, "B waited for A: only {answered} replies");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaks_to_a_frontend_that_does_not_read_are_counted_not_queued() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("n", ChardevBackend::new(Null {})).await.unwrap();
    let mut fe = h.attach("n").await.unwrap();
    for _ in 0..10_000 {
        h.chardev_send_break("n").await.unwrap();
    }
    let mut breaks = 0;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), fe.recv()).await {
        assert_eq!(ev, FrontendEvent::Break);
        breaks += 1;
    }
    assert_eq!(breaks, 10_000, "every break arrives");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_checks_in_qmps_order() {
    let h = runtime::spawn(Config::default()).unwrap();
    // QEMU looks the device up before it checks the size.
    assert_eq!(
        h.ringbuf_read_text("nope", 0).await.unwrap_err().to_string(),
        "Device 'nope' not found"
    );
    h.chardev_add("n", ChardevBackend::new(Null {})).await.unwrap();
    assert_eq!(
        h.ringbuf_read_text("n", 0).await.unwrap_err().to_string(),
        "n is not a ringbuf device"
    );
    h.chardev_add("r", ChardevBackend::new(Ringbuf::default()))
        .await
        .unwrap();
    assert_eq!(
        h.ringbuf_read_text("r", 0).await.unwrap_err().to_string(),
        "size must be greater than zero"
    );
    h.shutdown();
    h.join();
}

/// The ring commands find the chardev the way QMP's last word left it:
/// the new ring after a `chardev-change`, a refusal after a change to a kind
/// without a ring, and "not found" after removal, in every session at once.
#[test]
fn ring_commands_follow_change_and_removal() {
    let d = chardevd(&["-chardev", "ringbuf,id=r,size=16"]);
    let mut q = Client::negotiated(&d.socket);
    let ok = r#"{"return": {}}"#;
    let write = |q: &mut Client, data: &str| {
        q.cmd(&format!(
            r#"{{"execute":"ringbuf-write","arguments":{{"device":"r","data":"{data}"}}}}"#
        ))
    };
    let read = |q: &mut Client| q.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":100}}"#);
    assert_eq!(write(&mut q, "old"), ok);
    let change = |q: &mut Client, backend: &str| {
        q.cmd(&format!(
            r#"{{"execute":"chardev-change","arguments":{{"id":"r","backend":{backend}}}}}"#
        ))
    };
    assert_eq!(change(&mut q, r#"{"type":"ringbuf","data":{"size":32}}"#), ok);
    assert_eq!(write(&mut q, "new"), ok);
    // A second session sees the same ring at once.
    let mut other = Client::negotiated(&d.socket);
    assert_eq!(read(&mut other), r#"{"return": "new"}"#);
    assert_eq!(read(&mut q), r#"{"return": ""}"#);
    assert_eq!(change(&mut q, r#"{"type":"null","data":{}}"#), ok);
    assert_eq!(
        write(&mut q, "x"),
        r#"{"error": {"class": "GenericError", "desc": "r is not a ringbuf device"}}"#
    );
    assert_eq!(q.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"r"}}"#), ok);
    assert_eq!(
        read(&mut other),
        r#"{"error": {"class": "GenericError", "desc": "Device 'r' not found"}}"#
    );
    assert_eq!(q.cmd(r#"{"execute":"query-chardev"}"#), r#"{"return": []}"#);
}
