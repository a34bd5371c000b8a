//! A sequenced-packet socket that carries one JSON message and its descriptors per packet.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType, recvmsg,
    sendmsg, socketpair,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest message, in bytes.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Most descriptors attached to one message.
pub const MAX_FDS: usize = 8;

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the peer closed the channel")]
    Closed,
    #[error("message of {len} bytes is larger than the limit of {MAX_MESSAGE}")]
    TooLarge { len: usize },
    #[error("{count} descriptors attached, more than the limit of {MAX_FDS}")]
    TooManyFds { count: usize },
    #[error("a message or its descriptors arrived truncated")]
    Truncated,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("expected {expected} descriptor(s) with this message, got {got}")]
    FdCount { expected: usize, got: usize },
}

/// One end of a supervisor ↔ worker channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), IpcError> {
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(std::io::Error::from)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Wraps a descriptor that is one end of a `SOCK_SEQPACKET` pair.
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Bounds how long [`Channel::recv`] waits (`None`: forever). A receive that times out
    /// fails with an I/O error of kind `WouldBlock`.
    pub fn set_recv_timeout(&self, timeout: Option<std::time::Duration>) -> Result<(), IpcError> {
        rustix::net::sockopt::set_socket_timeout(
            &self.fd,
            rustix::net::sockopt::Timeout::Recv,
            timeout,
        )
        .map_err(std::io::Error::from)?;
        Ok(())
    }

    /// Sends `message` with `fds` attached, as one packet.
    pub fn send<T: Serialize>(&self, message: &T, fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        let bytes = serde_json::to_vec(message).map_err(|e| IpcError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_MESSAGE {
            return Err(IpcError::TooLarge { len: bytes.len() });
        }
        if fds.len() > MAX_FDS {
            return Err(IpcError::TooManyFds { count: fds.len() });
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(IpcError::TooManyFds { count: fds.len() });
        }
        let sent = sendmsg(
            &self.fd,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(std::io::Error::from)?;
        if sent != bytes.len() {
            return Err(IpcError::Truncated);
        }
        Ok(())
    }

    /// Receives one message and the descriptors attached to it (close-on-exec).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), IpcError> {
        // One receive buffer per thread, zeroed once: zeroing 64 KiB for every message cost
        // more than the rest of a small simulated-board call.
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            if buf.len() != MAX_MESSAGE + 1 {
                buf.resize(MAX_MESSAGE + 1, 0);
            }
            self.recv_into(&mut buf)
        })
    }

    fn recv_into<T: DeserializeOwned>(
        &self,
        buf: &mut [u8],
    ) -> Result<(T, Vec<OwnedFd>), IpcError> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = recvmsg(
            &self.fd,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if msg
            .flags
            .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
        {
            return Err(IpcError::Truncated);
        }
        if msg.bytes == 0 {
            return Err(IpcError::Closed);
        }
        if msg.bytes > MAX_MESSAGE {
            return Err(IpcError::TooLarge { len: msg.bytes });
        }
        let body = buf.get(..msg.bytes).ok_or(IpcError::Truncated)?;
        let value = serde_json::from_slice(body).map_err(|e| IpcError::Malformed(e.to_string()))?;
        Ok((value, fds))
    }

    /// Like [`Channel::recv`], and requires exactly `expected` descriptors.
    pub fn recv_with_fds<T: DeserializeOwned>(
        &self,
        expected: usize,
    ) -> Result<(T, Vec<OwnedFd>), IpcError> {
        let (value, fds) = self.recv()?;
        if fds.len() != expected {
            return Err(IpcError::FdCount {
                expected,
                got: fds.len(),
            });
        }
        Ok((value, fds))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    use super::*;
    use crate::{CodeKind, RunRequest, ToWorker};

    fn run_request() -> ToWorker {
        ToWorker::Run(RunRequest {
            kind: CodeKind::Component,
            code_sha256: "00".repeat(32),
            code_bytes: 1,
            args: vec!["app".into()],
            env: vec![],
            memory_limit_bytes: 1 << 20,
            watchdog_ms: 1000,
            storage_quota_bytes: None,
            broker: false,
            tls_roots: vec![],
        })
    }

    #[test]
    fn a_receive_with_a_timeout_gives_up_and_one_without_waits() {
        let (a, b) = Channel::pair().unwrap();
        a.set_recv_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        let started = std::time::Instant::now();
        assert!(a.recv::<ToWorker>().is_err(), "nothing was sent");
        assert!(started.elapsed() >= std::time::Duration::from_millis(50));
        a.set_recv_timeout(None).unwrap();
        b.send(&run_request(), &[]).unwrap();
        assert_eq!(a.recv::<ToWorker>().unwrap().0, run_request());
    }

    #[test]
    fn a_message_and_its_descriptors_arrive_together() {
        let (a, b) = Channel::pair().unwrap();
        let mut file = tempfile_in_memory();
        file.write_all(b"payload").unwrap();
        a.send(&run_request(), &[file.as_fd()]).unwrap();
        let (msg, fds): (ToWorker, _) = b.recv_with_fds(1).unwrap();
        assert_eq!(msg, run_request());
        let mut received = std::fs::File::from(fds.into_iter().next().unwrap());
        received.rewind().unwrap();
        let mut text = String::new();
        received.read_to_string(&mut text).unwrap();
        assert_eq!(text, "payload");
    }

    #[test]
    fn the_wrong_number_of_descriptors_is_refused() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&run_request(), &[]).unwrap();
        let err = b.recv_with_fds::<ToWorker>(3).unwrap_err();
        assert!(
            matches!(
                err,
                IpcError::FdCount {
                    expected: 3,
                    got: 0
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_closed_peer_is_reported() {
        let (a, b) = Channel::pair().unwrap();
        drop(a);
        assert!(matches!(b.recv::<ToWorker>(), Err(IpcError::Closed)));
    }

    #[test]
    fn malformed_and_unknown_messages_are_refused() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&serde_json::json!({"type": "run", "surprise": 1}), &[])
            .unwrap();
        assert!(matches!(b.recv::<ToWorker>(), Err(IpcError::Malformed(_))));
    }

    #[test]
    fn oversized_messages_are_refused_on_both_sides() {
        let (a, _b) = Channel::pair().unwrap();
        let big = "x".repeat(MAX_MESSAGE);
        assert!(matches!(a.send(&big, &[]), Err(IpcError::TooLarge { .. })));
    }

    fn tempfile_in_memory() -> std::fs::File {
        let fd = rustix::fs::memfd_create("ipc-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        std::fs::File::from(fd)
    }
}
