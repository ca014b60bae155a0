//! The frontend API: what an embedder's device model uses to sit on a
//! chardev, as QEMU's `CharFrontend` does for guest devices.
//!
//! A [`Frontend`] is a port plus its control: it writes with backpressure
//! (partial accept through [`Frontend::try_write`], or waiting through
//! [`Frontend::write`]), receives [`FrontendEvent`]s (as a [`Stream`] too; not
//! reading makes the backend stop reading), marks itself open or closed,
//! makes ioctls, and detaches on [`Frontend::detach`] or drop. A
//! `chardev-change` moves it to the new backend; nothing changes on its side.
use super::execute::Executor;
use crate::actors::chardev::Control;
use crate::actors::supervisor::{later, ready};
use crate::chardev::{CharIoctl, FrontendEvent, Port};
use crate::error::Error;
use crate::registry::Holder;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// A frontend attached to one chardev.
#[derive(Debug)]
pub struct Frontend {
    chardev: String,
    holder: Holder,
    port: Port,
    exec: Executor,
    detached: bool,
}

impl Frontend {
    pub(crate) fn new(chardev: String, holder: Holder, port: Port, exec: Executor) -> Frontend {
        Frontend {
            chardev,
            holder,
            port,
            exec,
            detached: false,
        }
    }

    /// The chardev id.
    pub fn chardev(&self) -> &str {
        &self.chardev
    }

    fn detached_error(&self) -> Error {
        Error::Detached(self.chardev.clone())
    }

    /// Write all of `data` and wait until the chardev has finished with it
    /// (QEMU's `qemu_chr_fe_write_all`): once this returns, the backend has
    /// it (and the log, and a ring); returns its length.
    pub async fn write(&self, data: Bytes) -> Result<usize, Error> {
        let n = self.feed(data).await?;
        self.flush().await?;
        Ok(n)
    }

    /// Queue all of `data`, waiting only while the port's queue is full;
    /// returns its length. Faster than [`Frontend::write`] for a stream of
    /// writes; [`Frontend::flush`] waits for them.
    pub async fn feed(&self, data: Bytes) -> Result<usize, Error> {
        self.port.write(data).await.map_err(|_| self.detached_error())
    }

    /// Wait until the chardev has finished with everything written so far:
    /// handed it to its backend (and its log), or dropped it as its kind
    /// does while disconnected.
    pub async fn flush(&self) -> Result<(), Error> {
        self.port.flush().await.map_err(|_| self.detached_error())
    }

    /// Queue as much of `data` as fits now; returns how many bytes were taken.
    pub fn try_write(&self, data: &[u8]) -> Result<usize, Error> {
        self.port.try_write(data).map_err(|_| self.detached_error())
    }

    /// A device ioctl (serial line settings, break, modem lines, parallel
    /// port registers); returns the value read, or 0.
    pub async fn ioctl(&self, req: CharIoctl) -> Result<u32, Error> {
        let (chardev, holder) = (self.chardev.clone(), self.holder.clone());
        self.exec
            .call(move |sup, _ctx| {
                if sup.registry.port_of(&chardev, &holder).is_none() {
                    return ready(Err(Error::Detached(chardev)));
                }
                let (done, rx) = oneshot::channel();
                sup.port_op(&chardev, Control::Ioctl { req, done });
                later(async move { rx.await.unwrap_or(Err(Error::Detached(chardev))) })
            })
            .await?
    }

    /// The next event; `None` once the frontend is detached (its chardev was
    /// removed or the system stopped).
    pub async fn recv(&mut self) -> Option<FrontendEvent> {
        self.port.recv().await
    }

    /// An event if one is queued.
    pub fn try_recv(&mut self) -> Option<FrontendEvent> {
        self.port.try_recv()
    }

    /// Mark the frontend open or closed (`frontend-open` in query-chardev);
    /// returns once query-chardev shows it.
    pub async fn set_open(&self, open: bool) -> Result<(), Error> {
        let (chardev, holder) = (self.chardev.clone(), self.holder.clone());
        self.exec
            .call(move |sup, _ctx| {
                let Some(port) = sup.registry.port_of(&chardev, &holder) else {
                    return ready(Err(Error::Detached(chardev)));
                };
                let (done, rx) = oneshot::channel();
                sup.port_op(&chardev, Control::SetOpen { port, open, done });
                later(async move {
                    match rx.await {
                        Ok(true) => Ok(()),
                        _ => Err(Error::Detached(chardev)),
                    }
                })
            })
            .await?
    }

    /// Detach from the chardev.
    pub async fn detach(mut self) -> Result<(), Error> {
        self.detached = true;
        let (chardev, holder) = (self.chardev.clone(), self.holder.clone());
        self.exec.with(move |sup, _ctx| sup.detach(&chardev, &holder)).await
    }
}

impl Stream for Frontend {
    type Item = FrontendEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FrontendEvent>> {
        self.port.poll_recv(cx)
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        if !self.detached {
            // A rare control message: do_send is fine here (no data path).
            let (chardev, holder) = (self.chardev.clone(), self.holder.clone());
            self.exec.tell(move |sup, _ctx| sup.detach(&chardev, &holder));
        }
    }
}
