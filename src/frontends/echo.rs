//! `echo`: writes back every byte it receives, with backpressure (while its
//! chardev does not take the echo, it reads nothing more).
use super::{Driver, StopDevice};
use crate::chardev::port::PortHandle;
use crate::chardev::{FrontendEvent, Port};
use actix::prelude::*;
use bytes::Bytes;

/// The `echo` driver.
pub const DRIVER: Driver = Driver {
    name: "echo",
    chardev_props: &["chardev"],
    opens_at_start: true,
    start,
};

fn start(arbiter: &ArbiterHandle, id: String, mut ports: Vec<Port>) -> Recipient<StopDevice> {
    let port = ports.pop();
    Echo::start_in_arbiter(arbiter, move |ctx| {
        if let Some(p) = &port {
            ctx.add_stream(events(p.handle()));
        }
        Echo { id, port }
    })
    .recipient()
}

/// A port's events as a stream (for `add_stream`).
pub fn events(p: PortHandle) -> impl futures_util::Stream<Item = FrontendEvent> {
    futures_util::stream::unfold(p, |p| async move { p.recv().await.map(|ev| (ev, p)) })
}

/// The echo device.
#[derive(Debug)]
pub struct Echo {
    id: String,
    port: Option<Port>,
}

impl Actor for Echo {
    type Context = Context<Self>;
}

impl StreamHandler<FrontendEvent> for Echo {
    fn handle(&mut self, ev: FrontendEvent, ctx: &mut Context<Self>) {
        let FrontendEvent::Data(data) = ev else {
            tracing::trace!(device = %self.id, event = ?ev, "frontend event");
            return;
        };
        let Some(port) = &self.port else { return };
        let mut rest: Bytes = data;
        match port.try_write(&rest) {
            Ok(n) if n == rest.len() => {}
            Ok(n) => {
                // Backpressure: read nothing more until the echo is taken.
                let _ = rest.split_to(n);
                let writer = port.handle();
                ctx.wait(
                    async move {
                        let _ = writer.write(rest).await;
                    }
                    .into_actor(self),
                );
            }
            Err(_) => tracing::debug!(device = %self.id, "echo target gone"),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<StopDevice> for Echo {
    type Result = ();

    fn handle(&mut self, _msg: StopDevice, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
