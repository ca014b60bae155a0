//! Built-in frontends, created with `device_add` / `-device`, one file per
//! driver and one table ([`DRIVERS`]):
//! - `echo` (`driver=echo,id=ID,chardev=CHR`): writes back every byte it
//!   receives; open from the start, like a QEMU device that sets handlers.
//! - `bridge` (`driver=bridge,id=ID,chardev=CHR,peer=CHR2`): joins two
//!   chardevs both ways with backpressure (a pty or serial line served on a
//!   socket, as ser2net does).
//! - `port` (`driver=port,id=ID,chardev=CHR`): a virtio-serial-like port; its
//!   guest side is opened and closed with `__org.chardevd_port-set-open`,
//!   which drives `frontend-open` and raises `VSERPORT_CHANGE`.
//!
//! Each device is an actor on its chardev's arbiter, holding a [`Port`] per
//! chardev it uses.
use crate::chardev::Port;
use crate::error::DeviceError;
use crate::json::Json;
use actix::prelude::*;

pub mod bridge;
pub mod echo;
pub mod port;

/// Stop a device (sent by the supervisor on `device_del`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopDevice;

/// One driver.
pub struct Driver {
    /// The name `device_add` takes.
    pub name: &'static str,
    /// Its chardev properties, in order (each names one chardev).
    pub chardev_props: &'static [&'static str],
    /// `frontend-open` from the start.
    pub opens_at_start: bool,
    /// Start the device on `arbiter` with a port on each of its chardevs.
    pub start: fn(&ArbiterHandle, String, Vec<Port>) -> Recipient<StopDevice>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("name", &self.name).finish()
    }
}

/// Every driver.
pub static DRIVERS: &[Driver] = &[echo::DRIVER, bridge::DRIVER, port::DRIVER];

/// The driver of a name.
pub fn driver(name: &str) -> Option<&'static Driver> {
    DRIVERS.iter().find(|d| d.name == name)
}

impl Driver {
    /// Read `device_add`'s properties as QEMU does (in order: types, unknown
    /// properties, then required ones); returns the chardev ids.
    pub fn chardevs(&self, props: &[(String, Json)]) -> Result<Vec<String>, DeviceError> {
        let mut found: Vec<Option<String>> = vec![None; self.chardev_props.len()];
        for (k, v) in props {
            match (self.chardev_props.iter().position(|p| p == k), v) {
                (Some(i), Json::Str(s)) => found[i] = Some(s.clone()),
                (Some(_), _) => return Err(DeviceError::PropertyType(k.clone())),
                (None, _) => {
                    return Err(DeviceError::NoProperty {
                        driver: self.name.into(),
                        prop: k.clone(),
                    })
                }
            }
        }
        found
            .into_iter()
            .zip(self.chardev_props)
            .map(|(v, p)| {
                v.ok_or_else(|| DeviceError::PropertyRequired {
                    driver: self.name.into(),
                    prop: (*p).into(),
                })
            })
            .collect()
    }
}
