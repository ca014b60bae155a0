//! Faults a QMP server must survive (../shared/reference/peers-and-asks.md §4):
//! half-close, disconnects mid-command, connection storms, running out of
//! file descriptors. The daemon runs as a child process where process-wide
//! limits change.
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[test]
fn a_half_closed_client_still_gets_every_reply() {
    let d = chardevd(&[]);
    let mut c = Client::connect(&d.socket);
    c.line();
    c.send(b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"query-version\",\"id\":1}{\"execute\":\"query-chardev\",\"id\":2}");
    c.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert!(c.line().ends_with(r#""id": 1}"#));
    assert!(c.line().ends_with(r#""id": 2}"#));
    assert!(c.try_line(Duration::from_secs(5)).is_none(), "then the server closes");
}

#[test]
fn clients_that_vanish_mid_command_harm_nobody() {
    let d = chardevd(&["-chardev", "ringbuf,id=console0"]);
    for partial in [
        &b"{\"execute\":\"chardev-add\",\"arguments\":{\"id\":\"x\""[..],
        b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"ringbuf-write\",\"arguments\":{\"device\":\"console0\",\"data\":\"abc",
        b"{'execute",
        b"\"unterminated string",
    ] {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.write_all(partial).unwrap();
        drop(s);
    }
    // Reset by peer while the server writes a large reply.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"{\"execute\":\"qmp_capabilities\"}").unwrap();
    s.write_all(&b"{\"execute\":\"query-qmp-schema\"}".repeat(50)).unwrap();
    drop(s);
    let mut c = Client::negotiated(&d.socket);
    assert!(c.cmd(r#"{"execute":"query-chardev"}"#).contains("console0"));
}

#[test]
fn a_storm_of_500_sessions_is_served() {
    let d = chardevd(&[]);
    let mut conns: Vec<UnixStream> = (0..500).map(|_| UnixStream::connect(&d.socket).unwrap()).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(
            format!("{{\"execute\":\"qmp_capabilities\"}}{{\"execute\":\"query-version\",\"id\":{i}}}").as_bytes(),
        )
        .unwrap();
    }
    for (i, s) in conns.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains(&format!("\"id\": {i}}}")) {
            let n = (&s).read(&mut buf).unwrap();
            assert!(n > 0, "session {i} closed early");
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
    }
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    // The daemon gets 40 descriptors; 80 clients try to connect.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40 && exec {} -qmp unix:{},server=on",
            env!("CARGO_BIN_EXE_chardevd"),
            sock.display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if UnixStream::connect(&sock).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let flood: Vec<UnixStream> = (0..80).filter_map(|_| UnixStream::connect(&sock).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the daemon is still running");
    drop(flood);
    // Once descriptors are free again, new clients are served (accept retries with backoff).
    let mut ok = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(s) = UnixStream::connect(&sock) else { continue };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 256];
        if (&s).read(&mut buf).is_ok_and(|n| n > 0 && buf.starts_with(b"{\"QMP\"")) {
            ok = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "a client was served after the flood");
}
