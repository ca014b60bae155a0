//! Running chardevd: the start-up description ([`Config`]), and the
//! [`Handle`] that drives a running system.
//!
//! actix cannot start inside an existing tokio runtime, so a system runs
//! on threads of its own (its `System`, and the arbiter pool); the handle's
//! methods work from any thread and any async runtime. Every command has a
//! typed method (named after the command, in `crate::commands`), run through
//! the same executor as QMP: the same checks, the same errors.
//!
//! ```
//! use chardevd::backends::{ChardevBackend, Ringbuf};
//! use chardevd::{ChardevSpec, Config, Handle};
//! # fn main() -> Result<(), chardevd::error::Error> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! let cfg = Config {
//!     chardevs: vec![ChardevSpec::new("log0", ChardevBackend::new(Ringbuf { size: Some(1024) }))],
//!     ..Config::default()
//! };
//! let handle = Handle::start(cfg).await?; // its own threads; nothing blocks here
//! handle.ringbuf_write("log0", b"hello").await?;
//! assert_eq!(handle.ringbuf_read_text("log0", 100).await?, "hello");
//! handle.quit().await?;
//! handle.wait().await; // the system's threads are gone
//! assert!(handle.query_chardev().await.is_err(), "a stopped system answers nothing");
//! # Ok(()) })
//! # }
//! ```
use crate::actors::pool::{self, Pool};
use crate::actors::Supervisor;
use crate::api::execute::Executor;
use crate::api::Frontend;
use crate::backends::{mux::Mux, ChardevBackend};
use crate::chardev::PortConfig;
use crate::commands::{ChardevAdd, DeviceAdd, MonitorAdd, ObjectAdd, Request};
use crate::error::Error;
use crate::events::{Event, EventStream, ShutdownReason};
use crate::limits::Limits;
use crate::qmp::listener::{self, QmpAddr, Serve};
use crate::qmp::output::Budget;
use crate::registry::{AttachReject, Holder};
use actix::prelude::*;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{oneshot, watch};

/// A chardev to create at start (`-chardev`).
#[derive(Debug)]
pub struct ChardevSpec {
    /// The chardev's id (with `mux`, the mux's; its base is `ID-base`).
    pub id: String,
    /// What it is connected to, and its log file.
    pub backend: ChardevBackend,
    /// QEMU's `mux=on`: the backend is created as `ID-base`, and a mux `ID`
    /// over it (so a console and a monitor can share it).
    pub mux: bool,
}

impl ChardevSpec {
    /// Chardev `id` with `backend`.
    pub fn new(id: impl Into<String>, backend: ChardevBackend) -> ChardevSpec {
        ChardevSpec {
            id: id.into(),
            backend,
            mux: false,
        }
    }

    /// The same, behind a mux (QEMU's `mux=on`).
    pub fn muxed(mut self) -> ChardevSpec {
        self.mux = true;
        self
    }
}

/// What a system starts with: everything the daemon's command line can say.
/// Items are created in QEMU's order (objects, chardevs, monitors, devices),
/// then the QMP listeners start; the first failure stops the start
/// ([`Error::Startup`] names the item).
#[derive(Debug, Default)]
pub struct Config {
    /// Objects (TLS credentials, authorization lists): `-object`.
    pub objects: Vec<ObjectAdd>,
    /// Chardevs, in order: `-chardev`.
    pub chardevs: Vec<ChardevSpec>,
    /// QMP monitors on chardevs: `-mon chardev=ID,mode=control`.
    pub monitors: Vec<MonitorAdd>,
    /// Built-in devices: `-device`.
    pub devices: Vec<DeviceAdd>,
    /// QMP listeners: `-qmp unix:PATH,server=on`, `-qmp tcp:HOST:PORT,server=on`.
    pub qmp: Vec<QmpAddr>,
    /// Bounds of QMP sessions.
    pub limits: Limits,
    /// Threads for chardevs and sessions; 0: one per available core.
    pub threads: usize,
    /// A mux's `C-a x` and a testdev's `q` stop the system, as in QEMU
    /// (`--allow-exit`); otherwise they raise `__org.chardevd_EXIT_REQUEST`
    /// and are logged.
    pub allow_exit: bool,
    /// The mux escape character (QEMU's `-echr`; default `C-a`).
    pub escape_char: Option<u8>,
    /// The web console (`--web`; off by default), started after the QMP
    /// listeners.
    #[cfg(feature = "web")]
    pub web: Option<crate::web::WebConfig>,
}

pub use crate::error::ConfigItem;

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
    /// True once the system's threads are gone.
    ended: watch::Receiver<bool>,
    listeners: Mutex<Vec<Running>>,
    serve: Serve,
    exit_status: Arc<AtomicI32>,
}

/// A QMP listener that runs, and how to stop it.
#[derive(Debug)]
struct Running {
    addr: QmpAddr,
    stop: Option<oneshot::Sender<()>>,
    /// The web console's (not a QMP listener).
    web: bool,
}

type Ready = Result<(Serve, System), Error>;

/// A system's thread, the flag that says it ended, and where a testdev's
/// exit status goes.
type Launched = (JoinHandle<()>, watch::Receiver<bool>, Arc<AtomicI32>);

impl Handle {
    /// Start a system on threads of its own and wait (without blocking the
    /// caller's thread) until everything in `cfg` exists.
    pub async fn start(cfg: Config) -> Result<Handle, Error> {
        let (tx, rx) = oneshot::channel();
        let ready = Box::new(move |r| tx.send(r).is_ok());
        let (thread, ended, status) = launch(cfg.threads, cfg.allow_exit, cfg.escape_char, cfg.limits, ready)?;
        let ready = rx
            .await
            .unwrap_or_else(|_| Err(Error::Spawn("its thread ended".into())));
        let handle = Handle::finish(ready, thread, ended, status)?;
        if let Err(e) = handle.setup(cfg).await {
            handle.shutdown();
            handle.wait().await;
            return Err(e);
        }
        Ok(handle)
    }

    fn finish(
        ready: Ready,
        thread: JoinHandle<()>,
        ended: watch::Receiver<bool>,
        exit_status: Arc<AtomicI32>,
    ) -> Result<Handle, Error> {
        let (serve, system) = match ready {
            Ok(r) => r,
            Err(e) => {
                let _ = thread.join();
                return Err(e);
            }
        };
        Ok(Handle {
            exec: serve.exec.clone(),
            system,
            inner: Arc::new(Inner {
                thread: Mutex::new(Some(thread)),
                ended,
                listeners: Mutex::new(Vec::new()),
                serve,
                exit_status,
            }),
        })
    }

    /// Create what `cfg` says, in QEMU's order.
    async fn setup(&self, cfg: Config) -> Result<(), Error> {
        let at = |item| {
            move |e: Error| Error::Startup {
                item,
                source: Box::new(e),
            }
        };
        for (i, o) in cfg.objects.into_iter().enumerate() {
            self.run(o).await.map_err(at(ConfigItem::Object(i)))?;
        }
        // The chardevs a device joins run on one thread (a mux's base
        // stands for it: the mux runs where its base runs).
        let muxed: Vec<&str> = cfg.chardevs.iter().filter(|c| c.mux).map(|c| c.id.as_str()).collect();
        let groups: Vec<Vec<String>> = cfg
            .devices
            .iter()
            .map(|d| d.device.chardevs())
            .filter(|g| g.len() > 1)
            .map(|g| {
                g.into_iter()
                    .map(|c| {
                        if muxed.contains(&c.as_str()) {
                            format!("{c}-base")
                        } else {
                            c
                        }
                    })
                    .collect()
            })
            .collect();
        if !groups.is_empty() {
            self.exec.with(move |sup, _| sup.together.extend(groups)).await?;
        }
        for (i, c) in cfg.chardevs.into_iter().enumerate() {
            let id = if c.mux { format!("{}-base", c.id) } else { c.id.clone() };
            let ret = self
                .run(ChardevAdd {
                    id: id.clone(),
                    backend: c.backend,
                })
                .await
                .map_err(at(ConfigItem::Chardev(i)))?;
            if c.mux {
                let mux = ChardevBackend::new(Mux::over(id));
                self.run(ChardevAdd {
                    id: c.id.clone(),
                    backend: mux,
                })
                .await
                .map_err(at(ConfigItem::Chardev(i)))?;
            }
            if let Some(pty) = ret.pty {
                // QEMU's line for a command-line pty, printed whatever the
                // log level by a daemon that shows notices.
                tracing::info!(target: "chardevd::notice", bare = true, "char device redirected to {pty} (label {})", c.id);
            }
        }
        for (i, m) in cfg.monitors.into_iter().enumerate() {
            self.run(m).await.map_err(at(ConfigItem::Monitor(i)))?;
        }
        for (i, d) in cfg.devices.into_iter().enumerate() {
            self.run(d).await.map_err(at(ConfigItem::Device(i)))?;
        }
        for (i, addr) in cfg.qmp.into_iter().enumerate() {
            self.listen(addr).await.map_err(at(ConfigItem::Qmp(i)))?;
        }
        #[cfg(feature = "web")]
        if let Some(web) = cfg.web {
            self.web(web).await.map_err(at(ConfigItem::Web))?;
        }
        Ok(())
    }

    /// Run any command (see `crate::commands`); each also has a typed
    /// method named after it.
    pub async fn run<R: Request>(&self, cmd: R) -> Result<R::Output, Error> {
        cmd.execute(&self.exec).await
    }

    pub(crate) fn executor(&self) -> &Executor {
        &self.exec
    }

    /// Whether the system still runs (it stops on [`Handle::shutdown`],
    /// [`Handle::quit`], QMP `quit`, or an allowed exit request).
    pub fn is_running(&self) -> bool {
        self.exec.is_running()
    }

    /// Make every chardev log file open its path again before its next
    /// write (the daemon does this on SIGHUP, for logrotate's `create`
    /// mode). Logs of every system in the process are reopened.
    pub fn reopen_logs(&self) {
        crate::chardev::logfile::reopen_all();
    }

    /// Whether the system's threads have ended (a system that is stopping
    /// is no longer running, but may still be writing what was queued).
    pub fn has_ended(&self) -> bool {
        *self.inner.ended.borrow()
    }

    /// Start a QMP listener (many sessions at once); returns the address
    /// bound (the real port for port 0). It runs until
    /// [`Handle::close_listener`] or the system stops.
    pub async fn listen(&self, addr: QmpAddr) -> Result<QmpAddr, Error> {
        let serve = self.inner.serve.clone();
        self.keep_listening(false, async move { listener::bind(&addr, serve).await })
            .await
    }

    /// Bind a listener on the system's arbiter and serve until
    /// [`Handle::close_listener`] or the system stops (a handle dropped
    /// does not stop it); returns the bound address.
    async fn keep_listening(
        &self,
        web: bool,
        bind: impl std::future::Future<Output = Result<crate::net::Listener, Error>> + Send + 'static,
    ) -> Result<QmpAddr, Error> {
        let (tx, rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        self.system.arbiter().spawn(async move {
            match bind.await {
                Ok(l) => {
                    tracing::debug!(addr = %l.addr, web, "listening");
                    let _ = tx.send(Ok(l.addr.clone()));
                    if stopped.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    drop(l);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let bound = rx.await.map_err(|_| Error::ShuttingDown)??;
        if let Ok(mut l) = self.inner.listeners.lock() {
            l.push(Running {
                addr: bound.clone(),
                stop: Some(stop),
                web,
            });
        }
        Ok(bound)
    }

    /// Start the web console (see `--web`): an HTTP listener with the
    /// chardev list, a terminal on each console, and `/metrics`. Returns
    /// the bound address (the real port for port 0); stopped with
    /// [`Handle::close_listener`] or with the system.
    #[cfg(feature = "web")]
    pub async fn web(&self, cfg: crate::web::WebConfig) -> Result<QmpAddr, Error> {
        let (exec, pool) = (self.exec.clone(), self.inner.serve.pool.clone());
        self.keep_listening(true, crate::web::bind(cfg, exec, pool)).await
    }

    /// Stop one QMP listener (its sessions go on; a unix socket's file is
    /// removed). False if no listener has that address.
    pub fn close_listener(&self, addr: &QmpAddr) -> bool {
        let Ok(mut l) = self.inner.listeners.lock() else {
            return false;
        };
        match l.iter().position(|r| &r.addr == addr) {
            Some(i) => {
                if let Some(stop) = l.remove(i).stop.take() {
                    let _ = stop.send(());
                }
                true
            }
            None => false,
        }
    }

    /// The QMP listeners' bound addresses (real ports for `:0`).
    pub fn listeners(&self) -> Vec<QmpAddr> {
        self.inner
            .listeners
            .lock()
            .map(|l| l.iter().filter(|r| !r.web).map(|r| r.addr.clone()).collect())
            .unwrap_or_default()
    }

    /// Where the web console listens (see [`Config::web`]).
    #[cfg(feature = "web")]
    pub fn web_addr(&self) -> Option<QmpAddr> {
        self.inner
            .listeners
            .lock()
            .ok()
            .and_then(|l| l.iter().find(|r| r.web).map(|r| r.addr.clone()))
    }

    /// The exit status a testdev's `q` asked for, once it stopped the
    /// system (only with [`Config::allow_exit`]).
    pub fn exit_status(&self) -> Option<u8> {
        u8::try_from(self.inner.exit_status.load(Ordering::SeqCst)).ok()
    }

    /// Attach a frontend (your device model) to a chardev. Its
    /// `frontend-open` starts false ([`Frontend::set_open`]); it is told
    /// OPENED at once if the backend is open.
    pub async fn attach(&self, chardev: &str) -> Result<Frontend, Error> {
        self.attach_with(chardev, PortConfig::default()).await
    }

    /// Attach a frontend with its own bounds (see [`PortConfig`]).
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

    /// Stop the system now, without QEMU's SHUTDOWN event (listeners close,
    /// their socket files are removed). See [`Handle::wait`].
    pub fn shutdown(&self) {
        self.system.stop();
    }

    /// Wait, without blocking the thread, until the system's threads are
    /// gone (after [`Handle::shutdown`], [`Handle::quit`] or QMP `quit`).
    pub async fn wait(&self) {
        let mut ended = self.inner.ended.clone();
        let _ = ended.wait_for(|e| *e).await;
        self.join();
    }

    /// [`Handle::wait`], blocking the calling thread (for code with no async
    /// runtime; in async code, await `wait`).
    pub fn join(&self) {
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
            // A listener's socket file goes with it (also when the system
            // stopped before its task could remove it).
            for addr in self.listeners() {
                if let QmpAddr::Unix { path, .. } = addr {
                    crate::net::remove_socket_file(&path);
                }
            }
        }
    }
}

/// Start a system, blocking the calling thread until everything in `cfg`
/// exists (for code with no async runtime: `main`, tests). In async code,
/// use [`Handle::start`].
pub fn spawn(cfg: Config) -> Result<Handle, Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = Box::new(move |r| tx.send(r).is_ok());
    let (thread, ended, status) = launch(cfg.threads, cfg.allow_exit, cfg.escape_char, cfg.limits, ready)?;
    let ready = rx
        .recv()
        .unwrap_or_else(|_| Err(Error::Spawn("its thread ended".into())));
    let handle = Handle::finish(ready, thread, ended, status)?;
    // The rest of the start runs on the system's own arbiter.
    let (done, result) = std::sync::mpsc::channel();
    let h = handle.clone();
    handle.system.arbiter().spawn(async move {
        let _ = done.send(h.setup(cfg).await);
    });
    match result.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            handle.shutdown();
            handle.join();
            Err(e)
        }
        Err(_) => {
            handle.join();
            Err(Error::ShuttingDown)
        }
    }
}

/// Start the system's thread; `ready` gets its supervisor (through the
/// listeners' `Serve`) once it runs.
fn launch(
    threads: usize,
    allow_exit: bool,
    escape_char: Option<u8>,
    limits: Limits,
    ready: Box<dyn FnOnce(Ready) -> bool + Send>,
) -> Result<Launched, Error> {
    let exit_status = Arc::new(AtomicI32::new(-1));
    let status = exit_status.clone();
    let (ended_tx, ended) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("chardevd".into())
        .spawn(move || {
            let sys = System::new();
            let serve = sys.block_on(async move {
                let n = if threads == 0 { pool::default_size() } else { threads };
                let pool = Pool::new(n);
                let objects = crate::objects::Objects::new();
                let supervisor = Supervisor::new(pool.clone(), objects.clone())
                    .limits(limits)
                    .allow_exit(allow_exit)
                    .escape_char(escape_char.unwrap_or(crate::backends::mux::ESCAPE_CHAR))
                    .exit_status(status);
                let directory = supervisor.directory();
                let supervisor = supervisor.start();
                let global = Budget::new(limits.global_output_bytes);
                let input = crate::json::framer::InputBudget::new(limits.total_input);
                let monitors = Arc::new(crate::qmp::monitor::Starter::new(limits, global.clone(), input.clone()));
                Serve {
                    exec: Executor::new(supervisor, directory, objects, limits).with_monitors(monitors),
                    pool,
                    limits,
                    global,
                    fds: crate::qmp::fds::FdBudget::new(limits.total_fds, limits.session_fds),
                    input,
                }
            });
            let pool = serve.pool.clone();
            if ready(Ok((serve, System::current()))) {
                let _ = sys.run();
            }
            pool.stop();
            // A stdio chardev's terminal goes back as it was.
            crate::backends::stdio::restore_terminal();
            let _ = ended_tx.send(true);
        })
        .map_err(|e| Error::Spawn(e.to_string()))?;
    Ok((thread, ended, exit_status))
}
