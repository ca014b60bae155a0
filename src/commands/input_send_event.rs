//! `input-send-event`: input events routed as QEMU's input core routes
//! them, to the device kinds that take input (msmouse, wctablet, vc).
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::api::execute::Executor;
use crate::chardev::input::InputEvent;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `input-send-event`: input events routed as QEMU's input core routes
/// them, to msmouse, wctablet and vc chardevs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSendEvent {
    /// The console tried first (a chardev with an input handler).
    pub device: Option<String>,
    /// Its head (only 0 exists).
    pub head: Option<i64>,
    /// The events, in order.
    pub events: Vec<InputEvent>,
}

impl Request for InputSendEvent {
    const NAME: &'static str = "input-send-event";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        // QMP's schema checks key names; the typed API gets the same check.
        for ev in &self.events {
            if let InputEvent::Key { qcode, .. } = ev {
                if !crate::chardev::input::is_qcode(qcode) {
                    return Err(Error::Argument(format!(
                        "Parameter 'data' does not accept value '{qcode}'"
                    )));
                }
            }
        }
        exec.with(move |sup, _ctx| {
            // QEMU's order: the console, then every event has a handler, then
            // the events go out and every handler that got some syncs.
            let batches = sup
                .inputs
                .route(self.device.as_deref(), self.head, &self.events, sup.live())?;
            for (chardev, events) in batches {
                sup.port_op(&chardev, Control::Input(events))?;
            }
            Ok(())
        })
        .await?
    }
}

impl Command for InputSendEvent {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(InputSendEvent {
            device: args.opt_string("device"),
            head: args.opt_int("head"),
            events: match args.get("events") {
                Some(Json::Array(v)) => v.iter().map(InputEvent::from_qmp).collect(),
                _ => Vec::new(),
            },
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `input-send-event`: events routed as QEMU's input core routes them
    /// (to `device`'s handler first, if given).
    pub async fn input_send_event(&self, device: Option<&str>, events: Vec<InputEvent>) -> Result<(), Error> {
        self.run(InputSendEvent {
            device: device.map(str::to_owned),
            head: None,
            events,
        })
        .await
    }
}
