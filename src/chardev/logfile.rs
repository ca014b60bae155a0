//! `logfile`/`logappend` (ChardevCommon): a copy of every byte the frontend
//! writes that the backend accepted, as QEMU logs it. Best effort: a failed
//! log write is reported once in the daemon log and never fails the chardev.
//! Writes go straight to the file from the backend's actor (page cache); a
//! log that is a fifo nobody reads drops data rather than block.
use crate::error::BackendError;
use std::fs::File;
use std::io::Write;

/// An open log file.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: String,
    failed: bool,
}

impl LogFile {
    /// Open (create, truncate unless `append`) as QEMU does, mode 0666 before
    /// umask. Non-blocking: a log fifo waits for its reader without holding
    /// the thread, and a full one drops log data instead of freezing the daemon.
    pub async fn open(path: &str, append: bool) -> Result<LogFile, BackendError> {
        use rustix::fs::OFlags;
        let flags = OFlags::WRONLY | OFlags::CREATE | if append { OFlags::APPEND } else { OFlags::TRUNC };
        match super::fdio::open_nonblocking(path, flags, 0o666).await {
            Ok(fd) => Ok(LogFile {
                file: File::from(fd),
                path: path.to_owned(),
                failed: false,
            }),
            Err(e) => Err(BackendError::LogCreate {
                path: path.to_owned(),
                source: e.into(),
            }),
        }
    }

    /// Append bytes; errors are logged once and otherwise ignored.
    pub fn log(&mut self, data: &[u8]) {
        match self.file.write_all(data) {
            Ok(()) => self.failed = false,
            Err(e) => {
                if !self.failed {
                    tracing::warn!(path = %self.path, cause = %e, "chardev log write failed; log data dropped");
                    self.failed = true;
                }
            }
        }
    }
}
