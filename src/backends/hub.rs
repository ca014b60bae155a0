//! `hub` (QEMU 10's `chardev-hub`): up to 4 chardevs merged into one
//! frontend.
//!
//! - Input from every input chardev goes to the frontend as it comes
//!   (streams merge at chunk boundaries, as in QEMU).
//! - The frontend's output is copied to every open input at the pace of
//!   the slowest (QEMU's rule): a chunk counts as written once every open
//!   input took it, and an input that took more than the others is not
//!   given those bytes again. With no open input, output is dropped (as
//!   QEMU returns the length).
//! - Events: the first input to open opens the hub; the hub closes when the
//!   last open input closes; breaks pass through.
//! - QEMU's limits and texts: 4 inputs, no mux or hub among them (they do
//!   not stack), each input free, the list not empty. It cannot be changed,
//!   its inputs cannot be removed while it exists, and it can be removed
//!   once it has no frontend. `chardev-send-break` on it sends a break to
//!   its frontend (QEMU 10.0.2 crashes).
use super::{BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::{Backend, FrontendEvent, Input, Output, Port};
use crate::error::BackendError;
use crate::options::Opts;
use crate::registry::{KindInfo, Reject};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::task::{Context, Poll};

/// The `hub` kind.
pub(crate) const KIND: Kind = Kind {
    name: "hub",
    aliases: &[],
    from_qmp,
    from_cli,
    syntax: "-chardev hub,id=ID,chardevs.0=ID[,chardevs.1=ID[,chardevs.2=ID[,chardevs.3=ID]]]",
    facts: Facts {
        oob: true,
        ..Facts::NONE
    },
};

/// QEMU's `MAX_HUB`.
pub const MAX_HUB: usize = 4;

/// `hub` options (`ChardevHub`): up to 4 chardevs merged into one frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hub {
    /// The input chardevs.
    pub chardevs: Vec<String>,
}

fn from_qmp(data: &serde_json::Value) -> Result<Box<dyn BackendConfig>, BackendError> {
    let h: Hub = serde_json::from_value(data.clone()).map_err(|e| BackendError::Invalid(e.to_string()))?;
    Ok(Box::new(h))
}

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    // QEMU reads chardevs.0, chardevs.1, ... up to the first missing one.
    let mut chardevs = Vec::new();
    for i in 0..MAX_HUB {
        match opts.take(&format!("chardevs.{i}")) {
            Some(c) => chardevs.push(c),
            None => break,
        }
    }
    for i in chardevs.len()..MAX_HUB {
        let _ = opts.take(&format!("chardevs.{i}"));
    }
    Ok(Box::new(Hub { chardevs }))
}

const NOT_DEFINED: &str = "hub: 'chardevs' list is not defined";

impl BackendConfig for Hub {
    fn kind(&self) -> &'static str {
        "hub"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            hotswap: false,
            references: self.chardevs.clone(),
            max_references: MAX_HUB,
            refuses: &["mux", "hub"],
            ..KindInfo::plain("hub")
        }
    }

    fn reference_error(&self, id: &str, reject: &Reject) -> BackendError {
        BackendError::Kind(match reject {
            Reject::RefMissing(r) => format!("hub: chardev can't be found by id '{r}'"),
            Reject::RefRefused(r) => format!(
                "hub: multiplexers and hub devices can't be stacked, check chardev '{r}', \
                 chardev should not be a hub device or have 'mux=on' enabled"
            ),
            Reject::RefTooMany => format!("hub: too many uses of chardevs '{id}' (maximum is {MAX_HUB})"),
            other => super::in_use_text(other),
        })
    }

    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            if cx.ports.is_empty() {
                return Err(BackendError::Kind(NOT_DEFINED.into()));
            }
            let inputs = cx
                .ports
                .into_iter()
                .map(|port| HubInput {
                    port,
                    open: false,
                    gone: false,
                    pending: Bytes::new(),
                    written: 0,
                })
                .collect();
            Ok(Opened::closed(HubBackend {
                id: cx.id,
                inputs,
                opened: 0,
                next: 0,
                fe_open_told: false,
            }))
        })
    }
}

#[derive(Debug)]
struct HubInput {
    port: Port,
    open: bool,
    gone: bool,
    /// Input taken from the port and not yet handed on.
    pending: Bytes,
    /// How much of the current output chunk this input took.
    written: usize,
}

#[derive(Debug)]
struct HubBackend {
    id: String,
    inputs: Vec<HubInput>,
    /// Inputs open now (QEMU's `be_event_opened_cnt`).
    opened: usize,
    /// The input to read from next (round robin).
    next: usize,
    fe_open_told: bool,
}

impl HubBackend {
    /// The slowest open input's share of the current chunk.
    fn slowest(&self, except: usize) -> usize {
        self.inputs
            .iter()
            .enumerate()
            .filter(|(i, x)| *i != except && x.open && !x.gone)
            .map(|(_, x)| x.written)
            .min()
            .unwrap_or(0)
    }
}

impl Backend for HubBackend {
    fn poll_input(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        let n = self.inputs.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if !self.inputs[i].pending.is_empty() {
                if room == 0 {
                    continue;
                }
                let input = &mut self.inputs[i];
                let take = room.min(input.pending.len());
                let data = input.pending.split_to(take);
                self.next = i + 1;
                return Poll::Ready(Input::Data(data));
            }
            if self.inputs[i].gone {
                continue;
            }
            let ev = match self.inputs[i].port.poll_recv(cx) {
                Poll::Ready(Some(ev)) => ev,
                Poll::Ready(None) => {
                    self.inputs[i].gone = true;
                    FrontendEvent::Closed
                }
                Poll::Pending => continue,
            };
            self.next = i + 1;
            match ev {
                FrontendEvent::Data(b) => {
                    if room == 0 {
                        self.inputs[i].pending = b;
                        continue;
                    }
                    let mut b = b;
                    let data = if b.len() > room {
                        b.split_to(room)
                    } else {
                        std::mem::take(&mut b)
                    };
                    self.inputs[i].pending = b;
                    return Poll::Ready(Input::Data(data));
                }
                FrontendEvent::Opened if !self.inputs[i].open => {
                    // Catch up: it takes the current chunk from the slowest's place.
                    let w = self.slowest(i);
                    let input = &mut self.inputs[i];
                    input.open = true;
                    input.written = w;
                    self.opened += 1;
                    if self.opened == 1 {
                        return Poll::Ready(Input::Opened);
                    }
                }
                FrontendEvent::Closed if self.inputs[i].open => {
                    self.inputs[i].open = false;
                    self.inputs[i].written = 0;
                    self.opened = self.opened.saturating_sub(1);
                    if self.opened == 0 {
                        return Poll::Ready(Input::Closed);
                    }
                }
                FrontendEvent::Break => return Poll::Ready(Input::Break),
                _ => {}
            }
            // Something happened: look again before sleeping.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Pending
    }

    fn poll_output(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        let mut any = false;
        for input in self.inputs.iter_mut().filter(|x| x.open && !x.gone) {
            any = true;
            if input.written >= data.len() {
                continue;
            }
            match input.port.poll_room(cx) {
                Poll::Ready(Ok(room)) => {
                    let end = data.len().min(input.written + room);
                    let n = input.port.try_write(&data[input.written..end]).unwrap_or(0);
                    input.written += n;
                }
                Poll::Ready(Err(_)) => input.gone = true,
                Poll::Pending => {}
            }
        }
        if !any {
            return Poll::Ready(Output::Written(data.len()));
        }
        let done = self
            .inputs
            .iter()
            .filter(|x| x.open && !x.gone)
            .map(|x| x.written)
            .min()
            .unwrap_or(data.len())
            .min(data.len());
        if done == 0 {
            return Poll::Pending;
        }
        for input in &mut self.inputs {
            input.written = input.written.saturating_sub(done);
        }
        Poll::Ready(Output::Written(done))
    }

    fn filename(&self) -> String {
        "hub".into()
    }

    fn frontends_open(&mut self, any: bool) {
        // The inputs now have an open frontend (QEMU sets the hub's
        // handlers on them when its own frontend sets handlers).
        if any && !self.fe_open_told {
            self.fe_open_told = true;
            for input in &self.inputs {
                input.port.set_frontend_open(true);
            }
        }
        tracing::debug!(chardev = %self.id, open = any, "hub frontend");
    }
}
