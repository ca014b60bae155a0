//! `testdev`: QEMU's test device. The frontend writes commands, `[N] c`:
//! optional blanks, an optional decimal number, blanks, one command
//! character. `q` exits with status `(N << 1) | 1` (QEMU's `exit()`), where
//! the daemon allows exits; otherwise it raises
//! `__org.chardevd_EXIT_REQUEST` (with the status) and is logged. Any other
//! command character is consumed. It never has input.
//!
//! [`Parser`] is the pure model (bytes in, commands out); the backend is
//! its thin adapter.
use super::{from_data, BackendConfig, ExitRequest, Facts, Host, Kind, OpenContext, Opened};
use crate::chardev::{Backend, Input, Output};
use crate::error::BackendError;
use crate::options::Opts;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::task::{Context, Poll};

/// The `testdev` kind.
pub(crate) const KIND: Kind = Kind {
    name: "testdev",
    aliases: &[],
    from_qmp: from_data::<Testdev>,
    from_cli,
    syntax: "-chardev testdev,id=ID",
    facts: Facts::NONE,
};

fn from_cli(_opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    Ok(Box::new(Testdev {}))
}

/// `testdev` options (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Testdev {}

impl BackendConfig for Testdev {
    fn kind(&self) -> &'static str {
        "testdev"
    }

    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            Ok(Opened::open(TestdevBackend {
                id: cx.id,
                host: cx.host,
                parser: Parser::default(),
            }))
        })
    }
}

/// QEMU's command buffer size.
pub const BUF_SIZE: usize = 32;

/// A parsed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// The number before it (0 when none; wraps as QEMU's `int` does).
    pub arg: i32,
    /// The command character.
    pub cmd: u8,
}

impl Command {
    /// The exit status of a `q` (`(arg << 1) | 1`, as the OS sees it).
    pub fn exit_status(&self) -> u8 {
        (self.arg.wrapping_shl(1) | 1) as u8
    }
}

/// QEMU's testdev parser over a 32-byte buffer.
#[derive(Debug, Default, Clone)]
pub struct Parser {
    buf: Vec<u8>,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl Parser {
    /// Feed bytes; returns the commands completed, in order.
    pub fn feed(&mut self, mut data: &[u8]) -> Vec<Command> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let take = data.len().min(BUF_SIZE - self.buf.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            while let Some((n, cmd)) = self.eat() {
                self.buf.drain(..n);
                out.push(cmd);
            }
            // QEMU loops for ever on a full buffer that holds no command
            // (32 blanks or digits); chardevd drops the buffer instead.
            if self.buf.len() == BUF_SIZE {
                tracing::warn!("testdev: 32 bytes without a command dropped");
                self.buf.clear();
            }
        }
        out
    }

    /// One command from the start of the buffer: its length and itself.
    fn eat(&self) -> Option<(usize, Command)> {
        let mut it = self.buf.iter().copied().enumerate();
        let (mut i, mut c) = it.next()?;
        while is_space(c) {
            (i, c) = it.next()?;
        }
        let mut arg: i32 = 0;
        while c.is_ascii_digit() {
            arg = arg.wrapping_mul(10).wrapping_add((c - b'0') as i32);
            (i, c) = it.next()?;
        }
        while is_space(c) {
            (i, c) = it.next()?;
        }
        Some((i + 1, Command { arg, cmd: c }))
    }
}

struct TestdevBackend {
    id: String,
    host: Host,
    parser: Parser,
}

impl Backend for TestdevBackend {
    fn poll_input(&mut self, _cx: &mut Context<'_>, _room: usize) -> Poll<Input> {
        Poll::Pending
    }

    fn poll_output(&mut self, _cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        for c in self.parser.feed(data) {
            if c.cmd == b'q' {
                tracing::warn!(chardev = %self.id, status = c.exit_status(), "testdev: q");
                self.host.request_exit(ExitRequest {
                    chardev: self.id.clone(),
                    source: crate::events::ExitSource::Testdev,
                    status: Some(c.exit_status()),
                });
            }
        }
        Poll::Ready(Output::Written(data.len()))
    }

    fn filename(&self) -> String {
        "testdev".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(chunks: &[&[u8]]) -> Vec<(i32, u8)> {
        let mut p = Parser::default();
        chunks.iter().flat_map(|c| p.feed(c)).map(|c| (c.arg, c.cmd)).collect()
    }

    #[test]
    fn qemus_grammar() {
        assert_eq!(cmds(&[b"q"]), [(0, b'q')]);
        assert_eq!(cmds(&[b"  12 q"]), [(12, b'q')]);
        assert_eq!(cmds(&[b"3", b"4", b"\t", b"q"]), [(34, b'q')]);
        assert_eq!(cmds(&[b"x7q"]), [(0, b'x'), (7, b'q')]);
        // Blanks and digits alone wait for more.
        assert_eq!(cmds(&[b" 5 "]), []);
        assert_eq!(Command { arg: 12, cmd: b'q' }.exit_status(), 25);
        assert_eq!(Command { arg: 200, cmd: b'q' }.exit_status(), 145);
    }

    #[test]
    fn a_full_buffer_without_a_command_is_dropped_not_a_hang() {
        assert_eq!(cmds(&[&[b'1'; 40], b" q"]), [(11111111, b'q')]);
    }
}
