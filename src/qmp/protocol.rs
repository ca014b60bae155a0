//! The protocol state of one QMP connection, shared by sessions on
//! sockets ([`super::session`]) and monitors on chardevs
//! ([`super::monitor`]): capabilities negotiation, request checks, the
//! protocol's own commands, and what goes to the executor.
use super::command::{not_found, QmpCommand};
use super::error::QmpError;
use super::fds::FdTable;
use super::request::{parse_request, ShapeError};
use super::schema::schema;
use super::wire::{failure, greeting_with, success};
use crate::api::execute::Executor;
use crate::commands::{self, Args};
use crate::error::Error;
use crate::json::framer::Message;
use crate::json::Json;
use crate::net::{Fds, NoFds};
use std::sync::Arc;

/// One connection's protocol state.
#[derive(Debug)]
pub struct Protocol {
    negotiated: bool,
    oob: bool,
    /// The greeting offers `oob` (QEMU: when the monitor runs in its I/O
    /// thread, which every socket does).
    oob_offered: bool,
    /// Descriptors passed on this connection (unix sockets only).
    fds: Option<Arc<FdTable>>,
}

impl Protocol {
    /// A connection still negotiating.
    pub fn new(oob_offered: bool, fds: Option<Arc<FdTable>>) -> Protocol {
        Protocol {
            negotiated: false,
            oob: false,
            oob_offered,
            fds,
        }
    }

    /// Back to capabilities negotiation (a monitor's chardev reopened).
    pub fn reset(&mut self) {
        self.negotiated = false;
        self.oob = false;
    }

    /// The greeting for this connection.
    pub fn greeting(&self) -> Json {
        greeting_with(self.oob_offered)
    }

    /// Check one message and answer what needs no executor; the rest runs
    /// as a future on `exec`.
    pub(crate) fn prepare(&mut self, msg: Message, exec: &Executor) -> Step {
        let value = match msg {
            Ok(v) => v,
            Err(desc) => return Step::Reply(failure(None, &QmpError::generic(desc))),
        };
        let req = match parse_request(value, self.oob) {
            Ok(r) => r,
            Err(ShapeError { id, error }) => return Step::Reply(failure(id, &error)),
        };
        let id = req.id;
        if let Err(e) = self.check(&req.name, &req.args, req.oob) {
            return Step::Reply(failure(id, &e));
        }
        match QmpCommand::from_checked(&req.name, &req.args) {
            Some(QmpCommand::Capabilities { enable }) => {
                if self.negotiated {
                    return Step::Reply(failure(
                        id,
                        &QmpError::not_found("Capabilities negotiation is already complete, command ignored"),
                    ));
                }
                let oob = enable.iter().any(|c| c == "oob");
                if oob && !self.oob_offered {
                    return Step::Reply(failure(id, &QmpError::generic("Capability 'oob' not available")));
                }
                self.oob = oob;
                self.negotiated = true;
                Step::Subscribe(id)
            }
            Some(QmpCommand::QueryCommands) => Step::Reply(success(
                id,
                Json::Array(
                    schema()
                        .commands()
                        .iter()
                        .map(|c| Json::object([("name", Json::str(c.clone()))]))
                        .collect(),
                ),
            )),
            Some(QmpCommand::QueryQmpSchema) => Step::Reply(success(id, schema().introspection().clone())),
            Some(QmpCommand::GetFd { fdname }) => Step::Reply(self.answer(id, |fds| fds.getfd(&fdname))),
            Some(QmpCommand::CloseFd { fdname }) => Step::Reply(self.answer(id, |fds| fds.closefd(&fdname))),
            None => {
                let Some(entry) = commands::find(&req.name) else {
                    return Step::Reply(failure(id, &not_found(&req.name)));
                };
                // A chardev-add or chardev-change takes `fd` addresses from
                // this session's descriptors.
                let fds: Fds = match &self.fds {
                    Some(f) => f.clone(),
                    None => Arc::new(NoFds),
                };
                match (entry.start)(&Args::new(&req.args, &fds), exec) {
                    Ok(run) => Step::Run {
                        id,
                        run,
                        stops: entry.stops,
                    },
                    Err(e) => Step::Reply(failure(id, &e.into())),
                }
            }
        }
    }

    /// Answer a command on this session's descriptors (a TCP session has none).
    fn answer(&self, id: Option<Json>, f: impl FnOnce(&FdTable) -> Result<(), Error>) -> Json {
        let r = match &self.fds {
            Some(fds) => f(fds),
            // Nothing was passed, and nothing can be held.
            None => f(&FdTable::new(super::fds::FdBudget::new(0, 0))),
        };
        match r {
            Ok(()) => success(id, Json::empty_object()),
            Err(e) => failure(id, &e.into()),
        }
    }

    fn check(&self, name: &str, args: &Json, oob: bool) -> Result<(), QmpError> {
        let schema = schema();
        if !self.negotiated && name != "qmp_capabilities" {
            return Err(QmpError::not_found(
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            ));
        }
        if !schema.has_command(name) {
            return Err(QmpError::not_found(format!("The command {name} has not been found")));
        }
        if oob {
            return Err(QmpError::generic(format!("The command {name} does not support OOB")));
        }
        schema
            .check_args(name, args, name == "device_add")
            .map_err(QmpError::generic)
    }
}

/// What one message needs.
pub enum Step {
    /// An answer at once.
    Reply(Json),
    /// Negotiation succeeded: subscribe to events, then answer.
    Subscribe(Option<Json>),
    /// Run a command; its result is the reply.
    Run {
        /// The request's `id`.
        id: Option<Json>,
        /// The run.
        run: commands::Run,
        /// A success stops the system once the reply is out (`quit`).
        stops: bool,
    },
}
