//! Pure bookkeeping the supervisor runs: the ID registry and the event bus.
//! Neither imports actix nor tokio; both are unit-tested on their own.
pub mod events;
#[allow(clippy::module_inception)]
pub mod registry;

pub use events::{Delivery, EventBus, EventSink};
pub use registry::{id_wellformed, AttachReject, DeviceReject, Holder, KindInfo, Registry, Reject, Resource};
