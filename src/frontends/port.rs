//! `port`: a virtio-serial-like port. Its guest side is opened and closed
//! with `__org.chardevd_port-set-open` (the supervisor sets `frontend-open`
//! and raises `VSERPORT_CHANGE`); bytes from the backend are read and
//! dropped, as a guest port that nobody reads would.
use super::echo::events;
use super::{Driver, StopDevice};
use crate::chardev::{FrontendEvent, Port};
use actix::prelude::*;

/// The `port` driver.
pub const DRIVER: Driver = Driver {
    name: "port",
    chardev_props: &["chardev"],
    opens_at_start: false,
    start,
};

fn start(arbiter: &ArbiterHandle, id: String, mut ports: Vec<Port>) -> Recipient<StopDevice> {
    let port = ports.pop();
    VirtPort::start_in_arbiter(arbiter, move |ctx| {
        if let Some(p) = &port {
            ctx.add_stream(events(p.handle()));
        }
        VirtPort { id, _port: port }
    })
    .recipient()
}

/// The port device.
#[derive(Debug)]
pub struct VirtPort {
    id: String,
    _port: Option<Port>,
}

impl Actor for VirtPort {
    type Context = Context<Self>;
}

impl StreamHandler<FrontendEvent> for VirtPort {
    fn handle(&mut self, ev: FrontendEvent, _ctx: &mut Context<Self>) {
        tracing::trace!(device = %self.id, event = ?ev, "port event");
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<StopDevice> for VirtPort {
    type Result = ();

    fn handle(&mut self, _msg: StopDevice, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
