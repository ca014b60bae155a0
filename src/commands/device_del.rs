//! `device_del`: stop a built-in device and detach it from its chardevs;
//! `DEVICE_DELETED` follows at once (there is no guest to ask).
use super::{Args, Command, Request};
use crate::actors::StopDevice;
use crate::api::execute::Executor;
use crate::error::{DeviceError, Error};
use crate::events::Event;
use crate::json::Json;
use crate::runtime::Handle;

/// `device_del`: stop a built-in device and detach it; `DEVICE_DELETED`
/// follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDel {
    /// The device id.
    pub id: String,
}

impl Request for DeviceDel {
    const NAME: &'static str = "device_del";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.with(move |sup, ctx| {
            let (dev, ports) = sup
                .registry
                .remove_device(&self.id)
                .ok_or_else(|| DeviceError::NotFound(self.id.clone()))?;
            sup.detach_ports(ports);
            if let Some(stop) = sup.devices.stop(&self.id) {
                stop.do_send(StopDevice);
            }
            tracing::info!(device = %self.id, driver = dev.driver, "device removed");
            let event = if dev.anonymous {
                Event::DeviceDeleted {
                    device: None,
                    path: format!("/machine/peripheral-anon/{}", self.id),
                }
            } else {
                Event::DeviceDeleted {
                    path: format!("/machine/peripheral/{}", self.id),
                    device: Some(self.id),
                }
            };
            sup.emit(event, ctx);
            Ok(())
        })
        .await?
    }
}

impl Command for DeviceDel {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(DeviceDel { id: args.string("id") })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `device_del`: stop device `id`; `DEVICE_DELETED` follows.
    pub async fn device_del(&self, id: &str) -> Result<(), Error> {
        self.run(DeviceDel { id: id.into() }).await
    }
}
