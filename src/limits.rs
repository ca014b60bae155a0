//! Every bound a system keeps, in one place ([`Limits`], part of
//! [`crate::Config`]; the daemon's `--help` lists the options that set them).
//!
//! The defaults let through everything a QEMU could do (a QEMU serves one
//! client per socket and blocks where chardevd waits), and stop what would
//! make one peer or client cost the others: memory, descriptors, time.
//! Where a limit changes a reply QEMU would give, it applies only beyond
//! what QEMU could handle, and the README's differences say so.
use std::time::Duration;

/// The bounds of a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// QMP sessions served at once per listener; further connections are
    /// closed at once (`--max-sessions`, default 1024).
    pub max_sessions: usize,
    /// Largest QMP message, in bytes (QEMU's 64 MiB token limit; `--max-message`).
    pub max_message: usize,
    /// Bytes of partly received QMP messages all sessions may hold together;
    /// a message that would pass it fails as one over `max_message` does
    /// (`--max-input`, default 256 MiB).
    pub total_input: usize,
    /// Output bytes a session may queue before it stops reading its input
    /// (`--max-output`, default 4 MiB).
    pub output_bytes: usize,
    /// Output bytes all sessions may queue together before they all stop
    /// reading (default 256 MiB).
    pub global_output_bytes: usize,
    /// Events waiting unwritten before a client that reads nothing is
    /// disconnected (a monitor on a chardev drops new ones instead;
    /// `--max-events`, default 4096).
    pub event_queue: usize,
    /// How long one write to a QMP client may make no progress before it
    /// is disconnected (`--stall-timeout`, default 60 s).
    pub stall_timeout: Duration,
    /// Descriptors a QMP session may hold under `getfd` names
    /// (`--max-fds`, default 64); the whole system holds at most
    /// [`Limits::total_fds`].
    pub session_fds: usize,
    /// Descriptors all sessions may hold under `getfd` names together
    /// (default 256).
    pub total_fds: usize,
    /// Chardevs that may exist at once (`--max-chardevs`, default 65536).
    pub max_chardevs: usize,
    /// Built-in devices that may exist at once (`--max-devices`, default 4096).
    pub max_devices: usize,
    /// QMP monitors on chardevs that may exist at once (`--max-monitors`,
    /// default 256).
    pub max_monitors: usize,
    /// How long a command may wait for what it opens (a fifo with no reader,
    /// a server with `wait=on` and no client) before it fails; `None`: for
    /// ever, as QEMU (`--command-deadline`, default 60 s).
    pub command_deadline: Option<Duration>,
    /// How long a socket peer may take over a TLS, telnet or websocket
    /// handshake before it is dropped (`--handshake-timeout`, default 10 s).
    pub handshake_timeout: Duration,
    /// The most bytes one `ringbuf-read` takes from a ring; a larger `size`
    /// reads this much (the rest stays for the next read; `--max-read`,
    /// default 16 MiB).
    pub max_read: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 1024,
            max_message: crate::json::framer::MAX_TOKEN_SIZE,
            total_input: 256 << 20,
            output_bytes: 4 << 20,
            global_output_bytes: 256 << 20,
            event_queue: 4096,
            stall_timeout: Duration::from_secs(60),
            session_fds: 64,
            total_fds: 256,
            max_chardevs: 65536,
            max_devices: 4096,
            max_monitors: 256,
            command_deadline: Some(Duration::from_secs(60)),
            handshake_timeout: Duration::from_secs(10),
            max_read: 16 << 20,
        }
    }
}
