//! A chardev's log (ChardevCommon): a copy of every byte the frontend
//! writes that the backend accepted, as QEMU logs it, with QEMU 11.0's
//! `logtimestamp` and chardevd's rotation (`__org.chardevd_logsize`,
//! `__org.chardevd_logbackups`).
//!
//! Best effort, never in the way: a failed write is reported once in the
//! daemon log, its bytes counted, and the chardev goes on. Writes go straight
//! to the file from the chardev's actor (page cache); a log that is a fifo
//! nobody reads drops data rather than block.
//!
//! - Timestamps are QEMU's: each line (ended by `\n` only) starts with the
//!   UTC time as GLib's `g_date_time_format_iso8601` writes it
//!   (`2026-02-11T12:30:07.123456Z`, no fraction when the microseconds are
//!   0) and a space; the line-start state carries across writes, so the
//!   stamp goes before the first byte of the next line when it comes; one
//!   time is taken per write.
//! - Rotation: before a write would make the file pass the size, the file
//!   is rotated (`PATH` to `PATH.1`, `PATH.1` to `PATH.2`, ... up to the
//!   number of backups; with none, the log starts afresh). The write is cut
//!   at the last line end that fits if one is near the limit, else the
//!   rotation comes first if the file ends a line, else the write is cut at
//!   the limit: no byte lost or written twice.
//! - [`reopen_all`] (the daemon's SIGHUP) makes every log open its path
//!   again at its next write (logrotate's `create` mode).
use crate::error::BackendError;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The smallest `__org.chardevd_logsize`.
pub const MIN_LOG_SIZE: u64 = 1024;

/// Backups kept when `__org.chardevd_logbackups` is not given.
pub const DEFAULT_BACKUPS: u32 = 5;

/// The most `__org.chardevd_logbackups`.
pub const MAX_BACKUPS: u32 = 1000;

/// Bumped by [`reopen_all`]; each log compares it with its own.
static REOPEN: AtomicU64 = AtomicU64::new(0);

/// Every log opens its path again before its next write (the daemon calls
/// this on SIGHUP, as logrotate's `create` mode expects).
pub fn reopen_all() {
    REOPEN.fetch_add(1, Ordering::Relaxed);
}

/// How a chardev logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// The file.
    pub path: String,
    /// Append to it at open (else truncate).
    pub append: bool,
    /// QEMU 11.0's `logtimestamp`.
    pub timestamp: bool,
    /// Rotate before passing this size.
    pub max_size: Option<u64>,
    /// Rotated files kept.
    pub backups: u32,
}

/// An open log file.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    opts: LogOptions,
    /// Bytes in the current file.
    size: u64,
    /// The last byte written to the current file ended a line (or it is empty).
    ends_line: bool,
    /// The next byte logged starts a line (QEMU's `log_line_start`).
    line_start: bool,
    /// Rotation applies (a regular file).
    rotates: bool,
    /// The [`REOPEN`] generation this file was opened in.
    generation: u64,
    /// A write or a rotation failed and was reported; reset by a success.
    failed: bool,
}

fn open_flags(append: bool) -> rustix::fs::OFlags {
    use rustix::fs::OFlags;
    OFlags::WRONLY | OFlags::CREATE | if append { OFlags::APPEND } else { OFlags::TRUNC }
}

impl LogFile {
    /// Open (create, truncate unless `append`) as QEMU does, mode 0666 before
    /// umask. Non-blocking: a log fifo waits for its reader without holding
    /// the thread, and a full one drops log data instead of freezing the daemon.
    pub async fn open(opts: LogOptions) -> Result<LogFile, BackendError> {
        let generation = REOPEN.load(Ordering::Relaxed);
        match super::fdio::open_nonblocking(&opts.path, open_flags(opts.append), 0o666).await {
            Ok(fd) => Ok(LogFile::from_file(File::from(fd), opts, generation)),
            Err(e) => Err(BackendError::LogCreate {
                path: opts.path.clone(),
                source: e.into(),
            }),
        }
    }

    fn from_file(file: File, opts: LogOptions, generation: u64) -> LogFile {
        let meta = file.metadata().ok();
        let rotates = opts.max_size.is_some() && meta.as_ref().is_some_and(|m| m.is_file());
        LogFile {
            size: meta.map_or(0, |m| m.len()),
            file,
            ends_line: true,
            line_start: true,
            rotates,
            generation,
            failed: false,
            opts,
        }
    }

    /// Log bytes; returns how many bytes of log were lost to errors (each
    /// kind of failure is reported once in a row).
    pub fn log(&mut self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        self.reopen_if_asked();
        if self.opts.timestamp {
            let stamped = self.stamp(data, &iso8601_now());
            self.write_rotating(&stamped)
        } else {
            self.write_rotating(data)
        }
    }

    /// QEMU's `do_write_log_timestamps`: a stamp and a space before each
    /// line's first byte.
    fn stamp(&mut self, mut data: &[u8], time: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + time.len() + 1);
        while !data.is_empty() {
            if self.line_start {
                out.extend_from_slice(time.as_bytes());
                out.push(b' ');
                self.line_start = false;
            }
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    out.extend_from_slice(&data[..=i]);
                    data = &data[i + 1..];
                    self.line_start = true;
                }
                None => {
                    out.extend_from_slice(data);
                    break;
                }
            }
        }
        out
    }

    fn write_rotating(&mut self, mut rest: &[u8]) -> usize {
        let mut lost = 0;
        while !rest.is_empty() {
            let max = match self.opts.max_size {
                Some(m) if self.rotates => m,
                _ => return lost + self.write(rest),
            };
            let room = max.saturating_sub(self.size) as usize;
            if rest.len() <= room {
                return lost + self.write(rest);
            }
            // It would pass the size: cut at a line end near the limit, or
            // rotate first if the file ends a line, or cut at the limit.
            let near = (max / 4).min(4096) as usize;
            let cut = match memchr::memrchr(b'\n', &rest[..room]) {
                Some(i) if room - (i + 1) <= near => i + 1,
                _ if self.ends_line && self.size > 0 => 0,
                _ => room,
            };
            lost += self.write(&rest[..cut]);
            rest = &rest[cut..];
            self.rotate();
        }
        lost
    }

    fn write(&mut self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        match self.file.write_all(data) {
            Ok(()) => {
                self.failed = false;
                self.size += data.len() as u64;
                self.ends_line = data.last() == Some(&b'\n');
                0
            }
            Err(e) => {
                self.report("chardev log write failed; log data dropped", &e);
                data.len()
            }
        }
    }

    fn report(&mut self, what: &str, e: &dyn std::fmt::Display) {
        if !self.failed {
            tracing::warn!(path = %self.opts.path, cause = %e, "{what}");
            self.failed = true;
        }
    }

    /// `PATH.N-1` to `PATH.N`, ..., `PATH` to `PATH.1`, and a new `PATH`.
    fn rotate(&mut self) {
        let path = self.opts.path.clone();
        let name = |i: u32| format!("{path}.{i}");
        if self.opts.backups > 0 {
            for i in (1..self.opts.backups).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            if let Err(e) = std::fs::rename(&path, name(1)) {
                // Keep writing where we are; try again after as many bytes.
                self.report("chardev log rotation failed; the log goes on in place", &e);
                self.size = 0;
                return;
            }
        }
        match reopen(&path, false) {
            Ok(f) => {
                self.file = f;
                self.size = 0;
                self.ends_line = true;
                tracing::debug!(path = %path, "chardev log rotated");
            }
            Err(e) => {
                self.report(
                    "chardev log could not be created again; the log goes on in the old file",
                    &e,
                );
                self.size = 0;
            }
        }
    }

    fn reopen_if_asked(&mut self) {
        let now = REOPEN.load(Ordering::Relaxed);
        if now == self.generation {
            return;
        }
        self.generation = now;
        match reopen(&self.opts.path, true) {
            Ok(f) => {
                *self = LogFile {
                    line_start: self.line_start,
                    ..LogFile::from_file(f, self.opts.clone(), now)
                };
                tracing::debug!(path = %self.opts.path, "chardev log reopened");
            }
            Err(e) => self.report("chardev log could not be reopened; the log goes on in the old file", &e),
        }
    }
}

/// Open `path` for the log now (append or truncate), without waiting.
fn reopen(path: &str, append: bool) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = open_flags(append) | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(&*super::fdio::c_path(path), flags, Mode::from_raw_mode(0o666))?;
    Ok(File::from(fd))
}

/// Now, in UTC, as GLib's `g_date_time_format_iso8601` writes it.
pub fn iso8601_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso8601(d.as_secs(), d.subsec_micros())
}

/// `secs` since the epoch and `micros`: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
pub fn iso8601(secs: u64, micros: u32) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if micros == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z")
    }
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(path: &std::path::Path, max: Option<u64>, backups: u32, timestamp: bool) -> LogOptions {
        LogOptions {
            path: path.to_str().unwrap().into(),
            append: false,
            timestamp,
            max_size: max,
            backups,
        }
    }

    fn log(o: LogOptions) -> LogFile {
        let f = reopen(&o.path, false).unwrap();
        LogFile::from_file(f, o, REOPEN.load(Ordering::Relaxed))
    }

    #[test]
    fn timestamps_are_glibs_iso8601_in_utc() {
        assert_eq!(iso8601(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_770_813_007, 123_456), "2026-02-11T12:30:07.123456Z");
        assert_eq!(iso8601(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(iso8601(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
    }

    #[test]
    fn a_stamp_goes_before_each_lines_first_byte_across_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = log(opts(&dir.path().join("log"), None, 0, true));
        assert_eq!(l.stamp(b"ab", "T"), b"T ab");
        assert_eq!(l.stamp(b"c\n", "U"), b"c\n", "the line goes on");
        assert_eq!(
            l.stamp(b"\n\nd\re\nf", "V"),
            b"V \nV \nV d\re\nV f",
            "only \\n ends a line"
        );
        assert_eq!(l.stamp(b"", "W"), b"");
        assert_eq!(l.stamp(b"\n", "X"), b"\n");
        assert_eq!(l.stamp(b"g", "Y"), b"Y g", "lazily, when the next line comes");
    }

    #[test]
    fn rotation_keeps_every_byte_once_and_lines_whole_when_it_can() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut l = log(opts(&path, Some(1024), 3, false));
        let mut all = Vec::new();
        for i in 0..200 {
            let line = format!("line {i:03} {}\n", "x".repeat(i % 37));
            all.extend_from_slice(line.as_bytes());
            assert_eq!(l.log(line.as_bytes()), 0);
        }
        let read = |p: std::path::PathBuf| std::fs::read(p).unwrap_or_default();
        let files: Vec<Vec<u8>> = (1..=3)
            .rev()
            .map(|i| read(dir.path().join(format!("log.{i}"))))
            .collect();
        let current = read(path.clone());
        for f in files.iter().chain([&current]) {
            assert!(f.len() <= 1024, "{}", f.len());
            assert!(f.is_empty() || f.ends_with(b"\n"), "lines stay whole");
        }
        assert!(!dir.path().join("log.4").exists(), "3 backups");
        let kept: Vec<u8> = files.concat().into_iter().chain(current).collect();
        assert!(all.ends_with(&kept), "the newest bytes, in order, none twice");
        // A write larger than the file is cut; nothing is lost.
        let big = vec![b'z'; 3000];
        assert_eq!(l.log(&big), 0);
        let z: usize = (1..=3)
            .map(|i| read(dir.path().join(format!("log.{i}"))))
            .chain([read(path)])
            .map(|f| f.iter().filter(|b| **b == b'z').count())
            .sum();
        assert_eq!(z, 3000);
    }

    #[test]
    fn no_backups_start_afresh_and_a_reopen_follows_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut l = log(opts(&path, Some(1024), 0, false));
        l.log(&vec![b'a'; 1000]);
        l.log(&[b'b'; 100]);
        // No line end near the limit: the write is cut there (24 bytes end
        // the old file, which is dropped with no backups).
        assert_eq!(std::fs::read(&path).unwrap(), vec![b'b'; 76]);
        // logrotate's create mode: the file is moved away, then SIGHUP.
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        l.log(b"old\n");
        reopen_all();
        l.log(b"new\n");
        assert!(std::fs::read(dir.path().join("moved")).unwrap().ends_with(b"old\n"));
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
    }

    #[test]
    fn a_vanished_directory_is_reported_and_counted_never_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("log");
        let mut l = log(opts(&path, Some(1024), 2, false));
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir(&sub).unwrap();
        // Rotation fails; the bytes still go to the open (unlinked) file.
        for _ in 0..10 {
            assert_eq!(l.log(&[b'q'; 300]), 0);
        }
        let mut full = log(opts(std::path::Path::new("/dev/full"), None, 0, false));
        assert_eq!(full.log(b"abc"), 3, "counted");
    }
}
