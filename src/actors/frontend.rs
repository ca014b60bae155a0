//! The frontend API: what a device model (an embedder's, or a built-in one)
//! uses to sit on a chardev, as QEMU's `CharBackend` does for guest devices.
//!
//! A [`FrontendHandle`] writes through the backend's route (re-pointed by
//! `chardev-change`), receives [`FrontendEvent`]s from a bounded channel (not
//! reading makes the backend stop reading), marks itself open or closed, and
//! detaches on [`FrontendHandle::detach`] or drop.
use super::msgs::{AttachFrontend, BackendRoute, DetachFrontend, FrontendOwner, SetFrontendOpen};
use super::{ChardevError, Supervisor};
use crate::backends::{BackendReply, CharIoctl, FrontendEvent, ToBackend};
use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::mpsc;

/// How many events a frontend's queue holds before its backend waits.
pub const FRONTEND_QUEUE: usize = 64;

/// A frontend attached to one chardev.
#[derive(Debug)]
pub struct FrontendHandle {
    chardev: String,
    frontend: u64,
    route: BackendRoute,
    events: mpsc::Receiver<FrontendEvent>,
    supervisor: Addr<Supervisor>,
    detached: bool,
}

impl FrontendHandle {
    /// Attach to `chardev`. `open` is the initial `frontend-open`.
    pub async fn attach(
        supervisor: Addr<Supervisor>,
        chardev: &str,
        owner: FrontendOwner,
        open: bool,
    ) -> Result<FrontendHandle, ChardevError> {
        let (sink, events) = mpsc::channel(FRONTEND_QUEUE);
        let (frontend, route) = supervisor
            .send(AttachFrontend {
                chardev: chardev.to_owned(),
                owner,
                sink,
                open,
            })
            .await
            .map_err(|_| ChardevError::Gone(chardev.to_owned()))??;
        Ok(FrontendHandle {
            chardev: chardev.to_owned(),
            frontend,
            route,
            events,
            supervisor,
            detached: false,
        })
    }

    /// The chardev id.
    pub fn chardev(&self) -> &str {
        &self.chardev
    }

    /// Write bytes to the backend (waits while the backend is busy); returns
    /// how many bytes the backend accepted.
    pub async fn write(&self, data: Bytes) -> Result<usize, ChardevError> {
        // A chardev-change may replace the backend while a write is on its
        // way: a write the old backend never took is sent again to the new one.
        for _ in 0..2 {
            let backend = self.backend();
            match backend.send(ToBackend::Write(data.clone())).await {
                Ok(Ok(BackendReply::Written(n))) => return Ok(n),
                Ok(Ok(_)) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
        Err(ChardevError::Gone(self.chardev.clone()))
    }

    fn backend(&self) -> Recipient<ToBackend> {
        match self.route.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// A device ioctl (serial line settings, break, modem lines, parallel
    /// port registers); returns the value read, or 0.
    pub async fn ioctl(&self, req: CharIoctl) -> Result<u32, ChardevError> {
        match self.backend().send(ToBackend::Ioctl(req)).await {
            Ok(Ok(BackendReply::Value(v))) => Ok(v),
            Ok(Ok(_)) => Ok(0),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ChardevError::Gone(self.chardev.clone())),
        }
    }

    /// The next event from the backend; `None` once the chardev is gone.
    pub async fn recv(&mut self) -> Option<FrontendEvent> {
        self.events.recv().await
    }

    /// An event if one is queued.
    pub fn try_recv(&mut self) -> Option<FrontendEvent> {
        self.events.try_recv().ok()
    }

    /// Mark the frontend open or closed (`frontend-open` in query-chardev).
    pub async fn set_open(&self, open: bool) {
        let _ = self
            .supervisor
            .send(SetFrontendOpen {
                chardev: self.chardev.clone(),
                frontend: self.frontend,
                open,
            })
            .await;
    }

    /// Detach from the chardev.
    pub async fn detach(mut self) {
        self.detached = true;
        let _ = self
            .supervisor
            .send(DetachFrontend {
                chardev: self.chardev.clone(),
                frontend: self.frontend,
            })
            .await;
    }
}

impl Drop for FrontendHandle {
    fn drop(&mut self) {
        if !self.detached {
            // A rare control message: do_send is fine here (no data path).
            self.supervisor.do_send(DetachFrontend {
                chardev: self.chardev.clone(),
                frontend: self.frontend,
            });
        }
    }
}
