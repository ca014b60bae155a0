//! Micro-benchmarks of the pure cores (no actix, no sockets):
//! `cargo bench --bench cores`. A plain harness (median of repeated timed
//! runs) keeps the dependency tree small; see BENCHMARKS.md for the
//! end-to-end comparison with QEMU. With `CHARDEVD_BENCH_SMOKE=1` every
//! bench runs once (CI checks that they run; the figures mean nothing).
use chardevd::internals::json::framer::Framer;
use chardevd::internals::json::Json;
use chardevd::internals::ring::Ring;
use chardevd::internals::ringbuf::qemu_base64_decode;
use chardevd::internals::{telnet, websocket};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn bench(name: &str, bytes_per_iter: usize, mut f: impl FnMut()) {
    if smoke() {
        let t = Instant::now();
        f();
        println!(
            "{name:<44} {:>10.3} µs (smoke: one run)",
            t.elapsed().as_secs_f64() * 1e6
        );
        return;
    }
    // Calibrate to ~50 ms per sample, take the median of 11 samples.
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        if t.elapsed() > Duration::from_millis(50) {
            break;
        }
        iters *= 2;
    }
    let mut samples: Vec<f64> = (0..11)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    let per = samples[5];
    let rate = if bytes_per_iter > 0 {
        format!("{:>9.1} MB/s", bytes_per_iter as f64 / per / 1e6)
    } else {
        String::new()
    };
    println!("{name:<44} {:>10.3} µs/iter {rate}", per * 1e6);
}

fn main() {
    let small = br#"{"execute":"query-chardev","id":12}"#.repeat(100);
    bench("framer: 100 small commands", small.len(), || {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.feed(black_box(&small), &mut out);
        black_box(out);
    });
    let big = format!(
        r#"{{"execute":"ringbuf-write","arguments":{{"device":"r","data":"{}","format":"base64"}}}}"#,
        "QUJD".repeat(16 * 1024)
    );
    bench("framer: one 64 KiB ringbuf-write", big.len(), || {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.feed(black_box(big.as_bytes()), &mut out);
        black_box(out);
    });
    let strings = format!(
        r#"{{"execute":"ringbuf-write","arguments":{{"device":"r","data":"{}","format":"utf8"}}}}"#,
        "a plain line of console text, no escapes at all; ".repeat(20_000)
    );
    bench("framer: 1 MiB utf8 ringbuf-write", strings.len(), || {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.feed(black_box(strings.as_bytes()), &mut out);
        black_box(out);
    });
    use base64::Engine as _;
    let raw: Vec<u8> = (0..48 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    bench("base64: decode 48 KiB (canonical)", raw.len(), || {
        black_box(qemu_base64_decode(black_box(&b64)).unwrap());
    });
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    bench("base64: decode 48 KiB (MIME lines, lenient)", raw.len(), || {
        black_box(qemu_base64_decode(black_box(&wrapped)).unwrap());
    });
    let reply = Json::Str(b64.clone());
    bench("writer: 64 KiB base64 string", b64.len(), || {
        black_box(black_box(&reply).to_qemu_string());
    });
    let stream: Vec<u8> = (0..64 * 1024).map(|i| (i % 200) as u8).collect();
    bench("telnet: filter 64 KiB without IAC", stream.len(), || {
        let mut f = telnet::Filter::new(false);
        let mut out = Vec::new();
        f.feed(black_box(&stream), &mut out);
        black_box(out);
    });
    let payload = &stream[..60_000];
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82, 0x80 | 126];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    bench("websocket: decode a 60 KB masked frame", payload.len(), || {
        let mut d = websocket::Decoder::new();
        let (mut data, mut reply) = (Vec::new(), Vec::new());
        d.feed(black_box(&frame), &mut data, &mut reply).unwrap();
        assert_eq!(data.len(), 60_000);
        black_box(data);
    });
    let mut ws_out = Vec::new();
    bench("websocket: encode a 60 KB frame", payload.len(), || {
        ws_out.clear();
        websocket::binary_frame(black_box(payload), &mut ws_out);
        black_box(&ws_out);
    });
    let text = Json::Str("h\u{e9}llo world \u{1F600} ".repeat(2048));
    bench("writer: 40 KiB non-ASCII string", text.to_qemu_string().len(), || {
        black_box(black_box(&text).to_qemu_string());
    });
    let data = vec![b'x'; 4096];
    let mut ring = Ring::new(65536);
    bench("ring: write 4 KiB + read 4 KiB", 8192, || {
        ring.write(black_box(&data));
        black_box(ring.read(4096));
    });
    let utf8 = "h\u{e9}llo ".repeat(600).into_bytes();
    let mut ring = Ring::new(65536);
    bench("ring: utf8 read of 4 KiB", utf8.len(), || {
        ring.write(&utf8);
        black_box(ring.read_utf8(utf8.len()));
    });
    actor_floor();
}

fn smoke() -> bool {
    std::env::var("CHARDEVD_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// The resident set of this process, in bytes.
fn rss_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The memory floor of one actor per chardev: the RSS an idle actix actor
/// with no state costs (its mailbox, context and task), to read beside the
/// RSS per idle chardev in BENCHMARKS.md.
fn actor_floor() {
    struct Idle;
    impl actix::Actor for Idle {
        type Context = actix::Context<Self>;
    }
    let n: usize = if smoke() { 100 } else { 20_000 };
    actix::System::new().block_on(async move {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let before = rss_bytes();
        let addrs: Vec<actix::Addr<Idle>> = (0..n).map(|_| actix::Actor::start(Idle)).collect();
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let per = (rss_bytes() - before) as f64 / n as f64;
        println!(
            "{:<44} {per:>10.0} B per actor ({n} actors)",
            "memory: RSS per idle empty actix actor"
        );
        black_box(addrs);
    });
}
