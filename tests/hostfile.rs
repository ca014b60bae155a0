//! Host-file backends against real OS objects: temp files, fifos, pty pairs,
//! /dev/full, loopback UDP, and the daemon's own stdio (as a child process).
mod common;

use bytes::Bytes;
use chardevd::backends::*;
use chardevd::backends::{ChardevBackend, ChardevCommon, File, Null, Parallel, Pipe, Pty, Ringbuf, Serial, Stdio, Udp};
use chardevd::frontend::{CharIoctl, FrontendEvent, Parity, SerialParams};
use chardevd::{self as runtime, Config};
use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use common::{attached_fifo_pipe, eventually, mkfifo, next, read_data, read_slave, wait_for_socket_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_backend_writes_out_reads_in_and_closes_at_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let (out, input) = (dir.path().join("out"), dir.path().join("in"));
    std::fs::write(&out, b"old contents").unwrap();
    std::fs::write(&input, b"typed by the user").unwrap();
    let h = runtime::spawn(Config::default()).unwrap();
    let f = File {
        input: Some(input.to_str().unwrap().into()),
        out: out.to_str().unwrap().into(),
        append: None,
    };
    h.chardev_add("f", ChardevBackend::new(f.clone())).await.unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"",
        "out is truncated at chardev-add, as in QEMU"
    );
    let mut fe = h.attach("f").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    assert_eq!(read_data(&mut fe, 17).await, b"typed by the user");
    assert_eq!(
        next(&mut fe).await,
        FrontendEvent::Closed,
        "end of the in file closes the input"
    );
    fe.write(Bytes::from_static(b"guest output\n")).await.unwrap();
    fe.detach().await.unwrap();
    h.chardev_remove("f").await.unwrap();
    eventually("the output is flushed", || {
        std::fs::read(&out).unwrap() == b"guest output\n"
    })
    .await;

    // append=true keeps what is there.
    let f = File {
        input: None,
        out: out.to_str().unwrap().into(),
        append: Some(true),
    };
    h.chardev_add("f", ChardevBackend::new(f)).await.unwrap();
    let fe = h.attach("f").await.unwrap();
    fe.write(Bytes::from_static(b"more\n")).await.unwrap();
    fe.detach().await.unwrap();
    h.chardev_remove("f").await.unwrap();
    eventually("the output is appended", || {
        std::fs::read(&out).unwrap() == b"guest output\nmore\n"
    })
    .await;
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_errors_on_dev_full_are_logged_and_harm_nothing_else() {
    let h = runtime::spawn(Config::default()).unwrap();
    let full = File {
        input: None,
        out: "/dev/full".into(),
        append: None,
    };
    h.chardev_add("full", ChardevBackend::new(full)).await.unwrap();
    h.chardev_add("r", ChardevBackend::new(Ringbuf { size: Some(64) }))
        .await
        .unwrap();
    let fe = h.attach("full").await.unwrap();
    for _ in 0..100 {
        fe.write(Bytes::from_static(b"no space for this\n")).await.unwrap();
    }
    h.ringbuf_write("r", b"still fine").await.unwrap();
    assert_eq!(h.ringbuf_read_text("r", 64).await.unwrap(), "still fine");
    assert_eq!(h.query_chardev().await.unwrap().len(), 2);
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipe_backend_uses_in_and_out_fifos_or_the_path_itself() {
    let dir = tempfile::tempdir().unwrap();
    let h = runtime::spawn(Config::default()).unwrap();
    let (base, mut fe) = attached_fifo_pipe(&h, dir.path()).await;
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(base.with_extension("in"))
        .unwrap();
    writer.write_all(b"8 bytes!").unwrap();
    assert_eq!(read_data(&mut fe, 8).await, b"8 bytes!");
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(base.with_extension("out"))
        .unwrap();
    fe.write(Bytes::from_static(b"nine byte")).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        let mut buf = [0u8; 64];
        if let Ok(n) = reader.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() >= 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, b"nine byte");

    // Fallback: one fifo at the path itself, used both ways.
    let single = dir.path().join("single");
    mkfifo(&single);
    let dev = Pipe {
        device: single.to_str().unwrap().into(),
    };
    h.chardev_add("q", ChardevBackend::new(dev)).await.unwrap();
    let missing = Pipe {
        device: dir.path().join("nope").to_str().unwrap().into(),
    };
    let err = h.chardev_add("m", ChardevBackend::new(missing)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Failed to add chardev 'm': Could not open '{}': No such file or directory",
            dir.path().join("nope").display()
        )
    );
    h.shutdown();
    h.join();
}

fn open_pty_slave(path: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_backend_opens_on_slave_open_and_drops_output_while_nobody_listens() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("console");
    let h = runtime::spawn(Config::default()).unwrap();
    let pty = Pty {
        path: Some(link.to_str().unwrap().into()),
    };
    let ret = h.chardev_add("pt", ChardevBackend::new(pty.clone())).await.unwrap();
    let pts = ret.pty.expect("chardev-add returns the pty");
    assert!(pts.starts_with("/dev/pts/"));
    assert_eq!(std::fs::read_link(&link).unwrap().to_str().unwrap(), pts);
    assert_eq!(h.query_chardev().await.unwrap()[0].filename, format!("pty:{pts}"));
    let mut fe = h.attach("pt").await.unwrap();
    // Nobody has the slave open: writes succeed and are dropped.
    assert_eq!(fe.write(Bytes::from_static(b"lost")).await.unwrap(), 4);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), fe.recv())
            .await
            .is_err(),
        "no OPENED yet"
    );

    let mut slave = open_pty_slave(&pts);
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    slave.write_all(b"key presses").unwrap();
    assert_eq!(read_data(&mut fe, 11).await, b"key presses");
    fe.write(Bytes::from_static(b"console text")).await.unwrap();
    assert_eq!(
        read_slave(&slave),
        b"console text",
        "raw mode: no translation, and the dropped bytes never arrive"
    );
    drop(slave);
    assert_eq!(
        next(&mut fe).await,
        FrontendEvent::Closed,
        "hang-up of a connected pty (QEMU 10)"
    );
    let _again = open_pty_slave(&pts);
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened, "OPENED again on reconnect");

    // chardev-change to a pty on the same link path: the old one lends the
    // path; a failing change gives it back.
    let bad = Pty {
        path: Some(dir.path().join("no/such/dir").to_str().unwrap().into()),
    };
    assert!(h.chardev_change("pt", ChardevBackend::new(bad)).await.is_err());
    assert_eq!(
        std::fs::read_link(&link).unwrap().to_str().unwrap(),
        pts,
        "old link still there"
    );
    let ret = h.chardev_change("pt", ChardevBackend::new(pty.clone())).await.unwrap();
    let new_pts = ret.pty.expect("the new pty");
    assert_ne!(new_pts, pts);
    assert_eq!(
        std::fs::read_link(&link).unwrap().to_str().unwrap(),
        new_pts,
        "the link follows the change"
    );
    drop(_again);
    // Drain what the swap and the hang-up produced.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), fe.recv()).await {}
    let _slave = open_pty_slave(&new_pts);
    assert_eq!(
        next(&mut fe).await,
        FrontendEvent::Opened,
        "the frontend moved to the new pty"
    );

    // A second pty cannot take an existing link path.
    let err = h.chardev_add("pt2", ChardevBackend::new(pty)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to add chardev 'pt2': Failed to create PTY symlink: File exists"
    );
    fe.detach().await.unwrap();
    h.chardev_remove("pt").await.unwrap();
    eventually("the link is removed with the chardev", || {
        std::fs::symlink_metadata(&link).is_err()
    })
    .await;
    h.shutdown();
    h.join();
}

/// Start the daemon with `args`, its stdin and stdout on `tty`, QMP on `sock`;
/// returns once the socket exists.
fn daemon_on_tty(args: &[&str], tty: &std::fs::File, sock: &std::path::Path) -> std::process::Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_chardevd"))
        .args(args)
        .arg("-qmp")
        .arg(format!("unix:{},server=on", sock.display()))
        .stdin(tty.try_clone().unwrap())
        .stdout(tty.try_clone().unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_socket_file(sock);
    child
}

/// Add a pty chardev without a link; returns its slave path.
async fn add_pty(h: &runtime::Handle, id: &str) -> String {
    let pty = Pty { path: None };
    h.chardev_add(id, ChardevBackend::new(pty))
        .await
        .unwrap()
        .pty
        .expect("the pty path")
}

fn pty_pair() -> (rustix::fd::OwnedFd, String) {
    let (master, name, _slave) = chardevd::internals::pty::open_pair().unwrap();
    (master, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_backend_sets_raw_115200_8n1_and_frontends_change_the_line() {
    use rustix::termios::*;
    let (master, slave) = pty_pair();
    // Keep a slave fd to read the line settings the backend applies.
    let probe = open_pty_slave(&slave);
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", ChardevBackend::new(Serial { device: slave.clone() }))
        .await
        .unwrap();
    let t = tcgetattr(&probe).unwrap();
    assert_eq!(t.output_speed(), 115200);
    assert!(!t
        .local_modes
        .intersects(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG));
    assert!(!t.output_modes.contains(OutputModes::OPOST));
    assert!(!t.input_modes.intersects(InputModes::ICRNL | InputModes::IXON));
    let mut fe = h.attach("s").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    let p = SerialParams {
        speed: 9600,
        parity: Parity::None,
        data_bits: 8,
        stop_bits: 2,
    };
    fe.ioctl(CharIoctl::SerialSetParams(p)).await.unwrap();
    let t = tcgetattr(&probe).unwrap();
    assert_eq!(t.output_speed(), 9600);
    assert!(t.control_modes.contains(ControlModes::CSTOPB));
    // Data both ways through the "device".
    rustix::io::write(&master, b"from the device").unwrap();
    assert_eq!(read_data(&mut fe, 15).await, b"from the device");
    fe.write(Bytes::from_static(b"to the device")).await.unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 13 {
        let n = rustix::io::read(&master, &mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"to the device");
    // A pty has no modem lines: the error comes back to the frontend.
    assert!(fe.ioctl(CharIoctl::SerialGetTiocm).await.is_err());
    assert!(fe.ioctl(CharIoctl::PpReadStatus).await.is_err(), "not a parallel port");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_break_and_modem_lines_go_through_the_line_trait() {
    use chardevd::internals::serial::{RecordingLine, SerialWithLine};
    let line = RecordingLine::default();
    let h = runtime::spawn(Config::default()).unwrap();
    let serial = SerialWithLine {
        device: "/dev/null".into(),
        line: line.clone(),
    };
    h.chardev_add("s", ChardevBackend::new(serial)).await.unwrap();
    let fe = h.attach("s").await.unwrap();
    fe.ioctl(CharIoctl::SerialSetBreak(true)).await.unwrap();
    fe.ioctl(CharIoctl::SerialSetTiocm(0x006)).await.unwrap();
    let bits = fe.ioctl(CharIoctl::SerialGetTiocm).await.unwrap();
    assert_eq!(bits, 0x006);
    let p = SerialParams {
        speed: 19200,
        parity: Parity::Even,
        data_bits: 7,
        stop_bits: 1,
    };
    fe.ioctl(CharIoctl::SerialSetParams(p)).await.unwrap();
    assert_eq!(
        *line.calls.lock().unwrap(),
        vec!["break", "set_tiocm 6", "get_tiocm", "set_params 19200 E 7 1"]
    );
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_backend_refuses_a_device_that_is_not_a_parallel_port() {
    let h = runtime::spawn(Config::default()).unwrap();
    let err = h
        .chardev_add(
            "pp",
            ChardevBackend::new(Parallel {
                device: "/dev/null".into(),
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to add chardev 'pp': not a parallel port: Inappropriate ioctl for device"
    );
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_backend_sends_one_datagram_per_write_and_delivers_datagrams() {
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = peer.local_addr().unwrap().port();
    let h = runtime::spawn(Config::default()).unwrap();
    let inet = |host: &str, port: String| {
        SocketAddressLegacy::Inet(InetSocketAddress {
            host: host.into(),
            port,
            numeric: None,
            to: None,
            ipv4: None,
            ipv6: None,
            keep_alive: None,
            mptcp: None,
        })
    };
    let u = Udp {
        remote: inet("127.0.0.1", port.to_string()),
        local: None,
    };
    h.chardev_add("u", ChardevBackend::new(u)).await.unwrap();
    let mut fe = h.attach("u").await.unwrap();
    fe.write(Bytes::from_static(b"hello")).await.unwrap();
    fe.write(Bytes::from_static(b"world!")).await.unwrap();
    let mut buf = [0u8; 100];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello", "one write, one datagram");
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"world!");
    peer.send_to(b"reply", from).unwrap();
    peer.send_to(&[7u8; 6000], from).unwrap();
    // No OPENED ever: the first event is data.
    assert_eq!(read_data(&mut fe, 5).await, b"reply");
    assert_eq!(
        read_data(&mut fe, 6000).await,
        vec![7u8; 6000],
        "a datagram over 4 KiB arrives whole"
    );

    // A local port that is taken.
    let taken = peer.local_addr().unwrap().port().to_string();
    let u = Udp {
        remote: inet("127.0.0.1", "9".into()),
        local: Some(inet("127.0.0.1", taken)),
    };
    let err = h.chardev_add("u2", ChardevBackend::new(u)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to add chardev 'u2': Failed to bind socket: Address already in use"
    );
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logfile_records_frontend_output_and_logappend_keeps_the_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::write(&log, b"before\n").unwrap();
    let h = runtime::spawn(Config::default()).unwrap();
    let with_log = |append| ChardevCommon {
        logfile: Some(log.to_str().unwrap().into()),
        logappend: append,
        ..ChardevCommon::default()
    };
    h.chardev_add("n", ChardevBackend::new(Null {}).with_common(with_log(Some(true))))
        .await
        .unwrap();
    let fe = h.attach("n").await.unwrap();
    fe.write(Bytes::from_static(b"logged\n")).await.unwrap();
    fe.detach().await.unwrap();
    h.chardev_remove("n").await.unwrap();
    assert_eq!(std::fs::read(&log).unwrap(), b"before\nlogged\n");
    // Without logappend the log starts empty, even if the backend then fails.
    let bad = File {
        input: None,
        out: "/nonexistent-dir/x".into(),
        append: None,
    };
    assert!(h
        .chardev_add("f", ChardevBackend::new(bad).with_common(with_log(None)))
        .await
        .is_err());
    assert_eq!(
        std::fs::read(&log).unwrap(),
        b"",
        "the log is opened before the backend, as in QEMU"
    );
    // ringbuf-write data is not logged; frontend output is.
    let ring = ChardevBackend::new(Ringbuf { size: Some(64) }).with_common(with_log(Some(true)));
    h.chardev_add("r", ring).await.unwrap();
    h.ringbuf_write("r", b"not logged").await.unwrap();
    let fe = h.attach("r").await.unwrap();
    fe.write(Bytes::from_static(b"frontend")).await.unwrap();
    assert_eq!(std::fs::read(&log).unwrap(), b"frontend");
    h.shutdown();
    h.join();
}

/// stdio runs in a child whose stdin and stdout are a pty we hold the master of.
#[test]
fn stdio_backend_goes_raw_and_restores_the_terminal_on_sigterm() {
    use rustix::termios::*;
    let (master, slave) = pty_pair();
    let tty = open_pty_slave(&slave);
    let before = tcgetattr(&tty).unwrap();
    assert!(before.local_modes.contains(LocalModes::ECHO | LocalModes::ICANON));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let mut child = daemon_on_tty(
        &[
            "-chardev",
            "stdio,id=con,signal=off",
            "-device",
            "echo,id=e,chardev=con",
        ],
        &tty,
        &sock,
    );
    let raw = tcgetattr(&tty).unwrap();
    assert!(
        !raw.local_modes
            .intersects(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG),
        "{raw:?}"
    );
    assert!(
        raw.output_modes.contains(OutputModes::OPOST),
        "output processing kept, as QEMU"
    );
    // Bytes typed on the terminal come back through the echo device.
    let _ = read_available(&master); // the daemon's start-up line
    rustix::io::write(&master, b"typed").unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(read_available(&master));
        if got.windows(5).any(|w| w == b"typed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(got.windows(5).any(|w| w == b"typed"), "{got:?}");
    // chardev-change stdio -> stdio (now with signals): the terminal is handed
    // over, and the echo device keeps working.
    let mut c = Client::negotiated(&sock);
    assert_eq!(
        c.cmd(
            r#"{"execute":"chardev-change","arguments":{"id":"con","backend":{"type":"stdio","data":{"signal":true}}}}"#
        ),
        r#"{"return": {}}"#
    );
    let raw2 = tcgetattr(&tty).unwrap();
    assert!(raw2.local_modes.contains(LocalModes::ISIG) && !raw2.local_modes.contains(LocalModes::ECHO));
    rustix::io::write(&master, b"again").unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(read_available(&master));
        if got.windows(5).any(|w| w == b"again") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(got.windows(5).any(|w| w == b"again"), "{got:?}");
    // A second stdio chardev is refused.
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"again","backend":{"type":"stdio","data":{}}}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'again': cannot use stdio by multiple character devices"}}"#
    );
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().unwrap().success());
    let after = tcgetattr(&tty).unwrap();
    assert_eq!(after.local_modes, before.local_modes, "terminal restored at exit");
    assert_eq!(after.input_modes, before.input_modes);
    let flags = rustix::fs::fcntl_getfl(&tty).unwrap();
    assert!(
        !flags.contains(rustix::fs::OFlags::NONBLOCK),
        "O_NONBLOCK cleared again"
    );
}

fn read_available(master: &rustix::fd::OwnedFd) -> Vec<u8> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut out = Vec::new();
    loop {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        let ready = poll(
            &mut fds,
            Some(&Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            }),
        )
        .unwrap_or(0);
        if ready == 0 {
            return out;
        }
        let mut buf = [0u8; 4096];
        match rustix::io::read(master, &mut buf) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => return out,
        }
    }
}

/// The panic path: this test re-runs itself as a child (on a pty) that takes
/// the terminal with a stdio chardev and then panics.
#[test]
fn stdio_terminal_is_restored_when_the_process_panics() {
    use rustix::termios::*;
    const NAME: &str = "stdio_terminal_is_restored_when_the_process_panics";
    if std::env::var_os("CHARDEVD_PANIC_CHILD").is_some() {
        let stdio = ChardevBackend::new(Stdio { signal: None });
        let _h = runtime::spawn(Config {
            chardevs: vec![chardevd::ChardevSpec::new("con", stdio)],
            ..Default::default()
        })
        .unwrap();
        // Wait (at most 20 s) until the parent has seen the raw terminal.
        let go = std::path::PathBuf::from(std::env::var_os("CHARDEVD_PANIC_GO").unwrap());
        for _ in 0..1000 {
            if go.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("deliberate panic: the terminal must come back");
    }
    let (_master, slave) = pty_pair();
    let tty = open_pty_slave(&slave);
    let before = tcgetattr(&tty).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--test-threads=1"])
        .env("CHARDEVD_PANIC_CHILD", "1")
        .env("CHARDEVD_PANIC_GO", &go)
        .stdin(tty.try_clone().unwrap())
        .stdout(tty.try_clone().unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut saw_raw = false;
    for _ in 0..2000 {
        if !tcgetattr(&tty).unwrap().local_modes.contains(LocalModes::ICANON) {
            saw_raw = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(&go, b"").unwrap();
    let status = child.wait().unwrap();
    assert!(saw_raw, "the child took the terminal");
    assert!(!status.success(), "the child panicked");
    let after = tcgetattr(&tty).unwrap();
    assert_eq!(
        after.local_modes, before.local_modes,
        "terminal restored by the panic hook"
    );
    assert_eq!(after.input_modes, before.input_modes);
}

#[test]
fn the_daemon_takes_every_host_file_backend_on_its_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = [
        "-chardev".to_owned(),
        format!(
            "file,id=f,path={},append=on,logfile={}/log",
            out.display(),
            dir.path().display()
        ),
        "-chardev".into(),
        "pipe,id=p,path=/dev/null".into(),
        "-chardev".into(),
        format!("pty,id=t,path={}/tty", dir.path().display()),
        "-chardev".into(),
        "tty,id=s,path=/dev/null".into(),
        "-chardev".into(),
        "udp,id=u,host=127.0.0.1,port=9,localport=0".into(),
        "-device".into(),
        "echo,id=e,chardev=f".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = chardevd(&args);
    let mut c = Client::negotiated(&d.socket);
    let rows: serde_json::Value = serde_json::from_str(&c.cmd(r#"{"execute":"query-chardev"}"#)).unwrap();
    let names: Vec<(String, String)> = rows["return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_owned(),
                r["filename"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(names[0], ("f".into(), "file".into()));
    assert_eq!(names[1], ("p".into(), "pipe".into()));
    assert!(names[2].1.starts_with("pty:/dev/pts/"), "{names:?}");
    assert_eq!(names[3], ("s".into(), "serial".into()));
    assert_eq!(names[4], ("u".into(), "udp".into()));
    assert!(dir.path().join("tty").exists(), "pty link made");
    assert!(out.exists() && dir.path().join("log").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chardev_change_tells_the_frontend_closed_only_when_the_old_backend_was_open() {
    let h = runtime::spawn(Config::default()).unwrap();
    // A connected pty is open: changing it to null (never open) sends CLOSED.
    let pts = add_pty(&h, "c").await;
    let mut fe = h.attach("c").await.unwrap();
    let _slave = open_pty_slave(&pts);
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    h.chardev_change("c", ChardevBackend::new(Null {})).await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    // A file whose input has ended is closed already: no second CLOSED.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, b"x").unwrap();
    let f = File {
        input: Some(input.to_str().unwrap().into()),
        out: dir.path().join("out").to_str().unwrap().into(),
        append: None,
    };
    h.chardev_change("c", ChardevBackend::new(f)).await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    assert_eq!(read_data(&mut fe, 1).await, b"x");
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    h.chardev_change("c", ChardevBackend::new(Null {})).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), fe.recv())
            .await
            .is_err(),
        "no event"
    );
    h.shutdown();
    h.join();
}

#[test]
fn stdio_terminal_is_restored_after_a_qmp_quit() {
    use rustix::termios::*;
    let (_master, slave) = pty_pair();
    let tty = open_pty_slave(&slave);
    let before = tcgetattr(&tty).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let mut child = daemon_on_tty(&["-chardev", "stdio,id=con"], &tty, &sock);
    assert!(
        !tcgetattr(&tty).unwrap().local_modes.contains(LocalModes::ICANON),
        "raw while running"
    );
    // Job control: the shell restores the cooked mode, then SIGCONT: raw again.
    tcsetattr(&tty, OptionalActions::Now, &before).unwrap();
    let _ = std::process::Command::new("kill")
        .arg("-CONT")
        .arg(child.id().to_string())
        .status();
    let mut raw_again = false;
    for _ in 0..500 {
        if !tcgetattr(&tty).unwrap().local_modes.contains(LocalModes::ICANON) {
            raw_again = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(raw_again, "raw mode re-applied on SIGCONT");
    let mut c = Client::negotiated(&sock);
    assert!(c.cmd(r#"{"execute":"quit"}"#).contains(r#""event": "SHUTDOWN""#));
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert!(child.wait().unwrap().success());
    let after = tcgetattr(&tty).unwrap();
    assert_eq!(
        after.local_modes, before.local_modes,
        "terminal restored at a normal exit"
    );
    assert!(!rustix::fs::fcntl_getfl(&tty)
        .unwrap()
        .contains(rustix::fs::OFlags::NONBLOCK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_with_no_reader_holds_up_only_its_own_chardev_add() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let h = runtime::spawn(Config::default()).unwrap();
    let f = File {
        input: None,
        out: fifo.to_str().unwrap().into(),
        append: None,
    };
    let h2 = h.clone();
    let add = tokio::spawn(async move { h2.chardev_add("f", ChardevBackend::new(f)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !add.is_finished(),
        "opening a fifo for writing waits for a reader, as in QEMU"
    );
    // Meanwhile the supervisor answers everyone else.
    h.chardev_add("other", ChardevBackend::new(Null {})).await.unwrap();
    assert_eq!(
        h.query_chardev().await.unwrap().len(),
        1,
        "the waiting chardev is not listed yet"
    );
    let _reader = std::fs::OpenOptions::new().read(true).open(&fifo).unwrap();
    add.await.unwrap().unwrap();
    assert_eq!(h.query_chardev().await.unwrap().len(), 2);
    // A waiting add is busy to chardev-remove, and never holds up shutdown.
    let fifo2 = dir.path().join("fifo2");
    mkfifo(&fifo2);
    let f2 = File {
        input: None,
        out: fifo2.to_str().unwrap().into(),
        append: None,
    };
    let h2 = h.clone();
    let _pending = tokio::spawn(async move { h2.chardev_add("g", ChardevBackend::new(f2)).await });
    let mut busy = false;
    for _ in 0..500 {
        // Until the add reaches the supervisor the id is simply unknown.
        if h.chardev_remove("g").await.unwrap_err().to_string() == "Chardev 'g' is busy" {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(busy, "a chardev still being created is busy");
    h.shutdown();
    let joined = tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(move || h.join()))
        .await
        .expect("shutdown completed while an open was waiting");
    joined.expect("join returned (no panic)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_notices_hang_ups_even_with_no_frontend() {
    let h = runtime::spawn(Config::default()).unwrap();
    let pts = add_pty(&h, "p").await;
    // A client comes and goes while no frontend is attached.
    let slave = open_pty_slave(&pts);
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop(slave);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // A frontend attaching now is not told OPENED: nobody is connected.
    let mut fe = h.attach("p").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), fe.recv())
            .await
            .is_err(),
        "no stale OPENED"
    );
    let _slave = open_pty_slave(&pts);
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened, "the next client is seen");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_file_chardev_to_the_same_file_does_not_interleave_old_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let h = runtime::spawn(Config::default()).unwrap();
    let file = |input: Option<String>| {
        ChardevBackend::new(File {
            input,
            out: out.to_str().unwrap().into(),
            append: None,
        })
    };
    h.chardev_add("f", file(None)).await.unwrap();
    let fe = h.attach("f").await.unwrap();
    for _ in 0..100 {
        fe.write(Bytes::from_static(b"old old old old old old old old\n"))
            .await
            .unwrap();
    }
    // The old backend flushes and closes before the new one truncates.
    h.chardev_change("f", file(None)).await.unwrap();
    fe.write(Bytes::from_static(b"new\n")).await.unwrap();
    eventually("only the new output", || std::fs::read(&out).unwrap() == b"new\n").await;
    // A failing change: the old backend takes the file back (appending).
    let bad = file(Some(dir.path().join("no/such/in").to_str().unwrap().into()));
    assert!(h.chardev_change("f", bad).await.is_err());
    fe.write(Bytes::from_static(b"still here\n")).await.unwrap();
    eventually("the old backend writes again", || {
        std::fs::read(&out).unwrap().ends_with(b"still here\n")
    })
    .await;
    h.shutdown();
    h.join();
}
