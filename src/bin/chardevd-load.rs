//! `chardevd-load`: a load generator that drives chardevd, real QEMU, socat
//! or a raw echo server with the same byte streams, so their figures can be
//! compared side by side (see `benches/compare.sh` and BENCHMARKS.md).
//!
//! ```text
//! chardevd-load --connect ADDR [--connect ADDR ...] --workload NAME
//!               [--sessions N] [--seconds S] [--depth D] [--payload BYTES]
//!               [--count N] [--kind null|ringbuf|socket] [--peer ADDR]
//!               [--pid PID] [--format table|kv|json]
//! chardevd-load --echo-server PATH
//! ```
//! `ADDR` is `unix:PATH`, `tcp:HOST:PORT` or a bare path (`--socket PATH`
//! is the same as `--connect unix:PATH`). Sessions are spread over the
//! addresses round-robin (QEMU serves one client per `-qmp` socket, so give
//! it one socket per session).
//!
//! QMP workloads (one operation = the commands listed):
//! - `query`: `query-chardev`.
//! - `write`: `ringbuf-write` of PAYLOAD bytes in base64.
//! - `read`: `ringbuf-write` then `ringbuf-read` of PAYLOAD bytes in base64.
//! - `bigread`: a ring of PAYLOAD bytes (default 64 MiB) filled by 1 MiB
//!   writes, then read whole in one `ringbuf-read` as base64.
//! - `churn`: `chardev-add` + `chardev-remove` of a null chardev.
//! - `scale`: first adds COUNT chardevs of KIND (the add rate and, with
//!   `--pid`, the server's RSS per chardev are reported), then `query-chardev`.
//! - `idle`: opens SESSIONS sessions that do nothing; with `--pid`, the RSS
//!   per idle session is reported.
//! - `events` (chardevd only): one driver session creates COUNT `port`
//!   frontends and toggles them open and closed; SESSIONS subscribers count
//!   the `VSERPORT_CHANGE` events they get and their latency (arrival time
//!   minus the event's timestamp).
//!
//! Byte workloads (no QMP):
//! - `ping`: write PAYLOAD bytes, read them back (against `--echo-server`,
//!   the raw floor).
//! - `relay-stream`: write PAYLOAD-byte chunks into ADDR as fast as possible
//!   and count what comes out of `--peer ADDR` (a relay between the two).
//! - `relay-ping`: PAYLOAD bytes into ADDR, read at the peer, sent back by
//!   the peer, read again at ADDR: one relay round trip each way.
//! - `fanout`: a console's fan-out. A pty is made and its slave linked at
//!   `--pty-link PATH` (the server under test serves that "serial line");
//!   SESSIONS readers connect to ADDR, plus one more client in a child
//!   process that is stopped (SIGSTOP) once connected; then PAYLOAD-byte
//!   writes go into the pty as fast as the server takes them. Figures: the
//!   producer's rate and each reader's (min, median).
//!
//! `--depth` operations are kept in flight per session (1 = sequential).
//! On a terminal, progress is shown on stderr. The result is a table (default),
//! one `key=value` line (`--format kv`) or one JSON object (`--format json`):
//! ops, ops/s, MB/s, latency p50/p99/max in µs and, with `--pid`, the
//! server's RSS and peak RSS.
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
enum Addr {
    Unix(String),
    Tcp(String),
}

impl Addr {
    fn parse(s: &str) -> Addr {
        if let Some(p) = s.strip_prefix("unix:") {
            Addr::Unix(p.to_owned())
        } else if let Some(t) = s.strip_prefix("tcp:") {
            Addr::Tcp(t.to_owned())
        } else {
            Addr::Unix(s.to_owned())
        }
    }

    fn to_arg(&self) -> String {
        match self {
            Addr::Unix(p) => format!("unix:{p}"),
            Addr::Tcp(t) => format!("tcp:{t}"),
        }
    }

    fn connect(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Addr::Unix(p) => Conn::Unix(UnixStream::connect(p)?),
            Addr::Tcp(t) => {
                let s = TcpStream::connect(t)?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
        })
    }
}

/// A unix or TCP connection.
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn set_timeout(&self, t: Duration) {
        let _ = match self {
            Conn::Unix(s) => s.set_read_timeout(Some(t)),
            Conn::Tcp(s) => s.set_read_timeout(Some(t)),
        };
    }

    fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone)]
struct Opts {
    addrs: Vec<Addr>,
    peer: Option<Addr>,
    workload: String,
    sessions: usize,
    seconds: f64,
    depth: usize,
    payload: Option<usize>,
    count: usize,
    kind: String,
    pid: Option<u32>,
    format: String,
    pty_link: Option<String>,
    stopped: usize,
}

impl Opts {
    fn payload(&self) -> usize {
        self.payload.unwrap_or(match self.workload.as_str() {
            "bigread" => 64 << 20,
            "ping" => 32,
            "relay-stream" => 65536,
            "relay-ping" => 1,
            _ => 48 * 1024,
        })
    }
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        addrs: Vec::new(),
        peer: None,
        workload: "query".into(),
        sessions: 1,
        seconds: 2.0,
        depth: 1,
        payload: None,
        count: 10_000,
        kind: "null".into(),
        pid: None,
        format: "table".into(),
        pty_link: None,
        stopped: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut v = || it.next().ok_or(format!("{a} needs a value"));
        fn num<T: std::str::FromStr>(a: &str, v: String) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e| format!("{a}: {e}"))
        }
        match a.as_str() {
            "--socket" => o.addrs.push(Addr::Unix(v()?)),
            "--connect" => o.addrs.push(Addr::parse(&v()?)),
            "--peer" => o.peer = Some(Addr::parse(&v()?)),
            "--pty-link" => o.pty_link = Some(v()?),
            "--stopped" => o.stopped = num(&a, v()?)?,
            "--workload" => o.workload = v()?,
            "--sessions" => o.sessions = num(&a, v()?)?,
            "--seconds" => o.seconds = num(&a, v()?)?,
            "--depth" => o.depth = num::<usize>(&a, v()?)?.max(1),
            "--payload" => o.payload = Some(num(&a, v()?)?),
            "--count" => o.count = num(&a, v()?)?,
            "--kind" => o.kind = v()?,
            "--pid" => o.pid = Some(num(&a, v()?)?),
            "--format" => o.format = v()?,
            "--sink" => {
                // fanout's stopped client: connect, say so, read for ever.
                let mut c = Addr::parse(&v()?).connect().map_err(|e| e.to_string())?;
                let _ = std::io::stdout().write_all(b"!");
                let _ = std::io::stdout().flush();
                let mut buf = vec![0u8; 1 << 16];
                while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                std::process::exit(0);
            }
            "--echo-server" => {
                let path = v()?;
                echo_server(&path).map_err(|e| format!("echo server {path}: {e}"))?;
                std::process::exit(0);
            }
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.addrs.is_empty() {
        return Err("--connect (or --socket) is required (--help for the usage)".into());
    }
    if !WORKLOADS.contains(&o.workload.as_str()) {
        return Err(format!(
            "unknown workload {:?}: one of {}",
            o.workload,
            WORKLOADS.join(", ")
        ));
    }
    if o.workload.starts_with("relay") && o.peer.is_none() {
        return Err("relay workloads need --peer".into());
    }
    if o.workload == "fanout" && o.pty_link.is_none() {
        return Err("fanout needs --pty-link PATH".into());
    }
    Ok(o)
}

/// Every workload `--workload` takes.
const WORKLOADS: &[&str] = &[
    "query",
    "write",
    "read",
    "bigread",
    "churn",
    "scale",
    "idle",
    "events",
    "ping",
    "relay-stream",
    "relay-ping",
    "fanout",
];

const HELP: &str = "\
chardevd-load: drive a QMP endpoint (chardevd or QEMU), a relay or an echo server

usage:
  chardevd-load --connect ADDR [--connect ADDR ...] --workload NAME
                [--sessions N] [--seconds S] [--depth D] [--payload BYTES]
                [--count N] [--kind null|ringbuf|socket] [--peer ADDR]
                [--pid PID] [--format table|kv|json]
  chardevd-load --echo-server PATH

ADDR is unix:PATH, tcp:HOST:PORT or a path (--socket PATH is --connect unix:PATH).
Sessions are spread over the addresses round-robin (QEMU serves one client
per -qmp socket: give it one socket per session).

QMP workloads (one operation = the commands listed):
  query     query-chardev
  write     ringbuf-write of PAYLOAD bytes in base64
  read      ringbuf-write then ringbuf-read of PAYLOAD bytes in base64
  bigread   a ring of PAYLOAD bytes (default 64 MiB) filled by 1 MiB writes, read whole
  churn     chardev-add + chardev-remove of a null chardev (sent together)
  scale     add COUNT chardevs of KIND (adds/s; with --pid, RSS per chardev), then query-chardev
  idle      open SESSIONS sessions that do nothing (with --pid, RSS per session)
  events    (chardevd) a driver toggles COUNT port frontends; SESSIONS subscribers
            count VSERPORT_CHANGE events and their latency
Byte workloads:
  ping          PAYLOAD bytes out and back (against --echo-server: the raw floor)
  relay-stream  PAYLOAD-byte chunks into ADDR, counted out of --peer ADDR
  relay-ping    PAYLOAD bytes into ADDR, back from --peer, read again at ADDR
  fanout        PAYLOAD-byte writes into a pty linked at --pty-link PATH, read
                by SESSIONS clients of ADDR while --stopped N more (default 1)
                are stopped

--depth D keeps D operations in flight per session (1: sequential).
Results: ops, ops/s, MB/s, latency p50/p99/max in µs, and with --pid the
server's RSS and peak RSS; progress on stderr when it is a terminal.
";

/// The raw floor's far end: echo every byte on every connection.
fn echo_server(path: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    for c in l.incoming() {
        let mut c = c?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 || c.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

fn base64(n: usize) -> String {
    use base64::Engine as _;
    let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Memory figures of a process, in kB (`VmRSS`, `VmHWM`).
fn rss_kb(pid: Option<u32>) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// One negotiated QMP session.
struct Session {
    w: Conn,
    r: BufReader<Conn>,
    line: String,
}

impl Session {
    fn open(addr: &Addr) -> std::io::Result<Session> {
        let w = addr.connect()?;
        let mut s = Session {
            r: BufReader::with_capacity(1 << 20, w.try_clone()?),
            w,
            line: String::new(),
        };
        s.read_line()?;
        s.command("{\"execute\":\"qmp_capabilities\"}")?;
        Ok(s)
    }

    fn read_line(&mut self) -> std::io::Result<usize> {
        self.line.clear();
        let n = self.r.read_line(&mut self.line)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        Ok(n)
    }

    /// The next reply (events are skipped); an error reply is an error.
    fn reply(&mut self) -> std::io::Result<usize> {
        loop {
            let n = self.read_line()?;
            if self.line.starts_with("{\"timestamp\"") {
                continue;
            }
            if self.line.starts_with("{\"error\"") {
                return Err(std::io::Error::other(self.line.trim().to_owned()));
            }
            return Ok(n);
        }
    }

    fn command(&mut self, c: &str) -> std::io::Result<usize> {
        self.w.write_all(c.as_bytes())?;
        self.w.write_all(b"\n")?;
        self.reply()
    }
}

/// What one session measured.
#[derive(Default)]
struct Tally {
    ops: u64,
    bytes: u64,
    lat_us: Vec<u32>,
    /// Extra figures (name, value) of this workload.
    extra: Vec<(String, f64)>,
    /// When the session's last operation ended.
    end: Option<Instant>,
}

fn ring_name(session: usize) -> String {
    format!("load{}-{session}", std::process::id())
}

fn ring_write(dev: &str, payload: &str) -> String {
    format!(r#"{{"execute":"ringbuf-write","arguments":{{"device":"{dev}","data":"{payload}","format":"base64"}}}}"#)
}

fn ring_read(dev: &str, size: usize) -> String {
    format!(r#"{{"execute":"ringbuf-read","arguments":{{"device":"{dev}","size":{size},"format":"base64"}}}}"#)
}

fn chardev_add(id: &str, kind: &str, dir: &str) -> String {
    let backend = match kind {
        "ringbuf" => r#"{"type":"ringbuf","data":{"size":65536}}"#.to_owned(),
        "socket" => format!(
            r#"{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{dir}/{id}.sock"}}}},"server":true,"wait":false}}}}"#
        ),
        _ => r#"{"type":"null","data":{}}"#.to_owned(),
    };
    format!(r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{backend}}}}}"#)
}

/// The commands of one operation (one reply expected for each).
fn op_commands(o: &Opts, session: usize, i: u64, payload: &str) -> Vec<String> {
    let dev = ring_name(session);
    match o.workload.as_str() {
        "query" | "scale" => vec![r#"{"execute":"query-chardev"}"#.to_owned()],
        "write" => vec![ring_write(&dev, payload)],
        "read" => vec![ring_write(&dev, payload), ring_read(&dev, o.payload())],
        "bigread" => {
            let mut v: Vec<String> = (0..o.payload().div_ceil(1 << 20))
                .map(|_| ring_write(&dev, payload))
                .collect();
            v.push(ring_read(&dev, o.payload()));
            v
        }
        _ => {
            let id = format!("c{session}-{i}");
            vec![
                chardev_add(&id, "null", ""),
                format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"{id}"}}}}"#),
            ]
        }
    }
}

/// A QMP session running `query`, `write`, `read`, `bigread`, `churn` or `scale`.
fn run_qmp(o: &Opts, idx: usize, stop: &AtomicBool, progress: &AtomicU64, start: &dyn Fn()) -> std::io::Result<Tally> {
    let mut s = Session::open(&o.addrs[idx % o.addrs.len()])?;
    let mut t = Tally::default();
    let payload = match o.workload.as_str() {
        "write" | "read" => base64(o.payload()),
        "bigread" => base64(o.payload().min(1 << 20)),
        _ => String::new(),
    };
    if matches!(o.workload.as_str(), "write" | "read" | "bigread") {
        let size = o.payload().next_power_of_two().max(4096);
        s.command(&format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"{}","backend":{{"type":"ringbuf","data":{{"size":{size}}}}}}}}}"#,
            ring_name(idx)
        ))?;
    }
    if o.workload == "scale" && idx == 0 {
        let dir = std::env::temp_dir().join(format!("chardevd-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let dir = dir.to_string_lossy().into_owned();
        let before = rss_kb(o.pid);
        let t0 = Instant::now();
        // Adds are pipelined 64 at a time (one reply each).
        let mut n = 0;
        while n < o.count {
            let batch: String = (n..o.count.min(n + 64))
                .map(|k| chardev_add(&format!("s{k}"), &o.kind, &dir) + "\n")
                .collect();
            s.w.write_all(batch.as_bytes())?;
            for _ in n..o.count.min(n + 64) {
                s.reply()?;
            }
            n = o.count.min(n + 64);
        }
        let secs = t0.elapsed().as_secs_f64();
        t.extra.push(("adds_per_sec".into(), o.count as f64 / secs));
        std::thread::sleep(Duration::from_millis(300));
        if let (Some(b), Some(a)) = (before, rss_kb(o.pid)) {
            t.extra.push((
                "rss_per_chardev_b".into(),
                (a.0 as f64 - b.0 as f64) * 1024.0 / o.count as f64,
            ));
        }
    }
    start();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let mut batch = String::new();
        let mut expect = 0;
        for _ in 0..o.depth {
            for c in op_commands(o, idx, i, &payload) {
                batch.push_str(&c);
                batch.push('\n');
                expect += 1;
            }
            i += 1;
        }
        s.w.write_all(batch.as_bytes())?;
        for _ in 0..expect {
            t.bytes += s.reply()? as u64;
        }
        t.lat_us.push((t0.elapsed().as_micros() / o.depth as u128) as u32);
        t.ops += o.depth as u64;
        progress.fetch_add(o.depth as u64, Ordering::Relaxed);
        match o.workload.as_str() {
            "write" | "read" | "bigread" => t.bytes += (o.payload() * o.depth) as u64,
            _ => {}
        }
    }
    Ok(t)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The `timestamp` of an event line, in µs since the epoch.
fn event_time_us(line: &str) -> Option<i64> {
    let num = |key: &str| -> Option<i64> {
        let rest = &line[line.find(key)? + key.len()..];
        let rest = rest.trim_start_matches([':', ' ', '"']);
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    Some(num("\"seconds\"")? * 1_000_000 + num("\"microseconds\"")?)
}

/// An `events` subscriber: counts `VSERPORT_CHANGE` events until stopped.
fn run_subscriber(
    o: &Opts,
    idx: usize,
    stop: &AtomicBool,
    progress: &AtomicU64,
    start: &dyn Fn(),
) -> std::io::Result<Tally> {
    let mut s = Session::open(&o.addrs[idx % o.addrs.len()])?;
    if let Conn::Unix(u) = &s.w {
        u.set_read_timeout(Some(Duration::from_millis(200)))?;
    }
    if let Conn::Tcp(c) = &s.w {
        c.set_read_timeout(Some(Duration::from_millis(200)))?;
    }
    start();
    let mut t = Tally::default();
    s.line.clear();
    while !stop.load(Ordering::Relaxed) {
        // A timeout leaves a partial line in `line`; the next read completes it.
        match s.r.read_line(&mut s.line) {
            Ok(0) => return Err(std::io::Error::other("connection closed")),
            Ok(_) => {
                if s.line.contains("\"VSERPORT_CHANGE\"") {
                    if let Some(ts) = event_time_us(&s.line) {
                        t.lat_us.push((now_us() - ts).max(0) as u32);
                    }
                    t.ops += 1;
                    t.bytes += s.line.len() as u64;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                s.line.clear();
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(t)
}

/// The `events` driver: COUNT ports, toggled round after round.
fn run_event_driver(o: &Opts, stop: &AtomicBool, start: &dyn Fn()) -> std::io::Result<Tally> {
    let mut s = Session::open(&o.addrs[0])?;
    let pid = std::process::id();
    for k in 0..o.count {
        s.command(&chardev_add(&format!("ev{pid}-{k}"), "null", ""))?;
        s.command(&format!(
            r#"{{"execute":"device_add","arguments":{{"driver":"port","id":"p{pid}-{k}","chardev":"ev{pid}-{k}"}}}}"#
        ))?;
    }
    start();
    let mut t = Tally::default();
    let mut open = true;
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        for chunk in (0..o.count).collect::<Vec<_>>().chunks(64) {
            let batch: String = chunk
                .iter()
                .map(|k| {
                    format!(
                        r#"{{"execute":"__org.chardevd_port-set-open","arguments":{{"id":"p{pid}-{k}","open":{open}}}}}"#
                    ) + "\n"
                })
                .collect();
            s.w.write_all(batch.as_bytes())?;
            for _ in chunk {
                s.reply()?;
            }
        }
        t.ops += o.count as u64;
        open = !open;
        // QEMU's rate limit lets one VSERPORT_CHANGE per id through per
        // second, and a held event keeps its timestamp: the next round starts
        // a second after this one ended, so no event of it is held.
        let _ = t0;
        let until = Instant::now() + Duration::from_millis(1050);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    t.extra.push(("toggles".into(), t.ops as f64));
    t.ops = 0;
    Ok(t)
}

/// `ping`: PAYLOAD bytes out, the same back.
fn run_ping(o: &Opts, idx: usize, stop: &AtomicBool, progress: &AtomicU64, start: &dyn Fn()) -> std::io::Result<Tally> {
    let mut c = o.addrs[idx % o.addrs.len()].connect()?;
    let msg = vec![b'p'; o.payload()];
    let mut back = vec![0u8; o.payload()];
    start();
    round_trips(stop, progress, msg.len() as u64, || {
        c.write_all(&msg)?;
        c.read_exact(&mut back)
    })
}

/// Run `op` until `stop`, timing each call as one operation of `bytes`.
fn round_trips(
    stop: &AtomicBool,
    progress: &AtomicU64,
    bytes: u64,
    mut op: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<Tally> {
    let mut t = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        op()?;
        t.lat_us.push(t0.elapsed().as_micros() as u32);
        t.ops += 1;
        t.bytes += bytes;
        progress.fetch_add(1, Ordering::Relaxed);
    }
    Ok(t)
}

/// Connect both ends of a relay: `addr` first (socat accepts its first
/// address first), then the peer; wait until a probe byte crosses.
fn relay_ends(o: &Opts) -> std::io::Result<(Conn, Conn)> {
    let mut a = o.addrs[0].connect()?;
    let peer = o.peer.as_ref().expect("checked in parse");
    let mut b = loop {
        match peer.connect() {
            Ok(b) => break b,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    a.write_all(b"!")?;
    let mut one = [0u8; 1];
    b.read_exact(&mut one)?;
    Ok((a, b))
}

/// `relay-stream`: PAYLOAD-byte writes into one end, bytes counted at the other.
fn run_relay_stream(o: &Opts, stop: &AtomicBool, progress: &AtomicU64, start: &dyn Fn()) -> std::io::Result<Tally> {
    let (mut a, mut b) = relay_ends(o)?;
    let chunk = vec![b'x'; o.payload().max(1)];
    start();
    let writer_stop = Arc::new(AtomicBool::new(false));
    let ws = writer_stop.clone();
    let writer = std::thread::spawn(move || {
        while !ws.load(Ordering::Relaxed) {
            if a.write_all(&chunk).is_err() {
                break;
            }
        }
        a
    });
    let mut t = Tally::default();
    let mut buf = vec![0u8; 1 << 17];
    while !stop.load(Ordering::Relaxed) {
        let n = b.read(&mut buf)?;
        if n == 0 {
            break;
        }
        t.bytes += n as u64;
        progress.fetch_add(n as u64, Ordering::Relaxed);
    }
    t.end = Some(Instant::now());
    writer_stop.store(true, Ordering::Relaxed);
    // Drain so the writer is not left blocked on a full relay.
    if let Conn::Unix(u) = &b {
        u.set_read_timeout(Some(Duration::from_millis(300)))?;
    }
    if let Conn::Tcp(s) = &b {
        s.set_read_timeout(Some(Duration::from_millis(300)))?;
    }
    while matches!(b.read(&mut buf), Ok(n) if n > 0) {}
    drop(b);
    let _ = writer.join();
    t.ops = t.bytes / o.payload().max(1) as u64;
    Ok(t)
}

/// `relay-ping`: PAYLOAD bytes through the relay and back.
fn run_relay_ping(o: &Opts, stop: &AtomicBool, progress: &AtomicU64, start: &dyn Fn()) -> std::io::Result<Tally> {
    let (mut a, mut b) = relay_ends(o)?;
    let msg = vec![b'r'; o.payload().max(1)];
    let mut buf = vec![0u8; msg.len()];
    start();
    round_trips(stop, progress, 2 * msg.len() as u64, || {
        a.write_all(&msg)?;
        b.read_exact(&mut buf)?;
        b.write_all(&buf)?;
        a.read_exact(&mut buf)
    })
}

/// `fanout`: see the module's doc.
fn run_fanout(o: &Opts, stop: &AtomicBool, progress: &AtomicU64, start: &dyn Fn()) -> std::io::Result<Tally> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let slave = ptsname(&master, Vec::new())?
        .into_string()
        .map_err(std::io::Error::other)?;
    // Raw, no echo, on the slave (the server sets its own mode too).
    let s = std::fs::OpenOptions::new().read(true).write(true).open(&slave)?;
    let mut tio = rustix::termios::tcgetattr(&s)?;
    tio.make_raw();
    rustix::termios::tcsetattr(&s, rustix::termios::OptionalActions::Now, &tio)?;
    let link = o.pty_link.clone().expect("checked in parse");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&slave, &link)?;
    let connect = |addr: &Addr| -> std::io::Result<Conn> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match addr.connect() {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    };
    let readers: Vec<Conn> = (0..o.sessions)
        .map(|_| connect(&o.addrs[0]))
        .collect::<Result<_, _>>()?;
    // The stopped clients: child processes that connect and read, stopped.
    let mut children = Vec::new();
    for _ in 0..o.stopped {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["--sink", &o.addrs[0].to_arg()])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut ready = [0u8; 1];
        child.stdout.as_mut().expect("piped").read_exact(&mut ready)?;
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &child.id().to_string()])
            .status();
        children.push(child);
    }
    drop(s);
    std::thread::sleep(Duration::from_millis(500));
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..readers.len()).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let reader_threads: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let (counts, done) = (counts.clone(), done.clone());
            std::thread::spawn(move || {
                c.set_timeout(Duration::from_millis(200));
                let mut buf = vec![0u8; 1 << 16];
                while !done.load(Ordering::Relaxed) {
                    match c.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            counts[i].fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        }
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    start();
    let t0 = Instant::now();
    let chunk = vec![b'f'; o.payload().max(1)];
    let mut t = Tally::default();
    let mut off = 0;
    while !stop.load(Ordering::Relaxed) {
        let fds = &mut [rustix::event::PollFd::new(&master, rustix::event::PollFlags::OUT)];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        if rustix::event::poll(fds, Some(&timeout)).unwrap_or(0) == 0 {
            continue;
        }
        match rustix::io::write(&master, &chunk[off..]) {
            Ok(n) => {
                t.bytes += n as u64;
                progress.fetch_add(n as u64, Ordering::Relaxed);
                off = (off + n) % chunk.len();
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut rates: Vec<f64> = counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed) as f64 / secs / 1e6)
        .collect();
    done.store(true, Ordering::Relaxed);
    for r in reader_threads {
        let _ = r.join();
    }
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_file(&link);
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    t.extra.push((
        "reader_min_kb_per_sec".into(),
        rates.first().copied().unwrap_or(0.0) * 1e3,
    ));
    t.extra.push(("reader_median_kb_per_sec".into(), median * 1e3));
    t.ops = t.bytes / o.payload().max(1) as u64;
    t.end = Some(Instant::now());
    Ok(t)
}

/// `idle`: SESSIONS negotiated sessions that send nothing.
fn run_idle(o: &Opts) -> std::io::Result<Tally> {
    let before = rss_kb(o.pid);
    let sessions: Vec<Session> = (0..o.sessions)
        .map(|i| Session::open(&o.addrs[i % o.addrs.len()]))
        .collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_millis(500));
    let mut t = Tally::default();
    if let (Some(b), Some(a)) = (before, rss_kb(o.pid)) {
        t.extra.push((
            "rss_per_session_b".into(),
            (a.0 as f64 - b.0 as f64) * 1024.0 / o.sessions as f64,
        ));
    }
    t.ops = sessions.len() as u64;
    Ok(t)
}

fn report(o: &Opts, total: Tally, secs: f64) {
    let mut lat = total.lat_us;
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
    let mut fields: Vec<(String, String)> = vec![
        ("workload".into(), o.workload.clone()),
        ("sessions".into(), o.sessions.to_string()),
        ("depth".into(), o.depth.to_string()),
        ("payload".into(), o.payload().to_string()),
        ("ops".into(), total.ops.to_string()),
        ("secs".into(), format!("{secs:.2}")),
        ("ops_per_sec".into(), format!("{:.0}", total.ops as f64 / secs)),
        ("mb_per_sec".into(), format!("{:.2}", total.bytes as f64 / secs / 1e6)),
        ("p50_us".into(), pct(0.5).to_string()),
        ("p99_us".into(), pct(0.99).to_string()),
        ("max_us".into(), lat.last().copied().unwrap_or(0).to_string()),
    ];
    for (k, v) in total.extra {
        fields.push((k, format!("{v:.0}")));
    }
    if let Some((rss, hwm)) = rss_kb(o.pid) {
        fields.push(("server_rss_kb".into(), rss.to_string()));
        fields.push(("server_hwm_kb".into(), hwm.to_string()));
    }
    match o.format.as_str() {
        "kv" => {
            let line: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("{}", line.join(" "));
        }
        "json" => {
            let obj: serde_json::Map<String, serde_json::Value> = fields
                .into_iter()
                .map(|(k, v)| {
                    let val = if let Ok(i) = v.parse::<i64>() {
                        serde_json::Value::from(i)
                    } else {
                        v.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or(serde_json::Value::String(v), serde_json::Value::Number)
                    };
                    (k, val)
                })
                .collect();
            println!("{}", serde_json::Value::Object(obj));
        }
        _ => {
            let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, v) in fields {
                println!("{k:<w$}  {v}");
            }
        }
    }
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chardevd-load: {e}");
            std::process::exit(2);
        }
    };
    if o.workload == "idle" {
        match run_idle(&o) {
            Ok(t) => report(&o, t, 1.0),
            Err(e) => {
                eprintln!("chardevd-load: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let single = o.workload.starts_with("relay") || o.workload == "fanout";
    let workers = if single { 1 } else { o.sessions };
    let driver = o.workload == "events";
    // Every worker (and the main thread) waits here until set-up is done.
    let start = Arc::new(Barrier::new(workers + 1 + usize::from(driver)));
    let mut threads: Vec<std::thread::JoinHandle<std::io::Result<Tally>>> = (0..workers)
        .map(|i| {
            let (o, stop, progress, start) = (o.clone(), stop.clone(), progress.clone(), start.clone());
            std::thread::spawn(move || {
                let waited = std::cell::Cell::new(false);
                let gate = || {
                    waited.set(true);
                    start.wait();
                };
                let r = match o.workload.as_str() {
                    "events" => run_subscriber(&o, i, &stop, &progress, &gate),
                    "ping" => run_ping(&o, i, &stop, &progress, &gate),
                    "relay-stream" => run_relay_stream(&o, &stop, &progress, &gate),
                    "relay-ping" => run_relay_ping(&o, &stop, &progress, &gate),
                    "fanout" => run_fanout(&o, &stop, &progress, &gate),
                    _ => run_qmp(&o, i, &stop, &progress, &gate),
                };
                let r = r.map(|mut t| {
                    t.end.get_or_insert_with(Instant::now);
                    t
                });
                if r.is_err() {
                    // Stop the others, and pass the gate if set-up failed, so
                    // the error is reported instead of waiting for ever.
                    stop.store(true, Ordering::Relaxed);
                    if !waited.get() {
                        start.wait();
                    }
                }
                r
            })
        })
        .collect();
    if driver {
        let (o, stop, start) = (o.clone(), stop.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            let waited = std::cell::Cell::new(false);
            let gate = || {
                waited.set(true);
                start.wait();
            };
            let r = run_event_driver(&o, &stop, &gate);
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
                if !waited.get() {
                    start.wait();
                }
            }
            r
        }));
    }
    start.wait();
    let t0 = Instant::now();
    let tty = std::io::stderr().is_terminal();
    while t0.elapsed().as_secs_f64() < o.seconds && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(Duration::from_secs_f64(o.seconds)));
        if tty {
            let n = progress.load(Ordering::Relaxed);
            eprint!(
                "\r{} {:>5.1}s {:>12} done {:>12.0}/s ",
                o.workload,
                t0.elapsed().as_secs_f64(),
                n,
                n as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    if tty {
        eprintln!();
    }
    let mut total = Tally::default();
    // The run lasts until the last session's last operation ended (a 1 MiB
    // write to QEMU takes seconds; it counts over its whole time).
    let mut secs = o.seconds.min(t0.elapsed().as_secs_f64());
    for t in threads {
        match t.join() {
            Ok(Ok(t)) => {
                if let Some(end) = t.end {
                    secs = secs.max(end.duration_since(t0).as_secs_f64());
                }
                total.ops += t.ops;
                total.bytes += t.bytes;
                total.lat_us.extend(t.lat_us);
                total.extra.extend(t.extra);
            }
            Ok(Err(e)) => {
                eprintln!("chardevd-load: session failed: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    report(&o, total, secs);
}
