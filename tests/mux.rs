//! The mux backend over real sockets, with library frontends: focus and
//! escapes, events, limits and errors (the cases of QEMU's
//! tests/unit/test-char.c `/char/mux`, and QEMU 10.0.2's texts).
mod common;

use bytes::Bytes;
use chardevd::backends::{ChardevBackend, Mux, Ringbuf};
use chardevd::frontend::{Frontend, FrontendEvent};
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

fn mux(base: &str) -> ChardevBackend {
    ChardevBackend::new(Mux::over(base))
}

fn ring() -> ChardevBackend {
    ChardevBackend::new(Ringbuf { size: Some(1024) })
}

/// Read from the client until `want` bytes came.
fn read_exact(c: &mut UnixStream, want: usize) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0; want];
    c.read_exact(&mut buf).expect("bytes from the mux");
    buf
}

/// The next event that is not MUX_IN/MUX_OUT.
async fn next_plain(fe: &mut Frontend) -> FrontendEvent {
    loop {
        match next(fe).await {
            FrontendEvent::MuxIn | FrontendEvent::MuxOut => continue,
            ev => return ev,
        }
    }
}

/// Nothing arrives within a moment.
async fn quiet(fe: &mut Frontend) {
    if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), fe.recv()).await {
        panic!("unexpected {ev:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_goes_to_the_focus_output_from_everyone_and_escapes_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("base", unix_server(&path)).await.unwrap();
    h.chardev_add("m", mux("base")).await.unwrap();
    let mut fe1 = h.attach("m").await.unwrap();
    let mut fe2 = h.attach("m").await.unwrap();
    // The last to attach has the focus (fe1 had it and lost it before it
    // looked: events are state, so it sees neither).
    assert_eq!(next(&mut fe2).await, FrontendEvent::MuxIn);

    let mut c = UnixStream::connect(&path).unwrap();
    // The base's OPENED reaches every frontend.
    assert_eq!(next(&mut fe1).await, FrontendEvent::Opened);
    assert_eq!(next(&mut fe2).await, FrontendEvent::Opened);

    c.write_all(b"hello").unwrap();
    assert_eq!(read_data(&mut fe2, 5).await, b"hello");
    quiet(&mut fe1).await;

    // Output of every frontend reaches the base, focused or not.
    fe1.write(Bytes::from_static(b"one ")).await.unwrap();
    fe1.flush().await.unwrap();
    fe2.write(Bytes::from_static(b"two")).await.unwrap();
    assert_eq!(read_exact(&mut c, 7), b"one two");

    // C-a c, split across two reads: the focus moves to the next slot.
    c.write_all(b"x\x01").unwrap();
    assert_eq!(read_data(&mut fe2, 1).await, b"x");
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_all(b"cdata").unwrap();
    assert_eq!(next(&mut fe2).await, FrontendEvent::MuxOut);
    assert_eq!(next(&mut fe1).await, FrontendEvent::MuxIn);
    assert_eq!(read_data(&mut fe1, 4).await, b"data");

    // C-a b: a break to the focused frontend only; C-a C-a: one C-a.
    c.write_all(b"\x01b\x01\x01").unwrap();
    assert_eq!(next(&mut fe1).await, FrontendEvent::Break);
    assert_eq!(read_data(&mut fe1, 1).await, b"\x01");
    // An unknown command drops both bytes.
    c.write_all(b"\x01zok").unwrap();
    assert_eq!(read_data(&mut fe1, 2).await, b"ok");
    quiet(&mut fe2).await;

    // chardev-send-break: on the mux to the focus, on the base to everyone.
    h.chardev_send_break("m").await.unwrap();
    assert_eq!(next(&mut fe1).await, FrontendEvent::Break);
    quiet(&mut fe2).await;
    h.chardev_send_break("base").await.unwrap();
    assert_eq!(next(&mut fe1).await, FrontendEvent::Break);
    assert_eq!(next(&mut fe2).await, FrontendEvent::Break);

    // C-a h: QEMU's help, byte for byte.
    c.write_all(b"\x01h").unwrap();
    let help = read_exact(&mut c, 241);
    assert_eq!(help, chardevd::internals::mux::help_text(1));

    // C-a t: stamps from the line after the next newline.
    c.write_all(b"\x01t").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    fe1.write(Bytes::from_static(b"a\nb\n")).await.unwrap();
    let out = read_exact(&mut c, 2 + 15 + 2);
    assert_eq!(&out[..2], b"a\n");
    // The clock starts at the first stamp.
    assert_eq!(out, b"a\n[00:00:00.000] b\n");
    c.write_all(b"\x01t").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    fe2.write(Bytes::from_static(b"plain\n")).await.unwrap();
    assert_eq!(read_exact(&mut c, 6), b"plain\n");

    // The client goes: CLOSED to every frontend.
    drop(c);
    assert_eq!(next_plain(&mut fe1).await, FrontendEvent::Closed);
    assert_eq!(next_plain(&mut fe2).await, FrontendEvent::Closed);
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_focused_slot_whose_frontend_went_holds_32_bytes_for_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("base", unix_server(&path)).await.unwrap();
    h.chardev_add("m", mux("base")).await.unwrap();
    let mut fe1 = h.attach("m").await.unwrap();
    let fe2 = h.attach("m").await.unwrap();
    let mut c = UnixStream::connect(&path).unwrap();
    eventually_open(&h, "base").await;
    // fe2 (slot 1) has the focus and goes: the focus stays on its slot.
    fe2.detach().await.unwrap();
    c.write_all(&[b'q'; 40]).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // C-a c is not seen while the held bytes fill the slot (QEMU's rule).
    c.write_all(b"\x01c").unwrap();
    quiet_data(&mut fe1).await;
    // A new frontend takes slot 1 and the focus, and gets what was held
    // (32 bytes), then the rest (8 bytes), then sees the C-a c.
    let mut fe3 = h.attach("m").await.unwrap();
    assert_eq!(read_data_skipping(&mut fe3, 40).await, vec![b'q'; 40]);
    c.write_all(b"to-fe1").unwrap();
    assert_eq!(read_data_skipping(&mut fe1, 6).await, b"to-fe1");
    h.shutdown();
    h.join();
}

async fn eventually_open(h: &runtime::Handle, id: &str) {
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
    panic!("{id} not connected");
}

/// Data only (events skipped) until `want` bytes came.
async fn read_data_skipping(fe: &mut Frontend, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        if let FrontendEvent::Data(b) = next(fe).await {
            got.extend_from_slice(&b);
        }
    }
    got
}

async fn quiet_data(fe: &mut Frontend) {
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), fe.recv()).await {
        assert!(!matches!(ev, FrontendEvent::Data(_)), "unexpected {ev:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_errors_and_removal_are_qemus() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("base", ring()).await.unwrap();
    let err = |e: chardevd::error::Error| e.to_string();
    assert_eq!(
        err(h.chardev_add("mx", mux("nosuch")).await.unwrap_err()),
        "Failed to add chardev 'mx': mux: base chardev nosuch not found"
    );
    assert_eq!(
        err(h.chardev_add("t", mux("t")).await.unwrap_err()),
        "Failed to add chardev 't': mux: base chardev t not found"
    );
    h.chardev_add("m", mux("base")).await.unwrap();
    assert_eq!(
        err(h.chardev_add("m2", mux("base")).await.unwrap_err()),
        "Failed to add chardev 'm2': chardev 'base' is already in use"
    );
    assert_eq!(
        err(h.chardev_add("m", ring()).await.unwrap_err()),
        "Chardev with id 'm' already exists"
    );

    // query-chardev: a mux row; the base is not open on its frontend side
    // until the mux has a frontend.
    let row = |rows: &[chardevd::commands::ChardevInfo], id: &str| {
        let r = rows.iter().find(|r| r.label == id).unwrap();
        (r.filename.clone(), r.frontend_open)
    };
    let rows = h.query_chardev().await.unwrap();
    assert_eq!(row(&rows, "m"), ("mux".into(), false));
    assert_eq!(row(&rows, "base"), ("ringbuf".into(), false));

    // Four frontends, and a mux of the mux takes one of them.
    let mut fes = Vec::new();
    for _ in 0..3 {
        fes.push(h.attach("m").await.unwrap());
    }
    h.chardev_add("mm", mux("m")).await.unwrap();
    assert_eq!(
        err(h.attach("m").await.unwrap_err()),
        "too many uses of multiplexed chardev 'm' (maximum is 4)"
    );
    assert_eq!(
        err(h.chardev_add("mm2", mux("m")).await.unwrap_err()),
        "Failed to add chardev 'mm2': too many uses of multiplexed chardev 'm' (maximum is 4)"
    );
    // Frontends that have not opened leave the base's frontend closed.
    assert_eq!(
        row(&h.query_chardev().await.unwrap(), "base"),
        ("ringbuf".into(), false)
    );
    // The first to open opens it (and it stays open); the mux's own
    // frontend-open is its focused frontend's (QEMU): the focus is on mm,
    // which has no frontend of its own.
    fes[0].set_open(true).await.unwrap();
    eventually_rows(&h, |rows| row(rows, "base") == ("ringbuf".into(), true)).await;
    assert_eq!(row(&h.query_chardev().await.unwrap(), "m"), ("mux".into(), false));

    // Busy and hot-swap refusals.
    assert_eq!(
        err(h.chardev_remove("base").await.unwrap_err()),
        "Chardev 'base' is busy"
    );
    assert_eq!(err(h.chardev_remove("m").await.unwrap_err()), "Chardev 'm' is busy");
    assert_eq!(
        err(h.chardev_change("m", ring()).await.unwrap_err()),
        "For mux or hub device hotswap is not supported yet"
    );
    assert_eq!(
        err(h.chardev_change("base", ring()).await.unwrap_err()),
        "Chardev user does not support chardev hotswap"
    );
    assert_eq!(
        err(h.ringbuf_write("m", b"x").await.unwrap_err()),
        "m is not a ringbuf device"
    );

    // A mux with no frontend can be removed; the freed slot is reused.
    h.chardev_remove("mm").await.unwrap();
    h.chardev_add("mm", mux("m")).await.unwrap();
    h.chardev_remove("mm").await.unwrap();
    let fe4 = h.attach("m").await.unwrap();
    fe4.set_open(true).await.unwrap();
    eventually_rows(&h, |rows| row(rows, "m") == ("mux".into(), true)).await;
    fes.push(fe4);
    for fe in fes {
        fe.detach().await.unwrap();
    }
    h.chardev_remove("m").await.unwrap();
    h.chardev_remove("base").await.unwrap();
    h.shutdown();
    h.join();
}

async fn eventually_rows(h: &runtime::Handle, cond: impl Fn(&[chardevd::commands::ChardevInfo]) -> bool) {
    for _ in 0..500 {
        if cond(&h.query_chardev().await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("query-chardev never showed it: {:?}", h.query_chardev().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frontend_limit_is_a_downstream_extension() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("base", ring()).await.unwrap();
    let one = ChardevBackend::from_qmp(&serde_json::json!({
        "type": "mux", "data": {"chardev": "base", "__org.chardevd_max-frontends": 1}
    }))
    .unwrap();
    h.chardev_add("m", one).await.unwrap();
    let _fe = h.attach("m").await.unwrap();
    assert_eq!(
        h.attach("m").await.unwrap_err().to_string(),
        "too many uses of multiplexed chardev 'm' (maximum is 1)"
    );
    let bad = ChardevBackend::from_qmp(&serde_json::json!({
        "type": "mux", "data": {"chardev": "base", "__org.chardevd_max-frontends": 65}
    }))
    .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "mux: __org.chardevd_max-frontends must be between 1 and 64"
    );
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_a_x_raises_an_event_unless_exit_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    let mut events = h.events(16).await.unwrap();
    h.chardev_add("base", unix_server(&path)).await.unwrap();
    h.chardev_add("m", mux("base")).await.unwrap();
    let _fe = h.attach("m").await.unwrap();
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"\x01x").unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        ev.event,
        chardevd::events::Event::ExitRequest {
            chardev: "m".into(),
            source: chardevd::events::ExitSource::Mux,
            status: None
        }
    );
    assert!(h.is_running());
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_of_a_ring_base_is_readable_and_help_lands_in_it() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("base", ring()).await.unwrap();
    h.chardev_add("m", mux("base")).await.unwrap();
    let fe = h.attach("m").await.unwrap();
    fe.write(Bytes::from_static(b"through the mux")).await.unwrap();
    fe.flush().await.unwrap();
    let mut got = String::new();
    for _ in 0..100 {
        got += &h.ringbuf_read_text("base", 100).await.unwrap();
        if got.len() >= 15 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, "through the mux");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_escape_character_as_with_qemus_echr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sock");
    let h = runtime::spawn(Config {
        escape_char: Some(0x14),
        ..Config::default()
    })
    .unwrap();
    h.chardev_add("base", unix_server(&path)).await.unwrap();
    h.chardev_add("m", mux("base")).await.unwrap();
    let mut fe = h.attach("m").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::MuxIn);
    let mut c = UnixStream::connect(&path).unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    // C-a is now plain data; C-t h prints the help naming C-t.
    c.write_all(b"\x01a").unwrap();
    assert_eq!(read_data(&mut fe, 2).await, b"\x01a");
    c.write_all(b"\x14h").unwrap();
    let want = chardevd::internals::mux::help_text(0x14);
    assert!(want.starts_with(b"\n\rC-t h    print this help"));
    assert_eq!(read_exact(&mut c, want.len()), want);
    // C-t C-t sends one C-t.
    c.write_all(b"\x14\x14").unwrap();
    assert_eq!(read_data(&mut fe, 1).await, b"\x14");
    h.shutdown();
    h.join();
}
