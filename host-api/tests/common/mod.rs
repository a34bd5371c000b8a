//! A fake broker and a fake simulated board, each a thread on one end of a socket pair, as
//! the supervisor runs them; and a `Devices` wired to them.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use warden_host_api::{BrokerClient, Devices};
use warden_ipc::Channel;
use warden_ipc::broker::{
    Access, BrokerReply, BrokerRequest, Denial, Detail, Grant, ResourceRequest,
};
use warden_ipc::sim::{SimReply, SimRequest};

/// What the fake broker answers to one request: the result and the descriptors to attach.
pub type Answer = (Result<Grant, Denial>, Vec<OwnedFd>);

/// Everything a fake was asked, in order.
#[derive(Clone)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::default())
    }
}

impl<T: Clone> Log<T> {
    fn push(&self, item: T) {
        self.lock().push(item);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn all(&self) -> Vec<T> {
        self.lock().clone()
    }
}

/// Starts a broker thread answering with `answer`; returns the worker's end as an opener and
/// the broker's log of requests.
pub fn broker(
    mut answer: impl FnMut(&ResourceRequest) -> Answer + Send + 'static,
) -> (BrokerClient, Log<ResourceRequest>) {
    let (worker, supervisor) = Channel::pair().unwrap();
    let log = Log::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        while let Ok((request, _)) = supervisor.recv::<BrokerRequest>() {
            seen.push(request.open.clone());
            let (result, fds) = answer(&request.open);
            let reply = BrokerReply {
                seq: request.seq,
                result,
            };
            let borrowed: Vec<_> = fds.iter().map(std::os::fd::AsFd::as_fd).collect();
            if supervisor.send(&reply, &borrowed).is_err() {
                return;
            }
        }
    });
    (BrokerClient::new(worker), log)
}

/// A broker thread that answers raw replies (to break the protocol on purpose).
pub fn raw_broker(
    mut answer: impl FnMut(&BrokerRequest) -> (BrokerReply, Vec<OwnedFd>) + Send + 'static,
) -> BrokerClient {
    let (worker, supervisor) = Channel::pair().unwrap();
    std::thread::spawn(move || {
        while let Ok((request, _)) = supervisor.recv::<BrokerRequest>() {
            let (reply, fds) = answer(&request);
            let borrowed: Vec<_> = fds.iter().map(std::os::fd::AsFd::as_fd).collect();
            if supervisor.send(&reply, &borrowed).is_err() {
                return;
            }
        }
    });
    BrokerClient::new(worker)
}

/// One simulated resource: the worker's end to grant, what the board was asked, and the
/// thread, which ends when the worker's end closes.
pub struct Board {
    pub worker_end: Option<OwnedFd>,
    pub requests: Log<SimRequest>,
    pub thread: JoinHandle<()>,
}

/// Starts a board thread answering every request with `answer`.
pub fn board(mut answer: impl FnMut(&SimRequest) -> SimReply + Send + 'static) -> Board {
    let (worker, board) = Channel::pair().unwrap();
    let requests = Log::default();
    let seen = requests.clone();
    let thread = std::thread::spawn(move || {
        while let Ok((request, _)) = board.recv::<SimRequest>() {
            seen.push(request.clone());
            if board.send(&answer(&request), &[]).is_err() {
                return;
            }
        }
    });
    Board {
        worker_end: Some(worker.into_fd()),
        requests,
        thread,
    }
}

impl Board {
    /// A grant of this board's resource as `peripheral`, with its descriptor.
    pub fn grant(&mut self, peripheral: &str, detail: Detail) -> Answer {
        let fd = self.worker_end.take().expect("granted once");
        sim_grant(peripheral, detail, fd)
    }
}

/// A grant of a simulated resource as `peripheral`, with the worker's end `fd`.
pub fn sim_grant(peripheral: &str, detail: Detail, fd: OwnedFd) -> Answer {
    (
        Ok(Grant {
            peripheral: peripheral.into(),
            access: Access::Sim { detail },
        }),
        vec![fd],
    )
}

/// A `Devices` asking `opener`, logging into the returned buffer.
pub fn devices(opener: BrokerClient) -> (Devices, SharedBuf) {
    let log = SharedBuf::default();
    (Devices::new(Box::new(opener), Box::new(log.clone())), log)
}

/// A buffer the log writes into.
#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
