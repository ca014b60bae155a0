//! `pipe`: reads `<path>.in` and writes `<path>.out` (both opened read-write,
//! so a fifo with no peer never blocks the open nor reads end of file); when
//! either is missing, `<path>` itself is used both ways, as in QEMU.
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::fdio::{open_path, FdIo, FdLink};
use crate::chardev::transport::{Connection, LinkBackend, Once};
use crate::error::BackendError;
use crate::options::Opts;
use futures_util::future::LocalBoxFuture;
use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};

/// The `pipe` kind.
pub(crate) const KIND: Kind = Kind {
    name: "pipe",
    aliases: &[],
    from_qmp: from_data::<Pipe>,
    from_cli,
    syntax: "-chardev pipe,id=ID,path=PATH\t(PATH.in/PATH.out, else PATH both ways)",
    facts: Facts {
        oob: true,
        ..Facts::NONE
    },
};

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    let device = opts.take("path").ok_or("chardev: pipe: no device path given")?;
    Ok(Box::new(Pipe { device }))
}

/// `pipe` options (`ChardevHostdev`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipe {
    /// The path prefix (`<device>.in`, `<device>.out`) or the fifo itself.
    pub device: String,
}

impl BackendConfig for Pipe {
    fn kind(&self) -> &'static str {
        "pipe"
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let path = self.device;
            let pair = (
                open_path(&format!("{path}.in"), OFlags::RDWR).await,
                open_path(&format!("{path}.out"), OFlags::RDWR).await,
            );
            let failed = |e: std::io::Error| BackendError::Open {
                path: path.clone(),
                source: e.into(),
            };
            let (input, output) = match pair {
                (Ok(i), Ok(o)) => (i, o),
                _ => {
                    let fd = open_path(&path, OFlags::RDWR).await?;
                    let dup = rustix::io::fcntl_dupfd_cloexec(&fd, 0).map_err(|e| failed(e.into()))?;
                    (fd, dup)
                }
            };
            let link = FdLink::new(
                Some(FdIo::new(input).map_err(failed)?),
                Some(FdIo::new(output).map_err(failed)?),
            );
            let transport = Once::file("pipe");
            Ok(Opened::open(LinkBackend::connected(transport, Connection::new(link))))
        })
    }
}
