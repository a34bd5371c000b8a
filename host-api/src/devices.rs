//! [`Devices`]: the store data behind every `warden:device` interface of one app — the opener
//! it asks, the resources it holds, the names they hold open, and where `log` writes.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, BrokerRequest, ResourceRequest};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::bindings::App;
use crate::bindings::warden::device::types::{self, Error};
use crate::error::{self, io};
use crate::opener::Opener;

/// The device state of one running app.
pub struct Devices {
    opener: Box<dyn Opener>,
    /// The app's open peripherals. Device resources are host resource types of their own, so
    /// they can live apart from WASI's table: a handle of one kind is never taken for another.
    table: ResourceTable,
    /// Every name an open resource holds (the name the app used and the peripheral it resolved
    /// to, without a leading `$`): a second open of any of them is `busy`.
    open: BTreeSet<String>,
    /// The app's stderr, for `log`.
    pub(crate) log: Box<dyn Write + Send>,
    /// Its subscription to update events, once `sysevent.next-event` made one.
    pub(crate) sysevents: crate::sysevent::SysEvents,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

/// Adds every `warden:device` interface to `linker`, backed by the [`Devices`] `get` finds in
/// the store data. Building the linker needs no syscall a confined worker lacks.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut Devices,
) -> wasmtime::Result<()> {
    App::add_to_linker::<T, HasSelf<Devices>>(linker, get)?;
    crate::uart::link_write_in_place(linker, get)
}

/// What the opener granted, ready for the resource that takes it.
pub(crate) struct Granted {
    /// For messages: the name the app used, and the peripheral it resolved to.
    pub(crate) label: String,
    pub(crate) access: Access,
    pub(crate) fds: Vec<OwnedFd>,
}

impl Granted {
    /// The one descriptor of a single-descriptor access.
    pub(crate) fn single(self) -> Result<OwnedFd, Error> {
        let count = self.fds.len();
        match <[OwnedFd; 1]>::try_from(self.fds) {
            Ok([fd]) => Ok(fd),
            Err(_) => Err(io(format!(
                "{}: granted with {count} descriptors, one expected",
                self.label
            ))),
        }
    }

    /// The error for a grant whose access does not fit the resource asked for.
    pub(crate) fn unusable(&self, wanted: &str) -> Error {
        io(format!(
            "{}: granted as {:?}, which is not {wanted}",
            self.label, self.access
        ))
    }
}

/// The names an open resource holds; released when the app drops the resource.
#[derive(Debug)]
pub(crate) struct Claim {
    names: Vec<String>,
}

/// A device resource: it knows the names it holds.
pub(crate) trait Held: Send + 'static {
    fn claim(&self) -> &Claim;
}

/// The key a name is tracked under: the manifest's `$NAME` and `NAME` are one peripheral.
fn key(name: &str) -> &str {
    name.strip_prefix('$').unwrap_or(name)
}

impl Devices {
    /// The device state of an app that asks `opener` for its peripherals and logs to `log`
    /// (the app's stderr).
    pub fn new(opener: Box<dyn Opener>, log: Box<dyn Write + Send>) -> Devices {
        Devices {
            opener,
            table: ResourceTable::new(),
            open: BTreeSet::new(),
            log,
            sysevents: crate::sysevent::SysEvents::default(),
        }
    }

    /// Whether a resource the app holds open holds `name` (with or without a leading `$`).
    pub fn is_open(&self, name: &str) -> bool {
        self.open.contains(key(name))
    }

    /// Opens `request` for the resource `make` builds from the grant: checks the name, refuses a
    /// name already open (`busy`, without asking the broker), asks the opener, refuses a grant
    /// of a peripheral already open under another name, and records the names.
    pub(crate) fn acquire<R: Held>(
        &mut self,
        request: ResourceRequest,
        make: impl FnOnce(Claim, Granted) -> Result<R, Error>,
    ) -> Result<Resource<R>, Error> {
        let name = request.peripheral().unwrap_or_default().to_owned();
        BrokerRequest {
            seq: 0,
            open: request.clone(),
        }
        .validate()
        .map_err(error::from_denial)?;
        if self.open.contains(key(&name)) {
            return Err(Error::Busy(format!("`{name}` is already open in this app")));
        }
        let (grant, fds) = self.opener.open(request).map_err(error::from_denial)?;
        let peripheral = key(&grant.peripheral);
        if self.open.contains(peripheral) {
            return Err(Error::Busy(format!(
                "`{name}` is `{}`, which is already open in this app",
                grant.peripheral
            )));
        }
        let mut names = vec![key(&name).to_owned()];
        if peripheral != key(&name) {
            names.push(peripheral.to_owned());
        }
        let label = if peripheral == key(&name) {
            format!("`{name}`")
        } else {
            format!("`{name}` ({})", grant.peripheral)
        };
        let granted = Granted {
            label,
            access: grant.access,
            fds,
        };
        let resource = make(Claim { names }, granted)?;
        let names = resource.claim().names.clone();
        let handle = self
            .table
            .push(resource)
            .map_err(|e| io(format!("`{name}`: cannot hold it open: {e}")))?;
        self.open.extend(names);
        Ok(handle)
    }

    /// Asks the broker for something that is not a peripheral (a power action, an update
    /// subscription or deferral): the request is checked here first, like an open.
    pub(crate) fn ask(
        &mut self,
        request: ResourceRequest,
    ) -> Result<(warden_ipc::broker::Grant, Vec<OwnedFd>), Error> {
        BrokerRequest {
            seq: 0,
            open: request.clone(),
        }
        .validate()
        .map_err(error::from_denial)?;
        self.opener.open(request).map_err(error::from_denial)
    }

    /// Opens something that is not a peripheral under `name` (a channel to another app): `busy`
    /// if `name` is open already; else asks the broker for `request` and holds what `make`
    /// builds from the grant under that name.
    pub(crate) fn acquire_named<R: Held>(
        &mut self,
        name: String,
        request: ResourceRequest,
        make: impl FnOnce(Claim, Granted) -> Result<R, Error>,
    ) -> Result<Resource<R>, Error> {
        if self.open.contains(&name) {
            return Err(Error::Busy(format!("{name} is already open in this app")));
        }
        let (grant, fds) = self.ask(request)?;
        let granted = Granted {
            label: name.clone(),
            access: grant.access,
            fds,
        };
        let resource = make(
            Claim {
                names: vec![name.clone()],
            },
            granted,
        )?;
        let handle = self
            .table
            .push(resource)
            .map_err(|e| io(format!("{name}: cannot hold it open: {e}")))?;
        self.open.insert(name);
        Ok(handle)
    }

    /// The open resource behind `handle`.
    pub(crate) fn held<R: Held>(&mut self, handle: &Resource<R>) -> Result<&mut R, Error> {
        self.table
            .get_mut(handle)
            .map_err(|e| io(format!("a device handle the host does not hold: {e}")))
    }

    /// Drops the resource behind `handle`: its descriptors close and its names are free again.
    pub(crate) fn release<R: Held>(&mut self, handle: Resource<R>) -> wasmtime::Result<()> {
        let resource = self.table.delete(handle)?;
        for name in &resource.claim().names {
            self.open.remove(name);
        }
        Ok(())
    }
}

impl types::Host for Devices {}
