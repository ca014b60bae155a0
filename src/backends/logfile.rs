//! `logfile`/`logappend` (ChardevCommon): a copy of every byte the frontend
//! writes that the backend accepted, as QEMU logs it. Best effort: a failed
//! log write is reported once in the daemon log and never fails the chardev.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// An open log file.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: String,
    failed: bool,
}

impl LogFile {
    /// Open (create, truncate unless `append`) as QEMU does, mode 0666 before
    /// umask; on the blocking pool (a fifo would wait for a reader).
    pub async fn open(path: &str, append: bool) -> Result<LogFile, String> {
        let owned = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_now(&owned, append))
            .await
            .map_err(|e| format!("Could not create '{path}': {e}"))?
    }

    fn open_now(path: &str, append: bool) -> Result<LogFile, String> {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).mode(0o666);
        if append {
            opts.append(true);
        } else {
            opts.truncate(true);
        }
        match opts.open(path) {
            Ok(file) => Ok(LogFile {
                file,
                path: path.to_owned(),
                failed: false,
            }),
            Err(e) => Err(format!("Could not create '{path}': {}", super::strerror(&e))),
        }
    }

    /// Append bytes; errors are logged once and otherwise ignored.
    pub fn log(&mut self, data: &[u8]) {
        if let Err(e) = self.file.write_all(data) {
            if !self.failed {
                tracing::warn!(path = %self.path, cause = %e, "chardev log write failed");
                self.failed = true;
            }
        }
    }
}
