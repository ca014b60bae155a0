//! Backpressure, in a test binary of its own so the memory figure is this
//! test's alone: many bytes through a fifo into a frontend that reads slowly
//! at first; nothing is lost or reordered and memory stays bounded.
mod common;

use chardevd::frontend::FrontendEvent;
use chardevd::{self as runtime, Config};
use common::{attached_fifo_pipe, next};
use std::io::Write;
use std::time::Duration;

/// Backpressure: push many bytes through a fifo into a frontend that reads
/// slowly at first; nothing is lost or reordered and memory stays bounded.
/// `CHARDEVD_BACKPRESSURE_MIB` sets the amount (default 1024 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gib_through_a_pipe_into_a_slow_frontend_loses_nothing_and_stays_bounded() {
    let mib: usize = std::env::var("CHARDEVD_BACKPRESSURE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = mib << 20;
    let dir = tempfile::tempdir().unwrap();
    let h = runtime::spawn(Config::default()).unwrap();
    let (base, mut fe) = attached_fifo_pipe(&h, dir.path()).await;
    let rss_before = rss_kib();
    let path = base.with_extension("in");
    // The byte at offset i is (i / 4096 + i) mod 251: a pattern that shows
    // any loss, duplication or reordering.
    let pattern = |i: usize| ((i / 4096 + i) % 251) as u8;
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let mut chunk = vec![0u8; 1 << 20];
        for c in 0..total >> 20 {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = pattern((c << 20) + j);
            }
            f.write_all(&chunk).unwrap();
        }
    });
    let mut received = 0usize;
    let mut peak_rss = 0;
    let mut reads = 0u64;
    while received < total {
        let FrontendEvent::Data(b) = next(&mut fe).await else {
            panic!("unexpected event")
        };
        for (j, byte) in b.iter().enumerate() {
            if *byte != pattern(received + j) {
                panic!("byte {} is wrong: lost or reordered data", received + j);
            }
        }
        received += b.len();
        reads += 1;
        if reads < 50 {
            // A slow frontend: the pipe and queues fill, the writer blocks.
            tokio::time::sleep(Duration::from_millis(20)).await;
            peak_rss = peak_rss.max(rss_kib());
        } else if reads.is_multiple_of(256) {
            peak_rss = peak_rss.max(rss_kib());
        }
    }
    writer.join().unwrap();
    assert_eq!(received, total);
    let growth_mib = peak_rss.saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 64,
        "memory grew by {growth_mib} MiB while moving {mib} MiB"
    );
    eprintln!("moved {mib} MiB in {reads} reads; RSS grew by {growth_mib} MiB");
    h.shutdown();
    h.join();
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
