//! `intercore`: message channels to a real-time app. The broker opens a channel only when both
//! manifests list each other in `AllowedApplicationConnections` and the real-time app runs; the
//! descriptor it passes carries one message per `read` and per `write` — a Linux rpmsg endpoint
//! on a board, one end of a `SOCK_SEQPACKET` pair to the supervisor's bridge on an emulated
//! core (docs/formats/intercore.md) — so the calls here are the same for both.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use warden_ipc::broker::{Access, ResourceRequest};
use wasmtime::component::Resource;

use crate::bindings::warden::device::intercore::{Host, HostChannel};
use crate::bindings::warden::device::types::Error;
use crate::devices::{Claim, Devices, Held};
use crate::error::io;
use crate::linux::{deadline_in, wait_for};

/// Longest `receive` wait an app may ask for.
pub(crate) const MAX_RECEIVE_WAIT_MS: u32 = 60_000;

/// How long `send` waits for room (the other side reads slowly) before `timeout`.
pub(crate) const SEND_WAIT: Duration = Duration::from_secs(5);

/// An open channel.
#[derive(Debug)]
pub struct Channel {
    claim: Claim,
    label: String,
    fd: OwnedFd,
    max_message: u32,
}

impl Held for Channel {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl Channel {
    fn closed(&self) -> Error {
        io(format!(
            "{}: the channel is closed (the real-time app stopped)",
            self.label
        ))
    }

    fn send(&self, message: &[u8]) -> Result<(), Error> {
        if message.is_empty() || message.len() > self.max_message as usize {
            return Err(Error::InvalidArgument(format!(
                "a message of {} bytes (1 to {})",
                message.len(),
                self.max_message
            )));
        }
        // Wait for room, then write the whole message at once (one write is one message).
        let ready = wait_for(
            self.fd.as_fd(),
            PollFlags::OUT,
            Some(Instant::now() + SEND_WAIT),
        )
        .map_err(|e| io(format!("{}: waiting to send: {e}", self.label)))?;
        match ready {
            None => return Err(Error::Timeout),
            Some(r) if r.intersects(PollFlags::HUP | PollFlags::ERR) => return Err(self.closed()),
            Some(_) => {}
        }
        match rustix::io::write(&self.fd, message) {
            Ok(n) if n == message.len() => Ok(()),
            Ok(n) => Err(io(format!(
                "{}: {n} of {} bytes sent",
                self.label,
                message.len()
            ))),
            Err(rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET) => Err(self.closed()),
            Err(e) => Err(io(format!("{}: sending: {e}", self.label))),
        }
    }

    fn receive(&self, timeout_ms: u32) -> Result<Option<Vec<u8>>, Error> {
        if timeout_ms > MAX_RECEIVE_WAIT_MS {
            return Err(Error::InvalidArgument(format!(
                "a wait of {timeout_ms} ms (at most {MAX_RECEIVE_WAIT_MS})"
            )));
        }
        let deadline = deadline_in(timeout_ms);
        loop {
            let ready = wait_for(self.fd.as_fd(), PollFlags::IN, Some(deadline))
                .map_err(|e| io(format!("{}: waiting for a message: {e}", self.label)))?;
            if ready.is_none() {
                return Ok(None);
            }
            // One byte more than a message may hold, to tell a message that fits from one that
            // would have been cut.
            let mut buf = vec![0u8; self.max_message as usize + 1];
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => return Err(self.closed()),
                Ok(n) if n > self.max_message as usize => {
                    return Err(io(format!(
                        "{}: a message longer than {} bytes arrived",
                        self.label, self.max_message
                    )));
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::CONNRESET) => return Err(self.closed()),
                Err(e) => return Err(io(format!("{}: receiving: {e}", self.label))),
            }
        }
    }
}

impl HostChannel for Devices {
    fn open(&mut self, component_id: String) -> Result<Resource<Channel>, Error> {
        let name = format!("the channel to `{}`", component_id.to_ascii_lowercase());
        self.acquire_named(
            name,
            ResourceRequest::Intercore { component_id },
            |claim, granted| {
                let Access::Channel { max_message } = granted.access else {
                    return Err(granted.unusable("a channel"));
                };
                let label = granted.label.clone();
                Ok(Channel {
                    claim,
                    label,
                    fd: granted.single()?,
                    max_message,
                })
            },
        )
    }

    fn send(&mut self, channel: Resource<Channel>, message: Vec<u8>) -> Result<(), Error> {
        self.held(&channel)?.send(&message)
    }

    fn receive(
        &mut self,
        channel: Resource<Channel>,
        timeout_ms: u32,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.held(&channel)?.receive(timeout_ms)
    }

    fn max_message_size(&mut self, channel: Resource<Channel>) -> u32 {
        self.held(&channel).map_or(0, |c| c.max_message)
    }

    fn drop(&mut self, channel: Resource<Channel>) -> wasmtime::Result<()> {
        self.release(channel)
    }
}

impl Host for Devices {}
