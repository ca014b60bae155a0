//! `chardevd-load`: a QMP load generator that drives chardevd or real QEMU
//! with the same byte streams, so their figures can be compared.
//!
//! ```text
//! chardevd-load --socket PATH [--socket PATH ...] --workload NAME
//!               [--sessions N] [--seconds S] [--depth D] [--payload BYTES]
//! ```
//! Workloads: `query` (query-chardev), `write` (ringbuf-write of PAYLOAD bytes
//! in base64), `read` (ringbuf-write then ringbuf-read of PAYLOAD bytes in
//! base64), `churn` (chardev-add + chardev-remove of a null chardev).
//! `--depth` commands are kept in flight per session (1 = strictly
//! sequential). Sessions are spread over the sockets round-robin (QEMU serves
//! one client per socket, so give it one socket per session).
//! Prints one line: `workload=… sessions=… ops=… secs=… ops_per_sec=… mb_per_sec=… p50_us=… p99_us=…`.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Opts {
    sockets: Vec<PathBuf>,
    workload: String,
    sessions: usize,
    seconds: f64,
    depth: usize,
    payload: usize,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        sockets: Vec::new(),
        workload: "query".into(),
        sessions: 1,
        seconds: 2.0,
        depth: 1,
        payload: 48 * 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut v = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--socket" => o.sockets.push(v()?.into()),
            "--workload" => o.workload = v()?,
            "--sessions" => o.sessions = v()?.parse().map_err(|e| format!("--sessions: {e}"))?,
            "--seconds" => o.seconds = v()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--depth" => o.depth = v()?.parse().map_err(|e| format!("--depth: {e}"))?,
            "--payload" => o.payload = v()?.parse().map_err(|e| format!("--payload: {e}"))?,
            "-h" | "--help" => return Err("see the doc comment of src/bin/chardevd-load.rs".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.sockets.is_empty() {
        return Err("--socket is required".into());
    }
    Ok(o)
}

fn base64(n: usize) -> String {
    use base64::Engine as _;
    let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(data)
}

struct Session {
    w: UnixStream,
    r: BufReader<UnixStream>,
    line: String,
}

impl Session {
    fn open(path: &PathBuf) -> std::io::Result<Session> {
        let w = UnixStream::connect(path)?;
        let mut s = Session {
            r: BufReader::with_capacity(1 << 20, w.try_clone()?),
            w,
            line: String::new(),
        };
        s.reply()?;
        s.w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
        s.reply()?;
        Ok(s)
    }

    fn reply(&mut self) -> std::io::Result<usize> {
        loop {
            self.line.clear();
            let n = self.r.read_line(&mut self.line)?;
            if n == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            if self.line.starts_with("{\"timestamp\"") {
                continue;
            }
            if self.line.contains("\"error\"") {
                return Err(std::io::Error::other(self.line.trim().to_owned()));
            }
            return Ok(n);
        }
    }
}

/// The commands of one "operation" of a workload (replies expected: one each).
fn op_commands(o: &Opts, session: usize, i: u64, payload: &str) -> Vec<String> {
    let dev = format!("load{}-{session}", std::process::id());
    match o.workload.as_str() {
        "query" => vec![r#"{"execute":"query-chardev"}"#.to_owned()],
        "write" => vec![format!(
            r#"{{"execute":"ringbuf-write","arguments":{{"device":"{dev}","data":"{payload}","format":"base64"}}}}"#
        )],
        "read" => vec![
            format!(
                r#"{{"execute":"ringbuf-write","arguments":{{"device":"{dev}","data":"{payload}","format":"base64"}}}}"#
            ),
            format!(
                r#"{{"execute":"ringbuf-read","arguments":{{"device":"{dev}","size":{},"format":"base64"}}}}"#,
                o.payload
            ),
        ],
        _ => vec![
            format!(
                r#"{{"execute":"chardev-add","arguments":{{"id":"c{session}-{i}","backend":{{"type":"null","data":{{}}}}}}}}"#
            ),
            format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"c{session}-{i}"}}}}"#),
        ],
    }
}

fn run_session(o: Opts, idx: usize, stop: Arc<AtomicBool>) -> std::io::Result<(u64, u64, Vec<u32>)> {
    let path = &o.sockets[idx % o.sockets.len()];
    let mut s = Session::open(path)?;
    if matches!(o.workload.as_str(), "write" | "read") {
        let size = o.payload.next_power_of_two().max(4096);
        let add = format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"load{}-{idx}","backend":{{"type":"ringbuf","data":{{"size":{size}}}}}}}}}"#,
            std::process::id()
        );
        s.w.write_all(add.as_bytes())?;
        s.w.write_all(b"\n")?;
        s.reply()?;
    }
    let payload = if matches!(o.workload.as_str(), "write" | "read") {
        base64(o.payload)
    } else {
        String::new()
    };
    let mut ops = 0u64;
    let mut bytes = 0u64;
    let mut lat = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Send `depth` operations, then read all their replies.
        let t = Instant::now();
        let mut batch = String::new();
        let mut expect = 0;
        for _ in 0..o.depth {
            for c in op_commands(&o, idx, i, &payload) {
                batch.push_str(&c);
                batch.push('\n');
                expect += 1;
            }
            i += 1;
        }
        s.w.write_all(batch.as_bytes())?;
        for _ in 0..expect {
            bytes += s.reply()? as u64;
        }
        let us = t.elapsed().as_micros() as u32;
        lat.push(us / o.depth as u32);
        ops += o.depth as u64;
        if o.workload == "write" || o.workload == "read" {
            bytes += (o.payload * o.depth) as u64;
        }
    }
    Ok((ops, bytes, lat))
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chardevd-load: {e}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..o.sessions)
        .map(|i| {
            let (o, stop) = (o.clone(), stop.clone());
            std::thread::spawn(move || run_session(o, i, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    stop.store(true, Ordering::Relaxed);
    let (mut ops, mut bytes, mut lat) = (0u64, 0u64, Vec::new());
    for t in threads {
        match t.join() {
            Ok(Ok((n, b, l))) => {
                ops += n;
                bytes += b;
                lat.extend(l);
            }
            Ok(Err(e)) => {
                eprintln!("chardevd-load: session failed: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
    println!(
        "workload={} sessions={} depth={} payload={} ops={ops} secs={secs:.2} ops_per_sec={:.0} mb_per_sec={:.2} p50_us={} p99_us={}",
        o.workload,
        o.sessions,
        o.depth,
        o.payload,
        ops as f64 / secs,
        bytes as f64 / secs / 1e6,
        pct(0.5),
        pct(0.99)
    );
}
