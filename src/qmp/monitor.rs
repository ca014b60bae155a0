//! QMP monitors on chardevs (`-mon chardev=ID,mode=control[,pretty=on]`,
//! `__org.chardevd_monitor-add`): a QMP session ([`super::session`]) whose
//! connection is a frontend on a chardev: a pty, a socket (with TLS,
//! websocket, telnet), a mux shared with a console, anything.
//!
//! It behaves as QEMU 10.0.2's QMP monitor:
//! - every OPENED of the chardev (each client of a socket; once for a
//!   chardev that is always open) starts a new session: back to
//!   capabilities negotiation, and the greeting;
//! - CLOSED drops the parser's partial input (and requests read but not
//!   yet handled); a command already running still writes its reply;
//! - events go out only once negotiated; while the chardev has no client
//!   they are written into the void, as QEMU does, and when too many wait
//!   unwritten, new ones are dropped and logged (the monitor stays);
//! - output turns every `\n` into `\r\n`; `pretty=on` is QEMU's pretty
//!   JSON (4 spaces a level).
use super::output::Budget;
use super::session::{Input, Kind, QmpSession, SessionLimits, Style};
use crate::actors::StopDevice;
use crate::api::execute::{Executor, MonitorSpec, MonitorStarter};
use crate::api::Frontend;
use crate::chardev::FrontendEvent;
use crate::json::framer::{Framer, InputBudget, Message};
use actix::prelude::*;
use futures_util::Stream;
use std::collections::VecDeque;
use std::sync::Arc;

/// Starts monitors; installed in the executor by the runtime.
#[derive(Debug)]
pub struct Starter {
    limits: SessionLimits,
    global: Arc<Budget>,
    input: Arc<InputBudget>,
}

impl Starter {
    /// Monitors bounded like sessions, sharing the sessions' budgets.
    pub fn new(limits: SessionLimits, global: Arc<Budget>, input: Arc<InputBudget>) -> Starter {
        Starter { limits, global, input }
    }
}

impl MonitorStarter for Starter {
    fn start(&self, spec: MonitorSpec, fe: Frontend, arbiter: &ArbiterHandle, exec: Executor) -> Recipient<StopDevice> {
        let (limits, global, budget) = (self.limits, self.global.clone(), self.input.clone());
        QmpSession::start_in_arbiter(arbiter, move |ctx| {
            let writer = fe.writer();
            let input = monitor_input(fe, Framer::with_budget(limits.max_message, budget));
            let style = Style {
                kind: Kind::Monitor {
                    id: spec.id,
                    chardev: spec.chardev,
                },
                pretty: spec.pretty,
                oob: spec.oob,
                fds: None,
            };
            QmpSession::new(input, writer, exec, limits, global, style, None, ctx)
        })
        .recipient()
    }
}

/// A frontend's data and events as session input: bytes through QEMU's
/// JSON framer; a CLOSED drops what was read but not yet handled, and the
/// parser's partial input. QEMU's QMP monitor ignores BREAK, MUX_IN and
/// MUX_OUT.
fn monitor_input(fe: Frontend, framer: Framer) -> impl Stream<Item = Result<Input, std::io::Error>> {
    struct State {
        fe: Frontend,
        framer: Framer,
        /// Bytes read and not yet parsed (parsing stops at each message).
        unparsed: bytes::Bytes,
        ready: VecDeque<Input>,
        scratch: Vec<Message>,
    }
    let state = State {
        fe,
        framer,
        unparsed: bytes::Bytes::new(),
        ready: VecDeque::new(),
        scratch: Vec::new(),
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((Ok(item), st));
            }
            if !st.unparsed.is_empty() {
                let taken = st.framer.feed_until(&st.unparsed, &mut st.scratch);
                let _ = st.unparsed.split_to(taken);
                st.ready.extend(st.scratch.drain(..).map(Input::Message));
                continue;
            }
            match st.fe.recv().await? {
                FrontendEvent::Data(b) => st.unparsed = b,
                FrontendEvent::Opened => st.ready.push_back(Input::Opened),
                FrontendEvent::Closed => {
                    st.ready.retain(|i| !matches!(i, Input::Message(_)));
                    st.framer.reset();
                    st.ready.push_back(Input::Closed);
                }
                FrontendEvent::Break | FrontendEvent::MuxIn | FrontendEvent::MuxOut => {}
            }
        }
    })
}
