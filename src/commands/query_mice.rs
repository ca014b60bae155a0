//! `query-mice`: the pointer input handlers (msmouse, wctablet), newest
//! first, the one that gets pointer events marked current.
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::chardev::input::MouseInfo;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `query-mice`: the pointer input handlers, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryMice;

impl Request for QueryMice {
    const NAME: &'static str = "query-mice";
    type Output = Vec<MouseInfo>;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<Vec<MouseInfo>, Error> {
        exec.with(|sup, _ctx| sup.inputs.mice(sup.live())).await
    }
}

impl Command for QueryMice {
    fn from_qmp(_args: &Args<'_>) -> Result<Self, Error> {
        Ok(QueryMice)
    }

    fn to_qmp(mice: Vec<MouseInfo>) -> Json {
        Json::Array(
            mice.into_iter()
                .map(|m| {
                    Json::object([
                        ("name", Json::Str(m.name)),
                        ("index", Json::Int(m.index)),
                        ("current", Json::Bool(m.current)),
                        ("absolute", Json::Bool(m.absolute)),
                    ])
                })
                .collect(),
        )
    }
}

impl Handle {
    /// `query-mice`: the pointer input handlers, newest first.
    pub async fn query_mice(&self) -> Result<Vec<MouseInfo>, Error> {
        self.run(QueryMice).await
    }
}
