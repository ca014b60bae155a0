//! The page's files, embedded: our own (`web/`) and xterm.js's, which
//! build.rs takes from the locked npm packages.
use super::http::Response;

/// Files by name: (name, content type, bytes).
static FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web/index.html"),
    ),
    (
        "term.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web/term.html"),
    ),
    (
        "list.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/list.js"),
    ),
    (
        "term.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/term.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/style.css"),
    ),
    (
        "xterm.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/assets/xterm-xterm.mjs")),
    ),
    (
        "xterm.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/assets/xterm-xterm.css")),
    ),
    (
        "xterm-LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/assets/xterm-LICENSE")),
    ),
    (
        "addon-fit.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/assets/addon-fit-addon-fit.mjs")),
    ),
];

/// The page's own scripts and styles only; no inline script, no framing.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

fn find(name: &str) -> Option<Response> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, ctype, bytes)| Response::bytes("200 OK", ctype, bytes.to_vec()))
}

/// An HTML page.
pub fn page(name: &str) -> Response {
    find(name).map_or_else(
        || Response::text("404 Not Found", "not found\n"),
        |r| r.with("Content-Security-Policy", CSP),
    )
}

/// A file under `/assets/`.
pub fn asset(name: &str) -> Response {
    find(name).unwrap_or_else(|| Response::text("404 Not Found", "not found\n"))
}
