//! `yank`: drop the connections of chardevs at once (QEMU's recovery
//! command for a hung peer); every instance is checked before anything is
//! yanked.
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// QEMU's `YankInstance`: something `yank` can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YankInstance {
    /// A chardev (its current connection, if its kind has one: sockets).
    Chardev {
        /// The chardev's id.
        id: String,
    },
    /// A block node (chardevd has none: always "Instance not found").
    BlockNode {
        /// Its node name.
        node_name: String,
    },
    /// The migration (chardevd has none: always "Instance not found").
    Migration,
}

impl YankInstance {
    fn from_qmp(v: &Json) -> YankInstance {
        let s = |k: &str| v.get(k).and_then(Json::as_str).unwrap_or_default().to_owned();
        match v.get("type").and_then(Json::as_str) {
            Some("chardev") => YankInstance::Chardev { id: s("id") },
            Some("block-node") => YankInstance::BlockNode {
                node_name: s("node-name"),
            },
            _ => YankInstance::Migration,
        }
    }

    pub(super) fn to_qmp(&self) -> Json {
        match self {
            YankInstance::Chardev { id } => {
                Json::object([("type", Json::str("chardev")), ("id", Json::str(id.clone()))])
            }
            YankInstance::BlockNode { node_name } => Json::object([
                ("type", Json::str("block-node")),
                ("node-name", Json::str(node_name.clone())),
            ]),
            YankInstance::Migration => Json::object([("type", Json::str("migration"))]),
        }
    }
}

/// `yank`: drop the current connections of chardevs at once (QEMU's
/// recovery for a hung peer); all must be yankable, or nothing is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yank {
    /// What to yank.
    pub instances: Vec<YankInstance>,
}

impl Request for Yank {
    const NAME: &'static str = "yank";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.with(move |sup, _ctx| {
            let mut ids = Vec::new();
            for i in self.instances {
                match i {
                    YankInstance::Chardev { id } if sup.registry.info(&id).is_some_and(|i| i.yank) => ids.push(id),
                    _ => return Err(Error::YankNotFound),
                }
            }
            for id in ids {
                sup.port_op(&id, Control::Yank)?;
            }
            Ok(())
        })
        .await?
    }
}

impl Command for Yank {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(Yank {
            instances: match args.get("instances") {
                Some(Json::Array(v)) => v.iter().map(YankInstance::from_qmp).collect(),
                _ => Vec::new(),
            },
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `yank`: drop the current connection of each instance (all must be
    /// yankable, or nothing is done).
    pub async fn yank(&self, instances: Vec<YankInstance>) -> Result<(), Error> {
        self.run(Yank { instances }).await
    }
}
