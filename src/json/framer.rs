//! QMP input framing: QEMU's JSON lexer, streamer and parser as one pure core.
//!
//! QMP input is a stream of JSON values, not lines. Bytes go through a lexer
//! (a byte-driven state machine with QEMU's dialect: single-quoted strings,
//! error tokens and a recovery state), then a streamer that counts braces and
//! brackets and hands the buffered tokens to the parser as soon as the depth
//! returns to zero. Every emitted message is either a [`Json`] value or the
//! exact error text QEMU would reply with. After any error the streamer resets
//! and the bytes that follow are read as new input, as QEMU does.
//!
//! ```
//! use chardevd::internals::json::framer::Framer;
//! let mut f = Framer::new();
//! let mut out = Vec::new();
//! f.feed(br#"{"execute": "query-"#, &mut out);
//! assert!(out.is_empty());
//! f.feed(br#"version"} {]"#, &mut out);
//! assert_eq!(out.len(), 2);
//! assert!(out[0].is_ok());
//! assert_eq!(out[1].as_ref().unwrap_err(), "JSON parse error, expecting value");
//! ```

use super::{next_sequence, qemu_lossy_utf8, run_until, Json};
use std::collections::HashSet;

/// Largest total size of the tokens of one message (QEMU's `MAX_TOKEN_SIZE`, 64 MiB).
pub const MAX_TOKEN_SIZE: usize = 64 << 20;
/// Largest number of tokens in one message (QEMU's `MAX_TOKEN_COUNT`, 2 Mi).
pub const MAX_TOKEN_COUNT: usize = 2 << 20;
/// Deepest nesting of braces plus brackets (QEMU's `MAX_NESTING`).
pub const MAX_NESTING: i64 = 1024;

/// One framed message: a parsed value, or the `desc` of a GenericError reply.
pub type Message = Result<Json, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Integer,
    Float,
    Keyword,
    Str,
    /// A token cut off by the lexer's size limit.
    Partial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Recovery,
    DqString,
    DqEscape,
    SqString,
    SqEscape,
    Zero,
    Digits,
    Sign,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

/// What one byte does in one state.
enum Step {
    /// Stay in (or move to) a state, consuming the byte into the token.
    Go(State),
    /// Consume the byte and skip it (whitespace, recovery).
    Skip(State),
    /// Consume the byte and finish a token.
    Emit(Tok),
    /// Finish the current token without consuming the byte (lookahead).
    EmitLookahead(Tok),
    /// Go back to Start without consuming the byte (end of recovery).
    Restart,
    /// Consume the byte; the token so far plus it is an error.
    Error,
}

fn step(state: State, b: u8) -> Step {
    use State::*;
    match state {
        Start => match b {
            b'"' => Step::Go(DqString),
            b'\'' => Step::Go(SqString),
            b'0' => Step::Go(Zero),
            b'1'..=b'9' => Step::Go(Digits),
            b'-' => Step::Go(Sign),
            b'{' => Step::Emit(Tok::LCurly),
            b'}' => Step::Emit(Tok::RCurly),
            b'[' => Step::Emit(Tok::LSquare),
            b']' => Step::Emit(Tok::RSquare),
            b':' => Step::Emit(Tok::Colon),
            b',' => Step::Emit(Tok::Comma),
            b'a'..=b'z' => Step::Go(Keyword),
            b' ' | b'\t' | b'\r' | b'\n' => Step::Skip(Start),
            _ => Step::Error,
        },
        Recovery => match b {
            0x00..=0x1f if b != b'\t' => Step::Restart,
            0xfe | 0xff | b'[' | b']' | b'{' | b'}' | b':' | b',' => Step::Restart,
            _ => Step::Skip(Recovery),
        },
        DqString => match b {
            b'\\' => Step::Go(DqEscape),
            b'"' => Step::Emit(Tok::Str),
            0x20..=0xfd => Step::Go(DqString),
            _ => Step::Error,
        },
        SqString => match b {
            b'\\' => Step::Go(SqEscape),
            b'\'' => Step::Emit(Tok::Str),
            0x20..=0xfd => Step::Go(SqString),
            _ => Step::Error,
        },
        DqEscape => match b {
            0x20..=0xfd => Step::Go(DqString),
            _ => Step::Error,
        },
        SqEscape => match b {
            0x20..=0xfd => Step::Go(SqString),
            _ => Step::Error,
        },
        // QEMU's table has no exponent entry after a lone zero: `0e5` is `0`, `e`, `5`.
        Zero => match b {
            b'0'..=b'9' => Step::Error,
            b'.' => Step::Go(Mantissa),
            _ => Step::EmitLookahead(Tok::Integer),
        },
        Digits => match b {
            b'0'..=b'9' => Step::Go(Digits),
            b'e' | b'E' => Step::Go(ExpE),
            b'.' => Step::Go(Mantissa),
            _ => Step::EmitLookahead(Tok::Integer),
        },
        Sign => match b {
            b'0' => Step::Go(Zero),
            b'1'..=b'9' => Step::Go(Digits),
            _ => Step::Error,
        },
        Mantissa => match b {
            b'0'..=b'9' => Step::Go(MantissaDigits),
            _ => Step::Error,
        },
        MantissaDigits => match b {
            b'0'..=b'9' => Step::Go(MantissaDigits),
            b'e' | b'E' => Step::Go(ExpE),
            _ => Step::EmitLookahead(Tok::Float),
        },
        ExpE => match b {
            b'-' | b'+' => Step::Go(ExpSign),
            b'0'..=b'9' => Step::Go(ExpDigits),
            _ => Step::Error,
        },
        ExpSign => match b {
            b'0'..=b'9' => Step::Go(ExpDigits),
            _ => Step::Error,
        },
        ExpDigits => match b {
            b'0'..=b'9' => Step::Go(ExpDigits),
            _ => Step::EmitLookahead(Tok::Float),
        },
        Keyword => match b {
            b'a'..=b'z' => Step::Go(Keyword),
            _ => Step::EmitLookahead(Tok::Keyword),
        },
    }
}

/// The QMP input framer: feed it bytes, collect complete messages.
///
/// The tokens of the message being read live in one buffer (`text`), each
/// token a range of it, so lexing allocates nothing per token. Inside a
/// string the lexer skips whole runs of plain bytes at once (`plain_run`):
/// a 64 MiB base64 payload is copied, not stepped through byte by byte.
#[derive(Debug)]
pub struct Framer {
    /// The input budget the buffered message is charged to, if any.
    budget: Option<std::sync::Arc<InputBudget>>,
    /// Bytes of `text` charged to the budget.
    charged: usize,
    state: State,
    /// The accepted tokens of the current message, then the token being lexed.
    text: Vec<u8>,
    /// Where the token being lexed starts in `text` (also the total size of
    /// the accepted tokens).
    token_start: usize,
    tokens: Vec<(Tok, usize, usize)>,
    brace: i64,
    bracket: i64,
    max_token_size: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

/// What the partly received messages of many framers (all QMP sessions of
/// a system) may hold together. Pure: an atomic counter the framers charge
/// in steps of [`BUDGET_STEP`].
#[derive(Debug)]
pub struct InputBudget {
    used: std::sync::atomic::AtomicUsize,
    limit: usize,
}

/// A framer charges its buffered message to its budget in steps of this size
/// (small messages cost the budget nothing).
pub const BUDGET_STEP: usize = 1 << 20;

impl InputBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> std::sync::Arc<InputBudget> {
        std::sync::Arc::new(InputBudget {
            used: std::sync::atomic::AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Acquire)
    }

    fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The error a message gets when the input budget is spent.
pub const BUDGET_EXCEEDED: &str = "JSON message dropped: chardevd's limit on input held by all sessions is reached";

/// Buffer capacity kept between messages; a bigger one is given back after
/// the message that grew it, so an idle session holds no 64 MiB buffer.
const KEEP_CAPACITY: usize = 1 << 20;

/// The length of the run of bytes at the start of `data` that a string in
/// state `DqString`/`SqString` takes without changing state: every byte in
/// 0x20..=0xfd except the closing `quote` and the backslash. Checked 32 bytes
/// at a time with a branch-free fold the compiler turns into vector code.
fn plain_run(data: &[u8], quote: u8) -> usize {
    // Outside 0x20..0xfe is one unsigned compare after the shift.
    run_until(data, |b| (b.wrapping_sub(0x20) >= 0xde) | (b == quote) | (b == b'\\'))
}

impl Framer {
    /// A framer with QEMU's limits.
    pub fn new() -> Self {
        Self::with_max_token_size(MAX_TOKEN_SIZE)
    }

    /// A framer with a smaller message size limit (tests, constrained embedders).
    pub fn with_max_token_size(max_token_size: usize) -> Self {
        Framer {
            budget: None,
            charged: 0,
            state: State::Start,
            text: Vec::new(),
            token_start: 0,
            tokens: Vec::new(),
            brace: 0,
            bracket: 0,
            max_token_size,
        }
    }

    /// The same, charging what it buffers beyond [`BUDGET_STEP`] to `budget`.
    pub fn with_budget(max_token_size: usize, budget: std::sync::Arc<InputBudget>) -> Self {
        let mut f = Self::with_max_token_size(max_token_size);
        f.budget = Some(budget);
        f
    }

    /// Forget the partial message (a monitor's connection closed).
    pub fn reset(&mut self) {
        let mut none = Vec::new();
        self.emit(Ok(Json::Null), &mut none);
        self.state = State::Start;
    }

    /// Feed bytes; every complete message (or error) is pushed onto `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Message>) {
        let mut i = 0;
        while i < data.len() {
            i += self.feed_until(&data[i..], out);
        }
    }

    /// Feed bytes until at least one message (or error) is pushed onto
    /// `out`, or all of `data` is taken; returns how many bytes were taken.
    /// A caller that handles one message at a time buffers nothing else.
    pub fn feed_until(&mut self, data: &[u8], out: &mut Vec<Message>) -> usize {
        let before = out.len();
        let mut i = 0;
        while i < data.len() && out.len() == before {
            let quote = match self.state {
                State::DqString => b'"',
                State::SqString => b'\'',
                _ => 0,
            };
            if quote != 0 {
                // The byte-by-byte path checks the size after each byte; stop
                // the run where that check would first fire.
                let room = (self.max_token_size + 1).saturating_sub(self.text.len() - self.token_start);
                let end = data.len().min(i.saturating_add(room));
                let n = plain_run(&data[i..end], quote);
                if n > 0 {
                    self.text.extend_from_slice(&data[i..i + n]);
                    i += n;
                    self.check_size(out);
                    continue;
                }
            }
            self.feed_byte(data[i], out);
            i += 1;
        }
        i
    }

    fn feed_byte(&mut self, b: u8, out: &mut Vec<Message>) {
        loop {
            match step(self.state, b) {
                Step::Go(s) => {
                    self.text.push(b);
                    self.state = s;
                }
                Step::Skip(s) => {
                    self.state = s;
                }
                Step::Emit(t) => {
                    self.text.push(b);
                    self.finish_token(t, out);
                }
                Step::EmitLookahead(t) => {
                    self.finish_token(t, out);
                    continue;
                }
                Step::Restart => {
                    self.state = State::Start;
                    continue;
                }
                Step::Error => {
                    self.text.push(b);
                    let text = stray_text(&self.text[self.token_start..]);
                    self.state = State::Recovery;
                    self.emit(Err(format!("JSON parse error, stray '{text}'")), out);
                }
            }
            break;
        }
        self.check_size(out);
    }

    fn check_size(&mut self, out: &mut Vec<Message>) {
        if self.text.len() - self.token_start > self.max_token_size {
            self.state = State::Start;
            self.process_token(Tok::Partial, out);
            return;
        }
        if let Some(budget) = &self.budget {
            while self.text.len() > self.charged + BUDGET_STEP {
                if budget.take(BUDGET_STEP) {
                    self.charged += BUDGET_STEP;
                } else {
                    // Every session together holds too much: this message
                    // goes, as one over the size limit does.
                    self.state = State::Recovery;
                    self.emit(Err(BUDGET_EXCEEDED.into()), out);
                    break;
                }
            }
        }
    }

    fn finish_token(&mut self, t: Tok, out: &mut Vec<Message>) {
        self.state = State::Start;
        self.process_token(t, out);
    }

    /// The token at `text[token_start..]` is complete.
    fn process_token(&mut self, t: Tok, out: &mut Vec<Message>) {
        match t {
            Tok::LCurly => self.brace += 1,
            Tok::RCurly => self.brace -= 1,
            Tok::LSquare => self.bracket += 1,
            Tok::RSquare => self.bracket -= 1,
            _ => {}
        }
        let len = self.text.len() - self.token_start;
        if self.token_start + len + 1 > self.max_token_size {
            self.emit(Err("JSON token size limit exceeded".into()), out);
            return;
        }
        if self.tokens.len() + 1 > MAX_TOKEN_COUNT {
            self.emit(Err("JSON token count limit exceeded".into()), out);
            return;
        }
        if self.brace + self.bracket > MAX_NESTING {
            self.emit(Err("JSON nesting depth limit exceeded".into()), out);
            return;
        }
        self.tokens.push((t, self.token_start, self.text.len()));
        self.token_start = self.text.len();
        if (self.brace > 0 || self.bracket > 0) && self.brace >= 0 && self.bracket >= 0 {
            return;
        }
        let msg = Parser {
            toks: &self.tokens,
            text: &self.text,
            pos: 0,
        }
        .parse_message();
        self.emit(msg, out);
    }

    fn emit(&mut self, msg: Message, out: &mut Vec<Message>) {
        if let Some(budget) = &self.budget {
            budget.give(std::mem::take(&mut self.charged));
        }
        self.brace = 0;
        self.bracket = 0;
        self.tokens.clear();
        if self.text.capacity() > KEEP_CAPACITY {
            self.text = Vec::new();
            self.tokens = Vec::new();
        } else {
            self.text.clear();
        }
        self.token_start = 0;
        out.push(msg);
    }
}

impl Drop for Framer {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give(self.charged);
        }
    }
}

/// Longest token text quoted in a "stray" error. QEMU quotes the whole
/// token, so a 64 MiB bad string would come back as a reply of hundreds of
/// MiB; chardevd quotes the first [`MAX_STRAY_QUOTE`] bytes and `...`.
pub const MAX_STRAY_QUOTE: usize = 4096;

fn stray_text(token: &[u8]) -> String {
    // QEMU prints the token as a C string: it ends at a raw NUL byte.
    let token = match token.iter().position(|&b| b == 0) {
        Some(nul) => &token[..nul],
        None => token,
    };
    if token.len() <= MAX_STRAY_QUOTE {
        return qemu_lossy_utf8(token);
    }
    let mut text = qemu_lossy_utf8(&token[..MAX_STRAY_QUOTE]);
    text.push_str("...");
    text
}

/// Objects up to this many members find duplicate keys by a scan.
const SCAN_MEMBERS: usize = 16;

struct Parser<'a> {
    toks: &'a [(Tok, usize, usize)],
    text: &'a [u8],
    pos: usize,
}

type PResult<T> = Result<T, String>;

fn perr<T>(msg: impl std::fmt::Display) -> PResult<T> {
    Err(format!("JSON parse error, {msg}"))
}

impl<'a> Parser<'a> {
    fn parse_message(mut self) -> Message {
        self.parse_value()
    }

    fn next(&mut self) -> Option<(Tok, &'a [u8])> {
        let &(tok, start, end) = self.toks.get(self.pos)?;
        self.pos += 1;
        Some((tok, &self.text[start..end]))
    }

    fn peek(&self) -> Option<Tok> {
        self.toks.get(self.pos).map(|t| t.0)
    }

    fn parse_value(&mut self) -> PResult<Json> {
        let Some((tok, text)) = self.next() else {
            return perr("premature EOI");
        };
        match tok {
            Tok::LCurly => self.parse_object(),
            Tok::LSquare => self.parse_array(),
            Tok::Str => parse_string(text).map(Json::Str),
            Tok::Integer => Ok(parse_integer(text)),
            Tok::Float => Ok(Json::Double(parse_double(text))),
            Tok::Keyword => match text {
                b"true" => Ok(Json::Bool(true)),
                b"false" => Ok(Json::Bool(false)),
                b"null" => Ok(Json::Null),
                _ => perr(format_args!("invalid keyword '{}'", qemu_lossy_utf8(text))),
            },
            _ => perr("expecting value"),
        }
    }

    fn parse_pair(&mut self, members: &mut Vec<(String, Json)>, keys: &mut HashSet<String>) -> PResult<()> {
        let key = match self.parse_value()? {
            Json::Str(s) => s,
            _ => return perr("key is not a string in object"),
        };
        match self.next() {
            None => return perr("premature EOI"),
            Some((Tok::Colon, _)) => {}
            Some(_) => return perr("missing : in object pair"),
        }
        let value = self.parse_value()?;
        // A scan for small objects (no allocation); a hash set once an object
        // grows, so a million members do not cost a trillion comparisons on
        // the shared actor thread.
        let duplicate = if members.len() < SCAN_MEMBERS {
            members.iter().any(|(k, _)| *k == key)
        } else {
            if keys.is_empty() {
                keys.extend(members.iter().map(|(k, _)| k.clone()));
            }
            !keys.insert(key.clone())
        };
        if duplicate {
            return perr("duplicate key");
        }
        members.push((key, value));
        Ok(())
    }

    fn parse_object(&mut self) -> PResult<Json> {
        let mut members = Vec::new();
        let mut keys = HashSet::new();
        match self.peek() {
            None => return perr("premature EOI"),
            Some(Tok::RCurly) => {
                self.pos += 1;
                return Ok(Json::Object(members));
            }
            Some(_) => {}
        }
        self.parse_pair(&mut members, &mut keys)?;
        loop {
            match self.next() {
                None => return perr("premature EOI"),
                Some((Tok::RCurly, _)) => return Ok(Json::Object(members)),
                Some((Tok::Comma, _)) => self.parse_pair(&mut members, &mut keys)?,
                Some(_) => return perr("expected separator in dict"),
            }
        }
    }

    fn parse_array(&mut self) -> PResult<Json> {
        let mut items = Vec::new();
        match self.peek() {
            None => return perr("premature EOI"),
            Some(Tok::RSquare) => {
                self.pos += 1;
                return Ok(Json::Array(items));
            }
            Some(_) => {}
        }
        items.push(self.parse_value()?);
        loop {
            match self.next() {
                None => return perr("premature EOI"),
                Some((Tok::RSquare, _)) => return Ok(Json::Array(items)),
                Some((Tok::Comma, _)) => items.push(self.parse_value()?),
                Some(_) => return perr("expected separator in list"),
            }
        }
    }
}

fn parse_integer(text: &[u8]) -> Json {
    let s = std::str::from_utf8(text).unwrap_or("0");
    if let Ok(i) = s.parse::<i64>() {
        return Json::Int(i);
    }
    if !s.starts_with('-') {
        if let Ok(u) = s.parse::<u64>() {
            return Json::UInt(u);
        }
    }
    Json::Double(parse_double(text))
}

fn parse_double(text: &[u8]) -> f64 {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0)
}

fn hex_digit(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

/// Read the 4 characters after `\u` at `p` (clamped to the token): the code
/// point, or None when any is not a hex digit.
fn hex4(tok: &[u8], p: usize) -> Option<u32> {
    let digits = tok.get(p..p + 4)?;
    digits.iter().try_fold(0u32, |v, &c| Some(v * 16 + hex_digit(c)?))
}

fn is_noncharacter(cp: u32) -> bool {
    (cp & 0xfffe) == 0xfffe || (0xfdd0..=0xfdef).contains(&cp)
}

/// Decode a string token (quotes included) as QEMU's parser does.
fn parse_string(tok: &[u8]) -> PResult<String> {
    let end = tok.len() - 1;
    let mut out = String::with_capacity(end);
    let mut p = 1;
    while p < end {
        let c = tok[p];
        if c == b'\\' {
            let start = p;
            let esc = tok[p + 1];
            p += 2;
            let ch = match esc {
                b'"' => '"',
                b'\'' => '\'',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let mut cp = hex4(tok, p);
                    p = (p + 4).min(tok.len());
                    if let Some(hi @ 0xd800..=0xdbff) = cp {
                        if tok.get(p..p + 2) == Some(b"\\u") {
                            match hex4(tok, p + 2) {
                                Some(lo @ 0xdc00..=0xdfff) => {
                                    cp = Some(0x10000 + ((hi & 0x3ff) << 10) + (lo & 0x3ff));
                                    p += 6;
                                }
                                _ => cp = None,
                            }
                        }
                    }
                    match cp.filter(|&c| !is_noncharacter(c)).and_then(char::from_u32) {
                        Some(ch) => ch,
                        None => {
                            let text = qemu_lossy_utf8(&tok[start..p]);
                            return perr(format_args!("{text} is not a valid Unicode character"));
                        }
                    }
                }
                _ => return perr("invalid escape sequence in string"),
            };
            out.push(ch);
        } else if c < 0x80 {
            // A run of ASCII without escapes is copied at once.
            let run = run_until(&tok[p..end], |b| (b >= 0x80) | (b == b'\\'));
            out.push_str(std::str::from_utf8(&tok[p..p + run]).unwrap_or_default());
            p += run;
        } else {
            let (len, ch) = next_sequence(&tok[p..end]);
            match ch {
                Some(ch) => out.push(ch),
                None => return perr("invalid UTF-8 sequence in string"),
            }
            p += len;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Vec<Message> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.feed(input, &mut out);
        out
    }

    fn errs(input: &[u8]) -> Vec<String> {
        run(input)
            .into_iter()
            .map(|m| match m {
                Ok(v) => format!("ok {}", v.to_qemu_string()),
                Err(e) => e,
            })
            .collect()
    }

    #[test]
    fn two_objects_on_one_line_give_two_messages() {
        assert_eq!(
            errs(br#"{"a":1} {'b':'it\'s'}"#),
            vec![r#"ok {"a": 1}"#, r#"ok {"b": "it's"}"#]
        );
    }

    #[test]
    fn a_raw_nul_ends_the_quoted_token_as_in_qemus_c_string() {
        // QEMU 10.0.2: `stray ''` and `stray '"chardev-cha'`.
        assert_eq!(errs(b"{\x00\"execut\": 1}")[0], "JSON parse error, stray ''");
        assert_eq!(
            errs(b"{\"execute\":\"chardev-cha\x00ge\"}")[0],
            "JSON parse error, stray '\"chardev-cha'"
        );
    }

    #[test]
    fn malformed_inputs_get_qemu_error_texts() {
        assert_eq!(errs(b"{]"), vec!["JSON parse error, expecting value"]);
        assert_eq!(
            errs(br#"{"execute" "x"}"#),
            vec!["JSON parse error, missing : in object pair"]
        );
        assert_eq!(errs(br#"{"a":1,"a":2}"#), vec!["JSON parse error, duplicate key"]);
        assert_eq!(errs(b"{\xff"), vec!["JSON parse error, stray '\u{FFFD}'"]);
        assert_eq!(errs(b"{\x01"), vec!["JSON parse error, stray '\u{1}'"]);
        assert_eq!(errs(b"%p"), vec!["JSON parse error, stray '%'"]);
        // The closing brace ends recovery and then stands alone at depth 0.
        assert_eq!(
            errs(b"{\"id\":\"x\n\"}"),
            vec!["JSON parse error, stray '\"x\n'", "JSON parse error, expecting value"]
        );
        assert_eq!(
            errs(br#"{"a":01}"#),
            vec!["JSON parse error, stray '01'", "JSON parse error, expecting value"]
        );
        assert_eq!(
            errs(b"{} garbage "),
            vec!["ok {}", "JSON parse error, invalid keyword 'garbage'"]
        );
        assert_eq!(
            errs(br#""\x41""#),
            vec!["JSON parse error, invalid escape sequence in string"]
        );
        assert_eq!(
            errs(br#""\ud800""#),
            vec!["JSON parse error, \\ud800 is not a valid Unicode character"]
        );
        assert_eq!(
            errs(br#""\u12""#),
            vec!["JSON parse error, \\u12\" is not a valid Unicode character"]
        );
        assert_eq!(
            errs(b"[1}]"),
            vec![
                "JSON parse error, expected separator in list",
                "JSON parse error, expecting value"
            ]
        );
        assert_eq!(
            errs(br#"{"a":1 "b":2}"#),
            vec!["JSON parse error, expected separator in dict"]
        );
        assert_eq!(errs(b"{1:2}"), vec!["JSON parse error, key is not a string in object"]);
    }

    #[test]
    fn nesting_limit_is_1024() {
        let ok = format!("{}{}", "[".repeat(1024), "]".repeat(1024));
        assert!(run(ok.as_bytes())[0].is_ok());
        let bad = "[".repeat(1025);
        assert_eq!(errs(bad.as_bytes()), vec!["JSON nesting depth limit exceeded"]);
    }

    #[test]
    fn numbers_follow_qemus_model() {
        let out = run(b"[1, -0, 9223372036854775808, -9223372036854775809, 1.5e3, 0.1]");
        let Ok(Json::Array(v)) = &out[0] else { panic!("{out:?}") };
        assert_eq!(v[0], Json::Int(1));
        assert_eq!(v[1], Json::Int(0));
        assert_eq!(v[2], Json::UInt(9223372036854775808));
        assert!(matches!(v[3], Json::Double(_)));
        assert_eq!(
            Json::Array(v.clone()).to_qemu_string(),
            "[1, 0, 9223372036854775808, -9.2233720368547758e+18, 1500, 0.10000000000000001]"
        );
    }

    #[test]
    fn size_limit_resets_the_stream() {
        let mut f = Framer::with_max_token_size(64);
        let mut out = Vec::new();
        let mut big = br#"{"execute":""#.to_vec();
        big.extend(std::iter::repeat_n(b'a', 100));
        big.extend(br#""}"#);
        f.feed(&big, &mut out);
        assert_eq!(out[0].as_ref().unwrap_err(), "JSON token size limit exceeded");
        out.clear();
        // The rest of the cut token is lexed as new input (as in QEMU): it leaves
        // a string open, which the client's resync quote closes.
        f.feed(b"\"\n", &mut out);
        f.feed(br#"{"execute":"x"}"#, &mut out);
        assert!(out.last().is_some_and(|m| m.is_ok()), "{out:?}");
    }

    proptest::proptest! {
        /// The string fast path (whole runs) and byte-at-a-time feeding agree
        /// on any bytes, also where a run meets the size limit.
        #[test]
        fn string_runs_match_byte_steps(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"{\"a\":\"".to_vec()),
                    proptest::strategy::Just(b"'\\\"}]".to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..8),
                    proptest::collection::vec(0x20u8..0x7f, 0..70),
                ],
                0..12,
            ),
            limit in 8usize..80,
        ) {
            let input = parts.concat();
            let mut whole = Framer::with_max_token_size(limit);
            let mut a = Vec::new();
            whole.feed(&input, &mut a);
            let mut bytes = Framer::with_max_token_size(limit);
            let mut b = Vec::new();
            for &x in &input {
                bytes.feed_byte(x, &mut b);
            }
            proptest::prop_assert_eq!(a, b);
        }

        #[test]
        fn any_rechunking_yields_the_same_messages(cuts in proptest::collection::vec(0usize..200, 0..20)) {
            let input: &[u8] = b"{\"execute\":\"query-chardev\",\"id\":1}\n{'execute':'x','arguments':{'a':[1,2.5,\"\\u00e9\"]}}{]  {\"id\":\"x\n\"}{\"execute\":\"y\"}";
            let whole = run(input);
            let mut cuts = cuts.into_iter().map(|c| c % input.len()).collect::<Vec<_>>();
            cuts.sort_unstable();
            let mut f = Framer::new();
            let mut out = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([input.len()]) {
                f.feed(&input[last..c], &mut out);
                last = c;
            }
            proptest::prop_assert_eq!(whole, out);
        }
    }
}
