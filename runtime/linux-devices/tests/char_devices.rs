//! GPIO, I2C and SPI where no such hardware exists (no gpio-sim either): the paths the grant
//! opens, and every way it fails — a missing node is `io` naming it and the errno; a node of
//! another kind (`/dev/null` under the device's name, in a temporary `/dev`) fails at the
//! first ioctl, named; a request of the wrong kind is `unknown-name`. The ioctls' layouts and
//! numbers are pinned by the unit tests of `src/sys.rs`.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use warden_ipc::broker::{Denial, GpioMode, ResourceRequest};
use warden_linux_devices::{Roots, open};
use warden_policy::board::{Backend, Level};

fn gpio(chip: &str, line: u32) -> Backend {
    Backend::Gpio {
        chip: chip.into(),
        line,
        active_low: false,
    }
}

fn gpio_request(mode: GpioMode) -> ResourceRequest {
    ResourceRequest::Gpio {
        name: "SAMPLE_LED".into(),
        mode,
    }
}

fn i2c_request() -> ResourceRequest {
    ResourceRequest::I2c {
        name: "SAMPLE_I2C".into(),
    }
}

fn spi_request() -> ResourceRequest {
    ResourceRequest::Spi {
        name: "SAMPLE_SPI".into(),
    }
}

fn spi(mode: Option<u8>) -> Backend {
    Backend::Spi {
        bus: 0,
        chip_select: 1,
        max_speed_hz: Some(1_000_000),
        mode,
    }
}

/// A temporary `/dev` where `names` are `/dev/null`: character devices that are not the
/// device their name says.
fn fake_dev(names: &[&str]) -> (tempfile::TempDir, Roots) {
    let tree = tempfile::tempdir().unwrap();
    let dev = tree.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    for name in names {
        std::os::unix::fs::symlink("/dev/null", dev.join(name)).unwrap();
    }
    let roots = Roots {
        dev,
        sys: tree.path().join("sys"),
    };
    (tree, roots)
}

fn io_text(result: Result<impl std::fmt::Debug, Denial>) -> String {
    match result {
        Err(Denial::Io(text)) => text,
        other => panic!("expected an io denial, got {other:?}"),
    }
}

#[test]
fn a_missing_gpio_chip_is_an_io_denial_naming_it() {
    assert!(!Path::new("/dev/gpiochip9").exists());
    let denial = open(
        &gpio("gpiochip9", 17),
        &gpio_request(GpioMode::Output { initial_high: true }),
        &Roots::default(),
    )
    .unwrap_err();
    assert_eq!(
        denial,
        Denial::Io("cannot open /dev/gpiochip9: ENOENT: No such file or directory".into())
    );
}

#[test]
fn a_chip_that_is_not_a_gpio_chip_fails_at_the_line_request() {
    let (_tree, roots) = fake_dev(&["gpiochip0"]);
    for mode in [
        GpioMode::Input,
        GpioMode::InOut,
        GpioMode::Output {
            initial_high: false,
        },
    ] {
        let text = io_text(open(&gpio("gpiochip0", 5), &gpio_request(mode), &roots));
        let chip = roots.dev.join("gpiochip0");
        let expected = format!(
            "cannot request line 5 of {} (GPIO_V2_GET_LINE_IOCTL): ENOTTY: ",
            chip.display()
        );
        assert!(text.starts_with(&expected), "{text}");
    }
}

#[test]
fn an_i2c_bus_is_opened_at_dev_i2c_n_and_checked() {
    let denial = open(
        &Backend::I2c {
            bus: 7,
            speed_hz: Some(400_000),
        },
        &i2c_request(),
        &Roots::default(),
    )
    .unwrap_err();
    assert_eq!(
        denial,
        Denial::Io("cannot open /dev/i2c-7: ENOENT: No such file or directory".into())
    );
    let (_tree, roots) = fake_dev(&["i2c-1"]);
    let text = io_text(open(
        &Backend::I2c {
            bus: 1,
            speed_hz: None,
        },
        &i2c_request(),
        &roots,
    ));
    assert!(text.contains("/dev/i2c-1 (I2C_FUNCS): ENOTTY"), "{text}");
}

#[test]
fn a_spidev_is_opened_at_dev_spidev_b_c_and_set_up() {
    let denial = open(&spi(Some(0)), &spi_request(), &Roots::default()).unwrap_err();
    assert_eq!(
        denial,
        Denial::Io("cannot open /dev/spidev0.1: ENOENT: No such file or directory".into())
    );
    let (_tree, roots) = fake_dev(&["spidev0.1"]);
    // With a mode, the device's mode word is read first (to keep its other bits) …
    let text = io_text(open(&spi(Some(3)), &spi_request(), &roots));
    assert!(
        text.contains("/dev/spidev0.1 (SPI_IOC_RD_MODE32): ENOTTY"),
        "{text}"
    );
    // … without, the word size is the first setting.
    let text = io_text(open(&spi(None), &spi_request(), &roots));
    assert!(
        text.contains("/dev/spidev0.1 (SPI_IOC_WR_BITS_PER_WORD): ENOTTY"),
        "{text}"
    );
}

#[test]
fn board_values_no_device_takes_are_invalid_arguments() {
    let (_tree, roots) = fake_dev(&["spidev0.1"]);
    let denial = open(&spi(Some(4)), &spi_request(), &roots).unwrap_err();
    assert!(
        matches!(&denial, Denial::InvalidArgument(t) if t.contains("SPI mode 4")),
        "{denial:?}"
    );
    let denial = open(
        &gpio("../gpiochip0", 1),
        &gpio_request(GpioMode::Input),
        &roots,
    )
    .unwrap_err();
    assert!(matches!(denial, Denial::InvalidArgument(_)), "{denial:?}");
}

#[test]
fn a_request_of_another_kind_is_an_unknown_name() {
    let (_tree, roots) = fake_dev(&["gpiochip0", "i2c-0", "spidev0.1"]);
    let cases = [
        (gpio("gpiochip0", 1), i2c_request()),
        (
            Backend::I2c {
                bus: 0,
                speed_hz: None,
            },
            spi_request(),
        ),
        (spi(None), gpio_request(GpioMode::Input)),
        // Not this crate's: the simulated board and the real-time core serve these.
        (
            Backend::SimGpio {
                line: Some(0),
                initial: Level::Low,
            },
            gpio_request(GpioMode::Input),
        ),
        (
            Backend::RealTimeCoreOnly { core: None },
            gpio_request(GpioMode::Input),
        ),
    ];
    for (backend, request) in cases {
        let denial = open(&backend, &request, &roots).unwrap_err();
        assert!(
            matches!(&denial, Denial::UnknownName(t) if t.contains(backend.key())),
            "{backend:?}: {denial:?}"
        );
    }
}
