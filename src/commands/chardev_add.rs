//! `chardev-add`: create a chardev.
//!
//! The id is reserved in the registry first (a second add of it fails
//! while the first is still opening), the ports on the chardevs it uses
//! (a mux's base, a hub's inputs) are made, then the backend opens on an
//! arbiter of the pool (it may wait: a fifo with no reader, a socket
//! waiting for its client) without holding the supervisor up, and the
//! result is committed in the supervisor's context.
use super::{Args, Command, Request};
use crate::actors::supervisor::{later, ready, Answer, ChardevRef, Supervisor};
use crate::api::execute::Executor;
use crate::backends::ChardevBackend;
use crate::chardev::{ChardevReturn, Port, PortConfig};
use crate::error::Error;
use crate::json::Json;
use crate::registry::{Holder, Reject};
use crate::runtime::Handle;
use actix::prelude::*;

/// `chardev-add`: create a chardev with a backend; its result names the
/// pty of a `pty` backend.
#[derive(Debug)]
pub struct ChardevAdd {
    /// The new chardev's id.
    pub id: String,
    /// Its backend and options.
    pub backend: ChardevBackend,
}

impl Request for ChardevAdd {
    const NAME: &'static str = "chardev-add";
    type Output = ChardevReturn;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<ChardevReturn, Error> {
        exec.call(move |sup, ctx| add(sup, ctx, self)).await?
    }
}

impl Command for ChardevAdd {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(ChardevAdd {
            id: args.string("id"),
            backend: backend(args)?,
        })
    }

    fn to_qmp(ret: ChardevReturn) -> Json {
        chardev_return(ret)
    }
}

/// The `backend` argument of chardev-add and chardev-change, taking `fd`
/// addresses from the session's descriptors.
pub(super) fn backend(args: &Args<'_>) -> Result<ChardevBackend, Error> {
    let v = args.get("backend").map(Json::to_serde).unwrap_or_default();
    Ok(ChardevBackend::from_qmp(&v)
        .map_err(Error::Backend)?
        .with_fds(args.fds()))
}

/// `ChardevReturn` as QMP returns it.
pub(super) fn chardev_return(ret: ChardevReturn) -> Json {
    match ret.pty {
        Some(p) => Json::object([("pty", Json::Str(p))]),
        None => Json::empty_object(),
    }
}

/// A reject of the registry as the command's answer. QEMU opens a log file
/// before the kind looks for the chardevs it uses, so with a reference
/// error a log file that cannot be created is the error reported (and the
/// log file is created, as QEMU creates it).
pub(super) fn refused(id: String, backend: &ChardevBackend, r: Reject) -> Answer<Result<ChardevReturn, Error>> {
    let reference = matches!(
        r,
        Reject::RefMissing(_) | Reject::RefInUse { .. } | Reject::RefRefused(_) | Reject::RefTooMany
    );
    let err = reject_error(&id, backend, r);
    match backend.log() {
        Ok(Some(opts)) if reference => later(async move {
            match crate::chardev::logfile::LogFile::open(opts).await {
                Err(source) => Err(Error::AddFailed { id, source }),
                Ok(_) => Err(err),
            }
        }),
        _ => ready(Err(err)),
    }
}

fn reject_error(id: &str, backend: &ChardevBackend, r: Reject) -> Error {
    match r {
        Reject::AlreadyExists => Error::AlreadyExists(id.to_owned()),
        Reject::ResourceLent(res) => Error::AddFailed {
            id: id.to_owned(),
            source: backend.conflict(&res),
        },
        r @ (Reject::RefMissing(_) | Reject::RefInUse { .. } | Reject::RefRefused(_) | Reject::RefTooMany) => {
            Error::AddFailed {
                id: id.to_owned(),
                source: backend.reference_error(id, &r),
            }
        }
        _ => Error::Busy(id.to_owned()),
    }
}

fn add(sup: &mut Supervisor, ctx: &mut Context<Supervisor>, cmd: ChardevAdd) -> Answer<Result<ChardevReturn, Error>> {
    let ChardevAdd { id, backend } = cmd;
    let info = backend.info();
    let input = info.input;
    let ticket = match sup.registry.reserve(&id, info.clone()) {
        Ok(t) => t,
        Err(r) => return refused(id, &backend, r),
    };
    if sup.registry.chardev_count() > sup.limits.max_chardevs {
        let ports = sup.registry.abort(ticket);
        sup.detach_ports(ports);
        let max = sup.limits.max_chardevs;
        return ready(Err(Error::TooMany { what: "chardevs", max }));
    }
    tracing::debug!(chardev = %id, kind = backend.kind(), "chardev-add reserved");
    let holder = Holder::Chardev(id.clone());
    // Its ports on the chardevs it uses are closed until it has a
    // frontend of its own (QEMU's frontend-open of a mux's base).
    let (ports, attached): (Vec<Port>, Vec<_>) = info
        .references
        .iter()
        .map(|r| sup.make_port(r, &holder, false, PortConfig::default()))
        .unzip();
    // A chardev over others runs where they run: one data path, one thread.
    let arbiter = match info.references.first().and_then(|r| sup.arbiter_of(r)) {
        Some(a) => a,
        None => sup.place(&id),
    };
    let rx = sup.spawn_open(
        arbiter,
        id.clone(),
        ticket.generation,
        backend,
        (ports, attached),
        ctx.address().recipient(),
    );
    Box::pin(rx.into_actor(sup).map(move |res, sup, _ctx| match res {
        Ok(Ok(started)) => {
            let pty = started.pty.clone();
            let kept = ChardevRef {
                addr: started.addr,
                status: started.status,
                ring: started.ring,
                arbiter,
            };
            match sup.registry.commit(ticket, kept) {
                Ok(()) => {
                    sup.publish(&id);
                    sup.inputs.register(&id, input);
                    tracing::info!(chardev = %id, "chardev added");
                    Ok(ChardevReturn { pty })
                }
                Err(kept) => {
                    kept.addr.do_send(crate::actors::chardev::Control::Stop);
                    Err(Error::NotFound(id))
                }
            }
        }
        Ok(Err(source)) => {
            let ports = sup.registry.abort(ticket);
            sup.detach_ports(ports);
            tracing::info!(chardev = %id, cause = %source, "chardev-add failed");
            Err(Error::AddFailed { id, source })
        }
        Err(_) => {
            let ports = sup.registry.abort(ticket);
            sup.detach_ports(ports);
            Err(Error::ShuttingDown)
        }
    }))
}

impl Handle {
    /// `chardev-add`: create chardev `id` with `backend`; returns the pty
    /// path for a `pty` backend.
    pub async fn chardev_add(&self, id: &str, backend: ChardevBackend) -> Result<ChardevReturn, Error> {
        self.run(ChardevAdd { id: id.into(), backend }).await
    }
}
