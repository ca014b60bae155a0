//! `chardev-send-break`: a BREAK to a chardev's frontends (on a mux, its
//! focused frontend).
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `chardev-send-break`: a BREAK event to a chardev's frontends (a mux's
/// focused frontend only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChardevSendBreak {
    /// The chardev's id.
    pub id: String,
}

impl Request for ChardevSendBreak {
    const NAME: &'static str = "chardev-send-break";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.with(move |sup, _ctx| {
            if sup.registry.get(&self.id).is_none() {
                return Err(Error::NotFound(self.id));
            }
            sup.port_op(&self.id, Control::Break)
        })
        .await?
    }
}

impl Command for ChardevSendBreak {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ChardevSendBreak { id: args.string("id") })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `chardev-send-break`: a BREAK to chardev `id`'s frontends.
    pub async fn chardev_send_break(&self, id: &str) -> Result<(), Error> {
        self.run(ChardevSendBreak { id: id.into() }).await
    }
}
