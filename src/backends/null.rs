//! `null`: discards output, never has input, never opens (QEMU's `chardev-null`).
use super::logfile::LogFile;
use super::{BackendReply, Started, ToBackend};
use crate::actors::ChardevError;
use actix::prelude::*;

/// The null backend actor.
#[derive(Debug)]
pub struct NullBackend {
    id: String,
    log: Option<LogFile>,
}

impl NullBackend {
    /// Start one.
    pub fn start_backend(id: &str, log: Option<LogFile>) -> Started {
        let addr = NullBackend { id: id.to_owned(), log }.start();
        Started {
            backend: addr.recipient(),
            filename: "null".into(),
            opened: false,
            ringbuf: false,
            pty: None,
        }
    }
}

impl Actor for NullBackend {
    type Context = Context<Self>;
}

impl Handler<ToBackend> for NullBackend {
    type Result = Result<BackendReply, ChardevError>;

    fn handle(&mut self, msg: ToBackend, ctx: &mut Context<Self>) -> Self::Result {
        match msg {
            ToBackend::Write(b) => {
                if let Some(log) = &mut self.log {
                    log.log(&b);
                }
                Ok(BackendReply::Written(b.len()))
            }
            ToBackend::Attach(_) | ToBackend::Detach | ToBackend::Break => Ok(BackendReply::Done),
            ToBackend::RingWrite(_) | ToBackend::RingRead { .. } => Err(ChardevError::NotRingbuf(self.id.clone())),
            ToBackend::Ioctl(_) => Err(ChardevError::NotSupported),
            ToBackend::Release | ToBackend::Reacquire => Ok(BackendReply::Done),
            ToBackend::IsOpen => Ok(BackendReply::Value(0)),
            ToBackend::Stop => {
                ctx.stop();
                Ok(BackendReply::Done)
            }
        }
    }
}
