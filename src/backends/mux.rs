//! `mux`: one base chardev shared by several frontends (QEMU's
//! `chardev-mux`, QEMU 10.0.2's behaviour).
//!
//! The mux is a chardev whose backend holds a port on its base; each of its
//! frontends (a device, a QMP monitor, an embedder's model, another mux) is
//! an actor on a port of its own.
//! - **Output** of every frontend goes to the base unchanged, whoever has
//!   the focus; after `C-a t` each line starts with a `[hh:mm:ss.mmm] `
//!   stamp (the first one after the next newline, as QEMU).
//! - **Input** from the base goes to the focused frontend only, through the
//!   escape machine ([`Escape`]): `C-a h`/`C-a ?` prints QEMU's help, `C-a x`
//!   exits (only with `--allow-exit`; else an event), `C-a s` does nothing
//!   (no disks), `C-a b` sends a break to the focused frontend, `C-a c`
//!   moves the focus to the next attached frontend, `C-a t` toggles the
//!   stamps, `C-a C-a` sends one `C-a`; any other byte after `C-a` is
//!   dropped with it. While the focus is on a slot whose frontend went, up
//!   to 32 bytes are held for that slot (QEMU's ring), then the mux stops
//!   reading.
//! - **Events** of the base (OPENED, CLOSED, BREAK) go to every frontend;
//!   events raised on the mux (`chardev-send-break` on it, `C-a b`) go to
//!   the focused one. A frontend that attaches takes the focus (QEMU: the
//!   last to set handlers); the old focus gets MUX_OUT, the new one MUX_IN.
//! - It takes 4 frontends (QEMU's `MAX_MUX`), or as many as the
//!   downstream-extension member `__org.chardevd_max-frontends` says (1 to
//!   64). It cannot be changed (`chardev-change`), its base cannot be
//!   removed while it exists, and it can be removed once it has no frontend.
use super::{BackendConfig, ExitRequest, Facts, Host, Kind, OpenContext, Opened};
use crate::chardev::{Backend, Focus, FrontendEvent, Input, Output, Port, PortId};
use crate::error::BackendError;
use crate::options::Opts;
use crate::registry::{KindInfo, Reject};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::task::{Context, Poll};
use std::time::Instant;

/// The `mux` kind.
pub(crate) const KIND: Kind = Kind {
    name: "mux",
    aliases: &[],
    from_qmp,
    from_cli,
    syntax: "-chardev mux,id=ID,chardev=BASE[,__org.chardevd_max-frontends=N]",
    facts: Facts {
        oob: true,
        multiplexed: true,
        ..Facts::NONE
    },
};

/// QEMU's `MAX_MUX`: frontends a mux takes by default.
pub const MAX_MUX: usize = 4;

/// The most frontends `__org.chardevd_max-frontends` may ask for.
pub const MAX_FRONTENDS_LIMIT: usize = 64;

/// QEMU's `MUX_BUFFER_SIZE`: input held for a focused slot with no frontend.
pub const MUX_BUFFER_SIZE: usize = 32;

/// QEMU's default escape character, `C-a`.
pub const ESCAPE_CHAR: u8 = 0x01;

/// Output of the mux's own (help text, stamps) queued before it stops
/// reading its input.
const OUT_LIMIT: usize = 64 << 10;

/// The extension member and `-chardev` key.
pub const MAX_FRONTENDS_KEY: &str = "__org.chardevd_max-frontends";

/// `mux` options (`ChardevMux`): several frontends share one chardev,
/// switched with the escape character (QEMU's `C-a c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mux {
    /// The base chardev.
    pub chardev: String,
    /// How many frontends it takes (default [`MAX_MUX`]).
    #[serde(
        rename = "__org.chardevd_max-frontends",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_frontends: Option<i64>,
}

impl Mux {
    /// A mux over `base` with QEMU's limit.
    pub fn over(base: impl Into<String>) -> Mux {
        Mux {
            chardev: base.into(),
            max_frontends: None,
        }
    }

    fn max(&self) -> usize {
        self.max_frontends.map_or(MAX_MUX, |n| n as usize)
    }
}

fn check(m: Mux) -> Result<Box<dyn BackendConfig>, String> {
    match m.max_frontends {
        Some(n) if n < 1 || n > MAX_FRONTENDS_LIMIT as i64 => Err(format!(
            "mux: {MAX_FRONTENDS_KEY} must be between 1 and {MAX_FRONTENDS_LIMIT}"
        )),
        _ => Ok(Box::new(m)),
    }
}

fn from_qmp(data: &serde_json::Value) -> Result<Box<dyn BackendConfig>, BackendError> {
    let m: Mux = serde_json::from_value(data.clone()).map_err(|e| BackendError::Invalid(e.to_string()))?;
    check(m).map_err(BackendError::Kind)
}

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    let Some(chardev) = opts.take("chardev") else {
        return Err("chardev: mux: no chardev given".into());
    };
    let max_frontends = match opts.take(MAX_FRONTENDS_KEY) {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| format!("Parameter '{MAX_FRONTENDS_KEY}' expects a number"))?,
        ),
        None => None,
    };
    check(Mux { chardev, max_frontends })
}

impl BackendConfig for Mux {
    fn kind(&self) -> &'static str {
        "mux"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            hotswap: false,
            max_ports: self.max(),
            references: vec![self.chardev.clone()],
            ..KindInfo::plain("mux")
        }
    }

    fn reference_error(&self, _id: &str, reject: &Reject) -> BackendError {
        BackendError::Kind(match reject {
            Reject::RefMissing(r) => format!("mux: base chardev {r} not found"),
            other => super::in_use_text(other),
        })
    }

    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        let max = self.max();
        Box::pin(async move {
            let Some(base) = cx.ports.into_iter().next() else {
                return Err(BackendError::Kind(format!(
                    "mux: base chardev {} not found",
                    self.chardev
                )));
            };
            // The base told its state when the port attached.
            let be_open = base.try_recv() == Some(FrontendEvent::Opened);
            let backend = MuxBackend {
                id: cx.id,
                base,
                base_gone: false,
                base_fe_open: false,
                slots: vec![None; max],
                focus: None,
                held: vec![Vec::new(); max],
                escape: Escape::new(cx.host.escape_char()),
                input: Bytes::new(),
                stashed: None,
                out: VecDeque::new(),
                out_len: 0,
                stamps: Stamps::default(),
                clock: Instant::now(),
                host: cx.host,
            };
            Ok(Opened {
                backend: Box::new(backend),
                be_open,
                pty: None,
            })
        })
    }
}

/// A command typed after the escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxCommand {
    /// `h` or `?`: print the help.
    Help,
    /// `x`: exit.
    Exit,
    /// `s`: save disk data (nothing to do here).
    Save,
    /// `b`: a break to the focused frontend.
    Break,
    /// `c`: the next frontend takes the focus.
    Switch,
    /// `t`: toggle line stamps.
    Timestamps,
}

/// What one input byte does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A data byte for the focused frontend.
    Data(u8),
    /// Swallowed (the escape character, or an unknown command).
    Swallowed,
    /// A command.
    Command(MuxCommand),
}

/// QEMU's escape state machine (`mux_proc_byte`), I/O-free: its state
/// lasts across reads, so an escape split between two reads works.
///
/// ```
/// use chardevd::internals::mux::{Escape, MuxCommand, Step};
/// let mut e = Escape::new(0x01);
/// assert_eq!(e.step(b'a'), Step::Data(b'a'));
/// assert_eq!(e.step(0x01), Step::Swallowed);
/// assert_eq!(e.step(b'c'), Step::Command(MuxCommand::Switch));
/// assert_eq!(e.step(0x01), Step::Swallowed);
/// assert_eq!(e.step(0x01), Step::Data(0x01));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escape {
    esc: u8,
    pending: bool,
}

/// One item of decoded input (for [`Escape::feed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Data bytes (a run of them, merged).
    Data(Vec<u8>),
    /// A command.
    Command(MuxCommand),
}

impl Escape {
    /// A machine with this escape character.
    pub fn new(esc: u8) -> Escape {
        Escape { esc, pending: false }
    }

    /// The escape character.
    pub fn escape_char(&self) -> u8 {
        self.esc
    }

    /// Feed one byte.
    pub fn step(&mut self, b: u8) -> Step {
        if self.pending {
            self.pending = false;
            if b == self.esc {
                return Step::Data(b);
            }
            return match b {
                b'h' | b'?' => Step::Command(MuxCommand::Help),
                b'x' => Step::Command(MuxCommand::Exit),
                b's' => Step::Command(MuxCommand::Save),
                b'b' => Step::Command(MuxCommand::Break),
                b'c' => Step::Command(MuxCommand::Switch),
                b't' => Step::Command(MuxCommand::Timestamps),
                _ => Step::Swallowed,
            };
        }
        if b == self.esc {
            self.pending = true;
            return Step::Swallowed;
        }
        Step::Data(b)
    }

    /// Feed a chunk; data runs are merged with the last item of `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Decoded>) {
        for &b in input {
            match self.step(b) {
                Step::Data(d) => match out.last_mut() {
                    Some(Decoded::Data(v)) => v.push(d),
                    _ => out.push(Decoded::Data(vec![d])),
                },
                Step::Swallowed => {}
                Step::Command(c) => out.push(Decoded::Command(c)),
            }
        }
    }
}

/// QEMU's help text for an escape character (`mux_print_help`), byte for
/// byte: lines end in `\n\r`.
pub fn help_text(esc: u8) -> Vec<u8> {
    const LINES: [&str; 7] = [
        "% h    print this help\n\r",
        "% x    exit emulator\n\r",
        "% s    save disk data back to file (if -snapshot)\n\r",
        "% t    toggle console timestamps\n\r",
        "% b    send break (magic sysrq)\n\r",
        "% c    switch between console and monitor\n\r",
        "% %  sends %\n\r",
    ];
    let (head, name) = if esc > 0 && esc < 26 {
        ("\n\r".to_owned(), format!("C-{}", (b'a' + esc - 1) as char))
    } else {
        (
            format!("\n\rEscape-Char set to Ascii: 0x{esc:02x}\n\r\n\r"),
            "Escape-Char".to_owned(),
        )
    };
    let mut s = head;
    for l in LINES {
        s.push_str(&l.replace('%', &name));
    }
    s.into_bytes()
}

/// Line stamps after `C-a t` (QEMU's `mux_chr_write` with timestamps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamps {
    on: bool,
    linestart: bool,
    start: Option<u64>,
}

impl Stamps {
    /// Whether stamps are on.
    pub fn on(&self) -> bool {
        self.on
    }

    /// `C-a t`: the first stamp comes after the next newline.
    pub fn toggle(&mut self) {
        self.on = !self.on;
        self.start = None;
        self.linestart = false;
    }

    /// Copy `data` to `out`, stamping line starts; `now_ms` is a monotonic
    /// clock in milliseconds (the first stamp is `[00:00:00.000] `).
    pub fn apply(&mut self, data: &[u8], now_ms: u64, out: &mut Vec<u8>) {
        if !self.on {
            out.extend_from_slice(data);
            return;
        }
        for &b in data {
            if self.linestart {
                let start = *self.start.get_or_insert(now_ms);
                let ti = now_ms.saturating_sub(start);
                let secs = ti / 1000;
                out.extend_from_slice(
                    format!(
                        "[{:02}:{:02}:{:02}.{:03}] ",
                        secs / 3600,
                        (secs / 60) % 60,
                        secs % 60,
                        ti % 1000
                    )
                    .as_bytes(),
                );
                self.linestart = false;
            }
            out.push(b);
            if b == b'\n' {
                self.linestart = true;
            }
        }
    }
}

/// The run-time side.
struct MuxBackend {
    id: String,
    base: Port,
    base_gone: bool,
    /// The base's `frontend-open` was set (at the first frontend).
    base_fe_open: bool,
    /// Frontends by slot (QEMU's bitset).
    slots: Vec<Option<PortId>>,
    focus: Option<usize>,
    /// Input held for a focused slot with no frontend.
    held: Vec<Vec<u8>>,
    escape: Escape,
    /// Input from the base not yet processed.
    input: Bytes,
    /// A command read after data that had to be delivered first.
    stashed: Option<MuxCommand>,
    /// The mux's own output (help, stamped output) for the base.
    out: VecDeque<Bytes>,
    out_len: usize,
    stamps: Stamps,
    clock: Instant,
    host: Host,
}

impl MuxBackend {
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn inject(&mut self, bytes: &[u8]) {
        let mut v = Vec::with_capacity(bytes.len());
        let now = self.now_ms();
        self.stamps.apply(bytes, now, &mut v);
        self.out_len += v.len();
        self.out.push_back(Bytes::from(v));
    }

    /// Write the mux's own output to the base.
    fn flush_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        while let Some(front) = self.out.front_mut() {
            match self.base.poll_write(cx, front) {
                Poll::Ready(Ok(n)) => {
                    self.out_len -= n;
                    if front.is_empty() {
                        self.out.pop_front();
                    }
                }
                Poll::Ready(Err(_)) => {
                    self.out.clear();
                    self.out_len = 0;
                    return Poll::Ready(Err(()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// C-a c: the next attached slot after the focus, wrapping around.
    fn switch(&mut self) {
        let n = self.slots.len();
        let from = self.focus.map_or(0, |f| f + 1);
        if let Some(s) = (0..n).map(|i| (from + i) % n).find(|s| self.slots[*s].is_some()) {
            self.focus = Some(s);
        }
    }

    /// Run a command; some raise an input for the core.
    fn run(&mut self, c: MuxCommand) -> Option<Input> {
        tracing::debug!(chardev = %self.id, command = ?c, "mux escape");
        match c {
            MuxCommand::Help => self.inject(&help_text(self.escape.escape_char())),
            MuxCommand::Exit => {
                if self.host.exit_allowed() {
                    self.inject(b"QEMU: Terminated\n\r");
                }
                self.host.request_exit(ExitRequest {
                    chardev: self.id.clone(),
                    source: crate::events::ExitSource::Mux,
                    status: None,
                });
            }
            MuxCommand::Save => {}
            MuxCommand::Break => return Some(Input::FocusedBreak),
            MuxCommand::Switch => self.switch(),
            MuxCommand::Timestamps => self.stamps.toggle(),
        }
        None
    }
}

impl MuxBackend {
    fn next_input(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        loop {
            if let Some(c) = self.stashed.take() {
                if let Some(input) = self.run(c) {
                    return Poll::Ready(input);
                }
                if c == MuxCommand::Switch {
                    // The core tells the ports and asks again with the new
                    // focus's room.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            let front = self.focus.and_then(|s| self.slots[s].map(|_| s));
            if let Some(s) = front {
                if !self.held[s].is_empty() && room > 0 {
                    let n = room.min(self.held[s].len());
                    let data: Vec<u8> = self.held[s].drain(..n).collect();
                    return Poll::Ready(Input::Data(Bytes::from(data)));
                }
            }
            if self.input.is_empty() {
                if self.base_gone {
                    return Poll::Pending;
                }
                match self.base.poll_recv(cx) {
                    Poll::Ready(Some(FrontendEvent::Data(b))) => self.input = b,
                    Poll::Ready(Some(FrontendEvent::Opened)) => return Poll::Ready(Input::Opened),
                    Poll::Ready(Some(FrontendEvent::Closed)) => return Poll::Ready(Input::Closed),
                    Poll::Ready(Some(FrontendEvent::Break)) => return Poll::Ready(Input::Break),
                    Poll::Ready(Some(FrontendEvent::MuxIn | FrontendEvent::MuxOut)) => continue,
                    Poll::Ready(None) => {
                        self.base_gone = true;
                        return Poll::Ready(Input::Closed);
                    }
                    Poll::Pending => return Poll::Pending,
                }
                continue;
            }
            if self.out_len >= OUT_LIMIT {
                // Woken when the base takes the mux's own output.
                return Poll::Pending;
            }
            let Some(slot) = self.focus else {
                // Nobody ever attached: read nothing.
                return Poll::Pending;
            };
            let has_frontend = self.slots[slot].is_some();
            let input = self.input.clone();
            let mut data = Vec::new();
            let mut used = 0;
            let mut command = None;
            for &b in input.iter() {
                let full = if has_frontend {
                    data.len() >= room
                } else {
                    self.held[slot].len() >= MUX_BUFFER_SIZE
                };
                if full {
                    break;
                }
                used += 1;
                match self.escape.step(b) {
                    Step::Data(d) if has_frontend => data.push(d),
                    Step::Data(d) => self.held[slot].push(d),
                    Step::Swallowed => {}
                    Step::Command(c) => {
                        command = Some(c);
                        break;
                    }
                }
            }
            let _ = self.input.split_to(used);
            if let Some(c) = command {
                // Data before the command goes to the focus it was typed for.
                self.stashed = Some(c);
            }
            if !data.is_empty() {
                return Poll::Ready(Input::Data(Bytes::from(data)));
            }
            if used == 0 {
                // Stalled: the frontend (or the held slot) is full.
                return Poll::Pending;
            }
        }
    }
}

impl Backend for MuxBackend {
    fn poll_input(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        let _ = self.flush_out(cx);
        let input = self.next_input(cx, room);
        // What a command printed (help) goes out now.
        let _ = self.flush_out(cx);
        input
    }

    fn poll_output(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        match self.flush_out(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(())) => return Poll::Ready(Output::Discarded(data.len())),
            Poll::Ready(Ok(())) => {}
        }
        if self.stamps.on() {
            self.inject(data);
            let _ = self.flush_out(cx);
            return Poll::Ready(Output::Written(data.len()));
        }
        match self.base.poll_room(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Output::Discarded(data.len())),
            Poll::Ready(Ok(room)) => {
                let n = self.base.try_write(&data[..room.min(data.len())]).unwrap_or(0);
                Poll::Ready(Output::Written(n))
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.flush_out(cx).map(|_| ())
    }

    fn filename(&self) -> String {
        "mux".into()
    }

    fn attached(&mut self, port: PortId) {
        let Some(s) = self.slots.iter().position(|p| p.is_none()) else {
            tracing::warn!(chardev = %self.id, "a frontend beyond the mux's limit");
            return;
        };
        self.slots[s] = Some(port);
        // The frontend that attached last has the focus (QEMU: the last
        // to set handlers).
        self.focus = Some(s);
    }

    fn frontends_open(&mut self, any: bool) {
        // The base's frontend (the mux) opens with the first frontend that
        // opens, and stays open (QEMU).
        if any && !self.base_fe_open {
            self.base_fe_open = true;
            self.base.set_frontend_open(true);
        }
    }

    fn detached(&mut self, port: PortId) {
        // The focus stays on the slot (QEMU): input is held for it.
        for s in self.slots.iter_mut().filter(|s| **s == Some(port)) {
            *s = None;
        }
    }

    fn focus(&self) -> Focus {
        match self.focus.and_then(|s| self.slots[s]) {
            Some(p) => Focus::One(p),
            None => Focus::Nobody,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_text_is_qemus() {
        let h = help_text(0x01);
        assert_eq!(h.len(), 241);
        assert!(h.starts_with(b"\n\rC-a h    print this help\n\r"));
        assert!(h.ends_with(b"C-a C-a  sends C-a\n\r"));
        let t = String::from_utf8(help_text(0x14)).unwrap();
        assert!(t.contains("C-t h    print this help\n\r") && t.ends_with("C-t C-t  sends C-t\n\r"));
        let e = String::from_utf8(help_text(0x1b)).unwrap();
        assert!(e.starts_with("\n\rEscape-Char set to Ascii: 0x1b\n\r\n\rEscape-Char h    print this help\n\r"));
        assert!(e.ends_with("Escape-Char Escape-Char  sends Escape-Char\n\r"));
    }

    #[test]
    fn unknown_commands_swallow_both_bytes_and_escape_escape_is_one_byte() {
        let mut e = Escape::new(1);
        let mut out = Vec::new();
        e.feed(b"a\x01zb\x01\x01c\x01t", &mut out);
        assert_eq!(
            out,
            vec![
                Decoded::Data(b"ab\x01c".to_vec()),
                Decoded::Command(MuxCommand::Timestamps)
            ]
        );
    }

    #[test]
    fn stamps_start_after_the_next_newline_and_count_from_the_first() {
        let mut s = Stamps::default();
        let mut out = Vec::new();
        s.apply(b"a\nb", 5, &mut out);
        assert_eq!(out, b"a\nb");
        s.toggle();
        out.clear();
        s.apply(b"x\ny\n", 1000, &mut out);
        s.apply(b"z", 3_723_456 + 1000, &mut out);
        assert_eq!(out, b"x\n[00:00:00.000] y\n[01:02:03.456] z".to_vec());
        s.toggle();
        out.clear();
        s.apply(b"\nq\n", 9, &mut out);
        assert_eq!(out, b"\nq\n");
    }
}
