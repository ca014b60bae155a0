//! Hostile peers against a real daemon process: what a socket peer or a QMP
//! client can do, and the bound each runs into (memory, descriptors, time,
//! events). Each test names the item of issue #20 it closes.
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

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

/// A fifo in `dir` nobody reads.
fn fifo_in(dir: &tempfile::TempDir, name: &str) -> String {
    let p = dir.path().join(name);
    mkfifo(&p);
    p.display().to_string()
}

fn file_add(id: &str, out: &str) -> String {
    format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{{"type":"file","data":{{"out":"{out}"}}}}}}}}"#
    )
}

/// #20.5: four clients each add a `file` chardev whose `out` is a fifo
/// nobody reads (the open waits), then hang up; with `--max-sessions 4` a
/// fifth client is served as soon as the daemon sees them gone, long before
/// their commands give up (was: no answer until the commands ended, never).
#[test]
fn clients_that_hang_up_during_a_waiting_command_free_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_in(&dir, "fifo");
    let d = chardevd(&["--max-sessions", "4"]);
    for i in 0..4 {
        let mut c = Client::negotiated(&d.socket);
        c.send(file_add(&format!("f{i}"), &fifo).as_bytes());
        // The command waits; no reply comes.
        assert_eq!(c.try_line(Duration::from_millis(100)), None);
    }
    // All four have hung up. A fifth client is greeted (the default command
    // deadline, 60 s, is far off).
    let mut fifth = greeted(&d.socket, Duration::from_secs(20));
    assert_eq!(fifth.cmd(r#"{"execute":"qmp_capabilities"}"#), r#"{"return": {}}"#);
    // The commands go on: a reader on the fifo lets them finish.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = fifth.cmd(r#"{"execute":"query-chardev"}"#);
        if (0..4).all(|i| rows.contains(&format!("\"f{i}\""))) {
            break;
        }
        assert!(Instant::now() < deadline, "{rows}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(reader);
}

/// A client greeted within `within` (connections are refused while the
/// sessions are all taken).
fn greeted(socket: &std::path::Path, within: Duration) -> Client {
    let deadline = Instant::now() + within;
    loop {
        let mut c = Client::connect(socket);
        match c.try_line(Duration::from_secs(5)) {
            Some(l) if l.starts_with(r#"{"QMP""#) => return c,
            other => assert!(Instant::now() < deadline, "never greeted: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A session over the limit is told why before it is closed.
#[test]
fn a_client_over_the_session_limit_is_told_why() {
    let d = chardevd(&["--max-sessions", "1"]);
    // (The start-up probe's session may still be ending.)
    let mut first = greeted(&d.socket, Duration::from_secs(10));
    assert_eq!(first.cmd(r#"{"execute":"qmp_capabilities"}"#), r#"{"return": {}}"#);
    let mut second = Client::connect(&d.socket);
    assert_eq!(
        second.line(),
        r#"{"error": {"class": "GenericError", "desc": "Too many QMP sessions (at most 1)"}}"#
    );
    assert_eq!(second.try_line(Duration::from_secs(5)), None, "then closed");
}

/// #20.5: a command that waits for ever (QEMU would) gives up at the
/// command deadline with a clear error, and leaves nothing behind.
#[test]
fn a_command_that_never_finishes_gives_up_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_in(&dir, "fifo");
    let d = chardevd(&["--command-deadline", "2"]);
    let mut c = Client::negotiated(&d.socket);
    c.send(file_add("f", &fifo).as_bytes());
    assert_eq!(
        c.try_line(Duration::from_secs(20)).expect("a reply at the deadline"),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'f': gave up after 2 s of waiting (the command deadline)"}}"#
    );
    let file = dir.path().join("file").display().to_string();
    assert_eq!(
        c.cmd(&file_add("f", &file)),
        r#"{"return": {}}"#,
        "the id is free again"
    );
}

/// #20.5: port operations held back while a chardev is being changed are
/// bounded: `chardev-send-break` in a loop gets a clear error past 1024
/// (was: an unbounded queue); the change then completes.
#[test]
fn operations_held_during_a_change_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_in(&dir, "fifo");
    let d = chardevd(&["-chardev", "null,id=c", "-device", "echo,id=e,chardev=c"]);
    let mut changer = Client::negotiated(&d.socket);
    changer.send(
        format!(
            r#"{{"execute":"chardev-change","arguments":{{"id":"c","backend":{{"type":"file","data":{{"out":"{fifo}"}}}}}}}}"#
        )
        .as_bytes(),
    );
    assert_eq!(changer.try_line(Duration::from_millis(200)), None, "the change waits");
    let mut c = Client::negotiated(&d.socket);
    let mut held = 0;
    let refused = loop {
        let r = c.cmd(r#"{"execute":"chardev-send-break","arguments":{"id":"c"}}"#);
        if r != r#"{"return": {}}"# {
            break r;
        }
        held += 1;
        assert!(held <= 100_000, "no bound");
    };
    assert_eq!(held, 1024);
    assert_eq!(
        refused,
        r#"{"error": {"class": "GenericError", "desc": "too many operations waiting for a chardev being changed: at most 1024 (a chardevd limit)"}}"#
    );
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo)
        .unwrap();
    assert_eq!(changer.line(), r#"{"return": {}}"#);
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-send-break","arguments":{"id":"c"}}"#),
        r#"{"return": {}}"#
    );
    drop(reader);
}

/// Send `msg` with `n` descriptors (of /dev/null) attached.
fn send_fds(c: &mut Client, msg: &[u8], n: usize) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::mem::MaybeUninit;
    use std::os::fd::{AsFd, BorrowedFd};
    let files: Vec<std::fs::File> = (0..n).map(|_| std::fs::File::open("/dev/null").unwrap()).collect();
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(n))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    assert!(anc.push(SendAncillaryMessage::ScmRights(&fds)));
    rustix::net::sendmsg(
        c.stream.as_fd(),
        &[std::io::IoSlice::new(msg)],
        &mut anc,
        SendFlags::empty(),
    )
    .unwrap();
}

/// #20.6: `getfd` names are capped per session with a clear error, the cap
/// keeps the daemon's descriptors bounded, and the daemon serves new
/// clients throughout; 20 descriptors in one message all arrive (was: 8,
/// the rest dropped without a word; and names without a cap).
#[test]
fn named_descriptors_are_capped_with_a_clear_error() {
    let d = chardevd(&["--max-fds", "16"]);
    let pid = d.child.id();
    let mut c = Client::negotiated(&d.socket);
    let before = fds(pid);
    send_fds(&mut c, b" ", 20);
    for i in 0..16 {
        assert_eq!(
            c.cmd(&format!(r#"{{"execute":"getfd","arguments":{{"fdname":"n{i}"}}}}"#)),
            r#"{"return": {}}"#,
            "descriptor {i} of one message"
        );
    }
    assert_eq!(
        c.cmd(r#"{"execute":"getfd","arguments":{"fdname":"n16"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "too many named descriptors (closefd some): at most 16 (a chardevd limit)"}}"#
    );
    // A name in use is replaced, and closefd makes room.
    assert_eq!(
        c.cmd(r#"{"execute":"getfd","arguments":{"fdname":"n0"}}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"closefd","arguments":{"fdname":"n1"}}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"getfd","arguments":{"fdname":"m"}}"#),
        r#"{"return": {}}"#
    );
    // A thousand more from one client: closed on arrival, said so.
    for _ in 0..10 {
        send_fds(&mut c, b" ", 100);
    }
    let said = c.cmd(r#"{"execute":"getfd","arguments":{"fdname":"z"}}"#);
    assert!(said.contains("too many"), "{said}");
    assert!(fds(pid) < before + 16 + 70, "{} descriptors open", fds(pid));
    let mut other = Client::negotiated(&d.socket);
    assert!(other.cmd(r#"{"execute":"query-chardev"}"#).starts_with(r#"{"return""#));
}

/// #20.7: eight clients each write 1 MiB of `]` and read nothing: each
/// error is made only when there is room for it in the session's output
/// (`--max-output 256K` here), so the daemon holds little more than that
/// per session (was: every read of 256 KiB parsed at once into ~262k
/// queued errors, ~10 MiB per session, whatever the output's bound).
#[test]
fn garbage_from_clients_that_never_read_costs_bounded_memory() {
    let d = chardevd(&["--max-output", "256K"]);
    let pid = d.child.id();
    let mut c = Client::negotiated(&d.socket);
    let before = rss_kib(pid);
    let chunk = b"]".repeat(64 << 10);
    let mut bad = Vec::new();
    for _ in 0..8 {
        let mut b = Client::negotiated(&d.socket);
        b.stream.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let mut sent = 0usize;
        while sent < 1 << 20 && start.elapsed() < Duration::from_secs(2) {
            match b.stream.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("{e}"),
            }
        }
        assert!(sent >= 64 << 10, "the daemon read some: {sent}");
        b.stream.set_nonblocking(false).unwrap();
        bad.push(b);
    }
    std::thread::sleep(Duration::from_millis(300));
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(grown < 16 << 10, "RSS grew by {grown} KiB for 8 sessions of garbage");
    assert!(c.cmd(r#"{"execute":"query-chardev"}"#).starts_with(r#"{"return""#));
    // The offenders read: their errors come, one per byte, in order.
    for b in &mut bad {
        for _ in 0..3 {
            assert_eq!(
                b.line(),
                r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#
            );
        }
    }
}

/// #20.7: partly sent messages of all sessions share `--max-input`; the
/// session that would pass it gets an error, the others are served.
#[test]
fn partly_sent_messages_share_the_input_budget() {
    let d = chardevd(&["--max-input", "8M"]);
    let mut held = Vec::new();
    let open = br#"{"execute":"human-monitor-command","arguments":{"command-line":""#;
    let payload = b"A".repeat(3 << 20);
    for _ in 0..2 {
        let mut c = Client::negotiated(&d.socket);
        c.send(open);
        c.send(&payload);
        held.push(c);
    }
    // Two hold ~6 MiB; a third passes 8 MiB.
    let mut third = Client::negotiated(&d.socket);
    third.send(open);
    third.send(&payload);
    assert_eq!(
        third.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON message dropped: chardevd's limit on input held by all sessions is reached"}}"#
    );
    // A small command of anyone is still served, and a holder finishes its message.
    let mut small = Client::negotiated(&d.socket);
    assert!(small.cmd(r#"{"execute":"query-chardev"}"#).starts_with(r#"{"return""#));
    held[0].send(b"\"}}\n");
    let r = held[0].line();
    assert!(r.starts_with(r#"{"error""#) && !r.contains("limit"), "{r}");
}

/// #20.7: `ringbuf-read` of a huge size reads at most `--max-read` bytes
/// (the rest stays for the next read).
#[test]
fn a_huge_ringbuf_read_is_bounded() {
    let d = chardevd(&["-chardev", "ringbuf,id=r,size=4194304", "--max-read", "1M"]);
    let mut c = Client::negotiated(&d.socket);
    let data = "x".repeat(3 << 20);
    assert_eq!(
        c.cmd(&format!(
            r#"{{"execute":"ringbuf-write","arguments":{{"device":"r","data":"{data}"}}}}"#
        )),
        r#"{"return": {}}"#
    );
    let mut total = 0;
    for want in [1 << 20, 1 << 20, 1 << 20, 0] {
        let r = c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":1073741824}}"#);
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        let got = v["return"].as_str().unwrap().len();
        assert_eq!(got, want);
        total += got;
    }
    assert_eq!(total, 3 << 20);
}

/// The counters of chardev `id` in `__org.chardevd_query-stats`.
fn stats_of(c: &mut Client, id: &str) -> serde_json::Value {
    let r: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"__org.chardevd_query-stats"}"#)).unwrap();
    r["return"]["chardevs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no {id} in {r}"))
}

/// #20.8: bytes dropped are counted, by cause, per chardev: output to a
/// socket with no client, failed writes (`/dev/full`), ring overwrites;
/// bytes in and out too; and the QMP side's sessions and refusals.
#[test]
fn dropped_bytes_are_counted_per_chardev_and_cause() {
    let d = chardevd(&[
        "-chardev",
        "socket,id=t,host=127.0.0.1,port=0,server=on,wait=off",
        "-chardev",
        "socket,id=s,host=127.0.0.1,port=0,server=on,wait=off",
        "-chardev",
        "socket,id=u,host=127.0.0.1,port=0,server=on,wait=off",
        "-chardev",
        "file,id=f,path=/dev/full",
        "-chardev",
        "ringbuf,id=r,size=16",
        "-device",
        "bridge,id=b1,chardev=t,peer=s",
        "-device",
        "bridge,id=b2,chardev=u,peer=f",
        "--max-sessions",
        "3",
    ]);
    let mut c = Client::negotiated(&d.socket);
    let payload = b"x".repeat(1000);
    for id in ["t", "u"] {
        let port = port_of(&mut c, id);
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        peer.write_all(&payload).unwrap();
        std::mem::forget(peer);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, f) = (stats_of(&mut c, "s"), stats_of(&mut c, "f"));
        if s["dropped-unconnected"] == 1000 && f["dropped-write-error"] == 1000 {
            assert_eq!(s["dropped-out"], 1000);
            assert_eq!(s["bytes-out"], 0);
            assert!(f["write-errors"].as_u64().unwrap() >= 1, "{f}");
            break;
        }
        assert!(Instant::now() < deadline, "{s} {f}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = stats_of(&mut c, "t");
    assert_eq!(
        (t["bytes-in"].as_u64(), t["dropped-out"].as_u64()),
        (Some(1000), Some(0)),
        "{t}"
    );
    assert!(t.get("overwritten").is_none(), "only rings say overwritten");
    // A ring of 16 bytes takes 40: 24 overwritten.
    let data = "y".repeat(40);
    c.cmd(&format!(
        r#"{{"execute":"ringbuf-write","arguments":{{"device":"r","data":"{data}"}}}}"#
    ));
    assert_eq!(stats_of(&mut c, "r")["overwritten"], 24);
    // QMP: this session, another, and refusals over --max-sessions 3.
    let _two = Client::negotiated(&d.socket);
    let _three = Client::negotiated(&d.socket);
    let mut over = Client::connect(&d.socket);
    assert!(over.line().contains("Too many QMP sessions"));
    let r: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"__org.chardevd_query-stats"}"#)).unwrap();
    let q = &r["return"]["qmp"];
    assert_eq!(q["sessions"], 3, "{q}");
    assert!(q["sessions-refused"].as_u64().unwrap() >= 1, "{q}");
    assert!(q["sessions-served"].as_u64().unwrap() >= 3, "{q}");
}

/// What the daemon says (stdout and stderr) while it starts with `args`
/// (until its QMP listener is up).
fn startup_stderr(args: &[&str]) -> String {
    use std::io::BufRead;
    let mut child = std::process::Command::new(chardevd_bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
    let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
    for pipe in [out, err] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut said = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        said.push_str(&line);
        said.push('\n');
        if line.contains("QMP listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    said
}

/// #20.9: QMP on every interface is said to be reachable, and without
/// authentication, when the daemon starts; on loopback nothing is said.
#[test]
fn qmp_on_every_interface_is_warned_about() {
    let said = startup_stderr(&["-qmp", "tcp::0,server=on,wait=off"]);
    assert!(said.contains("QMP listening"), "{said}");
    assert!(said.contains("no authentication"), "{said}");
    let said = startup_stderr(&["-qmp", "tcp:127.0.0.1:0,server=on,wait=off"]);
    assert!(said.contains("QMP listening"), "{said}");
    assert!(!said.contains("no authentication"), "{said}");
}

/// #20.9: a unix server with an empty path gets an unguessable one under
/// `$TMPDIR` (was: `/tmp/chardevd-socket-PID-N`).
#[test]
fn an_empty_unix_path_becomes_an_unguessable_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("qmp.sock");
    let child = std::process::Command::new(chardevd_bin())
        .env("TMPDIR", tmp.path())
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Client::negotiated(&socket);
    let mut paths = Vec::new();
    for id in ["a", "b"] {
        let add = format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":""}}}},"server":true,"wait":false}}}}}}}}"#
        );
        assert_eq!(c.cmd(&add), r#"{"return": {}}"#);
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
        let path = f
            .strip_prefix("disconnected:unix:")
            .and_then(|p| p.strip_suffix(",server=on"));
        let path = path.unwrap_or_else(|| panic!("{f}")).to_owned();
        let name = std::path::Path::new(&path)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(path.starts_with(tmp.path().to_str().unwrap()), "{path}");
        let tail = name.strip_prefix("chardevd-socket-").unwrap();
        assert!(
            tail.len() == 16 && tail.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok(), "{path} serves");
        paths.push(path);
    }
    assert_ne!(paths[0], paths[1]);
}

/// A child killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// #20.9: `tls-authz` under credentials with `verify-peer=off` is not
/// checked (as in QEMU: no client certificate is asked for); the daemon
/// says so.
#[test]
fn tls_authz_that_cannot_be_checked_is_warned_about() {
    if !require("openssl", have("openssl")) {
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let server = pki.path().join("server");
    let creds = format!(
        "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=off",
        server.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let qmp = format!("unix:{},server=on,wait=off", dir.path().join("q.sock").display());
    let said = startup_stderr(&[
        "-object",
        &creds,
        "-object",
        "authz-simple,id=auth0,identity=CN=client.example.com",
        "-chardev",
        "socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0,tls-authz=auth0",
        "-qmp",
        &qmp,
    ]);
    assert!(said.contains("tls-authz is not checked"), "{said}");
}

/// Read `path` (a fifo) slowly to its end in a thread; the bytes read.
fn slow_reader(path: std::path::PathBuf) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::open(&path).unwrap();
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    })
}

/// Shutdown loses nothing it could keep: every byte the daemon took from a
/// peer before SIGTERM (or `quit`) reaches the slow reader of the fifo it
/// was bridged to (was: what was queued inside the daemon was dropped).
#[test]
fn bytes_taken_before_sigterm_or_quit_reach_their_destination() {
    for how in ["SIGTERM", "quit"] {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out");
        mkfifo(&fifo);
        let reader = slow_reader(fifo.clone());
        let mut d = chardevd(&[
            "-chardev",
            "socket,id=s,host=127.0.0.1,port=0,server=on,wait=off",
            "-chardev",
            &format!("file,id=f,path={}", fifo.display()),
            "-device",
            "bridge,id=b,chardev=s,peer=f",
        ]);
        let mut c = Client::negotiated(&d.socket);
        let port = port_of(&mut c, "s");
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let n = 2 << 20;
        let sender = std::thread::spawn(move || {
            peer.write_all(&vec![b'z'; n]).unwrap();
            peer
        });
        // The daemon took every byte (some are still inside it).
        let deadline = Instant::now() + Duration::from_secs(30);
        while stats_of(&mut c, "s")["bytes-in"] != n {
            assert!(Instant::now() < deadline, "{}", stats_of(&mut c, "s"));
            std::thread::sleep(Duration::from_millis(5));
        }
        let inside = n as u64 - stats_of(&mut c, "f")["bytes-out"].as_u64().unwrap();
        if how == "SIGTERM" {
            std::process::Command::new("kill")
                .args(["-TERM", &d.child.id().to_string()])
                .status()
                .unwrap();
        } else {
            c.cmd(r#"{"execute":"quit"}"#);
        }
        let _peer = sender.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(
            got, n,
            "{how}: {inside} bytes were inside the daemon when it was told to stop"
        );
        let status = d.child.wait().unwrap();
        assert!(status.success(), "{how}: {status}");
    }
}
