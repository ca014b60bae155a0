//! `chardev-change` with a frontend attached, across kinds: ringbuf, file,
//! socket server, socket client, pty, udp, null and pipe, each as the old
//! and as the new backend. After each change the frontend is told what QEMU
//! tells it (CLOSED when the new backend is not open, OPENED on re-attach
//! when it is) and its output reaches the new backend; before each, a
//! change that fails leaves it on the old backend, which still works
//! (QEMU's /char/hotswap, done for every kind).
mod common;

use bytes::Bytes;
use chardevd::backends::{ChardevBackend, File, Null, Pipe, Pty, Ringbuf};
use chardevd::frontend::{Frontend, FrontendEvent};
use chardevd::{self as runtime, Config};
use common::*;
use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ringbuf,
    File,
    Server,
    Client,
    Pty,
    Udp,
    Null,
    Pipe,
}

/// How to see what the frontend wrote, on the outside of a backend.
enum Outside {
    Ring,
    File(std::path::PathBuf),
    Server(std::path::PathBuf, Option<UnixStream>),
    Client(UnixListener, Option<UnixStream>),
    Pty(Option<String>, Option<std::fs::File>),
    Udp(std::net::UdpSocket),
    Null,
    Pipe(std::path::PathBuf, Option<std::fs::File>),
}

fn qmp(v: serde_json::Value) -> ChardevBackend {
    ChardevBackend::from_qmp(&v).unwrap()
}

fn make(kind: Kind, dir: &Path, n: usize) -> (ChardevBackend, Outside) {
    let path = |ext: &str| dir.join(format!("k{n}.{ext}"));
    match kind {
        Kind::Ringbuf => (ChardevBackend::new(Ringbuf { size: Some(4096) }), Outside::Ring),
        Kind::File => {
            let out = path("out");
            let b = File {
                input: None,
                out: out.to_str().unwrap().into(),
                append: None,
            };
            (ChardevBackend::new(b), Outside::File(out))
        }
        Kind::Server => {
            let p = path("sock");
            let b = qmp(serde_json::json!({"type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": p.to_str().unwrap()}}, "server": true, "wait": false}}));
            (b, Outside::Server(p, None))
        }
        Kind::Client => {
            let p = path("listen");
            let l = UnixListener::bind(&p).unwrap();
            let b = qmp(serde_json::json!({"type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": p.to_str().unwrap()}}, "server": false}}));
            (b, Outside::Client(l, None))
        }
        Kind::Pty => (ChardevBackend::new(Pty::default()), Outside::Pty(None, None)),
        Kind::Udp => {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = sock.local_addr().unwrap().port().to_string();
            let b = qmp(serde_json::json!({"type": "udp", "data": {
                "remote": {"type": "inet", "data": {"host": "127.0.0.1", "port": port}}}}));
            (b, Outside::Udp(sock))
        }
        Kind::Null => (ChardevBackend::new(Null {}), Outside::Null),
        Kind::Pipe => {
            let base = dir.join(format!("k{n}"));
            mkfifo(&base.with_extension("in"));
            mkfifo(&base.with_extension("out"));
            let b = Pipe {
                device: base.to_str().unwrap().into(),
            };
            (ChardevBackend::new(b), Outside::Pipe(base.with_extension("out"), None))
        }
    }
}

impl Outside {
    /// Connect the outside world: a socket server's client, the other end
    /// of a socket client, a pty's slave.
    async fn connect(&mut self, pty: Option<String>) {
        match self {
            Outside::Ring | Outside::File(_) | Outside::Udp(_) | Outside::Pipe(..) | Outside::Null => {}
            Outside::Server(p, s) => *s = Some(UnixStream::connect(&*p).unwrap()),
            Outside::Client(l, s) => *s = Some(l.accept().unwrap().0),
            Outside::Pty(path, f) => {
                let p = pty.expect("a pty path");
                let slave = open_pty_slave(&p);
                raw(&slave);
                *f = Some(slave);
                *path = Some(p);
            }
        }
    }

    /// Whether the backend is open before anything connects (a udp
    /// chardev never opens, as in QEMU).
    fn open_at_start(&self) -> bool {
        matches!(
            self,
            Outside::Ring | Outside::File(_) | Outside::Pipe(..) | Outside::Client(..)
        )
    }

    /// Whether connecting the outside opens it (a socket server's client,
    /// a pty's slave).
    fn opens_on_connect(&self) -> bool {
        matches!(self, Outside::Server(..) | Outside::Pty(..))
    }

    /// Check that `want` came out of the backend.
    async fn saw(&mut self, h: &runtime::Handle, id: &str, want: &[u8]) {
        let read_stream = |r: &mut dyn Read| {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while got.len() < want.len() {
                let n = r.read(&mut buf).expect("bytes from the backend");
                assert!(n > 0, "closed after {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        let got = match self {
            Outside::Ring => h.ringbuf_read_text(id, 4096).await.unwrap().into_bytes(),
            Outside::File(p) => {
                let p = p.clone();
                eventually("the file has the bytes", || {
                    std::fs::read(&p).is_ok_and(|b| b.ends_with(want))
                })
                .await;
                want.to_vec()
            }
            Outside::Server(_, Some(s)) | Outside::Client(_, Some(s)) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                read_stream(s)
            }
            Outside::Pty(_, Some(f)) => {
                let mut got = Vec::new();
                while got.len() < want.len() {
                    got.extend(read_slave(f));
                }
                got
            }
            Outside::Udp(sock) => {
                sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 4096];
                let n = sock.recv(&mut buf).unwrap();
                buf[..n].to_vec()
            }
            Outside::Pipe(p, f) => {
                if f.is_none() {
                    *f = Some(std::fs::File::open(&*p).unwrap());
                }
                read_stream(f.as_mut().unwrap())
            }
            Outside::Null => return,
            _ => panic!("not connected"),
        };
        assert_eq!(got, want, "what the new backend got");
    }
}

fn open_pty_slave(path: &str) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .unwrap()
}

fn raw(f: &std::fs::File) {
    use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
    let mut t = tcgetattr(f).unwrap();
    t.make_raw();
    tcsetattr(f, OptionalActions::Now, &t).unwrap();
}

/// Events until none comes for a moment, as the open states they leave.
async fn settle(fe: &mut Frontend) -> Vec<FrontendEvent> {
    let mut evs = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), fe.recv()).await {
        evs.push(ev);
    }
    evs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_follows_chardev_change_across_every_kind() {
    use Kind::*;
    let chain = [
        Ringbuf, File, Server, Client, Pty, Udp, Null, Pipe, Ringbuf, Server, Pty, File, Null, Client, Udp, Pipe, Null,
    ];
    let dir = tempfile::tempdir().unwrap();
    let h = runtime::spawn(Config::default()).unwrap();
    let (first, mut outside) = make(chain[0], dir.path(), 0);
    h.chardev_add("c", first).await.unwrap();
    let mut fe = h.attach("c").await.unwrap();
    outside.connect(None).await;
    let mut open = true;
    assert_eq!(settle(&mut fe).await, vec![FrontendEvent::Opened]);
    for (n, pair) in (1..).zip(chain.windows(2)) {
        let (from, to) = (pair[0], pair[1]);
        // A change that fails: the frontend stays, and the old backend works.
        let bad = chardevd::backends::File {
            input: None,
            out: dir.path().join("no/such/dir/x").to_str().unwrap().into(),
            append: None,
        };
        let err = h.chardev_change("c", ChardevBackend::new(bad)).await.unwrap_err();
        assert!(err.to_string().starts_with("Could not open"), "{from:?}: {err}");
        assert_eq!(settle(&mut fe).await, vec![], "{from:?}: no event on a failed change");
        let msg = format!("still on {from:?} ");
        fe.write(Bytes::from(msg.clone())).await.unwrap();
        fe.flush().await.unwrap();
        outside.saw(&h, "c", msg.as_bytes()).await;

        // The change.
        let (backend, mut next) = make(to, dir.path(), n);
        let ret = h.chardev_change("c", backend).await.unwrap();
        let new_open = next.open_at_start();
        let want = match (open, new_open) {
            (true, false) => vec![FrontendEvent::Closed],
            (false, true) => vec![FrontendEvent::Opened],
            (true, true) => vec![FrontendEvent::Closed, FrontendEvent::Opened],
            (false, false) => vec![],
        };
        assert_eq!(settle(&mut fe).await, want, "{from:?} -> {to:?}");
        open = new_open;
        let opens = next.opens_on_connect();
        next.connect(ret.pty).await;
        if opens {
            assert_eq!(settle(&mut fe).await, vec![FrontendEvent::Opened], "{to:?} connected");
            open = true;
        }
        let msg = format!("now on {to:?} ");
        fe.write(Bytes::from(msg.clone())).await.unwrap();
        fe.flush().await.unwrap();
        next.saw(&h, "c", msg.as_bytes()).await;
        outside = next;
    }
    h.shutdown();
    h.join();
}
