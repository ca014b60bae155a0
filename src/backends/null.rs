//! `null`: discards output, never has input, never opens (QEMU's `chardev-null`).
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::{Backend, Input, Output};
use crate::error::BackendError;
use crate::options::Opts;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::task::{Context, Poll};

/// The `null` kind.
pub(crate) const KIND: Kind = Kind {
    name: "null",
    aliases: &[],
    from_qmp: from_data::<Null>,
    from_cli,
    syntax: "-chardev null,id=ID",
    facts: Facts::NONE,
};

fn from_cli(_opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    Ok(Box::new(Null {}))
}

/// `null` options (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Null {}

impl BackendConfig for Null {
    fn kind(&self) -> &'static str {
        "null"
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async { Ok(Opened::closed(NullBackend)) })
    }
}

/// The run-time side: output is taken (and logged) and dropped.
#[derive(Debug)]
struct NullBackend;

impl Backend for NullBackend {
    fn poll_input(&mut self, _cx: &mut Context<'_>, _room: usize) -> Poll<Input> {
        Poll::Pending
    }

    fn poll_output(&mut self, _cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        Poll::Ready(Output::Written(data.len()))
    }

    fn filename(&self) -> String {
        "null".into()
    }
}
