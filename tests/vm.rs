//! End to end with a real Linux VM (issue #21): Debian's cloud kernel
//! boots a busybox initramfs (built here) under QEMU TCG, its COM1 dialling
//! a chardevd socket chardev that is bridged to a console with history,
//! several clients and a rotated, timestamped log.
//!
//! The guest's peers: the kernel (`CHARDEVD_VM_KERNEL`, else the one
//! `.ci/install-deps` unpacks under /opt/chardevd-vm, else /boot's cloud
//! kernel), busybox (`busybox-static`) and QEMU 10.
mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn kernel() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("CHARDEVD_VM_KERNEL") {
        return Some(PathBuf::from(k));
    }
    for dir in ["/opt/chardevd-vm/boot", "/boot"] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("vmlinuz-") && n.ends_with("-cloud-amd64")
            })
            .filter(|p| std::fs::File::open(p).is_ok())
            .collect();
        found.sort();
        if let Some(k) = found.pop() {
            return Some(k);
        }
    }
    None
}

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// One `newc` cpio entry.
fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) {
    let name0 = format!("{name}\0");
    let header = format!(
        "070701{ino:08X}{mode:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        0,
        0,
        1,
        0,
        data.len(),
        0,
        0,
        0,
        0,
        name0.len(),
        0
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name0.as_bytes());
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// An initramfs: busybox, and an init that mounts the pseudo file systems,
/// announces itself and runs a shell on the console for ever.
fn initramfs(busybox: &Path, out: &Path) {
    let init = "#!/bin/busybox sh\n\
        /bin/busybox --install -s /bin\n\
        mount -t proc proc /proc\n\
        mount -t sysfs sysfs /sys\n\
        mount -t devtmpfs devtmpfs /dev\n\
        exec </dev/console >/dev/console 2>&1\n\
        export PATH=/bin HOME=/root PS1='vm# '\n\
        echo CHARDEVD-VM-READY\n\
        while true; do setsid cttyhack sh; done\n";
    let mut a = Vec::new();
    let mut ino = 1;
    for d in ["bin", "proc", "sys", "dev", "tmp", "root"] {
        cpio_entry(&mut a, ino, d, 0o040755, b"");
        ino += 1;
    }
    cpio_entry(&mut a, ino, "bin/busybox", 0o100755, &std::fs::read(busybox).unwrap());
    cpio_entry(&mut a, ino + 1, "init", 0o100755, init.as_bytes());
    cpio_entry(&mut a, ino + 2, "TRAILER!!!", 0, b"");
    std::fs::write(out, a).unwrap();
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon(dir: &Path) -> Killed {
    let qmp = dir.join("qmp.sock");
    let _ = std::fs::remove_file(&qmp);
    let child = Command::new(chardevd_bin())
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()))
        .arg("-chardev")
        .arg(format!(
            "socket,id=vm,path={}/vm.sock,server=on,wait=off",
            dir.display()
        ))
        .arg("-chardev")
        .arg(format!(
            "socket,id=con,path={}/con.sock,server=on,wait=off,__org.chardevd_max-clients=3,\
             __org.chardevd_history=256K,__org.chardevd_client-queue=16K,\
             logfile={}/con.log,logappend=on,logtimestamp=on,__org.chardevd_logsize=8K,__org.chardevd_logbackups=100",
            dir.display(),
            dir.display()
        ))
        .args(["-device", "bridge,id=b,chardev=vm,peer=con"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chardevd");
    wait_for_socket_file(&qmp);
    Killed(child)
}

/// Every log file, oldest first, concatenated.
fn whole_log(dir: &Path) -> String {
    let log = dir.join("con.log");
    let mut all = Vec::new();
    for i in (1..=100).rev() {
        if let Ok(b) = std::fs::read(format!("{}.{i}", log.display())) {
            all.extend(b);
        }
    }
    all.extend(std::fs::read(&log).unwrap_or_default());
    String::from_utf8_lossy(&all).into_owned()
}

/// The log's lines without their stamps (each checked to have one).
fn unstamped(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            let (stamp, rest) = l.split_once(' ').unwrap_or((l, ""));
            assert!(
                stamp.len() >= 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
                "a log line without its stamp: {l:?}"
            );
            rest.to_owned()
        })
        .collect()
}

fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A console client whose thread collects what it reads.
struct Viewer {
    s: UnixStream,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Viewer {
    fn new(dir: &Path) -> Viewer {
        let s = UnixStream::connect(dir.join("con.sock")).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut r, into) = (s.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Viewer { s, seen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    fn wait_for(&mut self, what: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.text().contains(what) {
            assert!(Instant::now() < deadline, "no {what:?} in {:?}", tail(&self.text()));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.s.shutdown(std::net::Shutdown::Both);
    }
}

fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(600);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

#[test]
fn a_linux_vm_console_through_chardevd() {
    let (Some(kernel), Some(busybox), Some(_)) = (kernel(), busybox(), qemu_binary()) else {
        require(
            "a cloud kernel, busybox-static and QEMU 10 (sh .ci/install-deps)",
            false,
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    initramfs(&busybox, &dir.join("initrd"));
    let mut chardevd = daemon(dir);
    let _qemu = Killed(
        Command::new("qemu-system-x86_64")
            .args([
                "-machine",
                "q35",
                "-accel",
                "tcg",
                "-m",
                "256",
                "-display",
                "none",
                "-nodefaults",
                "-no-reboot",
            ])
            .arg("-chardev")
            .arg(format!("socket,id=c,path={}/vm.sock,reconnect-ms=500", dir.display()))
            .args(["-serial", "chardev:c", "-kernel"])
            .arg(&kernel)
            .arg("-initrd")
            .arg(dir.join("initrd"))
            .args(["-append", "console=ttyS0 panic=-1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn QEMU"),
    );

    // 1. The whole boot log, with nobody connected: rotated and stamped.
    until("the guest's shell in the log", 240, || {
        whole_log(dir).contains("CHARDEVD-VM-READY")
    });
    let boot = unstamped(&whole_log(dir));
    assert!(
        boot[0].contains("Linux version"),
        "the log starts with the kernel's first line: {:?}",
        boot[0]
    );
    assert!(
        Path::new(&format!("{}/con.log.1", dir.display())).exists(),
        "the boot log rotated"
    );
    for i in 1..=100 {
        let f = format!("{}/con.log.{i}", dir.display());
        if let Ok(m) = std::fs::metadata(&f) {
            assert!(m.len() <= 8192, "{f} is {} bytes", m.len());
        }
    }

    // 2. A late client gets the history: the boot from its first line.
    let mut a = Viewer::new(dir);
    a.wait_for("CHARDEVD-VM-READY", 10);
    assert!(a.text().contains("Linux version"), "the history holds the boot");

    // 3. Two clients type and see the same output; a third, stopped, reads
    // nothing and stalls nobody.
    let mut b = Viewer::new(dir);
    let stopped = UnixStream::connect(dir.join("con.sock")).unwrap();
    b.wait_for("CHARDEVD-VM-READY", 10);
    a.s.write_all(b"echo from-a-$((6*7))\n").unwrap();
    a.wait_for("from-a-42", 30);
    b.wait_for("from-a-42", 30);
    b.s.write_all(b"echo from-b-$((7*7))\n").unwrap();
    a.wait_for("from-b-49", 30);
    b.wait_for("from-b-49", 30);
    // Much more than the stopped client's queue and socket buffers hold.
    a.s.write_all(b"i=0; while [ $i -lt 6000 ]; do echo bulk-$i-0123456789abcdefghijklmnopqrstuvwxyz; i=$((i+1)); done; echo BULK-$((1+1))-DONE\n")
        .unwrap();
    let started = Instant::now();
    while !(a.text().contains("BULK-2-DONE") && b.text().contains("BULK-2-DONE")) {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the bulk output did not reach both clients"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for v in [&a, &b] {
        let t = v.text();
        let n = t.matches("-0123456789abcdefghijklmnopqrstuvwxyz").count();
        assert!(n >= 6000, "a reading client lost lines: {n}");
    }
    let mut qmp = Client::negotiated(&dir.join("qmp.sock"));
    let clients: serde_json::Value =
        serde_json::from_str(&qmp.cmd(r#"{"execute":"__org.chardevd_query-clients","arguments":{"id":"con"}}"#))
            .unwrap();
    let rows = clients["return"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["dropped"], 0);
    assert_eq!(rows[1]["dropped"], 0);
    assert!(
        rows[2]["dropped"].as_u64().unwrap() > 0,
        "the stopped client lost its oldest bytes: {}",
        rows[2]
    );
    drop((a, b, stopped));

    // 4. A chardevd restart: QEMU dials again; nothing the guest writes
    // after it reconnected is lost.
    let mut v = Viewer::new(dir);
    v.s.write_all(b"(i=0; while [ $i -lt 60 ]; do echo TICK-$i; i=$((i+1)); sleep 0.2; done; echo TICKS-DONE) &\n")
        .unwrap();
    v.wait_for("TICK-5", 30);
    drop(v);
    let _ = Command::new("kill").arg(chardevd.0.id().to_string()).status();
    let _ = chardevd.0.wait();
    chardevd = daemon(dir);
    let mut late = Viewer::new(dir);
    late.wait_for("TICKS-DONE", 60);
    // The ticks after the reconnect: in the history and in the log, one
    // run without a gap up to the last.
    for (what, text) in [("history", late.text()), ("log", whole_log(dir))] {
        let after = text.rsplit("TICK-5\r\n").next().unwrap_or(&text).to_owned();
        let ticks: Vec<u32> = after
            .lines()
            .filter_map(|l| l.trim_end().rsplit("TICK-").next().filter(|_| l.contains("TICK-")))
            .filter_map(|n| n.parse().ok())
            .collect();
        let first = *ticks.iter().find(|t| **t > 5).expect("ticks after the restart");
        let want: Vec<u32> = (first..60).collect();
        let got: Vec<u32> = ticks.into_iter().filter(|t| *t >= first).collect();
        assert_eq!(got, want, "ticks in the {what} after the reconnect");
    }
    drop(chardevd);
}
