//! Headless Chromium driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: commands on fd 3, answers on fd 4, each a
//! JSON text ended by a NUL), as Playwright drives it, with no Node.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The browser binary, if there is one.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| crate::common::have(c))
}

#[derive(Default)]
struct Replies {
    by_id: HashMap<u64, Value>,
    closed: bool,
}

/// A running browser.
pub struct Browser {
    child: Child,
    to: Mutex<std::io::PipeWriter>,
    replies: Arc<(Mutex<Replies>, Condvar)>,
    next: Mutex<u64>,
    _profile: tempfile::TempDir,
}

/// One tab, attached.
pub struct Page<'a> {
    browser: &'a Browser,
    session: String,
    target: String,
}

impl Browser {
    /// Start headless Chromium.
    pub fn start(binary: &str) -> Browser {
        Self::start_with(binary, &[])
    }

    /// Start headless Chromium with more flags.
    pub fn start_with(binary: &str, extra: &[&str]) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (cmd_r, cmd_w) = std::io::pipe().unwrap();
        let (out_r, out_w) = std::io::pipe().unwrap();
        let (cmd_r, out_w): (OwnedFd, OwnedFd) = (cmd_r.into(), out_w.into());
        let mut cmd = Command::new(binary);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--remote-debugging-pipe",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(extra)
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: between fork and exec only dup2 runs (async-signal-safe);
        // fds 3 and 4 are the child's to take.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first: either may already be fd 3 or 4
                // (and dup2 onto itself would keep its close-on-exec).
                let high_r = rustix::io::fcntl_dupfd_cloexec(&cmd_r, 10)?;
                let high_w = rustix::io::fcntl_dupfd_cloexec(&out_w, 10)?;
                let mut three = OwnedFd::from_raw_fd(3);
                let mut four = OwnedFd::from_raw_fd(4);
                let r1 = rustix::io::dup2(&high_r, &mut three);
                let r2 = rustix::io::dup2(&high_w, &mut four);
                std::mem::forget(three);
                std::mem::forget(four);
                r1.and(r2).map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let replies: Arc<(Mutex<Replies>, Condvar)> = Arc::default();
        let r = replies.clone();
        std::thread::spawn(move || {
            let mut rd = BufReader::new(out_r);
            loop {
                let mut msg = Vec::new();
                match rd.read_until(0, &mut msg) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        msg.pop();
                        let Ok(v) = serde_json::from_slice::<Value>(&msg) else {
                            continue;
                        };
                        if let Some(id) = v.get("id").and_then(Value::as_u64) {
                            r.0.lock().unwrap().by_id.insert(id, v);
                            r.1.notify_all();
                        }
                    }
                }
            }
            r.0.lock().unwrap().closed = true;
            r.1.notify_all();
        });
        Browser {
            child,
            to: Mutex::new(cmd_w),
            replies,
            next: Mutex::new(0),
            _profile: profile,
        }
    }

    /// One command; its `result` (panics on a protocol error).
    pub fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = {
            let mut n = self.next.lock().unwrap();
            *n += 1;
            *n
        };
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.lock().unwrap().write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (lock, cv) = &*self.replies;
        let mut g = lock.lock().unwrap();
        loop {
            if let Some(v) = g.by_id.remove(&id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v.get("result").cloned().unwrap_or(Value::Null);
            }
            assert!(!g.closed, "the browser went away during {method}");
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{method}: no answer in 60 s");
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    /// A new tab on `url`.
    pub fn open(&self, url: &str) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": url}))["targetId"]
            .as_str()
            .unwrap()
            .to_owned();
        let session = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        )["sessionId"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = Page {
            browser: self,
            session,
            target,
        };
        // Every tab behaves as the focused one (keys reach the terminal).
        page.call("Emulation.setFocusEmulationEnabled", json!({"enabled": true}));
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 900, "height": 500, "deviceScaleFactor": 1, "mobile": false}),
        );
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Page<'_> {
    /// A command in this tab.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params)
    }

    /// The value of a JavaScript expression (promises awaited; null if it threw).
    pub fn eval(&self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if r.get("exceptionDetails").is_some() {
            return Value::Null;
        }
        r["result"]["value"].clone()
    }

    /// Wait until `expr` is true (up to `secs`); panics with `what` if not.
    pub fn wait_for(&self, what: &str, expr: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.eval(expr) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}: `{expr}` not true within {secs} s");
    }

    /// The terminal's text (every line of its buffer, trailing blanks cut).
    pub fn screen(&self) -> String {
        self.eval(
            "(() => { const b = window.chardevd.term.buffer.active; const out = []; \
             for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true)); \
             return out.join('\\n'); })()",
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Type text as keys (each character a key press, Enter for `\r`).
    pub fn type_text(&self, text: &str) {
        for ch in text.chars() {
            let s = ch.to_string();
            let (key, code, vk) = match ch {
                '\r' => ("Enter".to_owned(), "Enter".to_owned(), 13),
                c if c.is_ascii_alphabetic() => (
                    s.clone(),
                    format!("Key{}", c.to_ascii_uppercase()),
                    c.to_ascii_uppercase() as u32,
                ),
                c if c.is_ascii_digit() => (s.clone(), format!("Digit{c}"), c as u32),
                ' ' => (s.clone(), "Space".to_owned(), 32),
                _ => (s.clone(), String::new(), 0),
            };
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk, "text": s, "unmodifiedText": s}),
            );
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk}),
            );
        }
    }

    /// Press a key with Ctrl (`c` → Ctrl-C).
    pub fn ctrl(&self, letter: char) {
        let up = letter.to_ascii_uppercase();
        let p = json!({"key": letter.to_string(), "code": format!("Key{up}"), "windowsVirtualKeyCode": up as u32, "modifiers": 2});
        let mut down = p.clone();
        down["type"] = json!("keyDown");
        self.call("Input.dispatchKeyEvent", down);
        let mut release = p;
        release["type"] = json!("keyUp");
        self.call("Input.dispatchKeyEvent", release);
    }

    /// Press a named key (`ArrowUp`, `Escape`, ...) with its key code.
    pub fn press(&self, key: &str, vk: u32) {
        for t in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": t, "key": key, "code": key, "windowsVirtualKeyCode": vk}),
            );
        }
    }

    /// Reload the page.
    pub fn reload(&self) {
        self.call("Page.reload", json!({}));
    }

    /// A PNG of the tab, written to `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Close the tab.
    pub fn close(self) {
        self.browser
            .call(None, "Target.closeTarget", json!({"targetId": self.target}));
    }
}
