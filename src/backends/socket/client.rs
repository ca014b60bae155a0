//! A socket client: connects at creation (a failure fails `chardev-add`),
//! or with `reconnect-ms` in the background, again and again: one
//! `Unable to connect character device ID: ...` message per outage, retries
//! at the interval (QEMU's fixed interval), and a new connection after the
//! peer goes. Without `reconnect-ms` a dropped connection stays down.
use super::link::Setup;
use crate::chardev::transport::{Behaviour, Connection, Transport};
use crate::net::{self, Fds, SocketAddressLegacy};
use futures_util::future::LocalBoxFuture;
use rustix::fd::OwnedFd;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

enum State {
    /// Connecting (and handshaking).
    Connecting(LocalBoxFuture<'static, Result<Connection, String>>),
    /// Waiting for the next attempt.
    Waiting(Pin<Box<tokio::time::Sleep>>),
    /// Connected (the link is the backend's).
    Up,
    /// Down for good (no reconnect).
    Down,
}

/// The client transport.
pub struct Client {
    addr: SocketAddressLegacy,
    fds: Option<Fds>,
    setup: Rc<Setup>,
    reconnect: Option<Duration>,
    state: State,
    /// The outage was reported.
    reported: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).finish()
    }
}

impl Client {
    /// A client whose socket is connected (the handshakes go on in the backend).
    pub fn connected(addr: SocketAddressLegacy, fd: OwnedFd, setup: Rc<Setup>) -> Client {
        let h = setup.handshake(fd);
        Client {
            addr,
            fds: None,
            setup,
            reconnect: None,
            state: State::Connecting(Box::pin(async move { h.await.map_err(|e| e.to_string()) })),
            reported: false,
        }
    }

    /// A client that connects in the background, and again after `delay`
    /// whenever it fails or drops.
    pub fn reconnecting(addr: SocketAddressLegacy, fds: Fds, setup: Rc<Setup>, delay: Duration) -> Client {
        let mut c = Client {
            addr,
            fds: Some(fds),
            setup,
            reconnect: Some(delay),
            state: State::Down,
            reported: false,
        };
        c.state = State::Connecting(c.attempt());
        c
    }

    fn attempt(&self) -> LocalBoxFuture<'static, Result<Connection, String>> {
        let (addr, fds, setup) = (self.addr.clone(), self.fds.clone(), self.setup.clone());
        Box::pin(async move {
            let fds = fds.unwrap_or_else(|| std::sync::Arc::new(net::NoFds));
            let fd = net::connect(&addr, &*fds).await.map_err(|e| e.to_string())?;
            setup.handshake(fd).await.map_err(|e: io::Error| e.to_string())
        })
    }

    fn after_failure(&mut self) {
        self.state = match self.reconnect {
            Some(d) => State::Waiting(Box::pin(tokio::time::sleep(d))),
            None => State::Down,
        };
    }
}

impl Transport for Client {
    fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<Option<Connection>> {
        loop {
            match &mut self.state {
                State::Connecting(f) => match f.as_mut().poll(cx) {
                    Poll::Ready(Ok(conn)) => {
                        self.reported = false;
                        self.state = State::Up;
                        return Poll::Ready(Some(conn));
                    }
                    Poll::Ready(Err(why)) => {
                        if !self.reported {
                            tracing::warn!("Unable to connect character device {}: {why}", self.setup.id);
                            self.reported = true;
                        }
                        self.after_failure();
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::Waiting(t) => {
                    if t.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.state = State::Connecting(self.attempt());
                }
                State::Up => return Poll::Pending,
                State::Down => return Poll::Ready(None),
            }
        }
    }

    fn idle_filename(&self) -> String {
        format!("disconnected:{}", net::describe_target(&self.addr, self.setup.proto))
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

    fn disconnected(&mut self) {
        self.after_failure();
    }

    fn yankable(&self) -> bool {
        true
    }
}
