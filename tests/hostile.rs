//! Hostile peers against a real daemon process: what a socket peer or a QMP
//! client can do, and the bound each runs into (memory, descriptors, time,
//! events). Each test names the item of issue #20 it closes.
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The daemon's open descriptors.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The TCP port a socket chardev listens on (from its query-chardev filename).
fn port_of(c: &mut Client, id: &str) -> u16 {
    let rows: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"query-chardev"}"#)).unwrap();
    let f = rows["return"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == id)
        .unwrap()["filename"]
        .as_str()
        .unwrap()
        .to_owned();
    let tail = f.rsplit(':').next().unwrap();
    tail.split(',').next().unwrap().parse().unwrap()
}

/// Write `chunk` again and again for at most `limit` bytes or `deadline`;
/// returns the bytes the daemon took.
fn flood(s: &mut TcpStream, chunk: &[u8], limit: usize, deadline: Duration) -> usize {
    s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    while sent < limit && start.elapsed() < deadline {
        match s.write(chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    sent
}

/// #20.1: 40 MiB of telnet `IAC BREAK` into a chardev whose device never
/// acts on breaks: breaks are a count that costs input budget, never a
/// queue (was: 591 MiB of RSS).
#[test]
fn a_telnet_break_flood_costs_bounded_memory() {
    let d = chardevd(&[
        "-chardev",
        "socket,id=t,host=127.0.0.1,port=0,server=on,wait=off,telnet=on",
        "-device",
        "echo,id=e,chardev=t",
    ]);
    let pid = d.child.id();
    let mut c = Client::negotiated(&d.socket);
    let port = port_of(&mut c, "t");
    let before = rss_kib(pid);
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let breaks = [0xff, 0xf3].repeat(32 << 10);
    let sent = flood(&mut peer, &breaks, 40 << 20, Duration::from_secs(20));
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(sent > 1 << 20, "the daemon took breaks at all: {sent}");
    assert!(grown < 32 << 10, "RSS grew by {grown} KiB for {sent} bytes of breaks");
    // The daemon still serves.
    assert!(c.cmd(r#"{"execute":"query-chardev"}"#).contains("\"t\""));
}

/// #20.2: a websocket client that sends pings and never reads its pongs
/// (was: 153 MiB of RSS for 160 MiB of pings).
#[test]
fn a_websocket_ping_flood_from_a_client_that_never_reads_costs_bounded_memory() {
    let d = chardevd(&[
        "-chardev",
        "socket,id=w,host=127.0.0.1,port=0,server=on,wait=off,websocket=on",
        "-device",
        "echo,id=e,chardev=w",
    ]);
    let pid = d.child.id();
    let mut c = Client::negotiated(&d.socket);
    let port = port_of(&mut c, "w");
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    peer.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: binary\r\n\r\n",
    )
    .unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        peer.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    let before = rss_kib(pid);
    // Masked pings with 125-byte payloads, back to back.
    let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    ping.extend((0..125u8).map(|i| i ^ [1, 2, 3, 4][usize::from(i % 4)]));
    let chunk = ping.repeat(256);
    let sent = flood(&mut peer, &chunk, 160 << 20, Duration::from_secs(20));
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(sent > 1 << 20, "the daemon took pings at all: {sent}");
    assert!(grown < 32 << 10, "RSS grew by {grown} KiB for {sent} bytes of pings");
    assert!(c.cmd(r#"{"execute":"query-chardev"}"#).contains("\"w\""));
    let _ = fds(pid);
}

/// #20.3: a mux peer typing `C-a x` as fast as it can: the event it raises
/// is rate-limited per chardev (one a second, as QEMU limits its
/// guest-triggerable events), so a QMP client that does not read for a
/// while is not cut off (was: one event per 2 bytes, the client dropped).
#[test]
fn a_mux_peer_typing_c_a_x_raises_a_rate_limited_event() {
    let d = chardevd(&[
        "-chardev",
        "socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,mux=on",
        "-device",
        "echo,id=e,chardev=s",
    ]);
    let mut c = Client::negotiated(&d.socket);
    let port = port_of(&mut c, "s-base");
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // 200,000 requests, while the QMP client reads nothing.
    let sent = flood(&mut peer, &b"\x01x".repeat(10_000), 400_000, Duration::from_secs(20));
    assert_eq!(sent, 400_000);
    std::thread::sleep(Duration::from_millis(1500));
    let mut events = 0;
    while let Some(line) = c.try_line(Duration::from_millis(500)) {
        if line.contains("__org.chardevd_EXIT_REQUEST") {
            events += 1;
        }
    }
    assert!((1..=30).contains(&events), "{events} events for 200,000 requests");
    assert!(
        c.cmd(r#"{"execute":"query-chardev"}"#).contains("\"s\""),
        "the client is still served"
    );
}

/// #20.4: a one-row (or one-column) vc fed a long line through a bridge:
/// the screen model is guarded (it panicked on wrap, and the chardev and
/// the bridge silently disappeared).
#[test]
fn a_one_row_vc_fed_a_long_line_keeps_its_chardev_and_its_bridge() {
    let d = chardevd(&[
        "-chardev",
        "vc,id=v,rows=1,cols=80",
        "-chardev",
        "vc,id=w,rows=24,cols=1",
        "-chardev",
        "socket,id=s,host=127.0.0.1,port=0,server=on,wait=off",
        "-chardev",
        "socket,id=t,host=127.0.0.1,port=0,server=on,wait=off",
        "-device",
        "bridge,id=b,chardev=s,peer=v",
        "-device",
        "bridge,id=c,chardev=t,peer=w",
    ]);
    let mut c = Client::negotiated(&d.socket);
    for (sock, vc, want_rows) in [("s", "v", 1), ("t", "w", 24)] {
        let port = port_of(&mut c, sock);
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let line = format!("{}\r\n宽字 end", "x".repeat(300));
        peer.write_all(line.as_bytes()).unwrap();
        // The vc shows the end of it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = c.cmd(&format!(
                r#"{{"execute":"__org.chardevd_screendump-text","arguments":{{"device":"{vc}"}}}}"#
            ));
            let v: serde_json::Value = serde_json::from_str(&screen).unwrap();
            let lines = v["return"]["lines"].as_array().cloned().unwrap_or_default();
            assert_eq!(lines.len(), want_rows, "{screen}");
            if lines.iter().any(|l| l.as_str().unwrap_or("").contains(['d', '宽'])) {
                break;
            }
            assert!(Instant::now() < deadline, "the vc never drew the line: {screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let rows = c.cmd(r#"{"execute":"query-chardev"}"#);
    assert!(rows.contains("\"v\"") && rows.contains("\"w\""), "{rows}");
    // Both bridges are still there (DEVICE_DELETED comes before the reply).
    for id in ["b", "c"] {
        let ev = c.cmd(&format!(r#"{{"execute":"device_del","arguments":{{"id":"{id}"}}}}"#));
        assert!(ev.contains("DEVICE_DELETED"), "{ev}");
        assert_eq!(c.line(), r#"{"return": {}}"#);
    }
}
