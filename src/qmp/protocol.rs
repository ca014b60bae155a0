//! The protocol state of one QMP connection, shared by sessions on
//! sockets ([`super::session`]) and monitors on chardevs
//! ([`super::monitor`]): capabilities negotiation, request checks, the
//! protocol's own commands, and what goes to the executor.
use super::command::QmpCommand;
use super::error::QmpError;
use super::fds::FdTable;
use super::request::{parse_request, ShapeError};
use super::schema::schema;
use super::wire::{failure, greeting_with, success, version};
use crate::api::Command;
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

    /// Negotiation is done: events flow.
    pub fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// The greeting for this connection.
    pub fn greeting(&self) -> Json {
        greeting_with(self.oob_offered)
    }

    /// Check one message and answer what needs no executor; the rest runs
    /// as a future.
    pub fn prepare(&mut self, msg: Message) -> Step {
        let value = match msg {
            Ok(v) => v,
            Err(desc) => return Step::Reply(failure(None, &QmpError::generic(desc))),
        };
        let req = match parse_request(value, self.oob) {
            Ok(r) => r,
            Err(ShapeError { id, error }) => return Step::Reply(failure(id, &error)),
        };
        let id = req.id;
        match self.check(&req.name, &req.args, req.oob) {
            Ok(QmpCommand::Capabilities { enable }) => {
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
            Ok(QmpCommand::QueryVersion) => Step::Reply(success(id, version())),
            Ok(QmpCommand::QueryCommands) => Step::Reply(success(
                id,
                Json::Array(
                    schema()
                        .commands()
                        .iter()
                        .map(|c| Json::object([("name", Json::str(c.clone()))]))
                        .collect(),
                ),
            )),
            Ok(QmpCommand::QueryQmpSchema) => Step::Reply(success(id, schema().introspection().clone())),
            Ok(QmpCommand::GetFd { fdname }) => Step::Reply(self.answer(id, |fds| fds.getfd(&fdname))),
            Ok(QmpCommand::CloseFd { fdname }) => Step::Reply(self.answer(id, |fds| fds.closefd(&fdname))),
            Ok(QmpCommand::Run(cmd)) => Step::Run(id, self.with_fds(cmd)),
            Err(e) => Step::Reply(failure(id, &e)),
        }
    }

    /// Answer a command on this session's descriptors (a TCP session has none).
    fn answer(&self, id: Option<Json>, f: impl FnOnce(&FdTable) -> Result<(), Error>) -> Json {
        let r = match &self.fds {
            Some(fds) => f(fds),
            None => f(&FdTable::default()),
        };
        match r {
            Ok(()) => success(id, Json::empty_object()),
            Err(e) => failure(id, &e.into()),
        }
    }

    /// A chardev-add or chardev-change takes `fd` addresses from this session.
    fn with_fds(&self, cmd: Command) -> Command {
        let fds: Fds = match &self.fds {
            Some(f) => f.clone(),
            None => Arc::new(NoFds),
        };
        match cmd {
            Command::ChardevAdd { id, backend } => Command::ChardevAdd {
                id,
                backend: backend.with_fds(fds),
            },
            Command::ChardevChange { id, backend } => Command::ChardevChange {
                id,
                backend: backend.with_fds(fds),
            },
            other => other,
        }
    }

    fn check(&self, name: &str, args: &Json, oob: bool) -> Result<QmpCommand, QmpError> {
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
            .map_err(QmpError::generic)?;
        QmpCommand::from_checked(name, args)
    }
}

/// What one message needs.
pub enum Step {
    /// An answer at once.
    Reply(Json),
    /// Negotiation succeeded: subscribe to events, then answer.
    Subscribe(Option<Json>),
    /// Run through the executor.
    Run(Option<Json>, Command),
}
