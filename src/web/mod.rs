//! The web console (`--web ADDR`): an HTTP listener in the daemon.
//!
//! - `GET /`: the chardevs (id, kind, filename, open, clients), kept current
//!   over `GET /events` (server-sent events: a chardev added or removed is
//!   told at once, from the directory the supervisor keeps; open state and
//!   clients within half a second);
//! - `GET /c/ID`: a terminal (xterm.js) on console `ID`, over the websocket
//!   `GET /ws/ID`: one more client of the console, with its history, queue,
//!   overflow and writer rules; the page reconnects by itself;
//! - `GET /metrics`: the counters of `__org.chardevd_query-stats` and the
//!   consoles' clients, in Prometheus' text format;
//! - `GET /api/chardevs`: the list as JSON; `GET /assets/...`: the page's
//!   files (embedded at build time).
//!
//! Nothing on it creates, changes or removes a chardev. Loopback by default;
//! an address other hosts can reach needs TLS (`tls-creds=ID`, a
//! `tls-creds-x509` object) and an access token, or it is refused. The
//! websocket checks `Origin`; on loopback without a token, `Host` must be a
//! loopback name (no DNS rebinding).
mod assets;
mod client;
mod http;
mod metrics;

use crate::actors::pool::Pool;
use crate::api::execute::Executor;
use crate::error::{BackendError, Error};
use crate::net::Listener;
use crate::net::QmpAddr;
use http::{Request, Response};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// The web console's settings (`--web ADDR[,tls-creds=ID][,token=T|token-file=PATH][,origin=URL]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// Where it listens (`tcp:HOST:PORT`, port 0 for any; or `unix:PATH`,
    /// mode 0600, for a reverse proxy).
    pub addr: QmpAddr,
    /// A `tls-creds-x509` object (endpoint=server): serve HTTPS.
    pub tls_creds: Option<String>,
    /// The access token: asked once as `?token=T` (then kept in a cookie),
    /// or sent as `Authorization: Bearer T`.
    pub token: Option<String>,
    /// Further origins the websocket accepts (the page's own always is).
    pub origins: Vec<String>,
}

impl WebConfig {
    /// A web console on loopback TCP `port` (0: any free one), no TLS, no token.
    pub fn loopback(port: u16) -> WebConfig {
        WebConfig {
            addr: QmpAddr::tcp("127.0.0.1", port),
            tls_creds: None,
            token: None,
            origins: Vec::new(),
        }
    }

    /// Parse `--web`'s argument.
    pub fn parse(s: &str) -> Result<WebConfig, String> {
        let mut parts = s.split(',');
        let target = parts.next().unwrap_or_default();
        let addr = if let Some(path) = target.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path".into());
            }
            QmpAddr::unix(PathBuf::from(path))
        } else if let Some(rest) = target.strip_prefix("tcp:") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("tcp: needs HOST:PORT, got '{rest}'"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = port.parse().map_err(|_| format!("invalid port '{port}'"))?;
            QmpAddr::tcp(host, port)
        } else {
            return Err(format!("'{target}': tcp:HOST:PORT or unix:PATH expected"));
        };
        let mut cfg = WebConfig {
            addr,
            tls_creds: None,
            token: None,
            origins: Vec::new(),
        };
        for part in parts {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k {
                "tls-creds" if !v.is_empty() => cfg.tls_creds = Some(v.to_owned()),
                "token" if !v.is_empty() => cfg.token = Some(v.to_owned()),
                "token-file" => {
                    let t = std::fs::read_to_string(v).map_err(|e| format!("token-file {v}: {e}"))?;
                    let t = t.trim();
                    if t.is_empty() {
                        return Err(format!("token-file {v} is empty"));
                    }
                    cfg.token = Some(t.to_owned());
                }
                "origin" if !v.is_empty() => cfg.origins.push(v.trim_end_matches('/').to_owned()),
                _ => {
                    return Err(format!(
                        "Invalid parameter '{part}' (tls-creds=ID, token=T, token-file=PATH, origin=URL)"
                    ))
                }
            }
        }
        if cfg.token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err("the token must have at least 16 characters".into());
        }
        Ok(cfg)
    }
}

/// The URL of a web console bound at `addr`.
pub fn url(addr: &QmpAddr) -> String {
    match addr {
        QmpAddr::Tcp { host, port } if host.contains(':') => format!("http://[{host}]:{port}/"),
        QmpAddr::Tcp { host, port } if host.is_empty() => format!("http://127.0.0.1:{port}/"),
        QmpAddr::Tcp { host, port } => format!("http://{host}:{port}/"),
        QmpAddr::Unix { path, .. } => format!("unix:{}", path.display()),
    }
}

/// What every connection of one web listener shares.
pub(crate) struct Web {
    exec: Executor,
    token: Option<String>,
    origins: Vec<String>,
    /// `https` or `http`.
    scheme: &'static str,
    /// A unix socket (behind a proxy): no `Host` check.
    unix: bool,
    handshake_timeout: Duration,
}

/// A connection's byte stream (plain or TLS).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// The most web connections at once (page loads, event streams, terminals).
const MAX_CONNECTIONS: usize = 1024;

/// Bind and serve on the current arbiter; connections go round robin over `pool`.
pub(crate) async fn bind(cfg: WebConfig, exec: Executor, pool: Pool) -> Result<Listener, Error> {
    let addr_s = cfg.addr.to_string();
    let fail = |source: BackendError| Error::Listen {
        addr: addr_s.clone(),
        source,
    };
    let tls = match &cfg.tls_creds {
        None => None,
        Some(id) => match exec.objects().get(id) {
            Some(crate::objects::Object::TlsCreds(c)) => match &c.server {
                Some(server) => Some(tokio_rustls::TlsAcceptor::from(server.clone())),
                None => {
                    return Err(Error::Web(format!(
                        "tls-creds '{id}' is not for a server (endpoint=server)"
                    )))
                }
            },
            _ => return Err(Error::Web(format!("No TLS credentials with id '{id}'"))),
        },
    };
    let (listening, fd) = cfg.addr.listen(128).await.map_err(fail)?;
    let setup = |e: io::Error| fail(BackendError::SocketSetup(e.into()));
    let web = Arc::new(Web {
        token: cfg.token.clone(),
        origins: cfg.origins.clone(),
        scheme: if tls.is_some() { "https" } else { "http" },
        unix: matches!(cfg.addr, QmpAddr::Unix { .. }),
        handshake_timeout: exec.limits().handshake_timeout,
        exec,
    });
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (task, bound) = match &cfg.addr {
        QmpAddr::Unix { .. } => {
            let listener =
                tokio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(fd)).map_err(setup)?;
            let task = actix_rt::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((s, _)) => match s.into_std() {
                            Ok(std) => hand_off(&web, &pool, &live, tls.clone(), "unix".into(), Stream::Unix(std)),
                            Err(e) => tracing::warn!(cause = %e, "web: cannot hand a connection to its thread"),
                        },
                        Err(e) => accept_error(e).await,
                    }
                }
            });
            (task, cfg.addr.clone())
        }
        QmpAddr::Tcp { host, .. } => {
            let listener = tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd)).map_err(setup)?;
            let local = listener.local_addr().map_err(setup)?;
            if !local.ip().is_loopback() && (tls.is_none() || web.token.is_none()) {
                return Err(Error::Web(format!(
                    "the web console on {} could be reached from other hosts: it needs TLS (tls-creds=ID, a \
                     tls-creds-x509 object with endpoint=server) and an access token (token=T or token-file=PATH); \
                     or listen on 127.0.0.1",
                    cfg.addr
                )));
            }
            let task = actix_rt::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((s, peer)) => {
                            let _ = s.set_nodelay(true);
                            match s.into_std() {
                                Ok(std) => {
                                    hand_off(&web, &pool, &live, tls.clone(), peer.to_string(), Stream::Tcp(std))
                                }
                                Err(e) => tracing::warn!(cause = %e, "web: cannot hand a connection to its thread"),
                            }
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
            });
            (task, QmpAddr::tcp(host.clone(), local.port()))
        }
    };
    Ok(Listener {
        addr: bound,
        task,
        _listening: listening,
    })
}

enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

/// Serve one connection on the next arbiter.
fn hand_off(
    web: &Arc<Web>,
    pool: &Pool,
    live: &Arc<std::sync::atomic::AtomicUsize>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    peer: String,
    stream: Stream,
) {
    use std::sync::atomic::Ordering;
    if live.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
        live.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(max = MAX_CONNECTIONS, "web: too many connections; refused");
        return;
    }
    let (web, live) = (web.clone(), live.clone());
    pool.next().1.spawn_fn(move || {
        actix_rt::spawn(async move {
            let plain: Box<dyn Io> = match stream {
                Stream::Tcp(s) => match tokio::net::TcpStream::from_std(s) {
                    Ok(s) => Box::new(s),
                    Err(_) => return live.fetch_sub(1, Ordering::Relaxed),
                },
                Stream::Unix(s) => match tokio::net::UnixStream::from_std(s) {
                    Ok(s) => Box::new(s),
                    Err(_) => return live.fetch_sub(1, Ordering::Relaxed),
                },
            };
            let io: Option<Box<dyn Io>> = match tls {
                None => Some(plain),
                Some(acceptor) => match tokio::time::timeout(web.handshake_timeout, acceptor.accept(plain)).await {
                    Ok(Ok(s)) => Some(Box::new(s)),
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, cause = %e, "web: TLS handshake failed");
                        None
                    }
                    Err(_) => None,
                },
            };
            if let Some(io) = io {
                serve(web, io, peer).await;
            }
            live.fetch_sub(1, Ordering::Relaxed)
        });
    });
}

async fn accept_error(e: io::Error) {
    tracing::warn!(cause = %e, "web: accept failed; retrying in 100 ms");
    actix_rt::time::sleep(Duration::from_millis(100)).await;
}

/// One connection: one request (a websocket or an event stream stays).
async fn serve(web: Arc<Web>, mut io: Box<dyn Io>, peer: String) {
    let req = match tokio::time::timeout(web.handshake_timeout, http::read_request(&mut io)).await {
        Ok(Ok((req, leftover))) => (req, leftover),
        Ok(Err(status)) => {
            let _ = Response::text(status, "bad request\n").send(&mut io).await;
            return;
        }
        Err(_) => return,
    };
    let (req, leftover) = req;
    tracing::debug!(%peer, method = %req.method, path = %req.path, "web request");
    if let Some(resp) = web.check(&req) {
        let _ = resp.send(&mut io).await;
        return;
    }
    let path = req.path.clone();
    let resp = match (req.method.as_str(), path.as_str()) {
        ("GET" | "HEAD", "/") => assets::page("index.html"),
        ("GET" | "HEAD", p) if p.starts_with("/c/") => assets::page("term.html"),
        ("GET" | "HEAD", p) if p.starts_with("/assets/") => assets::asset(&p["/assets/".len()..]),
        ("GET", "/api/chardevs") => match web.list_json() {
            Ok(j) => Response::json(j),
            Err(e) => Response::text("503 Service Unavailable", &format!("{e}\n")),
        },
        ("GET", "/metrics") => match metrics::render(&web.exec).await {
            Ok(text) => Response::bytes("200 OK", metrics::CONTENT_TYPE, text.into_bytes()),
            Err(e) => Response::text("503 Service Unavailable", &format!("{e}\n")),
        },
        ("GET", "/events") => return events(&web, io).await,
        ("GET", p) if p.starts_with("/ws/") => {
            let id = http::percent_decode(&p["/ws/".len()..]);
            return client::serve(&web.exec, &req, io, leftover, id, peer, web.origin_ok(&req)).await;
        }
        ("GET" | "HEAD", _) => Response::text("404 Not Found", "not found\n"),
        _ => Response::text("405 Method Not Allowed", "the web console only reads: GET\n"),
    };
    let resp = if req.method == "HEAD" { resp.head_only() } else { resp };
    let _ = resp.send(&mut io).await;
}

impl Web {
    /// Refuse what may not go on: a wrong host, a missing token. A token
    /// given in the URL is turned into a cookie (and out of the URL).
    fn check(&self, req: &Request) -> Option<Response> {
        if !self.unix && self.token.is_none() && !req.header("host").is_some_and(loopback_host) {
            return Some(Response::text(
                "421 Misdirected Request",
                "this web console answers to a loopback host name only (localhost, 127.0.0.1, [::1])\n",
            ));
        }
        let Some(token) = &self.token else { return None };
        if let Some(t) = req.query_param("token") {
            if http::same(t.as_bytes(), token.as_bytes()) {
                return Some(Response::redirect(
                    &req.path,
                    &format!(
                        "chardevd_token={token}; Path=/; HttpOnly; SameSite=Strict{}",
                        if self.scheme == "https" { "; Secure" } else { "" }
                    ),
                ));
            }
        }
        let bearer = req.header("authorization").and_then(|a| a.strip_prefix("Bearer "));
        let cookie = req.cookie("chardevd_token");
        if [bearer, cookie.as_deref()]
            .into_iter()
            .flatten()
            .any(|t| http::same(t.trim().as_bytes(), token.as_bytes()))
        {
            return None;
        }
        Some(Response::text(
            "401 Unauthorized",
            "this web console needs its access token: open it once as /?token=TOKEN (or send Authorization: Bearer TOKEN)\n",
        ))
    }

    /// Whether the websocket's `Origin` is the page's own (or one allowed).
    fn origin_ok(&self, req: &Request) -> bool {
        let Some(origin) = req.header("origin") else {
            return false;
        };
        let origin = origin.trim_end_matches('/');
        let own = req.header("host").map(|h| format!("{}://{h}", self.scheme));
        own.as_deref() == Some(origin) || self.origins.iter().any(|o| o == origin)
    }

    /// The chardevs as the page shows them.
    fn list_json(&self) -> Result<String, Error> {
        let dir = self.exec.directory()?;
        let rows: Vec<serde_json::Value> = dir
            .list()
            .into_iter()
            .map(|(id, kind, status)| {
                serde_json::json!({
                    "id": id,
                    "kind": kind,
                    "filename": status.filename(),
                    "open": status.backend_open(),
                    "frontend-open": status.frontend_open(),
                    "console": status.clients().is_some(),
                    "clients": status.clients(),
                })
            })
            .collect();
        Ok(serde_json::Value::Array(rows).to_string())
    }
}

/// Whether a `Host` header names this machine's loopback.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `GET /events`: the list again whenever it changes.
async fn events(web: &Web, mut io: Box<dyn Io>) {
    use tokio::io::AsyncWriteExt;
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
                X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";
    if io.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let Ok(dir) = web.exec.directory() else { return };
    let mut changes = dir.changes();
    let mut last = String::new();
    let mut quiet = 0u32;
    loop {
        let Ok(now) = web.list_json() else { return };
        let msg = if now != last {
            quiet = 0;
            format!("data: {now}\n\n")
        } else {
            quiet += 1;
            // A comment now and then: a proxy keeps the stream, a gone
            // client is found.
            if !quiet.is_multiple_of(30) {
                String::new()
            } else {
                ": still here\n\n".to_owned()
            }
        };
        last = now;
        if !msg.is_empty() && (io.write_all(msg.as_bytes()).await.is_err() || io.flush().await.is_err()) {
            return;
        }
        // Chardevs coming and going are told at once; open state and
        // clients are looked at twice a second.
        let _ = tokio::time::timeout(Duration::from_millis(500), changes.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_options() {
        let c = WebConfig::parse("tcp:127.0.0.1:8080").unwrap();
        assert_eq!(c, WebConfig::loopback(8080));
        let c =
            WebConfig::parse("tcp:[::]:443,tls-creds=tls0,token=0123456789abcdef,origin=https://x.example/").unwrap();
        assert_eq!(c.addr, QmpAddr::tcp("::", 443));
        assert_eq!(c.tls_creds.as_deref(), Some("tls0"));
        assert_eq!(c.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(c.origins, vec!["https://x.example".to_owned()]);
        assert!(matches!(
            WebConfig::parse("unix:/run/x.sock").unwrap().addr,
            QmpAddr::Unix { .. }
        ));
        assert!(WebConfig::parse("8080").unwrap_err().contains("tcp:HOST:PORT"));
        assert!(WebConfig::parse("tcp:127.0.0.1:8080,token=short")
            .unwrap_err()
            .contains("16"));
        assert!(WebConfig::parse("tcp:127.0.0.1:8080,bogus=1")
            .unwrap_err()
            .contains("bogus"));
        assert!(WebConfig::parse("tcp:127.0.0.1:x").unwrap_err().contains("port"));
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
            "127.1.2.3",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "evil.localhost.example:80",
            "10.0.0.1:80",
            "[2001:db8::1]:80",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
    }
}
