//! `query-chardev-backends`: the backend kinds this build has.
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `query-chardev-backends`: the backend kinds this build can create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryChardevBackends;

impl Request for QueryChardevBackends {
    const NAME: &'static str = "query-chardev-backends";
    /// The kind names, in QEMU 10.0.2's order.
    type Output = Vec<&'static str>;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<Vec<&'static str>, Error> {
        exec.check_running()?;
        Ok(crate::backends::KINDS.iter().map(|k| k.name).collect())
    }
}

impl Command for QueryChardevBackends {
    fn from_qmp(_args: &Args<'_>) -> Result<Self, Error> {
        Ok(QueryChardevBackends)
    }

    fn to_qmp(names: Vec<&'static str>) -> Json {
        Json::Array(
            names
                .into_iter()
                .map(|b| Json::object([("name", Json::str(b))]))
                .collect(),
        )
    }
}

impl Handle {
    /// `query-chardev-backends`: the backend kinds this build has (QEMU's
    /// names, in QEMU's order).
    pub async fn query_chardev_backends(&self) -> Result<Vec<&'static str>, Error> {
        self.run(QueryChardevBackends).await
    }
}
