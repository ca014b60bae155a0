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
use super::{pump, Driver, Pumped};
use crate::actors::StopDevice;
use crate::api::Frontend;
use actix::prelude::*;

/// The `bridge` driver.
pub const DRIVER: Driver = Driver {
    name: "bridge",
    chardev_props: &["chardev", "peer"],
    opens_at_start: true,
    start,
};

fn start(arbiter: &ArbiterHandle, id: String, frontends: Vec<Frontend>) -> Recipient<StopDevice> {
    Bridge::start_in_arbiter(arbiter, move |ctx| {
        let mut f = frontends.into_iter();
        if let (Some(a), Some(b)) = (f.next(), f.next()) {
            let (a_in, a_out, a_events) = a.split();
            let (b_in, b_out, b_events) = b.split();
            super::log_events(ctx, a_events, id.clone());
            super::log_events(ctx, b_events, id.clone());
            for (dir, pumping) in [
                ("chardev->peer", Box::pin(pump(a_in, b_out))),
                ("peer->chardev", Box::pin(pump(b_in, a_out))),
            ] {
                let id = id.clone();
                // A side let go (device_del, or a chardev gone): the bridge
                // ends. Both inputs ended (the system stops): the bridge
                // ends once it passed on everything it read.
                ctx.spawn(
                    fut::wrap_future::<_, Bridge>(pumping).map(move |how, act: &mut Bridge, ctx| {
                        tracing::debug!(device = %id, dir, ?how, "bridge direction ended");
                        act.ended += 1;
                        if how == Pumped::OutputGone || act.ended == 2 {
                            ctx.stop();
                        }
                    }),
                );
            }
        }
        Bridge { id, ended: 0 }
    })
    .recipient()
}

/// The bridge device.
#[derive(Debug)]
pub struct Bridge {
    id: String,
    /// Directions that ended.
    ended: u8,
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
