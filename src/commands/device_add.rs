//! `device_add`: create a built-in frontend (`echo`, `bridge`, `port`) on
//! chardevs, as QEMU's `device_add` creates a device with chardev properties.
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::api::Frontend;
use crate::chardev::PortConfig;
use crate::error::{DeviceError, Error};
use crate::frontends::Device;
use crate::json::Json;
use crate::registry::{DeviceReject, Holder};
use crate::runtime::Handle;

/// `device_add`: start a built-in device (`echo`, `bridge`, `port`) as a
/// frontend of its chardevs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAdd {
    /// The device id (none: QEMU names it `device[N]`).
    pub id: Option<String>,
    /// The driver and its chardevs.
    pub device: Device,
}

impl Request for DeviceAdd {
    const NAME: &'static str = "device_add";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        let exec2 = exec.clone();
        let attached = exec
            .with(move |sup, _ctx| {
                let driver = crate::frontends::driver(self.device.driver())
                    .ok_or(DeviceError::NoDriver(self.device.driver().to_owned()))?;
                let chardevs = self.device.chardevs();
                let prop_error = |i: usize, in_use: bool| {
                    let (driver, prop, value) = (
                        driver.name.to_owned(),
                        driver.chardev_props[i].to_owned(),
                        chardevs[i].clone(),
                    );
                    if in_use {
                        DeviceError::ChardevInUse { driver, prop, value }
                    } else {
                        DeviceError::NoChardev { driver, prop, value }
                    }
                };
                if sup.registry.device_count() >= sup.limits.max_devices {
                    let max = sup.limits.max_devices;
                    return Err(Error::TooMany { what: "devices", max });
                }
                let id = match sup.registry.add_device(self.id.as_deref(), driver.name, &chardevs) {
                    Ok(id) => id,
                    Err(DeviceReject::BadId) => return Err(DeviceError::BadId.into()),
                    Err(DeviceReject::Duplicate(d)) => return Err(DeviceError::DuplicateId(d).into()),
                    Err(DeviceReject::NoChardev(i)) => return Err(prop_error(i, false).into()),
                    Err(DeviceReject::ChardevInUse(i)) => return Err(prop_error(i, true).into()),
                };
                let holder = Holder::Device(id.clone());
                let (frontends, attached): (Vec<Frontend>, Vec<_>) = chardevs
                    .iter()
                    .map(|c| {
                        let (port, attached) = sup.make_port(c, &holder, driver.opens_at_start, PortConfig::default());
                        let fe = Frontend::managed(c.clone(), holder.clone(), port, exec2.clone());
                        (fe, attached)
                    })
                    .unzip();
                let arbiter = chardevs.first().and_then(|c| sup.arbiter_of(c)).unwrap_or(0);
                let stop = (driver.start)(&sup.pool.get(arbiter), id.clone(), frontends);
                tracing::info!(device = %id, driver = driver.name, chardevs = ?chardevs, "device added");
                sup.devices.started(id, stop);
                Ok::<_, Error>(attached)
            })
            .await??;
        // Answered once its ports are attached (its frontend-open shows).
        for a in attached {
            let _ = a.await;
        }
        Ok(())
    }
}

impl Command for DeviceAdd {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        let props: Vec<(String, Json)> = args
            .json()
            .as_object()
            .unwrap_or_default()
            .iter()
            .filter(|(k, _)| k != "driver" && k != "id" && k != "bus")
            .cloned()
            .collect();
        Ok(DeviceAdd {
            id: args.opt_string("id"),
            device: Device::from_props(&args.string("driver"), &props)?,
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `device_add`: start a built-in device with id `id` (none: QEMU's
    /// `device[N]`).
    pub async fn device_add(&self, id: Option<&str>, device: Device) -> Result<(), Error> {
        self.run(DeviceAdd {
            id: id.map(str::to_owned),
            device,
        })
        .await
    }
}
