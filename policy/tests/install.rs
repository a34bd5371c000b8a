//! Install-time resolution: real Azure Sphere manifests resolve on the simulated board
//! unchanged; every install problem names the manifest path and the peripheral; resources are
//! owned by one app at a time; inter-app connections need both sides.

use std::path::PathBuf;

use warden_policy::board::{Backend, Board};
use warden_policy::diag::{Problem, Severity};
use warden_policy::hwdef::{HwdefSet, MemorySource, SetLimits};
use warden_policy::ids::{AppManifestValue, PeripheralType};
use warden_policy::install::{self, Device, InstalledApp, ResolvedApp};
use warden_policy::manifest::{ApplicationType, Manifest, PeripheralRef};

fn read(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifests_dir() -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/manifests"]
        .iter()
        .collect()
}

fn manifest(name: &str) -> Manifest {
    let bytes = read(&manifests_dir().join(name));
    Manifest::parse(name, &bytes).unwrap_or_else(|e| panic!("{e}"))
}

const SIM: &str = "buildroot-overlay/board/warden-sim";

/// The warden-sim board, with `edit` applied to its board.json text.
fn sim_with(edit: impl Fn(String) -> String) -> (Board, HwdefSet) {
    let mut src = MemorySource::new();
    for rel in [
        "board.json",
        "hardware-definitions/warden_sim_chip.json",
        "hardware-definitions/warden_sim.json",
        "hardware-definitions/sample_appliance.json",
    ] {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", SIM, rel]
            .iter()
            .collect();
        let mut text = String::from_utf8(read(&path)).expect("board files are UTF-8");
        if rel == "board.json" {
            text = edit(text);
        }
        src.insert(&format!("{SIM}/{rel}"), text);
    }
    Board::load(&src, &format!("{SIM}/board.json"), SetLimits::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn sim() -> (Board, HwdefSet) {
    sim_with(|t| t)
}

fn mt3620() -> (Board, HwdefSet) {
    let mut src = MemorySource::new().with_search_dir("hwdef/sdk");
    for rel in [
        "hwdef/sdk/mt3620.json",
        "hwdef/sdk/mt3620_rdb.json",
        "hwdef/mt3620_rdb_sample/sample_appliance.json",
        "boards/mt3620_linux/board.json",
    ] {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures", rel]
            .iter()
            .collect();
        src.insert(rel, read(&path));
    }
    Board::load(&src, "boards/mt3620_linux/board.json", SetLimits::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn resolve(
    m: &Manifest,
    (board, set): &(Board, HwdefSet),
    installed: &[InstalledApp],
) -> Result<ResolvedApp, warden_policy::install::InstallError> {
    install::resolve(
        "app_manifest.json",
        m,
        &Device {
            hwdefs: set,
            board,
            installed,
        },
    )
}

fn installed(m: &Manifest, device: &(Board, HwdefSet), others: &[InstalledApp]) -> InstalledApp {
    let resolved = resolve(m, device, others).unwrap_or_else(|e| panic!("{e}"));
    InstalledApp {
        manifest: m.clone(),
        resolved,
    }
}

fn grant_table(app: &ResolvedApp) -> Vec<String> {
    app.grants
        .iter()
        .map(|g| {
            format!(
                "{} {} -> {} -> {}",
                g.manifest_path,
                g.requested,
                g.chain.join(" -> "),
                g.resource.backend
            )
        })
        .collect()
}

#[test]
fn real_azure_sphere_manifests_resolve_on_warden_sim_unchanged() {
    let device = sim();
    let mut names: Vec<String> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        let m = manifest(name);
        let app = resolve(&m, &device, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let requested: usize = m.capabilities.peripherals.values().map(Vec::len).sum();
        assert_eq!(
            app.grants.len(),
            requested,
            "{name}: {:?}",
            grant_table(&app)
        );
        for w in &app.warnings {
            assert_eq!(w.severity, Severity::Warning);
        }
    }

    let blink = resolve(&manifest("gpio_blink.json"), &device, &[]).unwrap();
    assert_eq!(
        grant_table(&blink),
        [
            "Capabilities.Gpio[0] $SAMPLE_LED -> SAMPLE_LED -> LED_RED -> SIM_GPIO0 -> sim line 0",
            "Capabilities.Gpio[1] $SAMPLE_BUTTON_1 -> SAMPLE_BUTTON_1 -> BUTTON_A -> SIM_GPIO3 -> sim line 3",
        ]
    );
    assert!(blink.warnings.is_empty(), "{:?}", blink.warnings);
    assert_eq!(blink.memory_limit_kb, 65536, "the board's default");

    let i2c = resolve(&manifest("i2c.json"), &device, &[]).unwrap();
    assert_eq!(i2c.grants[0].chip_peripheral, "SIM_ISU2_I2C");
    assert!(matches!(
        &i2c.grants[0].resource.backend,
        Backend::SimI2c { devices, .. } if devices.iter().any(|d| d.model == "lsm6ds3")
    ));
    assert_eq!(i2c.storage_kb, Some(64));

    let uart = resolve(&manifest("uart.json"), &device, &[]).unwrap();
    assert!(matches!(
        uart.grants[1].resource.backend,
        Backend::SimUart { loopback: true, .. }
    ));

    // Raw chip values, as real-time apps write them, resolve too.
    let rt = resolve(&manifest("intercore_realtime.json"), &device, &[]).unwrap();
    assert_eq!(rt.application_type, ApplicationType::RealTimeCapable);
    let chips: Vec<&str> = rt
        .grants
        .iter()
        .map(|g| g.chip_peripheral.as_str())
        .collect();
    assert_eq!(
        chips,
        ["SIM_GPIO8", "SIM_GPIO12", "SIM_ISU0_UART", "SIM_EINT4"]
    );
    assert_eq!(
        rt.warnings.len(),
        1,
        "the partner is not installed yet: {:?}",
        rt.warnings
    );
    assert!(rt.warnings[0].message.contains("channel stays closed"));

    // What the simulated board cannot back is withheld with a warning, never silently.
    let net = resolve(&manifest("network.json"), &device, &[]).unwrap();
    assert_eq!(net.withheld, ["WifiConfig"]);
    let warning = net
        .warnings
        .iter()
        .find(|w| w.path == "Capabilities.WifiConfig")
        .expect("a warning for WifiConfig");
    assert!(warning.message.contains("cannot back `WifiConfig`"));

    let all = resolve(&manifest("peripherals_all.json"), &device, &[]).unwrap();
    assert_eq!(all.withheld, ["EnterpriseWifiConfig"]);
    let i2s = all
        .grants
        .iter()
        .find(|g| g.capability == PeripheralType::I2sSubordinate)
        .unwrap();
    assert_eq!(
        i2s.requested,
        PeripheralRef::Value(AppManifestValue::Text("I2S0".into()))
    );
    assert_eq!(i2s.chip_peripheral, "SIM_I2S0");

    let limits = resolve(&manifest("warden_limits.json"), &device, &[]).unwrap();
    assert_eq!(limits.memory_limit_kb, 16384, "the manifest's own limit");
    assert_eq!(limits.grants[0].chain, ["LED_RED", "SIM_GPIO0"]);
}

#[test]
fn mt3620_style_set_resolves_sample_led_to_gpio8_on_a_linux_board() {
    let device = mt3620();
    let app = resolve(&manifest("gpio_blink.json"), &device, &[]).unwrap();
    assert_eq!(
        grant_table(&app),
        [
            "Capabilities.Gpio[0] $SAMPLE_LED -> SAMPLE_LED -> MT3620_RDB_LED1_RED -> MT3620_GPIO8 -> gpiochip0 line 8",
            "Capabilities.Gpio[1] $SAMPLE_BUTTON_1 -> SAMPLE_BUTTON_1 -> MT3620_RDB_BUTTON_A -> MT3620_GPIO12 -> gpiochip0 line 12",
        ]
    );
}

fn with_caps(id: &str, app_type: &str, capabilities: &str) -> Manifest {
    let text = format!(
        r#"{{
  "SchemaVersion": 1,
  "Name": "app-{}",
  "ComponentId": "{id}",
  "EntryPoint": "/bin/app",
  "ApplicationType": "{app_type}",
  "Capabilities": {{ {capabilities} }}
}}"#,
        &id[..4]
    );
    Manifest::parse("app_manifest.json", text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn errors_of(result: Result<ResolvedApp, warden_policy::install::InstallError>) -> Vec<Problem> {
    match result {
        Ok(app) => panic!("installed: {:?}", grant_table(&app)),
        Err(e) => e.report.errors().cloned().collect(),
    }
}

fn assert_one(problems: &[Problem], path: &str, fragments: &[&str]) {
    let Some(hit) = problems.iter().find(|p| p.path == path) else {
        panic!("no problem at `{path}`: {problems:?}");
    };
    for fragment in fragments {
        assert!(
            hit.message.contains(fragment),
            "`{}` lacks `{fragment}`",
            hit.message
        );
    }
}

/// (scenario, device, capabilities, path, message fragments)
type InstallCase<'a> = (
    &'a str,
    &'a (Board, HwdefSet),
    &'a str,
    &'a str,
    Vec<&'a str>,
);

#[test]
fn install_problems_name_the_manifest_path_and_the_peripheral() {
    let sim = sim();
    let mt = mt3620();
    let no_gpio9 = sim_with(|t| {
        t.replace(
            r#"{"Peripheral": "SIM_GPIO9", "SimGpio": {"Line": 9}},"#,
            "",
        )
    });
    let cases: Vec<InstallCase<'_>> = vec![
        (
            "unknown name",
            &sim,
            r#""Gpio": ["$SAMPLE_LED", "$SAMPLE_LDE"]"#,
            "Capabilities.Gpio[1]",
            vec!["`$SAMPLE_LDE` is not defined", "did you mean `$SAMPLE_LED`"],
        ),
        (
            "name of the wrong type",
            &sim,
            r#""Uart": ["$SAMPLE_LED"]"#,
            "Capabilities.Uart[0]",
            vec!["`$SAMPLE_LED` is a Gpio peripheral, not Uart"],
        ),
        (
            "int constant as a peripheral",
            &sim,
            r#""Adc": ["$SAMPLE_POTENTIOMETER_ADC_CHANNEL"]"#,
            "Capabilities.Adc[0]",
            vec!["is a int peripheral, not Adc"],
        ),
        (
            "unknown raw value",
            &sim,
            r#""Gpio": [40]"#,
            "Capabilities.Gpio[0]",
            vec!["no Gpio peripheral of the chip has the value 40"],
        ),
        (
            "chip peripheral without a resource",
            &no_gpio9,
            r#""Gpio": [9]"#,
            "Capabilities.Gpio[0]",
            vec!["`9` resolves to `SIM_GPIO9`, which board `warden-sim` has no resource for"],
        ),
        (
            "real-time-only resource for a high-level app",
            &mt,
            r#""Gpio": [21]"#,
            "Capabilities.Gpio[0]",
            vec!["`21` (`MT3620_GPIO21`) is wired to the real-time core only"],
        ),
        (
            "capability the board refuses",
            &mt,
            r#""DhcpService": true"#,
            "Capabilities.DhcpService",
            vec!["board `mt3620-linux` cannot back `DhcpService`", "refuses"],
        ),
        (
            "storage above the board maximum",
            &mt,
            r#""MutableStorage": {"SizeKB": 512}"#,
            "Capabilities.MutableStorage.SizeKB",
            vec!["512 KiB of storage is more than board `mt3620-linux` allows an app (256 KiB)"],
        ),
        (
            "two functions of one block in one app",
            &mt,
            r#""Uart": ["$SAMPLE_UART_LOOPBACK"], "I2cMaster": ["ISU0"]"#,
            "Capabilities.I2cMaster[0]",
            vec![
                "`$SAMPLE_UART_LOOPBACK` (`MT3620_ISU0_UART`, Capabilities.Uart[0])",
                "alternative functions of hardware block \"ISU0\"",
            ],
        ),
    ];
    for (scenario, device, caps, path, fragments) in cases {
        let m = with_caps(A, "Default", caps);
        let problems = errors_of(resolve(&m, device, &[]));
        assert_one(&problems, path, &fragments);
        assert!(
            problems.iter().all(|p| p.severity == Severity::Error),
            "{scenario}"
        );
    }
}

#[test]
fn every_problem_comes_in_one_report_and_locate_adds_positions() {
    let text = r#"{
  "SchemaVersion": 1,
  "Name": "many",
  "ComponentId": "aaaaaaaa-0000-4000-8000-000000000001",
  "EntryPoint": "/bin/app",
  "Capabilities": {
    "Gpio": ["$NOPE", 21],
    "DhcpService": true,
    "MutableStorage": {"SizeKB": 1000}
  }
}"#;
    let m = Manifest::parse("m.json", text.as_bytes()).unwrap();
    let mut report = resolve(&m, &mt3620(), &[]).unwrap_err().report;
    let paths: Vec<&str> = report.errors().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Capabilities.Gpio[0]",
            "Capabilities.Gpio[1]",
            "Capabilities.DhcpService",
            "Capabilities.MutableStorage.SizeKB"
        ]
    );
    install::locate(&mut report, text.as_bytes());
    let at: Vec<(u32, u32)> = report.errors().map(|p| (p.line, p.column)).collect();
    assert_eq!(at, [(7, 14), (7, 23), (8, 20), (9, 34)]);
}

#[test]
fn unsupported_capabilities_warn_or_refuse_by_the_board_policy() {
    let m = with_caps(
        A,
        "Default",
        r#""WifiConfig": true, "Gpio": ["$SAMPLE_LED"]"#,
    );
    let warn = resolve(&m, &sim(), &[]).unwrap();
    assert_eq!(warn.withheld, ["WifiConfig"]);
    assert_eq!(warn.grants.len(), 1);
    assert_eq!(warn.warnings.len(), 1);

    let refusing = sim_with(|t| {
        t.replace(
            r#""UnsupportedCapabilities": "Warn""#,
            r#""UnsupportedCapabilities": "Refuse""#,
        )
    });
    let problems = errors_of(resolve(&m, &refusing, &[]));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_one(
        &problems,
        "Capabilities.WifiConfig",
        &["cannot back `WifiConfig`"],
    );

    // A service the board file does not mention is one it cannot back.
    let silent = sim_with(|t| t.replace("    \"WifiConfig\": false,\n", ""));
    assert_eq!(resolve(&m, &silent, &[]).unwrap().withheld, ["WifiConfig"]);
}

#[test]
fn a_resource_belongs_to_one_app_at_a_time() {
    let device = sim();
    let blink = installed(&manifest("gpio_blink.json"), &device, &[]);

    // The same name, another app.
    let problems = errors_of(resolve(
        &manifest("network.json"),
        &device,
        std::slice::from_ref(&blink),
    ));
    assert_one(
        &problems,
        "Capabilities.Gpio[0]",
        &[
            "`$SAMPLE_LED` (`SIM_GPIO0`) is already owned by app `HelloWorld_HighLevelApp` (1689d8b2-c835-2e27-27ad-e894d6d15fa9) as `$SAMPLE_LED`",
        ],
    );
    // A different name for the same chip peripheral.
    let problems = errors_of(resolve(
        &manifest("warden_limits.json"),
        &device,
        std::slice::from_ref(&blink),
    ));
    assert_one(
        &problems,
        "Capabilities.Gpio[0]",
        &["`$LED_RED` (`SIM_GPIO0`) is already owned by app `HelloWorld_HighLevelApp`"],
    );
    // Another function of a block another app holds.
    let mt = mt3620();
    let uart = installed(&manifest("uart.json"), &mt, &[]);
    let m = with_caps(B, "Default", r#""SpiMaster": ["ISU0"]"#);
    let problems = errors_of(resolve(&m, &mt, std::slice::from_ref(&uart)));
    assert_one(
        &problems,
        "Capabilities.SpiMaster[0]",
        &[
            "`\"ISU0\"` (`MT3620_ISU0_SPI`) shares hardware block \"ISU0\" with `MT3620_ISU0_UART`",
            "app `UART_HighLevelApp`",
        ],
    );
    // Free resources are still granted next to an owner.
    let m = with_caps(
        B,
        "Default",
        r#""Gpio": ["$SAMPLE_BUTTON_2", "$SAMPLE_RGBLED_GREEN"]"#,
    );
    resolve(&m, &device, std::slice::from_ref(&blink)).unwrap();
}

#[test]
fn an_update_of_the_same_app_does_not_conflict_with_itself() {
    let device = sim();
    let blink = installed(&manifest("gpio_blink.json"), &device, &[]);
    let again = resolve(
        &manifest("gpio_blink.json"),
        &device,
        std::slice::from_ref(&blink),
    )
    .unwrap();
    assert_eq!(again.grants, blink.resolved.grants);
    // An update may also take more.
    let mut grown = manifest("gpio_blink.json");
    grown
        .capabilities
        .peripherals
        .get_mut(&PeripheralType::Gpio)
        .unwrap()
        .push(PeripheralRef::Named("SAMPLE_BUTTON_2".into()));
    assert_eq!(resolve(&grown, &device, &[blink]).unwrap().grants.len(), 3);
}

#[test]
fn inter_app_connections_need_both_sides() {
    let device = sim();
    let hl = manifest("intercore_highlevel.json");
    let rt = manifest("intercore_realtime.json");

    // Partner not installed: a warning, the channel stays closed.
    let alone = resolve(&hl, &device, &[]).unwrap();
    assert_eq!(alone.warnings.len(), 1);
    assert_eq!(
        alone.warnings[0].path,
        "Capabilities.AllowedApplicationConnections[0]"
    );
    assert!(
        alone.warnings[0]
            .message
            .contains("no app 005180bc-402f-4cb3-a662-72937dbcde47 is installed")
    );

    // Both list each other: no problem at all.
    let rt_installed = installed(&rt, &device, &[]);
    let paired = resolve(&hl, &device, std::slice::from_ref(&rt_installed)).unwrap();
    assert!(paired.warnings.is_empty(), "{:?}", paired.warnings);
    assert_eq!(paired.application_connections, [rt.component_id]);

    // The partner is installed and does not list this app: refused, naming the partner.
    let mut one_sided = rt.clone();
    one_sided
        .capabilities
        .allowed_application_connections
        .clear();
    let partner = installed(&one_sided, &device, &[]);
    let problems = errors_of(resolve(&hl, &device, std::slice::from_ref(&partner)));
    assert_one(
        &problems,
        "Capabilities.AllowedApplicationConnections[0]",
        &[
            "app `IntercoreComms_RTApp_MT3620_BareMetal` (005180bc-402f-4cb3-a662-72937dbcde47) is installed but does not list this app",
        ],
    );

    // An installed app lists this one, which does not list it back: a warning.
    let mut quiet = hl.clone();
    quiet.capabilities.allowed_application_connections.clear();
    let app = resolve(&quiet, &device, &[rt_installed]).unwrap();
    assert_eq!(app.warnings.len(), 1, "{:?}", app.warnings);
    assert!(
        app.warnings[0]
            .message
            .contains("but this app does not list it")
    );
}

#[test]
fn a_real_time_app_needs_a_real_time_core() {
    let text = r#"{
  "SchemaVersion": 1, "Name": "nocore", "HardwareDefinition": "hw.json",
  "Defaults": {"MemoryLimitKB": 1024, "WatchdogMs": 1000, "MaxStorageKB": 0},
  "Resources": [{"Peripheral": "G8", "SimGpio": {}}]
}"#;
    let hw = r#"{"Metadata": {"Type": "Azure Sphere Hardware Definition", "Version": 1},
  "Peripherals": [{"Name": "G8", "Type": "Gpio", "AppManifestValue": 8}]}"#;
    let src = MemorySource::new()
        .with("board.json", text)
        .with("hw.json", hw);
    let device = Board::load(&src, "board.json", SetLimits::default()).unwrap();
    let m = with_caps(A, "RealTimeCapable", r#""Gpio": [8]"#);
    let problems = errors_of(resolve(&m, &device, &[]));
    assert_one(&problems, "ApplicationType", &["has no real-time core"]);
}
