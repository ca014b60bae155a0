//! A socket server: accepts one client at a time. While a client is
//! connected nothing more is accepted (the next client waits in the
//! backlog, as in QEMU); when it goes, the next one is taken.
use super::link::Setup;
use crate::chardev::fdio::FdIo;
use crate::chardev::transport::{Behaviour, Connection, Transport};
use crate::error::BackendError;
use crate::net::{self, Listening};
use futures_util::future::LocalBoxFuture;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long accepting pauses after an error (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server transport.
pub struct Server {
    listening: Listening,
    io: Option<FdIo>,
    setup: Rc<Setup>,
    handshake: Option<LocalBoxFuture<'static, io::Result<Connection>>>,
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Lent for a `chardev-change` to the same address: the socket file to
    /// bind again and whether the old one was IPv6 only.
    released: Option<(Option<String>, bool)>,
    /// The listen backlog (to listen again with).
    backlog: i32,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("local", &self.listening.local).finish()
    }
}

impl Server {
    /// Serve on a listening socket.
    pub fn new(mut listening: Listening, setup: Rc<Setup>) -> Result<Server, BackendError> {
        let io = match listening.fd.take() {
            Some(fd) => Some(FdIo::new(fd).map_err(|e| BackendError::SocketSetup(e.into()))?),
            None => None,
        };
        Ok(Server {
            listening,
            io,
            setup,
            handshake: None,
            backoff: None,
            released: None,
            backlog: net::BACKLOG,
        })
    }

    /// The backlog the socket listens with (to listen again the same way).
    pub fn with_backlog(mut self, backlog: i32) -> Server {
        self.backlog = backlog;
        self
    }

    /// `wait=on`: accept the first client now (its handshakes go on in the
    /// backend).
    pub async fn accept_first(&mut self) {
        let Some(io) = &self.io else {
            return std::future::pending().await;
        };
        loop {
            match poll_fn(|cx| net::poll_accept(io, cx)).await {
                Ok(fd) => {
                    self.handshake = Some(self.setup.handshake(fd));
                    return;
                }
                Err(e) => {
                    tracing::warn!(chardev = %self.setup.id, cause = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

impl Transport for Server {
    fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<Option<Connection>> {
        loop {
            if let Some(h) = &mut self.handshake {
                match h.as_mut().poll(cx) {
                    Poll::Ready(Ok(conn)) => {
                        self.handshake = None;
                        return Poll::Ready(Some(conn));
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(chardev = %self.setup.id, cause = %e, "client dropped during its handshake");
                        self.handshake = None;
                        continue;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            if let Some(b) = &mut self.backoff {
                if b.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.backoff = None;
            }
            let Some(io) = &self.io else {
                // An `fd:` address that never accepts.
                return Poll::Pending;
            };
            match net::poll_accept(io, cx) {
                Poll::Ready(Ok(fd)) => self.handshake = Some(self.setup.handshake(fd)),
                Poll::Ready(Err(e)) => {
                    tracing::warn!(chardev = %self.setup.id, cause = %e, "accept failed; retrying in 100 ms");
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn idle_filename(&self) -> String {
        format!("disconnected:{}", self.listening.local.describe(self.setup.proto, true))
    }

    fn behaviour(&self) -> Behaviour {
        Behaviour {
            announce: true,
            eof_disconnects: true,
            datagrams: false,
            idle_output_logged: false,
            linger: true,
        }
    }

    fn yankable(&self) -> bool {
        true
    }

    /// A change to the same address: stop listening (a client mid-handshake
    /// goes; a connected one stays until the change is done).
    fn poll_release(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        if let Some(io) = self.io.take() {
            let v6only = rustix::net::sockopt::ipv6_v6only(io.as_fd()).unwrap_or(false);
            drop(io);
            let unlink = self.listening.unlink.take();
            if let Some(path) = &unlink {
                net::remove_socket_file(std::path::Path::new(&*crate::chardev::fdio::c_path(path)));
            }
            self.handshake = None;
            self.released = Some((unlink, v6only));
        }
        Poll::Ready(())
    }

    /// The change failed: listen there again.
    fn reacquire(&mut self) {
        let Some((unlink, v6only)) = self.released.take() else {
            return;
        };
        let local = self.listening.local.describe(self.setup.proto, true);
        match net::relisten(&self.listening.local, v6only, self.backlog).and_then(FdIo::new) {
            Ok(io) => {
                self.io = Some(io);
                self.listening.unlink = unlink;
            }
            Err(e) => tracing::error!(chardev = %self.setup.id, cause = %e, "could not listen again on {local}"),
        }
    }
}
