//! `echo`: writes back every byte it receives, with backpressure (while its
//! chardev does not take the echo, it reads nothing more).
use super::{pump, Driver};
use crate::actors::StopDevice;
use crate::api::Frontend;
use actix::prelude::*;

/// The `echo` driver.
pub const DRIVER: Driver = Driver {
    name: "echo",
    chardev_props: &["chardev"],
    opens_at_start: true,
    start,
};

fn start(arbiter: &ArbiterHandle, id: String, mut frontends: Vec<Frontend>) -> Recipient<StopDevice> {
    let fe = frontends.pop();
    Echo::start_in_arbiter(arbiter, move |ctx| {
        if let Some(fe) = fe {
            let (reader, writer, events) = fe.split();
            super::log_events(ctx, events, id.clone());
            // Its chardev let it go (or the system stops): the device ends.
            ctx.spawn(fut::wrap_future::<_, Echo>(pump(reader, writer)).map(|_, _, ctx| ctx.stop()));
        }
        Echo { id }
    })
    .recipient()
}

/// The echo device.
#[derive(Debug)]
pub struct Echo {
    id: String,
}

impl Actor for Echo {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        tracing::debug!(device = %self.id, "echo stopped");
    }
}

impl Handler<StopDevice> for Echo {
    type Result = ();

    fn handle(&mut self, _msg: StopDevice, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
