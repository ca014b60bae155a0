//! The braille backend against a BrlAPI mock server (a BrlAPI protocol 8
//! server written here from the protocol's definition: version, auth, display
//! size, tty mode, writes, keys) with the daemon as a child process whose
//! frontend is a bridge to a unix socket the test speaks the Baum protocol
//! on; and the connection errors, worded as QEMU (with libbrlapi) words them.
#![cfg(feature = "braille")]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ESC: u8 = 0x1b;

fn packet(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = (payload.len() as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&(ty as u32).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn read_packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).ok()?;
    let size = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let ty = u32::from_be_bytes(head[4..].try_into().unwrap());
    let mut payload = vec![0; size];
    s.read_exact(&mut payload).ok()?;
    Some((ty as u8, payload))
}

#[derive(Clone)]
struct MockConfig {
    version: u32,
    auth: Vec<u8>,
    key: Option<Vec<u8>>,
    size: (u32, u32),
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            version: 8,
            auth: vec![b'N'],
            key: None,
            size: (40, 1),
        }
    }
}

/// Packets a client sent: type and payload.
type Log = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;

/// A BrlAPI server on 127.0.0.1: records the packets clients send, answers
/// requests, and lets the test send keys or hang up.
struct Mock {
    port: u16,
    got: Log,
    conn: Arc<Mutex<Option<TcpStream>>>,
}

impl Mock {
    fn start(cfg: MockConfig) -> Mock {
        // A port above 4101, so that BRLAPI_HOST can name it as N.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(port > 4101);
        let got: Log = Arc::new(Mutex::new(Vec::new()));
        let conn = Arc::new(Mutex::new(None));
        let (g, c) = (got.clone(), conn.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                *c.lock().unwrap() = Some(s.try_clone().unwrap());
                let (cfg, g) = (cfg.clone(), g.clone());
                std::thread::spawn(move || {
                    let _ = s.write_all(&packet(b'v', &cfg.version.to_be_bytes()));
                    let Some(v) = read_packet(&mut s) else { return };
                    g.lock().unwrap().push(v);
                    let offer: Vec<u8> = cfg.auth.iter().flat_map(|a| (*a as u32).to_be_bytes()).collect();
                    let _ = s.write_all(&packet(b'a', &offer));
                    while let Some((ty, payload)) = read_packet(&mut s) {
                        g.lock().unwrap().push((ty, payload.clone()));
                        let reply = match ty {
                            b'a' => {
                                if cfg.key.as_deref() == Some(&payload[4..])
                                    && payload[..4] == (b'K' as u32).to_be_bytes()
                                {
                                    packet(b'A', &[])
                                } else {
                                    let mut e = 17u32.to_be_bytes().to_vec();
                                    e.extend_from_slice(&(b'a' as u32).to_be_bytes());
                                    packet(b'e', &e)
                                }
                            }
                            b's' => {
                                let mut p = cfg.size.0.to_be_bytes().to_vec();
                                p.extend_from_slice(&cfg.size.1.to_be_bytes());
                                packet(b's', &p)
                            }
                            b't' => packet(b'A', &[]),
                            _ => continue,
                        };
                        let _ = s.write_all(&reply);
                    }
                });
            }
        });
        Mock { port, got, conn }
    }

    /// The `N` of `BRLAPI_HOST=127.0.0.1:N`.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port - 4101)
    }

    fn packets(&self, ty: u8) -> Vec<Vec<u8>> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t == ty)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn wait_for(&self, ty: u8, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.packets(ty);
            if p.len() >= n || Instant::now() > deadline {
                return p;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn send_key(&self, code: u64) {
        let mut p = ((code >> 32) as u32).to_be_bytes().to_vec();
        p.extend_from_slice(&(code as u32).to_be_bytes());
        self.conn
            .lock()
            .unwrap()
            .as_mut()
            .unwrap()
            .write_all(&packet(b'k', &p))
            .unwrap();
    }

    fn hang_up(&self) {
        if let Some(s) = self.conn.lock().unwrap().take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The daemon with this BrlAPI environment (nothing inherited that names a
/// tty), its log in `dir/log`.
fn daemon(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (Child, Client) {
    let qmp = dir.join("qmp.sock");
    let _ = std::fs::remove_file(&qmp);
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chardevd"));
    cmd.arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    for k in [
        "BRLAPI_HOST",
        "BRLAPI_AUTH",
        "WINDOWID",
        "CONTROLVT",
        "XDG_VTNR",
        "WINDOWPATH",
        "DISPLAY",
        "WAYLAND_DISPLAY",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    wait_for_socket_file(&qmp);
    (child, Client::negotiated(&qmp))
}

/// What libbrlapi (the library QEMU links) says when it opens a connection
/// with `env`, as QEMU words it (`brlapi__openConnection: ` and
/// `brlapi_strerror`); read through Python's ctypes from the system's
/// libbrlapi, the one brltty installs.
fn libbrlapi_says(env: &[(&str, &str)]) -> Option<String> {
    const PROBE: &str = r#"
import ctypes
lib = ctypes.CDLL("libbrlapi.so.0.8")
lib.brlapi_error_location.restype = ctypes.c_void_p
lib.brlapi_strerror.restype = ctypes.c_char_p
lib.brlapi_strerror.argtypes = [ctypes.c_void_p]
if lib.brlapi_openConnection(None, None) >= 0:
    print("connected")
else:
    print("brlapi__openConnection: " + lib.brlapi_strerror(lib.brlapi_error_location()).decode())
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PROBE]);
    for k in ["BRLAPI_HOST", "BRLAPI_AUTH"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = output_within(cmd, None, 20);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// chardevd's reply to adding a braille chardev is QEMU's: libbrlapi's own
/// words for the same connection.
fn assert_libbrlapi_words(reply: &str, env: &[(&str, &str)]) {
    let Some(said) = libbrlapi_says(env) else {
        require("libbrlapi (brltty) and python3", false);
        return;
    };
    assert_eq!(
        reply,
        format!(r#"{{"error": {{"class": "GenericError", "desc": "Failed to add chardev 'b': {said}"}}}}"#),
        "libbrlapi says: {said}"
    );
}

fn add_braille(c: &mut Client) -> String {
    c.cmd(r#"{"execute": "chardev-add", "arguments": {"id": "b", "backend": {"type": "braille", "data": {}}}}"#)
}

fn read_n(s: &mut UnixStream, n: usize) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = vec![0; n];
    s.read_exact(&mut b).unwrap();
    b
}

#[test]
fn a_baum_display_on_a_brlapi_server() {
    let mock = Mock::start(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let (mut child, mut c) = daemon(
        dir.path(),
        &[("BRLAPI_HOST", &mock.host()), ("CONTROLVT", "7")],
        &[
            "-chardev",
            &format!("socket,id=s,path={},server=on,wait=off", sock.display()),
        ],
    );
    assert_eq!(add_braille(&mut c), r#"{"return": {}}"#);
    assert_eq!(
        mock.wait_for(b'v', 1),
        [8u32.to_be_bytes().to_vec()],
        "the client's version"
    );
    assert_eq!(
        c.cmd(
            r#"{"execute": "device_add", "arguments": {"driver": "bridge", "id": "br", "chardev": "s", "peer": "b"}}"#
        ),
        r#"{"return": {}}"#
    );
    let mut s = UnixStream::connect(&sock).unwrap();

    // The identity: the first write sets BrlAPI up (size, then tty 7).
    s.write_all(&[ESC, 0x84]).unwrap();
    let mut want = vec![ESC, 0x84];
    want.extend_from_slice(b"Baum Vario40\0\0\0\0");
    assert_eq!(read_n(&mut s, want.len()), want);
    assert_eq!(mock.packets(b's'), [Vec::<u8>::new()]);
    assert_eq!(
        mock.packets(b't'),
        [vec![0, 0, 0, 1, 0, 0, 0, 7, 0]],
        "one tty (7), no driver name"
    );

    // Display data: 40 cells, one of them ESC (doubled on the wire), the
    // cursor (dots 7 and 8) on cell 3.
    let mut cells = vec![0u8; 40];
    cells[0] = 0x01; // a
    cells[1] = 0x1b; // dots 1245: g
    cells[2] = 0x03 | 0xc0; // b, cursor
    cells[3] = 0x3f; // dots 123456: =
    cells[4] = 0x28; // dots 46: .
    let mut wire = vec![ESC, 0x01];
    for c in &cells {
        wire.push(*c);
        if *c == ESC {
            wire.push(ESC);
        }
    }
    // Written in two pieces: the packet completes across writes.
    s.write_all(&wire[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    s.write_all(&wire[10..]).unwrap();
    let writes = mock.wait_for(b'w', 1);
    let mut w = 0x7eu32.to_be_bytes().to_vec(); // region, text, and, or, cursor, charset
    w.extend_from_slice(&1u32.to_be_bytes());
    w.extend_from_slice(&40u32.to_be_bytes());
    w.extend_from_slice(&40u32.to_be_bytes());
    let mut text = b"agb=.".to_vec();
    text.resize(40, b' ');
    w.extend_from_slice(&text);
    w.extend_from_slice(&[0; 40]);
    w.extend_from_slice(&cells);
    w.extend_from_slice(&3u32.to_be_bytes());
    w.push(10);
    w.extend_from_slice(b"ISO-8859-1");
    assert_eq!(writes, [w]);

    // Keys: a routing key, a command, a character.
    mock.send_key(0x2000_0000 | 0x1_0000 | 4);
    assert_eq!(read_n(&mut s, 6), [ESC, 0x27, 5, ESC, 0x27, 0]);
    mock.send_key(0x2000_0000 | 1); // LNUP: TR1
    assert_eq!(read_n(&mut s, 6), [ESC, 0x24, 0x08, ESC, 0x24, 0]);
    mock.send_key(b'y' as u64);
    assert_eq!(read_n(&mut s, 8), [ESC, 0x33, 0, 0x3d, ESC, 0x33, 0, 0]);

    // An unfinished display packet: the cell count after 100 ms.
    s.write_all(&[ESC, 0x01, 1, 2, 3]).unwrap();
    assert_eq!(read_n(&mut s, 3), [ESC, 0x01, 40]);

    let q = c.cmd(r#"{"execute": "query-chardev"}"#);
    assert!(
        q.contains(r#"{"frontend-open": true, "filename": "braille", "label": "b"}"#),
        "{q}"
    );

    // The server goes: writes are swallowed, the daemon carries on.
    mock.hang_up();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(&[ESC, 0x05]).unwrap();
    assert!(c.cmd(r#"{"execute": "query-version"}"#).contains("qemu"));
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(log.contains("baum: brlapi_readKey: Unexpected end of file"), "{log}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn without_a_tty_writes_are_dropped_as_qemu_drops_them() {
    let mock = Mock::start(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let (mut child, mut c) = daemon(
        dir.path(),
        &[("BRLAPI_HOST", &mock.host())],
        &[
            "-chardev",
            &format!("socket,id=s,path={},server=on,wait=off", sock.display()),
        ],
    );
    assert_eq!(add_braille(&mut c), r#"{"return": {}}"#);
    c.cmd(r#"{"execute": "device_add", "arguments": {"driver": "bridge", "id": "br", "chardev": "s", "peer": "b"}}"#);
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&[ESC, 0x84]).unwrap();
    assert_eq!(mock.wait_for(b's', 1).len(), 1);
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(&[ESC, 0x84]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(mock.packets(b't').is_empty(), "no tty to ask for");
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 1];
    assert!(s.read(&mut b).is_err(), "nothing answered");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(
        log.matches("baum: brlapi__enterTtyMode: Can't determine tty number")
            .count(),
        2,
        "retried at every write: {log}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn key_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("brlapi.key");
    std::fs::write(&key, b"secret key").unwrap();
    let mock = Mock::start(MockConfig {
        auth: vec![b'K'],
        key: Some(b"secret key".to_vec()),
        ..MockConfig::default()
    });
    let auth = format!("keyfile:{}", key.display());
    let (mut child, mut c) = daemon(
        dir.path(),
        &[("BRLAPI_HOST", &mock.host()), ("BRLAPI_AUTH", &auth)],
        &[],
    );
    assert_eq!(add_braille(&mut c), r#"{"return": {}}"#);
    assert_eq!(mock.packets(b'a').len(), 1);
    let _ = child.kill();
    let _ = child.wait();

    // A wrong key, or none, fails as libbrlapi fails.
    std::fs::write(&key, b"wrong").unwrap();
    let (mut child, mut c) = daemon(
        dir.path(),
        &[("BRLAPI_HOST", &mock.host()), ("BRLAPI_AUTH", &auth)],
        &[],
    );
    let reply = add_braille(&mut c);
    assert_eq!(
        reply,
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'b': brlapi__openConnection: Authentication failed"}}"#
    );
    assert_libbrlapi_words(&reply, &[("BRLAPI_HOST", &mock.host()), ("BRLAPI_AUTH", &auth)]);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn connection_errors_read_as_qemus() {
    let dir = tempfile::tempdir().unwrap();
    // No server: the local socket is missing (then localhost:4101 is tried).
    if !Path::new("/var/lib/BrlAPI/0").exists() && TcpStream::connect("127.0.0.1:4101").is_err() {
        let (mut child, mut c) = daemon(dir.path(), &[], &[]);
        let reply = add_braille(&mut c);
        assert_eq!(
            reply,
            r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'b': brlapi__openConnection: connect: No such file or directory"}}"#
        );
        assert_libbrlapi_words(&reply, &[]);
        let _ = child.kill();
        let _ = child.wait();
    }
    // A TCP host where nothing listens.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let n = free.local_addr().unwrap().port() - 4101;
    drop(free);
    let host = format!("127.0.0.1:{n}");
    let (mut child, mut c) = daemon(dir.path(), &[("BRLAPI_HOST", &host)], &[]);
    let reply = add_braille(&mut c);
    assert_eq!(
        reply,
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'b': brlapi__openConnection: Connection refused"}}"#
    );
    assert_libbrlapi_words(&reply, &[("BRLAPI_HOST", &host)]);
    let _ = child.kill();
    let _ = child.wait();
    // A server of an older protocol.
    let mock = Mock::start(MockConfig {
        version: 7,
        ..MockConfig::default()
    });
    let (mut child, mut c) = daemon(dir.path(), &[("BRLAPI_HOST", &mock.host())], &[]);
    let reply = add_braille(&mut c);
    assert_eq!(
        reply,
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'b': brlapi__openConnection: Bad protocol version"}}"#
    );
    assert_libbrlapi_words(&reply, &[("BRLAPI_HOST", &mock.host())]);
    // The command line says the same.
    let out = output_within(
        {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_chardevd"));
            cmd.args(["-chardev", "braille,id=b"]).env("BRLAPI_HOST", &host);
            cmd
        },
        None,
        20,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("brlapi__openConnection: Connection refused"), "{err}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A real brltty (6.7, headless: no braille, screen or speech driver, so a
/// display of 1x1) as the BrlAPI server: chardevd's braille gets its size,
/// takes a tty, writes and keeps answering; QEMU 10.0.2 and chardevd create
/// the chardev alike.
#[test]
fn a_real_brltty_server() {
    if !require("brltty", have("brltty")) {
        return;
    }
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let n = free.local_addr().unwrap().port() - 4101;
    drop(free);
    let host = format!("127.0.0.1:{n}");
    let mut brltty = Command::new("brltty")
        .args(["-n", "-e", "-q", "-b", "no", "-s", "no", "-x", "no"])
        .arg(format!("--api-parameters=auth=none,host={host}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", n + 4101)).is_err() {
        assert!(Instant::now() < deadline, "brltty did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let (mut child, mut c) = daemon(
        dir.path(),
        &[("BRLAPI_HOST", &host), ("CONTROLVT", "1")],
        &[
            "-chardev",
            &format!("socket,id=s,path={},server=on,wait=off", sock.display()),
        ],
    );
    assert_eq!(add_braille(&mut c), r#"{"return": {}}"#);
    let ours = c.cmd(r#"{"execute": "query-chardev"}"#);
    c.cmd(r#"{"execute": "device_add", "arguments": {"driver": "bridge", "id": "br", "chardev": "s", "peer": "b"}}"#);
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&[ESC, 0x84]).unwrap();
    let mut want = vec![ESC, 0x84];
    want.extend_from_slice(b"Baum Vario01\0\0\0\0");
    assert_eq!(read_n(&mut s, want.len()), want, "brltty's 1x1 display");
    // A cell with the cursor, then more requests: still answered (a write
    // brltty refused would have ended the connection with an exception).
    s.write_all(&[ESC, 0x01, 0x01 | 0xc0, ESC, 0x05, ESC, 0x8a]).unwrap();
    assert_eq!(read_n(&mut s, 3), [ESC, 0x05, 1]);
    assert_eq!(
        read_n(&mut s, 10),
        [ESC, 0x8a, b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0']
    );
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(!log.contains("exception") && !log.contains("baum:"), "{log}");
    let _ = child.kill();
    let _ = child.wait();

    // QEMU with the same server: the same reply and query-chardev row.
    if let Some(bin) = qemu_binary() {
        let qdir = tempfile::tempdir().unwrap();
        let qsock = qdir.path().join("q.sock");
        let mut q = Command::new(bin)
            .args(["-machine", "none", "-nodefaults", "-display", "none", "-qmp"])
            .arg(format!("unix:{},server=on,wait=off", qsock.display()))
            .env("BRLAPI_HOST", &host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_socket_file(&qsock);
        let mut qc = Client::negotiated(&qsock);
        assert_eq!(add_braille(&mut qc), r#"{"return": {}}"#);
        let theirs = qc.cmd(r#"{"execute": "query-chardev"}"#);
        let row = r#"{"frontend-open": false, "filename": "braille", "label": "b"}"#;
        assert!(theirs.contains(row) && ours.contains(row), "{theirs}\n{ours}");
        let _ = q.kill();
        let _ = q.wait();
    } else {
        require("QEMU 10.0 (qemu-system-x86_64)", false);
    }
    let _ = brltty.kill();
    let _ = brltty.wait();
}
