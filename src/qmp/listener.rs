//! QMP listeners on TCP and unix sockets. Each accepted connection becomes a
//! [`QmpSession`] on the next arbiter of the pool; any number of sessions run
//! at once (QEMU serves one per socket).
use super::fds::{FdBudget, FdStream, FdTable};
use super::output::Budget;
use super::session::{QmpSession, SessionLimits};
use crate::actors::pool::Pool;
use crate::api::execute::Executor;
use crate::error::{BackendError, Error};
use crate::net::Listener;
pub use crate::net::QmpAddr;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a listener's sessions go.
#[derive(Debug, Clone)]
pub struct Serve {
    /// Runs their commands.
    pub(crate) exec: Executor,
    /// Spreads them over threads.
    pub pool: Pool,
    /// Their bounds.
    pub limits: SessionLimits,
    /// The output budget they share.
    pub global: Arc<Budget>,
    /// The descriptors they may hold together.
    pub fds: Arc<FdBudget>,
    /// The partly received messages they may hold together.
    pub input: Arc<crate::json::framer::InputBudget>,
}

impl Serve {
    /// Start a session for a unix client on the next arbiter.
    fn unix(&self, stream: tokio::net::UnixStream, live: Arc<AtomicUsize>) {
        let std = match stream.into_std() {
            Ok(s) => s,
            Err(e) => return tracing::warn!(cause = %e, "cannot hand a QMP client to its thread"),
        };
        let serve = self.clone();
        self.pool.next().1.spawn(async move {
            match tokio::net::UnixStream::from_std(std) {
                Ok(s) => {
                    let socket = s.as_raw_fd();
                    let fds = FdTable::new(serve.fds.clone());
                    let s = FdStream::new(s, fds.clone());
                    QmpSession::serve(
                        s,
                        "unix".into(),
                        serve.exec,
                        serve.limits,
                        serve.global,
                        serve.input,
                        Some(fds),
                        Some(live),
                        Some(socket),
                    );
                }
                Err(e) => {
                    live.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(cause = %e, "cannot serve a QMP client");
                }
            }
        });
    }

    /// Start a session for a TCP client on the next arbiter.
    fn tcp(&self, stream: tokio::net::TcpStream, peer: String, live: Arc<AtomicUsize>) {
        let _ = stream.set_nodelay(true);
        let std = match stream.into_std() {
            Ok(s) => s,
            Err(e) => return tracing::warn!(cause = %e, "cannot hand a QMP client to its thread"),
        };
        let serve = self.clone();
        self.pool.next().1.spawn(async move {
            match tokio::net::TcpStream::from_std(std) {
                Ok(s) => {
                    let socket = s.as_raw_fd();
                    QmpSession::serve(
                        s,
                        peer,
                        serve.exec,
                        serve.limits,
                        serve.global,
                        serve.input,
                        None,
                        Some(live),
                        Some(socket),
                    );
                }
                Err(e) => {
                    live.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(cause = %e, "cannot serve a QMP client");
                }
            }
        });
    }
}

/// Listen backlog for QMP sockets (any number of sessions are served).
const QMP_BACKLOG: i32 = 128;

/// Bind and start accepting on the current arbiter. The address is taken as
/// a socket chardev takes it (`net::listen`): the same errors, and a unix
/// path that is not a socket, or where a live server answers, is refused.
pub(crate) async fn bind(addr: &QmpAddr, serve: Serve) -> Result<Listener, Error> {
    let fail = |source: BackendError| Error::Listen {
        addr: addr.to_string(),
        source,
    };
    let setup = |e: io::Error| fail(BackendError::SocketSetup(e.into()));
    let limits = serve.limits;
    let (listening, fd) = addr.listen(QMP_BACKLOG).await.map_err(fail)?;
    let live = Arc::new(AtomicUsize::new(0));
    let (task, bound) = match addr {
        QmpAddr::Unix { .. } => {
            let listener =
                tokio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(fd)).map_err(setup)?;
            let task = actix_rt::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            if admit(&live, limits) {
                                serve.unix(stream, live.clone());
                            } else {
                                crate::stats::bump(&serve.exec.counters().refused, 1);
                                refuse(&stream, limits);
                            }
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
            });
            (task, addr.clone())
        }
        QmpAddr::Tcp { host, .. } => {
            let listener = tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd)).map_err(setup)?;
            let local = listener.local_addr().map_err(setup)?;
            let port = local.port();
            if !local.ip().is_loopback() {
                // QMP has no authentication: say so where it matters.
                tracing::warn!(
                    "QMP on {addr} can be reached from other hosts, and QMP has no authentication: \
                     whoever connects can open, read and write files as this user \
                     (listen on 127.0.0.1 or a unix socket, or firewall the port)"
                );
            }
            let task = actix_rt::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            if admit(&live, limits) {
                                serve.tcp(stream, peer.to_string(), live.clone());
                            } else {
                                crate::stats::bump(&serve.exec.counters().refused, 1);
                                refuse(&stream, limits);
                            }
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
            });
            (
                task,
                QmpAddr::Tcp {
                    host: host.clone(),
                    port,
                },
            )
        }
    };
    Ok(Listener {
        addr: bound,
        task,
        _listening: listening,
    })
}

/// Tell a client over the limit why it is closed (one QMP error in place of
/// the greeting, if the socket takes it at once), before the stream drops.
fn refuse<S: TryWrite>(stream: &S, limits: SessionLimits) {
    let line = format!(
        "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"Too many QMP sessions (at most {})\"}}}}\r\n",
        limits.max_sessions
    );
    let _ = stream.try_write_now(line.as_bytes());
}

/// A socket written without waiting.
trait TryWrite {
    fn try_write_now(&self, b: &[u8]) -> io::Result<usize>;
}

impl TryWrite for tokio::net::UnixStream {
    fn try_write_now(&self, b: &[u8]) -> io::Result<usize> {
        self.try_write(b)
    }
}

impl TryWrite for tokio::net::TcpStream {
    fn try_write_now(&self, b: &[u8]) -> io::Result<usize> {
        self.try_write(b)
    }
}

/// Count a new session in, or refuse it (the stream is dropped: closed).
fn admit(live: &AtomicUsize, limits: SessionLimits) -> bool {
    if live.fetch_add(1, Ordering::Relaxed) >= limits.max_sessions {
        live.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(max = limits.max_sessions, "too many QMP sessions; connection refused");
        return false;
    }
    true
}

/// Out of file descriptors (or another accept failure): log, back off, go on.
async fn accept_error(e: io::Error) {
    tracing::warn!(cause = %e, "accept failed; retrying in 100 ms");
    actix_rt::time::sleep(Duration::from_millis(100)).await;
}
