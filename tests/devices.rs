//! The emulated-device and UI kinds with real frontends: msmouse and
//! wctablet driven by `input-send-event` (decoded from the bytes a frontend
//! receives, with the serial-line ioctls that power and configure them),
//! testdev's `q` (an event, or the daemon's exit status with --allow-exit),
//! vc (a screen the frontend draws into, keys back as terminal bytes), and
//! the kinds refused as a QEMU built without them.
mod common;

use bytes::Bytes;
use chardevd::backends::{ChardevBackend, Vc};
use chardevd::commands::{Axis, Button, InputEvent};
use chardevd::frontend::{CharIoctl, FrontendEvent, Parity, SerialParams};
use chardevd::internals::{msmouse, wctablet};
use chardevd::{self as runtime, Config};
use common::*;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn backend(kind: &str, data: serde_json::Value) -> ChardevBackend {
    ChardevBackend::from_qmp(&serde_json::json!({"type": kind, "data": data})).unwrap()
}

fn rel(axis: Axis, value: i64) -> InputEvent {
    InputEvent::Rel { axis, value }
}

/// Decode Microsoft mouse packets: (buttons L/R/M, dx, dy) per packet.
fn decode_mouse(b: &[u8]) -> Vec<(bool, bool, Option<bool>, i8, i8)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        assert_eq!(b[i] & 0x40, 0x40, "sync bit at packet start: {b:02x?}");
        let dx = (((b[i] & 0x03) << 6) | (b[i + 1] & 0x3f)) as i8;
        let dy = ((((b[i] >> 2) & 0x03) << 6) | (b[i + 2] & 0x3f)) as i8;
        let mut p = (b[i] & 0x20 != 0, b[i] & 0x10 != 0, None, dx, dy);
        i += 3;
        if i < b.len() && b[i] & 0x40 == 0 {
            p.2 = Some(b[i] & 0x20 != 0);
            i += 1;
        }
        out.push(p);
    }
    assert_eq!(i, b.len(), "whole packets");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msmouse_sends_pnp_at_power_up_and_packets_for_events() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("m", backend("msmouse", serde_json::json!({})))
        .await
        .unwrap();
    let mut fe = h.attach("m").await.unwrap();
    // Unpowered: events are ignored (and msmouse never reports OPENED).
    h.input_send_event(None, vec![rel(Axis::X, 10)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fe.try_recv().is_none());
    // DTR up: M3 and the PnP id.
    fe.ioctl(CharIoctl::SerialSetTiocm(msmouse::TIOCM_DTR)).await.unwrap();
    assert_eq!(fe.ioctl(CharIoctl::SerialGetTiocm).await.unwrap(), msmouse::TIOCM_DTR);
    let id = read_data(&mut fe, 44).await;
    assert_eq!(id, msmouse::power_up_bytes());
    assert_eq!(&id[..2], b"M3");
    // A move with the left button, then the middle button.
    h.input_send_event(
        None,
        vec![
            rel(Axis::X, 10),
            rel(Axis::Y, -4),
            InputEvent::Btn {
                button: Button::Left,
                down: true,
            },
        ],
    )
    .await
    .unwrap();
    h.input_send_event(
        Some("m"),
        vec![InputEvent::Btn {
            button: Button::Middle,
            down: true,
        }],
    )
    .await
    .unwrap();
    let got = read_data(&mut fe, 7).await;
    assert_eq!(
        decode_mouse(&got),
        [(true, false, None, 10, -4), (true, false, Some(true), 0, 0)]
    );
    // Power down: nothing more.
    fe.ioctl(CharIoctl::SerialSetTiocm(0)).await.unwrap();
    h.input_send_event(None, vec![rel(Axis::X, 1)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fe.try_recv().is_none());
    h.shutdown();
    h.join();
}

fn speed(bps: u32) -> CharIoctl {
    CharIoctl::SerialSetParams(SerialParams {
        speed: bps,
        parity: Parity::None,
        data_bits: 8,
        stop_bits: 1,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wctablet_answers_at_9600_and_reports_pen_positions() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("w", backend("wctablet", serde_json::json!({})))
        .await
        .unwrap();
    let mut fe = h.attach("w").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    // The configuration blob, queued at open.
    assert_eq!(read_data(&mut fe, 61).await, wctablet::FULL_CONFIG);
    // At 1200 baud commands are ignored.
    fe.ioctl(speed(1200)).await.unwrap();
    fe.write(Bytes::from_static(b"~#")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fe.try_recv().is_none());
    fe.ioctl(speed(9600)).await.unwrap();
    fe.write(Bytes::from_static(b"~#RE\rST\r")).await.unwrap();
    let mut want = wctablet::MODEL.to_vec();
    want.extend_from_slice(wctablet::CONFIG);
    want.extend_from_slice(&[0xe0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(read_data(&mut fe, want.len()).await, want);
    // A pen position and a press: one 7-byte packet, decoded.
    h.input_send_event(
        None,
        vec![
            InputEvent::Abs {
                axis: Axis::X,
                value: 0x4000,
            },
            InputEvent::Abs {
                axis: Axis::Y,
                value: 0x2000,
            },
            InputEvent::Btn {
                button: Button::Left,
                down: true,
            },
        ],
    )
    .await
    .unwrap();
    let p = read_data(&mut fe, 7).await;
    let x = ((p[0] as u32 & 3) << 14) | ((p[1] as u32) << 7) | p[2] as u32;
    let y = ((p[3] as u32) << 14) | ((p[4] as u32) << 7) | p[5] as u32;
    assert_eq!(p[0], 0xa0, "pen down");
    assert_eq!(
        (x, y),
        ((0x4000 as f64 * 0.1537) as u32, (0x2000 as f64 * 0.1152) as u32)
    );
    // SP stops events.
    fe.write(Bytes::from_static(b"SP\r")).await.unwrap();
    fe.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.input_send_event(
        None,
        vec![InputEvent::Abs {
            axis: Axis::X,
            value: 1,
        }],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fe.try_recv().is_none());
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vc_draws_the_frontend_output_and_sends_keys_back() {
    let h = runtime::spawn(Config::default()).unwrap();
    let vc = Vc {
        cols: Some(40),
        rows: Some(10),
        ..Vc::default()
    };
    h.chardev_add("con", ChardevBackend::new(vc)).await.unwrap();
    let mut fe = h.attach("con").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    let s = h.screendump_text(None).await.unwrap();
    assert_eq!((s.cols, s.rows), (40, 10));
    assert_eq!(s.lines[0], "con console");
    fe.write(Bytes::from_static(b"login: \x1b[1mroot\x1b[0m\r\n\x1b[5;3Hmiddle"))
        .await
        .unwrap();
    fe.flush().await.unwrap();
    let mut s = h.screendump_text(Some("con")).await.unwrap();
    for _ in 0..100 {
        if s.lines[4].contains("middle") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        s = h.screendump_text(Some("con")).await.unwrap();
    }
    assert_eq!(s.lines[1], "login: root");
    assert_eq!(s.lines[4], "  middle");
    assert_eq!((s.cursor_row, s.cursor_col), (4, 8));
    let key = |q: &str, down| InputEvent::Key { qcode: q.into(), down };
    h.input_send_event(
        None,
        vec![
            key("l", true),
            key("l", false),
            key("shift", true),
            key("s", true),
            key("shift", false),
            key("up", true),
            key("ctrl", true),
            key("c", true),
        ],
    )
    .await
    .unwrap();
    assert_eq!(read_data(&mut fe, 6).await, b"lS\x1b[A\x03");
    // A screen of something that is not a vc.
    h.chardev_add("n", backend("null", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(
        h.screendump_text(Some("n")).await.unwrap_err().to_string(),
        "Device 'n' not found"
    );
    h.shutdown();
    h.join();
}

/// The vc over QMP: `send-key` and `__org.chardevd_screendump-text`.
#[test]
fn vc_over_qmp_and_keys_from_send_key() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("vc.sock");
    let d = chardevd(&[
        "-chardev",
        "vc,id=v,cols=30,rows=5",
        "-chardev",
        &format!("socket,id=s,path={},server=on,wait=off", sock.display()),
        "-device",
        "bridge,id=b,chardev=v,peer=s",
    ]);
    let mut c = Client::negotiated(&d.socket);
    assert_eq!(
        c.cmd(r#"{"execute":"__org.chardevd_screendump-text"}"#),
        r#"{"return": {"lines": ["v console", "", "", "", ""], "cols": 30, "cursor-col": 0, "cursor-row": 1, "rows": 5}}"#
    );
    let mut peer = UnixStream::connect(&sock).unwrap();
    peer.write_all(b"$ echo hi\r\nhi").unwrap();
    let mut last = String::new();
    for _ in 0..200 {
        last = c.cmd(r#"{"execute":"__org.chardevd_screendump-text","arguments":{"device":"v"}}"#);
        if last.contains(r#""hi""#) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        last.contains(r#""lines": ["v console", "$ echo hi", "hi", "", ""]"#),
        "{last}"
    );
    assert_eq!(
        c.cmd(r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"shift"},{"type":"number","data":30}]}}"#),
        r#"{"return": {}}"#
    );
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 1];
    std::io::Read::read_exact(&mut peer, &mut b).unwrap();
    assert_eq!(&b, b"A");
    assert_eq!(
        c.cmd(r#"{"execute":"__org.chardevd_screendump-text","arguments":{"device":"s"}}"#),
        r#"{"error": {"class": "DeviceNotFound", "desc": "Device 's' not found"}}"#
    );
}

/// testdev's `q`: without --allow-exit an event with the status QEMU would
/// exit with; with it, the daemon exits with that status (no SHUTDOWN).
#[test]
fn testdev_q_is_an_event_or_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("t.sock");
    let chardevs = [
        "-chardev".to_owned(),
        "testdev,id=t".to_owned(),
        "-chardev".to_owned(),
        format!("socket,id=s,path={},server=on,wait=off", sock.display()),
        "-device".to_owned(),
        "bridge,id=b,chardev=t,peer=s".to_owned(),
    ];
    let args: Vec<&str> = chardevs.iter().map(String::as_str).collect();
    let d = chardevd(&args);
    let mut c = Client::negotiated(&d.socket);
    let mut peer = UnixStream::connect(&sock).unwrap();
    peer.write_all(b" 12 q").unwrap();
    let ev = c.line();
    for part in [
        r#""event": "__org.chardevd_EXIT_REQUEST""#,
        r#""chardev": "t""#,
        r#""source": "testdev""#,
        r#""status": 25"#,
    ] {
        assert!(ev.contains(part), "{part} in {ev}");
    }
    // The daemon runs on.
    assert!(c.cmd(r#"{"execute":"query-version"}"#).starts_with(r#"{"return""#));
    drop(d);

    let dir = tempfile::tempdir().unwrap();
    let qmp = dir.path().join("q.sock");
    let sock = dir.path().join("t.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chardevd"))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()))
        .args(["--allow-exit", "-chardev", "testdev,id=t", "-chardev"])
        .arg(format!("socket,id=s,path={},server=on,wait=off", sock.display()))
        .args(["-device", "bridge,id=b,chardev=t,peer=s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_socket_file(&sock);
    let mut peer = UnixStream::connect(&sock).unwrap();
    peer.write_all(b"x 12q").unwrap();
    let mut status = None;
    for _ in 0..500 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the daemon did not exit")
    });
    assert_eq!(status.code(), Some(25));
}

/// SPICE, D-Bus and Windows kinds, refused as a QEMU built without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbuilt_kinds_are_refused_as_qemu_refuses_them() {
    let h = runtime::spawn(Config::default()).unwrap();
    for (kind, data) in [
        ("spicevmc", serde_json::json!({"type": "vdagent"})),
        ("spiceport", serde_json::json!({"fqdn": "org.qemu.console.0"})),
        ("qemu-vdagent", serde_json::json!({})),
        ("dbus", serde_json::json!({"name": "x"})),
        #[cfg(not(feature = "braille"))]
        ("braille", serde_json::json!({})),
    ] {
        let e = h.chardev_add("x", backend(kind, data)).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Failed to add chardev 'x': '{kind}' is not a valid char driver name")
        );
    }
    assert!(ChardevBackend::from_qmp(&serde_json::json!({"type": "console", "data": {}})).is_err());
    let kinds = h.query_chardev_backends().await.unwrap();
    for k in ["spicevmc", "spiceport", "qemu-vdagent", "dbus", "console"] {
        assert!(!kinds.contains(&k), "{k} listed");
    }
    // braille is there with the cargo feature (the default), as in Debian's
    // QEMU once its module is loaded (tests/braille.rs), and refused without.
    assert_eq!(kinds.contains(&"braille"), cfg!(feature = "braille"));
    for k in ["msmouse", "wctablet", "testdev", "vc"] {
        assert!(kinds.contains(&k), "{k} missing");
    }
    h.shutdown();
    h.join();
}
