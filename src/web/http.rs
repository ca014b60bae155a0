//! The little HTTP/1.1 the web console needs: one request head (bounded),
//! one response, `Connection: close`.
use super::Io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest request head taken.
pub const MAX_HEAD: usize = 16 << 10;

/// A request head.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query (after `?`), raw.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A query parameter, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == name).then(|| v.to_owned())
            })
    }
}

/// Read one request head; returns it and the bytes after it (a websocket's
/// first frames may follow at once). Err: the status to answer.
pub async fn read_request(io: &mut Box<dyn Io>) -> Result<(Request, Vec<u8>), &'static str> {
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() >= MAX_HEAD {
            return Err("431 Request Header Fields Too Large");
        }
        let mut chunk = [0u8; 2048];
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err("400 Bad Request"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "400 Bad Request")?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("400 Bad Request");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err("400 Bad Request");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').ok_or("400 Bad Request")?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let rest = buf[end + 4..].to_vec();
    Ok((
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
        },
        rest,
    ))
}

/// `%XX` decoded (invalid escapes are kept as they are).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Compare secrets in time that does not depend on where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A response.
#[derive(Debug)]
pub struct Response {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    head_only: bool,
}

impl Response {
    /// A body of this type.
    pub fn bytes(status: &'static str, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
            head_only: false,
        }
    }

    /// Plain text.
    pub fn text(status: &'static str, body: &str) -> Response {
        Self::bytes(status, "text/plain; charset=utf-8", body.as_bytes().to_vec())
    }

    /// JSON.
    pub fn json(body: String) -> Response {
        Self::bytes("200 OK", "application/json", body.into_bytes())
    }

    /// See `path` again, setting a cookie.
    pub fn redirect(path: &str, cookie: &str) -> Response {
        let mut r = Self::text("303 See Other", "");
        r.headers.push(("Location", path.to_owned()));
        r.headers.push(("Set-Cookie", cookie.to_owned()));
        r
    }

    /// With one more header.
    pub fn with(mut self, name: &'static str, value: &str) -> Response {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// The same head, no body (`HEAD`).
    pub fn head_only(mut self) -> Response {
        self.head_only = true;
        self
    }

    /// Send it.
    pub async fn send(self, io: &mut Box<dyn Io>) -> std::io::Result<()> {
        let mut out = format!("HTTP/1.1 {}\r\n", self.status);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(&self.body);
        }
        io.write_all(&bytes).await?;
        io.flush().await?;
        let _ = io.shutdown().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_compares() {
        assert_eq!(percent_decode("a%20b%2Fc+d%zz%4"), "a b/c d%zz%4");
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
    }

    #[tokio::test]
    async fn reads_a_head_and_keeps_what_follows() {
        let (a, mut b) = tokio::io::duplex(4096);
        b.write_all(
            b"GET /ws/c1?token=a%2Bb HTTP/1.1\r\nHost: localhost:1\r\nCookie: x=1; chardevd_token=t\r\n\r\n\x82\x80",
        )
        .await
        .unwrap();
        let mut io: Box<dyn Io> = Box::new(a);
        let (req, rest) = read_request(&mut io).await.unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/ws/c1"));
        assert_eq!(req.query_param("token").as_deref(), Some("a+b"));
        assert_eq!(req.header("host"), Some("localhost:1"));
        assert_eq!(req.cookie("chardevd_token").as_deref(), Some("t"));
        assert_eq!(rest, b"\x82\x80");
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b"nonsense\r\n\r\n").await.unwrap();
        let mut io: Box<dyn Io> = Box::new(a);
        assert_eq!(read_request(&mut io).await.unwrap_err(), "400 Bad Request");
    }
}
