//! `__org.chardevd_screendump-text`: a vc's screen as text (chardevd's
//! `screendump` without a picture).
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::api::execute::Executor;
use crate::backends::facts;
use crate::chardev::Screen;
use crate::error::{DeviceError, Error};
use crate::json::Json;
use crate::runtime::Handle;
use tokio::sync::oneshot;

/// `__org.chardevd_screendump-text`: a vc's screen as text lines, with
/// its size and cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScreendumpText {
    /// The vc (none: the first one).
    pub device: Option<String>,
}

impl Request for ScreendumpText {
    const NAME: &'static str = "__org.chardevd_screendump-text";
    type Output = Screen;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<Screen, Error> {
        let rx = exec
            .with(move |sup, _ctx| {
                let has_screen = |id: &str| sup.registry.info(id).is_some_and(|i| facts(i.kind).screen);
                let id = match self.device {
                    Some(d) if has_screen(&d) => d,
                    Some(d) => return Err(Error::Device(DeviceError::NotFound(d))),
                    None => match sup.inputs.first(has_screen) {
                        Some(c) => c.to_owned(),
                        None => return Err(Error::NoConsole),
                    },
                };
                let (tx, rx) = oneshot::channel();
                sup.port_op(&id, Control::Screen(tx))?;
                Ok(rx)
            })
            .await??;
        match rx.await {
            Ok(Some(screen)) => Ok(screen),
            _ => Err(Error::NoConsole),
        }
    }
}

impl Command for ScreendumpText {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_screendump-text", "meta-type": "command", "arg-type": "__org.chardevd_q_obj_screendump-text-arg", "ret-type": "__org.chardevd_ScreenText"},
{"name": "__org.chardevd_q_obj_screendump-text-arg", "meta-type": "object", "members": [{"name": "device", "default": null, "type": "str"}]},
{"name": "__org.chardevd_ScreenText", "meta-type": "object", "members": [{"name": "cols", "type": "int"}, {"name": "rows", "type": "int"}, {"name": "cursor-row", "type": "int"}, {"name": "cursor-col", "type": "int"}, {"name": "lines", "type": "[str]"}]}
]"#;

    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ScreendumpText {
            device: args.opt_string("device"),
        })
    }

    fn to_qmp(s: Screen) -> Json {
        Json::object([
            ("cols", Json::Int(i64::from(s.cols))),
            ("rows", Json::Int(i64::from(s.rows))),
            ("cursor-row", Json::Int(i64::from(s.cursor_row))),
            ("cursor-col", Json::Int(i64::from(s.cursor_col))),
            ("lines", Json::Array(s.lines.into_iter().map(Json::Str).collect())),
        ])
    }
}

impl Handle {
    /// `__org.chardevd_screendump-text`: a vc's screen (the first vc's when
    /// `device` is `None`).
    pub async fn screendump_text(&self, device: Option<&str>) -> Result<Screen, Error> {
        self.run(ScreendumpText {
            device: device.map(str::to_owned),
        })
        .await
    }
}
