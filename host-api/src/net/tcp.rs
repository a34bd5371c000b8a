//! `wasi:sockets/tcp` and `tcp-create-socket` over descriptors the broker passes.
//!
//! | WASI call | here |
//! |---|---|
//! | `create-tcp-socket` | records the family |
//! | `start-bind` / `finish-bind` | records the address (no broker call: a client's local address is the supervisor's choice; a server's is sent with `start-listen`) |
//! | `start-connect` | broker `Connect { tcp, remote }`: the supervisor connects and passes the socket |
//! | `finish-connect` | the input and output streams over that socket |
//! | `start-listen` | broker `Listen { tcp, bound address, backlog }`: a listening socket |
//! | `accept` | `accept4` on the listening socket (non-blocking; `would-block` if none is pending) |
//! | `local-address`, `remote-address` | from the grant (no `getsockname`/`getpeername`) |
//! | `shutdown` | `shutdown(2)` on the socket |
//! | socket options | `not-supported` (the supervisor made the socket; see `error::options`) |
//!
//! Writes go to the socket at once; what it does not take is written by a task on the
//! worker's runtime, and `check-write` allows nothing more until that is done (at most
//! [`WRITE_PERMIT`] bytes wait in the host per stream). A `shutdown(send)` during such a write
//! takes effect after it, and dropping the output stream waits for it, so no accepted byte is
//! lost (unless the app exits with a write still under way).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use rustix::net::Shutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use warden_ipc::broker::{MAX_BACKLOG, ResourceRequest, Transport};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{
    self as wasi_tcp, HostTcpSocket, ShutdownType, TcpSocket as WasiTcpSocket,
};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, InputStream, OutputStream, Pollable, SocketError,
    StreamError, StreamResult,
};

use super::error::{self, with_reason};
use super::{NetCtxView, handle, same_family};

/// Most bytes one read returns (wasmtime-wasi's own bound on a host allocation per read).
const MAX_READ: usize = 64 * 1024;

/// Most bytes `check-write` permits at once, and so most bytes waiting in the host per stream.
pub(super) const WRITE_PERMIT: usize = 64 * 1024;

/// The listen backlog when the app sets none (the kernel's `SOMAXCONN` before Linux 5.4, and
/// wasmtime-wasi's default).
const DEFAULT_BACKLOG: u32 = 128;

/// A TCP socket of the app.
pub(super) struct Socket {
    family: IpAddressFamily,
    state: State,
    backlog: u32,
}

enum State {
    Unbound,
    BindStarted(SocketAddr),
    Bound(SocketAddr),
    /// The broker answered; `finish-connect` reports it.
    ConnectStarted(Result<Connection, SocketError>),
    /// Streams handed out (after `finish-connect`, or made by `accept`).
    Connected(Connection),
    ListenStarted(Listener),
    Listening(Listener),
    /// A connection attempt failed: nothing more can be done with this socket.
    Closed,
}

/// A connected socket: the stream both directions share, and its addresses from the grant.
struct Connection {
    stream: Arc<TcpStream>,
    local: SocketAddr,
    remote: SocketAddr,
    shutdown: Arc<Shutdowns>,
}

/// What the socket and its two streams share about shutting down.
#[derive(Default)]
struct Shutdowns {
    /// `shutdown(receive)` was asked: the input stream is closed.
    receive: AtomicBool,
    /// `shutdown(send)` was asked: the output stream is closed, and the sending side is shut
    /// down once no background write is left.
    send: AtomicBool,
    /// A background write is under way (its task shuts the sending side down if asked to).
    sending: AtomicBool,
}

/// A listening socket, with a connection `ready` accepted and `accept` has not taken yet.
struct Listener {
    inner: TcpListener,
    local: SocketAddr,
    pending: Option<io::Result<(TcpStream, SocketAddr)>>,
}

impl Socket {
    fn new(family: IpAddressFamily) -> Socket {
        Socket {
            family,
            state: State::Unbound,
            backlog: DEFAULT_BACKLOG,
        }
    }

    fn connected(family: IpAddressFamily, connection: Connection) -> Socket {
        Socket {
            family,
            state: State::Connected(connection),
            backlog: DEFAULT_BACKLOG,
        }
    }
}

impl Connection {
    fn new(stream: TcpStream, local: SocketAddr, remote: SocketAddr) -> Connection {
        Connection {
            stream: Arc::new(stream),
            local,
            remote,
            shutdown: Arc::default(),
        }
    }

    /// The connection from a broker's grant for `request` (one connected TCP socket).
    fn granted(
        request: &ResourceRequest,
        granted: (warden_ipc::broker::Grant, Vec<std::os::fd::OwnedFd>),
    ) -> Result<Connection, SocketError> {
        let socket = error::socket(request, granted, Transport::Tcp, true)?;
        let remote = socket
            .remote
            .ok_or_else(|| with_reason(ErrorCode::Unknown, "a connected socket without a peer"))?;
        let stream = TcpStream::from_std(std::net::TcpStream::from(socket.fd))
            .map_err(|e| error::from_io(&e))?;
        Ok(Connection::new(stream, socket.local, remote))
    }

    fn streams(&self) -> (DynInputStream, DynOutputStream) {
        let reader = Reader {
            stream: Arc::clone(&self.stream),
            shutdown: Arc::clone(&self.shutdown),
            closed: false,
        };
        let writer = Writer {
            stream: Arc::clone(&self.stream),
            shutdown: Arc::clone(&self.shutdown),
            task: None,
            failed: None,
            closed: false,
        };
        (Box::new(reader), Box::new(writer))
    }

    fn shut_down(&self, how: ShutdownType) -> Result<(), SocketError> {
        let os = |how: Shutdown| {
            rustix::net::shutdown(&*self.stream, how)
                .map_err(|e| with_reason(ErrorCode::from(e), format!("shutdown: {e}")))
        };
        if matches!(how, ShutdownType::Receive | ShutdownType::Both) {
            self.shutdown.receive.store(true, Ordering::SeqCst);
            os(Shutdown::Read)?;
        }
        if matches!(how, ShutdownType::Send | ShutdownType::Both) {
            self.shutdown.send.store(true, Ordering::SeqCst);
            // A background write still running shuts the sending side down when it is done.
            if !self.shutdown.sending.load(Ordering::SeqCst) {
                os(Shutdown::Write)?;
            }
        }
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Socket {
    /// Ready when `finish-connect`, `finish-bind` or `finish-listen` would not block — always
    /// here: the broker has answered by then — and, for a listening socket, when a connection
    /// is pending (it is accepted then, and `accept` hands it out).
    async fn ready(&mut self) {
        if let State::Listening(listener) | State::ListenStarted(listener) = &mut self.state
            && listener.pending.is_none()
        {
            let accepted = std::future::poll_fn(|cx| listener.inner.poll_accept(cx)).await;
            listener.pending = Some(accepted);
        }
    }
}

/// The input stream of a connection.
struct Reader {
    stream: Arc<TcpStream>,
    shutdown: Arc<Shutdowns>,
    /// End of stream or an error was seen.
    closed: bool,
}

#[wasmtime_wasi::async_trait]
impl InputStream for Reader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.closed || self.shutdown.receive.load(Ordering::SeqCst) {
            return Err(StreamError::Closed);
        }
        if size == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = vec![0; size.min(MAX_READ)];
        match self.stream.try_read(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Err(StreamError::Closed)
            }
            Ok(n) => {
                buf.truncate(n);
                Ok(buf.into())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Bytes::new()),
            Err(e) => {
                self.closed = true;
                Err(StreamError::LastOperationFailed(wasmtime::Error::new(e)))
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Reader {
    async fn ready(&mut self) {
        if self.closed || self.shutdown.receive.load(Ordering::SeqCst) {
            return;
        }
        // An error is reported by the next read.
        let _ = self.stream.readable().await;
    }
}

/// The output stream of a connection.
struct Writer {
    stream: Arc<TcpStream>,
    shutdown: Arc<Shutdowns>,
    /// Writing what the socket did not take at once.
    task: Option<JoinHandle<io::Result<()>>>,
    /// The background write failed; reported by the next call.
    failed: Option<io::Error>,
    closed: bool,
}

impl Writer {
    /// Whether a background write is still running; collects its result if it has ended.
    fn busy(&mut self) -> bool {
        let Some(task) = &mut self.task else {
            return false;
        };
        if !task.is_finished() {
            return true;
        }
        if let Poll::Ready(result) = Pin::new(task).poll(&mut Context::from_waker(Waker::noop())) {
            self.task = None;
            self.collect(result);
        }
        self.task.is_some()
    }

    fn collect(&mut self, result: Result<io::Result<()>, tokio::task::JoinError>) {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.failed = Some(e),
            Err(e) => self.failed = Some(io::Error::other(e.to_string())),
        }
    }

    /// The stream's state for a call that needs it open.
    fn usable(&mut self) -> StreamResult<()> {
        if let Some(e) = self.failed.take() {
            self.closed = true;
            return Err(StreamError::LastOperationFailed(wasmtime::Error::new(e)));
        }
        if self.closed || self.shutdown.send.load(Ordering::SeqCst) {
            return Err(StreamError::Closed);
        }
        Ok(())
    }
}

/// Writes `rest` as the socket takes it; then, if the app asked meanwhile, shuts the sending
/// side down.
async fn write_in_background(
    stream: Arc<TcpStream>,
    mut rest: Bytes,
    shutdown: Arc<Shutdowns>,
) -> io::Result<()> {
    let mut result = Ok(());
    while !rest.is_empty() {
        if let Err(e) = stream.writable().await {
            result = Err(e);
            break;
        }
        match stream.try_write(&rest) {
            Ok(0) => {
                result = Err(io::ErrorKind::WriteZero.into());
                break;
            }
            Ok(n) => rest = rest.slice(n..),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    shutdown.sending.store(false, Ordering::SeqCst);
    if shutdown.send.load(Ordering::SeqCst) {
        let _ = rustix::net::shutdown(&*stream, Shutdown::Write);
    }
    result
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.busy() {
            return Err(StreamError::trap(
                "write without a permit: check-write allowed nothing",
            ));
        }
        self.usable()?;
        if bytes.len() > WRITE_PERMIT {
            return Err(StreamError::trap(
                "write of more than check-write permitted",
            ));
        }
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.try_write(&bytes[written..]) {
                Ok(0) => {
                    self.closed = true;
                    return Err(StreamError::LastOperationFailed(wasmtime::Error::new(
                        io::Error::from(io::ErrorKind::WriteZero),
                    )));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Host calls run inside the worker's runtime (`block_on`); a trap rather
                    // than tokio's panic should one ever not.
                    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                        StreamError::trap("a socket write outside the worker's runtime")
                    })?;
                    self.shutdown.sending.store(true, Ordering::SeqCst);
                    self.task = Some(runtime.spawn(write_in_background(
                        Arc::clone(&self.stream),
                        bytes.slice(written..),
                        Arc::clone(&self.shutdown),
                    )));
                    return Ok(());
                }
                Err(e) => {
                    self.closed = true;
                    return Err(StreamError::LastOperationFailed(wasmtime::Error::new(e)));
                }
            }
        }
        Ok(())
    }

    /// Bytes go to the socket as they are written; a flush has nothing to start.
    /// `check-write` allows nothing more until the background write is done.
    fn flush(&mut self) -> StreamResult<()> {
        if self.busy() {
            return Ok(());
        }
        self.usable()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.busy() {
            return Ok(0);
        }
        self.usable()?;
        Ok(WRITE_PERMIT)
    }

    /// Dropping the stream waits for the background write, as wasmtime-wasi's own does: the
    /// app was told those bytes were written.
    async fn cancel(&mut self) {
        self.ready().await;
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {
        if let Some(task) = &mut self.task {
            let result = task.await;
            self.task = None;
            self.collect(result);
        }
    }
}

impl NetCtxView<'_> {
    fn tcp(&mut self, this: &Resource<WasiTcpSocket>) -> Result<&mut Socket, SocketError> {
        Ok(self.table.get_mut(&handle::retype::<Socket, _>(this))?)
    }
}

impl tcp_create_socket::Host for NetCtxView<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> Result<Resource<WasiTcpSocket>, SocketError> {
        self.net.allowed()?;
        let socket = self.table.push(Socket::new(address_family))?;
        Ok(handle::retype(&socket))
    }
}

impl wasi_tcp::Host for NetCtxView<'_> {}

impl HostTcpSocket for NetCtxView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<WasiTcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> Result<(), SocketError> {
        self.network(&network)?;
        let local = SocketAddr::from(local_address);
        let socket = self.tcp(&this)?;
        match socket.state {
            State::Unbound => {}
            State::BindStarted(_) | State::ConnectStarted(_) | State::ListenStarted(_) => {
                return Err(error::state(ErrorCode::ConcurrencyConflict, "start-bind"));
            }
            _ => return Err(error::state(ErrorCode::InvalidState, "start-bind")),
        }
        same_family(socket.family, &local)?;
        socket.state = State::BindStarted(local);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<WasiTcpSocket>) -> Result<(), SocketError> {
        let socket = self.tcp(&this)?;
        let State::BindStarted(local) = socket.state else {
            return Err(error::state(ErrorCode::NotInProgress, "finish-bind"));
        };
        socket.state = State::Bound(local);
        Ok(())
    }

    fn start_connect(
        &mut self,
        this: Resource<WasiTcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> Result<(), SocketError> {
        self.network(&network)?;
        let remote = SocketAddr::from(remote_address);
        let socket = self.tcp(&this)?;
        match socket.state {
            State::Unbound | State::Bound(_) => {}
            State::BindStarted(_) | State::ConnectStarted(_) | State::ListenStarted(_) => {
                return Err(error::state(
                    ErrorCode::ConcurrencyConflict,
                    "start-connect",
                ));
            }
            _ => return Err(error::state(ErrorCode::InvalidState, "start-connect")),
        }
        same_family(socket.family, &remote)?;
        let request = ResourceRequest::Connect {
            transport: Transport::Tcp,
            address: remote,
        };
        let attempt = match self.net.open(request.clone()) {
            Ok(granted) => Connection::granted(&request, granted),
            // Refused before any packet left: the call itself fails, the socket is unchanged.
            Err(e)
                if matches!(
                    e.downcast_ref(),
                    Some(ErrorCode::AccessDenied | ErrorCode::InvalidArgument)
                ) =>
            {
                return Err(e);
            }
            // What the network answered is `finish-connect`'s to report.
            Err(e) => Err(e),
        };
        self.tcp(&this)?.state = State::ConnectStarted(attempt);
        Ok(())
    }

    fn finish_connect(
        &mut self,
        this: Resource<WasiTcpSocket>,
    ) -> Result<(Resource<DynInputStream>, Resource<DynOutputStream>), SocketError> {
        let socket = self.tcp(&this)?;
        let (input, output) = match std::mem::replace(&mut socket.state, State::Closed) {
            State::ConnectStarted(Ok(connection)) => {
                let streams = connection.streams();
                socket.state = State::Connected(connection);
                streams
            }
            State::ConnectStarted(Err(e)) => return Err(e),
            other => {
                socket.state = other;
                return Err(error::state(ErrorCode::NotInProgress, "finish-connect"));
            }
        };
        let parent = handle::retype::<Socket, _>(&this);
        let input = self.table.push_child(input, &parent)?;
        let output = self.table.push_child(output, &parent)?;
        Ok((input, output))
    }

    async fn start_listen(&mut self, this: Resource<WasiTcpSocket>) -> Result<(), SocketError> {
        let socket = self.tcp(&this)?;
        let local = match socket.state {
            State::Bound(local) => local,
            State::BindStarted(_) | State::ConnectStarted(_) | State::ListenStarted(_) => {
                return Err(error::state(ErrorCode::ConcurrencyConflict, "start-listen"));
            }
            // WASI 0.2: a socket is bound before it listens.
            _ => return Err(error::state(ErrorCode::InvalidState, "start-listen")),
        };
        let request = ResourceRequest::Listen {
            transport: Transport::Tcp,
            address: local,
            backlog: socket.backlog,
        };
        let granted = self.net.open(request.clone())?;
        let granted = error::socket(&request, granted, Transport::Tcp, false)?;
        let inner = TcpListener::from_std(std::net::TcpListener::from(granted.fd))
            .map_err(|e| error::from_io(&e))?;
        self.tcp(&this)?.state = State::ListenStarted(Listener {
            inner,
            local: granted.local,
            pending: None,
        });
        Ok(())
    }

    fn finish_listen(&mut self, this: Resource<WasiTcpSocket>) -> Result<(), SocketError> {
        let socket = self.tcp(&this)?;
        match std::mem::replace(&mut socket.state, State::Closed) {
            State::ListenStarted(listener) => {
                socket.state = State::Listening(listener);
                Ok(())
            }
            other => {
                socket.state = other;
                Err(error::state(ErrorCode::NotInProgress, "finish-listen"))
            }
        }
    }

    fn accept(
        &mut self,
        this: Resource<WasiTcpSocket>,
    ) -> Result<
        (
            Resource<WasiTcpSocket>,
            Resource<DynInputStream>,
            Resource<DynOutputStream>,
        ),
        SocketError,
    > {
        let socket = self.tcp(&this)?;
        let family = socket.family;
        let State::Listening(listener) = &mut socket.state else {
            return Err(error::state(ErrorCode::InvalidState, "accept"));
        };
        let accepted = match listener.pending.take() {
            Some(accepted) => accepted,
            None => match listener
                .inner
                .poll_accept(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Ready(accepted) => accepted,
                Poll::Pending => return Err(ErrorCode::WouldBlock.into()),
            },
        };
        let (stream, remote) = accepted.map_err(|e| error::from_io(&e))?;
        // The listener's own address: the grant's, without a `getsockname` of the new socket.
        let connection = Connection::new(stream, listener.local, remote);
        let (input, output) = connection.streams();
        let accepted = self.table.push(Socket::connected(family, connection))?;
        let input = self.table.push_child(input, &accepted)?;
        let output = self.table.push_child(output, &accepted)?;
        Ok((handle::retype(&accepted), input, output))
    }

    fn local_address(
        &mut self,
        this: Resource<WasiTcpSocket>,
    ) -> Result<IpSocketAddress, SocketError> {
        let socket = self.tcp(&this)?;
        match &socket.state {
            State::Bound(local) => Ok((*local).into()),
            State::ConnectStarted(Ok(connection)) | State::Connected(connection) => {
                Ok(connection.local.into())
            }
            State::ListenStarted(listener) | State::Listening(listener) => {
                Ok(listener.local.into())
            }
            _ => Err(error::state(ErrorCode::InvalidState, "local-address")),
        }
    }

    fn remote_address(
        &mut self,
        this: Resource<WasiTcpSocket>,
    ) -> Result<IpSocketAddress, SocketError> {
        match &self.tcp(&this)?.state {
            State::Connected(connection) => Ok(connection.remote.into()),
            _ => Err(error::state(ErrorCode::InvalidState, "remote-address")),
        }
    }

    fn is_listening(&mut self, this: Resource<WasiTcpSocket>) -> wasmtime::Result<bool> {
        let socket = self.table.get(&handle::retype::<Socket, _>(&this))?;
        Ok(matches!(socket.state, State::Listening(_)))
    }

    fn address_family(
        &mut self,
        this: Resource<WasiTcpSocket>,
    ) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&handle::retype::<Socket, _>(&this))?.family)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<WasiTcpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        let socket = self.tcp(&this)?;
        if value == 0 {
            return Err(with_reason(
                ErrorCode::InvalidArgument,
                "a listen backlog of 0",
            ));
        }
        match socket.state {
            State::ConnectStarted(_) | State::Connected(_) => Err(error::state(
                ErrorCode::InvalidState,
                "set-listen-backlog-size",
            )),
            State::ListenStarted(_) | State::Listening(_) => Err(with_reason(
                ErrorCode::NotSupported,
                "the backlog of a listening socket cannot change (the supervisor listens)",
            )),
            _ => {
                // Clamped, as the kernel clamps to its maximum: the broker takes up to this.
                socket.backlog = u32::try_from(value).unwrap_or(MAX_BACKLOG).min(MAX_BACKLOG);
                Ok(())
            }
        }
    }

    fn keep_alive_enabled(&mut self, _this: Resource<WasiTcpSocket>) -> Result<bool, SocketError> {
        error::options()
    }

    fn set_keep_alive_enabled(
        &mut self,
        _this: Resource<WasiTcpSocket>,
        _value: bool,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn keep_alive_idle_time(&mut self, _this: Resource<WasiTcpSocket>) -> Result<u64, SocketError> {
        error::options()
    }

    fn set_keep_alive_idle_time(
        &mut self,
        _this: Resource<WasiTcpSocket>,
        _value: u64,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn keep_alive_interval(&mut self, _this: Resource<WasiTcpSocket>) -> Result<u64, SocketError> {
        error::options()
    }

    fn set_keep_alive_interval(
        &mut self,
        _this: Resource<WasiTcpSocket>,
        _value: u64,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn keep_alive_count(&mut self, _this: Resource<WasiTcpSocket>) -> Result<u32, SocketError> {
        error::options()
    }

    fn set_keep_alive_count(
        &mut self,
        _this: Resource<WasiTcpSocket>,
        _value: u32,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn hop_limit(&mut self, _this: Resource<WasiTcpSocket>) -> Result<u8, SocketError> {
        error::options()
    }

    fn set_hop_limit(
        &mut self,
        _this: Resource<WasiTcpSocket>,
        _value: u8,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn receive_buffer_size(&mut self, _this: Resource<WasiTcpSocket>) -> Result<u64, SocketError> {
        error::options()
    }

    fn set_receive_buffer_size(
        &mut self,
        _this: Resource<WasiTcpSocket>,
        _value: u64,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn send_buffer_size(&mut self, _this: Resource<WasiTcpSocket>) -> Result<u64, SocketError> {
        error::options()
    }

    fn set_send_buffer_size(
        &mut self,
        _this: Resource<WasiTcpSocket>,
        _value: u64,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn subscribe(
        &mut self,
        this: Resource<WasiTcpSocket>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, handle::retype::<Socket, _>(&this))
    }

    fn shutdown(
        &mut self,
        this: Resource<WasiTcpSocket>,
        shutdown_type: ShutdownType,
    ) -> Result<(), SocketError> {
        match &self.tcp(&this)?.state {
            State::Connected(connection) => connection.shut_down(shutdown_type),
            _ => Err(error::state(ErrorCode::InvalidState, "shutdown")),
        }
    }

    fn drop(&mut self, this: Resource<WasiTcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(handle::retype::<Socket, _>(&this))?;
        Ok(())
    }
}
