//! `bridge` (`driver=bridge,id=ID,chardev=CHR,peer=CHR2`): joins two
//! chardevs both ways, as ser2net joins a serial line and a network port:
//! what one chardev's outside world sends, the other's outside world gets.
//!
//! Each direction is its own pump, with backpressure: while `peer` does not
//! take what came from `chardev`, the bridge reads nothing more from
//! `chardev` (and so `chardev` stops reading its outside world), and the
//! other direction goes on. Nothing is dropped by the bridge; what a
//! chardev drops by its own rules (a socket server with no client) is
//! dropped there. Breaks and open/close events are logged, not forwarded
//! (a frontend cannot raise them on a chardev).
use super::{Driver, StopDevice};
use crate::chardev::port::PortHandle;
use crate::chardev::{FrontendEvent, Port};
use actix::prelude::*;

/// The `bridge` driver.
pub const DRIVER: Driver = Driver {
    name: "bridge",
    chardev_props: &["chardev", "peer"],
    opens_at_start: true,
    start,
};

fn start(arbiter: &ArbiterHandle, id: String, ports: Vec<Port>) -> Recipient<StopDevice> {
    Bridge::start_in_arbiter(arbiter, move |ctx| {
        if let [a, b] = &ports[..] {
            for (from, to, dir) in [
                (a.handle(), b.handle(), "chardev->peer"),
                (b.handle(), a.handle(), "peer->chardev"),
            ] {
                let pumping = fut::wrap_future::<_, Bridge>(pump(from, to, id.clone(), dir));
                // Either side detached (device_del, or a chardev gone): the bridge ends.
                ctx.spawn(pumping.map(|_, _, ctx| ctx.stop()));
            }
        }
        Bridge { id, _ports: ports }
    })
    .recipient()
}

/// Copy data from one port into the other until either is detached.
async fn pump(from: PortHandle, to: PortHandle, id: String, dir: &'static str) {
    while let Some(ev) = from.recv().await {
        match ev {
            FrontendEvent::Data(b) => {
                if to.write(b).await.is_err() {
                    break;
                }
            }
            other => tracing::debug!(device = %id, dir, event = ?other, "bridge event"),
        }
    }
    tracing::debug!(device = %id, dir, "bridge direction ended");
}

/// The bridge device.
#[derive(Debug)]
pub struct Bridge {
    id: String,
    _ports: Vec<Port>,
}

impl Actor for Bridge {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        tracing::debug!(device = %self.id, "bridge stopped");
    }
}

impl Handler<StopDevice> for Bridge {
    type Result = ();

    fn handle(&mut self, _msg: StopDevice, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
