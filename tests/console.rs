//! The console server (issue #21) against a real daemon process: a
//! "guest" socket chardev bridged to a console socket chardev with many
//! clients, history, queues and overflow rules, input roles, client events
//! and queries; logs with timestamps, rotation and SIGHUP; unix socket
//! permissions.
mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A daemon with chardev `g` (the guest side: the test connects to it as
/// the guest would) bridged to console `con` with `console` options.
struct Rig {
    _server: Server,
    dir: PathBuf,
    qmp: Client,
    guest: UnixStream,
    _tmp: tempfile::TempDir,
}

impl Rig {
    fn new(console: &str) -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let g = format!("socket,id=g,path={}/g.sock,server=on,wait=off", dir.display());
        let con = format!(
            "socket,id=con,path={}/con.sock,server=on,wait=off,{console}",
            dir.display()
        );
        let server = chardevd(&[
            "-chardev",
            &g,
            "-chardev",
            &con,
            "-device",
            "bridge,id=b,chardev=g,peer=con",
        ]);
        let qmp = Client::negotiated(&server.socket);
        let guest = connect(&dir.join("g.sock"));
        Rig {
            _server: server,
            dir,
            qmp,
            guest,
            _tmp: tmp,
        }
    }

    fn client(&self) -> UnixStream {
        connect(&self.dir.join("con.sock"))
    }

    fn clients(&mut self) -> Vec<serde_json::Value> {
        let r = self.cmd(r#"{"execute":"__org.chardevd_query-clients","arguments":{"id":"con"}}"#);
        r["return"].as_array().expect("a list").clone()
    }

    /// A command's reply (events before it are kept for [`Rig::event`]).
    fn cmd(&mut self, json: &str) -> serde_json::Value {
        self.qmp.send(json.as_bytes());
        self.qmp.send(b"\n");
        loop {
            let v: serde_json::Value = serde_json::from_str(&self.qmp.line()).unwrap();
            if v.get("event").is_none() {
                return v;
            }
            EVENTS.with(|e| e.borrow_mut().push(v));
        }
    }

    /// The next event called `name`.
    fn event(&mut self, name: &str) -> serde_json::Value {
        if let Some(v) = EVENTS.with(|e| {
            let mut e = e.borrow_mut();
            let i = e.iter().position(|v| v["event"] == name)?;
            Some(e.remove(i))
        }) {
            return v;
        }
        loop {
            let v: serde_json::Value = serde_json::from_str(&self.qmp.line()).unwrap();
            if v["event"] == name {
                return v;
            }
        }
    }
}

thread_local! {
    static EVENTS: std::cell::RefCell<Vec<serde_json::Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn connect(path: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return s;
            }
            Err(e) if Instant::now() > deadline => panic!("connect {}: {e}", path.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Read exactly `n` bytes.
fn read_n(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("the bytes");
    buf
}

/// Nothing arrives within `ms`.
fn quiet(s: &mut UnixStream, ms: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
    let mut b = [0u8; 64];
    let r = s.read(&mut b);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    matches!(r, Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// Wait until `f` holds (checked every 20 ms, at most 10 s).
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn client_count(rig: &mut Rig) -> usize {
    rig.clients().len()
}

#[test]
fn output_with_nobody_connected_reaches_the_history_and_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("con.log");
    let mut rig = Rig::new(&format!(
        "__org.chardevd_history=64K,logfile={},logtimestamp=on",
        log.display()
    ));
    rig.guest.write_all(b"boot line 1\nboot line 2\n").unwrap();
    until("the log", || std::fs::read(&log).is_ok_and(|l| l.len() > 40));
    let mut late = rig.client();
    assert_eq!(read_n(&mut late, 24), b"boot line 1\nboot line 2\n");
    rig.guest.write_all(b"live\n").unwrap();
    assert_eq!(read_n(&mut late, 5), b"live\n");
    until("the third log line", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.lines().count() == 3)
    });
    let text = std::fs::read_to_string(&log).unwrap();
    for (line, want) in text.lines().zip(["boot line 1", "boot line 2", "live"]) {
        let (stamp, rest) = line.split_once(' ').expect("a stamp and a space");
        assert_eq!(rest, want);
        assert!(
            stamp.ends_with('Z') && stamp.len() >= 20 && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
    }
    let stats = rig.cmd(r#"{"execute":"__org.chardevd_query-stats"}"#);
    let con = stats["return"]["chardevs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "con")
        .unwrap()
        .clone();
    assert_eq!(con["dropped-unconnected"], 0, "{con}");
    assert_eq!(con["bytes-out"], 29, "{con}");
}

#[test]
fn without_console_options_output_with_no_client_is_dropped_as_in_qemu() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("con.log");
    let mut rig = Rig::new(&format!("logfile={}", log.display()));
    rig.guest.write_all(b"lost\n").unwrap();
    until("the drop to be counted", || {
        let stats = rig.cmd(r#"{"execute":"__org.chardevd_query-stats"}"#);
        stats["return"]["chardevs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["label"] == "con" && c["dropped-unconnected"] == 5)
    });
    assert_eq!(std::fs::read(&log).unwrap(), b"");
    let r = rig.cmd(r#"{"execute":"__org.chardevd_query-clients","arguments":{"id":"con"}}"#);
    assert_eq!(
        r["error"]["desc"],
        "Chardev 'con' is not a console (a listening socket with __org.chardevd_ console options)"
    );
}

#[test]
fn clients_see_the_same_output_and_type_in_turn_while_a_stopped_one_stalls_nobody() {
    let mut rig = Rig::new("__org.chardevd_max-clients=3,__org.chardevd_client-queue=16K");
    let mut a = rig.client();
    let mut b = rig.client();
    let stopped = rig.client();
    until("three clients", || client_count(&mut rig) == 3);
    // Input from each, in arrival order, one read at a time.
    a.write_all(b"from a;").unwrap();
    assert_eq!(read_n(&mut rig.guest, 7), b"from a;");
    b.write_all(b"from b;").unwrap();
    assert_eq!(read_n(&mut rig.guest, 7), b"from b;");
    // 2 MiB at the pace of a fast serial line: both readers get every byte
    // while the third reads nothing.
    let data: Vec<u8> = (0..2 << 20).map(|i: u32| (i % 251) as u8).collect();
    let readers: Vec<_> = [a.try_clone().unwrap(), b.try_clone().unwrap()]
        .into_iter()
        .map(|mut s| {
            let n = data.len();
            std::thread::spawn(move || read_n(&mut s, n))
        })
        .collect();
    for piece in data.chunks(4096) {
        rig.guest.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    for r in readers {
        assert!(r.join().unwrap() == data, "a reader lost or garbled bytes");
    }
    let rows = rig.clients();
    assert_eq!(rows[0]["bytes-out"], data.len() as u64);
    assert_eq!(rows[1]["bytes-out"], data.len() as u64);
    assert_eq!(rows[0]["dropped"], 0);
    assert_eq!(rows[0]["bytes-in"], 7);
    let lost = rows[2]["dropped"].as_u64().unwrap();
    assert!(lost > 0, "the stopped client lost nothing? {:?}", rows[2]);
    assert!(rows[2]["queued"].as_u64().unwrap() <= 16 << 10);
    // The stopped client, reading at last, finds the gap marked.
    let mut stopped = stopped;
    stopped.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = stopped.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains(" bytes lost]\r\n"), "no marker in {} bytes", got.len());
    let marked: u64 = text
        .match_indices("[chardevd: ")
        .map(|(i, _)| text[i + 11..].split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(marked, lost, "the markers add up to the bytes dropped");
}

#[test]
fn overflow_disconnect_cuts_off_the_stopped_client_and_block_waits_for_it() {
    let mut rig = Rig::new(
        "__org.chardevd_max-clients=2,__org.chardevd_client-queue=64K,__org.chardevd_overflow=disconnect,__org.chardevd_client-events=on",
    );
    let mut reader = rig.client();
    let stopped = rig.client();
    stopped.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    until("two clients", || client_count(&mut rig) == 2);
    let data = vec![b'x'; 4 << 20];
    let n = data.len();
    let t = std::thread::spawn(move || read_n(&mut reader, n));
    for piece in data.chunks(4096) {
        rig.guest.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(t.join().unwrap() == data, "the reader lost bytes");
    let ev = rig.event("__org.chardevd_CLIENT_DISCONNECTED");
    assert_eq!(ev["data"]["client"], 2);
    assert_eq!(ev["data"]["clients"], 1);
    drop(stopped);

    // block: the guest waits for the slowest client (nothing is lost).
    let mut rig = Rig::new("__org.chardevd_max-clients=2,__org.chardevd_client-queue=4K,__org.chardevd_overflow=block");
    let mut fast = rig.client();
    let mut slow = rig.client();
    until("two clients", || client_count(&mut rig) == 2);
    // (More than every buffer on the way can hold: the sockets', the ports'
    // and two 128 KiB reads.)
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 253) as u8).collect();
    let n = data.len();
    let t = std::thread::spawn(move || read_n(&mut fast, n));
    let mut guest = rig.guest.try_clone().unwrap();
    let d2 = data.clone();
    let w = std::thread::spawn(move || guest.write_all(&d2).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!w.is_finished(), "the guest was not held back by the slow client");
    assert_eq!(read_n(&mut slow, n), data);
    assert_eq!(t.join().unwrap(), data);
    w.join().unwrap();
}

#[test]
fn input_first_has_one_writer_and_set_writer_hands_the_role_over() {
    let mut rig = Rig::new("__org.chardevd_max-clients=3,__org.chardevd_input=first,__org.chardevd_client-events=on");
    let mut a = rig.client();
    assert_eq!(rig.event("__org.chardevd_CLIENT_CONNECTED")["data"]["client"], 1);
    let mut b = rig.client();
    let ev = rig.event("__org.chardevd_CLIENT_CONNECTED");
    assert_eq!(ev["data"]["client"], 2);
    assert_eq!(ev["data"]["clients"], 2);
    assert!(ev["data"]["address"].as_str().unwrap().starts_with("unix:"), "{ev}");
    b.write_all(b"watcher").unwrap();
    a.write_all(b"writer").unwrap();
    assert_eq!(read_n(&mut rig.guest, 6), b"writer");
    assert!(quiet(&mut rig.guest, 300), "a watcher's input reached the guest");
    let rows = rig.clients();
    assert_eq!(rows[0]["writer"], true);
    assert_eq!(rows[1]["writer"], false);
    assert_eq!(rows[1]["dropped-in"], 7);
    // The take-over.
    let r = rig.cmd(r#"{"execute":"__org.chardevd_client-set-writer","arguments":{"id":"con","client":2}}"#);
    assert_eq!(r["return"], serde_json::json!({}), "{r}");
    a.write_all(b"old").unwrap();
    b.write_all(b"new").unwrap();
    assert_eq!(read_n(&mut rig.guest, 3), b"new");
    assert!(quiet(&mut rig.guest, 300));
    // Cut the writer off: the role returns to the longest connected.
    let r = rig.cmd(r#"{"execute":"__org.chardevd_client-disconnect","arguments":{"id":"con","client":2}}"#);
    assert_eq!(r["return"], serde_json::json!({}), "{r}");
    let ev = rig.event("__org.chardevd_CLIENT_DISCONNECTED");
    assert_eq!(ev["data"]["client"], 2);
    assert_eq!(ev["data"]["clients"], 1);
    let mut rest = Vec::new();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(b.read_to_end(&mut rest).unwrap_or(0), 0, "the client saw its end");
    a.write_all(b"back").unwrap();
    assert_eq!(read_n(&mut rig.guest, 4), b"back");
    // Errors.
    let r = rig.cmd(r#"{"execute":"__org.chardevd_client-disconnect","arguments":{"id":"con","client":9}}"#);
    assert_eq!(r["error"]["desc"], "Chardev 'con' has no client 9");
    let r = rig.cmd(r#"{"execute":"__org.chardevd_client-disconnect","arguments":{"id":"nope","client":1}}"#);
    assert_eq!(r["error"]["desc"], "Chardev 'nope' not found");
    let r = rig.cmd(r#"{"execute":"__org.chardevd_client-set-writer","arguments":{"id":"g","client":1}}"#);
    assert!(r["error"]["desc"].as_str().unwrap().contains("is not a console"), "{r}");
}

#[test]
fn input_none_makes_every_client_a_watcher() {
    let mut rig = Rig::new("__org.chardevd_max-clients=2,__org.chardevd_input=none");
    let mut a = rig.client();
    until("a client", || client_count(&mut rig) == 1);
    a.write_all(b"ignored").unwrap();
    assert!(quiet(&mut rig.guest, 300));
    rig.guest.write_all(b"seen").unwrap();
    assert_eq!(read_n(&mut a, 4), b"seen");
    let r = rig.cmd(r#"{"execute":"__org.chardevd_client-set-writer","arguments":{"id":"con","client":1}}"#);
    assert_eq!(
        r["error"]["desc"],
        "Chardev 'con' has __org.chardevd_input=none: there is no writer role to give (use first)"
    );
}

#[test]
fn clients_over_the_limit_wait_in_the_backlog_then_get_the_history() {
    let mut rig = Rig::new("__org.chardevd_max-clients=2,__org.chardevd_history=1K");
    let mut a = rig.client();
    let _b = rig.client();
    until("two clients", || client_count(&mut rig) == 2);
    let mut c = rig.client();
    rig.guest.write_all(b"hello\n").unwrap();
    assert_eq!(read_n(&mut a, 6), b"hello\n");
    assert!(quiet(&mut c, 300), "a client over the limit was served");
    assert_eq!(client_count(&mut rig), 2);
    drop(a);
    assert_eq!(read_n(&mut c, 6), b"hello\n", "the waiting client gets the history");
    until("c counted", || client_count(&mut rig) == 2);
    // query-chardev shows the oldest client's filename; the chardev stays open.
    let r = rig.cmd(r#"{"execute":"query-chardev"}"#);
    let row = r["return"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "con")
        .unwrap()
        .clone();
    assert_eq!(row["frontend-open"], true);
    assert!(row["filename"].as_str().unwrap().starts_with("unix:"), "{row}");
}

#[test]
fn console_options_are_checked_over_qmp_and_the_command_line() {
    let srv = chardevd(&[]);
    let mut c = Client::negotiated(&srv.socket);
    let dir = tempfile::tempdir().unwrap();
    let add = |c: &mut Client, data: &str| {
        let r = c.cmd(&format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"x","backend":{{"type":"socket","data":{data}}}}}}}"#
        ));
        serde_json::from_str::<serde_json::Value>(&r).unwrap()
    };
    let path = dir.path().join("s.sock");
    let unix = format!(r#"{{"type":"unix","data":{{"path":"{}"}}}}"#, path.display());
    let r = add(
        &mut c,
        &format!(r#"{{"addr":{unix},"server":false,"__org.chardevd_max-clients":2}}"#),
    );
    assert_eq!(
        r["error"]["desc"],
        "Failed to add chardev 'x': the __org.chardevd_ console options apply to a listening socket only"
    );
    let r = add(&mut c, &format!(r#"{{"addr":{unix},"__org.chardevd_max-clients":0}}"#));
    assert_eq!(
        r["error"]["desc"],
        "Failed to add chardev 'x': Invalid backend: __org.chardevd_max-clients must be between 1 and 1024, not 0"
    );
    let r = add(
        &mut c,
        &format!(r#"{{"addr":{unix},"__org.chardevd_overflow":"sometimes"}}"#),
    );
    assert_eq!(r["error"]["class"], "GenericError");
    let r = add(&mut c, &format!(r#"{{"addr":{unix},"__org.chardevd_max-clients":4}}"#));
    assert_eq!(r["return"], serde_json::json!({}), "{r}");
    let r = c.cmd(r#"{"execute":"__org.chardevd_query-clients","arguments":{"id":"x"}}"#);
    assert_eq!(r, r#"{"return": []}"#);
    // On the command line, sizes take suffixes and words are checked.
    let bad = |args: &[&str]| {
        let mut cmd = std::process::Command::new(chardevd_bin());
        cmd.args(args);
        let out = output_within(cmd, None, 10);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = bad(&[
        "-chardev",
        "socket,id=s,path=/tmp/x.sock,server=on,wait=off,__org.chardevd_input=most",
    ]);
    assert!(
        e.contains("Parameter '__org.chardevd_input' does not accept value 'most'"),
        "{e}"
    );
    let e = bad(&[
        "-chardev",
        "socket,id=s,path=/tmp/x.sock,server=on,wait=off,__org.chardevd_history=lots",
    ]);
    assert!(e.contains("__org.chardevd_history"), "{e}");
}

/// The files of a rotated log, oldest first.
fn rotated(log: &Path, backups: u32) -> Vec<u8> {
    let mut all = Vec::new();
    for i in (1..=backups).rev() {
        if let Ok(b) = std::fs::read(format!("{}.{i}", log.display())) {
            all.extend(b);
        }
    }
    all.extend(std::fs::read(log).unwrap_or_default());
    all
}

#[test]
fn logs_rotate_at_their_size_without_losing_or_repeating_a_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("con.log");
    let mut rig = Rig::new(&format!(
        "__org.chardevd_history=1K,logfile={},__org.chardevd_logsize=4K,__org.chardevd_logbackups=3",
        log.display()
    ));
    let mut sent = Vec::new();
    for i in 0..1000 {
        let line = format!("line {i:04} {}\n", "x".repeat(i % 37));
        sent.extend_from_slice(line.as_bytes());
    }
    rig.guest.write_all(&sent).unwrap();
    let last = format!("line 0999 {}\n", "x".repeat(999 % 37));
    until("the last line in the log", || {
        std::fs::read(&log).is_ok_and(|l| l.ends_with(last.as_bytes()))
    });
    let all = rotated(&log, 3);
    assert!(
        sent.ends_with(&all),
        "the rotated files are the tail of what was sent, in order"
    );
    assert!(
        all.len() > 3 * 3000 && all.len() < sent.len(),
        "{} of {} bytes kept",
        all.len(),
        sent.len()
    );
    for f in [log.clone(), PathBuf::from(format!("{}.1", log.display()))] {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len <= 4096, "{} is {len} bytes", f.display());
    }
    let first = std::fs::read(format!("{}.1", log.display())).unwrap();
    assert!(first.ends_with(b"\n"), "a rotation cuts at a line end when one is near");
    assert!(!Path::new(&format!("{}.4", log.display())).exists());
}

#[test]
fn sighup_reopens_the_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("con.log");
    let moved = tmp.path().join("con.log.old");
    let rig = Rig::new(&format!("__org.chardevd_history=1K,logfile={}", log.display()));
    let mut guest = rig.guest.try_clone().unwrap();
    guest.write_all(b"before\n").unwrap();
    until("the first line", || std::fs::read(&log).is_ok_and(|l| l == b"before\n"));
    std::fs::rename(&log, &moved).unwrap();
    let pid = rig._server.child.id();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    guest.write_all(b"after\n").unwrap();
    until("the new log", || std::fs::read(&log).is_ok_and(|l| l == b"after\n"));
    assert_eq!(std::fs::read(&moved).unwrap(), b"before\n");
}

#[test]
fn unix_sockets_get_their_mode_before_anyone_can_connect() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.sock");
    let qmp = tmp.path().join("q.sock");
    let me = rustix_uid();
    let srv = chardevd(&[
        "-chardev",
        &format!(
            "socket,id=c,path={},server=on,wait=off,__org.chardevd_mode=0640,__org.chardevd_owner={me}",
            path.display()
        ),
        "-qmp",
        &format!("unix:{},server=on,wait=off,__org.chardevd_mode=0600", qmp.display()),
    ]);
    wait_for_socket_file(&qmp);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(&qmp), 0o600);
    let mut c = Client::negotiated(&srv.socket);
    let p2 = tmp.path().join("d.sock");
    let r = c.cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"d","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{}","__org.chardevd_mode":"0660"}}}}}}}}}}}}"#,
        p2.display()
    ));
    assert_eq!(r, r#"{"return": {}}"#);
    assert_eq!(mode(&p2), 0o660);
    let r = c.cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"e","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{}/e.sock","__org.chardevd_mode":"999"}}}}}}}}}}}}"#,
        tmp.path().display()
    ));
    assert!(r.contains("GenericError") && r.contains("__org.chardevd_mode"), "{r}");
}

fn rustix_uid() -> u32 {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
