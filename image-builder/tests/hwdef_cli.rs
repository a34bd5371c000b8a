//! `warden hwdef check`, end to end through the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .current_dir(repo())
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .args(args)
        .output()
        .expect("the warden binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SIM_BOARD: &str = "buildroot-overlay/board/warden-sim/board.json";
const MANIFESTS: &str = "policy/tests/fixtures/manifests";

#[test]
fn the_simulated_board_resolves_a_sample_manifest() {
    let out = warden(&[
        "hwdef",
        "check",
        SIM_BOARD,
        "--manifest",
        &format!("{MANIFESTS}/gpio_blink.json"),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("board: warden-sim"), "{stdout}");
    assert!(
        stdout.contains("$SAMPLE_LED -> LED_RED -> SIM_GPIO0 -> sim line 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("$SAMPLE_BUTTON_1 -> BUTTON_A -> SIM_GPIO3 -> sim line 3"),
        "{stdout}"
    );
}

#[test]
fn json_output_is_machine_readable() {
    let out = warden(&[
        "hwdef",
        "check",
        SIM_BOARD,
        "--manifest",
        &format!("{MANIFESTS}/network.json"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["board"], "warden-sim");
    assert_eq!(doc["files"].as_array().map(Vec::len), Some(3));
    let rows = doc["resolution"].as_array().expect("a resolution table");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["reference"], "$SAMPLE_LED");
    assert_eq!(rows[0]["chip"], "SIM_GPIO0");
    assert_eq!(rows[0]["resource"], "sim line 0");
    assert_eq!(doc["withheld"][0], "WifiConfig");
    let warning = &doc["reports"][0]["problems"][0];
    assert_eq!(warning["severity"], "warning");
    assert_eq!(warning["path"], "Capabilities.WifiConfig");
    assert!(warning["line"].as_u64().unwrap_or(0) > 0, "{warning}");
}

#[test]
fn an_mt3620_style_set_is_found_through_search_directories() {
    let out = warden(&[
        "hwdef",
        "check",
        "policy/tests/fixtures/hwdef/mt3620_rdb_sample/sample_appliance.json",
        "--search",
        "policy/tests/fixtures/hwdef/sdk",
        "--manifest",
        &format!("{MANIFESTS}/gpio_blink.json"),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("$SAMPLE_LED -> MT3620_RDB_LED1_RED -> MT3620_GPIO8"),
        "{stdout}"
    );

    // Without the search directory the board layer is missing.
    let out = warden(&[
        "hwdef",
        "check",
        "policy/tests/fixtures/hwdef/mt3620_rdb_sample/sample_appliance.json",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Imports[0].Path"), "{stderr}");
    assert!(stderr.contains("cannot find `mt3620_rdb.json`"), "{stderr}");
}

#[test]
fn a_linux_board_with_an_extra_search_directory_loads() {
    let out = warden(&[
        "hwdef",
        "check",
        "policy/tests/fixtures/boards/mt3620_linux/board.json",
        "--search",
        "policy/tests/fixtures/hwdef/sdk",
        "--manifest",
        &format!("{MANIFESTS}/uart.json"),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "$SAMPLE_UART_LOOPBACK -> MT3620_RDB_HEADER2_ISU0_UART -> MT3620_ISU0_UART -> /dev/ttyS0 at 115200 baud"
        ),
        "{stdout}"
    );
}

#[test]
fn problems_make_the_command_fail_with_the_report() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let header = r#""Metadata": {"Type": "Azure Sphere Hardware Definition", "Version": 1}"#;
    std::fs::write(
        dir.path().join("a.json"),
        format!(r#"{{{header}, "Imports": [{{"Path": "b.json"}}], "Peripherals": []}}"#),
    )
    .expect("write a.json");
    std::fs::write(
        dir.path().join("b.json"),
        format!(r#"{{{header}, "Imports": [{{"Path": "a.json"}}], "Peripherals": []}}"#),
    )
    .expect("write b.json");
    let a = dir.path().join("a.json");
    let out = warden(&["hwdef", "check", a.to_str().expect("a UTF-8 path")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("import cycle:"), "{stderr}");
    assert!(stderr.contains("a.json -> "), "{stderr}");

    let manifest = dir.path().join("app_manifest.json");
    std::fs::write(
        &manifest,
        r#"{"SchemaVersion": 1, "Name": "x", "ComponentId": "11111111-2222-3333-4444-555555555555",
 "EntryPoint": "/bin/app", "Capabilities": {"Gpio": ["$SAMPLE_LEDD"]}}"#,
    )
    .expect("write the manifest");
    let out = warden(&[
        "hwdef",
        "check",
        SIM_BOARD,
        "--manifest",
        manifest.to_str().expect("a UTF-8 path"),
        "--json",
    ]);
    assert!(!out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    let problem = &doc["reports"][0]["problems"][0];
    assert_eq!(problem["path"], "Capabilities.Gpio[0]");
    assert_eq!(problem["line"], 2);
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("did you mean `$SAMPLE_LED`")),
        "{problem}"
    );
}
