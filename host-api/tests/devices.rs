//! The device host against a fake broker and fake simulated board (socket pairs and threads,
//! as the supervisor serves them): what reaches the board, how each refusal reaches the app.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use common::{Board, board, broker, devices, raw_broker, sim_grant};
use warden_host_api::bindings::warden::device::adc::HostController as _;
use warden_host_api::bindings::warden::device::gpio::{
    Edge, HostInOutPin, HostInputPin, HostOutputPin, Level,
};
use warden_host_api::bindings::warden::device::i2c::{HostBus, Operation as I2cOp};
use warden_host_api::bindings::warden::device::log::{Host as _, Level as LogLevel};
use warden_host_api::bindings::warden::device::pwm::{self, HostController as _};
use warden_host_api::bindings::warden::device::spi::{HostDevice, Operation as SpiOp};
use warden_host_api::bindings::warden::device::types::Error;
use warden_host_api::bindings::warden::device::{adc, intercore, power, sysevent};
use warden_host_api::{Devices, NoBroker};
use warden_ipc::broker::{Access, BrokerReply, Denial, Detail, GpioMode, Grant, ResourceRequest};
use warden_ipc::sim::{BusOp, PwmState, SimError, SimReply, SimRequest};

/// A board that answers GPIO requests as a line would (`level` starts low).
fn gpio_board() -> Board {
    let mut level = false;
    board(move |request| match request {
        SimRequest::GpioSet { high } => {
            level = *high;
            SimReply::Done
        }
        SimRequest::GpioGet => SimReply::Level(level),
        SimRequest::GpioDirection { output } => {
            if let Some(high) = output {
                level = *high;
            }
            SimReply::Done
        }
        SimRequest::GpioWaitEdge { .. } => SimReply::Edge(None),
        _ => SimReply::Error(SimError::InvalidArgument("not a GPIO request".into())),
    })
}

/// Devices whose broker grants `name` (only) as the board's GPIO line.
fn with_gpio(name: &'static str, mut line: Board) -> (Devices, common::Log<ResourceRequest>) {
    let (opener, asked) = broker(move |request| {
        if request.peripheral().unwrap_or_default() == name && line.worker_end.is_some() {
            line.grant("SIM_GPIO0", Detail::Gpio)
        } else {
            (
                Err(Denial::NotGranted(
                    request.peripheral().unwrap_or_default().into(),
                )),
                vec![],
            )
        }
    });
    (devices(opener).0, asked)
}

#[test]
fn a_granted_output_pin_drives_the_simulated_line() {
    let line = gpio_board();
    let seen = line.requests.clone();
    let (mut devices, asked) = with_gpio("SAMPLE_LED", line);

    let pin = HostOutputPin::open(&mut devices, "SAMPLE_LED".into(), Level::High).unwrap();
    assert_eq!(
        asked.all(),
        [ResourceRequest::Gpio {
            name: "SAMPLE_LED".into(),
            mode: GpioMode::Output { initial_high: true }
        }],
        "the initial level travels with the open, applied by whoever opens the line"
    );
    let rep = pin.rep();
    let pin = || wasmtime::component::Resource::<_>::new_borrow(rep);
    HostOutputPin::set(&mut devices, pin(), Level::Low).unwrap();
    assert_eq!(
        HostOutputPin::toggle(&mut devices, pin()).unwrap(),
        Level::High
    );
    assert_eq!(
        HostOutputPin::get(&mut devices, pin()).unwrap(),
        Level::High
    );
    assert_eq!(
        seen.all(),
        [
            SimRequest::GpioSet { high: false },
            SimRequest::GpioSet { high: true },
            SimRequest::GpioGet,
        ]
    );
}

#[test]
fn input_and_in_out_pins_send_their_requests() {
    let line = gpio_board();
    let seen = line.requests.clone();
    let (mut devices, _) = with_gpio("BUTTON", line);
    let pin = HostInputPin::open(&mut devices, "BUTTON".into()).unwrap();
    let rep = pin.rep();
    let pin = || wasmtime::component::Resource::<_>::new_borrow(rep);
    assert_eq!(HostInputPin::get(&mut devices, pin()).unwrap(), Level::Low);
    assert_eq!(
        HostInputPin::wait_for_edge(&mut devices, pin(), Edge::Rising, 20).unwrap(),
        None
    );
    assert!(matches!(
        HostInputPin::wait_for_edge(&mut devices, pin(), Edge::Both, 60_001),
        Err(Error::InvalidArgument(m)) if m.contains("60000")
    ));
    assert_eq!(
        seen.all(),
        [
            SimRequest::GpioGet,
            SimRequest::GpioWaitEdge {
                rising: Some(true),
                timeout_ms: 20
            }
        ]
    );

    let line = gpio_board();
    let seen = line.requests.clone();
    let (mut devices, asked) = with_gpio("RELAY", line);
    let pin = HostInOutPin::open(&mut devices, "RELAY".into()).unwrap();
    let rep = pin.rep();
    let pin = || wasmtime::component::Resource::<_>::new_borrow(rep);
    HostInOutPin::set_output(&mut devices, pin(), Level::High).unwrap();
    assert_eq!(HostInOutPin::get(&mut devices, pin()).unwrap(), Level::High);
    HostInOutPin::set_input(&mut devices, pin()).unwrap();
    assert!(matches!(
        &asked.all()[..],
        [ResourceRequest::Gpio {
            mode: GpioMode::InOut,
            ..
        }]
    ));
    assert_eq!(
        seen.all(),
        [
            SimRequest::GpioDirection { output: Some(true) },
            SimRequest::GpioGet,
            SimRequest::GpioDirection { output: None },
        ]
    );
}

#[test]
fn every_denial_reaches_the_app_as_its_error() {
    let (opener, _) = broker(|request| {
        let message = format!("denied {}", request.peripheral().unwrap_or_default());
        let denial = match request.peripheral().unwrap_or_default() {
            "A" => Denial::NotGranted(message),
            "B" => Denial::UnknownName(message),
            "C" => Denial::Busy(message),
            "D" => Denial::InvalidArgument(message),
            _ => Denial::Io(message),
        };
        (Err(denial), vec![])
    });
    let (mut devices, _) = devices(opener);
    let mut open = |name: &str| {
        HostBus::open(&mut devices, name.into())
            .map(|_| ())
            .unwrap_err()
    };
    assert!(matches!(open("A"), Error::NotGranted(m) if m == "denied A"));
    assert!(matches!(open("B"), Error::UnknownName(m) if m == "denied B"));
    assert!(matches!(open("C"), Error::Busy(m) if m == "denied C"));
    assert!(matches!(open("D"), Error::InvalidArgument(m) if m == "denied D"));
    assert!(matches!(open("E"), Error::Io(m) if m == "denied E"));
}

#[test]
fn a_bad_name_is_refused_before_the_broker_is_asked() {
    let (opener, asked) = broker(|_| (Err(Denial::NotGranted("no".into())), vec![]));
    let (mut devices, _) = devices(opener);
    for name in ["", "LED/../x", "LED\n", &"A".repeat(129)] {
        let err = HostOutputPin::open(&mut devices, name.into(), Level::Low)
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(_)),
            "{name:?}: {err:?}"
        );
    }
    assert!(asked.all().is_empty());
}

#[test]
fn without_a_broker_every_open_is_not_granted() {
    let mut devices = Devices::new(Box::new(NoBroker), Box::new(std::io::sink()));
    let err = HostOutputPin::open(&mut devices, "SAMPLE_LED".into(), Level::Low)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotGranted(m) if m == "this app's manifest grants it no peripheral, network access or device service"),
        "{err:?}"
    );
    assert!(matches!(
        HostDevice::open(&mut devices, "SPI".into()),
        Err(Error::NotGranted(_))
    ));
}

#[test]
fn a_second_open_of_an_open_name_is_busy_until_the_first_is_dropped() {
    let mut lines = vec![gpio_board(), gpio_board()];
    let (opener, asked) = broker(
        move |request| match request.peripheral().unwrap_or_default() {
            "SAMPLE_LED" | "$SAMPLE_LED" => lines.pop().unwrap().grant("SIM_GPIO0", Detail::Gpio),
            // Another name of the same pin, resolved by the broker.
            "LED_RED" => gpio_board().grant("SIM_GPIO0", Detail::Gpio),
            other => (Err(Denial::UnknownName(other.into())), vec![]),
        },
    );
    let (mut devices, _) = devices(opener);
    let first = HostOutputPin::open(&mut devices, "SAMPLE_LED".into(), Level::Low).unwrap();
    for (again, asks) in [("SAMPLE_LED", 1), ("$SAMPLE_LED", 1), ("LED_RED", 2)] {
        let err = HostInputPin::open(&mut devices, again.into())
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(&err, Error::Busy(m) if m.contains(again)),
            "{err:?}"
        );
        assert_eq!(asked.all().len(), asks, "{again}");
    }
    assert!(devices.is_open("SAMPLE_LED") && devices.is_open("SIM_GPIO0"));
    HostOutputPin::drop(&mut devices, first).unwrap();
    assert!(!devices.is_open("SAMPLE_LED") && !devices.is_open("SIM_GPIO0"));
    HostOutputPin::open(&mut devices, "SAMPLE_LED".into(), Level::Low).unwrap();
}

#[test]
fn dropping_a_resource_closes_its_descriptor() {
    let mut line = gpio_board();
    let mut fd = line.worker_end.take();
    let (opener, _) = broker(move |_| sim_grant("P", Detail::Gpio, fd.take().unwrap()));
    let (mut devices, _) = devices(opener);
    let pin = HostOutputPin::open(&mut devices, "P".into(), Level::Low).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !line.thread.is_finished(),
        "the board serves while the pin is open"
    );
    HostOutputPin::drop(&mut devices, pin).unwrap();
    // The board's thread ends when the worker's end of its socket closes.
    let started = Instant::now();
    while !line.thread.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the descriptor stayed open"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_grant_with_the_wrong_number_of_descriptors_is_an_io_error_and_the_broker_stays_usable() {
    let mut line = gpio_board();
    let (opener, _) = broker(
        move |request| match request.peripheral().unwrap_or_default() {
            "NONE" => (
                Ok(Grant {
                    peripheral: "P0".into(),
                    access: Access::Sim {
                        detail: Detail::Gpio,
                    },
                }),
                vec![],
            ),
            "TWO" => {
                let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
                (
                    Ok(Grant {
                        peripheral: "P1".into(),
                        access: Access::Tty { baud: 9600 },
                    }),
                    vec![OwnedFd::from(a), OwnedFd::from(b)],
                )
            }
            _ => line.grant("P2", Detail::Gpio),
        },
    );
    let (mut devices, _) = devices(opener);
    let err = HostOutputPin::open(&mut devices, "NONE".into(), Level::Low)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io(m) if m.contains("0 descriptor")),
        "{err:?}"
    );
    let err =
        warden_host_api::bindings::warden::device::uart::HostPort::open(&mut devices, "TWO".into())
            .map(|_| ())
            .unwrap_err();
    assert!(
        matches!(&err, Error::Io(m) if m.contains("2 descriptor")),
        "{err:?}"
    );
    assert!(!devices.is_open("NONE") && !devices.is_open("TWO"));
    HostOutputPin::open(&mut devices, "GOOD".into(), Level::Low).unwrap();
}

#[test]
fn a_reply_out_of_step_breaks_the_broker_for_good() {
    let opener = raw_broker(|request| {
        (
            BrokerReply {
                seq: request.seq + 1,
                result: Err(Denial::NotGranted("x".into())),
            },
            vec![],
        )
    });
    let (mut devices, _) = devices(opener);
    for _ in 0..2 {
        let err = HostOutputPin::open(&mut devices, "LED".into(), Level::Low)
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(&err, Error::Io(m) if m.contains("broker")),
            "{err:?}"
        );
    }
}

#[test]
fn a_grant_of_the_wrong_kind_is_an_io_error() {
    let mut bus = board(|_| SimReply::Done);
    let (opener, _) = broker(move |_| bus.grant("SIM_I2C0", Detail::I2c));
    let (mut devices, _) = devices(opener);
    let err = HostOutputPin::open(&mut devices, "LED".into(), Level::Low)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io(m) if m.contains("not a GPIO line")),
        "{err:?}"
    );
    assert!(!devices.is_open("LED"));
}

#[test]
fn the_boards_refusals_and_odd_replies_reach_the_app() {
    let mut replies = vec![
        SimReply::Sample(3),
        SimReply::Error(SimError::Io("line gone".into())),
        SimReply::Error(SimError::InvalidArgument("an input pin".into())),
    ];
    let line = board(move |_| replies.pop().unwrap_or(SimReply::Done));
    let (mut devices, _) = with_gpio("LED", line);
    let pin = HostOutputPin::open(&mut devices, "LED".into(), Level::Low).unwrap();
    let rep = pin.rep();
    let pin = || wasmtime::component::Resource::<_>::new_borrow(rep);
    assert!(matches!(
        HostOutputPin::set(&mut devices, pin(), Level::High),
        Err(Error::InvalidArgument(m)) if m == "an input pin"
    ));
    assert!(matches!(
        HostOutputPin::set(&mut devices, pin(), Level::High),
        Err(Error::Io(m)) if m == "line gone"
    ));
    // A sample is no answer to a GPIO read.
    assert!(matches!(
        HostOutputPin::get(&mut devices, pin()),
        Err(Error::Io(m)) if m.contains("Sample(3)")
    ));
}

#[test]
fn i2c_calls_are_transactions_on_the_board() {
    let mut bus = board(|request| match request {
        SimRequest::I2c { address: 0x48, ops } => SimReply::Data(
            ops.iter()
                .filter_map(|op| match op {
                    BusOp::Read(n) => Some(vec![0xAB; *n as usize]),
                    _ => None,
                })
                .collect(),
        ),
        SimRequest::I2c { .. } => SimReply::Error(SimError::Io("NACK".into())),
        _ => SimReply::Error(SimError::InvalidArgument("not I2C".into())),
    });
    let seen = bus.requests.clone();
    let (opener, _) = broker(move |_| bus.grant("SIM_I2C0", Detail::I2c));
    let (mut devices, _) = devices(opener);
    let b = HostBus::open(&mut devices, "SENSOR_BUS".into()).unwrap();
    let rep = b.rep();
    let b = || wasmtime::component::Resource::<_>::new_borrow(rep);
    assert_eq!(
        HostBus::write_read(&mut devices, b(), 0x48, vec![0x01], 2).unwrap(),
        [0xAB, 0xAB]
    );
    HostBus::write(&mut devices, b(), 0x48, vec![1, 2]).unwrap();
    assert_eq!(HostBus::read(&mut devices, b(), 0x48, 1).unwrap(), [0xAB]);
    assert_eq!(
        HostBus::transaction(
            &mut devices,
            b(),
            0x48,
            vec![I2cOp::Read(1), I2cOp::Write(vec![9]), I2cOp::Read(3)]
        )
        .unwrap(),
        [vec![0xAB], vec![0xAB; 3]]
    );
    assert!(matches!(
        HostBus::read(&mut devices, b(), 0x50, 1),
        Err(Error::Io(m)) if m == "NACK"
    ));
    // Out of bounds: refused in the worker, never sent.
    let sent = seen.all().len();
    assert!(matches!(
        HostBus::read(&mut devices, b(), 0x80, 1),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        HostBus::read(&mut devices, b(), 0x48, 4097),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        HostBus::transaction(&mut devices, b(), 0x48, vec![I2cOp::Read(1); 17]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(seen.all().len(), sent);
    assert_eq!(
        seen.all()[0],
        SimRequest::I2c {
            address: 0x48,
            ops: vec![BusOp::Write(vec![1]), BusOp::Read(2)]
        }
    );
}

#[test]
fn a_bus_reply_of_the_wrong_shape_is_an_io_error() {
    let mut bus = board(|_| SimReply::Data(vec![vec![1]]));
    let (opener, _) = broker(move |_| bus.grant("SIM_I2C0", Detail::I2c));
    let (mut devices, _) = devices(opener);
    let b = HostBus::open(&mut devices, "BUS".into()).unwrap();
    assert!(matches!(
        HostBus::read(&mut devices, b, 0x10, 2),
        Err(Error::Io(m)) if m.contains("answered")
    ));
}

#[test]
fn spi_transactions_keep_their_operations_in_order() {
    let mut spi = board(|request| match request {
        SimRequest::Spi { ops } => SimReply::Data(
            ops.iter()
                .filter_map(|op| match op {
                    BusOp::Read(n) => Some(vec![7; *n as usize]),
                    BusOp::Transfer(bytes) => Some(bytes.iter().map(|b| !b).collect()),
                    _ => None,
                })
                .collect(),
        ),
        _ => SimReply::Error(SimError::InvalidArgument("not SPI".into())),
    });
    let seen = spi.requests.clone();
    let (opener, _) = broker(move |_| spi.grant("SIM_SPI0", Detail::Spi));
    let (mut devices, _) = devices(opener);
    let d = HostDevice::open(&mut devices, "DISPLAY".into()).unwrap();
    let rep = d.rep();
    let d = || wasmtime::component::Resource::<_>::new_borrow(rep);
    assert_eq!(
        HostDevice::transfer(&mut devices, d(), vec![0x0F]).unwrap(),
        [0xF0]
    );
    let ops = vec![
        SpiOp::Write(vec![1]),
        SpiOp::DelayUs(10),
        SpiOp::Read(2),
        SpiOp::Transfer(vec![0]),
    ];
    assert_eq!(
        HostDevice::transaction(&mut devices, d(), ops).unwrap(),
        [vec![7, 7], vec![0xFF]]
    );
    assert_eq!(
        seen.all()[1],
        SimRequest::Spi {
            ops: vec![
                BusOp::Write(vec![1]),
                BusOp::DelayUs(10),
                BusOp::Read(2),
                BusOp::Transfer(vec![0])
            ]
        }
    );
    assert!(matches!(
        HostDevice::transaction(&mut devices, d(), vec![SpiOp::DelayUs(65_536)]),
        Err(Error::InvalidArgument(m)) if m.contains("65535")
    ));
    // Each read within bounds, but more in all than one reply packet can carry.
    assert!(matches!(
        HostDevice::transaction(&mut devices, d(), vec![SpiOp::Read(4096); 4]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(seen.all().len(), 2);
}

#[test]
fn adc_samples_are_checked_against_the_channels_and_resolution() {
    let mut replies = vec![SimReply::Sample(4096), SimReply::Sample(4095)];
    let mut adc_board = board(move |_| replies.pop().unwrap());
    let seen = adc_board.requests.clone();
    let detail = Detail::Adc {
        channels: 2,
        bits: 12,
        reference_microvolts: 2_500_000,
    };
    let (opener, _) = broker(move |_| adc_board.grant("SIM_ADC0", detail.clone()));
    let (mut devices, _) = devices(opener);
    let adc = adc::HostController::open(&mut devices, "LIGHT".into()).unwrap();
    let rep = adc.rep();
    let adc = || wasmtime::component::Resource::<_>::new_borrow(rep);
    assert_eq!(adc::HostController::channel_count(&mut devices, adc()), 2);
    assert_eq!(devices.bits(adc()), 12);
    assert_eq!(devices.reference_microvolts(adc()), 2_500_000);
    assert_eq!(devices.sample(adc(), 1).unwrap(), 4095);
    assert!(matches!(
        devices.sample(adc(), 2),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(devices.sample(adc(), 0), Err(Error::Io(m)) if m.contains("12-bit")));
    assert_eq!(
        seen.all(),
        [
            SimRequest::AdcSample { channel: 1 },
            SimRequest::AdcSample { channel: 0 }
        ]
    );
}

#[test]
fn pwm_states_reach_the_board_and_impossible_ones_do_not() {
    let mut pwm_board = board(|_| SimReply::Done);
    let seen = pwm_board.requests.clone();
    let (opener, _) = broker(move |_| pwm_board.grant("SIM_PWM0", Detail::Pwm { channels: 1 }));
    let (mut devices, _) = devices(opener);
    let c = pwm::HostController::open(&mut devices, "BUZZER".into()).unwrap();
    let rep = c.rep();
    let c = || wasmtime::component::Resource::<_>::new_borrow(rep);
    let state = pwm::State {
        period_ns: 1000,
        duty_ns: 250,
        polarity: pwm::Polarity::Inversed,
        enabled: true,
    };
    devices.apply(c(), 0, state).unwrap();
    assert!(matches!(
        devices.apply(c(), 1, state),
        Err(Error::InvalidArgument(_))
    ));
    let too_long = pwm::State {
        duty_ns: 1001,
        ..state
    };
    assert!(matches!(
        devices.apply(c(), 0, too_long),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        seen.all(),
        [SimRequest::PwmApply {
            channel: 0,
            state: PwmState {
                period_ns: 1000,
                duty_ns: 250,
                inversed: true,
                enabled: true
            }
        }]
    );
}

#[test]
fn a_linux_line_is_used_through_its_ioctls() {
    // No GPIO chip on a build machine: a pipe stands in for the line request, and the
    // kernel's refusal of the GPIO ioctl reaches the app as an io error naming the peripheral.
    let (opener, _) = broker(|_| {
        let (reader, _writer) = rustix::pipe::pipe().unwrap();
        (
            Ok(Grant {
                peripheral: "GPIO0_17".into(),
                access: Access::GpioLine,
            }),
            vec![reader],
        )
    });
    let (mut devices, _) = devices(opener);
    let pin = HostOutputPin::open(&mut devices, "LED".into(), Level::Low).unwrap();
    let err = HostOutputPin::set(&mut devices, pin, Level::High).unwrap_err();
    assert!(
        matches!(&err, Error::Io(m) if m.contains("GPIO0_17") && m.contains("setting the line")),
        "{err:?}"
    );
}

#[test]
fn a_log_call_is_one_line_on_stderr() {
    let (mut devices, log) = devices(broker(|_| (Err(Denial::Io("x".into())), vec![])).0);
    devices.log(LogLevel::Warn, "sensor".into(), "too hot".into());
    devices.log(LogLevel::Info, "net".into(), "two\nlines".into());
    assert_eq!(
        log.text(),
        "[warn] sensor: too hot\n[info] net: two\\nlines\n"
    );
}

#[test]
fn without_a_broker_intercore_is_not_granted() {
    let mut devices = Devices::new(Box::new(NoBroker), Box::new(std::io::sink()));
    let err =
        intercore::HostChannel::open(&mut devices, "005180bc-402f-4cb3-a662-72937dbcde47".into())
            .map(|_| ())
            .unwrap_err();
    assert!(matches!(&err, Error::NotGranted(_)), "{err:?}");
    // A malformed id is refused before any broker is asked.
    let err = intercore::HostChannel::open(&mut devices, "rt-app".into())
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(_)), "{err:?}");
}

#[test]
fn without_a_broker_power_and_sysevent_are_not_granted() {
    let mut devices = Devices::new(Box::new(NoBroker), Box::new(std::io::sink()));
    let refused = |err: Error| assert!(matches!(err, Error::NotGranted(_)), "{err:?}");
    refused(sysevent::Host::next_event(&mut devices, 0).unwrap_err());
    refused(sysevent::Host::defer_update(&mut devices, sysevent::UpdateKind::App, 5).unwrap_err());
    refused(sysevent::Host::resume_update(&mut devices, sysevent::UpdateKind::Os).unwrap_err());
    refused(power::Host::reboot(&mut devices).unwrap_err());
    refused(power::Host::power_down(&mut devices, 10).unwrap_err());
    refused(
        power::Host::set_power_profile(&mut devices, power::PowerProfile::Balanced).unwrap_err(),
    );
}

/// A channel over a `SOCK_SEQPACKET` pair, as the bridge to an emulated core hands it over:
/// messages both ways whole and in order, the size limit, waits that end, a closed peer.
#[test]
fn an_intercore_channel_carries_whole_messages_and_says_when_it_closes() {
    use std::os::unix::net::UnixDatagram;
    let (app_end, peer_end) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let mut app_end = Some(app_end);
    let (opener, seen) = broker(move |request| match request {
        ResourceRequest::Intercore { .. } => match app_end.take() {
            Some(fd) => (
                Ok(Grant {
                    peripheral: "AllowedApplicationConnections".into(),
                    access: Access::Channel { max_message: 496 },
                }),
                vec![fd],
            ),
            None => (Err(Denial::Busy("taken".into())), vec![]),
        },
        _ => (Err(Denial::NotGranted("no".into())), vec![]),
    });
    let (mut devices, _) = devices(opener);
    let id = "005180BC-402F-4CB3-A662-72937DBCDE47";
    let channel = intercore::HostChannel::open(&mut devices, id.into()).unwrap();
    assert!(matches!(
        seen.all().as_slice(),
        [ResourceRequest::Intercore { component_id }] if component_id == id
    ));
    // A second channel to the same app (any case) is busy in the app itself.
    let again = intercore::HostChannel::open(&mut devices, id.to_lowercase())
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(again, Error::Busy(_)), "{again:?}");
    assert_eq!(seen.all().len(), 1, "the broker was asked again");

    let ch = || {
        wasmtime::component::Resource::<
        warden_host_api::bindings::warden::device::intercore::Channel,
    >::new_borrow(channel.rep())
    };
    assert_eq!(
        intercore::HostChannel::max_message_size(&mut devices, ch()),
        496
    );
    intercore::HostChannel::send(&mut devices, ch(), b"ping".to_vec()).unwrap();
    intercore::HostChannel::send(&mut devices, ch(), vec![9u8; 496]).unwrap();
    let peer = UnixDatagram::from(peer_end);
    let mut buf = [0u8; 600];
    let n = peer.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(peer.recv(&mut buf).unwrap(), 496);
    for bad in [vec![], vec![0u8; 497]] {
        let err = intercore::HostChannel::send(&mut devices, ch(), bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
    peer.send(b"pong").unwrap();
    peer.send(b"second").unwrap();
    let got = |devices: &mut Devices, ms| intercore::HostChannel::receive(devices, ch(), ms);
    assert_eq!(
        got(&mut devices, 1000).unwrap().as_deref(),
        Some(&b"pong"[..])
    );
    assert_eq!(
        got(&mut devices, 1000).unwrap().as_deref(),
        Some(&b"second"[..])
    );
    let began = Instant::now();
    assert_eq!(got(&mut devices, 100).unwrap(), None);
    assert!(began.elapsed() >= Duration::from_millis(100));
    assert!(matches!(
        got(&mut devices, 60_001),
        Err(Error::InvalidArgument(_))
    ));
    drop(peer);
    let closed = got(&mut devices, 1000).unwrap_err();
    assert!(
        matches!(&closed, Error::Io(m) if m.contains("closed")),
        "{closed:?}"
    );
    let closed = intercore::HostChannel::send(&mut devices, ch(), b"x".to_vec()).unwrap_err();
    assert!(
        matches!(&closed, Error::Io(m) if m.contains("closed")),
        "{closed:?}"
    );
}
