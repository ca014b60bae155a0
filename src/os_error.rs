//! An operating-system error as QEMU quotes it (below every other module:
//! the error enums and the object store both carry it).
use std::fmt;
use std::io;

/// An operating-system error, displayed as C's `strerror` words it (without
/// Rust's `(os error N)` suffix), which is how QEMU quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsError {
    /// The errno, when the error came from the OS.
    pub errno: Option<i32>,
    text: String,
}

impl OsError {
    /// The error for an errno value.
    pub fn from_errno(errno: i32) -> OsError {
        OsError::from(io::Error::from_raw_os_error(errno))
    }
}

impl From<io::Error> for OsError {
    fn from(e: io::Error) -> Self {
        let s = e.to_string();
        let text = match s.find(" (os error") {
            Some(i) => s[..i].to_owned(),
            None => s,
        };
        OsError {
            errno: e.raw_os_error(),
            text,
        }
    }
}

impl From<rustix::io::Errno> for OsError {
    fn from(e: rustix::io::Errno) -> Self {
        OsError::from(io::Error::from(e))
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for OsError {}
