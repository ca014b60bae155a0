//! `file`: frontend output goes to `out` (truncated, or appended to with
//! `append`); the optional `in` file is read and fed to the frontend, and its
//! end of file closes the chardev's input with a `CLOSED` event, as in QEMU.
use super::fdio::{FdBackend, Io, Plain};
use super::logfile::LogFile;
use super::spec::ChardevFile;
use super::{open_path, Started};
use actix::prelude::*;
use rustix::fs::OFlags;

/// Open the files and start the backend.
pub async fn start(id: &str, f: &ChardevFile, log: Option<LogFile>) -> Result<Started, String> {
    let mut flags = OFlags::WRONLY | OFlags::CREATE;
    flags |= if f.append.unwrap_or(false) {
        OFlags::APPEND
    } else {
        OFlags::TRUNC
    };
    let out = open_path(&f.out, flags).await?;
    let input = match &f.input {
        Some(path) => Some(open_path(path, OFlags::RDONLY).await?),
        None => None,
    };
    let io = |fd| Io::new(fd).map_err(|e| format!("Could not open '{}': {e}", f.out));
    let out = io(out)?;
    let input = input.map(io).transpose()?;
    let addr = FdBackend::new(id, input, Some(out), log, Plain)
        .lends_output(&f.out)
        .start();
    Ok(Started::open(addr.recipient(), "file"))
}
