//! The daemon as a new user runs it: the command line, its messages, the
//! default socket, quit and signals, help and version. (The exact texts of
//! command-line errors QEMU also gives are compared with a live QEMU in
//! `tests/differential.rs`.)
mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn daemon() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chardevd"));
    c.env_remove("RUST_LOG");
    c
}

/// Run to completion (killed after 10 s): status, stdout, stderr.
fn run(cmd: Command) -> (bool, String, String) {
    let out = output_within(cmd, None, 10);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running daemon whose stdout and stderr lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<(&'static str, String)>,
    seen: Vec<(&'static str, String)>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(("stdout", l));
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(("stderr", l));
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for a line containing `text` on `stream`; returns it.
    fn expect(&mut self, stream: &str, text: &str) -> String {
        if let Some((_, l)) = self.seen.iter().find(|(s, l)| *s == stream && l.contains(text)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok((s, l)) => {
                    self.seen.push((s, l.clone()));
                    if s == stream && l.contains(text) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no {stream} line with {text:?}; saw {:#?}", self.seen);
    }

    /// Every line so far (waiting `settle` for more).
    fn all(&mut self, settle: Duration) -> Vec<(&'static str, String)> {
        while let Ok(l) = self.lines.recv_timeout(settle) {
            self.seen.push(l);
        }
        self.seen.clone()
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    fn exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "the daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Item 1: a second daemon does not take the first one's live socket; a
/// stale socket (its daemon killed) is replaced.
#[test]
fn a_second_daemon_refuses_a_live_socket_and_replaces_only_a_stale_one() {
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("chardevd/qmp.sock");
    let with_env = || {
        let mut c = daemon();
        c.env("XDG_RUNTIME_DIR", run_dir.path());
        c
    };
    let mut first = Running::start(with_env());
    let line = first.expect("stdout", "QMP listening on");
    assert_eq!(line, format!("chardevd: QMP listening on unix:{}", socket.display()));
    let (ok, out, err) = run(with_env());
    assert!(!ok, "the second daemon must fail");
    assert!(!out.contains("QMP listening"), "{out}");
    assert!(
        err.contains(&format!(
            "chardevd: unix:{0}: Failed to bind socket to {0}: a server is listening there",
            socket.display()
        )),
        "{err}"
    );
    // The first one still serves on its socket.
    let mut c = Client::negotiated(&socket);
    assert!(c.cmd(r#"{"execute":"query-chardev"}"#).contains("console0"));
    drop(c);
    // Killed without cleaning up: the socket file stays, stale.
    first.signal("KILL");
    first.exit();
    assert!(socket.exists());
    let mut third = Running::start(with_env());
    third.expect("stdout", "QMP listening on");
    Client::negotiated(&socket);
}

/// Item 2: `quit` sends SHUTDOWN (host-qmp-quit) to every session before
/// its reply; SIGTERM and SIGINT send SHUTDOWN (host-signal); the schema
/// lists the event.
#[test]
fn quit_and_signals_send_shutdown_to_every_session() {
    fn shutdown(reason: &str) -> impl Fn(&str) -> bool + '_ {
        move |line: &str| {
            line.starts_with(r#"{"timestamp": {"seconds": "#)
                && line.ends_with(&format!(
                    r#""event": "SHUTDOWN", "data": {{"guest": false, "reason": "{reason}"}}}}"#
                ))
        }
    }
    // quit
    let mut d = chardevd(&[]);
    let mut a = Client::negotiated(&d.socket);
    let mut b = Client::negotiated(&d.socket);
    let schema = a.cmd(r#"{"execute":"query-qmp-schema"}"#);
    assert!(
        schema.contains(r#"{"name": "SHUTDOWN", "meta-type": "event""#),
        "SHUTDOWN in the schema"
    );
    let first = a.cmd(r#"{"execute":"quit","id":1}"#);
    assert!(shutdown("host-qmp-quit")(&first), "{first}");
    assert_eq!(a.line(), r#"{"return": {}, "id": 1}"#);
    let other = b.line();
    assert!(shutdown("host-qmp-quit")(&other), "{other}");
    assert_eq!(first, other, "one event, the same timestamp");
    assert!(d.child.wait().unwrap().success());
    // signals
    for sig in ["TERM", "INT"] {
        let mut d = chardevd(&[]);
        let mut a = Client::negotiated(&d.socket);
        let mut b = Client::negotiated(&d.socket);
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(d.child.id().to_string())
            .status();
        for c in [&mut a, &mut b] {
            let l = c.line();
            assert!(shutdown("host-signal")(&l), "SIG{sig}: {l}");
            assert_eq!(c.try_line(Duration::from_secs(5)), None, "then the end");
        }
        assert!(d.child.wait().unwrap().success(), "SIG{sig}: a clean exit");
    }
}

/// Item 5: the pty line whatever the log level; "QMP listening" once.
#[test]
fn the_pty_line_is_printed_whatever_the_log_level_and_the_listening_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let mut cmd = daemon();
    cmd.env("RUST_LOG", "warn")
        .arg("-chardev")
        .arg("pty,id=con0")
        .arg("-qmp")
        .arg(format!("unix:{},server=on", sock.display()));
    let mut d = Running::start(cmd);
    let line = d.expect("stderr", "char device redirected to");
    let pts = line
        .strip_prefix("char device redirected to ")
        .and_then(|l| l.strip_suffix(" (label con0)"))
        .unwrap_or_else(|| panic!("QEMU's form: {line}"));
    assert!(pts.starts_with("/dev/pts/") && Path::new(pts).exists(), "{pts}");
    wait_listening(&sock);
    d.signal("TERM");
    d.exit();
    // At the default level the listening line appears once, on stdout.
    let mut d = Running::start({
        let mut c = daemon();
        c.arg("-qmp").arg(format!("unix:{},server=on", sock.display()));
        c
    });
    d.expect("stdout", "QMP listening on");
    d.signal("TERM");
    d.exit();
    let lines = d.all(Duration::from_millis(300));
    let listening: Vec<_> = lines.iter().filter(|(_, l)| l.contains("QMP listening")).collect();
    assert_eq!(listening.len(), 1, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|(s, l)| *s == "stderr" && l == "chardevd: terminating on signal 15"),
        "{lines:#?}"
    );
}

/// Item 6: help and version to a closed or full stdout end quietly; the
/// help lists every spelling and its columns line up; `--opt=value`.
#[test]
fn help_and_version_survive_a_closed_stdout_and_options_take_equals() {
    for args in [["--help"], ["-V"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let status = daemon()
            .args(args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(status.status.success(), "{args:?} >/dev/full: {status:?}");
        assert!(status.stderr.is_empty(), "{}", String::from_utf8_lossy(&status.stderr));
        // A closed pipe: the reader is gone before the text is written.
        let mut child = daemon()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?} | true: {:?}", out.status);
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    let (ok, help, _) = run({
        let mut c = daemon();
        c.arg("--help");
        c
    });
    assert!(ok);
    for spelling in ["-h, -help, --help, help", "-V, -version, --version", "--option=VALUE"] {
        assert!(help.contains(spelling), "{spelling} listed");
    }
    // Every note starts in the same column.
    let columns: std::collections::HashSet<usize> = help
        .lines()
        .filter(|l| l.starts_with('-') && l.contains("  ("))
        .map(|l| l.find("  (").unwrap() + 2)
        .collect();
    assert_eq!(columns.len(), 1, "notes aligned: {columns:?}\n{help}");
    for spelling in ["help", "-help", "-h"] {
        let (ok, out, _) = run({
            let mut c = daemon();
            c.arg(spelling);
            c
        });
        assert!(ok && out == help, "{spelling}");
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let mut d = Running::start({
        let mut c = daemon();
        c.arg("--stall-timeout=5")
            .arg(format!("--qmp=unix:{},server=on", sock.display()))
            .arg("--chardev=null,id=n0");
        c
    });
    d.expect("stdout", "QMP listening on");
    let mut c = Client::negotiated(&sock);
    assert!(c.cmd(r#"{"execute":"query-chardev"}"#).contains(r#""label": "n0""#));
    let (ok, _, err) = run({
        let mut c = daemon();
        c.arg("--stall-timeout=0");
        c
    });
    assert!(
        !ok && err.contains("chardevd: --stall-timeout 0: must be positive"),
        "{err}"
    );
}

/// Item 7: what QEMU has and chardevd does not say what to use instead.
#[test]
fn unsupported_qemu_options_say_what_to_use_instead() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["-qmp", "stdio,server=on"],
            "chardevd: -qmp stdio,server=on: 'stdio,server=on' is not a valid char driver",
        ),
        (
            &["-qmp", "unix:/tmp/x.sock"],
            "chardevd: -qmp unix:/tmp/x.sock: chardevd serves QMP; it does not connect out: add server=on",
        ),
        (
            &["-mon", "chardev=x"],
            "chardevd: -mon chardev=x: chardevd has no human monitor (HMP): use mode=control",
        ),
        (&["-serial", "stdio"], "-device echo|port,chardev=ID"),
        (
            &["-nographic"],
            "chardevd: -nographic: chardevd has no display; it needs no -nographic",
        ),
        (&["-bogus"], "chardevd: -bogus: invalid option (see --help)"),
        (
            &["-chardev", "mux,id=m"],
            "chardevd: -chardev mux,id=m: chardev: mux: no chardev given",
        ),
    ];
    for (args, want) in cases {
        let (ok, out, err) = run({
            let mut c = daemon();
            c.args(*args);
            c
        });
        assert!(!ok, "{args:?} must fail");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(want), "{args:?}:\n{err}\nwanted: {want}");
        assert!(
            !err.contains("invalid option") || args[0] == "-bogus",
            "{args:?}: {err}"
        );
    }
    // A key of another backend: ignored (as QEMU), with a warning.
    let (_, _, err) = run({
        let mut c = daemon();
        c.args(["-chardev", "null,id=n,path=/x", "-chardev", "ringbuf,id=r,size=3"]);
        c
    });
    assert!(
        err.contains("chardevd: -chardev null,id=n,path=/x: warning: parameter 'path' has no effect on a null chardev"),
        "{err}"
    );
}

/// Item 8: a runtime directory that does not exist is not created; the
/// fallback is said.
#[test]
fn a_missing_xdg_runtime_dir_falls_back_to_tmp() {
    let gone = tempfile::tempdir().unwrap().path().join("run");
    let mut d = Running::start({
        let mut c = daemon();
        c.env("XDG_RUNTIME_DIR", &gone);
        c
    });
    let said = d.expect("stderr", "does not exist");
    let listening = d.expect("stdout", "QMP listening on");
    assert!(!gone.exists(), "{} created", gone.display());
    let fallback = listening.strip_prefix("chardevd: QMP listening on unix:").unwrap();
    assert!(
        fallback.starts_with("/tmp/chardevd-") && fallback.ends_with("/qmp.sock"),
        "{fallback}"
    );
    assert_eq!(
        said,
        format!(
            "chardevd: XDG_RUNTIME_DIR={} does not exist; using {}",
            gone.display(),
            Path::new(fallback).parent().unwrap().display()
        )
    );
    d.signal("TERM");
    d.exit();
}

/// Item 10: a missing peer is not a silent pass: the test fails and says
/// how to install it (unless CHARDEVD_SKIP_MISSING=1 outside CI).
#[test]
fn a_missing_peer_fails_and_names_the_installer() {
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") && !in_ci() {
        assert!(!require("a peer that does not exist", false), "skipped, as asked");
        return;
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let failed = std::panic::catch_unwind(|| require("a peer that does not exist", false));
    std::panic::set_hook(hook);
    let message = failed.expect_err("a missing peer fails the test");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        text.contains("a peer that does not exist") && text.contains("sh .ci/install-deps"),
        "{text}"
    );
    assert!(require("a peer that is here", true));
}

/// `--web` alone keeps the daemon's defaults (the QMP socket, `console0`)
/// and prints where the page is.
#[cfg(feature = "web")]
#[test]
fn web_alone_keeps_the_defaults_and_prints_the_page() {
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("chardevd/qmp.sock");
    let mut c = daemon();
    c.env("XDG_RUNTIME_DIR", run_dir.path())
        .args(["--web", "tcp:127.0.0.1:0"]);
    let mut d = Running::start(c);
    d.expect("stdout", "QMP listening on");
    let line = d.expect("stdout", "web console on");
    assert!(line.starts_with("chardevd: web console on http://127.0.0.1:"), "{line}");
    let mut q = Client::negotiated(&socket);
    assert!(q.cmd(r#"{"execute":"query-chardev"}"#).contains("console0"));
    drop(q);
    d.signal("TERM");
    d.exit();
}
