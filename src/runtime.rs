//! Embedding: run the actor system on its own thread and drive it through a
//! cloneable, `Send` [`Handle`] with typed async methods.
//!
//! actix cannot start inside an existing tokio runtime, so [`spawn`] starts a
//! dedicated thread with its own `System`. The handle's methods work from any
//! thread and any async runtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chardevd::backends::spec::{ChardevBackend, ChardevRingbuf};
//! let handle = chardevd::runtime::spawn(chardevd::runtime::Config::default())?;
//! let ring = ChardevBackend::Ringbuf(ChardevRingbuf { common: Default::default(), size: Some(1024) });
//! handle.chardev_add("log0", ring).await?;
//! let fe = handle.attach("log0").await?;
//! fe.write(bytes::Bytes::from_static(b"hello")).await?;
//! assert_eq!(handle.ringbuf_read("log0", 100, Default::default()).await?, "hello");
//! handle.shutdown();
//! # Ok(()) }
//! ```
use crate::actors::events::{EventSink, QmpEvent};
use crate::actors::frontend::FrontendHandle;
use crate::actors::msgs::*;
use crate::actors::Supervisor;
use crate::backends::spec::ChardevBackend;
use crate::qmp::command::DataFormat;
use crate::qmp::error::QmpError;
use crate::qmp::listener::{self, Listener, QmpAddr};
use crate::qmp::session::SessionLimits;
use actix::prelude::*;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// What to start with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Chardevs to create at start, in order.
    pub chardevs: Vec<(String, ChardevBackend)>,
    /// Built-in devices to create after the chardevs: (driver, id, properties).
    pub devices: Vec<crate::config::DeviceOpt>,
    /// QMP listeners.
    pub qmp: Vec<QmpAddr>,
    /// Per-session bounds.
    pub limits: SessionLimits,
}

/// A running chardevd. Cheap to clone; every clone drives the same system.
#[derive(Debug, Clone)]
pub struct Handle {
    supervisor: Addr<Supervisor>,
    system: System,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    thread: Mutex<Option<JoinHandle<()>>>,
    listeners: Mutex<Vec<QmpAddr>>,
    limits: SessionLimits,
}

/// Start chardevd on a new thread. Fails if a chardev, device or listener of
/// `cfg` cannot be created (the text says which and why).
pub fn spawn(cfg: Config) -> io::Result<Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let limits = cfg.limits;
    let thread = std::thread::Builder::new().name("chardevd".into()).spawn(move || {
        let sys = System::new();
        let setup = sys.block_on(async move {
            let supervisor = Supervisor::new().start();
            setup(&supervisor, cfg).await.map(|listeners| (supervisor, listeners))
        });
        match setup {
            Ok((supervisor, listeners)) => {
                let addrs = listeners.iter().map(|l| l.addr.clone()).collect::<Vec<_>>();
                let _ = tx.send(Ok((supervisor, System::current(), addrs)));
                let _ = sys.run();
                drop(listeners);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    })?;
    match rx.recv() {
        Ok(Ok((supervisor, system, addrs))) => Ok(Handle {
            supervisor,
            system,
            inner: Arc::new(Inner {
                thread: Mutex::new(Some(thread)),
                listeners: Mutex::new(addrs),
                limits,
            }),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other("chardevd thread died during start-up"))
        }
    }
}

async fn setup(supervisor: &Addr<Supervisor>, cfg: Config) -> io::Result<Vec<Listener>> {
    for (id, backend) in cfg.chardevs {
        let r = supervisor
            .send(AddChardev {
                id: id.clone(),
                backend,
            })
            .await
            .map_err(io::Error::other)?;
        r.map_err(|e| io::Error::other(format!("-chardev id={id}: {e}")))?;
    }
    for d in cfg.devices {
        let r = supervisor
            .send(DeviceAdd {
                driver: d.driver.clone(),
                id: d.id.clone(),
                props: d.props,
            })
            .await
            .map_err(io::Error::other)?;
        r.map_err(|e| io::Error::other(format!("-device {}: {e}", d.driver)))?;
    }
    let mut listeners = Vec::new();
    for addr in &cfg.qmp {
        let l = listener::bind(addr, supervisor.clone(), cfg.limits)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("-qmp {addr}: {e}")))?;
        tracing::info!(addr = %l.addr, "QMP listening");
        listeners.push(l);
    }
    Ok(listeners)
}

fn gone() -> QmpError {
    QmpError::generic("chardevd is not running")
}

impl Handle {
    /// The supervisor's address (for actix code running in the same process).
    pub fn supervisor(&self) -> Addr<Supervisor> {
        self.supervisor.clone()
    }

    /// The QMP listeners' bound addresses (real ports for `:0`).
    pub fn listeners(&self) -> Vec<QmpAddr> {
        self.inner.listeners.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Start another QMP listener; returns its bound address.
    pub async fn listen(&self, addr: QmpAddr) -> io::Result<QmpAddr> {
        let (tx, rx) = oneshot::channel();
        let supervisor = self.supervisor.clone();
        let limits = self.inner.limits;
        self.system.arbiter().spawn(async move {
            match listener::bind(&addr, supervisor, limits).await {
                Ok(l) => {
                    let bound = l.addr.clone();
                    let _ = tx.send(Ok(bound));
                    // Keep the listener alive as long as the system runs.
                    std::future::pending::<()>().await;
                    drop(l);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let bound = rx.await.map_err(|_| io::Error::other("chardevd is not running"))??;
        if let Ok(mut l) = self.inner.listeners.lock() {
            l.push(bound.clone());
        }
        Ok(bound)
    }

    /// `chardev-add`.
    pub async fn chardev_add(&self, id: &str, backend: ChardevBackend) -> Result<ChardevReturn, QmpError> {
        Ok(self
            .supervisor
            .send(AddChardev {
                id: id.to_owned(),
                backend,
            })
            .await
            .map_err(|_| gone())??)
    }

    /// `chardev-change`.
    pub async fn chardev_change(&self, id: &str, backend: ChardevBackend) -> Result<ChardevReturn, QmpError> {
        Ok(self
            .supervisor
            .send(ChangeChardev {
                id: id.to_owned(),
                backend,
            })
            .await
            .map_err(|_| gone())??)
    }

    /// `chardev-remove`.
    pub async fn chardev_remove(&self, id: &str) -> Result<(), QmpError> {
        Ok(self
            .supervisor
            .send(RemoveChardev { id: id.to_owned() })
            .await
            .map_err(|_| gone())??)
    }

    /// `chardev-send-break`.
    pub async fn chardev_send_break(&self, id: &str) -> Result<(), QmpError> {
        Ok(self
            .supervisor
            .send(SendBreak { id: id.to_owned() })
            .await
            .map_err(|_| gone())??)
    }

    /// `query-chardev`.
    pub async fn query_chardev(&self) -> Result<Vec<ChardevInfo>, QmpError> {
        self.supervisor.send(QueryChardev).await.map_err(|_| gone())
    }

    /// `ringbuf-write` with raw bytes.
    pub async fn ringbuf_write(&self, device: &str, data: &[u8]) -> Result<(), QmpError> {
        let msg = RingbufWrite {
            device: device.to_owned(),
            data: data.to_vec(),
        };
        Ok(self.supervisor.send(msg).await.map_err(|_| gone())??)
    }

    /// `ringbuf-read`.
    pub async fn ringbuf_read(&self, device: &str, size: usize, format: DataFormat) -> Result<String, QmpError> {
        if size == 0 {
            return Err(crate::actors::ChardevError::SizeNotPositive.into());
        }
        let msg = RingbufRead {
            device: device.to_owned(),
            size,
            format,
        };
        Ok(self.supervisor.send(msg).await.map_err(|_| gone())??)
    }

    /// Attach a frontend to a chardev (it starts closed: call `set_open(true)`).
    pub async fn attach(&self, chardev: &str) -> Result<FrontendHandle, QmpError> {
        Ok(FrontendHandle::attach(self.supervisor.clone(), chardev, FrontendOwner::Library, false).await?)
    }

    /// Subscribe to every event; `capacity` events may queue before the
    /// subscription is dropped for not keeping up.
    pub async fn events(&self, capacity: usize) -> Result<mpsc::Receiver<Arc<QmpEvent>>, QmpError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.supervisor
            .send(Subscribe(EventSink::Typed(tx)))
            .await
            .map_err(|_| gone())?;
        Ok(rx)
    }

    /// Stop the system (listeners close, their socket files are removed).
    pub fn shutdown(&self) {
        self.system.stop();
    }

    /// Wait for the system thread to end (after [`Handle::shutdown`] or a QMP `quit`).
    pub fn join(&self) {
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}
