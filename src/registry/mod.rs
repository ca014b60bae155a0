//! Pure bookkeeping the supervisor runs, each table unit-tested on its own
//! and none importing actix or tokio:
//! - [`registry`]: chardev ids, references, leases, generations, devices;
//! - [`events`]: the event bus and QEMU's rate limit;
//! - [`monitors`]: the QMP monitors on chardevs;
//! - [`inputs`]: QEMU's input core (handler order and routing);
//! - [`devices`]: how to stop each running device;
//! - [`held`]: port operations held back during a `chardev-change`.
pub mod devices;
pub mod events;
pub mod held;
pub mod inputs;
pub mod monitors;
#[allow(clippy::module_inception)]
pub mod registry;

pub use devices::Devices;
pub use events::{Delivery, EventBus, EventSink};
pub use held::Held;
pub use inputs::InputHandlers;
pub use monitors::Monitors;
pub use registry::{id_wellformed, AttachReject, DeviceReject, Holder, KindInfo, Registry, Reject, Resource};
