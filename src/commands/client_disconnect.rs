//! `__org.chardevd_client-disconnect`: cut one client of a console off.
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::chardev::ClientOp;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `__org.chardevd_client-disconnect`: cut client `client` of console `id`
/// off (its queued output is dropped; with `__org.chardevd_input=first`
/// the next client in line types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDisconnect {
    /// The chardev's id.
    pub id: String,
    /// The client's number (`__org.chardevd_query-clients`).
    pub client: u64,
}

impl Request for ClientDisconnect {
    const NAME: &'static str = "__org.chardevd_client-disconnect";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.client_op(&self.id, ClientOp::Disconnect(self.client)).await
    }
}

impl Command for ClientDisconnect {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_client-disconnect", "meta-type": "command", "arg-type": "__org.chardevd_q_obj_client-arg", "ret-type": "0"},
{"name": "__org.chardevd_q_obj_client-arg", "meta-type": "object", "members": [{"name": "id", "type": "str"}, {"name": "client", "type": "int"}]}
]"#;

    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ClientDisconnect {
            id: args.string("id"),
            client: client_number(args)?,
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

/// The `client` argument (a positive number).
pub(super) fn client_number(args: &Args<'_>) -> Result<u64, Error> {
    match args.opt_int("client") {
        Some(n) if n > 0 => Ok(n as u64),
        _ => Err(Error::Argument(
            "Parameter 'client' expects a client number (from 1)".into(),
        )),
    }
}

impl Handle {
    /// `__org.chardevd_client-disconnect`: cut client `client` of console
    /// `id` off.
    pub async fn client_disconnect(&self, id: &str, client: u64) -> Result<(), Error> {
        self.run(ClientDisconnect { id: id.into(), client }).await
    }
}
