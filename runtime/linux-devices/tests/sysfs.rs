//! IIO ADC and sysfs PWM channels against a temporary tree laid out like `/sys` (regular
//! files stand in for the attributes): the right files, in the grant's order, open read-only
//! or write-only, and a PWM channel exported when its directory is missing.
#![allow(clippy::unwrap_used)]

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use warden_ipc::broker::{Access, Denial, ResourceRequest};
use warden_linux_devices::{EXPORT_WAIT, Roots, open};
use warden_policy::board::Backend;

fn roots(tree: &Path) -> Roots {
    Roots {
        dev: tree.join("dev"),
        sys: tree.join("sys"),
    }
}

fn touch(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Asserts that `fd` is the file at `path` (same inode) and open with `access` (`O_RDONLY`,
/// `O_WRONLY`), close-on-exec.
fn assert_is(fd: &OwnedFd, path: &Path, access: OFlag) {
    let opened = std::fs::File::from(fd.try_clone().unwrap())
        .metadata()
        .unwrap();
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(
        (opened.dev(), opened.ino()),
        (meta.dev(), meta.ino()),
        "{}",
        path.display()
    );
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap());
    assert_eq!(flags & OFlag::O_ACCMODE, access, "{}", path.display());
    let fd_flags = FdFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(fd_flags.contains(FdFlag::FD_CLOEXEC), "{}", path.display());
}

fn adc(channels: Vec<u32>) -> Backend {
    Backend::Adc {
        iio_device: "iio:device0".into(),
        channels,
        reference_millivolts: 1800,
        bits: 12,
    }
}

fn adc_request() -> ResourceRequest {
    ResourceRequest::Adc {
        name: "SAMPLE_ADC".into(),
    }
}

fn pwm(channels: Vec<u32>) -> Backend {
    Backend::Pwm {
        chip: "pwmchip0".into(),
        channels,
    }
}

fn pwm_request() -> ResourceRequest {
    ResourceRequest::Pwm {
        name: "SAMPLE_PWM".into(),
    }
}

const PWM_FILES: [&str; 4] = ["period", "duty_cycle", "polarity", "enable"];

/// A channel directory as the kernel makes it on export, put in place at once (built aside,
/// then renamed) so that no one sees it without its files.
fn make_channel(chip: &Path, channel: u32) {
    let staging = chip.join(format!(".staging{channel}"));
    for file in PWM_FILES {
        touch(&staging.join(file), "");
    }
    std::fs::rename(&staging, chip.join(format!("pwm{channel}"))).unwrap();
}

#[test]
fn adc_channels_are_their_raw_files_read_only_in_the_boards_order() {
    let tree = tempfile::tempdir().unwrap();
    let device = tree.path().join("sys/bus/iio/devices/iio:device0");
    for channel in [0, 1, 3] {
        touch(&device.join(format!("in_voltage{channel}_raw")), "100\n");
    }
    let (access, fds) = open(&adc(vec![3, 0]), &adc_request(), &roots(tree.path())).unwrap();
    assert_eq!(
        access,
        Access::IioAdc {
            channels: vec![3, 0],
            bits: 12,
            reference_microvolts: 1_800_000
        }
    );
    assert_eq!(fds.len(), access.descriptors());
    assert_is(&fds[0], &device.join("in_voltage3_raw"), OFlag::O_RDONLY);
    assert_is(&fds[1], &device.join("in_voltage0_raw"), OFlag::O_RDONLY);
}

#[test]
fn a_missing_adc_channel_names_its_file_and_errno() {
    let tree = tempfile::tempdir().unwrap();
    let device = tree.path().join("sys/bus/iio/devices/iio:device0");
    touch(&device.join("in_voltage0_raw"), "1\n");
    let denial = open(&adc(vec![0, 5]), &adc_request(), &roots(tree.path())).unwrap_err();
    assert_eq!(
        denial,
        Denial::Io(format!(
            "cannot open {}: ENOENT: No such file or directory",
            device.join("in_voltage5_raw").display()
        ))
    );
}

#[test]
fn pwm_channels_are_four_write_only_files_each_exported_when_missing() {
    let tree = tempfile::tempdir().unwrap();
    let chip = tree.path().join("sys/class/pwm/pwmchip0");
    touch(&chip.join("export"), "");
    make_channel(&chip, 0);
    // Channel 2 is not exported: a stand-in for the kernel makes its directory once `2` is
    // written to `export`.
    let kernel = {
        let chip = chip.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if std::fs::read_to_string(chip.join("export")).unwrap() == "2" {
                    make_channel(&chip, 2);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            false
        })
    };
    let (access, fds) = open(&pwm(vec![2, 0]), &pwm_request(), &roots(tree.path())).unwrap();
    assert!(kernel.join().unwrap(), "channel 2 was never exported");
    assert_eq!(
        access,
        Access::SysfsPwm {
            channels: vec![2, 0]
        }
    );
    assert_eq!(fds.len(), access.descriptors());
    let expected: Vec<PathBuf> = [2, 0]
        .iter()
        .flat_map(|c| PWM_FILES.map(|f| chip.join(format!("pwm{c}/{f}"))))
        .collect();
    for (fd, path) in fds.iter().zip(&expected) {
        assert_is(fd, path, OFlag::O_WRONLY);
    }
    // Channel 0 was there: only channel 2 was exported.
    assert_eq!(std::fs::read_to_string(chip.join("export")).unwrap(), "2");
}

#[test]
fn an_exported_channel_is_not_exported_again() {
    let tree = tempfile::tempdir().unwrap();
    let chip = tree.path().join("sys/class/pwm/pwmchip0");
    touch(&chip.join("export"), "");
    make_channel(&chip, 1);
    let (_, fds) = open(&pwm(vec![1]), &pwm_request(), &roots(tree.path())).unwrap();
    assert_eq!(fds.len(), 4);
    assert_eq!(std::fs::read_to_string(chip.join("export")).unwrap(), "");
}

#[test]
fn a_channel_that_never_appears_times_out_naming_it() {
    let tree = tempfile::tempdir().unwrap();
    let chip = tree.path().join("sys/class/pwm/pwmchip0");
    touch(&chip.join("export"), "");
    let started = Instant::now();
    let denial = open(&pwm(vec![3]), &pwm_request(), &roots(tree.path())).unwrap_err();
    assert!(started.elapsed() >= EXPORT_WAIT);
    let Denial::Io(text) = denial else {
        panic!("{denial:?}")
    };
    assert!(
        text.contains(&chip.join("pwm3").display().to_string()),
        "{text}"
    );
    assert!(text.contains("ETIMEDOUT"), "{text}");
    assert_eq!(std::fs::read_to_string(chip.join("export")).unwrap(), "3");
}

#[test]
fn a_missing_pwm_chip_names_its_export_file_and_errno() {
    let tree = tempfile::tempdir().unwrap();
    let denial = open(&pwm(vec![0]), &pwm_request(), &roots(tree.path())).unwrap_err();
    assert_eq!(
        denial,
        Denial::Io(format!(
            "cannot export channel 0 by writing to {}: ENOENT: No such file or directory",
            tree.path().join("sys/class/pwm/pwmchip0/export").display()
        ))
    );
}

#[test]
fn a_pwm_asked_for_as_an_adc_is_an_unknown_name() {
    let tree = tempfile::tempdir().unwrap();
    let denial = open(&pwm(vec![0]), &adc_request(), &roots(tree.path())).unwrap_err();
    assert!(matches!(denial, Denial::UnknownName(_)), "{denial:?}");
}
