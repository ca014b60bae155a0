//! The web console, measured in headless Chromium (BENCHMARKS.md, "web
//! console"):
//! - keystroke to echo: a key given to xterm.js (`term.input`, which is
//!   what a key press becomes) goes out over the websocket into a console
//!   whose frontend is an `echo` device, comes back, and is parsed by
//!   xterm.js (`onWriteParsed`); p50 and p99 of N round trips;
//! - output into the page: a guest writes SIZE bytes of text into a socket
//!   bridged to the console; from the first byte to the last one parsed by
//!   xterm.js in the page (MB/s), with the console's default client queue
//!   and overflow rule (one client: block, nothing lost; checked).
//!
//!   cargo bench --bench web                      # release build, full run
//!   CHARDEVD_BENCH_SMOKE=1 cargo bench --bench web   # a moment, checks it runs
#[path = "../tests/common/cdp.rs"]
mod cdp;
#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn main() {
    let smoke = std::env::var("CHARDEVD_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let (keys, size) = if smoke { (20, 256 << 10) } else { (2000, 64 << 20) };
    let Some(chromium) = cdp::chromium() else {
        assert!(!common::in_ci(), "the web bench needs chromium (bash .ci/install-deps)");
        eprintln!("web bench: no chromium; skipped");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let guest = dir.path().join("guest.sock");
    let args = [
        "-chardev".to_owned(),
        "socket,id=echoed,path=".to_owned()
            + &dir.path().join("e.sock").display().to_string()
            + ",server=on,wait=off,__org.chardevd_history=4K,__org.chardevd_max-clients=2",
        "-device".to_owned(),
        "echo,id=e,chardev=echoed".to_owned(),
        "-chardev".to_owned(),
        format!("socket,id=guest,path={},server=on,wait=off", guest.display()),
        "-chardev".to_owned(),
        "socket,id=con,path=".to_owned()
            + &dir.path().join("c.sock").display().to_string()
            + ",server=on,wait=off,__org.chardevd_history=4K",
        "-device".to_owned(),
        "bridge,id=br,chardev=guest,peer=con".to_owned(),
        "--web".to_owned(),
        format!("tcp:127.0.0.1:{port}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = common::chardevd(&args);
    let cpu = || {
        // utime + stime of the daemon, in clock ticks (100 per second).
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id())).unwrap();
        let f: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
    };
    let b = cdp::Browser::start(chromium);

    // Keystroke to echo.
    let tab = b.open(&format!("http://127.0.0.1:{port}/c/echoed"));
    tab.wait_for(
        "the echo terminal",
        "window.chardevd && window.chardevd.state.connected",
        30,
    );
    let lat = tab.eval(&format!(
        "(async () => {{ const t = window.chardevd.term; const r = []; \
         for (let i = 0; i < {keys}; i++) {{ const t0 = performance.now(); \
           await new Promise((res) => {{ const d = t.onWriteParsed(() => {{ d.dispose(); res(); }}); t.input('x', true); }}); \
           r.push(performance.now() - t0); }} \
         r.sort((a, b) => a - b); return [r[Math.floor(r.length / 2)], r[Math.floor(r.length * 0.99)], r.length]; }})()"
    ));
    let (p50, p99) = (lat[0].as_f64().unwrap_or(f64::NAN), lat[1].as_f64().unwrap_or(f64::NAN));
    assert_eq!(lat[2].as_u64(), Some(keys), "every key came back: {lat}");
    // The same round trip on a bare websocket from the page (no xterm.js):
    // what the daemon and the browser's network stack cost.
    let bare = tab.eval(&format!(
        "(async () => {{ const ws = new WebSocket('ws://' + location.host + '/ws/echoed', ['binary']);          ws.binaryType = 'arraybuffer'; await new Promise((res) => ws.onopen = res);          await new Promise((res) => setTimeout(res, 300)); ws.onmessage = null;          const r = []; const x = new Uint8Array([120]);          for (let i = 0; i < {keys}; i++) {{ const t0 = performance.now();            await new Promise((res) => {{ ws.onmessage = (m) => {{ if (typeof m.data !== 'string') res(); }}; ws.send(x); }});            r.push(performance.now() - t0); }}          ws.close(); r.sort((a, b) => a - b); return [r[Math.floor(r.length / 2)], r[Math.floor(r.length * 0.99)]]; }})()"
    ));
    let (b50, b99) = (
        bare[0].as_f64().unwrap_or(f64::NAN),
        bare[1].as_f64().unwrap_or(f64::NAN),
    );
    tab.close();

    // Output into the page.
    let tab = b.open(&format!("http://127.0.0.1:{port}/c/con"));
    tab.wait_for(
        "the output terminal",
        "window.chardevd && window.chardevd.state.connected",
        30,
    );
    let mut g = UnixStream::connect(&guest).unwrap();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmn\r\n";
    let block: Vec<u8> = line.iter().copied().cycle().take(64 << 10).collect();
    let start = Instant::now();
    let cpu0 = cpu();
    let writer = std::thread::spawn(move || {
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len());
            g.write_all(&block[..n]).unwrap();
            left -= n;
        }
        g
    });
    tab.wait_for(
        "all the output parsed",
        &format!(
            "new Promise((res) => window.chardevd.term.write('', () => res(window.chardevd.state.received >= {size})))"
        ),
        600,
    );
    let secs = start.elapsed().as_secs_f64();
    let daemon = cpu() - cpu0;
    let _g = writer.join().unwrap();
    let received = tab.eval("window.chardevd.state.received").as_u64().unwrap_or(0);
    assert_eq!(received, size as u64, "nothing lost on the way (one client: block)");
    println!(
        "| keystroke to echo through the page (xterm.js in and out) | p50 {p50:.2} ms, p99 {p99:.2} ms ({keys} keys) |"
    );
    println!("| the same on a bare websocket from the page | p50 {b50:.2} ms, p99 {b99:.2} ms |");
    println!(
        "| output into the page (xterm.js parsing) | {:.1} MB/s ({} MiB in {secs:.2} s; chardevd busy {daemon:.2} s of it) |",
        size as f64 / secs / 1e6,
        size >> 20
    );
    std::thread::sleep(Duration::from_millis(10));
}
