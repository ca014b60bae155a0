//! From a checked QMP request to what runs it: one of QMP's own protocol
//! commands (answered by the session), or a line of the command table
//! ([`crate::commands`]) whose type parses the arguments. Parsing never
//! touches actors.
use super::error::QmpError;
use crate::json::Json;

/// A QMP protocol command (the session's own).
#[derive(Debug)]
pub enum QmpCommand {
    /// `qmp_capabilities`.
    Capabilities {
        /// Capabilities to enable (`oob`).
        enable: Vec<String>,
    },
    /// `query-commands`.
    QueryCommands,
    /// `query-qmp-schema`.
    QueryQmpSchema,
    /// `getfd`: name the descriptor sent with the command.
    GetFd {
        /// The name.
        fdname: String,
    },
    /// `closefd`.
    CloseFd {
        /// The name.
        fdname: String,
    },
}

fn string(args: &Json, key: &str) -> String {
    args.get(key).and_then(Json::as_str).unwrap_or_default().to_owned()
}

impl QmpCommand {
    /// The protocol command `name`, from arguments that passed
    /// [`crate::qmp::schema::Schema::check_args`]; `None` if `name` is not one.
    pub fn from_checked(name: &str, args: &Json) -> Option<QmpCommand> {
        Some(match name {
            "qmp_capabilities" => QmpCommand::Capabilities {
                enable: match args.get("enable") {
                    Some(Json::Array(v)) => v.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                },
            },
            "query-commands" => QmpCommand::QueryCommands,
            "query-qmp-schema" => QmpCommand::QueryQmpSchema,
            "getfd" => QmpCommand::GetFd {
                fdname: string(args, "fdname"),
            },
            "closefd" => QmpCommand::CloseFd {
                fdname: string(args, "fdname"),
            },
            _ => return None,
        })
    }
}

/// An unknown command (the schema has it but nothing runs it: a bug).
pub fn not_found(name: &str) -> QmpError {
    QmpError::not_found(format!("The command {name} has not been found"))
}
