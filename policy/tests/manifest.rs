//! App manifests: real Azure Sphere manifests parse unchanged; every capability key is accepted
//! with a valid value and refused by name with a bad one; malformed manifests are refused with
//! the right JSON path, line and column; all problems come in one pass.

mod anchors;

use anchors::{END, check};
use std::path::PathBuf;

use warden_policy::diag::Problem;
use warden_policy::ids::{AppManifestValue, PeripheralType};
use warden_policy::manifest::{
    AllowedHost, ApplicationType, CAPABILITY_KEYS, Manifest, ManifestError, PeripheralRef,
    PowerControl, ServiceCapability,
};

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/manifests", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse("app_manifest.json", text.as_bytes())
}

fn errors(text: &str) -> Vec<Problem> {
    match parse(text) {
        Ok(m) => panic!("accepted a bad manifest: {m:?}\n{text}"),
        Err(e) => e.report.errors().cloned().collect(),
    }
}

/// A valid manifest with `capabilities` spliced in as the Capabilities object's body.
fn with_caps(app_type: &str, capabilities: &str) -> String {
    format!(
        r#"{{
  "SchemaVersion": 1,
  "Name": "t",
  "ComponentId": "11111111-2222-3333-4444-555555555555",
  "EntryPoint": "/bin/app",
  "ApplicationType": "{app_type}",
  "Capabilities": {{ {capabilities} }}
}}"#
    )
}

#[test]
fn real_azure_sphere_manifests_parse_unchanged() {
    let blink = Manifest::parse("gpio_blink.json", &fixture("gpio_blink.json")).unwrap();
    assert_eq!(blink.name, "HelloWorld_HighLevelApp");
    assert_eq!(
        blink.component_id.to_string(),
        "1689d8b2-c835-2e27-27ad-e894d6d15fa9"
    );
    assert_eq!(blink.entry_payload_name(), "bin/app");
    assert_eq!(blink.application_type, ApplicationType::Default);
    assert_eq!(
        blink.capabilities.peripherals_of(PeripheralType::Gpio),
        &[
            PeripheralRef::Named("SAMPLE_LED".into()),
            PeripheralRef::Named("SAMPLE_BUTTON_1".into())
        ]
    );
    assert!(blink.warnings.is_empty());

    let uart = Manifest::parse("uart.json", &fixture("uart.json")).unwrap();
    assert_eq!(
        uart.capabilities.peripherals_of(PeripheralType::Uart),
        &[PeripheralRef::Named("SAMPLE_UART_LOOPBACK".into())]
    );

    let i2c = Manifest::parse("i2c.json", &fixture("i2c.json")).unwrap();
    assert_eq!(i2c.capabilities.mutable_storage.unwrap().size_kb, 64);
    assert_eq!(i2c.malloc_version, Some(2));
    assert_eq!(
        i2c.warnings.len(),
        1,
        "MallocVersion is reported as having no effect"
    );
    assert!(i2c.warnings[0].message.contains("no effect"));

    let net = Manifest::parse("network.json", &fixture("network.json")).unwrap();
    let caps = &net.capabilities;
    assert_eq!(caps.allowed_connections.len(), 4);
    assert!(caps.allowed_connections[2].matches_name("x.servicebus.windows.net"));
    assert!(matches!(
        caps.allowed_connections[3],
        AllowedHost::Address(_)
    ));
    assert_eq!(caps.allowed_tcp_server_ports, vec![1024]);
    assert_eq!(caps.allowed_udp_server_ports, vec![1024, 50000]);
    assert!(caps.device_authentication.is_some());
    assert!(
        caps.services
            .contains(&ServiceCapability::SoftwareUpdateDeferral)
    );
    assert_eq!(
        caps.power_controls,
        vec![PowerControl::ForceReboot, PowerControl::ForcePowerDown]
    );
    assert_eq!(net.cmd_args.len(), 4);

    let hl = Manifest::parse("hl", &fixture("intercore_highlevel.json")).unwrap();
    let rt = Manifest::parse("rt", &fixture("intercore_realtime.json")).unwrap();
    assert_eq!(rt.application_type, ApplicationType::RealTimeCapable);
    assert_eq!(
        hl.capabilities.allowed_application_connections,
        vec![rt.component_id]
    );
    assert_eq!(
        rt.capabilities.allowed_application_connections,
        vec![hl.component_id]
    );
    assert_eq!(
        rt.capabilities.peripherals_of(PeripheralType::Gpio),
        &[
            PeripheralRef::Value(AppManifestValue::Number(8)),
            PeripheralRef::Value(AppManifestValue::Number(12))
        ]
    );

    let all = Manifest::parse("all", &fixture("peripherals_all.json")).unwrap();
    assert_eq!(all.capabilities.peripherals.len(), 7);
    assert_eq!(all.target_application_runtime_version, Some(16));
    assert_eq!(all.warnings.len(), 2);

    let warden = Manifest::parse("w", &fixture("warden_limits.json")).unwrap();
    assert_eq!(warden.warden.memory_limit_kb, Some(16384));
    assert_eq!(warden.warden.watchdog_ms, Some(2000));
    assert_eq!(warden.entry_payload_name(), "blinky.wasm");
}

/// A valid value for each capability key, for a high-level app (or a real-time app where the
/// key is real-time only).
fn valid_value(key: &str) -> (&'static str, &'static str) {
    match key {
        "AllowedConnections" => ("Default", r#"["example.com"]"#),
        "AllowedTcpServerPorts" | "AllowedUdpServerPorts" => ("Default", "[8080]"),
        "AllowedApplicationConnections" => {
            ("Default", r#"["005180bc-402f-4cb3-a662-72937dbcde47"]"#)
        }
        "Gpio" => ("Default", r#"["$LED", 3]"#),
        "Uart" | "I2cMaster" | "SpiMaster" | "Adc" | "Pwm" | "I2sSubordinate" => {
            ("Default", r#"["$X", "ISU0"]"#)
        }
        "ExternalInterrupt" => ("RealTimeCapable", r#"["EINT4"]"#),
        "MutableStorage" => ("Default", r#"{"SizeKB": 8}"#),
        "DeviceAuthentication" => ("Default", r#""9d7e79eb-9d31-4d2c-8a53-6e2b7c3d1f4a""#),
        "PowerControls" => ("Default", r#"["ForceReboot"]"#),
        _ => ("Default", "true"),
    }
}

/// A value of the wrong shape for each key.
fn invalid_value(key: &str) -> &'static str {
    match key {
        "AllowedConnections" => r#"["http://example.com/"]"#,
        "AllowedTcpServerPorts" | "AllowedUdpServerPorts" => "[70000]",
        "AllowedApplicationConnections" => r#"["not-a-guid"]"#,
        "Gpio" => r#"["LED"]"#,
        "Uart" | "I2cMaster" | "SpiMaster" | "Adc" | "Pwm" | "I2sSubordinate"
        | "ExternalInterrupt" => "[7]",
        "MutableStorage" => r#"{"SizeKB": 0}"#,
        "DeviceAuthentication" => "true",
        "PowerControls" => r#"["Explode"]"#,
        _ => r#""yes""#,
    }
}

#[test]
fn every_capability_key_is_accepted_by_name() {
    assert_eq!(CAPABILITY_KEYS.len(), 27);
    for key in CAPABILITY_KEYS {
        let (app_type, value) = valid_value(key);
        let text = with_caps(app_type, &format!(r#""{key}": {value}"#));
        let manifest = parse(&text).unwrap_or_else(|e| panic!("{key} refused: {e}"));
        assert_eq!(
            manifest.capabilities.keys(),
            vec![*key],
            "{key} was not recorded as a typed capability"
        );
    }
}

#[test]
fn every_capability_key_is_refused_by_name_with_a_bad_value() {
    for key in CAPABILITY_KEYS {
        let (app_type, _) = valid_value(key);
        let text = with_caps(app_type, &format!(r#""{key}": {}"#, invalid_value(key)));
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{key}: {errs:?}");
        assert!(
            errs[0].path.starts_with(&format!("Capabilities.{key}")),
            "{key}: wrong path {}",
            errs[0].path
        );
        assert_eq!(errs[0].line, 7, "{key}: {errs:?}");
    }
}

#[test]
fn false_booleans_grant_nothing() {
    let m = parse(&with_caps("Default", r#""WifiConfig": false"#)).unwrap();
    assert!(m.capabilities.services.is_empty());
}

/// (scenario, manifest, expected path, text the error must point at, a fragment of the message)
const MALFORMED: &[(&str, &str, &str, &str, &str)] = &[
    ("not json", "{", "", END, "expected a key"),
    (
        "trailing comma",
        r#"{"SchemaVersion": 1,}"#,
        "",
        r#"}"#,
        "expected a key",
    ),
    ("not an object", "[]", "", r#"[]"#, "expected an object"),
    (
        "empty object",
        "{}",
        "",
        r#"{}"#,
        "missing required key `SchemaVersion`",
    ),
    (
        "duplicate key",
        "{\"Name\": \"a\",\n \"Name\": \"b\"}",
        "",
        r#""Name": "b""#,
        "duplicate key `Name`",
    ),
    (
        "schema version 2",
        r#"{"SchemaVersion": 2, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app"}"#,
        "SchemaVersion",
        r#"2,"#,
        "unsupported schema version 2",
    ),
    (
        "schema version string",
        r#"{"SchemaVersion": "1", "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app"}"#,
        "SchemaVersion",
        r#""1""#,
        "found a string",
    ),
    (
        "name empty",
        r#"{"SchemaVersion": 1, "Name": " ", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app"}"#,
        "Name",
        r#"" ""#,
        "1 to 128 characters",
    ),
    (
        "name number",
        r#"{"SchemaVersion": 1, "Name": 5, "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app"}"#,
        "Name",
        r#"5,"#,
        "expected a string",
    ),
    (
        "component id short",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "1111-2222", "EntryPoint": "/bin/app"}"#,
        "ComponentId",
        r#""1111-2222""#,
        "is not a GUID",
    ),
    (
        "component id braces",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "{11111111-2222-3333-4444-555555555555}", "EntryPoint": "/bin/app"}"#,
        "ComponentId",
        r#""{1111"#,
        "is not a GUID",
    ),
    (
        "component id nil",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "00000000-0000-0000-0000-000000000000", "EntryPoint": "/bin/app"}"#,
        "ComponentId",
        r#""0000"#,
        "nil GUID",
    ),
    (
        "missing entry point",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555"}"#,
        "",
        r#"{"#,
        "missing required key `EntryPoint`",
    ),
    (
        "entry point escapes",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "../../etc/passwd"}"#,
        "EntryPoint",
        r#""../"#,
        "not a package path",
    ),
    (
        "entry point empty segment",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "bin//app"}"#,
        "EntryPoint",
        r#""bin//"#,
        "not a package path",
    ),
    (
        "cmd args not strings",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "CmdArgs": ["-v", 3]}"#,
        "CmdArgs[1]",
        r#"3]"#,
        "expected a string",
    ),
    (
        "cmd args NUL",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "CmdArgs": ["a\u0000b"]}"#,
        "CmdArgs[0]",
        r#""a\u0000"#,
        "NUL",
    ),
    (
        "application type unknown",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "ApplicationType": "Realtime"}"#,
        "ApplicationType",
        r#""Realtime""#,
        "unknown application type `Realtime`",
    ),
    (
        "unknown top-level key",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Permissions": []}"#,
        "Permissions",
        r#""Permissions""#,
        "unknown key `Permissions`",
    ),
    (
        "wrong case key",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "capabilities": {}}"#,
        "capabilities",
        r#""capabilities""#,
        "did you mean `Capabilities`",
    ),
    (
        "capabilities array",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": []}"#,
        "Capabilities",
        r#"[]}"#,
        "expected an object",
    ),
    (
        "unknown capability",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"Bluetooth": true}}"#,
        "Capabilities.Bluetooth",
        r#""Bluetooth""#,
        "unknown key `Bluetooth`",
    ),
    (
        "capability typo",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"Gpios": [1]}}"#,
        "Capabilities.Gpios",
        r#""Gpios""#,
        "did you mean `Gpio`",
    ),
    (
        "gpio duplicate",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"Gpio": [8, 8]}}"#,
        "Capabilities.Gpio[1]",
        r#"8]"#,
        "duplicate entry",
    ),
    (
        "gpio negative",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"Gpio": [-1]}}"#,
        "Capabilities.Gpio[0]",
        r#"-1"#,
        "expected an integer",
    ),
    (
        "gpio bad reference",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"Gpio": ["$1LED"]}}"#,
        "Capabilities.Gpio[0]",
        r#""$1LED""#,
        "not a peripheral reference",
    ),
    (
        "gpio not a list",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"Gpio": "$LED"}}"#,
        "Capabilities.Gpio",
        r#""$LED""#,
        "expected an array",
    ),
    (
        "uart bad value",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"Uart": ["ISU 0"]}}"#,
        "Capabilities.Uart[0]",
        r#""ISU 0""#,
        "is not a Uart value",
    ),
    (
        "port zero",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"AllowedTcpServerPorts": [0]}}"#,
        "Capabilities.AllowedTcpServerPorts[0]",
        r#"0]"#,
        "from 1 to 65535",
    ),
    (
        "connection with port",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"AllowedConnections": ["example.com:443"]}}"#,
        "Capabilities.AllowedConnections[0]",
        r#""example.com:443""#,
        "no scheme, port or path",
    ),
    (
        "connection to self",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"AllowedApplicationConnections": ["11111111-2222-3333-4444-555555555555"]}}"#,
        "Capabilities.AllowedApplicationConnections[0]",
        r#""11111111-2222-3333-4444-555555555555"]"#,
        "cannot list itself",
    ),
    (
        "storage without size",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"MutableStorage": {}}}"#,
        "Capabilities.MutableStorage",
        r#"{}}"#,
        "missing required key `SizeKB`",
    ),
    (
        "storage too big",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"MutableStorage": {"SizeKB": 99999999999}}}"#,
        "Capabilities.MutableStorage.SizeKB",
        r#"99999999999"#,
        "from 1 to 4194304",
    ),
    (
        "storage extra key",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"MutableStorage": {"SizeKB": 8, "Path": "/"}}}"#,
        "Capabilities.MutableStorage.Path",
        r#""Path""#,
        "unknown key `Path`",
    ),
    (
        "boolean as string",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"WifiConfig": "true"}}"#,
        "Capabilities.WifiConfig",
        r#""true""#,
        "expected `true` or `false`",
    ),
    (
        "power control unknown",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"PowerControls": ["Reboot"]}}"#,
        "Capabilities.PowerControls[0]",
        r#""Reboot""#,
        "unknown power control `Reboot`",
    ),
    (
        "external interrupt on high-level app",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Capabilities": {"ExternalInterrupt": ["EINT4"]}}"#,
        "Capabilities.ExternalInterrupt",
        r#"["EINT4"]"#,
        "RealTimeCapable apps only",
    ),
    (
        "network on real-time app",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "ApplicationType": "RealTimeCapable", "Capabilities": {"AllowedConnections": ["example.com"]}}"#,
        "Capabilities.AllowedConnections",
        r#"["example.com"]"#,
        "RealTimeCapable app cannot use it",
    ),
    (
        "malloc version 3",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "MallocVersion": 3}"#,
        "MallocVersion",
        r#"3}"#,
        "from 1 to 2",
    ),
    (
        "warden unknown key",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Warden": {"Privileged": true}}"#,
        "Warden.Privileged",
        r#""Privileged""#,
        "unknown key `Privileged`",
    ),
    (
        "warden memory too small",
        r#"{"SchemaVersion": 1, "Name": "a", "ComponentId": "11111111-2222-3333-4444-555555555555", "EntryPoint": "/bin/app", "Warden": {"MemoryLimitKB": 1}}"#,
        "Warden.MemoryLimitKB",
        r#"1}"#,
        "from 64 to",
    ),
];

#[test]
fn malformed_manifests_are_refused_with_path_and_position() {
    assert!(MALFORMED.len() >= 30);
    for (scenario, text, path, anchor, fragment) in MALFORMED {
        check(scenario, &errors(text), text, path, anchor, fragment);
    }
}

#[test]
fn all_problems_are_reported_in_one_pass() {
    let text = r#"{
  "SchemaVersion": 2,
  "Name": "",
  "ComponentId": "nope",
  "EntryPoint": "/bin/app",
  "Capabilities": {
    "Gpio": ["LED"],
    "Uart": [1],
    "Wifi": true
  },
  "Extra": 1
}"#;
    let err = parse(text).unwrap_err();
    let paths: Vec<&str> = err.report.errors().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "SchemaVersion",
            "Name",
            "ComponentId",
            "Capabilities.Gpio[0]",
            "Capabilities.Uart[0]",
            "Capabilities.Wifi",
            "Extra"
        ]
    );
    let wifi = err
        .report
        .errors()
        .find(|p| p.path == "Capabilities.Wifi")
        .unwrap();
    assert!(wifi.message.contains("did you mean `WifiConfig`"), "{wifi}");
    let shown = err.to_string();
    assert!(
        shown.contains("app_manifest.json:2:20: error: SchemaVersion:"),
        "{shown}"
    );
    assert!(shown.contains("7 error(s)"), "{shown}");
}

#[test]
fn oversized_manifest_is_refused_before_parsing() {
    let big = format!(
        r#"{{"Name": "{}"}}"#,
        "x".repeat(warden_policy::manifest::MAX_MANIFEST_BYTES)
    );
    let errs = errors(&big);
    assert!(errs[0].message.contains("larger than the limit"));
}
