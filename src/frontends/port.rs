//! `port`: a virtio-serial-like port. Its guest side is opened and closed
//! with `__org.chardevd_port-set-open` (the supervisor sets `frontend-open`
//! and raises `VSERPORT_CHANGE`); bytes from the backend are read and
//! dropped, as a guest port that nobody reads would.
use super::Driver;
use crate::actors::StopDevice;
use crate::api::Frontend;
use actix::prelude::*;
use futures_util::StreamExt;

/// The `port` driver.
pub const DRIVER: Driver = Driver {
    name: "port",
    chardev_props: &["chardev"],
    opens_at_start: false,
    start,
};

fn start(arbiter: &ArbiterHandle, id: String, mut frontends: Vec<Frontend>) -> Recipient<StopDevice> {
    let fe = frontends.pop();
    VirtPort::start_in_arbiter(arbiter, move |ctx| {
        if let Some(fe) = fe {
            let (reader, writer, events) = fe.split();
            super::log_events(ctx, events, id.clone());
            let drain = async move {
                let _writer = writer;
                reader.for_each(|_| async {}).await;
            };
            ctx.spawn(fut::wrap_future::<_, VirtPort>(drain).map(|_, _, ctx| ctx.stop()));
        }
        VirtPort { id }
    })
    .recipient()
}

/// The port device.
#[derive(Debug)]
pub struct VirtPort {
    id: String,
}

impl Actor for VirtPort {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        tracing::debug!(device = %self.id, "port stopped");
    }
}

impl Handler<StopDevice> for VirtPort {
    type Result = ();

    fn handle(&mut self, _msg: StopDevice, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
