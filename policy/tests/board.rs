//! Board files: the reference boards load with their hardware definitions; malformed boards are
//! refused with path, position and reason; every backend that does not fit its peripheral's
//! type is refused; two peripherals never share a Linux resource or a pin unless they are
//! alternative functions of one hardware block.

mod anchors;

use anchors::{END, check};
use std::path::PathBuf;

use warden_policy::board::{
    BACKEND_KEYS, Backend, Board, BoardError, CoreBacking, CoreRestart, OnCrash, UnsupportedPolicy,
    fits_key,
};
use warden_policy::diag::Problem;
use warden_policy::hwdef::{HwdefSet, MemorySource, SetLimits};
use warden_policy::ids::PeripheralType;

fn read(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn repo_file(rel: &str) -> Vec<u8> {
    read(&[env!("CARGO_MANIFEST_DIR"), "..", rel].iter().collect())
}

fn fixture(rel: &str) -> Vec<u8> {
    read(
        &[env!("CARGO_MANIFEST_DIR"), "tests/fixtures", rel]
            .iter()
            .collect(),
    )
}

const SIM: &str = "buildroot-overlay/board/warden-sim";

fn sim_source() -> MemorySource {
    let mut src = MemorySource::new();
    for rel in [
        "board.json",
        "hardware-definitions/warden_sim_chip.json",
        "hardware-definitions/warden_sim.json",
        "hardware-definitions/sample_appliance.json",
    ] {
        src.insert(&format!("{SIM}/{rel}"), repo_file(&format!("{SIM}/{rel}")));
    }
    src
}

fn mt3620_source() -> MemorySource {
    let mut src = MemorySource::new().with_search_dir("hwdef/sdk");
    for rel in [
        "hwdef/sdk/mt3620.json",
        "hwdef/sdk/mt3620_rdb.json",
        "hwdef/mt3620_rdb_sample/sample_appliance.json",
        "boards/mt3620_linux/board.json",
    ] {
        src.insert(rel, fixture(rel));
    }
    src
}

#[test]
fn warden_sim_loads_with_its_hardware_definitions() {
    let (board, set) = Board::load(
        &sim_source(),
        &format!("{SIM}/board.json"),
        SetLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(board.name, "warden-sim");
    assert_eq!(board.unsupported, UnsupportedPolicy::Warn);
    assert_eq!(board.real_time_cores.len(), 1);
    assert_eq!(
        board.real_time_cores[0].backing,
        CoreBacking::Emulated {
            machine: "mps2-an386".into()
        }
    );
    // Every backend of the simulated board is simulated or real-time only.
    for r in &board.resources {
        assert!(
            r.backend.is_simulated() || matches!(r.backend, Backend::RealTimeCoreOnly { .. }),
            "{} is backed by {}",
            r.peripheral,
            r.backend
        );
    }
    // Every chip peripheral of the simulated chip has a resource.
    for chip in set.chip_peripherals() {
        assert!(
            board.resource(chip.name).is_some(),
            "{} has no resource",
            chip.name
        );
    }
    let led = set
        .resolve_name(PeripheralType::Gpio, "SAMPLE_LED")
        .unwrap();
    assert_eq!(led.chain, ["SAMPLE_LED", "LED_RED", "SIM_GPIO0"]);
    assert_eq!(
        board.resource(&led.chip).unwrap().backend.to_string(),
        "sim line 0"
    );
    assert!(board.backs("SystemTime"));
    assert!(!board.backs("WifiConfig"));
}

#[test]
fn a_linux_board_loads_with_an_mt3620_style_set() {
    let (board, set) = Board::load(
        &mt3620_source(),
        "boards/mt3620_linux/board.json",
        SetLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.files().len(), 3);
    let led = set
        .resolve_name(PeripheralType::Gpio, "SAMPLE_LED")
        .unwrap();
    assert_eq!(led.chip, "MT3620_GPIO8");
    assert_eq!(
        board.resource(&led.chip).unwrap().backend,
        Backend::Gpio {
            chip: "gpiochip0".into(),
            line: 8,
            active_low: false
        }
    );
    assert_eq!(
        board
            .resource("MT3620_ISU0_UART")
            .unwrap()
            .backend
            .to_string(),
        "/dev/ttyS0 at 115200 baud"
    );
    assert_eq!(
        board.real_time_cores[1].backing,
        CoreBacking::Remoteproc("remoteproc1".into())
    );
}

/// A board file whose top level is `top` (keys after the required ones) and whose resources
/// are `resources`, one per line.
fn board_with(top: &str, resources: &[&str]) -> String {
    format!(
        "{{\n  \"SchemaVersion\": 1,\n  \"Name\": \"t\",\n  \"HardwareDefinition\": \"board_hw.json\",\n  \"Defaults\": {{\"MemoryLimitKB\": 1024, \"WatchdogMs\": 1000, \"MaxStorageKB\": 64}},\n  \"RealTimeCores\": [{{\"Name\": \"m4\", \"Remoteproc\": \"remoteproc0\", \"Memory\": [{{\"Name\": \"TCM\", \"Origin\": \"0x00100000\", \"SizeKB\": 192}}]}}],{top}\n  \"Resources\": [\n    {}\n  ]\n}}\n",
        resources.join(",\n    ")
    )
}

fn board(resources: &[&str]) -> String {
    board_with("", resources)
}

fn parse_errors(text: &str) -> Vec<Problem> {
    match Board::parse("board.json", text.as_bytes()) {
        Ok(b) => panic!("accepted a bad board: {b:?}\n{text}"),
        Err(e) => e.reports[0].errors().cloned().collect(),
    }
}

/// (scenario, board text, path, anchor, fragment)
fn malformed_boards() -> Vec<(
    &'static str,
    String,
    &'static str,
    &'static str,
    &'static str,
)> {
    vec![
        ("not json", "{\"SchemaVersion\": 1".into(), "", END, "expected `,` or `}`"),
        ("empty", "{}".into(), "", "{}", "missing required key `SchemaVersion`"),
        (
            "version 2",
            board(&[]).replace("\"SchemaVersion\": 1", "\"SchemaVersion\": 2"),
            "SchemaVersion",
            "2,",
            "unsupported schema version 2",
        ),
        (
            "name with a space",
            board(&[]).replace("\"Name\": \"t\"", "\"Name\": \"my board\""),
            "Name",
            "\"my board\"",
            "is not a name",
        ),
        (
            "absolute hardware definition",
            board(&[]).replace("\"board_hw.json\"", "\"/etc/hw.json\""),
            "HardwareDefinition",
            "\"/etc/hw.json\"",
            "is not a relative path",
        ),
        (
            "missing defaults",
            board(&[]).replace(
                "\"Defaults\": {\"MemoryLimitKB\": 1024, \"WatchdogMs\": 1000, \"MaxStorageKB\": 64},\n",
                "",
            ),
            "",
            "{",
            "missing required key `Defaults`",
        ),
        (
            "watchdog zero",
            board(&[]).replace("\"WatchdogMs\": 1000", "\"WatchdogMs\": 0"),
            "Defaults.WatchdogMs",
            "0,",
            "from 10 to 3600000",
        ),
        (
            "unknown top-level key",
            board_with("\n  \"Kernel\": \"6.6\",", &[]),
            "Kernel",
            "\"Kernel\"",
            "unknown key `Kernel`",
        ),
        (
            "unknown service",
            board_with("\n  \"Services\": {\"Bluetooth\": true},", &[]),
            "Services.Bluetooth",
            "\"Bluetooth\"",
            "unknown capability `Bluetooth`",
        ),
        (
            "misspelt service",
            board_with("\n  \"Services\": {\"SystemTim\": true},", &[]),
            "Services.SystemTim",
            "\"SystemTim\"",
            "did you mean `SystemTime`",
        ),
        (
            "peripheral key as a service",
            board_with("\n  \"Services\": {\"Gpio\": true},", &[]),
            "Services.Gpio",
            "\"Gpio\"",
            "backs peripherals one by one in `Resources`",
        ),
        (
            "service not a boolean",
            board_with("\n  \"Services\": {\"CertStore\": \"yes\"},", &[]),
            "Services.CertStore",
            "\"yes\"",
            "expected `true` or `false`",
        ),
        (
            "unknown policy",
            board_with("\n  \"UnsupportedCapabilities\": \"Ignore\",", &[]),
            "UnsupportedCapabilities",
            "\"Ignore\"",
            "expected `Warn` or `Refuse`",
        ),
        (
            "core without backing",
            board(&[]).replace(", \"Remoteproc\": \"remoteproc0\"", ""),
            "RealTimeCores[0]",
            "{\"Name\": \"m4\"",
            "needs `Remoteproc`",
        ),
        (
            "bad remoteproc",
            board(&[]).replace("remoteproc0", "m4_rproc"),
            "RealTimeCores[0].Remoteproc",
            "\"m4_rproc\"",
            "is not a remoteproc instance",
        ),
        (
            "core without memory",
            board(&[]).replace(
                r#", "Memory": [{"Name": "TCM", "Origin": "0x00100000", "SizeKB": 192}]"#,
                "",
            ),
            "RealTimeCores[0]",
            "{\"Name\": \"m4\"",
            "missing required key `Memory`",
        ),
        (
            "region origin not an address",
            board(&[]).replace("0x00100000", "1048576"),
            "RealTimeCores[0].Memory[0].Origin",
            "\"1048576\"",
            "is not a 32-bit address",
        ),
        (
            "region past 4 GiB",
            board(&[]).replace("0x00100000", "0xffff0000"),
            "RealTimeCores[0].Memory[0].SizeKB",
            "{\"Name\": \"TCM\"",
            "passes the end of the 32-bit address space",
        ),
        (
            "overlapping regions",
            board(&[]).replace(
                r#""SizeKB": 192}]"#,
                r#""SizeKB": 192}, {"Name": "ALIAS", "Origin": "0x00110000", "SizeKB": 4}]"#,
            ),
            "RealTimeCores[0].Memory[1]",
            "{\"Name\": \"ALIAS\"",
            "overlaps region `TCM`",
        ),
        (
            "unknown crash action",
            board(&[]).replace(
                r#""SizeKB": 192}]"#,
                r#""SizeKB": 192}], "Restart": {"OnCrash": "Reboot"}"#,
            ),
            "RealTimeCores[0].Restart.OnCrash",
            "\"Reboot\"",
            "is not `Restart` or `Stop`",
        ),
        (
            "backoff for a core that stops",
            board(&[]).replace(
                r#""SizeKB": 192}]"#,
                r#""SizeKB": 192}], "Restart": {"OnCrash": "Stop", "MaxBackoffMs": 777}"#,
            ),
            "RealTimeCores[0].Restart.MaxBackoffMs",
            "777",
            "applies only with",
        ),
        (
            "backoff ceiling below its start",
            board(&[]).replace(
                r#""SizeKB": 192}]"#,
                r#""SizeKB": 192}], "Restart": {"InitialBackoffMs": 2000, "MaxBackoffMs": 999}"#,
            ),
            "RealTimeCores[0].Restart.MaxBackoffMs",
            "999",
            "999 is less than `InitialBackoffMs` (2000)",
        ),
        (
            "quarantine after no crash",
            board(&[]).replace(
                r#""SizeKB": 192}]"#,
                r#""SizeKB": 192}], "Restart": {"QuarantineAfter": 5000}"#,
            ),
            "RealTimeCores[0].Restart.QuarantineAfter",
            "5000",
            "expected an integer from 1 to 1000, found 5000",
        ),
        (
            "unknown restart key",
            board(&[]).replace(
                r#""SizeKB": 192}]"#,
                r#""SizeKB": 192}], "Restart": {"Retries": 3}"#,
            ),
            "RealTimeCores[0].Restart.Retries",
            "\"Retries\"",
            "unknown key",
        ),
        (
            "resource without backend",
            board(&[r#"{"Peripheral": "GPIO0", "Pins": ["P1"]}"#]),
            "Resources[0]",
            "{\"Peripheral\"",
            "needs exactly one backend key",
        ),
        (
            "resource with two backends",
            board(&[r#"{"Peripheral": "GPIO0", "Gpio": {"Chip": "gpiochip0", "Line": 1}, "SimGpio": {}}"#]),
            "Resources[0].SimGpio",
            "\"SimGpio\"",
            "exactly one backend",
        ),
        (
            "backend in wrong case",
            board(&[r#"{"Peripheral": "GPIO0", "GPIO": {"Chip": "gpiochip0", "Line": 1}}"#]),
            "Resources[0].GPIO",
            "\"GPIO\"",
            "did you mean `Gpio`",
        ),
        (
            "resource without peripheral",
            board(&[r#"{"SimGpio": {}}"#]),
            "Resources[0]",
            "{\"SimGpio\"",
            "missing required key `Peripheral`",
        ),
        (
            "two resources for one peripheral",
            board(&[r#"{"Peripheral": "GPIO0", "SimGpio": {}}"#, r#"{"Peripheral": "GPIO0", "SimGpio": {"Line": 3}}"#]),
            "Resources[1].Peripheral",
            "\"GPIO0\", \"SimGpio\": {\"Line\"",
            "`GPIO0` already has a resource",
        ),
        (
            "gpio chip by path",
            board(&[r#"{"Peripheral": "GPIO0", "Gpio": {"Chip": "/dev/gpiochip0", "Line": 1}}"#]),
            "Resources[0].Gpio.Chip",
            "\"/dev/gpiochip0\"",
            "expected `gpiochipN`",
        ),
        (
            "gpio line too large",
            board(&[r#"{"Peripheral": "GPIO0", "Gpio": {"Chip": "gpiochip0", "Line": 70000}}"#]),
            "Resources[0].Gpio.Line",
            "70000",
            "from 0 to 4095",
        ),
        (
            "gpio line missing",
            board(&[r#"{"Peripheral": "GPIO0", "Gpio": {"Chip": "gpiochip0"}}"#]),
            "Resources[0].Gpio",
            "{\"Chip\"",
            "missing required key `Line`",
        ),
        (
            "uart path escapes /dev",
            board(&[r#"{"Peripheral": "U0", "Uart": {"Path": "/dev/../etc/shadow"}}"#]),
            "Resources[0].Uart.Path",
            "\"/dev/../",
            "is not a device path",
        ),
        (
            "uart path relative",
            board(&[r#"{"Peripheral": "U0", "Uart": {"Path": "ttyS0"}}"#]),
            "Resources[0].Uart.Path",
            "\"ttyS0\"",
            "expected an absolute `/dev/...` path",
        ),
        (
            "odd baud rate",
            board(&[r#"{"Peripheral": "U0", "Uart": {"Path": "/dev/ttyS0", "Baud": 14400}}"#]),
            "Resources[0].Uart.Baud",
            "14400",
            "14400 is not a standard baud rate",
        ),
        (
            "nine data bits",
            board(&[r#"{"Peripheral": "U0", "SimUart": {"DataBits": 9}}"#]),
            "Resources[0].SimUart.DataBits",
            "9}",
            "from 5 to 8",
        ),
        (
            "unknown parity",
            board(&[r#"{"Peripheral": "U0", "Uart": {"Path": "/dev/ttyS0", "Parity": "Mark"}}"#]),
            "Resources[0].Uart.Parity",
            "\"Mark\"",
            "unknown Parity `Mark`",
        ),
        (
            "uart key for another backend",
            board(&[r#"{"Peripheral": "U0", "SimUart": {"Path": "/dev/ttyS0"}}"#]),
            "Resources[0].SimUart.Path",
            "\"Path\"",
            "unknown key `Path`",
        ),
        (
            "spi mode 4",
            board(&[r#"{"Peripheral": "S0", "Spi": {"Bus": 0, "ChipSelect": 0, "Mode": 4}}"#]),
            "Resources[0].Spi.Mode",
            "4}}",
            "from 0 to 3",
        ),
        (
            "adc without channels",
            board(&[r#"{"Peripheral": "ADC0", "Adc": {"IioDevice": "iio:device0", "Channels": [], "ReferenceMillivolts": 1800, "Bits": 12}}"#]),
            "Resources[0].Adc.Channels",
            "[]",
            "at least one channel",
        ),
        (
            "pwm channel twice",
            board(&[r#"{"Peripheral": "PWM0", "Pwm": {"Chip": "pwmchip0", "Channels": [0, 0]}}"#]),
            "Resources[0].Pwm.Channels[1]",
            "0]",
            "channel 0 is listed twice",
        ),
        (
            "i2c address reserved",
            board(&[r#"{"Peripheral": "I0", "SimI2c": {"Devices": [{"Address": 3, "Model": "tmp102"}]}}"#]),
            "Resources[0].SimI2c.Devices[0].Address",
            "3,",
            "from 8 to 119",
        ),
        (
            "two i2c devices at one address",
            board(&[r#"{"Peripheral": "I0", "SimI2c": {"Devices": [{"Address": 72, "Model": "tmp102"}, {"Address": 72, "Model": "lsm6ds3"}]}}"#]),
            "Resources[0].SimI2c.Devices[1].Address",
            "72, \"Model\": \"lsm6ds3\"",
            "two devices at address 0x48",
        ),
        (
            "unknown device model",
            board(&[r#"{"Peripheral": "I0", "SimI2c": {"Devices": [{"Address": 72, "Model": "bme280"}]}}"#]),
            "Resources[0].SimI2c.Devices[0].Model",
            "\"bme280\"",
            "unknown device model `bme280`",
        ),
        (
            "unknown real-time core",
            board(&[r#"{"Peripheral": "GPIO0", "RealTimeCoreOnly": {"Core": "m7"}}"#]),
            "Resources[0].RealTimeCoreOnly.Core",
            "\"m7\"",
            "unknown real-time core `m7`",
        ),
        (
            "sim gpio initial level",
            board(&[r#"{"Peripheral": "GPIO0", "SimGpio": {"Initial": 1}}"#]),
            "Resources[0].SimGpio.Initial",
            "1}",
            "expected a string",
        ),
        (
            "pin listed twice",
            board(&[r#"{"Peripheral": "GPIO0", "SimGpio": {}, "Pins": ["P1", "P1"]}"#]),
            "Resources[0].Pins[1]",
            "\"P1\"]",
            "pin `P1` is listed twice",
        ),
    ]
}

#[test]
fn a_core_has_the_restart_policy_its_board_sets() {
    let parse = |restart: &str| {
        let text = board(&[]).replace(
            r#""SizeKB": 192}]"#,
            &format!(r#""SizeKB": 192}}]{restart}"#),
        );
        let board = Board::parse("board.json", text.as_bytes()).unwrap();
        board.real_time_cores[0].restart.clone()
    };
    assert_eq!(
        parse(""),
        CoreRestart::default(),
        "absent: the supervisor's"
    );
    assert_eq!(parse("").on_crash, OnCrash::Restart);
    assert_eq!(
        parse(r#", "Restart": {"OnCrash": "Stop"}"#),
        CoreRestart {
            on_crash: OnCrash::Stop,
            ..CoreRestart::default()
        }
    );
    assert_eq!(
        parse(
            r#", "Restart": {"InitialBackoffMs": 200, "MaxBackoffMs": 800, "QuarantineAfter": 3, "WithinS": 60}"#
        ),
        CoreRestart {
            on_crash: OnCrash::Restart,
            initial_backoff_ms: Some(200),
            max_backoff_ms: Some(800),
            quarantine_after: Some(3),
            within_s: Some(60),
        }
    );
}

#[test]
fn malformed_boards_are_refused_with_path_and_position() {
    let cases = malformed_boards();
    assert!(cases.len() >= 30);
    for (scenario, text, path, anchor, fragment) in &cases {
        let problems = parse_errors(text);
        check(scenario, &problems, text, path, anchor, fragment);
    }
}

const CHIP: &str = r#"{
  "Metadata": {"Type": "Azure Sphere Hardware Definition", "Version": 1},
  "Peripherals": [
    {"Name": "GPIO0", "Type": "Gpio", "AppManifestValue": 0},
    {"Name": "GPIO1", "Type": "Gpio", "AppManifestValue": 1},
    {"Name": "U0", "Type": "Uart", "AppManifestValue": "ISU0"},
    {"Name": "I0", "Type": "I2cMaster", "AppManifestValue": "ISU0"},
    {"Name": "S0", "Type": "SpiMaster", "AppManifestValue": "ISU0"},
    {"Name": "U1", "Type": "Uart", "AppManifestValue": "ISU1"},
    {"Name": "ADC0", "Type": "Adc", "AppManifestValue": "ADC-CONTROLLER-0"},
    {"Name": "PWM0", "Type": "Pwm", "AppManifestValue": "PWM-CONTROLLER-0"},
    {"Name": "I2S0", "Type": "I2sSubordinate", "AppManifestValue": "I2S0"},
    {"Name": "EINT0", "Type": "ExternalInterrupt", "AppManifestValue": "EINT0"},
    {"Name": "CHANNEL0", "Type": "int", "MainCoreHeaderValue": "(0)"}
  ]
}"#;

const BOARD_HW: &str = r#"{
  "Metadata": {"Type": "Azure Sphere Hardware Definition", "Version": 1},
  "Imports": [{"Path": "chip.json"}],
  "Peripherals": [
    {"Name": "LED", "Type": "Gpio", "Mapping": "GPIO0"}
  ]
}"#;

/// Loads `text` as `board.json` next to the test chip and board definitions.
fn load_board(text: &str, extra: &[(&str, &str)]) -> Result<(Board, HwdefSet), BoardError> {
    let mut src = MemorySource::new()
        .with("chip.json", CHIP)
        .with("board_hw.json", BOARD_HW)
        .with("board.json", text);
    for (name, body) in extra {
        src.insert(name, *body);
    }
    Board::load(&src, "board.json", SetLimits::default())
}

fn check_errors(text: &str) -> Vec<Problem> {
    match load_board(text, &[]) {
        Ok((b, _)) => panic!("accepted a bad board: {b:?}\n{text}"),
        Err(e) => {
            assert_eq!(e.reports.len(), 1, "{e}");
            assert_eq!(e.reports[0].source, "board.json");
            e.reports[0].errors().cloned().collect()
        }
    }
}

/// (scenario, resources, path, anchor, fragment): boards that parse but do not fit their
/// hardware definition.
const MISFITS: &[(&str, &[&str], &str, &str, &str)] = &[
    (
        "unknown peripheral",
        &[r#"{"Peripheral": "GPIO9", "SimGpio": {}}"#],
        "Resources[0].Peripheral",
        "\"GPIO9\"",
        "unknown peripheral `GPIO9`: not a chip peripheral of `board_hw.json` or its imports",
    ),
    (
        "misspelt peripheral",
        &[r#"{"Peripheral": "GPI01", "SimGpio": {}}"#],
        "Resources[0].Peripheral",
        "\"GPI01\"",
        "did you mean `GPIO1`",
    ),
    (
        "board-level name instead of chip name",
        &[r#"{"Peripheral": "LED", "SimGpio": {}}"#],
        "Resources[0].Peripheral",
        "\"LED\"",
        "is not a chip peripheral",
    ),
    (
        "int constant as a resource",
        &[r#"{"Peripheral": "CHANNEL0", "SimGpio": {}}"#],
        "Resources[0].Peripheral",
        "\"CHANNEL0\"",
        "is not a chip peripheral",
    ),
    (
        "two peripherals on one gpio line",
        &[
            r#"{"Peripheral": "GPIO0", "Gpio": {"Chip": "gpiochip1", "Line": 17}}"#,
            r#"{"Peripheral": "GPIO1", "Gpio": {"Chip": "gpiochip1", "Line": 17}}"#,
        ],
        "Resources[1].Gpio",
        "\"Gpio\": {\"Chip\": \"gpiochip1\", \"Line\": 17}}\n",
        "two peripherals on one resource: `GPIO1` and `GPIO0` (at 8:29) both use gpiochip1 line 17",
    ),
    (
        "two peripherals on one tty",
        &[
            r#"{"Peripheral": "U0", "Uart": {"Path": "/dev/ttyS1"}}"#,
            r#"{"Peripheral": "U1", "Uart": {"Path": "/dev/ttyS1"}}"#,
        ],
        "Resources[1].Uart",
        "\"Uart\": {\"Path\": \"/dev/ttyS1\"}}\n",
        "both use tty /dev/ttyS1",
    ),
    (
        "two peripherals on one sim line",
        &[
            r#"{"Peripheral": "GPIO0", "SimGpio": {"Line": 4}}"#,
            r#"{"Peripheral": "EINT0", "SimGpio": {"Line": 4}}"#,
        ],
        "Resources[1].SimGpio",
        "\"SimGpio\": {\"Line\": 4}}\n",
        "both use sim line 4",
    ),
    (
        "two peripherals on one pin",
        &[
            r#"{"Peripheral": "GPIO0", "Gpio": {"Chip": "gpiochip0", "Line": 0}, "Pins": ["H1-3"]}"#,
            r#"{"Peripheral": "PWM0", "Pwm": {"Chip": "pwmchip0", "Channels": [0]}, "Pins": ["H1-3"]}"#,
        ],
        "Resources[1].Pins[0]",
        "\"H1-3\"]}\n",
        "two peripherals on one pin: `PWM0` and `GPIO0`",
    ),
    (
        "two adc controllers on one iio channel",
        &[
            r#"{"Peripheral": "ADC0", "Adc": {"IioDevice": "iio:device0", "Channels": [0, 1], "ReferenceMillivolts": 1800, "Bits": 12}}"#,
            r#"{"Peripheral": "PWM0", "Pwm": {"Chip": "pwmchip0", "Channels": [1]}}"#,
            r#"{"Peripheral": "I2S0", "RealTimeCoreOnly": {}}"#,
            r#"{"Peripheral": "U1", "Uart": {"Path": "/dev/ttyS1"}}"#,
            r#"{"Peripheral": "U0", "SimUart": {}}"#,
            r#"{"Peripheral": "I0", "I2c": {"Bus": 1}}"#,
            r#"{"Peripheral": "S0", "Spi": {"Bus": 1, "ChipSelect": 0}}"#,
            r#"{"Peripheral": "GPIO0", "Gpio": {"Chip": "gpiochip0", "Line": 0}}"#,
            r#"{"Peripheral": "EINT0", "Gpio": {"Chip": "gpiochip0", "Line": 0}}"#,
        ],
        "Resources[8].Gpio",
        "\"Gpio\": {\"Chip\": \"gpiochip0\", \"Line\": 0}}\n  ]",
        "`EINT0` and `GPIO0`",
    ),
];

#[test]
fn boards_that_do_not_fit_their_hardware_definition_are_refused() {
    for (scenario, resources, path, anchor, fragment) in MISFITS {
        let text = board(resources);
        let problems = check_errors(&text);
        check(scenario, &problems, &text, path, anchor, fragment);
        assert_eq!(problems.len(), 1, "{scenario}: {problems:?}");
    }
}

#[test]
fn alternative_functions_of_one_block_may_share_pins_and_nothing_else_may() {
    // ISU0 as UART, I2C and SPI: one block, one set of pins.
    let shared = board(&[
        r#"{"Peripheral": "U0", "Uart": {"Path": "/dev/ttyS0"}, "Pins": ["H2-1", "H2-3"]}"#,
        r#"{"Peripheral": "I0", "I2c": {"Bus": 0}, "Pins": ["H2-1", "H2-3"]}"#,
        r#"{"Peripheral": "S0", "Spi": {"Bus": 0, "ChipSelect": 0}, "Pins": ["H2-1", "H2-3"]}"#,
    ]);
    load_board(&shared, &[]).unwrap_or_else(|e| panic!("{e}"));
    // ISU1's UART on ISU0's pins is two blocks on one pin.
    let clash = board(&[
        r#"{"Peripheral": "U0", "Uart": {"Path": "/dev/ttyS0"}, "Pins": ["H2-1", "H2-3"]}"#,
        r#"{"Peripheral": "U1", "Uart": {"Path": "/dev/ttyS1"}, "Pins": ["H2-3"]}"#,
    ]);
    let problems = check_errors(&clash);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("pin `H2-3`"), "{problems:?}");
}

/// A valid body for each backend key.
fn body(key: &str) -> &'static str {
    match key {
        "Gpio" => r#"{"Chip": "gpiochip0", "Line": 1}"#,
        "Uart" => r#"{"Path": "/dev/ttyS0"}"#,
        "I2c" => r#"{"Bus": 1}"#,
        "Spi" => r#"{"Bus": 0, "ChipSelect": 0}"#,
        "Adc" => {
            r#"{"IioDevice": "iio:device0", "Channels": [0], "ReferenceMillivolts": 1800, "Bits": 12}"#
        }
        "Pwm" => r#"{"Chip": "pwmchip0", "Channels": [0]}"#,
        "I2s" => r#"{"Card": 0, "Device": 0}"#,
        "RealTimeCoreOnly" => "{}",
        "SimGpio" => "{}",
        "SimUart" => "{}",
        "SimI2c" => r#"{"Devices": []}"#,
        "SimSpi" => r#"{"Devices": []}"#,
        "SimAdc" => r#"{"Channels": 1, "Bits": 12, "ReferenceMillivolts": 1800}"#,
        "SimPwm" => r#"{"Channels": 1}"#,
        "SimI2s" => "{}",
        other => panic!("no body for {other}"),
    }
}

fn chip_of(kind: PeripheralType) -> &'static str {
    match kind {
        PeripheralType::Gpio => "GPIO0",
        PeripheralType::Uart => "U0",
        PeripheralType::I2cMaster => "I0",
        PeripheralType::SpiMaster => "S0",
        PeripheralType::Adc => "ADC0",
        PeripheralType::Pwm => "PWM0",
        PeripheralType::I2sSubordinate => "I2S0",
        PeripheralType::ExternalInterrupt => "EINT0",
    }
}

#[test]
fn every_backend_type_mismatch_is_refused_and_every_fit_accepted() {
    let mut mismatches = 0;
    for kind in PeripheralType::ALL {
        for key in BACKEND_KEYS {
            let resource = format!(
                r#"{{"Peripheral": "{}", "{key}": {}}}"#,
                chip_of(kind),
                body(key)
            );
            let text = board(&[&resource]);
            let result = load_board(&text, &[]);
            if fits_key(key, kind) {
                result.unwrap_or_else(|e| panic!("{key} for {kind} refused: {e}"));
                continue;
            }
            mismatches += 1;
            let problems = match result {
                Ok(_) => panic!("{key} accepted for a {kind} peripheral"),
                Err(e) => e.reports[0].errors().cloned().collect::<Vec<_>>(),
            };
            check(
                &format!("{key} for {kind}"),
                &problems,
                &text,
                &format!("Resources[0].{key}"),
                &format!("\"{key}\""),
                &format!(
                    "backend `{key}` does not fit `{}`, a {kind} peripheral",
                    chip_of(kind)
                ),
            );
        }
    }
    assert_eq!(mismatches, 8 * 15 - 8 * 3);
}

#[test]
fn an_app_abstraction_must_sit_on_the_board_definition() {
    let stray = r#"{
  "Metadata": {"Type": "Azure Sphere Hardware Definition", "Version": 1},
  "Imports": [{"Path": "chip.json"}],
  "Peripherals": [{"Name": "SAMPLE_LED", "Type": "Gpio", "Mapping": "GPIO0"}]
}"#;
    let text = board_with(
        "\n  \"AppAbstractions\": [\"stray.json\"],",
        &[r#"{"Peripheral": "GPIO0", "SimGpio": {}}"#],
    );
    let err = load_board(&text, &[("stray.json", stray)]).unwrap_err();
    let problems: Vec<Problem> = err.reports[0].errors().cloned().collect();
    check(
        "stray abstraction",
        &problems,
        &text,
        "AppAbstractions[0]",
        "\"stray.json\"",
        "`stray.json` does not import `board_hw.json`",
    );
}

#[test]
fn problems_in_the_hardware_definition_are_reported_by_its_file() {
    let text = board(&[r#"{"Peripheral": "GPIO0", "SimGpio": {}}"#]);
    let src = MemorySource::new()
        .with("board.json", text.as_str())
        .with("board_hw.json", BOARD_HW);
    let err = Board::load(&src, "board.json", SetLimits::default()).unwrap_err();
    assert_eq!(err.reports[0].source, "board_hw.json");
    assert!(err.to_string().contains("cannot find `chip.json`"), "{err}");
}

#[test]
fn board_reading_never_panics_on_damaged_input() {
    let good = repo_file(&format!("{SIM}/board.json"));
    for cut in (0..good.len()).step_by(5) {
        let _ = Board::parse("x", &good[..cut]);
    }
    let mut damaged = good.clone();
    for i in (0..damaged.len()).step_by(11) {
        damaged[i] = damaged[i].wrapping_sub(1);
        let _ = Board::parse("x", &damaged);
    }
}
