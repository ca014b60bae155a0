//! QMP listeners on TCP and unix sockets. Each accepted connection becomes a
//! [`QmpSession`] on the next arbiter of the pool; any number of sessions run
//! at once (QEMU serves one per socket).
use super::output::Budget;
use super::session::{QmpSession, SessionLimits};
use crate::actors::pool::Pool;
use crate::api::Executor;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a QMP listener listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpAddr {
    /// A unix socket path; `mode` is applied after bind (None: the umask decides, as in QEMU).
    Unix {
        /// Path.
        path: PathBuf,
        /// Permission bits.
        mode: Option<u32>,
    },
    /// TCP `host:port`; an empty host means every interface, as in QEMU.
    Tcp {
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
}

impl std::fmt::Display for QmpAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpAddr::Unix { path, .. } => write!(f, "unix:{}", path.display()),
            QmpAddr::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
        }
    }
}

/// A bound listener. Dropping it stops accepting and removes its socket file.
#[derive(Debug)]
pub struct Listener {
    /// The bound address (the real port for `:0`).
    pub addr: QmpAddr,
    task: actix_rt::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        if let QmpAddr::Unix { path, .. } = &self.addr {
            remove_socket_file(path);
        }
    }
}

/// Remove a unix socket file, but only if it is a socket.
pub fn remove_socket_file(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Where a listener's sessions go.
#[derive(Debug, Clone)]
pub struct Serve {
    /// Runs their commands.
    pub exec: Executor,
    /// Spreads them over threads.
    pub pool: Pool,
    /// Their bounds.
    pub limits: SessionLimits,
    /// The output budget they share.
    pub global: Arc<Budget>,
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
                    QmpSession::start(s, "unix".into(), serve.exec, serve.limits, serve.global, Some(live));
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
                    QmpSession::start(s, peer, serve.exec, serve.limits, serve.global, Some(live));
                }
                Err(e) => {
                    live.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(cause = %e, "cannot serve a QMP client");
                }
            }
        });
    }
}

/// Bind and start accepting on the current arbiter.
pub async fn bind(addr: &QmpAddr, serve: Serve) -> io::Result<Listener> {
    let limits = serve.limits;
    match addr {
        QmpAddr::Unix { path, mode } => {
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if !meta.file_type().is_socket() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket; refusing to replace it", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(|e| {
                let kind = e.kind();
                let why = crate::error::OsError::from(e);
                io::Error::new(kind, format!("Failed to bind socket to {}: {why}", path.display()))
            })?;
            if let Some(mode) = mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
            }
            let live = Arc::new(AtomicUsize::new(0));
            let task = actix_rt::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            if admit(&live, limits) {
                                serve.unix(stream, live.clone());
                            }
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
            });
            Ok(Listener {
                addr: addr.clone(),
                task,
            })
        }
        QmpAddr::Tcp { host, port } => {
            let bind_host = if host.is_empty() { "0.0.0.0" } else { host.as_str() };
            let listener = tokio::net::TcpListener::bind((bind_host, *port)).await?;
            let local = listener.local_addr()?;
            let live = Arc::new(AtomicUsize::new(0));
            let task = actix_rt::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            if admit(&live, limits) {
                                serve.tcp(stream, peer.to_string(), live.clone());
                            }
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
            });
            Ok(Listener {
                addr: QmpAddr::Tcp {
                    host: host.clone(),
                    port: local.port(),
                },
                task,
            })
        }
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
