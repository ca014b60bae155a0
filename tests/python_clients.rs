//! Interoperability with QEMU's own Python client library (`qemu.qmp`, PyPI)
//! and its `qmp-shell`, run against the daemon binary.
mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn has_qemu_qmp() -> bool {
    Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn qemu_qmp_client_library_runs_every_chardev_command() {
    if !require("python3 with qemu.qmp (pip install qemu.qmp)", has_qemu_qmp()) {
        return;
    }
    let d = chardevd(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/qemu_qmp_client.py");
    let out = Command::new("python3").arg(script).arg(&d.socket).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all chardev commands OK"), "{text}");
}

#[test]
fn qmp_shell_drives_the_daemon() {
    let found = has_qemu_qmp() && Command::new("qmp-shell").arg("--help").output().is_ok();
    if !require("qmp-shell (pip install qemu.qmp)", found) {
        return;
    }
    let d = chardevd(&[]);
    let mut child = Command::new("qmp-shell")
        .arg(&d.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"chardev-add id=s1 backend={\"type\":\"ringbuf\",\"data\":{\"size\":64}}\n\
              ringbuf-write device=s1 data=hello\n\
              ringbuf-read device=s1 size=10\n\
              chardev-send-break id=s1\n\
              chardev-change id=s1 backend={\"type\":\"null\",\"data\":{}}\n\
              query-chardev\n\
              chardev-remove id=s1\n\
              query-chardev-backends\n\
              chardev-remove id=s1\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Connected to QEMU 10.0.2"), "{text}");
    assert!(text.contains(r#"{"return": "hello"}"#), "{text}");
    assert!(
        text.contains(r#"{"return": [{"frontend-open": false, "filename": "null", "label": "s1"}]}"#),
        "{text}"
    );
    assert!(text.contains(r#"{"name": "ringbuf"}"#), "{text}");
    assert!(text.contains("Chardev 's1' not found"), "{text}");
}
