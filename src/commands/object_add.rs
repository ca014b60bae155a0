//! `object-add`: create a TLS credentials or authorization object that
//! socket chardevs name (`tls-creds`, `tls-authz`).
use super::{Args, Command, Request};
use crate::api::execute::{offload, Executor, OFFLOAD_BYTES};
use crate::error::Error;
use crate::json::Json;
use crate::objects::ObjectProps;
use crate::runtime::Handle;

/// `object-add`: create TLS credentials or an authorization list that
/// socket chardevs name (`tls-creds`, `tls-authz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAdd {
    /// The object's id.
    pub id: String,
    /// Its type and properties.
    pub props: ObjectProps,
}

impl Request for ObjectAdd {
    const NAME: &'static str = "object-add";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.check_running()?;
        let objects = exec.objects().clone();
        // Reading credentials is file I/O: off the arbiter.
        offload(OFFLOAD_BYTES, move || objects.add(&self.id, self.props)).await?;
        Ok(())
    }
}

impl Command for ObjectAdd {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        let mut props = args.json().to_serde();
        if let Some(o) = props.as_object_mut() {
            o.remove("qom-type");
            o.remove("id");
        }
        Ok(ObjectAdd {
            id: args.string("id"),
            props: ObjectProps::from_json(&args.string("qom-type"), &props)?,
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `object-add`: create object `id` (TLS credentials, an authorization list).
    pub async fn object_add(&self, id: &str, props: ObjectProps) -> Result<(), Error> {
        self.run(ObjectAdd { id: id.into(), props }).await
    }
}
