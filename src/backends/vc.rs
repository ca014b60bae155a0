//! `vc`: a headless text console. The frontend's output draws into a
//! terminal screen of `cols` x `rows` (or `width` x `height` pixels, at
//! QEMU's 8x16 font: 80x24 when either is missing); the screen is read with
//! `__org.chardevd_screendump-text` or the library's
//! [`crate::Handle::screendump_text`]. Keys from `input-send-event` and `send-key`
//! reach the frontend as the bytes a terminal sends (US layout, QEMU's
//! escape sequences). At open QEMU writes `ID console\r\n` on the screen;
//! so does chardevd.
//!
//! The terminal emulation is the `vt100` crate's.
use super::{BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::input::{self, InputEvent, InputHandler, Keyboard};
use crate::chardev::{Backend, Input, Output, Screen};
use crate::error::BackendError;
use crate::options::Opts;
use crate::registry::KindInfo;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::task::{Context, Poll};

/// The `vc` kind.
pub(crate) const KIND: Kind = Kind {
    name: "vc",
    aliases: &[],
    from_qmp,
    from_cli,
    syntax: "-chardev vc,id=ID[,width=PIXELS][,height=PIXELS][,cols=N][,rows=N]",
    facts: Facts {
        screen: true,
        ..Facts::NONE
    },
};

/// QEMU's font cell.
pub const FONT_WIDTH: i64 = 8;
/// QEMU's font cell.
pub const FONT_HEIGHT: i64 = 16;
/// The largest console, in cells (QEMU has no limit and aborts when the
/// surface cannot be allocated).
pub const MAX_CELLS: i64 = 1000;
/// Keyboard bytes held for a frontend that does not read.
const KEY_QUEUE: usize = 4096;

/// The key input handler a vc registers (QEMU's vc takes keys from its
/// display only; chardevd has none, so `input-send-event` and `send-key`
/// reach the vc).
pub const HANDLER: InputHandler = InputHandler {
    name: "chardevd text console",
    mask: input::mask::KEY,
};

/// `vc` options (`ChardevVC`): a text console of `cols`x`rows` characters
/// (or `width`x`height` pixels of an 8x16 font; 80x24 by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vc {
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
    /// Width in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<i64>,
    /// Height in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
}

fn from_qmp(data: &serde_json::Value) -> Result<Box<dyn BackendConfig>, BackendError> {
    super::from_data::<Vc>(data)
}

/// QEMU's number options: decimal, `0x` hex or `0` octal; 0 means unset.
fn number(opts: &mut Opts, key: &str) -> Result<Option<i64>, String> {
    let Some(v) = opts.take(key) else {
        return Ok(None);
    };
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        i64::from_str_radix(h, 16)
    } else if v.len() > 1 && v.starts_with('0') {
        i64::from_str_radix(&v[1..], 8)
    } else {
        v.parse()
    }
    .map_err(|_| format!("Parameter '{key}' expects a number"))?;
    Ok((n != 0).then_some(n))
}

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    Ok(Box::new(Vc {
        width: number(opts, "width")?,
        height: number(opts, "height")?,
        cols: number(opts, "cols")?,
        rows: number(opts, "rows")?,
    }))
}

impl Vc {
    /// The console size in cells, as QEMU's `vc_chr_open` computes it.
    pub fn size(&self) -> Result<(u16, u16), BackendError> {
        let w = self
            .width
            .or(self.cols.map(|c| c.saturating_mul(FONT_WIDTH)))
            .unwrap_or(0);
        let h = self
            .height
            .or(self.rows.map(|r| r.saturating_mul(FONT_HEIGHT)))
            .unwrap_or(0);
        if w == 0 || h == 0 {
            return Ok((80, 24));
        }
        let (cols, rows) = (w / FONT_WIDTH, h / FONT_HEIGHT);
        if w < 0 || h < 0 || cols > MAX_CELLS || rows > MAX_CELLS {
            return Err(BackendError::Kind(format!(
                "vc: a console of {w}x{h} pixels is out of range (at most {MAX_CELLS}x{MAX_CELLS} characters)"
            )));
        }
        Ok((cols.max(1) as u16, rows.max(1) as u16))
    }
}

impl BackendConfig for Vc {
    fn kind(&self) -> &'static str {
        "vc"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            input: Some(HANDLER),
            ..KindInfo::plain("vc")
        }
    }

    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let (cols, rows) = self.size()?;
            let mut term = Terminal::new(cols, rows);
            // QEMU: the label on a blue background.
            term.draw(format!("\x1b[44m{} console\r\n\x1b[0m", cx.id).as_bytes());
            Ok(Opened::open(VcBackend(term)))
        })
    }
}

/// The smallest screen the terminal model draws on: vt100 cannot wrap a
/// line on one row or a wide character in one column (it panics). A smaller
/// console is drawn on this size, and its screen is the bottom-left part.
const MODEL_MIN: u16 = 2;

/// The console: a screen and a keyboard.
pub struct Terminal {
    parser: vt100::Parser,
    /// The console's own size (the model may be larger: [`MODEL_MIN`]).
    cols: u16,
    rows: u16,
    keyboard: Keyboard,
    keys: Vec<u8>,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("size", &self.parser.screen().size())
            .finish()
    }
}

impl Terminal {
    /// A blank console.
    pub fn new(cols: u16, rows: u16) -> Terminal {
        Terminal {
            parser: vt100::Parser::new(rows.max(MODEL_MIN), cols.max(MODEL_MIN), 0),
            cols,
            rows,
            keyboard: Keyboard::default(),
            keys: Vec::new(),
        }
    }

    /// Output of the frontend.
    pub fn draw(&mut self, data: &[u8]) {
        self.parser.process(data);
    }

    /// Key events.
    pub fn input(&mut self, events: &[InputEvent]) {
        for e in events {
            if let InputEvent::Key { qcode, down } = e {
                let b = self.keyboard.key(qcode, *down);
                if self.keys.len() + b.len() <= KEY_QUEUE {
                    self.keys.extend_from_slice(&b);
                } else {
                    tracing::warn!("vc: keyboard queue full; key dropped");
                }
            }
        }
    }

    /// Take up to `n` keyboard bytes.
    pub fn take_keys(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.keys.len());
        self.keys.drain(..n).collect()
    }

    /// The screen as text.
    pub fn screen(&self) -> Screen {
        let s = self.parser.screen();
        let (model_rows, _) = s.size();
        let (cols, rows) = (self.cols, self.rows);
        // A console smaller than the model shows the model's bottom rows.
        let skip = model_rows.saturating_sub(rows);
        let (cursor_row, cursor_col) = s.cursor_position();
        Screen {
            cols,
            rows,
            lines: s
                .rows(0, cols)
                .skip(usize::from(skip))
                .map(|l| l.trim_end().to_owned())
                .collect(),
            cursor_row: cursor_row.saturating_sub(skip),
            cursor_col: cursor_col.min(cols.saturating_sub(1)),
        }
    }
}

struct VcBackend(Terminal);

impl Backend for VcBackend {
    fn poll_input(&mut self, _cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        match self.0.take_keys(room) {
            b if b.is_empty() => Poll::Pending,
            b => Poll::Ready(Input::Data(Bytes::from(b))),
        }
    }

    fn poll_output(&mut self, _cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        self.0.draw(data);
        Poll::Ready(Output::Written(data.len()))
    }

    fn filename(&self) -> String {
        "vc".into()
    }

    fn input(&mut self, events: &[InputEvent]) {
        self.0.input(events);
    }

    fn screen(&self) -> Option<Screen> {
        Some(self.0.screen())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_qemu_computes_them() {
        let vc = |width, height, cols, rows| {
            Vc {
                width,
                height,
                cols,
                rows,
            }
            .size()
            .unwrap()
        };
        assert_eq!(vc(None, None, None, None), (80, 24));
        assert_eq!(vc(None, None, Some(100), Some(30)), (100, 30));
        assert_eq!(vc(Some(800), Some(600), Some(10), Some(10)), (100, 37));
        // Only one dimension: QEMU's default console.
        assert_eq!(vc(None, None, Some(100), None), (80, 24));
        assert!(Vc {
            cols: Some(5000),
            rows: Some(10),
            ..Vc::default()
        }
        .size()
        .is_err());
    }

    #[test]
    fn output_draws_and_keys_come_back() {
        let mut t = Terminal::new(20, 4);
        t.draw(b"hello\r\n\x1b[1;7Hworld");
        let s = t.screen();
        assert_eq!(s.lines[0], "hello world");
        assert_eq!((s.cursor_row, s.cursor_col), (0, 11));
        t.input(&[
            InputEvent::Key {
                qcode: "shift".into(),
                down: true,
            },
            InputEvent::Key {
                qcode: "a".into(),
                down: true,
            },
            InputEvent::Key {
                qcode: "shift".into(),
                down: false,
            },
            InputEvent::Key {
                qcode: "ret".into(),
                down: true,
            },
        ]);
        assert_eq!(t.take_keys(10), b"A\r");
    }
}

#[cfg(test)]
mod small_screens {
    use super::Terminal;

    #[test]
    fn a_one_row_or_one_column_console_draws_anything_without_panicking() {
        for (c, r) in [(1u16, 1u16), (1, 24), (80, 1), (2, 1), (1, 2)] {
            let mut t = Terminal::new(c, r);
            t.draw(&[b'x'; 300]);
            t.draw("\r\n\x1b[2Jabc\x1b[5;5Hdef\x1b[10Lq\x1b[3Mw\x1b[P\x1b[@\x1b[999Cz\ty\x08\x08\n\n宽字".as_bytes());
            t.draw(b"last");
            let s = t.screen();
            assert_eq!((s.cols, s.rows), (c, r));
            assert_eq!(s.lines.len(), usize::from(r), "{c}x{r}");
            assert!(
                s.lines.iter().all(|l| l.chars().count() <= usize::from(c)),
                "{c}x{r}: {:?}",
                s.lines
            );
            assert!(s.cursor_row < r && s.cursor_col < c);
        }
    }
}
