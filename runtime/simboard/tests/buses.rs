//! Simulated I2C and SPI buses through `SimBoard::open`: the emulated TMP102, LSM6DS3 and
//! AT24C02, NACKs, the transaction log, chip selects.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ask, board_with, i2c, open, reference_board, spi};
use warden_ipc::broker::{Access, Denial, Detail};
use warden_ipc::sim::{BusOp, SimError, SimReply, SimRequest};
use warden_simboard::{BusRecord, MAX_REPLY_BYTES, SimBoardError};

const I2C: &str = "SIM_ISU2_I2C";
const SPI: &str = "SIM_ISU3_SPI";
const TMP102: u16 = 0x48;
const LSM6DS3: u16 = 0x6a;

/// A register read: write the register address, repeated start, read `len`.
fn i2c_read(address: u16, register: u8, len: u32) -> SimRequest {
    SimRequest::I2c {
        address,
        ops: vec![BusOp::Write(vec![register]), BusOp::Read(len)],
    }
}

fn data(reply: SimReply) -> Vec<Vec<u8>> {
    match reply {
        SimReply::Data(buffers) => buffers,
        other => panic!("expected data, got {other:?}"),
    }
}

#[test]
fn the_tmp102_reports_the_temperature_set_from_outside() {
    let board = reference_board();
    let (ch, access) = open(&board, "thermo", I2C, i2c());
    assert_eq!(
        access,
        Access::Sim {
            detail: Detail::I2c
        }
    );
    assert_eq!(
        data(ask(&ch, &i2c_read(TMP102, 0x00, 2))),
        [vec![0x19, 0x00]],
        "25 °C"
    );
    board
        .sensor_set(I2C, TMP102, "temperature_c", 21.5)
        .unwrap();
    // 21.5 / 0.0625 = 344 = 0x158, left-justified: 0x1580.
    assert_eq!(
        data(ask(&ch, &i2c_read(TMP102, 0x00, 2))),
        [vec![0x15, 0x80]]
    );
    board
        .sensor_set(I2C, TMP102, "temperature_c", -12.25)
        .unwrap();
    // -196 = 0xF3C as 12 bits: 0xF3C0.
    assert_eq!(
        data(ask(&ch, &i2c_read(TMP102, 0x00, 2))),
        [vec![0xF3, 0xC0]]
    );
    // The pointer stays where the last write left it: a bare read reads the temperature.
    let bare = SimRequest::I2c {
        address: TMP102,
        ops: vec![BusOp::Read(2)],
    };
    assert_eq!(data(ask(&ch, &bare)), [vec![0xF3, 0xC0]]);
    assert_eq!(
        data(ask(&ch, &i2c_read(TMP102, 0x01, 2))),
        [vec![0x60, 0xA0]],
        "config reset"
    );
    // T_HIGH is writable.
    let write = SimRequest::I2c {
        address: TMP102,
        ops: vec![BusOp::Write(vec![0x03, 0x1E, 0x00])],
    };
    assert_eq!(data(ask(&ch, &write)), Vec::<Vec<u8>>::new());
    assert_eq!(
        data(ask(&ch, &i2c_read(TMP102, 0x03, 2))),
        [vec![0x1E, 0x00]]
    );

    let view = board.view();
    let bus = view.i2c.iter().find(|b| b.peripheral == I2C).unwrap();
    let tmp = bus.devices.iter().find(|d| d.target == TMP102).unwrap();
    assert_eq!(tmp.model, "tmp102");
    assert_eq!(tmp.quantities.get("temperature_c"), Some(&-12.25));
    assert_eq!(bus.open_by, ["thermo"]);
}

#[test]
fn the_lsm6ds3_answers_who_am_i_over_i2c_and_its_register_writes_are_logged() {
    let board = reference_board();
    let (ch, _) = open(&board, "imu", I2C, i2c());
    assert_eq!(data(ask(&ch, &i2c_read(LSM6DS3, 0x0F, 1))), [vec![0x69]]);
    // CTRL1_XL = 0x40 (104 Hz, ±2 g), CTRL2_G = 0x40 in one auto-incremented write.
    let configure = SimRequest::I2c {
        address: LSM6DS3,
        ops: vec![BusOp::Write(vec![0x10, 0x40, 0x40])],
    };
    ask(&ch, &configure);
    board.sensor_set(I2C, LSM6DS3, "accel_x_g", 0.5).unwrap();
    let out = data(ask(&ch, &i2c_read(LSM6DS3, 0x1E, 1)));
    assert_eq!(
        out,
        [vec![0x07]],
        "accelerometer, gyroscope and temperature data ready"
    );
    // 0.5 g / 0.061 mg = 8197 = 0x2005; Z: 1 g = 16393 = 0x4009.
    let out = data(ask(&ch, &i2c_read(LSM6DS3, 0x28, 6)));
    assert_eq!(out, [vec![0x05, 0x20, 0x00, 0x00, 0x09, 0x40]]);

    let log = board.bus_log(I2C).unwrap();
    assert_eq!(log.len(), 4);
    let write = &log[1];
    assert_eq!(
        (write.app.as_str(), write.target, &write.error),
        ("imu", LSM6DS3, &None)
    );
    assert_eq!(
        write.ops,
        [BusRecord::Write {
            data: vec![0x10, 0x40, 0x40],
            len: 3
        }]
    );
    assert_eq!(
        log[0].ops,
        [
            BusRecord::Write {
                data: vec![0x0F],
                len: 1
            },
            BusRecord::Read {
                data: vec![0x69],
                len: 1
            }
        ]
    );
    assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[test]
fn the_at24c02_keeps_what_is_written_to_it() {
    let board = board_with(
        r#"[{"Peripheral": "BUS", "SimI2c": {"Devices": [{"Address": 80, "Model": "at24c02"}]}}]"#,
    );
    let (ch, _) = open(&board, "eeprom", "BUS", i2c());
    ask(
        &ch,
        &SimRequest::I2c {
            address: 0x50,
            ops: vec![BusOp::Write(vec![0x10, b'h', b'i'])],
        },
    );
    assert_eq!(
        data(ask(&ch, &i2c_read(0x50, 0x10, 3))),
        [vec![b'h', b'i', 0xFF]]
    );
    assert!(matches!(
        board.sensor_set("BUS", 0x50, "temperature_c", 1.0),
        Err(SimBoardError::UnknownQuantity { known, .. }) if known == "none"
    ));
}

#[test]
fn an_address_without_a_device_is_a_nack_and_is_logged() {
    let board = reference_board();
    let (ch, _) = open(&board, "probe", I2C, i2c());
    let reply = ask(&ch, &i2c_read(0x21, 0x00, 1));
    assert_eq!(
        reply,
        SimReply::Error(SimError::Io(format!(
            "no device answers at 0x21 on `{I2C}`"
        )))
    );
    let log = board.bus_log(I2C).unwrap();
    assert_eq!(
        log.last().unwrap().error.as_deref(),
        Some("no device answers at 0x21 on `SIM_ISU2_I2C`")
    );
    // The bus keeps serving.
    assert_eq!(data(ask(&ch, &i2c_read(LSM6DS3, 0x0F, 1))), [vec![0x69]]);
}

#[test]
fn spi_requests_on_i2c_and_transfers_on_i2c_are_refused() {
    let board = reference_board();
    let (ch, _) = open(&board, "probe", I2C, i2c());
    assert!(matches!(
        ask(&ch, &SimRequest::Spi { ops: vec![BusOp::Read(1)] }),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains("I2C bus")
    ));
    assert!(matches!(
        ask(
            &ch,
            &SimRequest::I2c {
                address: TMP102,
                ops: vec![BusOp::Transfer(vec![0])]
            }
        ),
        SimReply::Error(SimError::InvalidArgument(_))
    ));
    assert!(matches!(
        ask(&ch, &SimRequest::I2c { address: 0x80, ops: vec![BusOp::Read(1)] }),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains("7-bit")
    ));
    assert!(
        board.bus_log(I2C).unwrap().is_empty(),
        "refused requests never reach the bus"
    );
}

#[test]
fn a_reply_that_would_not_fit_one_packet_is_refused_before_it_runs() {
    let board = reference_board();
    let (ch, _) = open(&board, "greedy", I2C, i2c());
    // Each read is within the wire protocol's bounds; together they cannot be answered.
    let ops = vec![BusOp::Read(4096); 16];
    assert!(matches!(
        ask(&ch, &SimRequest::I2c { address: TMP102, ops }),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains(&MAX_REPLY_BYTES.to_string())
    ));
    assert!(board.bus_log(I2C).unwrap().is_empty());
    // The largest allowed one is answered, even when every byte is 0xFF (the longest JSON):
    // an erased EEPROM.
    let board = board_with(
        r#"[{"Peripheral": "BUS", "SimI2c": {"Devices": [{"Address": 80, "Model": "at24c02"}]}}]"#,
    );
    let (ch, _) = open(&board, "greedy", "BUS", i2c());
    let ops = vec![
        BusOp::Read(4096),
        BusOp::Read(4096),
        BusOp::Read(4096),
        BusOp::Read(3840),
    ];
    assert_eq!(MAX_REPLY_BYTES, 16128);
    let out = data(ask(&ch, &SimRequest::I2c { address: 0x50, ops }));
    assert_eq!(out.iter().map(Vec::len).sum::<usize>(), 16128);
    assert!(out.iter().flatten().all(|&b| b == 0xFF));
    let logged = board.bus_log("BUS").unwrap();
    assert!(matches!(&logged[0].ops[0], BusRecord::Read { data, len: 4096 } if data.len() == 128));
}

#[test]
fn the_lsm6ds3_answers_who_am_i_over_spi() {
    let board = reference_board();
    let (ch, access) = open(&board, "imu", SPI, spi());
    assert_eq!(
        access,
        Access::Sim {
            detail: Detail::Spi
        }
    );
    // Full duplex: the command byte's slot reads 0xFF (MISO undriven).
    let reply = ask(
        &ch,
        &SimRequest::Spi {
            ops: vec![BusOp::Transfer(vec![0x8F, 0x00])],
        },
    );
    assert_eq!(data(reply), [vec![0xFF, 0x69]]);
    // Write, then read: a command byte, then as many bytes as asked.
    let reply = ask(
        &ch,
        &SimRequest::Spi {
            ops: vec![BusOp::Write(vec![0x8F]), BusOp::DelayUs(10), BusOp::Read(1)],
        },
    );
    assert_eq!(data(reply), [vec![0x69]]);
    ask(
        &ch,
        &SimRequest::Spi {
            ops: vec![BusOp::Write(vec![0x10, 0x40])],
        },
    );
    board.sensor_set(SPI, 0, "accel_z_g", -1.0).unwrap();
    let reply = ask(
        &ch,
        &SimRequest::Spi {
            ops: vec![BusOp::Write(vec![0x80 | 0x2C]), BusOp::Read(2)],
        },
    );
    // -16393 = 0xBFF7.
    assert_eq!(data(reply), [vec![0xF7, 0xBF]]);
    let log = board.bus_log(SPI).unwrap();
    assert_eq!(
        log[2].ops,
        [BusRecord::Write {
            data: vec![0x10, 0x40],
            len: 2
        }]
    );
    assert_eq!(log[1].ops[1], BusRecord::DelayUs { us: 10 });
    assert!(log.iter().all(|e| e.target == 0 && e.app == "imu"));
}

#[test]
fn spi_picks_the_lowest_chip_select_or_the_one_a_suffix_names() {
    let board = board_with(
        r#"[{"Peripheral": "BUS", "SimSpi": {"Devices": [
              {"ChipSelect": 2, "Model": "loopback"}, {"ChipSelect": 1, "Model": "lsm6ds3"}]}}]"#,
    );
    let who_am_i = SimRequest::Spi {
        ops: vec![BusOp::Transfer(vec![0x8F, 0x00])],
    };
    let (first, _) = open(&board, "app", "BUS", spi());
    assert_eq!(
        data(ask(&first, &who_am_i)),
        [vec![0xFF, 0x69]],
        "chip select 1: the IMU"
    );
    let (second, _) = open(&board, "app", "BUS.cs2", spi());
    assert_eq!(
        data(ask(&second, &who_am_i)),
        [vec![0x8F, 0x00]],
        "chip select 2: a loopback"
    );
    assert_eq!(
        data(ask(
            &second,
            &SimRequest::Spi {
                ops: vec![BusOp::Read(2)]
            }
        )),
        [vec![0x00, 0x00]],
        "a read clocks out zeros"
    );
    assert!(
        matches!(board.open("app", "BUS.cs5", &spi()), Err(Denial::UnknownName(m)) if m.contains("chip select 5"))
    );
    assert!(matches!(
        board.open("app", "BUS.cs1", &i2c()),
        Err(Denial::UnknownName(_))
    ));
    assert!(matches!(
        board.sensor_set("BUS", 3, "accel_x_g", 1.0),
        Err(SimBoardError::NoDevice { target, .. }) if target == "chip select 3"
    ));
}

#[test]
fn sensor_values_are_checked() {
    let board = reference_board();
    assert!(matches!(
        board.sensor_set(I2C, TMP102, "humidity", 1.0),
        Err(SimBoardError::UnknownQuantity { known, model: "tmp102", .. }) if known == "temperature_c"
    ));
    assert!(matches!(
        board.sensor_set(I2C, TMP102, "temperature_c", f64::NAN),
        Err(SimBoardError::NotFinite { .. })
    ));
    let err = board
        .sensor_set(I2C, 0x10, "temperature_c", 1.0)
        .unwrap_err();
    assert_eq!(err.to_string(), "no device at 0x10 on `SIM_ISU2_I2C`");
    assert!(matches!(
        board.sensor_set("SIM_GPIO0", 0, "x", 1.0),
        Err(SimBoardError::WrongKind { .. })
    ));
    assert!(matches!(
        board.bus_log("SIM_ADC_CONTROLLER0"),
        Err(SimBoardError::WrongKind { .. })
    ));
}

#[test]
fn an_unknown_model_is_refused_at_bring_up() {
    let mut board = warden_policy::board::Board::parse(
        "b.json",
        br#"{"SchemaVersion": 1, "Name": "t", "HardwareDefinition": "hw.json", "Services": {},
             "UnsupportedCapabilities": "Warn",
             "Defaults": {"MemoryLimitKB": 1024, "WatchdogMs": 1000, "MaxStorageKB": 0},
             "Resources": [{"Peripheral": "BUS", "SimI2c": {"Devices": [{"Address": 72, "Model": "tmp102"}]}}]}"#,
    )
    .unwrap();
    // The board file reader refuses unknown models; a board built in code may still have one.
    if let warden_policy::board::Backend::SimI2c { devices, .. } = &mut board.resources[0].backend {
        devices[0].model = "bme280".into();
    }
    let err = warden_simboard::SimBoard::new(&board).unwrap_err();
    assert!(
        err.to_string().contains("bme280") && err.to_string().contains("0x48"),
        "{err}"
    );
}
