//! Black-box QMP tests over real sockets: the actor system in-process (through
//! the embedding runtime) and the daemon binary.
mod common;

use chardevd::QmpAddr;
use chardevd::{self as runtime, Config};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn in_process() -> (runtime::Handle, tempfile::TempDir, std::path::PathBuf, u16) {
    let (h, dir, sock) = in_process_with(Default::default());
    let port = tcp_port(&h);
    (h, dir, sock, port)
}

fn tcp_line(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
            let l: Vec<u8> = buf.drain(..p + 2).collect();
            return String::from_utf8(l[..p].to_vec()).unwrap();
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn in_process_daemon_serves_unix_and_tcp_with_crlf_replies() {
    let (h, _dir, sock, port) = in_process();
    let mut u = Client::negotiated(&sock);
    let mut t = TcpStream::connect(("127.0.0.1", port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let greeting = tcp_line(&mut t, &mut buf);
    assert!(greeting
        .starts_with(r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "chardevd "#));
    t.write_all(b"{\"execute\":\"qmp_capabilities\"}").unwrap();
    assert_eq!(tcp_line(&mut t, &mut buf), r#"{"return": {}}"#);
    // A chardev made over unix is visible over TCP.
    assert_eq!(
        u.cmd(r#"{"execute":"chardev-add","arguments":{"id":"r","backend":{"type":"ringbuf","data":{"size":8}}}}"#),
        r#"{"return": {}}"#
    );
    t.write_all(br#"{"execute":"query-chardev","id":"t"}"#).unwrap();
    assert_eq!(
        tcp_line(&mut t, &mut buf),
        r#"{"return": [{"frontend-open": false, "filename": "ringbuf", "label": "r"}], "id": "t"}"#
    );
    h.shutdown();
    h.join();
    assert!(!sock.exists(), "the unix socket file is removed at shutdown");
}

#[test]
fn one_command_split_over_many_packets_and_many_in_one_packet() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    let cmd = br#"{"execute":"query-version","id":"split"}"#;
    for b in cmd.iter() {
        c.send(&[*b]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(c.line().ends_with(r#""id": "split"}"#));
    let mut many = Vec::new();
    for i in 0..50 {
        many.extend_from_slice(format!(r#"{{"execute":"query-version","id":{i}}}"#).as_bytes());
    }
    c.send(&many);
    for i in 0..50 {
        assert!(
            c.line().ends_with(&format!(r#""id": {i}}}"#)),
            "replies in request order"
        );
    }
    h.shutdown();
}

#[test]
fn concurrent_chardev_add_of_one_id_from_many_sessions_yields_one_success() {
    let (h, _dir, sock, _) = in_process();
    let mut clients: Vec<Client> = (0..16).map(|_| Client::negotiated(&sock)).collect();
    let add = br#"{"execute":"chardev-add","arguments":{"id":"dup","backend":{"type":"ringbuf","data":{}}}}
"#;
    for c in clients.iter_mut() {
        c.send(add);
    }
    let replies: Vec<String> = clients.iter_mut().map(|c| c.line()).collect();
    let ok = replies.iter().filter(|r| *r == r#"{"return": {}}"#).count();
    let dup = replies
        .iter()
        .filter(|r| r.contains("Chardev with id 'dup' already exists"))
        .count();
    assert_eq!((ok, dup), (1, 15), "{replies:?}");
    h.shutdown();
}

#[test]
fn pipelined_commands_are_never_dropped_even_when_the_client_reads_late() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    let n = 10_000;
    let writer = {
        let mut s = c.stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            for i in 0..n {
                all.extend_from_slice(format!("{{\"execute\":\"query-chardev\",\"id\":{i}}}\n").as_bytes());
            }
            s.write_all(&all).unwrap();
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..n {
        let l = c.line();
        assert!(l.ends_with(&format!(", \"id\": {i}}}")), "{l}");
    }
    writer.join().unwrap();
    h.shutdown();
}

#[test]
fn limits_nesting_and_message_size_then_recovers() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    c.send("[".repeat(1025).as_bytes());
    assert_eq!(
        c.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}"#
    );
    c.send(b"\n");
    // The stray closers of an over-deep message each get their own error, as in QEMU.
    c.send("]".repeat(3).as_bytes());
    for _ in 0..3 {
        assert_eq!(
            c.line(),
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#
        );
    }
    assert!(c
        .cmd(r#"{"execute":"query-version","id":"ok"}"#)
        .ends_with(r#""id": "ok"}"#));
    h.shutdown();
}

#[test]
fn a_64_mib_token_is_refused_and_the_session_goes_on() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    let mut big = Vec::with_capacity(65 << 20);
    big.extend_from_slice(br#"{"execute":"ringbuf-write","arguments":{"device":"x","data":""#);
    big.resize(big.len() + (65 << 20), b'a');
    big.extend_from_slice(b"\"}}\n");
    let mut s = c.stream.try_clone().unwrap();
    let w = std::thread::spawn(move || s.write_all(&big).unwrap());
    assert_eq!(
        c.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}"#
    );
    w.join().unwrap();
    // Resync as QEMU's spec says: a quote closes the string the cut token opened.
    c.send(b"\"\n");
    let mut seen_ok = false;
    c.send(b"{\"execute\":\"query-version\",\"id\":\"after\"}\n");
    while let Some(l) = c.try_line(Duration::from_secs(5)) {
        if l.ends_with(r#""id": "after"}"#) {
            seen_ok = true;
            break;
        }
    }
    assert!(seen_ok);
    h.shutdown();
}

#[test]
fn events_reach_only_negotiated_sessions_and_vserport_change_is_rate_limited() {
    let (h, _dir, sock, _) = in_process();
    let mut a = Client::negotiated(&sock);
    let mut early = Client::connect(&sock);
    early.line();
    a.cmd(r#"{"execute":"chardev-add","arguments":{"id":"c","backend":{"type":"null","data":{}}}}"#);
    assert_eq!(
        a.cmd(r#"{"execute":"device_add","arguments":{"driver":"port","id":"p0","chardev":"c"}}"#),
        r#"{"return": {}}"#
    );
    let started = Instant::now();
    a.send(br#"{"execute":"__org.chardevd_port-set-open","arguments":{"id":"p0","open":true}}"#);
    let first = a.line();
    assert!(first.contains(r#""event": "VSERPORT_CHANGE""#), "{first}");
    assert!(first.contains(r#""data": {"open": true, "id": "p0"}"#), "{first}");
    assert_eq!(a.line(), r#"{"return": {}}"#);
    // Within the window: replies come at once, the events coalesce to the latest.
    for open in [false, true, false] {
        assert_eq!(
            a.cmd(&format!(
                r#"{{"execute":"__org.chardevd_port-set-open","arguments":{{"id":"p0","open":{open}}}}}"#
            )),
            r#"{"return": {}}"#
        );
    }
    let later = a.line();
    assert!(later.contains(r#""data": {"open": false, "id": "p0"}"#), "{later}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held back for the window"
    );
    assert!(
        a.try_line(Duration::from_millis(1300)).is_none(),
        "only the latest was sent"
    );
    let q = a.cmd(r#"{"execute":"query-chardev"}"#);
    assert!(
        q.contains(r#"{"frontend-open": false, "filename": "null", "label": "c"}"#),
        "{q}"
    );
    // The unnegotiated session saw no event.
    assert!(early.try_line(Duration::from_millis(100)).is_none());
    // A busy chardev cannot be removed until its device goes.
    assert!(a
        .cmd(r#"{"execute":"chardev-remove","arguments":{"id":"c"}}"#)
        .contains("Chardev 'c' is busy"));
    let deleted = a.cmd(r#"{"execute":"device_del","arguments":{"id":"p0"}}"#);
    assert!(deleted.contains(r#""event": "DEVICE_DELETED""#), "{deleted}");
    assert!(
        deleted.contains(r#""device": "p0""#) && deleted.contains(r#""path": "/machine/peripheral/p0""#),
        "{deleted}"
    );
    assert_eq!(a.line(), r#"{"return": {}}"#);
    assert_eq!(
        a.cmd(r#"{"execute":"device_add","arguments":{"driver":"echo","id":"1bad","chardev":"c"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Parameter 'id' expects an identifier"}}"#
    );
    assert_eq!(
        a.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"c"}}"#),
        r#"{"return": {}}"#
    );
    h.shutdown();
}

#[test]
fn a_ringbuf_of_size_zero_is_refused_instead_of_crashing() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"z","backend":{"type":"ringbuf","data":{"size":0}}}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'z': size of ringbuf chardev must be power of two"}}"#
    );
    h.shutdown();
}

#[test]
fn utf8_ringbuf_reads_keep_nul_and_whole_characters() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"r","backend":{"type":"ringbuf","data":{"size":64}}}}"#);
    c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"r","data":"a\u0000b\u00e9c"}}"#);
    // 4 bytes would cut the é (C3 A9): it stays for the next read.
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":4}}"#),
        r#"{"return": "a\u0000b"}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":1}}"#),
        r#"{"return": "\u00E9"}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":9}}"#),
        r#"{"return": "c"}"#
    );
    h.shutdown();
}

#[test]
fn chardev_change_that_fails_keeps_the_old_chardev_working() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"r","backend":{"type":"ringbuf","data":{"size":64}}}}"#);
    c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"r","data":"kept"}}"#);
    let e =
        c.cmd(r#"{"execute":"chardev-change","arguments":{"id":"r","backend":{"type":"ringbuf","data":{"size":3}}}}"#);
    assert_eq!(
        e,
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'r': size of ringbuf chardev must be power of two"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":9}}"#),
        r#"{"return": "kept"}"#
    );
    h.shutdown();
}

#[test]
fn query_commands_and_schema_describe_every_command() {
    let (h, _dir, sock, _) = in_process();
    let mut c = Client::negotiated(&sock);
    let cmds: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"query-commands"}"#)).unwrap();
    let names: Vec<&str> = cmds["return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for want in [
        "query-chardev",
        "query-chardev-backends",
        "ringbuf-write",
        "ringbuf-read",
        "chardev-add",
        "chardev-change",
        "chardev-remove",
        "chardev-send-break",
        "qmp_capabilities",
        "query-qmp-schema",
        "__org.chardevd_port-set-open",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let schema: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"query-qmp-schema"}"#)).unwrap();
    let entities = schema["return"].as_array().unwrap();
    for n in &names {
        assert!(
            entities.iter().any(|e| e["name"] == *n && e["meta-type"] == "command"),
            "{n} not in schema"
        );
    }
    assert!(entities
        .iter()
        .any(|e| e["name"] == "VSERPORT_CHANGE" && e["meta-type"] == "event"));
    h.shutdown();
}

#[test]
fn the_binary_parses_qemu_options_and_cleans_up_on_sigterm() {
    let mut d = chardevd(&[
        "-chardev",
        "ringbuf,id=a.b,size=4K",
        "-chardev",
        "memory,id=m",
        "-device",
        "echo,id=e,chardev=m",
    ]);
    let mut c = Client::negotiated(&d.socket);
    assert_eq!(
        c.cmd(r#"{"execute":"query-chardev"}"#),
        r#"{"return": [{"frontend-open": false, "filename": "ringbuf", "label": "a.b"}, {"frontend-open": true, "filename": "memory", "label": "m"}]}"#
    );
    let pid = d.child.id();
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!d.socket.exists(), "socket file removed on SIGTERM");
}

#[test]
fn the_binary_reports_bad_options_clearly() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chardevd"))
        .args([
            "-chardev",
            "ringbuf,id=x,size=5",
            "-qmp",
            "unix:/nonexistent-dir/x.sock,server=on",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("size of ringbuf chardev must be power of two"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chardevd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("-chardev ringbuf,id=ID"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chardevd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("chardevd "));
}

fn in_process_with(limits: chardevd::Limits) -> (runtime::Handle, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    // A private unix socket plus a TCP one on a free loopback port.
    let cfg = Config {
        qmp: vec![
            QmpAddr::Unix {
                path: sock.clone(),
                access: chardevd::backends::UnixAccess::PRIVATE,
            },
            QmpAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 0,
            },
        ],
        limits,
        ..Default::default()
    };
    (runtime::spawn(cfg).unwrap(), dir, sock)
}

#[test]
fn a_client_that_never_reads_its_events_is_disconnected_when_its_event_queue_overflows() {
    let limits = chardevd::Limits {
        event_queue: 4,
        ..Default::default()
    };
    let (h, _dir, sock) = in_process_with(limits);
    let mut deaf = Client::negotiated(&sock);
    let mut ctl = Client::negotiated(&sock);
    // Fill the deaf client's socket buffer first, so its queue cannot drain.
    let schema = br#"{"execute":"query-qmp-schema"}
"#
    .repeat(40);
    deaf.send(&schema);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..40 {
        ctl.cmd(&format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"c{i}","backend":{{"type":"null","data":{{}}}}}}}}"#
        ));
        ctl.cmd(&format!(
            r#"{{"execute":"device_add","arguments":{{"driver":"port","id":"p{i}","chardev":"c{i}"}}}}"#
        ));
        ctl.cmd(&format!(
            r#"{{"execute":"__org.chardevd_port-set-open","arguments":{{"id":"p{i}","open":true}}}}"#
        ));
    }
    // The deaf client is cut off: draining its socket ends in EOF.
    let mut sink = Vec::new();
    deaf.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = deaf.stream.read_to_end(&mut sink);
    assert!(r.is_ok(), "connection closed by the server: {r:?}");
    // The other session (which reads its events) is unaffected.
    ctl.send(b"{\"execute\":\"query-version\",\"id\":\"alive\"}\n");
    while !ctl.line().contains("alive") {}
    h.shutdown();
}

#[test]
fn a_client_whose_socket_accepts_nothing_is_disconnected_after_the_stall_timeout() {
    let limits = chardevd::Limits {
        stall_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let (h, _dir, sock) = in_process_with(limits);
    let mut c = Client::negotiated(&sock);
    c.send(
        &br#"{"execute":"query-qmp-schema"}
"#
        .repeat(200),
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut sink = Vec::new();
    c.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Cut off: the end, or a reset when requests it never read were left
    // (a unix socket closed with unread input resets its peer).
    let r = c.stream.read_to_end(&mut sink);
    assert!(
        r.is_ok()
            || r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection was not closed: {r:?} after {} bytes",
        sink.len()
    );
    assert!(sink.len() < 200 * 200_000, "not every reply was delivered");
    h.shutdown();
}

#[test]
fn every_backend_query_chardev_backends_lists_really_exists() {
    let d = chardevd(&[]);
    let mut c = Client::negotiated(&d.socket);
    let list: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"query-chardev-backends"}"#)).unwrap();
    let names: Vec<String> = list["return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"muxbase","backend":{"type":"ringbuf","data":{}}}}"#);
    c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"hubin","backend":{"type":"ringbuf","data":{}}}}"#);
    for (i, name) in names.iter().enumerate() {
        let data = match name.as_str() {
            "serial" | "parallel" | "pipe" => r#"{"device":"/dev/null"}"#,
            "file" => r#"{"out":"/dev/null"}"#,
            "udp" => r#"{"remote":{"type":"inet","data":{"host":"127.0.0.1","port":"9"}}}"#,
            "socket" => r#"{"addr":{"type":"inet","data":{"host":"127.0.0.1","port":"0"}}}"#,
            "mux" => r#"{"chardev":"muxbase"}"#,
            "hub" => r#"{"chardevs":["hubin"]}"#,
            _ => "{}",
        };
        let reply = c.cmd(&format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"b{i}","backend":{{"type":"{name}","data":{data}}}}}}}"#
        ));
        assert!(!reply.contains("is not a valid char driver name"), "{name}: {reply}");
        assert!(
            reply.starts_with(r#"{"return""#)
                || name == "parallel"
                // Exists, but needs a BrlAPI server (tests/braille.rs).
                || (name == "braille" && reply.contains("brlapi__openConnection")),
            "{name}: {reply}"
        );
    }
    // And a kind it does not list is refused as an unbuilt QEMU refuses it.
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"s","backend":{"type":"spicevmc","data":{"type":"vdagent"}}}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 's': 'spicevmc' is not a valid char driver name"}}"#
    );
}
