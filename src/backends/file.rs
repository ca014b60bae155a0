//! `file`: frontend output goes to `out` (truncated, or appended to with
//! `append`); the optional `in` file is read and fed to the frontend, and its
//! end of file closes the chardev's input with a `CLOSED` event, as in QEMU.
//! A `chardev-change` to a file of the same `out` path flushes and closes the
//! old output first, and takes it back (appending) if the change fails.
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::fdio::{open_path, FdIo, FdLink};
use crate::chardev::transport::{Connection, LinkBackend, Once};
use crate::error::BackendError;
use crate::options::Opts;
use crate::registry::{KindInfo, Resource};
use futures_util::future::LocalBoxFuture;
use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};

/// The `file` kind.
pub(crate) const KIND: Kind = Kind {
    name: "file",
    aliases: &[],
    from_qmp: from_data::<File>,
    from_cli,
    syntax: "-chardev file,id=ID,path=OUT[,input-path=IN][,append=on|off]",
    facts: Facts {
        oob: true,
        ..Facts::NONE
    },
};

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    let out = opts.take("path").ok_or("chardev: file: no filename given")?;
    let input = opts.take("input-path");
    let append = opts.take_bool("append")?;
    Ok(Box::new(File { input, out, append }))
}

/// `file` options (`ChardevFile`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// A file read as the chardev's input (none: no input).
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The file frontend output is written to (created, truncated unless `append`).
    pub out: String,
    /// Open `out` for appending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

impl File {
    /// Output to `out`, truncated, no input.
    pub fn output(out: impl Into<String>) -> File {
        File {
            out: out.into(),
            ..Default::default()
        }
    }
}

impl BackendConfig for File {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            // Files may be shared (as in QEMU); the same path is only lent
            // to a replacement.
            resources: vec![Resource {
                key: format!("file:{}", self.out),
                exclusive: false,
            }],
            ..KindInfo::plain("file")
        }
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let mut flags = OFlags::WRONLY | OFlags::CREATE;
            flags |= if self.append.unwrap_or(false) {
                OFlags::APPEND
            } else {
                OFlags::TRUNC
            };
            let out = open_path(&self.out, flags).await?;
            let input = match &self.input {
                Some(path) => Some(open_path(path, OFlags::RDONLY).await?),
                None => None,
            };
            let io = |fd| {
                FdIo::new(fd).map_err(|e| BackendError::Open {
                    path: self.out.clone(),
                    source: e.into(),
                })
            };
            let mut link = FdLink::new(input.map(io).transpose()?, Some(io(out)?));
            link.lends = Some(self.out.clone());
            let transport = Once::file("file");
            Ok(Opened::open(LinkBackend::connected(transport, Connection::new(link))))
        })
    }
}
