//! A VMM-style service embedding chardevd: a 16550 UART model (rust-vmm's
//! `vm-superio`, as Firecracker and Cloud Hypervisor use it) is the frontend
//! of a console socket chardev; a "guest" program drives the UART's
//! registers; an operator connects to the socket and logs in.
//!
//! The UART is a chardevd frontend like any device model: its output
//! (`vm_superio::Serial`'s `Write`) goes into the frontend's writer without
//! blocking the guest (partial accept), and what the operator types comes
//! from the frontend's reader into the UART's 64-byte FIFO, no faster than
//! the guest reads it (the chardev stops reading the socket meanwhile).
//!
//! Run: `cargo run --example uart` (it prints the session and exits 0).
use bytes::Bytes;
use chardevd::backends::{ChardevBackend, Socket};
use chardevd::frontend::{ChardevEvent, FrontendWriter};
use chardevd::{ChardevSpec, Config, Handle};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;
use vm_superio::{Serial, Trigger};

/// The UART's register offsets (from its I/O base) that the guest uses.
const DATA: u8 = 0;
const LSR: u8 = 5;
/// LSR: a received byte is ready.
const LSR_DATA_READY: u8 = 0x01;

/// The UART's interrupt line: wakes the guest (a real VMM would inject an
/// IRQ through KVM).
#[derive(Clone, Default)]
struct Irq(Arc<Notify>);

impl Trigger for Irq {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.notify_one();
        Ok(())
    }
}

/// The UART's output, into chardevd: never blocks the guest. If chardevd's
/// queue for this frontend were full, the byte would be lost and counted
/// by the UART (as on real hardware that the driver does not pace).
struct ToChardev(FrontendWriter);

impl std::io::Write for ToChardev {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.try_write(buf) {
            Ok(0) if !buf.is_empty() => Err(std::io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(e) => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, e)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Uart = Arc<Mutex<Serial<Irq, vm_superio::serial::NoEvents, ToChardev>>>;

/// The guest: prints its banner and a login prompt through the data
/// register, then reads a line (polling LSR when its interrupt fires) and
/// greets whoever logged in.
async fn guest(uart: Uart, irq: Irq) {
    let out = |text: &str| {
        let mut u = uart.lock().unwrap();
        for b in text.bytes() {
            u.write(DATA, b).unwrap();
        }
    };
    out("Linux version 6.12 (guest) on a 16550A at 0x3f8\r\nexample login: ");
    let mut line = Vec::new();
    loop {
        irq.0.notified().await;
        loop {
            let mut u = uart.lock().unwrap();
            if u.read(LSR) & LSR_DATA_READY == 0 {
                break;
            }
            let b = u.read(DATA);
            drop(u);
            if b == b'\r' || b == b'\n' {
                let name = String::from_utf8_lossy(&line).into_owned();
                out(&format!("\r\nWelcome, {name}.\r\n"));
                return;
            }
            out(std::str::from_utf8(&[b]).unwrap_or("?")); // the echo
            line.push(b);
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ttyS0.sock");
    let sock = path.to_str().ok_or("a path")?;
    // The console socket, with its log file: everything the guest prints.
    let log = dir.path().join("ttyS0.log");
    let console = ChardevBackend::new(Socket::unix_server(sock)).with_log(log.to_str().ok_or("a path")?, false);
    let handle = Handle::start(Config {
        chardevs: vec![ChardevSpec::new("ttyS0", console)],
        ..Config::default()
    })
    .await?;

    // The UART sits on the chardev as its frontend.
    let (mut rx, tx, mut events) = handle.attach("ttyS0").await?.split();
    tx.set_open(true).await?;
    let irq = Irq::default();
    let uart: Uart = Arc::new(Mutex::new(Serial::new(irq.clone(), ToChardev(tx))));

    // What the operator types goes into the UART's FIFO, as fast as the
    // guest empties it.
    let input = {
        let (uart, irq) = (uart.clone(), irq.clone());
        tokio::spawn(async move {
            while let Some(mut chunk) = rx.next().await {
                while !chunk.is_empty() {
                    let taken = uart.lock().unwrap().enqueue_raw_bytes(&chunk).unwrap_or(0);
                    let _ = chunk.split_to(taken);
                    if !chunk.is_empty() {
                        // The FIFO is full: wait for the guest to read some.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                irq.0.notify_one();
            }
        })
    };

    // The operator connects first (a socket chardev with no client drops
    // output, as QEMU's does); the UART is told OPENED.
    let client = tokio::net::UnixStream::connect(&path).await?;
    while events.next().await != Some(ChardevEvent::Opened) {}
    let booting = tokio::spawn(guest(uart.clone(), irq));

    let (rd, mut wr) = client.into_split();
    let mut rd = BufReader::new(rd);
    let mut screen = Vec::new();
    // Read until the login prompt, then log in.
    while !screen.ends_with(b"login: ") {
        let mut b = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut rd, &mut b).await?;
        screen.push(b[0]);
    }
    wr.write_all(b"root\r").await?;
    let mut line = String::new();
    while !line.starts_with("Welcome") {
        line.clear();
        rd.read_line(&mut line).await?;
        screen.extend_from_slice(line.as_bytes());
    }
    booting.await?;
    print!("{}", String::from_utf8_lossy(&screen));
    assert!(line.starts_with("Welcome, root."), "{line:?}");

    // chardevd logged every byte the guest wrote.
    handle.quit().await?;
    handle.wait().await;
    input.abort();
    let logged = std::fs::read(&log)?;
    assert!(logged.ends_with(b"Welcome, root.\r\n"), "{:?}", Bytes::from(logged));
    println!("(the console log has {} bytes)", std::fs::metadata(&log)?.len());
    Ok(())
}
