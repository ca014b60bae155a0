//! `__org.chardevd_query-clients`: the clients of a console (a listening
//! socket chardev in console mode).
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::chardev::ClientInfo;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `__org.chardevd_query-clients`: who is connected to console `id`, oldest
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryClients {
    /// The chardev's id.
    pub id: String,
}

impl Request for QueryClients {
    const NAME: &'static str = "__org.chardevd_query-clients";
    type Output = Vec<ClientInfo>;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<Vec<ClientInfo>, Error> {
        exec.clients(&self.id).await
    }
}

impl Command for QueryClients {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_query-clients", "meta-type": "command", "arg-type": "__org.chardevd_q_obj_query-clients-arg", "ret-type": "[__org.chardevd_ClientInfo]"},
{"name": "__org.chardevd_q_obj_query-clients-arg", "meta-type": "object", "members": [{"name": "id", "type": "str"}]},
{"name": "[__org.chardevd_ClientInfo]", "element-type": "__org.chardevd_ClientInfo", "meta-type": "array"},
{"name": "__org.chardevd_ClientInfo", "meta-type": "object", "members": [{"name": "client", "type": "int"}, {"name": "address", "type": "str"}, {"name": "connected-since", "type": "__org.chardevd_ClientSince"}, {"name": "bytes-in", "type": "int"}, {"name": "bytes-out", "type": "int"}, {"name": "dropped", "type": "int"}, {"name": "dropped-in", "type": "int"}, {"name": "queued", "type": "int"}, {"name": "writer", "type": "bool"}]},
{"name": "__org.chardevd_ClientSince", "meta-type": "object", "members": [{"name": "seconds", "type": "int"}, {"name": "microseconds", "type": "int"}]}
]"#;

    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(QueryClients { id: args.string("id") })
    }

    fn to_qmp(clients: Vec<ClientInfo>) -> Json {
        Json::Array(
            clients
                .into_iter()
                .map(|c| {
                    Json::object([
                        ("client", Json::UInt(c.client)),
                        ("address", Json::Str(c.address)),
                        (
                            "connected-since",
                            Json::object([
                                ("seconds", Json::Int(c.since.seconds)),
                                ("microseconds", Json::Int(c.since.microseconds)),
                            ]),
                        ),
                        ("bytes-in", Json::UInt(c.bytes_in)),
                        ("bytes-out", Json::UInt(c.bytes_out)),
                        ("dropped", Json::UInt(c.dropped)),
                        ("dropped-in", Json::UInt(c.dropped_in)),
                        ("queued", Json::UInt(c.queued)),
                        ("writer", Json::Bool(c.writer)),
                    ])
                })
                .collect(),
        )
    }
}

impl Handle {
    /// `__org.chardevd_query-clients`: the clients of console `id`, oldest
    /// first.
    pub async fn query_clients(&self, id: &str) -> Result<Vec<ClientInfo>, Error> {
        self.run(QueryClients { id: id.into() }).await
    }
}
