//! Hardware definitions: Azure Sphere's three layers (chip, board, app abstraction) load and
//! resolve; malformed files and sets are refused with the file, JSON path, line and column.

mod anchors;

use anchors::{END, check};
use std::path::PathBuf;

use warden_policy::diag::Problem;
use warden_policy::hwdef::{
    DefinitionType, HardwareDefinition, HwdefError, HwdefSet, MemorySource, ResolveError,
    SetLimits, Target,
};
use warden_policy::ids::{AppManifestValue, PeripheralType};

fn fixture(rel: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures", rel]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The MT3620-style set: the chip and board files in an "SDK" search directory, the sample
/// appliance in its own directory, as the Azure Sphere samples lay them out.
fn mt3620() -> MemorySource {
    let mut src = MemorySource::new().with_search_dir("hwdef/sdk");
    for rel in [
        "hwdef/sdk/mt3620.json",
        "hwdef/sdk/mt3620_rdb.json",
        "hwdef/mt3620_rdb_sample/sample_appliance.json",
    ] {
        src.insert(rel, fixture(rel));
    }
    src
}

fn load(src: &MemorySource, root: &str) -> Result<HwdefSet, HwdefError> {
    HwdefSet::load(src, None, &[root], SetLimits::default())
}

#[test]
fn mt3620_three_layer_set_resolves_sample_led_to_gpio8() {
    let set = load(&mt3620(), "hwdef/mt3620_rdb_sample/sample_appliance.json").unwrap();
    assert_eq!(set.files().len(), 3);
    let ids: Vec<&str> = set.files().iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "hwdef/mt3620_rdb_sample/sample_appliance.json",
            "hwdef/sdk/mt3620_rdb.json",
            "hwdef/sdk/mt3620.json"
        ],
        "the board file is found in the search directory, the chip file next to it"
    );

    let led = set
        .resolve_name(PeripheralType::Gpio, "SAMPLE_LED")
        .unwrap();
    assert_eq!(led.chip, "MT3620_GPIO8");
    assert_eq!(
        led.chain,
        ["SAMPLE_LED", "MT3620_RDB_LED1_RED", "MT3620_GPIO8"]
    );
    assert_eq!(led.block, AppManifestValue::Number(8));

    let uart = set
        .resolve_name(PeripheralType::Uart, "SAMPLE_UART_LOOPBACK")
        .unwrap();
    assert_eq!(uart.chip, "MT3620_ISU0_UART");
    assert_eq!(uart.block, AppManifestValue::Text("ISU0".into()));

    // Board-level names resolve too: the whole set is visible.
    let button = set
        .resolve_name(PeripheralType::Gpio, "MT3620_RDB_BUTTON_A")
        .unwrap();
    assert_eq!(button.chain, ["MT3620_RDB_BUTTON_A", "MT3620_GPIO12"]);

    // Raw values resolve by type and value: ISU0 is three peripherals, one per function.
    for (kind, chip) in [
        (PeripheralType::Uart, "MT3620_ISU0_UART"),
        (PeripheralType::I2cMaster, "MT3620_ISU0_I2C"),
        (PeripheralType::SpiMaster, "MT3620_ISU0_SPI"),
    ] {
        let r = set
            .resolve_value(kind, &AppManifestValue::Text("ISU0".into()))
            .unwrap();
        assert_eq!(r.chip, chip);
        assert_eq!(r.chain, [chip]);
    }
    let gpio12 = set
        .resolve_value(PeripheralType::Gpio, &AppManifestValue::Number(12))
        .unwrap();
    assert_eq!(gpio12.chip, "MT3620_GPIO12");
    let adc = set
        .resolve_value(
            PeripheralType::Adc,
            &AppManifestValue::Text("ADC-CONTROLLER-0".into()),
        )
        .unwrap();
    assert_eq!(adc.chip, "MT3620_ADC_CONTROLLER0");
    let i2s = set
        .resolve_value(
            PeripheralType::I2sSubordinate,
            &AppManifestValue::Text("I2S0".into()),
        )
        .unwrap();
    assert_eq!(i2s.chip, "MT3620_I2S0");

    // ISU0's three functions are one block.
    let chips = set.chip_peripherals();
    let isu0: Vec<&str> = chips
        .iter()
        .filter(|c| *c.block == AppManifestValue::Text("ISU0".into()))
        .map(|c| c.name)
        .collect();
    assert_eq!(isu0.len(), 3, "{isu0:?}");
}

#[test]
fn real_layouts_parse_unchanged_including_int_constants() {
    let chip = HardwareDefinition::parse("mt3620.json", &fixture("hwdef/sdk/mt3620.json")).unwrap();
    assert_eq!(chip.name.as_deref(), Some("MT3620"));
    assert!(chip.imports.is_empty());
    assert!(!chip.header_top.is_empty());
    let gpio0 = &chip.peripherals[0];
    assert_eq!(gpio0.name, "MT3620_GPIO0");
    assert_eq!(gpio0.main_core_header_value.as_deref(), Some("(0)"));
    assert_eq!(gpio0.target, Target::Value(AppManifestValue::Number(0)));
    let cs = chip
        .peripherals
        .iter()
        .find(|p| p.name == "MT3620_SPI_CS_A")
        .unwrap();
    assert_eq!(cs.kind, DefinitionType::Int);
    assert_eq!(cs.target, Target::Constant);

    let sample = HardwareDefinition::parse(
        "sample_appliance.json",
        &fixture("hwdef/mt3620_rdb_sample/sample_appliance.json"),
    )
    .unwrap();
    assert_eq!(sample.imports[0].path, "mt3620_rdb.json");
    let channel = sample
        .peripherals
        .iter()
        .find(|p| p.name == "SAMPLE_POTENTIOMETER_ADC_CHANNEL")
        .unwrap();
    assert_eq!(
        channel.target,
        Target::Mapping("MT3620_ADC_CHANNEL0".into())
    );
    assert!(channel.comment.is_some());
}

#[test]
fn references_that_do_not_resolve_say_why() {
    let set = load(&mt3620(), "hwdef/mt3620_rdb_sample/sample_appliance.json").unwrap();
    let e = set
        .resolve_name(PeripheralType::Gpio, "SAMPLE_LDE")
        .unwrap_err();
    assert!(matches!(e, ResolveError::UnknownName { .. }));
    assert!(e.to_string().contains("did you mean `$SAMPLE_LED`"), "{e}");

    let e = set
        .resolve_name(PeripheralType::Uart, "SAMPLE_LED")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`$SAMPLE_LED` is a Gpio peripheral, not Uart"
    );

    let e = set
        .resolve_name(PeripheralType::SpiMaster, "SAMPLE_LSM6DS3_SPI_CS")
        .unwrap_err();
    assert!(e.to_string().contains("is a int peripheral"), "{e}");

    let e = set
        .resolve_value(PeripheralType::Gpio, &AppManifestValue::Number(99))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no Gpio peripheral of the chip has the value 99"
    );

    let e = set
        .resolve_value(PeripheralType::Adc, &AppManifestValue::Text("I2S0".into()))
        .unwrap_err();
    assert!(matches!(e, ResolveError::WrongValueType { .. }), "{e}");
}

const HEADER: &str = r#""Metadata": {"Type": "Azure Sphere Hardware Definition", "Version": 1}"#;

/// A hardware definition with the given imports and peripheral entries, one per line.
fn hw(imports: &[&str], peripherals: &[&str]) -> String {
    let imports: Vec<String> = imports
        .iter()
        .map(|p| format!(r#"{{"Path": "{p}"}}"#))
        .collect();
    format!(
        "{{\n  {HEADER},\n  \"Imports\": [{}],\n  \"Peripherals\": [\n    {}\n  ]\n}}\n",
        imports.join(", "),
        peripherals.join(",\n    ")
    )
}

fn chip(peripherals: &[&str]) -> String {
    hw(&[], peripherals)
}

const GPIO0: &str = r#"{"Name": "CHIP_GPIO0", "Type": "Gpio", "AppManifestValue": 0}"#;

/// (scenario, file text, expected path, text the error must point at, message fragment)
fn malformed_files() -> Vec<(
    &'static str,
    String,
    &'static str,
    &'static str,
    &'static str,
)> {
    vec![
        ("not json", "{\"Metadata\": ".into(), "", END, "expected a value"),
        ("not an object", "[]".into(), "", "[]", "expected an object"),
        (
            "missing metadata",
            "{\"Peripherals\": []}".into(),
            "",
            "{",
            "missing required key `Metadata`",
        ),
        (
            "missing peripherals",
            format!("{{{HEADER}}}"),
            "",
            "{",
            "missing required key `Peripherals`",
        ),
        (
            "wrong metadata type",
            r#"{"Metadata": {"Type": "Azure Sphere Manifest", "Version": 1}, "Peripherals": []}"#.into(),
            "Metadata.Type",
            r#""Azure Sphere Manifest""#,
            "is not a hardware definition",
        ),
        (
            "version 2",
            r#"{"Metadata": {"Type": "Azure Sphere Hardware Definition", "Version": 2}, "Peripherals": []}"#.into(),
            "Metadata.Version",
            "2}",
            "unsupported hardware-definition version 2",
        ),
        (
            "unknown top-level key",
            format!("{{{HEADER}, \"Peripherals\": [], \"Pins\": []}}"),
            "Pins",
            "\"Pins\"",
            "unknown key `Pins`",
        ),
        (
            "key with wrong case",
            format!("{{{HEADER}, \"peripherals\": []}}"),
            "peripherals",
            "\"peripherals\"",
            "did you mean `Peripherals`",
        ),
        (
            "import without path",
            format!("{{{HEADER}, \"Imports\": [{{\"File\": \"a.json\"}}], \"Peripherals\": []}}"),
            "Imports[0]",
            "{\"File\"",
            "missing required key `Path`",
        ),
        (
            "absolute import",
            hw(&["/usr/share/hw/mt3620.json"], &[]),
            "Imports[0].Path",
            "\"/usr",
            "is not a relative path",
        ),
        (
            "import not json",
            hw(&["mt3620.h"], &[]),
            "Imports[0].Path",
            "\"mt3620.h\"",
            "does not name a `.json` file",
        ),
        (
            "import twice",
            hw(&["a.json", "a.json"], &[]),
            "Imports[1].Path",
            "\"a.json\"}]",
            "imported twice",
        ),
        (
            "peripheral without name",
            chip(&[r#"{"Type": "Gpio", "AppManifestValue": 0}"#]),
            "Peripherals[0]",
            "{\"Type\": \"Gpio\"",
            "missing required key `Name`",
        ),
        (
            "bad name",
            chip(&[r#"{"Name": "LED-1", "Type": "Gpio", "AppManifestValue": 0}"#]),
            "Peripherals[0].Name",
            "\"LED-1\"",
            "is not a peripheral name",
        ),
        (
            "unknown type",
            chip(&[r#"{"Name": "X", "Type": "Can", "AppManifestValue": "CAN0"}"#]),
            "Peripherals[0].Type",
            "\"Can\"",
            "unknown peripheral type `Can`",
        ),
        (
            "type in wrong case",
            chip(&[r#"{"Name": "X", "Type": "gpio", "AppManifestValue": 3}"#]),
            "Peripherals[0].Type",
            "\"gpio\"",
            "did you mean `Gpio`",
        ),
        (
            "both mapping and value",
            chip(&[r#"{"Name": "X", "Type": "Gpio", "Mapping": "Y", "AppManifestValue": 3}"#]),
            "Peripherals[0].AppManifestValue",
            "3}",
            "has both `Mapping` and `AppManifestValue`",
        ),
        (
            "neither mapping nor value",
            chip(&[r#"{"Name": "X", "Type": "Uart"}"#]),
            "Peripherals[0]",
            "{\"Name\": \"X\"",
            "needs `Mapping`",
        ),
        (
            "gpio value as string",
            chip(&[r#"{"Name": "X", "Type": "Gpio", "AppManifestValue": "8"}"#]),
            "Peripherals[0].AppManifestValue",
            "\"8\"",
            "a Gpio's AppManifestValue is its number",
        ),
        (
            "uart value as number",
            chip(&[r#"{"Name": "X", "Type": "Uart", "AppManifestValue": 4}"#]),
            "Peripherals[0].AppManifestValue",
            "4}",
            "is a string such as `ISU0`",
        ),
        (
            "value with a space",
            chip(&[r#"{"Name": "X", "Type": "Uart", "AppManifestValue": "ISU 0"}"#]),
            "Peripherals[0].AppManifestValue",
            "\"ISU 0\"",
            "is not an AppManifestValue",
        ),
        (
            "negative gpio",
            chip(&[r#"{"Name": "X", "Type": "Gpio", "AppManifestValue": -1}"#]),
            "Peripherals[0].AppManifestValue",
            "-1",
            "expected an integer from 0 to 65535",
        ),
        (
            "int with a value",
            chip(&[r#"{"Name": "X", "Type": "int", "AppManifestValue": 1}"#]),
            "Peripherals[0].AppManifestValue",
            "1}\n",
            "has no AppManifestValue",
        ),
        (
            "int with nothing",
            chip(&[r#"{"Name": "X", "Type": "int"}"#]),
            "Peripherals[0]",
            "{\"Name\": \"X\"",
            "needs a `Mapping` or a `MainCoreHeaderValue`",
        ),
        (
            "duplicate name in one file",
            chip(&[GPIO0, r#"{"Name": "CHIP_GPIO0", "Type": "Gpio", "AppManifestValue": 1}"#]),
            "Peripherals[1].Name",
            "\"CHIP_GPIO0\", \"Type\": \"Gpio\", \"AppManifestValue\": 1",
            "duplicate peripheral name `CHIP_GPIO0`",
        ),
        (
            "unknown peripheral key",
            chip(&[r#"{"Name": "X", "Type": "Gpio", "AppManifestValue": 1, "Pin": 4}"#]),
            "Peripherals[0].Pin",
            "\"Pin\"",
            "unknown key `Pin`",
        ),
        (
            "comment not a string",
            chip(&[r#"{"Name": "X", "Type": "Gpio", "AppManifestValue": 1, "Comment": 4}"#]),
            "Peripherals[0].Comment",
            "4}",
            "expected a string",
        ),
        (
            "header lines not strings",
            format!(
                "{{{HEADER}, \"Description\": {{\"Name\": \"x\", \"MainCoreHeaderFileTopContent\": [1]}}, \"Peripherals\": []}}"
            ),
            "Description.MainCoreHeaderFileTopContent[0]",
            "1]",
            "expected a string",
        ),
    ]
}

#[test]
fn malformed_hardware_definitions_are_refused_with_path_and_position() {
    let cases = malformed_files();
    assert!(cases.len() >= 25);
    for (scenario, text, path, anchor, fragment) in &cases {
        let err = HardwareDefinition::parse("x.json", text.as_bytes()).expect_err(scenario);
        let problems: Vec<Problem> = err.reports[0].problems.clone();
        check(scenario, &problems, text, path, anchor, fragment);
        // The same file, loaded as a set, gives the same answer.
        let src = MemorySource::new().with("x.json", text.as_str());
        let err = load(&src, "x.json").expect_err(scenario);
        let report = err
            .reports
            .iter()
            .find(|r| r.source == "x.json")
            .unwrap_or_else(|| panic!("{scenario}: no report for x.json: {err}"));
        check(scenario, &report.problems, text, path, anchor, fragment);
    }
}

struct SetCase {
    scenario: &'static str,
    files: Vec<(&'static str, String)>,
    root: &'static str,
    /// The file the problem is in.
    file: &'static str,
    path: &'static str,
    anchor: &'static str,
    fragment: &'static str,
}

fn malformed_sets() -> Vec<SetCase> {
    let board_on_chip = |peripherals: &[&str]| hw(&["chip.json"], peripherals);
    vec![
        SetCase {
            scenario: "unknown mapping target",
            files: vec![
                ("chip.json", chip(&[GPIO0])),
                (
                    "board.json",
                    board_on_chip(&[r#"{"Name": "LED", "Type": "Gpio", "Mapping": "CHIP_GPIO9"}"#]),
                ),
            ],
            root: "board.json",
            file: "board.json",
            path: "Peripherals[0].Mapping",
            anchor: "\"CHIP_GPIO9\"",
            fragment: "unknown mapping target `CHIP_GPIO9`: not defined in any file `board.json` imports",
        },
        SetCase {
            scenario: "misspelt mapping target",
            files: vec![
                ("chip.json", chip(&[GPIO0])),
                (
                    "board.json",
                    board_on_chip(&[r#"{"Name": "LED", "Type": "Gpio", "Mapping": "CHIP_GPI0"}"#]),
                ),
            ],
            root: "board.json",
            file: "board.json",
            path: "Peripherals[0].Mapping",
            anchor: "\"CHIP_GPI0\"",
            fragment: "did you mean `CHIP_GPIO0`",
        },
        SetCase {
            scenario: "mapping into the same file",
            files: vec![(
                "board.json",
                chip(&[
                    GPIO0,
                    r#"{"Name": "LED", "Type": "Gpio", "Mapping": "CHIP_GPIO0"}"#,
                ]),
            )],
            root: "board.json",
            file: "board.json",
            path: "Peripherals[1].Mapping",
            anchor: "\"CHIP_GPIO0\"}",
            fragment: "is defined in this same file; a mapping points into an imported file",
        },
        SetCase {
            scenario: "mapping into a file not imported",
            files: vec![
                ("chip.json", chip(&[GPIO0])),
                (
                    "other.json",
                    hw(
                        &["chip.json"],
                        &[r#"{"Name": "LED", "Type": "Gpio", "Mapping": "CHIP_GPIO0"}"#],
                    ),
                ),
                (
                    "app.json",
                    hw(
                        &["chip.json", "other.json"],
                        &[r#"{"Name": "APP_LED", "Type": "Gpio", "Mapping": "LED"}"#],
                    ),
                ),
                (
                    "side.json",
                    hw(
                        &["chip.json"],
                        &[r#"{"Name": "SIDE", "Type": "Gpio", "Mapping": "LED"}"#],
                    ),
                ),
                ("top.json", hw(&["app.json", "side.json"], &[])),
            ],
            root: "top.json",
            file: "side.json",
            path: "Peripherals[0].Mapping",
            anchor: "\"LED\"",
            fragment: "is defined in `other.json`, which `side.json` does not import",
        },
        SetCase {
            scenario: "type mismatch along a mapping",
            files: vec![
                ("chip.json", chip(&[GPIO0])),
                (
                    "board.json",
                    board_on_chip(&[
                        r#"{"Name": "CONSOLE", "Type": "Uart", "Mapping": "CHIP_GPIO0"}"#,
                    ]),
                ),
            ],
            root: "board.json",
            file: "board.json",
            path: "Peripherals[0].Mapping",
            anchor: "\"CHIP_GPIO0\"",
            fragment: "type mismatch: `CONSOLE` is Uart but maps to `CHIP_GPIO0`, which is Gpio",
        },
        SetCase {
            scenario: "int mapped to a peripheral",
            files: vec![
                ("chip.json", chip(&[GPIO0])),
                (
                    "board.json",
                    board_on_chip(&[
                        r#"{"Name": "CHANNEL", "Type": "int", "Mapping": "CHIP_GPIO0"}"#,
                    ]),
                ),
            ],
            root: "board.json",
            file: "board.json",
            path: "Peripherals[0].Mapping",
            anchor: "\"CHIP_GPIO0\"",
            fragment: "is int but maps to `CHIP_GPIO0`, which is Gpio",
        },
        SetCase {
            scenario: "name defined twice across the set",
            files: vec![
                ("chip.json", chip(&[GPIO0])),
                (
                    "board.json",
                    board_on_chip(&[
                        r#"{"Name": "CHIP_GPIO0", "Type": "Gpio", "Mapping": "CHIP_GPIO0"}"#,
                    ]),
                ),
            ],
            root: "board.json",
            file: "board.json",
            path: "Peripherals[0].Name",
            anchor: "\"CHIP_GPIO0\", \"Type\"",
            fragment: "peripheral `CHIP_GPIO0` is already defined in `chip.json` at 5:14",
        },
        SetCase {
            scenario: "two chip peripherals with one type and value",
            files: vec![(
                "chip.json",
                chip(&[
                    GPIO0,
                    r#"{"Name": "CHIP_GPIO_ZERO", "Type": "Gpio", "AppManifestValue": 0}"#,
                ]),
            )],
            root: "chip.json",
            file: "chip.json",
            path: "Peripherals[1].AppManifestValue",
            anchor: "0}\n",
            fragment: "are both Gpio with AppManifestValue 0",
        },
        SetCase {
            scenario: "two chip peripherals with one value in different files",
            files: vec![
                (
                    "chip.json",
                    chip(&[r#"{"Name": "U0", "Type": "Uart", "AppManifestValue": "ISU0"}"#]),
                ),
                (
                    "more.json",
                    hw(
                        &["chip.json"],
                        &[r#"{"Name": "U0B", "Type": "Uart", "AppManifestValue": "ISU0"}"#],
                    ),
                ),
            ],
            root: "more.json",
            file: "more.json",
            path: "Peripherals[0].AppManifestValue",
            anchor: "\"ISU0\"",
            fragment: "`U0B` and `U0` (`chip.json` at",
        },
        SetCase {
            scenario: "import cycle",
            files: vec![
                ("a.json", hw(&["b.json"], &[])),
                ("b.json", hw(&["a.json"], &[])),
            ],
            root: "a.json",
            file: "b.json",
            path: "Imports[0].Path",
            anchor: "\"a.json\"",
            fragment: "import cycle: a.json -> b.json -> a.json",
        },
        SetCase {
            scenario: "file importing itself",
            files: vec![("a.json", hw(&["a.json"], &[]))],
            root: "a.json",
            file: "a.json",
            path: "Imports[0].Path",
            anchor: "\"a.json\"",
            fragment: "import cycle: a.json -> a.json",
        },
        SetCase {
            scenario: "longer cycle",
            files: vec![
                ("a.json", hw(&["b.json"], &[])),
                ("b.json", hw(&["c.json"], &[])),
                ("c.json", hw(&["chip.json", "b.json"], &[])),
                ("chip.json", chip(&[GPIO0])),
            ],
            root: "a.json",
            file: "c.json",
            path: "Imports[1].Path",
            anchor: "\"b.json\"",
            fragment: "import cycle: b.json -> c.json -> b.json",
        },
        SetCase {
            scenario: "missing import",
            files: vec![("board.json", hw(&["mt3620.json"], &[]))],
            root: "board.json",
            file: "board.json",
            path: "Imports[0].Path",
            anchor: "\"mt3620.json\"",
            fragment: "missing import: cannot find `mt3620.json`",
        },
        SetCase {
            scenario: "imports nested too deep",
            files: (0..10)
                .map(|i| {
                    let name: &'static str = Box::leak(format!("f{i}.json").into_boxed_str());
                    let next: &'static str = Box::leak(format!("f{}.json", i + 1).into_boxed_str());
                    (name, if i == 9 { chip(&[]) } else { hw(&[next], &[]) })
                })
                .collect(),
            root: "f0.json",
            file: "f7.json",
            path: "Imports[0].Path",
            anchor: "\"f8.json\"",
            fragment: "deeper than the limit of 8 files",
        },
        SetCase {
            scenario: "file too large",
            files: vec![
                ("board.json", hw(&["big.json"], &[])),
                (
                    "big.json",
                    format!("{}{}", chip(&[]), " ".repeat(600 * 1024)),
                ),
            ],
            root: "board.json",
            file: "board.json",
            path: "Imports[0].Path",
            anchor: "\"big.json\"",
            fragment: "larger than the limit of 524288 bytes",
        },
    ]
}

#[test]
fn malformed_sets_are_refused_naming_file_path_and_position() {
    let cases = malformed_sets();
    assert!(cases.len() >= 14);
    for case in &cases {
        let mut src = MemorySource::new();
        for (name, text) in &case.files {
            src.insert(name, text.as_str());
        }
        let err = load(&src, case.root).expect_err(case.scenario);
        let Some(report) = err.reports.iter().find(|r| r.source == case.file) else {
            panic!("{}: no report for {}: {err}", case.scenario, case.file);
        };
        let text = &case.files.iter().find(|(n, _)| *n == case.file).unwrap().1;
        check(
            case.scenario,
            &report.problems,
            text,
            case.path,
            case.anchor,
            case.fragment,
        );
        let shown = err.to_string();
        assert!(shown.contains(case.file), "{}: {shown}", case.scenario);
    }
}

#[test]
fn set_size_is_bounded() {
    let mut src = MemorySource::new();
    let names: Vec<String> = (0..40).map(|i| format!("f{i}.json")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    src.insert("top.json", hw(&refs[..16], &[]));
    for name in &names {
        src.insert(name, chip(&[]));
    }
    let limits = SetLimits {
        max_files: 10,
        ..SetLimits::default()
    };
    let err = HwdefSet::load(&src, None, &["top.json"], limits).unwrap_err();
    let messages: Vec<String> = err.errors().map(|(_, p)| p.message.clone()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("larger than the limit of 10 files")),
        "{messages:?}"
    );
}

#[test]
fn missing_root_is_reported_by_its_path() {
    let err = load(&MemorySource::new(), "nowhere.json").unwrap_err();
    assert_eq!(err.reports[0].source, "nowhere.json");
    assert!(
        err.to_string().contains("cannot find `nowhere.json`"),
        "{err}"
    );
}

#[test]
fn a_file_imported_twice_through_two_paths_is_one_file() {
    let src = MemorySource::new()
        .with("chip.json", chip(&[GPIO0]))
        .with(
            "left.json",
            hw(
                &["chip.json"],
                &[r#"{"Name": "L", "Type": "Gpio", "Mapping": "CHIP_GPIO0"}"#],
            ),
        )
        .with(
            "right.json",
            hw(
                &["chip.json"],
                &[r#"{"Name": "R", "Type": "Gpio", "Mapping": "CHIP_GPIO0"}"#],
            ),
        )
        .with("top.json", hw(&["left.json", "right.json"], &[]));
    let set = load(&src, "top.json").unwrap();
    assert_eq!(set.files().len(), 4);
    assert_eq!(
        set.resolve_name(PeripheralType::Gpio, "R").unwrap().chip,
        "CHIP_GPIO0"
    );
}

#[test]
fn every_problem_of_every_file_comes_in_one_pass() {
    let src = MemorySource::new()
        .with(
            "chip.json",
            chip(&[
                GPIO0,
                r#"{"Name": "X", "Type": "Can", "AppManifestValue": "C"}"#,
            ]),
        )
        .with(
            "board.json",
            hw(
                &["chip.json", "gone.json"],
                &[r#"{"Name": "LED", "Type": "Gpio", "Mapping": "NOPE", "Extra": 1}"#],
            ),
        );
    let err = load(&src, "board.json").unwrap_err();
    let mut found: Vec<(String, String)> = err
        .errors()
        .map(|(file, p)| (file.to_owned(), p.path.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("board.json".into(), "Imports[1].Path".into()),
            ("board.json".into(), "Peripherals[0].Extra".into()),
            ("chip.json".into(), "Peripherals[1].Type".into()),
        ],
        "{err}"
    );
}

#[test]
fn reading_never_panics_on_damaged_input() {
    let good = fixture("hwdef/mt3620_rdb_sample/sample_appliance.json");
    for cut in (0..good.len()).step_by(7) {
        let _ = HardwareDefinition::parse("x", &good[..cut]);
    }
    let mut damaged = good.clone();
    for i in (0..damaged.len()).step_by(13) {
        damaged[i] = damaged[i].wrapping_add(1);
        let _ = HardwareDefinition::parse("x", &damaged);
    }
}
