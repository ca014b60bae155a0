//! `send-key`: keys pressed in order and released in reverse, to the first
//! key handler (a vc); without one they are dropped, as in QEMU.
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::api::execute::Executor;
use crate::chardev::input::{is_qcode, key_value};
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `send-key`: keys pressed in order and released in reverse, to the
/// first key handler (a vc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendKey {
    /// QEMU's key codes (`QKeyCode` names: `ctrl`, `alt`, `a`, `ret`, ...;
    /// QMP's numbers are turned into names as QEMU does).
    pub keys: Vec<String>,
    /// How long the keys stay down, in ms (accepted; chardevd presses and
    /// releases at once: README difference 39).
    pub hold_time: Option<i64>,
}

impl Request for SendKey {
    const NAME: &'static str = "send-key";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        // QMP's schema checks the names; the typed API gets the same check.
        // (QEMU names the member of the key's union alone.)
        if let Some(k) = self.keys.iter().find(|k| !is_qcode(k)) {
            return Err(Error::Argument(format!("Parameter 'data' does not accept value '{k}'")));
        }
        exec.with(move |sup, _ctx| {
            if let Some((chardev, events)) = sup.inputs.keys(&self.keys, sup.live()) {
                sup.port_op(&chardev, Control::Input(events))?;
            }
            Ok(())
        })
        .await?
    }
}

impl Command for SendKey {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(SendKey {
            keys: match args.get("keys") {
                Some(Json::Array(v)) => v.iter().map(key_value).collect(),
                _ => Vec::new(),
            },
            hold_time: args.opt_int("hold-time"),
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `send-key`: press `keys` in order, release them in reverse.
    pub async fn send_key(&self, keys: &[&str]) -> Result<(), Error> {
        self.run(SendKey {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            hold_time: None,
        })
        .await
    }
}
