//! `object-del`: delete an object (chardevs that took it keep what they
//! took, as in QEMU).
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// `object-del`: delete an object (chardevs keep what they took from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDel {
    /// The object's id.
    pub id: String,
}

impl Request for ObjectDel {
    const NAME: &'static str = "object-del";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.check_running()?;
        exec.objects().del(&self.id)?;
        Ok(())
    }
}

impl Command for ObjectDel {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ObjectDel { id: args.string("id") })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `object-del`: delete object `id`.
    pub async fn object_del(&self, id: &str) -> Result<(), Error> {
        self.run(ObjectDel { id: id.into() }).await
    }
}
