//! `__org.chardevd_port-set-open`: the guest side of a `port` device opens
//! or closes: the chardev's `frontend-open` follows and `VSERPORT_CHANGE`
//! is raised (rate-limited as QEMU does).
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::api::execute::Executor;
use crate::error::{DeviceError, Error};
use crate::events::Event;
use crate::json::Json;
use crate::registry::Holder;
use crate::runtime::Handle;
use tokio::sync::oneshot;

/// `__org.chardevd_port-set-open`: open or close the guest side of a
/// `port` device (its chardev's `frontend-open`; `VSERPORT_CHANGE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetOpen {
    /// The `port` device's id.
    pub id: String,
    /// Open or closed.
    pub open: bool,
}

impl Request for PortSetOpen {
    const NAME: &'static str = "__org.chardevd_port-set-open";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        let applied = exec
            .with(move |sup, ctx| {
                let dev = sup
                    .registry
                    .device(&self.id)
                    .ok_or_else(|| DeviceError::NotFound(self.id.clone()))?;
                if dev.driver != crate::frontends::port::DRIVER.name {
                    return Err(Error::from(DeviceError::NotAPort(self.id)));
                }
                let (chardev, anonymous) = (dev.chardevs[0].clone(), dev.anonymous);
                let holder = Holder::Device(self.id.clone());
                let mut applied = None;
                if let Some(port) = sup.registry.port_of(&chardev, &holder) {
                    let (done, rx) = oneshot::channel();
                    applied = Some(rx);
                    let op = Control::SetOpen {
                        port,
                        open: self.open,
                        done,
                    };
                    sup.port_op(&chardev, op)?;
                }
                // As QEMU: only a port with an id of its own raises the event.
                if !anonymous {
                    sup.emit(
                        Event::VserportChange {
                            id: self.id,
                            open: self.open,
                        },
                        ctx,
                    );
                }
                Ok(applied)
            })
            .await??;
        // Answered once query-chardev shows it.
        if let Some(a) = applied {
            let _ = a.await;
        }
        Ok(())
    }
}

impl Command for PortSetOpen {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_port-set-open", "meta-type": "command", "arg-type": "__org.chardevd_q_obj_port-set-open-arg", "ret-type": "0"},
{"name": "__org.chardevd_q_obj_port-set-open-arg", "meta-type": "object", "members": [{"name": "id", "type": "str"}, {"name": "open", "type": "bool"}]}
]"#;

    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(PortSetOpen {
            id: args.string("id"),
            open: args.flag("open"),
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `__org.chardevd_port-set-open`: open or close the guest side of a
    /// `port` device.
    pub async fn port_set_open(&self, id: &str, open: bool) -> Result<(), Error> {
        self.run(PortSetOpen { id: id.into(), open }).await
    }
}
