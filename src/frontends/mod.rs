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
//! Each device is an actor on its chardev's arbiter, holding a
//! [`Frontend`] per chardev it uses: the same type an embedder's device
//! model holds, read and written as byte streams.
use crate::actors::StopDevice;
use crate::api::{Frontend, FrontendEvents, FrontendReader, FrontendWriter};
use crate::error::DeviceError;
use crate::json::Json;
use actix::prelude::*;
use futures_util::{Sink, SinkExt, StreamExt};
use std::future::poll_fn;
use std::pin::Pin;

pub mod bridge;
pub mod echo;
pub mod port;

/// Copy what `from` reads into `to`, without copying the bytes, until
/// either is detached: `to` not taking them holds `from` up (backpressure).
///
/// Unlike `send_all`, it does not wait for `to`'s chardev to finish with
/// each chunk whenever `from` has nothing more (a flush per chunk wakes the
/// pump once more per chunk, for nothing: backpressure comes from `to`'s
/// room); it flushes once, at the end of the input.
pub(crate) async fn pump(mut from: FrontendReader, mut to: FrontendWriter) -> Pumped {
    loop {
        // Room first: while `to` is full, `from` is not read.
        if poll_fn(|cx| Pin::new(&mut to).poll_ready(cx)).await.is_err() {
            return Pumped::OutputGone;
        }
        match from.next().await {
            Some(chunk) => {
                if Pin::new(&mut to).start_send(chunk).is_err() {
                    return Pumped::OutputGone;
                }
            }
            None => {
                return match to.close().await {
                    Ok(()) => Pumped::InputEnded,
                    Err(_) => Pumped::OutputGone,
                }
            }
        }
    }
}

/// How a pump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// Everything read was written and taken: the input ended (its
    /// chardev let it go, or the system stops and reads no more).
    InputEnded,
    /// The output's chardev let it go.
    OutputGone,
}

/// Log a device's events (devices act on none of them).
fn log_events<A: Actor<Context = Context<A>>>(ctx: &mut Context<A>, events: FrontendEvents, id: String) {
    ctx.spawn(fut::wrap_future(events.for_each(move |ev| {
        tracing::trace!(device = %id, event = ?ev, "frontend event");
        async {}
    })));
}

/// One driver.
pub struct Driver {
    /// The name `device_add` takes.
    pub name: &'static str,
    /// Its chardev properties, in order (each names one chardev).
    pub chardev_props: &'static [&'static str],
    /// `frontend-open` from the start.
    pub opens_at_start: bool,
    /// Start the device on `arbiter` with a frontend on each of its chardevs.
    pub start: fn(&ArbiterHandle, String, Vec<Frontend>) -> Recipient<StopDevice>,
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

/// A built-in device, typed: which driver, on which chardevs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// `echo`: writes back every byte it receives from `chardev`.
    Echo {
        /// The chardev it echoes on.
        chardev: String,
    },
    /// `bridge`: joins `chardev` and `peer` both ways, with backpressure.
    Bridge {
        /// One side (`chardev=`).
        chardev: String,
        /// The other side.
        peer: String,
    },
    /// `port`: a virtio-serial-like port whose guest side is opened with
    /// `__org.chardevd_port-set-open` (raising `VSERPORT_CHANGE`).
    Port {
        /// The chardev the port sits on.
        chardev: String,
    },
}

impl Device {
    /// The driver name (`device_add`'s `driver`).
    pub fn driver(&self) -> &'static str {
        match self {
            Device::Echo { .. } => echo::DRIVER.name,
            Device::Bridge { .. } => bridge::DRIVER.name,
            Device::Port { .. } => port::DRIVER.name,
        }
    }

    /// The chardevs it uses, in property order.
    pub fn chardevs(&self) -> Vec<String> {
        match self {
            Device::Echo { chardev } | Device::Port { chardev } => vec![chardev.clone()],
            Device::Bridge { chardev, peer } => vec![chardev.clone(), peer.clone()],
        }
    }

    /// From `device_add`'s driver name and properties, checked as QEMU
    /// checks them (the driver, then in order: types, unknown properties,
    /// then required ones).
    pub fn from_props(driver: &str, props: &[(String, Json)]) -> Result<Device, DeviceError> {
        let Some(d) = self::driver(driver) else {
            return Err(DeviceError::NoDriver(driver.to_owned()));
        };
        let mut c = d.chardevs(props)?.into_iter();
        let mut next = || c.next().unwrap_or_default();
        Ok(match d.name {
            "bridge" => Device::Bridge {
                chardev: next(),
                peer: next(),
            },
            "port" => Device::Port { chardev: next() },
            _ => Device::Echo { chardev: next() },
        })
    }
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
