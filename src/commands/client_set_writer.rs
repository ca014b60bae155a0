//! `__org.chardevd_client-set-writer`: the explicit take-over of a
//! console whose `__org.chardevd_input` is `first`.
use super::client_disconnect::client_number;
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::chardev::ClientOp;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `__org.chardevd_client-set-writer`: client `client` of console `id`
/// types from now on; the others watch. When it goes, the role returns to
/// the longest-connected client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSetWriter {
    /// The chardev's id.
    pub id: String,
    /// The client's number (`__org.chardevd_query-clients`).
    pub client: u64,
}

impl Request for ClientSetWriter {
    const NAME: &'static str = "__org.chardevd_client-set-writer";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.client_op(&self.id, ClientOp::SetWriter(self.client)).await
    }
}

impl Command for ClientSetWriter {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_client-set-writer", "meta-type": "command", "arg-type": "__org.chardevd_q_obj_client-arg", "ret-type": "0"}
]"#;

    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ClientSetWriter {
            id: args.string("id"),
            client: client_number(args)?,
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `__org.chardevd_client-set-writer`: client `client` of console `id`
    /// (with `__org.chardevd_input=first`) becomes the one that types.
    pub async fn client_set_writer(&self, id: &str, client: u64) -> Result<(), Error> {
        self.run(ClientSetWriter { id: id.into(), client }).await
    }
}
