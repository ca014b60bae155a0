//! The data-path soak: a real daemon under QMP load (16 sessions issuing
//! mixed commands without pause, reconnecting now and then) while byte
//! streams run through socket chardevs (plain, telnet, websocket, TLS) and
//! a pty, each bridged to a plain socket whose client checks every byte;
//! the stream clients connect and disconnect every round. RSS and open
//! descriptors are sampled every 10 s and printed as a series; both must
//! stay flat, and the descriptors come back to where they started.
//!
//! `CHARDEVD_SOAK_SECS` sets the length (default 60, as CI runs it; the
//! by-hand run in RELIABILITY.md is 1800 on a release build:
//! `CHARDEVD_SOAK_SECS=1800 cargo test --release --test soak -- --nocapture`).
//! Throughput is printed, never asserted.
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per round of a stream (then both ends reconnect).
const ROUND: usize = 16 << 20;

/// Printable ASCII (no telnet IAC, no CR), position-dependent.
fn pattern(n: usize, seed: u64) -> Vec<u8> {
    (0..n as u64)
        .map(|i| 0x20 + ((i.wrapping_mul(2_654_435_761) ^ seed) % 95) as u8)
        .collect()
}

/// A chardev's filename in query-chardev.
fn filename(c: &mut Client, id: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"query-chardev"}"#)).unwrap();
    v["return"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == id)
        .map(|r| r["filename"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The port of a TCP server chardev (`[disconnected:]KIND:HOST:PORT,...`).
fn port(c: &mut Client, id: &str) -> u16 {
    let f = filename(c, id);
    let head = f.split(',').next().unwrap();
    head.rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{f}"))
}

/// How a stream's writer reaches its chardev.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Plain,
    Telnet,
    Websocket,
    Tls,
    Pty,
}

/// One stream: its writer's way in, and the plain socket it comes out of.
struct Stream {
    kind: Kind,
    id: &'static str,
    out: PathBuf,
}

fn websocket_frames(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 16);
    for chunk in data.chunks(16 << 10) {
        out.push(0x82);
        out.push(0x80 | 126);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        let mask = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&mask);
        out.extend(chunk.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    out
}

// The ring provider is what chardevd's own TLS uses.
#[allow(deprecated)]
fn tls_client(pki: &Path, port: u16) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(pki.join("client/ca-cert.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, TcpStream::connect(("127.0.0.1", port)).unwrap())
}

fn raw(f: &std::fs::File) {
    let mut t = rustix::termios::tcgetattr(f).unwrap();
    t.make_raw();
    rustix::termios::tcsetattr(f, rustix::termios::OptionalActions::Now, &t).unwrap();
}

/// Rounds of `ROUND` bytes through `s` until `stop`; returns the bytes
/// checked. Each round: the reader connects to the out socket, the writer
/// to the chardev (once the out side is connected), all bytes are read
/// back and compared, both hang up.
fn run_stream(s: Stream, qmp: PathBuf, pki: PathBuf, stop: Arc<AtomicBool>, moved: Arc<AtomicU64>) {
    let mut c = Client::negotiated(&qmp);
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let data = pattern(ROUND, round);
        let mut reader = UnixStream::connect(&s.out).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while filename(&mut c, &format!("{}-out", s.id)).starts_with("disconnected:") {
            assert!(Instant::now() < deadline, "{:?}: the out side never connected", s.kind);
            std::thread::sleep(Duration::from_millis(5));
        }
        let sent = data.clone();
        let (kind, id) = (s.kind, s.id);
        let (qmp2, pki2) = (qmp.clone(), pki.clone());
        let writer = std::thread::spawn(move || {
            let mut c = Client::negotiated(&qmp2);
            match kind {
                Kind::Plain | Kind::Telnet => {
                    let mut w = TcpStream::connect(("127.0.0.1", port(&mut c, id))).unwrap();
                    w.write_all(&sent).unwrap();
                    Box::new(w) as Box<dyn Send>
                }
                Kind::Websocket => {
                    let mut w = TcpStream::connect(("127.0.0.1", port(&mut c, id))).unwrap();
                    w.write_all(
                        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                          Sec-WebSocket-Protocol: binary\r\n\r\n",
                    )
                    .unwrap();
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        w.read_exact(&mut b).unwrap();
                        head.push(b[0]);
                    }
                    assert!(head.starts_with(b"HTTP/1.1 101"));
                    w.write_all(&websocket_frames(&sent)).unwrap();
                    Box::new(w)
                }
                Kind::Tls => {
                    let mut w = tls_client(&pki2, port(&mut c, id));
                    w.write_all(&sent).unwrap();
                    w.flush().unwrap();
                    Box::new(w)
                }
                Kind::Pty => {
                    let f = filename(&mut c, id);
                    let path = f.strip_prefix("pty:").unwrap().to_owned();
                    let mut w = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
                    raw(&w);
                    w.write_all(&sent).unwrap();
                    Box::new(w)
                }
            }
        });
        reader.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = vec![0u8; ROUND];
        let mut at = 0;
        while at < ROUND {
            let n = reader.read(&mut got[at..]).unwrap();
            assert!(n > 0, "{:?}: the out side ended after {at} bytes", s.kind);
            at += n;
            moved.fetch_add(n as u64, Ordering::Relaxed);
        }
        assert!(got == data, "{:?}: round {round} corrupted", s.kind);
        let w = writer.join().unwrap();
        drop(w);
        drop(reader);
    }
}

/// One QMP session's mixed commands, reconnecting every 500 commands.
fn run_qmp(n: usize, qmp: PathBuf, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let ring = format!("soak-ring{n}");
    let mut c = Client::negotiated(&qmp);
    let add = format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"{ring}","backend":{{"type":"ringbuf","data":{{"size":65536}}}}}}}}"#
    );
    assert_eq!(c.cmd(&add), r#"{"return": {}}"#);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let reply = match i % 8 {
            0 => c.cmd(r#"{"execute":"query-chardev"}"#),
            1 => c.cmd(&format!(
                r#"{{"execute":"ringbuf-write","arguments":{{"device":"{ring}","data":"{}"}}}}"#,
                "q".repeat(1024)
            )),
            2 => c.cmd(&format!(
                r#"{{"execute":"ringbuf-read","arguments":{{"device":"{ring}","size":4096,"format":"base64"}}}}"#
            )),
            3 => c.cmd(&format!(
                r#"{{"execute":"chardev-add","arguments":{{"id":"soak-null{n}","backend":{{"type":"null","data":{{}}}}}}}}"#
            )),
            4 => c.cmd(&format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"soak-null{n}"}}}}"#)),
            5 => c.cmd(r#"{"execute":"__org.chardevd_query-stats"}"#),
            6 => c.cmd(&format!(r#"{{"execute":"chardev-send-break","arguments":{{"id":"{ring}"}}}}"#)),
            _ => c.cmd(r#"{"execute":"query-version"} {]"#),
        };
        assert!(
            reply.starts_with(r#"{"return""#) || reply.starts_with(r#"{"error""#),
            "{reply}"
        );
        if i % 8 == 7 {
            // The second message of that line: a parse error.
            assert!(c.line().contains("JSON parse error"));
        }
        done.fetch_add(1, Ordering::Relaxed);
        if i.is_multiple_of(500) {
            c = Client::negotiated(&qmp);
        }
    }
}

#[test]
fn the_data_path_holds_steady_under_load() {
    if !require("openssl", have("openssl")) {
        return;
    }
    let secs: u64 = std::env::var("CHARDEVD_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    make_pki(&pki);
    let creds = format!(
        "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=off",
        pki.join("server").display()
    );
    let ins = [
        (
            Kind::Plain,
            "plain",
            "socket,id=plain,host=127.0.0.1,port=0,server=on,wait=off".to_owned(),
        ),
        (
            Kind::Telnet,
            "telnet",
            "socket,id=telnet,host=127.0.0.1,port=0,server=on,wait=off,telnet=on".to_owned(),
        ),
        (
            Kind::Websocket,
            "ws",
            "socket,id=ws,host=127.0.0.1,port=0,server=on,wait=off,websocket=on".to_owned(),
        ),
        (
            Kind::Tls,
            "tls",
            "socket,id=tls,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0".to_owned(),
        ),
        (Kind::Pty, "pty", "pty,id=pty".to_owned()),
    ];
    let mut args: Vec<String> = vec!["-object".into(), creds];
    let mut streams = Vec::new();
    for (kind, id, chardev) in &ins {
        let out = dir.path().join(format!("{id}.out"));
        args.extend([
            "-chardev".into(),
            chardev.clone(),
            "-chardev".into(),
            format!("socket,id={id}-out,path={},server=on,wait=off", out.display()),
            "-device".into(),
            format!("bridge,id={id}-br,chardev={id},peer={id}-out"),
        ]);
        streams.push(Stream { kind: *kind, id, out });
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = chardevd(&argv);
    let pid = d.child.id();
    let qmp = d.socket.clone();
    // The baseline: the daemon with its chardevs, no client of any kind.
    std::thread::sleep(Duration::from_millis(300));
    let (fds0, rss0) = (fds(pid), rss_kib(pid));
    let stop = Arc::new(AtomicBool::new(false));
    let moved: Vec<Arc<AtomicU64>> = (0..streams.len()).map(|_| Arc::default()).collect();
    let commands = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for (s, m) in streams.into_iter().zip(&moved) {
        let (q, p, st, m) = (qmp.clone(), pki.clone(), stop.clone(), m.clone());
        threads.push(std::thread::spawn(move || run_stream(s, q, p, st, m)));
    }
    for n in 0..16 {
        let (q, st, done) = (qmp.clone(), stop.clone(), commands.clone());
        threads.push(std::thread::spawn(move || run_qmp(n, q, st, done)));
    }
    let start = Instant::now();
    let mut series = Vec::new();
    let mut last = (Instant::now(), vec![0u64; moved.len()], 0u64);
    eprintln!("soak: {secs} s; baseline rss {rss0} KiB, {fds0} descriptors");
    eprintln!("   t(s)  rss(KiB)  fds  MB/s per stream (plain telnet ws tls pty)  QMP cmds/s");
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(10).min(Duration::from_secs(secs).saturating_sub(start.elapsed())));
        assert!(!threads.iter().any(|t| t.is_finished()), "a load thread died");
        let now = Instant::now();
        let dt = now.duration_since(last.0).as_secs_f64();
        let bytes: Vec<u64> = moved.iter().map(|m| m.load(Ordering::Relaxed)).collect();
        let rates: Vec<String> = bytes
            .iter()
            .zip(&last.1)
            .map(|(b, l)| format!("{:6.1}", (b - l) as f64 / dt / 1e6))
            .collect();
        let cmds = commands.load(Ordering::Relaxed);
        let (rss, n) = (rss_kib(pid), fds(pid));
        eprintln!(
            "{:7.0} {:9} {:4}  {}  {:10.0}",
            start.elapsed().as_secs_f64(),
            rss,
            n,
            rates.join(" "),
            (cmds - last.2) as f64 / dt
        );
        series.push((rss, n));
        last = (now, bytes, cmds);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a load thread failed");
    }
    // Everyone hung up: the descriptors come back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fds(pid) > fds0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        fds(pid) <= fds0,
        "{} descriptors open after the soak, {fds0} before",
        fds(pid)
    );
    // Memory: the second half never grows past the first half's peak by
    // more than a quarter (and 16 MiB of allocator slack).
    let half = series.len().div_ceil(2);
    let peak = series[..half].iter().map(|s| s.0).max().unwrap_or(rss0);
    let late = series[half..].iter().map(|s| s.0).max().unwrap_or(0);
    assert!(late <= peak + peak / 4 + (16 << 10), "RSS grew: {series:?}");
    let total: u64 = moved.iter().map(|m| m.load(Ordering::Relaxed)).sum();
    eprintln!(
        "soak: {:.0} MB through the streams, {} QMP commands",
        total as f64 / 1e6,
        commands.load(Ordering::Relaxed)
    );
}
