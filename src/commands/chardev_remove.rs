//! `chardev-remove`: remove a chardev nobody uses.
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::registry::Reject;
use crate::runtime::Handle;

/// `chardev-remove`: remove a chardev that nothing uses (no frontend,
/// no mux or hub over it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChardevRemove {
    /// The chardev's id.
    pub id: String,
}

impl Request for ChardevRemove {
    const NAME: &'static str = "chardev-remove";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.with(move |sup, _ctx| match sup.registry.remove(&self.id) {
            Ok((c, ports)) => {
                sup.publish(&self.id);
                c.addr.do_send(Control::Stop);
                sup.detach_ports(ports);
                sup.inputs.register(&self.id, None);
                tracing::info!(chardev = %self.id, "chardev removed");
                Ok(())
            }
            Err(Reject::NotFound) => Err(Error::NotFound(self.id)),
            Err(_) => Err(Error::Busy(self.id)),
        })
        .await?
    }
}

impl Command for ChardevRemove {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ChardevRemove { id: args.string("id") })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `chardev-remove`: remove chardev `id` (refused while it is in use).
    pub async fn chardev_remove(&self, id: &str) -> Result<(), Error> {
        self.run(ChardevRemove { id: id.into() }).await
    }
}
