//! Built-in frontends, created with `device_add` / `-device`:
//! - `echo` (`driver=echo,id=ID,chardev=CHR`): writes back every byte it
//!   receives; open from the start, like a QEMU device that sets handlers.
//! - `port` (`driver=port,id=ID,chardev=CHR`): a virtio-serial-like port; its
//!   guest side is opened and closed with `__org.chardevd_port-set-open`, which
//!   drives `frontend-open` and raises `VSERPORT_CHANGE` (QEMU's rate limit
//!   applies). Bytes from the backend are consumed and dropped, as a guest
//!   port that nobody reads would.
use crate::actors::msgs::BackendRoute;
use crate::backends::{FrontendEvent, ToBackend};
use actix::prelude::*;
use tokio::sync::mpsc;

/// Driver names, as `device_add` spells them.
pub const DRIVERS: &[&str] = &["echo", "port"];

/// The static name of a driver, if it exists.
pub fn driver(name: &str) -> Option<&'static str> {
    DRIVERS.iter().copied().find(|d| *d == name)
}

/// Whether a driver's frontend is open as soon as it attaches.
pub fn opens_at_start(driver: &str) -> bool {
    driver == "echo"
}

/// Stop a device (sent by the supervisor on `device_del`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopDevice;

/// A built-in device actor.
#[derive(Debug)]
pub struct DeviceActor {
    driver: &'static str,
    id: String,
    chardev: String,
    route: BackendRoute,
    events: Option<mpsc::Receiver<FrontendEvent>>,
}

impl DeviceActor {
    /// A device attached to `chardev`, writing through `route` and reading `events`.
    pub fn new(
        driver: &'static str,
        id: String,
        chardev: String,
        route: BackendRoute,
        events: mpsc::Receiver<FrontendEvent>,
    ) -> Self {
        DeviceActor {
            driver,
            id,
            chardev,
            route,
            events: Some(events),
        }
    }
}

impl Actor for DeviceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(mut events) = self.events.take() else {
            return;
        };
        let route = self.route.clone();
        let echo = self.driver == "echo";
        let (id, chardev) = (self.id.clone(), self.chardev.clone());
        let pump = async move {
            while let Some(ev) = events.recv().await {
                match ev {
                    FrontendEvent::Data(bytes) if echo => {
                        let backend = match route.read() {
                            Ok(r) => r.clone(),
                            Err(p) => p.into_inner().clone(),
                        };
                        if backend.send(ToBackend::Write(bytes)).await.is_err() {
                            tracing::debug!(device = %id, chardev = %chardev, "echo target gone");
                        }
                    }
                    other => tracing::trace!(device = %id, event = ?other, "frontend event"),
                }
            }
        };
        ctx.spawn(pump.into_actor(self));
    }
}

impl Handler<StopDevice> for DeviceActor {
    type Result = ();

    fn handle(&mut self, _msg: StopDevice, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
