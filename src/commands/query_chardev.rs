//! `query-chardev`: every chardev, in creation order, with QEMU's
//! `filename` and `frontend-open`.
use super::{Args, Command, Request};
use crate::api::execute::{offload, Executor};
use crate::chardev::ChardevInfo;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `query-chardev`: every chardev with its `filename` (QEMU's description
/// of the backend and its state) and whether a frontend has it open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryChardev;

impl Request for QueryChardev {
    const NAME: &'static str = "query-chardev";
    type Output = Vec<ChardevInfo>;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<Vec<ChardevInfo>, Error> {
        // Read from the directory the supervisor publishes (no round trip);
        // thousands of rows are built off the arbiter.
        let dir = exec.directory()?.clone();
        let n = dir.len();
        Ok(offload(n * 64, move || dir.query()).await)
    }
}

impl Command for QueryChardev {
    fn from_qmp(_args: &Args<'_>) -> Result<Self, Error> {
        Ok(QueryChardev)
    }

    fn to_qmp(rows: Vec<ChardevInfo>) -> Json {
        Json::Array(
            rows.into_iter()
                .map(|r| {
                    Json::object([
                        ("label", Json::Str(r.label)),
                        ("filename", Json::Str(r.filename)),
                        ("frontend-open", Json::Bool(r.frontend_open)),
                    ])
                })
                .collect(),
        )
    }

    fn output_size(rows: &Vec<ChardevInfo>) -> usize {
        rows.len() * 64
    }
}

impl Handle {
    /// `query-chardev`: every chardev, in creation order.
    pub async fn query_chardev(&self) -> Result<Vec<ChardevInfo>, Error> {
        self.run(QueryChardev).await
    }
}
