//! Asking for a peripheral or a socket: the [`Opener`] trait, the broker client a brokered
//! worker uses, [`NoBroker`] for apps granted nothing, and [`SharedOpener`], the one opener the
//! device and network hosts of an app share.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use warden_ipc::Channel;
use warden_ipc::broker::{BrokerReply, BrokerRequest, Denial, Grant, ResourceRequest};

/// Opens one resource by the name the app used: the grant and exactly the descriptors it
/// describes, or why not.
pub trait Opener: Send {
    fn open(&mut self, request: ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), Denial>;
}

/// The opener of an app whose manifest grants no peripheral: no broker socket exists, so every
/// open is refused in the worker itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBroker;

impl Opener for NoBroker {
    fn open(&mut self, _request: ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        Err(Denial::NotGranted(
            "this app's manifest grants it no peripheral, network access or device service".into(),
        ))
    }
}

/// One opener shared by the device host ([`crate::Devices`]) and the network host
/// ([`crate::net::Net`]) of an app: there is one broker socket per worker, and its requests are
/// answered in order, one at a time. The worker has one thread, so the lock is never contended
/// (no `futex`).
#[derive(Clone)]
pub struct SharedOpener(Arc<Mutex<Box<dyn Opener>>>);

impl SharedOpener {
    pub fn new(opener: Box<dyn Opener>) -> SharedOpener {
        SharedOpener(Arc::new(Mutex::new(opener)))
    }
}

impl std::fmt::Debug for SharedOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedOpener").finish_non_exhaustive()
    }
}

impl Opener for SharedOpener {
    fn open(&mut self, request: ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        // A panic while the lock was held left no half-done state behind: each open is one
        // request and one reply, and the broker client marks itself broken on any failure.
        let mut opener = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        opener.open(request)
    }
}

/// The worker's end of the broker socket (`warden_ipc::broker`): one request, one reply, in
/// order. A reply that breaks the protocol is an `io` error for the app, never a panic; one
/// that leaves the conversation out of step (wrong `seq`, unreadable, socket gone) also makes
/// every later open fail `io`, since no later reply could be trusted to be its own.
#[derive(Debug)]
pub struct BrokerClient {
    channel: Channel,
    seq: u64,
    broken: Option<String>,
}

impl BrokerClient {
    pub fn new(channel: Channel) -> BrokerClient {
        BrokerClient {
            channel,
            seq: 0,
            broken: None,
        }
    }

    fn fail(&mut self, why: String) -> Denial {
        let denial = Denial::Io(format!("the capability broker failed: {why}"));
        self.broken = Some(why);
        denial
    }
}

impl Opener for BrokerClient {
    fn open(&mut self, request: ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        if let Some(why) = &self.broken {
            return Err(Denial::Io(format!(
                "the capability broker is unusable since an earlier failure: {why}"
            )));
        }
        self.seq += 1;
        let seq = self.seq;
        let name = request.describe();
        if let Err(e) = self
            .channel
            .send(&BrokerRequest { seq, open: request }, &[])
        {
            return Err(self.fail(format!("cannot ask for {name}: {e}")));
        }
        let (reply, fds) = match self.channel.recv::<BrokerReply>() {
            Ok(received) => received,
            Err(e) => return Err(self.fail(format!("no answer for {name}: {e}"))),
        };
        if reply.seq != seq {
            return Err(self.fail(format!("answer {} to request {seq} ({name})", reply.seq)));
        }
        match reply.result {
            Ok(grant) => {
                let expected = grant.access.descriptors();
                if fds.len() != expected {
                    // The descriptors that did come are closed when `fds` drops.
                    return Err(Denial::Io(format!(
                        "the capability broker granted {name} with {} descriptor(s), its \
                         access needs {expected}",
                        fds.len()
                    )));
                }
                Ok((grant, fds))
            }
            Err(_) if !fds.is_empty() => Err(Denial::Io(format!(
                "the capability broker refused {name} but attached {} descriptor(s)",
                fds.len()
            ))),
            Err(denial) => Err(denial),
        }
    }
}
