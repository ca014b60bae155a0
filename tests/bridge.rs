//! The `bridge` frontend: two chardevs joined both ways, with backpressure,
//! over real sockets and a pty (ser2net's job).
mod common;

use chardevd::backends::{ChardevBackend, Pty};
use chardevd::{self as runtime, Config};
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn unix_server(path: &Path) -> ChardevBackend {
    ChardevBackend::from_qmp(&serde_json::json!({
        "type": "socket",
        "data": {"addr": {"type": "unix", "data": {"path": path.to_str().unwrap()}}, "server": true, "wait": false}
    }))
    .unwrap()
}

fn bridge(chardev: &str, peer: &str) -> chardevd::commands::Device {
    chardevd::commands::Device::Bridge {
        chardev: chardev.into(),
        peer: peer.into(),
    }
}

/// Bytes no two positions of which are likely to repeat in step.
fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// Write `data` on one thread while reading `want` bytes on another.
fn transfer(mut tx: UnixStream, mut rx: UnixStream, data: Vec<u8>) -> Vec<u8> {
    let want = data.len();
    let writer = std::thread::spawn(move || {
        tx.write_all(&data).unwrap();
        tx
    });
    rx.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::with_capacity(want);
    let mut buf = vec![0u8; 65536];
    while got.len() < want {
        let n = rx.read(&mut buf).expect("bridged bytes");
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    drop(writer.join().unwrap());
    got
}

async fn connected(h: &runtime::Handle, id: &str) {
    for _ in 0..500 {
        let rows = h.query_chardev().await.unwrap();
        if rows
            .iter()
            .any(|r| r.label == id && !r.filename.starts_with("disconnected:"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} never connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_mib_cross_the_bridge_intact_both_ways_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("a", unix_server(&pa)).await.unwrap();
    h.chardev_add("b", unix_server(&pb)).await.unwrap();
    h.device_add(Some("br"), bridge("a", "b")).await.unwrap();
    let rows = h.query_chardev().await.unwrap();
    assert!(rows.iter().all(|r| r.frontend_open), "{rows:?}");
    let a = UnixStream::connect(&pa).unwrap();
    let b = UnixStream::connect(&pb).unwrap();
    connected(&h, "a").await;
    connected(&h, "b").await;
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let there = pattern(4 << 20, 1);
    let back = pattern(4 << 20, 2);
    let (t1, t2) = (there.clone(), back.clone());
    let forward = tokio::task::spawn_blocking(move || transfer(a, b, t1));
    let backward = tokio::task::spawn_blocking(move || transfer(b2, a2, t2));
    assert!(forward.await.unwrap() == there, "a -> b corrupted");
    assert!(backward.await.unwrap() == back, "b -> a corrupted");

    // device_del ends the bridge: the chardevs are free again.
    h.device_del("br").await.unwrap();
    h.chardev_remove("a").await.unwrap();
    h.chardev_remove("b").await.unwrap();
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_reads_nothing_holds_the_writer_back() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("a", unix_server(&pa)).await.unwrap();
    h.chardev_add("b", unix_server(&pb)).await.unwrap();
    h.device_add(None, bridge("a", "b")).await.unwrap();
    let mut a = UnixStream::connect(&pa).unwrap();
    let b = UnixStream::connect(&pb).unwrap();
    connected(&h, "a").await;
    connected(&h, "b").await;
    // b's client reads nothing: a's client can write only what the queues
    // and socket buffers hold (a few MiB at most), then its writes block.
    a.set_nonblocking(true).unwrap();
    let chunk = vec![7u8; 65536];
    let mut accepted = 0usize;
    let mut idle = 0;
    while idle < 50 && accepted < 256 << 20 {
        match a.write(&chunk) {
            Ok(n) => {
                accepted += n;
                idle = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                idle += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(accepted < 64 << 20, "{accepted} bytes accepted with nobody reading");
    // The other direction is not held: b -> a flows while a -> b is stalled.
    a.set_nonblocking(false).unwrap();
    let back = pattern(1 << 20, 3);
    let (b_tx, a_rx) = (b.try_clone().unwrap(), a.try_clone().unwrap());
    let want = back.clone();
    let got_back = tokio::task::spawn_blocking(move || transfer(b_tx, a_rx, want))
        .await
        .unwrap();
    assert!(got_back == back, "b -> a while a -> b is held");
    // Once b reads, everything arrives.
    let got = tokio::task::spawn_blocking(move || {
        let mut b = b;
        b.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut n = 0;
        let mut buf = vec![0u8; 65536];
        while n < accepted {
            let r = b.read(&mut buf).unwrap();
            assert!(r > 0);
            assert!(buf[..r].iter().all(|x| *x == 7));
            n += r;
        }
        n
    })
    .await
    .unwrap();
    assert_eq!(got, accepted);
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_served_on_a_socket_and_the_bridge_follows_a_chardev_change() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    let ret = h.chardev_add("tty", ChardevBackend::new(Pty::default())).await.unwrap();
    let slave_path = ret.pty.expect("a pty path");
    h.chardev_add("net", unix_server(&sock)).await.unwrap();
    h.device_add(Some("ser2net"), bridge("tty", "net")).await.unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_path)
        .unwrap();
    raw(&slave);
    let mut c = UnixStream::connect(&sock).unwrap();
    connected(&h, "net").await;
    c.write_all(b"to the serial line").unwrap();
    let mut got = Vec::new();
    while got.len() < 18 {
        got.extend(read_slave(&slave));
    }
    assert_eq!(got, b"to the serial line");
    (&slave).write_all(b"to the network").unwrap();
    let mut buf = [0u8; 14];
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"to the network");

    // The network side moves to another socket: the bridge follows.
    let sock2 = dir.path().join("s2.sock");
    h.chardev_change("net", unix_server(&sock2)).await.unwrap();
    let mut c2 = UnixStream::connect(&sock2).unwrap();
    connected(&h, "net").await;
    c2.write_all(b"moved").unwrap();
    let mut got = Vec::new();
    while got.len() < 5 {
        got.extend(read_slave(&slave));
    }
    assert_eq!(got, b"moved");
    h.shutdown();
    h.join();
}

/// Put a pty slave in raw mode (no echo, no line discipline).
fn raw(f: &std::fs::File) {
    use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
    let mut t = tcgetattr(f).unwrap();
    t.make_raw();
    tcsetattr(f, OptionalActions::Now, &t).unwrap();
}

/// The counters of chardev `id`.
async fn stats(h: &runtime::Handle, id: &str) -> chardevd::commands::ChardevStats {
    let s = h.query_stats().await.unwrap();
    s.chardevs.into_iter().find(|c| c.label == id).expect("a chardev")
}

/// Poll until `cond` holds of chardev `id`'s counters (20 s at most).
async fn until_stats(h: &runtime::Handle, id: &str, cond: impl Fn(&chardevd::commands::ChardevStats) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = stats(h, id).await;
        if cond(&s) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `chardev-change` and `chardev-remove` while bytes flow: every byte the
/// bridge's destination took before the change reaches the old file, every
/// byte after it the new one, each exactly once and in order; a chardev
/// removed mid-stream writes out everything it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_flowing_through_a_change_and_a_remove_arrive_exactly_once() {
    use chardevd::backends::File;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("a.sock");
    let (f1, f2, f3) = (dir.path().join("f1"), dir.path().join("f2"), dir.path().join("f3"));
    let file = |p: &Path| ChardevBackend::new(File::output(p.to_str().unwrap()));
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("a", unix_server(&sock)).await.unwrap();
    h.chardev_add("b", file(&f1)).await.unwrap();
    h.device_add(Some("br"), bridge("a", "b")).await.unwrap();
    let mut c = UnixStream::connect(&sock).unwrap();
    connected(&h, "a").await;
    let stream = pattern(16 << 20, 5);
    let data = stream.clone();
    let mut writer = c.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        for chunk in data.chunks(4096) {
            writer.write_all(chunk).unwrap();
        }
    });
    // Mid-stream, b becomes another file.
    until_stats(&h, "b", |s| s.bytes_out >= 2 << 20).await;
    h.chardev_change("b", file(&f2)).await.unwrap();
    sending.join().unwrap();
    let n = stream.len() as u64;
    until_stats(&h, "b", |s| s.bytes_out == n).await;
    let s = stats(&h, "b").await;
    assert_eq!((s.dropped_out, s.bytes_in), (0, 0), "{s:?}");
    let (one, two) = (std::fs::read(&f1).unwrap(), std::fs::read(&f2).unwrap());
    assert!(!one.is_empty() && !two.is_empty(), "{} + {}", one.len(), two.len());
    assert_eq!(one.len() + two.len(), stream.len(), "each byte once");
    assert!([one, two].concat() == stream, "in order, none lost or doubled");

    // The bridge goes, and a new one runs to c; c is removed mid-stream.
    h.device_del("br").await.unwrap();
    h.chardev_add("c", file(&f3)).await.unwrap();
    h.device_add(Some("br2"), bridge("a", "c")).await.unwrap();
    let data = stream.clone();
    let sending = std::thread::spawn(move || {
        for chunk in data.chunks(4096) {
            if c.write_all(chunk).is_err() {
                break;
            }
        }
    });
    until_stats(&h, "c", |s| s.bytes_out >= 2 << 20).await;
    h.device_del("br2").await.unwrap();
    let taken = stats(&h, "c").await.bytes_out;
    h.chardev_remove("c").await.unwrap();
    let three = std::fs::read(&f3).unwrap();
    assert!(three.len() as u64 >= taken, "{} < {taken}", three.len());
    assert!(three[..] == stream[..three.len()], "a prefix of the stream, exactly");
    h.chardev_remove("a").await.unwrap();
    drop(sending);
    h.shutdown();
    h.join();
}
