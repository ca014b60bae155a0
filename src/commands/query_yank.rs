//! `query-yank`: what `yank` can act on (the socket chardevs, in creation
//! order).
use super::yank::YankInstance;
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `query-yank`: what `yank` can act on (the socket chardevs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryYank;

impl Request for QueryYank {
    const NAME: &'static str = "query-yank";
    type Output = Vec<YankInstance>;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<Vec<YankInstance>, Error> {
        exec.with(|sup, _ctx| {
            sup.registry
                .live()
                .into_iter()
                .filter(|(id, _)| sup.registry.info(id).is_some_and(|i| i.yank))
                .map(|(id, _)| YankInstance::Chardev { id: id.to_owned() })
                .collect()
        })
        .await
    }
}

impl Command for QueryYank {
    fn from_qmp(_args: &Args<'_>) -> Result<Self, Error> {
        Ok(QueryYank)
    }

    fn to_qmp(instances: Vec<YankInstance>) -> Json {
        Json::Array(instances.iter().map(YankInstance::to_qmp).collect())
    }
}

impl Handle {
    /// `query-yank`: the chardevs `yank` can act on.
    pub async fn query_yank(&self) -> Result<Vec<YankInstance>, Error> {
        self.run(QueryYank).await
    }
}
