//! The broker's decisions against the simulated board's real hardware definitions: which
//! names a manifest's grants open, the precise denials, `busy`, and a serving loop that
//! survives malformed requests.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::fd::OwnedFd;

use warden_ipc::Channel;
use warden_ipc::broker::{
    Access, BrokerReply, BrokerRequest, Denial, Detail, GpioMode, ResourceRequest,
};
use warden_policy::install::{Device, Grant, resolve};
use warden_policy::manifest::Manifest;
use wardend::broker::{Broker, DeviceOpener, authorize};
use wardend::device::load_board;

fn grants_for(capabilities: &str) -> (Vec<Grant>, warden_policy::hwdef::HwdefSet) {
    let (board, hwdefs) =
        load_board(&common::repo().join("buildroot-overlay/board/warden-sim/board.json")).unwrap();
    let text = format!(
        r#"{{"SchemaVersion": 1, "Name": "t", "ComponentId": "{}", "EntryPoint": "/bin/app.wasm",
            "Capabilities": {capabilities}, "ApplicationType": "Default"}}"#,
        common::APP_A
    );
    let manifest = Manifest::parse("test", text.as_bytes()).unwrap();
    let device = Device {
        hwdefs: &hwdefs,
        board: &board,
        installed: &[],
    };
    let resolved = resolve("test", &manifest, &device).unwrap();
    (resolved.grants, hwdefs)
}

fn gpio(name: &str) -> ResourceRequest {
    ResourceRequest::Gpio {
        name: name.into(),
        mode: GpioMode::Input,
    }
}

#[test]
fn a_granted_peripheral_opens_by_any_name_on_its_chain() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED"]}"#);
    for name in ["SAMPLE_LED", "$SAMPLE_LED", "LED_RED", "SIM_GPIO0"] {
        let grant =
            authorize(&grants, &hwdefs, &gpio(name)).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        assert_eq!(grant.chip_peripheral, "SIM_GPIO0", "{name}");
    }
}

#[test]
fn denials_say_precisely_why() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED"]}"#);
    // On the board, not in the manifest.
    let denial = authorize(&grants, &hwdefs, &gpio("SAMPLE_BUTTON_1")).unwrap_err();
    assert!(
        matches!(&denial, Denial::NotGranted(m) if m.contains("SAMPLE_BUTTON_1")),
        "{denial:?}"
    );
    // Granted as a Gpio, asked for as a UART.
    let uart = ResourceRequest::Uart {
        name: "SAMPLE_LED".into(),
    };
    let denial = authorize(&grants, &hwdefs, &uart).unwrap_err();
    assert!(
        matches!(&denial, Denial::UnknownName(m) if m.contains("not a Uart")),
        "{denial:?}"
    );
    // Not on this board at all.
    let denial = authorize(&grants, &hwdefs, &gpio("NO_SUCH_PIN")).unwrap_err();
    assert!(
        matches!(&denial, Denial::UnknownName(m) if m.contains("NO_SUCH_PIN")),
        "{denial:?}"
    );
    // Nothing granted: every open is refused, never an error of the supervisor.
    let (none, hwdefs) = grants_for("{}");
    assert!(matches!(
        authorize(&none, &hwdefs, &gpio("SAMPLE_LED")),
        Err(Denial::NotGranted(_))
    ));
}

/// Opens nothing real: a socketpair end per grant, or a wrong number of them on request.
#[derive(Debug)]
struct FakeOpener {
    descriptors: usize,
}

impl DeviceOpener for FakeOpener {
    fn open(
        &self,
        _app: &str,
        _grant: &Grant,
        _request: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let fds = (0..self.descriptors)
            .map(|_| {
                let (a, _b) = Channel::pair().unwrap();
                a.into_fd()
            })
            .collect();
        Ok((
            Access::Sim {
                detail: Detail::Gpio,
            },
            fds,
        ))
    }
}

#[test]
fn a_bad_opener_is_an_io_denial_and_long_names_never_reach_it() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED", "$SAMPLE_BUTTON_1"]}"#);
    let opener = FakeOpener { descriptors: 1 };
    let broker = Broker::new(common::APP_A, &grants, &hwdefs, &opener);
    let request = |name: &str| BrokerRequest {
        seq: 1,
        open: gpio(name),
    };
    let (grant, fds) = broker.answer(&request("SAMPLE_LED")).unwrap();
    assert_eq!(grant.peripheral, "SIM_GPIO0");
    assert_eq!(fds.len(), 1);
    let wrong = FakeOpener { descriptors: 2 };
    let broker = Broker::new(common::APP_A, &grants, &hwdefs, &wrong);
    assert!(matches!(
        broker.answer(&request("SAMPLE_BUTTON_1")),
        Err(Denial::Io(m)) if m.contains("2 descriptors")
    ));
    // An over-long name is refused before any lookup.
    assert!(matches!(
        broker.answer(&request(&"X".repeat(500))),
        Err(Denial::InvalidArgument(_))
    ));
}

#[test]
fn the_serving_loop_answers_in_order_survives_garbage_and_ends_with_the_worker() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED"]}"#);
    let (worker, supervisor) = Channel::pair().unwrap();
    let server = std::thread::spawn(move || {
        let opener = FakeOpener { descriptors: 1 };
        let broker = Broker::new(common::APP_A, &grants, &hwdefs, &opener);
        broker.serve(&supervisor)
    });
    // Garbage: answered, not fatal.
    worker
        .send(
            &serde_json::json!({"seq": 5, "open": {"kind": "teleport"}}),
            &[],
        )
        .unwrap();
    let (reply, fds) = worker.recv::<BrokerReply>().unwrap();
    assert!(fds.is_empty());
    assert!(
        matches!(reply.result, Err(Denial::InvalidArgument(_))),
        "{reply:?}"
    );
    worker
        .send(
            &BrokerRequest {
                seq: 6,
                open: gpio("SAMPLE_LED"),
            },
            &[],
        )
        .unwrap();
    let (reply, fds) = worker.recv::<BrokerReply>().unwrap();
    assert_eq!(reply.seq, 6);
    assert!(reply.result.is_ok(), "{reply:?}");
    assert_eq!(fds.len(), 1);
    worker
        .send(
            &BrokerRequest {
                seq: 7,
                open: gpio("SAMPLE_BUTTON_1"),
            },
            &[],
        )
        .unwrap();
    let (reply, _) = worker.recv::<BrokerReply>().unwrap();
    assert_eq!(reply.seq, 7);
    assert!(matches!(reply.result, Err(Denial::NotGranted(_))));
    drop(worker);
    assert_eq!(server.join().unwrap(), 3);
}
