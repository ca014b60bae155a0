//! Embedding: run the actor system on its own threads and drive it through a
//! cloneable, `Send` [`Handle`] with typed async methods.
//!
//! actix cannot start inside an existing tokio runtime, so [`spawn`] starts a
//! dedicated thread with its own `System` (and the arbiter pool's threads).
//! The handle's methods work from any thread and any async runtime; they run
//! through the same executor as QMP, so they check and fail exactly as QMP
//! does, with the typed [`Error`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chardevd::backends::{ringbuf::Ringbuf, ChardevBackend};
//! let handle = chardevd::runtime::spawn(chardevd::runtime::Config::default())?;
//! handle.chardev_add("log0", ChardevBackend::new(Ringbuf { size: Some(1024) })).await?;
//! let fe = handle.attach("log0").await?;
//! fe.write(bytes::Bytes::from_static(b"hello")).await?;
//! assert_eq!(handle.ringbuf_read_text("log0", 100).await?, "hello");
//! handle.shutdown();
//! # Ok(()) }
//! ```
use crate::actors::pool::{self, Pool};
use crate::actors::Supervisor;
use crate::api::execute::Executor;
use crate::api::Frontend;
use crate::backends::ChardevBackend;
use crate::chardev::PortConfig;
use crate::commands::{ChardevAdd, DeviceAdd, ObjectAdd, Request};
use crate::config::DeviceOpt;
use crate::error::Error;
use crate::events::{Event, EventStream, ShutdownReason};
use crate::qmp::listener::{self, Listener, QmpAddr, Serve};
use crate::qmp::output::Budget;
use crate::qmp::session::SessionLimits;
use crate::registry::{AttachReject, Holder};
use actix::prelude::*;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// What to start with.
#[derive(Debug, Default)]
pub struct Config {
    /// Objects (TLS credentials, authorization lists) to create first.
    pub objects: Vec<crate::config::ObjectOpt>,
    /// Chardevs to create at start, in order.
    pub chardevs: Vec<(String, ChardevBackend)>,
    /// Built-in devices to create after the chardevs.
    pub devices: Vec<DeviceOpt>,
    /// QMP listeners.
    pub qmp: Vec<QmpAddr>,
    /// Per-session bounds.
    pub limits: SessionLimits,
    /// Threads (arbiters) for chardevs and sessions; 0: one per available core.
    pub arbiters: usize,
    /// A mux's `C-a x` stops the system (QEMU's behaviour); otherwise it
    /// raises `__org.chardevd_EXIT_REQUEST` and is logged.
    pub allow_exit: bool,
    /// The mux escape character (QEMU's `-echr`; default `C-a`).
    pub escape_char: Option<u8>,
}

/// A running chardevd. Cheap to clone; every clone drives the same system.
#[derive(Debug, Clone)]
pub struct Handle {
    exec: Executor,
    system: System,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    thread: Mutex<Option<JoinHandle<()>>>,
    listeners: Mutex<Vec<QmpAddr>>,
    serve: Serve,
    exit_status: Arc<std::sync::atomic::AtomicI32>,
}

/// Start chardevd on new threads. Fails if a chardev, device or listener of
/// `cfg` cannot be created (the text says which and why).
pub fn spawn(cfg: Config) -> io::Result<Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let exit_status = Arc::new(std::sync::atomic::AtomicI32::new(-1));
    let status = exit_status.clone();
    let thread = std::thread::Builder::new().name("chardevd".into()).spawn(move || {
        let sys = System::new();
        let setup = sys.block_on(async move {
            let n = if cfg.arbiters == 0 {
                pool::default_size()
            } else {
                cfg.arbiters
            };
            let pool = Pool::new(n);
            let objects = crate::objects::Objects::new();
            let supervisor = Supervisor::new(pool.clone(), objects.clone())
                .allow_exit(cfg.allow_exit)
                .escape_char(cfg.escape_char.unwrap_or(crate::backends::mux::ESCAPE_CHAR))
                .exit_status(status);
            let directory = supervisor.directory();
            let supervisor = supervisor.start();
            let global = Budget::new(cfg.limits.global_output_bytes);
            let monitors = Arc::new(crate::qmp::monitor::Starter::new(cfg.limits, global.clone()));
            let serve = Serve {
                exec: Executor::new(supervisor, directory, objects).with_monitors(monitors),
                pool,
                limits: cfg.limits,
                global,
            };
            setup(&serve, cfg).await.map(|listeners| (serve, listeners))
        });
        match setup {
            Ok((serve, listeners)) => {
                let addrs = listeners.iter().map(|l| l.addr.clone()).collect::<Vec<_>>();
                let pool = serve.pool.clone();
                let _ = tx.send(Ok((serve, System::current(), addrs)));
                let _ = sys.run();
                drop(listeners);
                pool.stop();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    })?;
    match rx.recv() {
        Ok(Ok((serve, system, addrs))) => Ok(Handle {
            exec: serve.exec.clone(),
            system,
            inner: Arc::new(Inner {
                thread: Mutex::new(Some(thread)),
                listeners: Mutex::new(addrs),
                serve,
                exit_status,
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

async fn setup(serve: &Serve, cfg: Config) -> io::Result<Vec<Listener>> {
    for o in cfg.objects {
        let props = crate::objects::ObjectProps::from_json(&o.qom_type, &o.props)
            .map_err(|e| io::Error::other(e.to_string()))?;
        crate::commands::run(&serve.exec, ObjectAdd { id: o.id, props })
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    for (id, backend) in cfg.chardevs {
        crate::commands::run(
            &serve.exec,
            ChardevAdd {
                id: id.clone(),
                backend,
            },
        )
        .await
        .map_err(|e| io::Error::other(format!("chardev '{id}': {e}")))?;
    }
    for d in cfg.devices {
        let driver = d.driver.clone();
        let device = crate::frontends::Device::from_props(&d.driver, &d.props)
            .map_err(|e| io::Error::other(format!("device '{driver}': {e}")))?;
        crate::commands::run(&serve.exec, DeviceAdd { id: d.id, device })
            .await
            .map_err(|e| io::Error::other(format!("device '{driver}': {e}")))?;
    }
    let mut listeners = Vec::new();
    for addr in &cfg.qmp {
        let l = listener::bind(addr, serve.clone())
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("-qmp {addr}: {e}")))?;
        tracing::debug!(addr = %l.addr, "QMP listening");
        listeners.push(l);
    }
    Ok(listeners)
}

impl Handle {
    /// The executor (the same one QMP uses).
    pub(crate) fn executor(&self) -> &Executor {
        &self.exec
    }

    /// Run any command (see [`crate::commands`]); each also has a typed
    /// method named after it.
    pub async fn run<R: Request>(&self, cmd: R) -> Result<R::Output, Error> {
        cmd.execute(&self.exec).await
    }

    /// Whether the system still runs (it stops on [`Handle::shutdown`] or QMP `quit`).
    pub fn is_running(&self) -> bool {
        self.exec.is_running()
    }

    /// The QMP listeners' bound addresses (real ports for `:0`).
    pub fn listeners(&self) -> Vec<QmpAddr> {
        self.inner.listeners.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Start another QMP listener; returns its bound address.
    pub async fn listen(&self, addr: QmpAddr) -> io::Result<QmpAddr> {
        let (tx, rx) = oneshot::channel();
        let serve = self.inner.serve.clone();
        self.system.arbiter().spawn(async move {
            match listener::bind(&addr, serve).await {
                Ok(l) => {
                    let _ = tx.send(Ok(l.addr.clone()));
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

    /// The exit status a testdev's `q` asked for, once it stopped the
    /// system (only with [`Config::allow_exit`]).
    pub fn exit_status(&self) -> Option<u8> {
        u8::try_from(self.inner.exit_status.load(std::sync::atomic::Ordering::SeqCst)).ok()
    }

    /// Attach a frontend to a chardev (it starts closed: call `set_open(true)`).
    pub async fn attach(&self, chardev: &str) -> Result<Frontend, Error> {
        self.attach_with(chardev, PortConfig::default()).await
    }

    /// Attach a frontend with its own port bounds.
    pub async fn attach_with(&self, chardev: &str, config: PortConfig) -> Result<Frontend, Error> {
        let id = chardev.to_owned();
        let (holder, port, attached) = self
            .exec
            .with(move |sup, _ctx| {
                let holder = Holder::Library(sup.new_holder());
                match sup.attach(&id, &holder, false, config) {
                    Ok((port, attached)) => Ok((holder, port, attached)),
                    Err(AttachReject::NotFound) => Err(Error::NotFound(id)),
                    Err(AttachReject::Full { max }) => Err(sup.full_error(id, max)),
                }
            })
            .await??;
        let _ = attached.await;
        Ok(Frontend::new(chardev.into(), holder, port, self.exec.clone()))
    }

    /// Subscribe to every event. At most `capacity` unread events are
    /// kept: when more arrive, the oldest are dropped and the stream yields
    /// `Err(Lagged(n))` before the next event (the subscription stays). The
    /// stream ends when the system stops.
    pub async fn events(&self, capacity: usize) -> Result<EventStream, Error> {
        let (stream, sink) = crate::events::event_stream(capacity);
        self.exec.subscribe(Box::new(sink)).await?;
        Ok(stream)
    }

    /// Stop the system as QEMU does on SIGINT or SIGTERM: SHUTDOWN with
    /// reason `host-signal` to every subscriber, which sessions get to send
    /// (bounded), then stop. Returns when the system is stopping.
    pub async fn quit_on_signal(&self) -> Result<(), Error> {
        self.exec
            .emit(Event::Shutdown {
                guest: false,
                reason: ShutdownReason::HostSignal,
            })
            .await?;
        self.exec.stop_system().await
    }

    /// Stop the system (listeners close, their socket files are removed).
    pub fn shutdown(&self) {
        self.system.stop();
    }

    /// Wait for the system threads to end (after [`Handle::shutdown`] or a QMP `quit`).
    pub fn join(&self) {
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}
