//! The one place where errors become QMP `{"error": {"class", "desc"}}` replies.
use crate::json::Json;

/// QMP error classes QEMU 10.0.2 uses for these commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Almost every error.
    GenericError,
    /// Unknown command, or any command before/after negotiation that is not allowed.
    CommandNotFound,
    /// `device_del` of an unknown device.
    DeviceNotFound,
}

impl ErrorClass {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
        }
    }
}

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

impl From<crate::actors::ChardevError> for QmpError {
    fn from(e: crate::actors::ChardevError) -> Self {
        let class = match e {
            crate::actors::ChardevError::NoSuchDevice(_) => ErrorClass::DeviceNotFound,
            _ => ErrorClass::GenericError,
        };
        QmpError {
            class,
            desc: e.to_string(),
        }
    }
}
