//! Interoperability with QEMU's own Python client library (`qemu.qmp`, PyPI)
//! and its `qmp-shell`, run against the daemon binary.
mod common;

use common::*;
use std::process::Command;

fn has_qemu_qmp() -> bool {
    Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn qemu_qmp_client_library_runs_every_chardev_command() {
    if !require("python3 with qemu.qmp", has_qemu_qmp()) {
        return;
    }
    let d = chardevd(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/qemu_qmp_client.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(&d.socket);
    let out = output_within(cmd, None, 60);
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
    if !require("qmp-shell (from qemu.qmp)", found) {
        return;
    }
    let d = chardevd(&[]);
    let mut cmd = Command::new("qmp-shell");
    cmd.arg(&d.socket);
    let input: &[u8] = b"chardev-add id=s1 backend={\"type\":\"ringbuf\",\"data\":{\"size\":64}}\n\
              ringbuf-write device=s1 data=hello\n\
              ringbuf-read device=s1 size=10\n\
              chardev-send-break id=s1\n\
              chardev-change id=s1 backend={\"type\":\"null\",\"data\":{}}\n\
              query-chardev\n\
              chardev-remove id=s1\n\
              query-chardev-backends\n\
              chardev-remove id=s1\n";
    let out = output_within(cmd, Some(input), 60);
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
