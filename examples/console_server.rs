//! A console server, all through chardevd's typed API: a VM's serial line
//! (a pty, as QEMU's `-serial pty` gives one) is bridged to a TCP console
//! that operators connect to, and everything the VM prints also goes into
//! a ring buffer, so an operator who connects late can read what was
//! printed before (the boot log).
//!
//! ```text
//!   VM ── pty "ttyS0" ══ bridge ══ hub "console" ─┬─ socket "net" (tcp, operators)
//!                                                 └─ ringbuf "history" (64 KiB)
//! ```
//!
//! The example plays the VM itself (it writes a boot log into the pty and
//! answers a login), then an operator connects, reads the history, logs in.
//!
//! Run: `cargo run --example console_server` (it prints the session, exits 0).
use chardevd::backends::{ChardevBackend, Hub, Pty, Ringbuf, Socket};
use chardevd::commands::{Device, DeviceAdd};
use chardevd::{ChardevSpec, Config, Handle};
use std::io::{BufRead, Write};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handle = Handle::start(Config {
        chardevs: vec![
            ChardevSpec::new("ttyS0", ChardevBackend::new(Pty::default())),
            ChardevSpec::new("net", ChardevBackend::new(Socket::tcp_server("127.0.0.1", 0))),
            ChardevSpec::new("history", ChardevBackend::new(Ringbuf { size: Some(64 << 10) })),
            ChardevSpec::new(
                "console",
                ChardevBackend::new(Hub {
                    chardevs: vec!["net".into(), "history".into()],
                }),
            ),
        ],
        devices: vec![DeviceAdd {
            id: Some("serial-console".into()),
            device: Device::Bridge {
                chardev: "ttyS0".into(),
                peer: "console".into(),
            },
        }],
        ..Config::default()
    })
    .await?;
    let rows = handle.query_chardev().await?;
    let filename = |id: &str| rows.iter().find(|r| r.label == id).map(|r| r.filename.clone());
    let pts = filename("ttyS0").and_then(|f| f.strip_prefix("pty:").map(str::to_owned));
    let pts = pts.ok_or("the pty's path")?;
    let net = filename("net").ok_or("the console's address")?;
    let port: u16 = net
        .rsplit(':')
        .next()
        .and_then(|p| p.split(',').next())
        .ok_or("a port")?
        .parse()?;
    println!("VM serial on {pts}; operators connect to 127.0.0.1:{port} (plain TCP)");

    // The VM boots while nobody watches.
    let vm = std::thread::spawn(move || -> std::io::Result<String> {
        let tty = std::fs::OpenOptions::new().read(true).write(true).open(&pts)?;
        let mut out = tty.try_clone()?;
        out.write_all(b"[    0.000000] Linux version 6.12 (vm)\r\n[    1.024000] systemd[1]: Started Serial Getty on ttyS0.\r\nvm login: ")?;
        let mut input = std::io::BufReader::new(tty);
        let mut name = String::new();
        input.read_line(&mut name)?;
        let name = name.trim().to_owned();
        out.write_all(format!("\r\nWelcome to vm, {name}!\r\n").as_bytes())?;
        Ok(name)
    });

    // The history keeps the boot log, though no operator was connected.
    let mut history = String::new();
    while !history.ends_with("vm login: ") {
        history += &handle.ringbuf_read_text("history", 4096).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "--- history, for a late operator ---\n{}\n---",
        history.replace('\r', "")
    );

    // An operator connects and logs in.
    let op = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (rd, mut wr) = op.into_split();
    // The hub opens its inputs once it has a frontend: wait until the
    // operator's connection shows in the console's filename.
    while !handle
        .query_chardev()
        .await?
        .iter()
        .any(|r| r.label == "net" && r.filename.contains("<->"))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wr.write_all(b"root\n").await?;
    let mut rd = tokio::io::BufReader::new(rd);
    let mut line = String::new();
    while !line.contains("Welcome") {
        line.clear();
        rd.read_line(&mut line).await?;
    }
    println!("operator sees: {}", line.trim());
    let name = vm.join().map_err(|_| "the VM thread")??;
    assert_eq!(name, "root");
    assert!(line.contains("Welcome to vm, root!"));
    // The history has the rest of the session too (the hub writes it there
    // as it writes it to the operator).
    let mut rest = String::new();
    for _ in 0..500 {
        rest += &handle.ringbuf_read_text("history", 4096).await?;
        if rest.contains("Welcome to vm, root!") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rest.contains("Welcome to vm, root!"), "{rest:?}");
    handle.quit().await?;
    handle.wait().await;
    Ok(())
}
