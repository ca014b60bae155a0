//! Helpers shared by the integration tests: start the daemon binary or real
//! QEMU, and speak raw QMP bytes to them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when running in CI, where missing peers are failures, not skips.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The environment variable that lets tests whose peers are missing pass as
/// skipped (outside CI only).
pub const SKIP_VAR: &str = "CHARDEVD_SKIP_MISSING";

/// A test needs a peer: true if `found`. A missing peer fails the test,
/// with what to install, unless `CHARDEVD_SKIP_MISSING=1` is set outside CI
/// (then it returns false and the test skips, saying so on stderr).
pub fn require(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if in_ci() {
        panic!("{what} is required in CI (CI=true) but was not found; `sh .ci/install-deps` installs it");
    }
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
        eprintln!("SKIP: {what} not found ({SKIP_VAR}=1)");
        return false;
    }
    panic!(
        "{what} not found: `sh .ci/install-deps` installs every test peer; \
         or set {SKIP_VAR}=1 to skip the tests that need it"
    );
}

/// A child process serving QMP on a unix socket; killed on drop.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_socket(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if UnixStream::connect(path).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not listen on {}", path.display());
}

/// The daemon under test: this build's, or `CHARDEVD_BIN` (to run a test
/// against another build, e.g. an older one, to see it fail there).
pub fn chardevd_bin() -> PathBuf {
    std::env::var_os("CHARDEVD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_chardevd")))
}

/// Start the chardevd binary with extra arguments and a QMP socket in a temp dir.
pub fn chardevd(args: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("qmp.sock");
    let mut child = Command::new(chardevd_bin())
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chardevd");
    wait_for_socket(&socket, &mut child);
    Server {
        child,
        socket,
        _dir: dir,
    }
}

/// The reference QEMU binary, if installed.
pub fn qemu_binary() -> Option<PathBuf> {
    let out = Command::new("qemu-system-x86_64").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("version 10.") {
        Some(PathBuf::from("qemu-system-x86_64"))
    } else {
        eprintln!("qemu-system-x86_64 is not QEMU 10: {text}");
        None
    }
}

/// Start real QEMU with no guest and QMP on a unix socket. It runs (no
/// `-S`): `input-send-event` refuses a stopped VM.
pub fn qemu(bin: &Path) -> Server {
    qemu_with_stderr(bin, Stdio::null())
}

/// The same, with QEMU's stderr going to `stderr`.
pub fn qemu_with_stderr(bin: &Path, stderr: Stdio) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("qemu.sock");
    let mut child = Command::new(bin)
        .args(["-machine", "none", "-nodefaults", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn qemu");
    wait_for_socket(&socket, &mut child);
    Server {
        child,
        socket,
        _dir: dir,
    }
}

/// A reply line with what differs between QEMU and chardevd by design, or
/// between two runs, masked: the `package` string and pty numbers.
pub fn mask_package_and_pts(line: &str) -> String {
    let mut s = line.to_owned();
    if let Some(i) = s.find("\"package\": \"") {
        let start = i + "\"package\": \"".len();
        if let Some(len) = s[start..].find('"') {
            s.replace_range(start..start + len, "<pkg>");
        }
    }
    // pty numbers differ between the two runs.
    while let Some(i) = s.find("/dev/pts/") {
        let start = i + "/dev/pts/".len();
        let len = s[start..].bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            break;
        }
        s.replace_range(i..start + len, "<pts>");
    }
    s
}

/// A raw QMP connection.
pub struct Client {
    pub stream: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(path: &Path) -> Client {
        Client::try_connect(path).expect("connect")
    }

    /// Connect, or the error (a server that is gone, a full backlog).
    pub fn try_connect(path: &Path) -> std::io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    /// Connect, read the greeting, negotiate.
    pub fn negotiated(path: &Path) -> Client {
        let mut c = Client::connect(path);
        c.line();
        assert_eq!(c.cmd(r#"{"execute":"qmp_capabilities"}"#), r#"{"return": {}}"#);
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next CRLF-terminated message, without the CRLF.
    pub fn line(&mut self) -> String {
        self.try_line(Duration::from_secs(10)).expect("a reply line")
    }

    pub fn try_line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Some(String::from_utf8(line[..pos].to_vec()).expect("ASCII output"));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }

    /// Send one command line, return the one reply line.
    pub fn cmd(&mut self, json: &str) -> String {
        self.send(json.as_bytes());
        self.send(b"\n");
        self.line()
    }
}

// ---- chardev helpers shared by the backend tests ----
use chardevd as runtime;
use chardevd::backends::{ChardevBackend, ChardevCommon, Pipe};
use chardevd::frontend::Frontend;
use chardevd::frontend::FrontendEvent;

pub fn no_options() -> ChardevCommon {
    ChardevCommon::default()
}

pub async fn next(fe: &mut Frontend) -> FrontendEvent {
    tokio::time::timeout(Duration::from_secs(10), fe.recv())
        .await
        .expect("an event in time")
        .expect("open channel")
}

/// Read frontend events until `want` bytes of data arrived.
pub async fn read_data(fe: &mut Frontend, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        match next(fe).await {
            FrontendEvent::Data(b) => got.extend_from_slice(&b),
            other => panic!("unexpected {other:?} after {} bytes", got.len()),
        }
    }
    got
}

/// A pipe chardev `p` on fresh fifos `DIR/p.in` and `DIR/p.out`, with a frontend.
pub async fn attached_fifo_pipe(h: &runtime::Handle, dir: &std::path::Path) -> (std::path::PathBuf, Frontend) {
    let base = dir.join("p");
    mkfifo(&base.with_extension("in"));
    mkfifo(&base.with_extension("out"));
    let dev = Pipe {
        device: base.to_str().unwrap().into(),
    };
    h.chardev_add("p", ChardevBackend::new(dev)).await.unwrap();
    let mut fe = h.attach("p").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    (base, fe)
}

/// Poll `cond` for up to 10 s (no fixed sleeps: CI machines can be slow).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 10 s: {what}");
}

/// Wait up to 20 s for the daemon's socket file.
pub fn wait_for_socket_file(sock: &std::path::Path) {
    for _ in 0..1000 {
        if sock.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the daemon did not create {}", sock.display());
}

/// Read what a pty slave has within 10 s.
pub fn read_slave(slave: &std::fs::File) -> Vec<u8> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(slave, PollFlags::IN)];
    let ready = poll(&mut fds, Some(&Timespec { tv_sec: 10, tv_nsec: 0 })).unwrap_or(0);
    assert!(ready > 0, "nothing to read from the pty within 10 s");
    let mut buf = [0u8; 4096];
    let n = rustix::io::read(slave, &mut buf).unwrap();
    buf[..n].to_vec()
}

pub fn mkfifo(path: &std::path::Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
}

/// The port of a handle's TCP QMP listener.
pub fn tcp_port(h: &runtime::Handle) -> u16 {
    h.listeners()
        .iter()
        .find_map(|a| match a {
            chardevd::QmpAddr::Tcp { port, .. } => Some(*port),
            _ => None,
        })
        .expect("a TCP listener")
}

/// Run a child to completion, killing it after `secs` (a hung peer must fail
/// the test, not hang CI).
pub fn output_within(mut cmd: Command, input: Option<&[u8]>, secs: u64) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..secs * 10 {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    out
}

/// Whether a program is on the PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A test PKI in QEMU's file names: a CA, a server certificate for
/// 127.0.0.1/localhost, a client certificate (C=GB, L=London, O=Example Org,
/// CN=client.example.com) and another (C=FR, O=Other Org, CN=intruder).
/// Server credentials in `DIR/server`, client credentials in `DIR/client`
/// and `DIR/intruder`.
pub fn make_pki(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca-cert.pem",
        "-days",
        "30",
        "-subj",
        "/C=GB/O=Chardevd Test CA/CN=Chardevd CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    let mk = |name: &str, subj: &str, ext: &str| {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subj,
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca-cert.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            &format!("{name}-cert.pem"),
            "-days",
            "30",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    };
    let leaf = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n";
    mk(
        "server",
        "/C=GB/O=Chardevd Server/CN=localhost",
        &format!("{leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"),
    );
    mk(
        "client",
        "/C=GB/L=London/O=Example Org/CN=client.example.com",
        &format!("{leaf}extendedKeyUsage=clientAuth\n"),
    );
    mk(
        "intruder",
        "/C=FR/O=Other Org/CN=intruder",
        &format!("{leaf}extendedKeyUsage=clientAuth\n"),
    );
    for (sub, files) in [
        (
            "server",
            [
                ("server-cert.pem", "server-cert.pem"),
                ("server-key.pem", "server-key.pem"),
            ],
        ),
        (
            "client",
            [
                ("client-cert.pem", "client-cert.pem"),
                ("client-key.pem", "client-key.pem"),
            ],
        ),
        (
            "intruder",
            [
                ("intruder-cert.pem", "client-cert.pem"),
                ("intruder-key.pem", "client-key.pem"),
            ],
        ),
    ] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(dir.join("ca-cert.pem"), d.join("ca-cert.pem")).unwrap();
        for (from, to) in files {
            std::fs::copy(dir.join(from), d.join(to)).unwrap();
        }
    }
}

/// Cut `input` at the given points (taken modulo its length).
pub fn cut(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    let mut parts = Vec::new();
    let mut at = 0;
    for p in points {
        parts.push(input[at..p].to_vec());
        at = p;
    }
    parts.push(input[at..].to_vec());
    parts
}

/// A process's resident memory, in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A process's open descriptors (0 if it is gone).
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
