//! `pipe`: reads `<path>.in` and writes `<path>.out` (both opened read-write,
//! so a fifo with no peer never blocks the open nor reads end of file); when
//! either is missing, `<path>` itself is used both ways, as in QEMU.
use super::fdio::{FdBackend, Io, Plain};
use super::logfile::LogFile;
use super::{open_path, Started};
use actix::prelude::*;
use rustix::fs::OFlags;

/// Open the pipe(s) and start the backend.
pub async fn start(id: &str, path: &str, log: Option<LogFile>) -> Result<Started, String> {
    let pair = (
        open_path(&format!("{path}.in"), OFlags::RDWR).await,
        open_path(&format!("{path}.out"), OFlags::RDWR).await,
    );
    let (input, output) = match pair {
        (Ok(i), Ok(o)) => (i, o),
        _ => {
            let fd = open_path(path, OFlags::RDWR).await?;
            let dup = rustix::io::fcntl_dupfd_cloexec(&fd, 0).map_err(|e| format!("Could not open '{path}': {e}"))?;
            (fd, dup)
        }
    };
    let io = |fd| Io::new(fd).map_err(|e| format!("Could not open '{path}': {e}"));
    let addr = FdBackend::new(id, Some(io(input)?), Some(io(output)?), log, Plain).start();
    Ok(Started::open(addr.recipient(), "pipe"))
}
