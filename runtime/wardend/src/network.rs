//! The network half of the capability broker (decision 5): a worker has no `socket(2)`,
//! `connect(2)` or `bind(2)` and lives in an empty network namespace, so it asks the broker for
//! every name lookup, connection and server socket. The supervisor decides from the app's
//! signed manifest ([`NetworkGrant`]), does the lookup or makes the socket itself, in its own
//! network namespace, and passes the socket as one descriptor.
//!
//! Per request (after [`warden_ipc::broker::BrokerRequest::validate`]):
//!
//! - **Lookup** of a name: it must match an `AllowedConnections` entry (exactly, or below a
//!   `*.` wildcard), otherwise `not-granted` and nothing is resolved. The [`Resolver`] answers
//!   (at most [`MAX_ADDRESSES`]), and this worker's [`NetworkSession`] remembers the addresses.
//!   A literal IP is answered only if it is itself an allowed entry.
//! - **Connect**: the address must be an allowed literal or one a lookup of an allowed name
//!   returned to this worker; otherwise `not-granted`, before any packet leaves. The supervisor
//!   connects (TCP within [`CONNECT_TIMEOUT`], UDP by `connect(2)`) and passes the socket.
//! - **Listen**: the port must be in `AllowedTcpServerPorts` or `AllowedUdpServerPorts`; the
//!   supervisor binds (TCP: `SO_REUSEADDR`, then `listen`) and passes the socket.
//!
//! Every socket handed over is non-blocking and close-on-exec from its creation. The OS calls
//! sit behind [`SocketOpener`] so the decisions can be exercised without sockets (the fuzzer).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto, sockopt};
use warden_ipc::broker::{
    Access, Denial, Grant, MAX_ADDRESSES, NetError, ResourceRequest, Transport,
};
use warden_policy::manifest::{AllowedHost, Capabilities};

use crate::file::{ReadBounded, read_bounded};

/// Longest a TCP connection may take to be established before the app is told `timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most addresses one worker's lookups are remembered for; past it, the oldest is forgotten
/// (a connection to it then needs a fresh lookup).
pub const MAX_REMEMBERED: usize = 1024;

/// Largest hosts table read.
const MAX_HOSTS_BYTES: u64 = 1024 * 1024;

/// What one app may do on the network: its manifest's `AllowedConnections`,
/// `AllowedTcpServerPorts` and `AllowedUdpServerPorts`, minus what the board withheld at install.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkGrant {
    /// Hosts it may look up and connect to.
    pub hosts: Vec<AllowedHost>,
    /// Ports it may listen on with TCP.
    pub tcp_server_ports: Vec<u16>,
    /// Ports it may bind UDP sockets to.
    pub udp_server_ports: Vec<u16>,
}

/// No network rights at all.
static NO_NETWORK: NetworkGrant = NetworkGrant {
    hosts: Vec::new(),
    tcp_server_ports: Vec::new(),
    udp_server_ports: Vec::new(),
};

impl NetworkGrant {
    /// The network rights of an installed app: its manifest's capabilities, except keys the
    /// board cannot back and withheld at install (`ResolvedApp::withheld`).
    pub fn from_capabilities(capabilities: &Capabilities, withheld: &[String]) -> NetworkGrant {
        let kept = |key: &str| !withheld.iter().any(|w| w == key);
        NetworkGrant {
            hosts: if kept("AllowedConnections") {
                capabilities.allowed_connections.clone()
            } else {
                vec![]
            },
            tcp_server_ports: if kept("AllowedTcpServerPorts") {
                capabilities.allowed_tcp_server_ports.clone()
            } else {
                vec![]
            },
            udp_server_ports: if kept("AllowedUdpServerPorts") {
                capabilities.allowed_udp_server_ports.clone()
            } else {
                vec![]
            },
        }
    }

    /// Whether the app may do nothing on the network (then it needs no network profile).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
            && self.tcp_server_ports.is_empty()
            && self.udp_server_ports.is_empty()
    }

    /// The entry that allows looking up `name`.
    fn entry_for_name(&self, name: &str) -> Option<&AllowedHost> {
        self.hosts.iter().find(|h| h.matches_name(name))
    }

    /// Whether `ip` is itself an allowed entry (IPv4-mapped IPv6 counts as its IPv4 address).
    fn allows_literal(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.hosts
            .iter()
            .any(|h| matches!(h, AllowedHost::Address(a) if a.to_canonical() == ip))
    }

    /// The manifest key for server sockets of `transport`, and its ports.
    fn server_ports(&self, transport: Transport) -> (&'static str, &[u16]) {
        match transport {
            Transport::Tcp => ("AllowedTcpServerPorts", &self.tcp_server_ports),
            Transport::Udp => ("AllowedUdpServerPorts", &self.udp_server_ports),
        }
    }
}

/// Why a hosts table was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostsError {
    #[error("cannot read the hosts table {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the hosts table {path} is larger than {MAX_HOSTS_BYTES} bytes")]
    TooLarge { path: PathBuf },
    /// Every bad line, as `path:line: problem`.
    #[error("invalid hosts table:\n{}", .problems.join("\n"))]
    Lines { problems: Vec<String> },
}

/// A fixed table of names and their addresses, in `/etc/hosts` form: `ADDRESS NAME [NAME…]`
/// per line, `#` to the end of a line is a comment. A name on several lines has every address
/// given for it, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostsTable {
    /// Where it was read from, for messages.
    pub origin: PathBuf,
    names: BTreeMap<String, Vec<IpAddr>>,
}

impl HostsTable {
    /// Reads and parses the table at `path`.
    pub fn load(path: &Path) -> Result<HostsTable, HostsError> {
        let bytes = read_bounded(path, MAX_HOSTS_BYTES).map_err(|e| match e {
            ReadBounded::Io(source) => HostsError::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadBounded::TooLarge => HostsError::TooLarge {
                path: path.to_path_buf(),
            },
        })?;
        let text = String::from_utf8(bytes).map_err(|e| HostsError::Lines {
            problems: vec![format!(
                "{}: not UTF-8 (byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )],
        })?;
        HostsTable::parse(path, &text)
    }

    /// Parses `text`, read from `origin`; reports every bad line.
    pub fn parse(origin: &Path, text: &str) -> Result<HostsTable, HostsError> {
        let mut names: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        let mut problems = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let at = format!("{}:{}", origin.display(), index + 1);
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else {
                continue;
            };
            let Ok(address) = first.parse::<IpAddr>() else {
                problems.push(format!("{at}: `{first}` is not an IP address"));
                continue;
            };
            let mut named = false;
            for word in words {
                named = true;
                match AllowedHost::parse(word) {
                    Ok(AllowedHost::Name {
                        name,
                        wildcard: false,
                    }) => {
                        let list = names.entry(name).or_default();
                        if !list.contains(&address) {
                            list.push(address);
                        }
                    }
                    Ok(AllowedHost::Name { wildcard: true, .. }) => {
                        problems.push(format!("{at}: `{word}`: a hosts table has no wildcards"));
                    }
                    Ok(AllowedHost::Address(_)) => {
                        problems.push(format!("{at}: `{word}` is an address, not a name"));
                    }
                    Err(reason) => problems.push(format!("{at}: {reason}")),
                }
            }
            if !named {
                problems.push(format!("{at}: the address {address} has no name"));
            }
        }
        if problems.is_empty() {
            Ok(HostsTable {
                origin: origin.to_path_buf(),
                names,
            })
        } else {
            Err(HostsError::Lines { problems })
        }
    }

    /// The addresses of `name` (any case, a trailing dot ignored), if the table has it.
    pub fn get(&self, name: &str) -> Option<&[IpAddr]> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        self.names.get(&name).map(Vec::as_slice)
    }

    /// How many names the table has.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Who answers lookups of allowed names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Resolver {
    /// The device's own resolver (`getaddrinfo`: `/etc/hosts`, DNS, as `nsswitch.conf` says),
    /// called in the supervisor. Loopback answers are dropped: the device's own services are
    /// reached only through a literal in `AllowedConnections`, never through a DNS answer.
    #[default]
    System,
    /// Only this table (`wardend --hosts`): for tests and closed networks.
    Table(HostsTable),
}

/// Why a lookup found nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name has no (usable) address.
    #[error("`{host}` has no address: {detail}")]
    NoAnswer { host: String, detail: String },
    /// The resolver itself failed (no DNS server reachable, …).
    #[error("resolving `{host}` failed: {detail}")]
    Failed { host: String, detail: String },
}

impl ResolveError {
    fn denial(self) -> Denial {
        let error = match self {
            ResolveError::NoAnswer { .. } => NetError::NameUnresolvable,
            ResolveError::Failed { .. } => NetError::ResolverFailure,
        };
        Denial::Network {
            error,
            detail: self.to_string(),
        }
    }
}

impl std::fmt::Display for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolver::System => f.write_str("the system resolver"),
            Resolver::Table(table) => write!(
                f,
                "the hosts table {} ({} names)",
                table.origin.display(),
                table.len()
            ),
        }
    }
}

impl Resolver {
    /// The addresses of `host` (a name, not a literal), without duplicates, in the resolver's
    /// order; never empty.
    pub fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        match self {
            // A table's names have one address at least (a line names its address).
            Resolver::Table(table) => {
                table
                    .get(host)
                    .map(<[IpAddr]>::to_vec)
                    .ok_or_else(|| ResolveError::NoAnswer {
                        host: host.to_owned(),
                        detail: format!("not in {self}"),
                    })
            }
            Resolver::System => {
                let found = (host, 0)
                    .to_socket_addrs()
                    .map_err(|e| classify_system_failure(host, &e))?;
                let mut addresses = Vec::new();
                let mut loopback = false;
                for address in found.map(|a| a.ip()) {
                    if address.to_canonical().is_loopback() {
                        loopback = true;
                    } else if !addresses.contains(&address) {
                        addresses.push(address);
                    }
                }
                if addresses.is_empty() {
                    return Err(ResolveError::NoAnswer {
                        host: host.to_owned(),
                        detail: if loopback {
                            "the resolver answered only loopback addresses, which an app \
                             reaches only by a literal address in AllowedConnections"
                                .into()
                        } else {
                            "the resolver answered no address".into()
                        },
                    });
                }
                Ok(addresses)
            }
        }
    }
}

/// `getaddrinfo`'s failure, as std reports it: std gives only `gai_strerror`'s text, so the
/// messages glibc and musl use for "no such name" or "no address" are told apart from every
/// other failure (which the app sees as temporary). `wardend` never calls `setlocale`, so the
/// texts are the C locale's.
fn classify_system_failure(host: &str, error: &std::io::Error) -> ResolveError {
    const NO_ANSWER: [&str; 4] = [
        // glibc: EAI_NONAME, EAI_NODATA
        "Name or service not known",
        "No address associated with hostname",
        // musl: EAI_NONAME, EAI_NODATA
        "Name does not resolve",
        "Name has no usable address",
    ];
    let detail = error.to_string();
    if NO_ANSWER.iter().any(|text| detail.contains(text)) {
        ResolveError::NoAnswer {
            host: host.to_owned(),
            detail,
        }
    } else {
        ResolveError::Failed {
            host: host.to_owned(),
            detail,
        }
    }
}

/// Makes the sockets the broker hands out. The real one ([`SystemSockets`]) works in the
/// supervisor's network namespace; the fuzzer uses one that opens nothing.
pub trait SocketOpener: Send + Sync + std::fmt::Debug {
    /// A socket connected to `remote` (TCP established, UDP `connect(2)`ed), non-blocking and
    /// close-on-exec, and its local address.
    fn connect(
        &self,
        transport: Transport,
        remote: SocketAddr,
    ) -> Result<(SocketAddr, OwnedFd), Denial>;

    /// A TCP socket listening on `local` with `backlog` (at least 1), or a UDP socket bound to
    /// it; non-blocking and close-on-exec; and the address it is bound to.
    fn listen(
        &self,
        transport: Transport,
        local: SocketAddr,
        backlog: u32,
    ) -> Result<(SocketAddr, OwnedFd), Denial>;
}

/// Sockets in the supervisor's own network namespace.
#[derive(Clone, Copy, Debug)]
pub struct SystemSockets {
    /// How long a TCP connection may take ([`CONNECT_TIMEOUT`] by default).
    pub connect_timeout: Duration,
}

impl Default for SystemSockets {
    fn default() -> Self {
        SystemSockets {
            connect_timeout: CONNECT_TIMEOUT,
        }
    }
}

/// A new socket for `address`'s family: non-blocking and close-on-exec from the start, so it
/// is never blocking in the supervisor and needs no change before it is handed over.
fn new_socket(transport: Transport, address: SocketAddr) -> Result<OwnedFd, Errno> {
    let family = match address {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let (kind, protocol) = match transport {
        Transport::Tcp => (SocketType::STREAM, ipproto::TCP),
        Transport::Udp => (SocketType::DGRAM, ipproto::UDP),
    };
    rustix::net::socket_with(
        family,
        kind,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        Some(protocol),
    )
}

/// Waits until a non-blocking `connect` on `socket` has finished, for at most `timeout`.
fn wait_connected(socket: &OwnedFd, timeout: Duration) -> Result<(), Errno> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Errno::TIMEDOUT);
        }
        let left = Timespec::try_from(left).map_err(|_| Errno::INVAL)?;
        let mut fds = [PollFd::new(socket, PollFlags::OUT)];
        match poll(&mut fds, Some(&left)) {
            Ok(0) => return Err(Errno::TIMEDOUT),
            Ok(_) => return sockopt::socket_error(socket)?,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The address `socket` is bound to.
fn local_address(socket: &OwnedFd) -> Result<SocketAddr, Errno> {
    let any = rustix::net::getsockname(socket)?;
    SocketAddr::try_from(any).map_err(|_| Errno::AFNOSUPPORT)
}

/// The `wasi:sockets` error an errno means, where there is one.
pub fn net_error(errno: Errno) -> Option<NetError> {
    Some(match errno {
        Errno::CONNREFUSED => NetError::ConnectionRefused,
        Errno::TIMEDOUT => NetError::Timeout,
        Errno::NETUNREACH | Errno::HOSTUNREACH | Errno::NETDOWN | Errno::HOSTDOWN => {
            NetError::Unreachable
        }
        Errno::ADDRINUSE => NetError::AddressInUse,
        Errno::ADDRNOTAVAIL => NetError::AddressNotBindable,
        _ => return None,
    })
}

/// The denial for `call` failing with `errno` while making `what`: a network error the app
/// can act on, or `io` for anything else (naming the call and the errno).
fn socket_denial(what: &str, call: &str, errno: Errno) -> Denial {
    let detail = format!("{what}: {call}: {errno}");
    match net_error(errno) {
        Some(error) => Denial::Network { error, detail },
        None => Denial::Io(detail),
    }
}

impl SocketOpener for SystemSockets {
    fn connect(
        &self,
        transport: Transport,
        remote: SocketAddr,
    ) -> Result<(SocketAddr, OwnedFd), Denial> {
        let what = format!("{transport} connection to {remote}");
        let socket =
            new_socket(transport, remote).map_err(|e| socket_denial(&what, "socket", e))?;
        match rustix::net::connect(&socket, &remote) {
            Ok(()) => {}
            Err(Errno::INPROGRESS) => wait_connected(&socket, self.connect_timeout)
                .map_err(|e| socket_denial(&what, "connect", e))?,
            Err(e) => return Err(socket_denial(&what, "connect", e)),
        }
        let local = local_address(&socket).map_err(|e| socket_denial(&what, "getsockname", e))?;
        Ok((local, socket))
    }

    fn listen(
        &self,
        transport: Transport,
        local: SocketAddr,
        backlog: u32,
    ) -> Result<(SocketAddr, OwnedFd), Denial> {
        let what = format!("{transport} server socket on {local}");
        let socket = new_socket(transport, local).map_err(|e| socket_denial(&what, "socket", e))?;
        if transport == Transport::Tcp {
            // A restarted app gets its port back while the old connections linger in TIME_WAIT.
            sockopt::set_socket_reuseaddr(&socket, true)
                .map_err(|e| socket_denial(&what, "SO_REUSEADDR", e))?;
        }
        rustix::net::bind(&socket, &local).map_err(|e| socket_denial(&what, "bind", e))?;
        if transport == Transport::Tcp {
            let backlog = i32::try_from(backlog.max(1)).unwrap_or(i32::MAX);
            rustix::net::listen(&socket, backlog).map_err(|e| socket_denial(&what, "listen", e))?;
        }
        let bound = local_address(&socket).map_err(|e| socket_denial(&what, "getsockname", e))?;
        Ok((bound, socket))
    }
}

/// What the supervisor answers network requests with: one for the whole device, shared by
/// every worker's broker.
#[derive(Debug)]
pub struct Network {
    pub resolver: Resolver,
    pub sockets: Box<dyn SocketOpener>,
}

impl Network {
    /// `resolver`, and real sockets in the supervisor's network namespace.
    pub fn new(resolver: Resolver) -> Network {
        Network {
            resolver,
            sockets: Box::new(SystemSockets::default()),
        }
    }
}

/// One worker's network rights and what its lookups returned; lives as long as its broker
/// thread (a restarted app starts with nothing looked up).
#[derive(Debug)]
pub struct NetworkSession<'a> {
    grant: &'a NetworkGrant,
    network: Option<&'a Network>,
    /// Each address a lookup of an allowed name returned, with that name.
    returned: HashMap<IpAddr, String>,
    /// The same addresses, oldest first, to forget the oldest past [`MAX_REMEMBERED`].
    order: VecDeque<IpAddr>,
}

impl NetworkSession<'static> {
    /// A session with no network rights: every request is `not-granted`.
    pub fn none() -> NetworkSession<'static> {
        NetworkSession {
            grant: &NO_NETWORK,
            network: None,
            returned: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<'a> NetworkSession<'a> {
    pub fn new(grant: &'a NetworkGrant, network: &'a Network) -> NetworkSession<'a> {
        NetworkSession {
            grant,
            network: Some(network),
            returned: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether a lookup has returned `ip` (canonical form) to this worker and it is still
    /// remembered.
    pub fn remembers(&self, ip: IpAddr) -> bool {
        self.returned.contains_key(&ip.to_canonical())
    }

    /// Answers one validated network request: the grant and its descriptors (none for a
    /// lookup, the socket otherwise). A peripheral request is `invalid-argument`.
    pub fn answer(&mut self, request: &ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        match request {
            ResourceRequest::Lookup { host } => self.lookup(host),
            ResourceRequest::Connect { transport, address } => self.connect(*transport, *address),
            ResourceRequest::Listen {
                transport,
                address,
                backlog,
            } => self.listen(*transport, *address, *backlog),
            peripheral => Err(Denial::InvalidArgument(format!(
                "{} is not a network request",
                peripheral.describe()
            ))),
        }
    }

    fn network(&self) -> Result<&'a Network, Denial> {
        self.network
            .ok_or_else(|| Denial::Io("this broker has no network configured".into()))
    }

    fn lookup(&mut self, host: &str) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        // An app's libc may "look up" a literal; it gets it back only if it may connect to it.
        if let Ok(ip) = host.parse::<IpAddr>() {
            if self.grant.allows_literal(ip) {
                return Ok((
                    Grant {
                        peripheral: ip.to_string(),
                        access: Access::Addresses {
                            addresses: vec![ip],
                        },
                    },
                    vec![],
                ));
            }
            return Err(Denial::NotGranted(format!(
                "`{host}` is not an address in this app's AllowedConnections"
            )));
        }
        let Some(entry) = self.grant.entry_for_name(host) else {
            return Err(Denial::NotGranted(format!(
                "`{host}` is not in this app's AllowedConnections"
            )));
        };
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let mut addresses = self
            .network()?
            .resolver
            .resolve(&name)
            .map_err(ResolveError::denial)?;
        addresses.truncate(MAX_ADDRESSES);
        for address in &addresses {
            self.remember(address.to_canonical(), &name);
        }
        Ok((
            Grant {
                // The name, and the wildcard entry that allowed it if it was one.
                peripheral: if entry.to_string() == name {
                    name
                } else {
                    format!("{name} ({entry})")
                },
                access: Access::Addresses { addresses },
            },
            vec![],
        ))
    }

    fn remember(&mut self, ip: IpAddr, name: &str) {
        if self.returned.contains_key(&ip) {
            return;
        }
        if self.order.len() >= MAX_REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.returned.remove(&oldest);
        }
        self.returned.insert(ip, name.to_owned());
        self.order.push_back(ip);
    }

    fn connect(
        &self,
        transport: Transport,
        address: SocketAddr,
    ) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        let ip = address.ip().to_canonical();
        let host = if self.grant.allows_literal(ip) {
            ip.to_string()
        } else if let Some(name) = self.returned.get(&ip) {
            name.clone()
        } else {
            return Err(Denial::NotGranted(format!(
                "{transport} connection to {address}: {ip} is not an address in this app's \
                 AllowedConnections, and no lookup of an allowed name returned it"
            )));
        };
        let (local, socket) = self.network()?.sockets.connect(transport, address)?;
        Ok((
            Grant {
                peripheral: host,
                access: Access::Socket {
                    transport,
                    local,
                    remote: Some(address),
                },
            },
            vec![socket],
        ))
    }

    fn listen(
        &self,
        transport: Transport,
        address: SocketAddr,
        backlog: u32,
    ) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        let (key, ports) = self.grant.server_ports(transport);
        let port = address.port();
        if !ports.contains(&port) {
            return Err(Denial::NotGranted(format!(
                "{transport} port {port} is not in this app's {key}"
            )));
        }
        // Binding to a multicast group address succeeds on Linux, but it is no address of
        // this device; every other non-local address fails at `bind` (EADDRNOTAVAIL).
        if address.ip().is_multicast() {
            return Err(Denial::Network {
                error: NetError::AddressNotBindable,
                detail: format!(
                    "{transport} server socket on {address}: a multicast address is not an \
                     address of this device"
                ),
            });
        }
        let (local, socket) = self
            .network()?
            .sockets
            .listen(transport, address, backlog.max(1))?;
        Ok((
            Grant {
                peripheral: format!("{key} {port}"),
                access: Access::Socket {
                    transport,
                    local,
                    remote: None,
                },
            },
            vec![socket],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    fn table(text: &str) -> HostsTable {
        HostsTable::parse(Path::new("hosts"), text).unwrap()
    }

    fn grant(hosts: &[&str], tcp: &[u16], udp: &[u16]) -> NetworkGrant {
        NetworkGrant {
            hosts: hosts
                .iter()
                .map(|h| AllowedHost::parse(h).unwrap())
                .collect(),
            tcp_server_ports: tcp.to_vec(),
            udp_server_ports: udp.to_vec(),
        }
    }

    #[test]
    fn a_hosts_table_reads_like_etc_hosts() {
        let t = table(
            "# test network\n\
             \n\
             127.0.0.2   allowed.test  Alias.Test.  # the allowed host\n\
             127.0.0.3\tother.test\n\
             ::1 allowed.test\n\
             127.0.0.2 allowed.test\n",
        );
        assert_eq!(t.len(), 3);
        let two: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
        assert_eq!(
            t.get("allowed.test").unwrap(),
            &[two, "::1".parse().unwrap()]
        );
        assert_eq!(t.get("ALIAS.test.").unwrap(), &[two]);
        assert!(t.get("nowhere.test").is_none());
    }

    #[test]
    fn every_bad_line_of_a_hosts_table_is_named() {
        let text = "127.0.0.2 good.test\n\
                    allowed.test 127.0.0.2\n\
                    127.0.0.3\n\
                    127.0.0.4 *.wild.test\n\
                    127.0.0.5 bad_name.test 10.0.0.1\n";
        let error = HostsTable::parse(Path::new("/etc/warden/hosts"), text).unwrap_err();
        let HostsError::Lines { problems } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].starts_with("/etc/warden/hosts:2: `allowed.test` is not an IP"));
        assert!(problems[1].starts_with("/etc/warden/hosts:3: the address 127.0.0.3 has no name"));
        assert!(problems[2].contains(":4: `*.wild.test`: a hosts table has no wildcards"));
        assert!(problems[3].contains(":5: `bad_name.test` is not a host name"));
        assert!(problems[4].contains(":5: `10.0.0.1` is an address, not a name"));
        assert!(error.to_string().contains("/etc/warden/hosts:3:"));
    }

    #[test]
    fn a_hosts_file_that_cannot_be_read_or_is_too_large_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            HostsTable::load(&missing),
            Err(HostsError::Io { path, .. }) if path == missing
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; MAX_HOSTS_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            HostsTable::load(&big),
            Err(HostsError::TooLarge { .. })
        ));
        let good = dir.path().join("hosts");
        std::fs::write(&good, "127.0.0.2 allowed.test\n").unwrap();
        assert_eq!(HostsTable::load(&good).unwrap().len(), 1);
    }

    #[test]
    fn withheld_keys_grant_nothing() {
        let caps = Capabilities {
            allowed_connections: vec![AllowedHost::parse("allowed.test").unwrap()],
            allowed_tcp_server_ports: vec![8080],
            allowed_udp_server_ports: vec![5683],
            ..Capabilities::default()
        };
        let all = NetworkGrant::from_capabilities(&caps, &[]);
        assert_eq!(all, grant(&["allowed.test"], &[8080], &[5683]));
        assert!(!all.is_empty());
        let withheld = [
            "AllowedConnections".to_owned(),
            "AllowedUdpServerPorts".to_owned(),
        ];
        assert_eq!(
            NetworkGrant::from_capabilities(&caps, &withheld),
            grant(&[], &[8080], &[])
        );
        assert!(NetworkGrant::from_capabilities(&Capabilities::default(), &[]).is_empty());
    }

    #[test]
    fn errnos_map_to_network_errors() {
        assert_eq!(
            net_error(Errno::CONNREFUSED),
            Some(NetError::ConnectionRefused)
        );
        assert_eq!(net_error(Errno::TIMEDOUT), Some(NetError::Timeout));
        assert_eq!(net_error(Errno::NETUNREACH), Some(NetError::Unreachable));
        assert_eq!(net_error(Errno::HOSTUNREACH), Some(NetError::Unreachable));
        assert_eq!(net_error(Errno::ADDRINUSE), Some(NetError::AddressInUse));
        assert_eq!(
            net_error(Errno::ADDRNOTAVAIL),
            Some(NetError::AddressNotBindable)
        );
        assert_eq!(net_error(Errno::ACCESS), None);
        assert!(matches!(
            socket_denial("TCP connection to 10.0.0.1:1", "connect", Errno::ACCESS),
            Denial::Io(m) if m.starts_with("TCP connection to 10.0.0.1:1: connect: ")
        ));
    }

    #[test]
    fn system_resolver_failures_are_told_apart_by_their_text() {
        let e = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert!(matches!(
            classify_system_failure("a.test", &e),
            ResolveError::NoAnswer { .. }
        ));
        let e = std::io::Error::other(
            "failed to lookup address information: Temporary failure in name resolution",
        );
        assert!(matches!(
            classify_system_failure("a.test", &e),
            ResolveError::Failed { .. }
        ));
        assert_eq!(
            classify_system_failure("a.test", &e).denial(),
            Denial::Network {
                error: NetError::ResolverFailure,
                detail: "resolving `a.test` failed: failed to lookup address information: \
                         Temporary failure in name resolution"
                    .into()
            }
        );
    }

    #[test]
    fn the_system_resolver_never_answers_loopback() {
        // `localhost` is in every /etc/hosts: its loopback answers are dropped.
        match Resolver::System.resolve("localhost") {
            Err(ResolveError::NoAnswer { detail, .. }) => assert!(detail.contains("loopback")),
            Ok(addresses) => assert!(addresses.iter().all(|a| !a.is_loopback()), "{addresses:?}"),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_session_remembers_a_bounded_number_of_addresses() {
        let network = Network::new(Resolver::Table(table("127.0.0.2 a.test\n")));
        let nothing = NetworkGrant::default();
        let mut session = NetworkSession::new(&nothing, &network);
        for n in 0..(MAX_REMEMBERED as u32 + 10) {
            session.remember(IpAddr::from(Ipv4Addr::from(0x0a00_0000 + n)), "x.test");
        }
        assert_eq!(session.returned.len(), MAX_REMEMBERED);
        assert!(!session.remembers(Ipv4Addr::new(10, 0, 0, 0).into()));
        assert!(session.remembers(Ipv4Addr::from(0x0a00_0000 + MAX_REMEMBERED as u32).into()));
    }

    #[test]
    fn wildcards_and_ipv4_mapped_literals() {
        let network = Network::new(Resolver::Table(table(
            "127.0.0.4 a.wild.test\n127.0.0.5 wild.test\n",
        )));
        let rights = grant(&["*.wild.test", "127.0.0.9"], &[], &[]);
        let mut session = NetworkSession::new(&rights, &network);
        let (found, fds) = session
            .answer(&ResourceRequest::Lookup {
                host: "A.Wild.Test".into(),
            })
            .unwrap();
        assert!(fds.is_empty());
        assert_eq!(found.peripheral, "a.wild.test (*.wild.test)");
        assert_eq!(
            found.access,
            Access::Addresses {
                addresses: vec![Ipv4Addr::new(127, 0, 0, 4).into()]
            }
        );
        // The wildcard covers names below it, not the domain itself.
        assert!(matches!(
            session.answer(&ResourceRequest::Lookup { host: "wild.test".into() }),
            Err(Denial::NotGranted(m)) if m.contains("`wild.test` is not in this app's AllowedConnections")
        ));
        // A literal: answered as itself when listed, refused when not.
        let (literal, _) = session
            .answer(&ResourceRequest::Lookup {
                host: "127.0.0.9".into(),
            })
            .unwrap();
        assert_eq!(
            literal.access,
            Access::Addresses {
                addresses: vec![Ipv4Addr::new(127, 0, 0, 9).into()]
            }
        );
        assert!(matches!(
            session.answer(&ResourceRequest::Lookup {
                host: "127.0.0.5".into()
            }),
            Err(Denial::NotGranted(_))
        ));
        // IPv4-mapped IPv6 is the same address.
        let server = TcpListener::bind("127.0.0.9:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let mapped: SocketAddr = format!("[::ffff:127.0.0.9]:{port}").parse().unwrap();
        match session.answer(&ResourceRequest::Connect {
            transport: Transport::Tcp,
            address: mapped,
        }) {
            // Where IPv6 sockets are available, the connection is made.
            Ok((grant, fds)) => {
                assert_eq!(grant.peripheral, "127.0.0.9");
                assert_eq!(fds.len(), 1);
            }
            Err(Denial::Io(m)) => assert!(m.contains("socket"), "{m}"),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_connection_attempt_is_bounded_in_time() {
        // A listener that never accepts: once its queue is full, the kernel drops further SYNs,
        // so a connection neither succeeds nor fails until the bound.
        let sockets = SystemSockets {
            connect_timeout: Duration::from_millis(300),
        };
        let (server, _listener) = sockets
            .listen(Transport::Tcp, "127.0.0.1:0".parse().unwrap(), 1)
            .unwrap();
        let mut held = vec![];
        let outcome = loop {
            let started = Instant::now();
            match sockets.connect(Transport::Tcp, server) {
                Ok((_, socket)) => held.push(socket),
                Err(denial) => break (denial, started.elapsed()),
            }
            assert!(held.len() < 64, "the queue never filled");
        };
        assert!(
            matches!(
                &outcome.0,
                Denial::Network {
                    error: NetError::Timeout,
                    detail
                } if detail.contains("connect")
            ),
            "{outcome:?}"
        );
        assert!(outcome.1 >= Duration::from_millis(300), "{outcome:?}");
        assert!(outcome.1 < Duration::from_secs(5), "{outcome:?}");
    }

    #[test]
    fn sockets_are_non_blocking_and_close_on_exec() {
        let sockets = SystemSockets::default();
        let (local, listener) = sockets
            .listen(Transport::Tcp, "127.0.0.1:0".parse().unwrap(), 0)
            .unwrap();
        let (_, stream) = sockets.connect(Transport::Tcp, local).unwrap();
        for fd in [&listener, &stream] {
            let flags = rustix::fs::fcntl_getfl(fd).unwrap();
            assert!(flags.contains(rustix::fs::OFlags::NONBLOCK));
            let fd_flags = rustix::io::fcntl_getfd(fd).unwrap();
            assert!(fd_flags.contains(rustix::io::FdFlags::CLOEXEC));
        }
        // A second listener on the same port is refused as in use.
        assert!(matches!(
            sockets.listen(Transport::Tcp, local, 1),
            Err(Denial::Network {
                error: NetError::AddressInUse,
                ..
            })
        ));
        // An address of no interface here cannot be bound.
        assert!(matches!(
            sockets.listen(Transport::Udp, "192.0.2.1:5683".parse().unwrap(), 1),
            Err(Denial::Network {
                error: NetError::AddressNotBindable,
                ..
            })
        ));
    }
}
