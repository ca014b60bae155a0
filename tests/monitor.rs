//! QMP monitors on chardevs (`-mon`, `-qmp` on a chardev,
//! `__org.chardevd_monitor-add`), run against the daemon binary: QEMU
//! 10.0.2's session rules (a greeting and negotiation per connection,
//! partial input dropped on close), pretty output, a monitor sharing a mux
//! with a console, errors, and qemu.qmp driving a monitor.
mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A raw client of a monitor's socket chardev.
fn monitor_client(path: &Path) -> Client {
    for _ in 0..500 {
        if path.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Client::connect(path)
}

fn greeting_ok(line: &str, oob: bool) {
    assert!(
        line.starts_with(r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}"#),
        "{line}"
    );
    let caps = if oob {
        r#""capabilities": ["oob"]}}"#
    } else {
        r#""capabilities": []}}"#
    };
    assert!(line.ends_with(caps), "{line}");
}

#[test]
fn a_monitor_on_a_socket_greets_every_client_and_forgets_partial_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mon.sock");
    let chardev = format!("socket,id=s,path={},server=on,wait=off", path.display());
    let d = chardevd(&["-chardev", &chardev, "-mon", "chardev=s,mode=control"]);
    let mut c = monitor_client(&path);
    greeting_ok(&c.line(), true);
    assert_eq!(
        c.cmd(r#"{"execute":"query-chardev-backends"}"#),
        r#"{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"qmp_capabilities","id":1}"#),
        r#"{"return": {}, "id": 1}"#
    );
    let rows = c.cmd(r#"{"execute":"query-chardev"}"#);
    assert!(
        rows.contains(&format!(r#""filename": "unix:{},server=on""#, path.display())),
        "{rows}"
    );
    assert!(rows.contains(r#""frontend-open": true"#), "{rows}");
    // Half a command, then the client goes.
    c.send(br#"{"execute":"query-na"#);
    drop(c);

    // A new client: a new greeting, negotiation again, a fresh parser.
    let mut c = monitor_client(&path);
    greeting_ok(&c.line(), true);
    c.send(b"me\"}\n");
    assert_eq!(
        c.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'me'"}}"#
    );
    assert_eq!(
        c.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\"}\n'"}}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"qmp_capabilities"}"#), r#"{"return": {}}"#);
    assert_eq!(
        c.cmd(r#"{"execute":"qmp_capabilities","id":"b"}"#),
        r#"{"id": "b", "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}"#
    );

    // Events reach the monitor once negotiated (here: a port's).
    let mut ctl = Client::negotiated(&d.socket);
    assert_eq!(
        ctl.cmd(r#"{"execute":"chardev-add","arguments":{"id":"p","backend":{"type":"null","data":{}}}}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(
        ctl.cmd(r#"{"execute":"device_add","arguments":{"driver":"port","id":"port0","chardev":"p"}}"#),
        r#"{"return": {}}"#
    );
    // (The control session gets the event too, before the reply.)
    assert!(ctl
        .cmd(r#"{"execute":"__org.chardevd_port-set-open","arguments":{"id":"port0","open":true}}"#)
        .contains("VSERPORT_CHANGE"));
    assert_eq!(ctl.line(), r#"{"return": {}}"#);
    let ev = c.line();
    assert!(
        ev.contains(r#""event": "VSERPORT_CHANGE""#) && ev.contains(r#""data": {"open": true, "id": "port0"}"#),
        "{ev}"
    );

    // The chardev has a monitor: it cannot be removed or changed.
    assert_eq!(
        ctl.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"s"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Chardev 's' is busy"}}"#
    );
    assert_eq!(
        ctl.cmd(r#"{"execute":"chardev-change","arguments":{"id":"s","backend":{"type":"null","data":{}}}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Chardev user does not support chardev hotswap"}}"#
    );
    // quit through the monitor: SHUTDOWN, the reply, and the daemon goes.
    c.send(b"{\"execute\":\"quit\"}\n");
    assert!(c.line().contains(r#""event": "SHUTDOWN""#));
    assert_eq!(c.line(), r#"{"return": {}}"#);
    let mut d = d;
    for _ in 0..250 {
        if d.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the daemon did not exit on quit");
}

/// What a `pretty=on` monitor on a unix socket chardev at `path` writes for
/// a fixed script: the greeting, a reply, an error, a list of objects
/// (one: QEMU's order of several is not creation order), an empty list and
/// an empty string, each as the client reads it.
fn pretty_transcript(path: &Path) -> Vec<String> {
    let mut c = monitor_client(path).stream;
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let read_until = |c: &mut UnixStream, end: &[u8]| {
        let mut got = Vec::new();
        while !got.ends_with(end) {
            let mut b = [0u8; 4096];
            let n = c.read(&mut b).expect("monitor output");
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&b[..n]);
        }
        String::from_utf8(got).unwrap()
    };
    let mut out = vec![mask_package_and_pts(&read_until(&mut c, b"\r\n}\r\n"))];
    for cmd in [
        r#"{"execute":"qmp_capabilities","id":"a"}"#,
        r#"{"execute":"chardev-remove","arguments":{"id":"zz"}}"#,
        r#"{"execute":"query-chardev"}"#,
        r#"{"execute":"chardev-add","arguments":{"id":"r","backend":{"type":"ringbuf","data":{}}}}"#,
        r#"{"execute":"query-yank","id":[1, {"k": []}]}"#,
        r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":8}}"#,
    ] {
        c.write_all(cmd.as_bytes()).unwrap();
        c.write_all(b"\n").unwrap();
        out.push(read_until(&mut c, b"\r\n}\r\n"));
    }
    out
}

/// `pretty=on`: chardevd's bytes are QEMU's (both run the same script).
#[test]
fn pretty_output_is_qemus_byte_for_byte() {
    let Some(bin) = qemu_binary() else {
        require("QEMU 10.0 (qemu-system-x86_64)", false);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mon.sock");
    let chardev = format!("socket,id=s,path={},server=on,wait=off", path.display());
    let mon = "chardev=s,mode=control,pretty=on";
    let mut qemu = std::process::Command::new(bin)
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-chardev",
            &chardev,
            "-mon",
            mon,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let want = pretty_transcript(&path);
    let _ = qemu.kill();
    let _ = qemu.wait();
    let _ = std::fs::remove_file(&path);
    let _d = chardevd(&["-chardev", &chardev, "-mon", mon]);
    let got = pretty_transcript(&path);
    assert!(want[1].contains("\r\n    \"return\": {\r\n    },\r\n"), "{want:?}");
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g, w);
    }
}

#[test]
fn a_monitor_shares_a_mux_with_a_console_and_c_a_c_switches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("con.sock");
    let chardev = format!("socket,id=con,path={},server=on,wait=off,mux=on", path.display());
    // The echo device attaches after the monitor (QEMU's order: monitors,
    // then devices), so the console has the focus first.
    let d = chardevd(&[
        "-chardev",
        &chardev,
        "-mon",
        "chardev=con,mode=control",
        "-device",
        "echo,chardev=con",
    ]);
    let mut c = monitor_client(&path);
    // Connecting opens the base: the monitor greets (QMP output reaches the
    // base focused or not).
    greeting_ok(&c.line(), true);
    c.send(b"typed at the console\r\n");
    assert_eq!(c.line(), "typed at the console");
    // C-a c: the monitor has the focus; the echo gets nothing.
    c.send(b"\x01c");
    assert_eq!(c.cmd(r#"{"execute":"qmp_capabilities"}"#), r#"{"return": {}}"#);
    let rows = c.cmd(r#"{"execute":"query-chardev"}"#);
    assert!(
        rows.contains(r#"{"frontend-open": true, "filename": "mux", "label": "con"}"#),
        "{rows}"
    );
    assert!(rows.contains(r#""label": "con-base""#), "{rows}");
    // C-a h prints QEMU's help into the console.
    c.send(b"\x01h");
    let mut help = Vec::new();
    while help.len() < 241 {
        let mut b = [0u8; 512];
        let n = c.stream.read(&mut b).unwrap();
        assert!(n > 0);
        help.extend_from_slice(&b[..n]);
    }
    assert_eq!(help, chardevd::internals::mux::help_text(1));
    // And back to the console.
    c.send(b"\x01cback\r\n");
    assert_eq!(c.line(), "back");
    // Errors: another monitor on the base, a 5th frontend on the mux.
    let mut ctl = Client::negotiated(&d.socket);
    for (args, want) in [
        (r#"{"chardev":"con-base"}"#, "chardev 'con-base' is already in use"),
        (r#"{"chardev":"nosuch"}"#, "chardev \\\"nosuch\\\" not found"),
    ] {
        let r = ctl.cmd(&format!(
            r#"{{"execute":"__org.chardevd_monitor-add","arguments":{args}}}"#
        ));
        assert_eq!(
            r,
            format!(r#"{{"error": {{"class": "GenericError", "desc": "{want}"}}}}"#)
        );
    }
    for i in 0..2 {
        let r = ctl.cmd(&format!(
            r#"{{"execute":"__org.chardevd_monitor-add","arguments":{{"chardev":"con","id":"m{i}"}}}}"#
        ));
        assert_eq!(r, r#"{"return": {}}"#);
    }
    assert_eq!(
        ctl.cmd(r#"{"execute":"__org.chardevd_monitor-add","arguments":{"chardev":"con","id":"m0"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Duplicate ID 'm0' for mon"}}"#
    );
    assert_eq!(
        ctl.cmd(r#"{"execute":"__org.chardevd_monitor-add","arguments":{"chardev":"con"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "too many uses of multiplexed chardev 'con' (maximum is 4)"}}"#
    );
    assert_eq!(
        ctl.cmd(r#"{"execute":"__org.chardevd_monitor-del","arguments":{"id":"m1"}}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(
        ctl.cmd(r#"{"execute":"__org.chardevd_monitor-del","arguments":{"id":"m1"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Monitor 'm1' not found"}}"#
    );
}

#[test]
fn qmp_on_stdio_is_a_monitor() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chardevd"));
    cmd.args(["-qmp", "stdio"]);
    let out = output_within(
        cmd,
        Some(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-chardev\"}\n{\"execute\":\"quit\"}\n"),
        20,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.split("\r\n").collect();
    greeting_ok(lines[0], true);
    assert_eq!(lines[1], r#"{"return": {}}"#);
    assert_eq!(
        lines[2],
        r#"{"return": [{"frontend-open": true, "filename": "stdio", "label": "compat_monitor0"}]}"#
    );
    assert!(lines[3].contains(r#""event": "SHUTDOWN""#), "{text}");
    assert_eq!(lines[4], r#"{"return": {}}"#);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn mon_options_are_checked_as_qemu_checks_them() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["-mon", "chardev=x,foo=bar"],
            "-mon chardev=x,foo=bar: Invalid parameter 'foo'",
        ),
        (
            &["-mon", "chardev=x,mode=bogus"],
            "-mon chardev=x,mode=bogus: Parameter 'mode' does not accept value 'bogus'",
        ),
        (
            &["-mon", "chardev=x,mode=control,pretty=bogus"],
            "Parameter 'pretty' expects 'on' or 'off'",
        ),
        (
            &["-mon", "mode=control"],
            "-mon mode=control: Parameter 'chardev' is missing",
        ),
        (
            &["-mon", "chardev=x,pretty=on"],
            "'pretty' is not compatible with HMP monitors",
        ),
        (&["-mon", "x"], "chardevd has no human monitor (HMP): use mode=control"),
        (
            &["-mon", "chardev=nosuch,mode=control"],
            "-mon chardev=nosuch,mode=control: chardev \"nosuch\" not found",
        ),
        (
            &[
                "-chardev",
                "null,id=n",
                "-mon",
                "n,mode=control,id=a",
                "-mon",
                "n,mode=control,id=a",
            ],
            "Duplicate ID 'a' for mon",
        ),
        (
            &[
                "-chardev",
                "null,id=n",
                "-mon",
                "n,mode=control",
                "-mon",
                "n,mode=control",
            ],
            "chardev 'n' is already in use",
        ),
        (&["-qmp", "nosuch:foo"], "'nosuch:foo' is not a valid char driver"),
    ];
    for (args, want) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chardevd"));
        cmd.args(*args);
        let out = output_within(cmd, None, 20);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(want), "{args:?}:\n{err}\nwanted: {want}");
    }
}

fn has_qemu_qmp() -> bool {
    Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn qemu_qmp_drives_monitors_on_a_socket_and_on_a_mux() {
    if !require("python3 with qemu.qmp", has_qemu_qmp()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.sock");
    let muxed = dir.path().join("mux.sock");
    let c1 = format!("socket,id=plain,path={},server=on,wait=off", plain.display());
    let c2 = format!("socket,id=con,path={},server=on,wait=off,mux=on", muxed.display());
    let d = chardevd(&[
        "-chardev",
        &c1,
        "-mon",
        "chardev=plain,mode=control",
        "-chardev",
        &c2,
        "-device",
        "echo,chardev=con",
    ]);
    // The monitor on the mux is added last, so it has the focus.
    let mut ctl = Client::negotiated(&d.socket);
    assert_eq!(
        ctl.cmd(r#"{"execute":"__org.chardevd_monitor-add","arguments":{"chardev":"con","id":"mm"}}"#),
        r#"{"return": {}}"#
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/qemu_qmp_monitor.py");
    for sock in [&plain, &muxed] {
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(sock);
        let out = output_within(cmd, None, 60);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("monitor OK"),
            "{}: {text}",
            sock.display()
        );
    }
}

#[test]
fn a_monitor_on_a_pty() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chardevd"))
        .args(["-chardev", "pty,id=p", "-mon", "chardev=p,mode=control"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut pts = None;
    let mut line = String::new();
    while pts.is_none() && err.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.strip_prefix("char device redirected to ") {
            pts = rest.split(' ').next().map(str::to_owned);
        }
        line.clear();
    }
    std::thread::spawn(move || for _ in err.lines() {});
    let pts = pts.expect("the pty line");
    let slave = std::fs::OpenOptions::new().read(true).write(true).open(&pts).unwrap();
    {
        use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
        let mut t = tcgetattr(&slave).unwrap();
        t.make_raw();
        tcsetattr(&slave, OptionalActions::Now, &t).unwrap();
    }
    let read_line = |slave: &std::fs::File| {
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n") {
            got.extend(read_slave(slave));
        }
        String::from_utf8(got).unwrap()
    };
    // Opening the slave opens the pty: the monitor greets.
    greeting_ok(read_line(&slave).trim_end(), true);
    (&slave)
        .write_all(b"{\"execute\":\"qmp_capabilities\",\"id\":7}\n")
        .unwrap();
    assert_eq!(read_line(&slave), "{\"return\": {}, \"id\": 7}\r\n");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_over_tls_with_openssl_s_client() {
    if !require("openssl", have("openssl")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().to_path_buf();
    make_pki(&pki);
    let cfg = chardevd::Config {
        objects: vec![chardevd::commands::ObjectAdd {
            id: "tls0".into(),
            props: chardevd::commands::ObjectProps::TlsCredsX509(chardevd::commands::X509Props {
                dir: Some(pki.join("server").display().to_string()),
                endpoint: Some(chardevd::commands::Endpoint::Server),
                verify_peer: Some(false),
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    let h = chardevd::spawn(cfg).unwrap();
    let s = chardevd::backends::ChardevBackend::from_qmp(&serde_json::json!({"type": "socket", "data": {
        "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": "0"}}, "server": true, "wait": false,
        "tls-creds": "tls0"}}))
    .unwrap();
    h.chardev_add("tls", s).await.unwrap();
    h.run(chardevd::commands::MonitorAdd {
        id: Some("secure".into()),
        chardev: "tls".into(),
        pretty: false,
    })
    .await
    .unwrap();
    let port = tcp_port_of(&h, "tls").await;
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        &format!(
            "(printf '{{\"execute\":\"qmp_capabilities\"}}\\n{{\"execute\":\"query-chardev-backends\",\"id\":\"t\"}}\\n'; sleep 2) \
             | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:{port} -CAfile {}/ca-cert.pem",
            pki.display()
        ),
    ]);
    let out = tokio::task::spawn_blocking(move || output_within(cmd, None, 20))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.split("\r\n").collect();
    greeting_ok(lines[0], true);
    assert_eq!(lines[1], r#"{"return": {}}"#, "{text}");
    assert!(
        lines[2].contains(r#"{"name": "hub"}"#) && lines[2].ends_with(r#""id": "t"}"#),
        "{text}"
    );
    h.shutdown();
    h.join();
}

async fn tcp_port_of(h: &chardevd::Handle, id: &str) -> u16 {
    let rows = h.query_chardev().await.unwrap();
    let f = &rows.iter().find(|r| r.label == id).unwrap().filename;
    f.rsplit_once(':')
        .unwrap()
        .1
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_over_a_websocket_with_python() {
    let has = Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if !require("python3 websockets", has) {
        return;
    }
    let h = chardevd::spawn(chardevd::Config::default()).unwrap();
    let w = chardevd::backends::ChardevBackend::from_qmp(&serde_json::json!({"type": "socket", "data": {
        "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": "0"}}, "server": true, "wait": false,
        "websocket": true}}))
    .unwrap();
    h.chardev_add("ws", w).await.unwrap();
    h.run(chardevd::commands::MonitorAdd {
        id: None,
        chardev: "ws".into(),
        pretty: false,
    })
    .await
    .unwrap();
    let p = tcp_port_of(&h, "ws").await;
    let script = format!(
        "from websockets.sync.client import connect\n\
         with connect('ws://127.0.0.1:{p}/', subprotocols=['binary']) as ws:\n\
         \x20   buf = b''\n\
         \x20   while not buf.endswith(b'\\r\\n'):\n\
         \x20       buf += ws.recv(timeout=5)\n\
         \x20   ws.send(b'{{\"execute\":\"qmp_capabilities\"}}\\n')\n\
         \x20   reply = b''\n\
         \x20   while not reply.endswith(b'\\r\\n'):\n\
         \x20       reply += ws.recv(timeout=5)\n\
         \x20   print(buf.decode().strip())\n\
         \x20   print(reply.decode().strip())\n"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &script]);
    let out = tokio::task::spawn_blocking(move || output_within(cmd, None, 20))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    greeting_ok(lines[0], true);
    assert_eq!(lines[1], r#"{"return": {}}"#);
    h.shutdown();
    h.join();
}
