//! `quit`: stop the daemon. QEMU's `SHUTDOWN` event (reason
//! `host-qmp-quit`) goes to every subscriber first; QMP sends the reply,
//! then the system stops.
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::error::Error;
use crate::events::{Event, ShutdownReason};
use crate::json::Json;

/// `quit`: stop the system (QEMU's `SHUTDOWN` event first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quit;

impl Request for Quit {
    const NAME: &'static str = "quit";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        exec.with(|sup, ctx| {
            sup.emit(
                Event::Shutdown {
                    guest: false,
                    reason: ShutdownReason::HostQmpQuit,
                },
                ctx,
            )
        })
        .await
    }
}

impl Command for Quit {
    const STOPS: bool = true;

    fn from_qmp(_args: &Args<'_>) -> Result<Self, Error> {
        Ok(Quit)
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl crate::runtime::Handle {
    /// `quit`: QEMU's `SHUTDOWN` (reason `host-qmp-quit`) to every
    /// subscriber, then the system stops once they took it (bounded).
    /// Returns when the system is stopping.
    pub async fn quit(&self) -> Result<(), Error> {
        self.run(Quit).await?;
        self.executor().stop_system().await
    }
}
