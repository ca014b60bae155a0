//! `__org.chardevd_monitor-add` (and `-mon chardev=ID,mode=control`): a QMP
//! monitor on a chardev, as QEMU's `-mon`: every OPENED of the chardev is a
//! new QMP session (greeting, negotiation) over it.
use super::{Args, Command, Request};
use crate::actors::StopDevice;
use crate::api::execute::{Executor, MonitorSpec};
use crate::api::Frontend;
use crate::backends::facts;
use crate::chardev::PortConfig;
use crate::error::{Error, MonitorError};
use crate::json::Json;
use crate::registry::{AttachReject, Holder};
use crate::runtime::Handle;

/// `__org.chardevd_monitor-add`: a QMP monitor on a chardev, as QEMU's
/// `-mon chardev=ID,mode=control`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorAdd {
    /// Its id (none: the first free `monitorN`).
    pub id: Option<String>,
    /// The chardev it runs on.
    pub chardev: String,
    /// QEMU's pretty JSON (`pretty=on`).
    pub pretty: bool,
}

impl Request for MonitorAdd {
    const NAME: &'static str = "__org.chardevd_monitor-add";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        let Some(starter) = exec.monitors() else {
            return Err(MonitorError::Unavailable.into());
        };
        let pretty = self.pretty;
        let exec2 = exec.clone();
        let (spec, fe, arbiter, attached) = exec
            .with(move |sup, _ctx| {
                if sup.monitors.count() >= sup.limits.max_monitors {
                    let max = sup.limits.max_monitors;
                    return Err(Error::TooMany {
                        what: "QMP monitors",
                        max,
                    });
                }
                let id = sup.monitors.name(self.id)?;
                let holder = Holder::Monitor(sup.new_holder());
                let chardev = self.chardev;
                // A monitor sets its handlers at once: open from the start (QEMU).
                let (port, attached) = match sup.attach(&chardev, &holder, true, PortConfig::default()) {
                    Ok(p) => p,
                    Err(AttachReject::NotFound) => return Err(MonitorError::NoChardev(chardev).into()),
                    Err(AttachReject::Full { max }) => return Err(sup.full_error(chardev, max)),
                };
                let oob = sup.registry.info(&chardev).is_some_and(|i| facts(i.kind).oob);
                let arbiter = sup.pool.get(sup.arbiter_of(&chardev).unwrap_or(0));
                sup.monitors.insert(id.clone(), chardev.clone(), holder.clone());
                tracing::info!(monitor = %id, chardev = %chardev, "QMP monitor added");
                let fe = Frontend::managed(chardev.clone(), holder.clone(), port, exec2);
                let spec = MonitorSpec {
                    id,
                    chardev,
                    pretty,
                    oob,
                };
                Ok::<_, Error>((spec, fe, arbiter, attached))
            })
            .await??;
        let _ = attached.await;
        let id = spec.id.clone();
        let stop = starter.start(spec, fe, &arbiter, exec.clone());
        exec.with(move |sup, _ctx| {
            if let Err(stop) = sup.monitors.commit(&id, stop) {
                stop.do_send(StopDevice);
            }
        })
        .await
    }
}

impl Command for MonitorAdd {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_monitor-add", "meta-type": "command", "arg-type": "__org.chardevd_q_obj_monitor-add-arg", "ret-type": "0"},
{"name": "__org.chardevd_q_obj_monitor-add-arg", "meta-type": "object", "members": [{"name": "chardev", "type": "str"}, {"name": "id", "default": null, "type": "str"}, {"name": "pretty", "default": null, "type": "bool"}]}
]"#;

    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(MonitorAdd {
            id: args.opt_string("id"),
            chardev: args.string("chardev"),
            pretty: args.flag("pretty"),
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `__org.chardevd_monitor-add`: a QMP monitor on `chardev`.
    pub async fn monitor_add(&self, id: Option<&str>, chardev: &str, pretty: bool) -> Result<(), Error> {
        self.run(MonitorAdd {
            id: id.map(str::to_owned),
            chardev: chardev.into(),
            pretty,
        })
        .await
    }
}
