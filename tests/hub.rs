//! The hub backend (QEMU 10's chardev-hub): the cases of QEMU's
//! tests/unit/test-char.c `/char/hub`, with QEMU 10.0.2's texts, over
//! ringbufs and real sockets.
mod common;

use bytes::Bytes;
use chardevd::backends::{ChardevBackend, Hub, Mux, Ringbuf};
use chardevd::frontend::FrontendEvent;
use chardevd::{self as runtime, Config};
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn hub(inputs: &[&str]) -> ChardevBackend {
    ChardevBackend::new(Hub {
        chardevs: inputs.iter().map(|s| s.to_string()).collect(),
    })
}

fn ring(size: i64) -> ChardevBackend {
    ChardevBackend::new(Ringbuf { size: Some(size) })
}

fn unix_server(path: &Path) -> ChardevBackend {
    ChardevBackend::from_qmp(&serde_json::json!({
        "type": "socket",
        "data": {"addr": {"type": "unix", "data": {"path": path.to_str().unwrap()}}, "server": true, "wait": false}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_errors_are_qemus_and_failures_free_the_inputs() {
    let h = runtime::spawn(Config::default()).unwrap();
    let err = |e: chardevd::error::Error| e.to_string();
    assert_eq!(
        err(h.chardev_add("h", hub(&[])).await.unwrap_err()),
        "Failed to add chardev 'h': hub: 'chardevs' list is not defined"
    );
    assert_eq!(
        err(h.chardev_add("h", hub(&["nosuch"])).await.unwrap_err()),
        "Failed to add chardev 'h': hub: chardev can't be found by id 'nosuch'"
    );
    h.chardev_add("chr0-base", ring(128)).await.unwrap();
    h.chardev_add("chr0", ChardevBackend::new(Mux::over("chr0-base")))
        .await
        .unwrap();
    assert_eq!(
        err(h.chardev_add("h", hub(&["chr0"])).await.unwrap_err()),
        "Failed to add chardev 'h': hub: multiplexers and hub devices can't be stacked, check chardev 'chr0', \
         chardev should not be a hub device or have 'mux=on' enabled"
    );
    assert_eq!(
        err(h.chardev_add("h", hub(&["chr0-base"])).await.unwrap_err()),
        "Failed to add chardev 'h': chardev 'chr0-base' is already in use"
    );
    for id in ["a", "b", "c", "d", "e"] {
        h.chardev_add(id, ring(128)).await.unwrap();
    }
    assert_eq!(
        err(h.chardev_add("h3", hub(&["a", "b", "c", "d", "e"])).await.unwrap_err()),
        "Failed to add chardev 'h3': hub: too many uses of chardevs 'h3' (maximum is 4)"
    );
    assert_eq!(
        err(h.chardev_add("h", hub(&["a", "a"])).await.unwrap_err()),
        "Failed to add chardev 'h': chardev 'a' is already in use"
    );
    // A failed hub let its inputs go: a is free.
    h.chardev_add("h", hub(&["a", "b"])).await.unwrap();
    assert_eq!(
        err(h.chardev_add("h2", hub(&["h"])).await.unwrap_err()),
        "Failed to add chardev 'h2': hub: multiplexers and hub devices can't be stacked, check chardev 'h', \
         chardev should not be a hub device or have 'mux=on' enabled"
    );
    // A mux over a hub is fine (the mux is the hub's one frontend).
    h.chardev_add("mh", ChardevBackend::new(Mux::over("h"))).await.unwrap();
    assert_eq!(
        err(h.chardev_change("h", ring(64)).await.unwrap_err()),
        "For mux or hub device hotswap is not supported yet"
    );
    assert_eq!(
        err(h.chardev_change("a", ring(64)).await.unwrap_err()),
        "Chardev user does not support chardev hotswap"
    );
    assert_eq!(err(h.chardev_remove("a").await.unwrap_err()), "Chardev 'a' is busy");
    assert_eq!(err(h.chardev_remove("h").await.unwrap_err()), "Chardev 'h' is busy");
    h.chardev_remove("mh").await.unwrap();
    h.chardev_remove("h").await.unwrap();
    h.chardev_remove("a").await.unwrap();
    let rows = h.query_chardev().await.unwrap();
    assert!(!rows.iter().any(|r| r.label == "h"));
    h.shutdown();
    h.join();
}

/// What ring `id` gets, read until `want` bytes came (or 5 s passed). A
/// write through the hub is done when the hub has it; the ring takes it
/// from its port a moment later, and ring commands read the ring itself.
async fn ring_text(h: &chardevd::Handle, id: &str, want: usize) -> String {
    let mut got = String::new();
    for _ in 0..500 {
        got += &h.ringbuf_read_text(id, 128).await.unwrap();
        if got.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_goes_to_every_input_and_input_from_each_reaches_the_frontend() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("s1.sock"), dir.path().join("s2.sock"));
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("chr1", ring(128)).await.unwrap();
    h.chardev_add("s1", unix_server(&p1)).await.unwrap();
    h.chardev_add("s2", unix_server(&p2)).await.unwrap();
    h.chardev_add("hub0", hub(&["chr1", "s1", "s2"])).await.unwrap();
    let rows = h.query_chardev().await.unwrap();
    let hub_row = rows.iter().find(|r| r.label == "hub0").unwrap();
    assert_eq!((hub_row.filename.as_str(), hub_row.frontend_open), ("hub", false));
    let mut fe = h.attach("hub0").await.unwrap();
    assert_eq!(
        h.attach("hub0").await.unwrap_err().to_string(),
        "chardev 'hub0' is already in use"
    );
    // The ringbuf input is open: the hub opened with it.
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    fe.write(Bytes::from_static(b"heyhey")).await.unwrap();
    fe.flush().await.unwrap();
    assert_eq!(ring_text(&h, "chr1", 6).await, "heyhey");

    // Clients on the sockets: no second OPENED (the hub is already open).
    let mut c1 = UnixStream::connect(&p1).unwrap();
    let mut c2 = UnixStream::connect(&p2).unwrap();
    c1.write_all(b"hello").unwrap();
    assert_eq!(read_data(&mut fe, 5).await, b"hello");
    c2.write_all(b"olleh").unwrap();
    assert_eq!(read_data(&mut fe, 5).await, b"olleh");
    // Output reaches every open input.
    fe.write(Bytes::from_static(b"thisis")).await.unwrap();
    for c in [&mut c1, &mut c2] {
        let mut buf = [0u8; 6];
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"thisis");
    }
    assert_eq!(ring_text(&h, "chr1", 6).await, "thisis");
    // A break on the hub reaches its frontend (QEMU 10.0.2 crashes here).
    h.chardev_send_break("hub0").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Break);
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_opens_with_its_first_input_and_closes_with_its_last() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("s1.sock"), dir.path().join("s2.sock"));
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s1", unix_server(&p1)).await.unwrap();
    h.chardev_add("s2", unix_server(&p2)).await.unwrap();
    h.chardev_add("hub0", hub(&["s1", "s2"])).await.unwrap();
    let mut fe = h.attach("hub0").await.unwrap();
    let c1 = UnixStream::connect(&p1).unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    let mut c2 = UnixStream::connect(&p2).unwrap();
    c2.write_all(b"x").unwrap();
    // No OPENED for the second; just its data.
    assert_eq!(read_data(&mut fe, 1).await, b"x");
    drop(c1);
    c2.write_all(b"y").unwrap();
    assert_eq!(read_data(&mut fe, 1).await, b"y", "no CLOSED while s2 is open");
    drop(c2);
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_goes_at_the_pace_of_the_slowest_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("slow.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("r", ring(65536)).await.unwrap();
    h.chardev_add("slow", unix_server(&p)).await.unwrap();
    h.chardev_add("hub0", hub(&["r", "slow"])).await.unwrap();
    let fe = h.attach("hub0").await.unwrap();
    let c = UnixStream::connect(&p).unwrap();
    for _ in 0..500 {
        let rows = h.query_chardev().await.unwrap();
        if rows
            .iter()
            .any(|r| r.label == "slow" && !r.filename.starts_with("disconnected"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The socket's client reads nothing: the frontend can queue only what
    // the bounded queues and buffers hold.
    let chunk = vec![b'z'; 65536];
    let mut accepted = 0usize;
    let mut idle = 0;
    while idle < 25 && accepted < 256 << 20 {
        let n = fe.try_write(&chunk).unwrap();
        if n == 0 {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else {
            accepted += n;
            idle = 0;
        }
    }
    assert!(
        accepted < 64 << 20,
        "{accepted} bytes queued with the slow input not reading"
    );
    // Now it reads: every byte arrives, and the ring has the same tail.
    let got = tokio::task::spawn_blocking(move || {
        let mut c = c;
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let (mut n, mut buf) = (0, vec![0u8; 65536]);
        while n < accepted {
            let r = c.read(&mut buf).unwrap();
            assert!(r > 0 && buf[..r].iter().all(|b| *b == b'z'));
            n += r;
        }
        n
    })
    .await
    .unwrap();
    assert_eq!(got, accepted);
    fe.flush().await.unwrap();
    let tail = h.ringbuf_read_text("r", 65536).await.unwrap();
    assert_eq!(tail.len(), 65536.min(accepted));
    assert!(tail.bytes().all(|b| b == b'z'));
    h.shutdown();
    h.join();
}
