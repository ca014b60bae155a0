//! `__org.chardevd_monitor-del`: stop a QMP monitor and detach it from its
//! chardev.
use super::{Args, Command, Request};
use crate::actors::StopDevice;
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `__org.chardevd_monitor-del`: stop a QMP monitor and detach it from
/// its chardev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorDel {
    /// The monitor's id.
    pub id: String,
}

impl Request for MonitorDel {
    const NAME: &'static str = "__org.chardevd_monitor-del";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.with(move |sup, _ctx| {
            let m = sup.monitors.remove(&self.id)?;
            sup.detach(&m.chardev, &m.holder);
            if let Some(stop) = m.stop {
                stop.do_send(StopDevice);
            }
            tracing::info!(monitor = %self.id, chardev = %m.chardev, "QMP monitor removed");
            Ok(())
        })
        .await?
    }
}

impl Command for MonitorDel {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_monitor-del", "meta-type": "command", "arg-type": "__org.chardevd_q_obj_monitor-del-arg", "ret-type": "0"},
{"name": "__org.chardevd_q_obj_monitor-del-arg", "meta-type": "object", "members": [{"name": "id", "type": "str"}]}
]"#;

    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(MonitorDel { id: args.string("id") })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `__org.chardevd_monitor-del`: stop QMP monitor `id`.
    pub async fn monitor_del(&self, id: &str) -> Result<(), Error> {
        self.run(MonitorDel { id: id.into() }).await
    }
}
