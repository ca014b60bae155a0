//! The one place where errors become QMP `{"error": {"class", "desc"}}` replies.
use crate::error::{Error, ErrorClass};
use crate::json::Json;

/// An error as a QMP client sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{desc}")]
pub struct QmpError {
    /// The error class.
    pub class: ErrorClass,
    /// The human-readable text, worded as QEMU words it.
    pub desc: String,
}

impl QmpError {
    /// A `GenericError`.
    pub fn generic(desc: impl Into<String>) -> Self {
        QmpError {
            class: ErrorClass::GenericError,
            desc: desc.into(),
        }
    }

    /// A `CommandNotFound`.
    pub fn not_found(desc: impl Into<String>) -> Self {
        QmpError {
            class: ErrorClass::CommandNotFound,
            desc: desc.into(),
        }
    }

    /// The `{"class": …, "desc": …}` object.
    pub fn to_json(&self) -> Json {
        Json::object([
            ("class", Json::str(self.class.as_str())),
            ("desc", Json::str(self.desc.clone())),
        ])
    }
}

impl From<Error> for QmpError {
    fn from(e: Error) -> Self {
        QmpError {
            class: e.class(),
            desc: e.to_string(),
        }
    }
}
