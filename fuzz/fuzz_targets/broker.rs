//! The broker's decoder and decisions never panic: any packet a worker can send either fails to
//! decode (answered `invalid-argument`) or is validated and decided against a real app's grants
//! on the simulated board, ending in a grant of the asked kind or a denial.
//!
//! An input is one request per line, answered in order by one broker, so a lookup can precede
//! a connection. Peripheral requests go through `authorize`; network requests through the
//! whole `Broker::answer`, with a hosts table and a socket opener that opens nothing but
//! records what it was asked: a connection reaches it only for an allowed literal or an
//! address a lookup of an allowed name returned earlier in the same input, a server socket
//! only on an allowed port. Device-service requests (power, update events) are refused
//! `not-granted` by a broker given no services.
#![no_main]

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_ipc::broker::{Access, BrokerRequest, Denial, NetError, ResourceRequest, Transport};
use warden_policy::hwdef::HwdefSet;
use warden_policy::install::{Device, Grant, resolve};
use warden_policy::manifest::Manifest;
use wardend::broker::{Broker, DeviceOpener};
use wardend::network::{HostsTable, Network, NetworkGrant, Resolver, SocketOpener};

const HOSTS: &str = "127.0.0.2 allowed.test\n127.0.0.3 other.test\n127.0.0.4 a.wild.test\n";
const LITERAL: [u8; 4] = [192, 0, 2, 7];
const TCP_PORT: u16 = 8080;
const UDP_PORT: u16 = 5683;
/// The detail of every "socket" the fuzz opener is asked for.
const REACHED: &str = "fuzz: the opener was reached";

struct App {
    grants: Vec<Grant>,
    hwdefs: HwdefSet,
    network: NetworkGrant,
}

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let board = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../buildroot-overlay/board/warden-sim/board.json"
        );
        let (board, hwdefs) =
            wardend::device::load_board(Path::new(board)).expect("the sim board");
        let manifest = Manifest::parse(
            "fuzz",
            br#"{"SchemaVersion": 1, "Name": "f", "ComponentId": "6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b",
                 "EntryPoint": "/bin/app.wasm", "ApplicationType": "Default",
                 "Capabilities": {"Gpio": ["$SAMPLE_LED", "$SAMPLE_BUTTON_1"], "Uart": ["$SAMPLE_UART"],
                                  "I2cMaster": ["$SAMPLE_LSM6DS3_I2C"], "Adc": ["$SAMPLE_POTENTIOMETER_ADC_CONTROLLER"],
                                  "AllowedConnections": ["allowed.test", "*.wild.test", "192.0.2.7"],
                                  "AllowedTcpServerPorts": [8080], "AllowedUdpServerPorts": [5683]}}"#,
        )
        .expect("the fuzz manifest");
        let resolved = resolve(
            "fuzz",
            &manifest,
            &Device {
                hwdefs: &hwdefs,
                board: &board,
                installed: &[],
            },
        )
        .expect("the fuzz manifest resolves");
        let network = NetworkGrant::from_capabilities(&manifest.capabilities, &resolved.withheld);
        App {
            grants: resolved.grants,
            hwdefs,
            network,
        }
    })
}

fn network() -> &'static Network {
    static NETWORK: OnceLock<Network> = OnceLock::new();
    NETWORK.get_or_init(|| Network {
        resolver: Resolver::Table(
            HostsTable::parse(Path::new("fuzz-hosts"), HOSTS).expect("the fuzz hosts table"),
        ),
        sockets: Box::new(NoSockets),
    })
}

/// Opens nothing: every socket it is asked for is a network error the harness recognises.
#[derive(Debug)]
struct NoSockets;

impl SocketOpener for NoSockets {
    fn connect(&self, _: Transport, remote: SocketAddr) -> Result<(SocketAddr, OwnedFd), Denial> {
        Err(Denial::Network {
            error: NetError::ConnectionRefused,
            detail: format!("{REACHED}: connect {remote}"),
        })
    }

    fn listen(
        &self,
        _: Transport,
        local: SocketAddr,
        backlog: u32,
    ) -> Result<(SocketAddr, OwnedFd), Denial> {
        assert!(backlog >= 1, "listen with backlog {backlog}");
        Err(Denial::Network {
            error: NetError::AddressInUse,
            detail: format!("{REACHED}: listen {local}"),
        })
    }
}

/// Peripherals are decided by `authorize` here; the opener is never reached.
#[derive(Debug)]
struct NoDevices;

impl DeviceOpener for NoDevices {
    fn open(
        &self,
        _: &str,
        _: &Grant,
        _: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        Err(Denial::Io("fuzz: no devices".into()))
    }
}

fn reached(result: &Result<(warden_ipc::broker::Grant, Vec<OwnedFd>), Denial>) -> bool {
    matches!(result, Err(Denial::Network { detail, .. }) if detail.starts_with(REACHED))
}

fuzz_target!(|data: &[u8]| {
    let app = app();
    let mut broker = Broker::new("fuzz", &app.grants, &app.hwdefs, &NoDevices)
        .with_network(&app.network, network());
    // What lookups answered so far in this input, canonical.
    let mut looked_up: HashSet<IpAddr> = HashSet::new();
    for line in data.split(|b| *b == b'\n') {
        let Ok(request) = serde_json::from_slice::<BrokerRequest>(line) else {
            continue;
        };
        let valid = request.validate().is_ok();
        if request.open.peripheral().is_some() {
            if !valid {
                continue;
            }
            match wardend::broker::authorize(&app.grants, &app.hwdefs, &request.open) {
                Ok(grant) => assert_eq!(grant.capability.name(), request.open.capability()),
                Err(Denial::NotGranted(m) | Denial::UnknownName(m)) => assert!(!m.is_empty()),
                Err(other) => panic!("authorize answered {other:?}"),
            }
            continue;
        }
        let result = broker.answer(&request);
        if !valid {
            assert!(
                matches!(result, Err(Denial::InvalidArgument(_))),
                "{result:?}"
            );
            continue;
        }
        match &request.open {
            ResourceRequest::Lookup { host } => match &result {
                Ok((grant, fds)) => {
                    assert!(fds.is_empty());
                    let Access::Addresses { addresses } = &grant.access else {
                        panic!("a lookup answered {grant:?}");
                    };
                    assert!(!addresses.is_empty());
                    let name = host.trim_end_matches('.').to_ascii_lowercase();
                    assert!(
                        name == "allowed.test"
                            || name.ends_with(".wild.test")
                            || name == "192.0.2.7",
                        "{host} was answered"
                    );
                    looked_up.extend(addresses.iter().map(|a| a.to_canonical()));
                }
                Err(Denial::NotGranted(_)) => {}
                Err(Denial::Network {
                    error: NetError::NameUnresolvable,
                    ..
                }) => {}
                Err(other) => panic!("a lookup answered {other:?}"),
            },
            ResourceRequest::Connect { address, .. } => {
                let ip = address.ip().to_canonical();
                let allowed = ip == IpAddr::from(LITERAL) || looked_up.contains(&ip);
                if reached(&result) {
                    assert!(allowed, "a connection to {address} reached the opener");
                } else {
                    assert!(
                        !allowed && matches!(result, Err(Denial::NotGranted(_))),
                        "{address}: {result:?}"
                    );
                }
            }
            ResourceRequest::Listen {
                transport, address, ..
            } => {
                let port = match transport {
                    Transport::Tcp => TCP_PORT,
                    Transport::Udp => UDP_PORT,
                };
                if reached(&result) {
                    assert_eq!(address.port(), port);
                } else {
                    assert!(
                        address.port() != port || address.ip().is_multicast(),
                        "{address}: {result:?}"
                    );
                }
            }
            // Device services: this broker was given none (`with_system` not called), so each
            // is refused as not granted, whatever it asks.
            ResourceRequest::Power { .. }
            | ResourceRequest::Events
            | ResourceRequest::DeferUpdate { .. }
            | ResourceRequest::ResumeUpdate { .. }
            | ResourceRequest::Intercore { .. } => {
                assert!(matches!(result, Err(Denial::NotGranted(_))), "{result:?}");
            }
            _ => unreachable!("peripherals are handled above"),
        }
    }
});
