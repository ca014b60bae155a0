//! A small QMP client: the greeting, capabilities negotiation, commands,
//! and an event, on a unix socket, with nothing but a JSON library.
//!
//! Given a socket path (`cargo run --example qmp_client -- /run/chardevd/qmp.sock`)
//! it talks to that running daemon (it adds and removes a chardev `qmp-client-demo`);
//! without one it starts chardevd in-process with a QMP listener first.
//! QMP is line-oriented on the way out: every message chardevd (and QEMU)
//! sends ends in CRLF, and events may come between a command and its reply.
//!
//! Run: `cargo run --example qmp_client` (it prints the exchange, exits 0).
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// One QMP connection.
struct Qmp {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    /// Events that arrived while waiting for a reply.
    events: Vec<Value>,
}

impl Qmp {
    async fn connect(path: &std::path::Path) -> std::io::Result<(Qmp, Value)> {
        let (rd, wr) = tokio::net::UnixStream::connect(path).await?.into_split();
        let mut q = Qmp {
            rd: BufReader::new(rd),
            wr,
            events: Vec::new(),
        };
        let greeting = q.read().await?;
        Ok((q, greeting))
    }

    async fn read(&mut self) -> std::io::Result<Value> {
        let mut line = String::new();
        if self.rd.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Run a command; returns its `return` (or its `error`, as `Err`).
    async fn execute(&mut self, command: &str, arguments: Value) -> std::io::Result<Result<Value, Value>> {
        let msg = json!({"execute": command, "arguments": arguments, "id": command});
        println!("-> {msg}");
        self.wr.write_all(format!("{msg}\n").as_bytes()).await?;
        loop {
            let v = self.read().await?;
            if v.get("event").is_some() {
                println!("<- (event) {v}");
                self.events.push(v);
                continue;
            }
            println!("<- {v}");
            return Ok(match v.get("error") {
                Some(e) => Err(e.clone()),
                None => Ok(v["return"].clone()),
            });
        }
    }

    /// The next event (one already received first).
    async fn event(&mut self) -> std::io::Result<Value> {
        if !self.events.is_empty() {
            return Ok(self.events.remove(0));
        }
        let v = self.read().await?;
        println!("<- (event) {v}");
        Ok(v)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // A running daemon's socket, or chardevd started here.
    let (path, local) = match std::env::args().nth(1) {
        Some(p) => (std::path::PathBuf::from(p), None),
        None => {
            let path = dir.path().join("qmp.sock");
            let handle = chardevd::Handle::start(chardevd::Config {
                qmp: vec![chardevd::QmpAddr::unix(&path)],
                ..Default::default()
            })
            .await?;
            (path, Some(handle))
        }
    };

    let (mut qmp, greeting) = Qmp::connect(&path).await?;
    println!("<- {greeting}");
    let v = &greeting["QMP"]["version"]["qemu"];
    println!("   (QMP of QEMU {}.{}.{})", v["major"], v["minor"], v["micro"]);
    // Until negotiation, only qmp_capabilities runs.
    let refused = qmp.execute("query-chardev", json!({})).await?;
    assert_eq!(refused.unwrap_err()["class"], "CommandNotFound");
    qmp.execute("qmp_capabilities", json!({}))
        .await?
        .map_err(|e| e.to_string())?;

    // A command: a ring chardev, written and read back.
    let id = "qmp-client-demo";
    let ring = json!({"id": id, "backend": {"type": "ringbuf", "data": {"size": 1024}}});
    qmp.execute("chardev-add", ring).await?.map_err(|e| e.to_string())?;
    qmp.execute("ringbuf-write", json!({"device": id, "data": "hello"}))
        .await?
        .map_err(|e| e.to_string())?;
    let read = qmp.execute("ringbuf-read", json!({"device": id, "size": 100})).await?;
    assert_eq!(read.map_err(|e| e.to_string())?, "hello");
    // An error carries QEMU's class and text.
    let dup = json!({"id": id, "backend": {"type": "null", "data": {}}});
    let err = qmp.execute("chardev-add", dup).await?.unwrap_err();
    assert_eq!(err["desc"], format!("Chardev with id '{id}' already exists"));

    // An event: a port device's guest side opening raises VSERPORT_CHANGE.
    let port = json!({"driver": "port", "id": "qmp-client-port", "chardev": id});
    qmp.execute("device_add", port).await?.map_err(|e| e.to_string())?;
    let open = json!({"id": "qmp-client-port", "open": true});
    qmp.execute("__org.chardevd_port-set-open", open)
        .await?
        .map_err(|e| e.to_string())?;
    let ev = qmp.event().await?;
    assert_eq!(ev["event"], "VSERPORT_CHANGE");
    assert_eq!(ev["data"], json!({"id": "qmp-client-port", "open": true}));
    qmp.execute("device_del", json!({"id": "qmp-client-port"}))
        .await?
        .map_err(|e| e.to_string())?;
    let ev = qmp.event().await?;
    assert_eq!(ev["event"], "DEVICE_DELETED");
    qmp.execute("chardev-remove", json!({"id": id}))
        .await?
        .map_err(|e| e.to_string())?;

    if let Some(handle) = local {
        // `quit`: SHUTDOWN comes before the reply.
        qmp.execute("quit", json!({})).await?.map_err(|e| e.to_string())?;
        let ev = qmp.event().await?;
        assert_eq!(ev["event"], "SHUTDOWN");
        handle.wait().await;
    }
    Ok(())
}
