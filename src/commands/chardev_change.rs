//! `chardev-change`: replace a chardev's backend, atomically (README
//! difference 1: on failure the old backend is still there and working).
//!
//! A lease on the id keeps everyone else off it; the old backend lends
//! what the new one needs (the same pty link, the terminal, the output
//! file) and takes it back if the new one fails; what the frontends wrote
//! before the change goes to the old backend; then the ports move to the
//! new backend (QEMU's hotswap) and the port operations held meanwhile are
//! replayed.
use super::chardev_add::{backend, chardev_return, refused};
use super::{Args, Command, Request};
use crate::actors::chardev::Control;
use crate::actors::supervisor::{ready, Answer, ChardevRef, Supervisor};
use crate::api::execute::Executor;
use crate::backends::ChardevBackend;
use crate::chardev::{ChardevReturn, Port, PortConfig};
use crate::error::Error;
use crate::json::Json;
use crate::registry::{Holder, Reject};
use crate::runtime::Handle;
use actix::prelude::*;
use tokio::sync::oneshot;

/// `chardev-change`: give a chardev a new backend; its frontends move to
/// it, and on failure the old backend stays, working.
#[derive(Debug)]
pub struct ChardevChange {
    /// The chardev to change.
    pub id: String,
    /// Its new backend.
    pub backend: ChardevBackend,
}

impl Request for ChardevChange {
    const NAME: &'static str = "chardev-change";
    type Output = ChardevReturn;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<ChardevReturn, Error> {
        exec.call(move |sup, ctx| change(sup, ctx, self)).await?
    }
}

impl Command for ChardevChange {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ChardevChange {
            id: args.string("id"),
            backend: backend(args)?,
        })
    }

    fn to_qmp(ret: ChardevReturn) -> Json {
        chardev_return(ret)
    }
}

fn change(
    sup: &mut Supervisor,
    ctx: &mut Context<Supervisor>,
    cmd: ChardevChange,
) -> Answer<Result<ChardevReturn, Error>> {
    let ChardevChange { id, backend } = cmd;
    let lease = match sup.registry.begin_change(&id, backend.info()) {
        Ok(l) => l,
        Err(Reject::NotFound) => return ready(Err(Error::DoesNotExist(id))),
        Err(Reject::NotHotswappable) => return ready(Err(Error::MuxHotswap)),
        Err(Reject::HotswapUnsupported) => return ready(Err(Error::HotswapUnsupported)),
        Err(Reject::ResourceLent(r)) => {
            let source = backend.conflict(&r);
            return ready(Err(Error::AddFailed { id, source }));
        }
        // Without a frontend QEMU removes the chardev and adds the new one:
        // a mux's or a hub's references are checked as chardev-add checks
        // them (here the old chardev stays if they fail).
        Err(r @ (Reject::RefMissing(_) | Reject::RefInUse { .. } | Reject::RefRefused(_) | Reject::RefTooMany)) => {
            return refused(id, &backend, r)
        }
        Err(_) => return ready(Err(Error::Busy(id))),
    };
    let Some(old) = sup.registry.get(&id).cloned() else {
        let ports = sup.registry.fail_change(lease);
        sup.detach_ports(ports);
        return ready(Err(Error::DoesNotExist(id)));
    };
    let kind = backend.kind();
    let info = backend.info();
    let input = info.input;
    // A mux or hub takes ports on the chardevs it uses (closed until it has
    // a frontend of its own) and runs where they run.
    let holder = Holder::Chardev(id.clone());
    let refs: (Vec<Port>, Vec<_>) = info
        .references
        .iter()
        .map(|r| sup.make_port(r, &holder, false, PortConfig::default()))
        .unzip();
    let arbiter = info
        .references
        .first()
        .and_then(|r| sup.arbiter_of(r))
        .unwrap_or(old.arbiter);
    // The new backend may need what the old one holds (the same pty link
    // path, the terminal, the same output file): the old one lends it for
    // the attempt and takes it back if the attempt fails.
    let lends = !lease.lent.is_empty();
    let rx = sup.spawn_replacement(
        &old,
        arbiter,
        lends,
        id.clone(),
        lease.generation,
        backend,
        refs,
        ctx.address().recipient(),
    );
    Box::pin(
        async move {
            let started = match rx.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    if lends {
                        old.addr.do_send(Control::Reacquire);
                    }
                    return Err(Some(e));
                }
                Err(_) => return Err(None),
            };
            // Take the frontends off the old backend (QEMU's detach); the new
            // one gets them in the supervisor's context below.
            let (tx, ports) = oneshot::channel();
            old.addr.do_send(Control::TakePorts(tx));
            Ok((started, ports.await.unwrap_or_default(), old))
        }
        .into_actor(sup)
        .map(move |res, sup, _ctx| {
            let has_frontend = !sup.registry.holders(&id).is_empty();
            let out = match res {
                Ok((started, ports, old)) => {
                    let pty = started.pty.clone();
                    started.addr.do_send(Control::GivePorts(ports));
                    let new = ChardevRef {
                        addr: started.addr,
                        status: started.status,
                        ring: started.ring,
                        arbiter,
                    };
                    let finished = sup.registry.finish_change(lease, Some(new));
                    sup.publish(&id);
                    match finished {
                        Ok(_) => {
                            old.addr.do_send(Control::Stop);
                            sup.inputs.register(&id, input);
                            tracing::info!(chardev = %id, kind, "chardev changed");
                            Ok(ChardevReturn { pty })
                        }
                        Err(new) => {
                            if let Some(n) = new {
                                n.addr.do_send(Control::Stop);
                            }
                            Err(Error::DoesNotExist(id.clone()))
                        }
                    }
                }
                Err(e) => {
                    let ports = sup.registry.fail_change(lease);
                    sup.detach_ports(ports);
                    match e {
                        // QEMU without a frontend re-adds (so the add
                        // prefix); with one, the bare cause.
                        Some(source) if has_frontend => Err(Error::ChangeFailed(source)),
                        Some(source) => Err(Error::AddFailed { id: id.clone(), source }),
                        None => Err(Error::ShuttingDown),
                    }
                }
            };
            sup.replay(&id);
            out
        }),
    )
}

impl Handle {
    /// `chardev-change`: give chardev `id` a new backend; its frontends
    /// move to it. On failure the old backend stays, working.
    pub async fn chardev_change(&self, id: &str, backend: ChardevBackend) -> Result<ChardevReturn, Error> {
        self.run(ChardevChange { id: id.into(), backend }).await
    }
}
