//! Inter-core channels on a Linux board: an rpmsg endpoint of the real-time core's rpmsg bus,
//! as a character device whose descriptor carries one message per `read` and per `write`
//! (`docs/formats/intercore.md`).
//!
//! [`create_endpoint`] does it in five steps, each failure naming its path and errno:
//!
//! 1. check the arguments: the name is 1 to [`MAX_NAME_LEN`] bytes of `[A-Za-z0-9._-]`, neither
//!    address is [`RPMSG_ADDR_ANY`], the control device is called `rpmsg_ctrlN`;
//! 2. open `<dev>/rpmsg_ctrlN` and note which endpoint devices (`<sys>/class/rpmsg/rpmsgM`)
//!    of it already have this name and these addresses (left from earlier opens);
//! 3. `RPMSG_CREATE_EPT_IOCTL` with the name and both addresses: the kernel makes a new device
//!    `rpmsgM` under the control device;
//! 4. find it ([`find_endpoint`]): the one device that is a child of this control device,
//!    whose sysfs `name`, `src` and `dst` are ours, and that was not noted in step 2;
//! 5. open `<dev>/rpmsgM` read-write, close-on-exec ([`open_endpoint`]), after checking that
//!    the node is the character device sysfs names (`dev`, `MAJOR:MINOR`).
//!
//! The kernel makes the sysfs entry and (with devtmpfs) the node before the ioctl returns;
//! steps 4 and 5 look again, for at most [`ENDPOINT_WAIT`], only for a node made later by
//! udev or a slow devtmpfs.
//!
//! What the kernel does (`drivers/rpmsg/rpmsg_char.c`, `rpmsg_ctrl.c`): the rpmsg endpoint —
//! the address the firmware sends to — exists only while the device is open. Opening creates
//! it (a second open fails: `EBUSY` on current kernels, `EINVAL` on older ones, where the
//! second endpoint cannot take the same address), and the last close of the descriptor
//! destroys it, on every kernel since the driver's first version. The *device* `rpmsgM` stays
//! until `RPMSG_DESTROY_EPT_IOCTL` on an open descriptor ([`destroy_endpoint`]) or until the
//! control device goes (the core stops). This module relies on the close for the endpoint
//! and on nothing for the device: step 4 passes over devices that matched before, so a
//! leftover one with the same name and addresses never confuses a later open. The supervisor
//! removes the device, and ends the endpoint at once for the worker too, by keeping a copy of
//! the descriptor and calling [`destroy_endpoint`] on it when the channel closes.
//!
//! Current kernels send each write to the endpoint's `dst` (`rpmsg_sendto`). Older ones
//! (5.10's `rpmsg_char.c`, read for this module) send it to the destination of the rpmsg
//! device behind the control device instead, ignoring `dst`; a board needs the former.
//!
//! Addresses are explicit. With [`RPMSG_ADDR_ANY`] as `src` the kernel picks the address only
//! at open, and sysfs keeps showing `src` as requested (`-1`), so neither the device nor the
//! address could be told apart; with `dst` as `RPMSG_ADDR_ANY` the virtio rpmsg bus refuses
//! every write (`EINVAL`).

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use warden_ipc::broker::Denial;

use crate::{describe, sys};

/// `RPMSG_ADDR_ANY`: "any address", refused here for both `src` and `dst`.
pub const RPMSG_ADDR_ANY: u32 = 0xFFFF_FFFF;

/// The longest endpoint name, in bytes (`RPMSG_NAME_SIZE` less the NUL).
pub const MAX_NAME_LEN: usize = sys::RPMSG_NAME_SIZE - 1;

/// How long [`create_endpoint`] looks for the new device and its node after the ioctl.
pub const ENDPOINT_WAIT: Duration = Duration::from_millis(500);

/// What failed while opening an rpmsg endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpmsgError {
    /// The endpoint name is empty, too long or has a byte outside `[A-Za-z0-9._-]`.
    #[error("endpoint name {name:?} is not 1 to 31 bytes of letters, digits, '.', '_' and '-'")]
    InvalidName { name: String },
    /// A device name that is not `rpmsg_ctrlN` (control) or `rpmsgN` (endpoint).
    #[error("{name:?} is not an rpmsg {what} device name")]
    InvalidDevice { name: String, what: &'static str },
    /// `src` or `dst` is [`RPMSG_ADDR_ANY`].
    #[error(
        "endpoint {which} address is RPMSG_ADDR_ANY (0xffffffff); both addresses must be explicit"
    )]
    AnyAddress { which: &'static str },
    /// A device node could not be opened or looked at.
    #[error("cannot {doing} {}: {}", .path.display(), describe(.source))]
    Node {
        doing: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// An ioctl failed.
    #[error("cannot {what} {} ({ioctl}): {}", .path.display(), describe(.source))]
    Ioctl {
        what: String,
        path: PathBuf,
        ioctl: &'static str,
        source: io::Error,
    },
    /// A sysfs directory or attribute could not be read.
    #[error("cannot {doing} {}: {}", .path.display(), describe(.source))]
    Sysfs {
        doing: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A sysfs attribute does not hold what the kernel writes there.
    #[error("{} reads {text:?}, not {expected}", .path.display())]
    BadAttribute {
        path: PathBuf,
        text: String,
        expected: &'static str,
    },
    /// No new endpoint device of the control device has the name and addresses.
    #[error(
        "no new endpoint device of {ctrl} named {name:?} with src {src:#x} and dst {dst:#x} in {}",
        .class.display()
    )]
    NotFound {
        class: PathBuf,
        ctrl: String,
        name: String,
        src: u32,
        dst: u32,
    },
    /// More than one new endpoint device matches, so none can be chosen.
    #[error(
        "{} new endpoint devices of {ctrl} are named {name:?} with src {src:#x} and dst {dst:#x}: {}",
        .devices.len(),
        .devices.join(", ")
    )]
    Ambiguous {
        ctrl: String,
        name: String,
        src: u32,
        dst: u32,
        devices: Vec<String>,
    },
    /// The node under `/dev` is not the device sysfs describes.
    #[error("{} is {found}, but {} says {expected}", .path.display(), .attribute.display())]
    WrongNode {
        path: PathBuf,
        found: String,
        attribute: PathBuf,
        expected: String,
    },
}

impl From<RpmsgError> for Denial {
    /// Bad arguments are `invalid-argument`; everything the device or the kernel answered is
    /// `io`.
    fn from(error: RpmsgError) -> Denial {
        match error {
            RpmsgError::InvalidName { .. }
            | RpmsgError::InvalidDevice { .. }
            | RpmsgError::AnyAddress { .. } => Denial::InvalidArgument(error.to_string()),
            _ => Denial::Io(error.to_string()),
        }
    }
}

/// Creates an rpmsg endpoint named `name` from local address `src` to the firmware's address
/// `dst` through the control device `ctrl` (`"rpmsg_ctrl0"`), and returns its device opened
/// read-write and close-on-exec: each `read` is one message, each `write` sends one.
///
/// `dev_root` and `sysfs_root` are `/dev` and `/sys` on a device. See the module
/// documentation for the steps and what the kernel does when the descriptor is closed.
pub fn create_endpoint(
    dev_root: &Path,
    sysfs_root: &Path,
    ctrl: &str,
    name: &str,
    src: u32,
    dst: u32,
) -> Result<OwnedFd, RpmsgError> {
    check_name(name)?;
    check_device(ctrl, "control", "rpmsg_ctrl")?;
    for (which, address) in [("src", src), ("dst", dst)] {
        if address == RPMSG_ADDR_ANY {
            return Err(RpmsgError::AnyAddress { which });
        }
    }

    let ctrl_path = dev_root.join(ctrl);
    let control: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ctrl_path)
        .map(OwnedFd::from)
        .map_err(|source| RpmsgError::Node {
            doing: "open",
            path: ctrl_path.clone(),
            source,
        })?;
    // Before the ioctl (so that a wrong root fails before anything is created): the devices
    // that already match are not the one about to be made.
    let existing = matching_endpoints(sysfs_root, ctrl, name, src, dst)?;

    let info = sys::RpmsgEndpointInfo::new(name, src, dst);
    sys::rpmsg_create_endpoint(control.as_fd(), &info).map_err(|source| RpmsgError::Ioctl {
        what: format!("create endpoint {name:?} (src {src:#x}, dst {dst:#x}) through"),
        path: ctrl_path.clone(),
        ioctl: "RPMSG_CREATE_EPT_IOCTL",
        source,
    })?;
    drop(control);

    let deadline = Instant::now() + ENDPOINT_WAIT;
    let mut pause = Duration::from_millis(2);
    let device = loop {
        match find_endpoint(sysfs_root, ctrl, name, src, dst, &existing) {
            Err(RpmsgError::NotFound { .. }) if Instant::now() < deadline => {
                pause = wait(pause, deadline);
            }
            found => break found?,
        }
    };
    loop {
        match open_endpoint(dev_root, sysfs_root, &device) {
            Err(RpmsgError::Node { source, .. })
                if source.kind() == io::ErrorKind::NotFound && Instant::now() < deadline =>
            {
                pause = wait(pause, deadline);
            }
            opened => return opened,
        }
    }
}

/// Sleeps `pause` (no later than `deadline`) and returns the next, longer pause: 2, 4, 8 …
/// 64 ms, so a device that is there at once costs nothing and a slow one about a dozen looks.
fn wait(pause: Duration, deadline: Instant) -> Duration {
    std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
    (pause * 2).min(Duration::from_millis(64))
}

/// Removes the endpoint device whose open descriptor is `endpoint` (`RPMSG_DESTROY_EPT_IOCTL`)
/// and ends its endpoint: a worker holding another copy of the descriptor then reads and
/// writes `EPIPE`. For the supervisor's own copy, when the channel closes.
pub fn destroy_endpoint(endpoint: BorrowedFd<'_>) -> Result<(), RpmsgError> {
    sys::rpmsg_destroy_endpoint(endpoint).map_err(|source| RpmsgError::Ioctl {
        what: "destroy endpoint".into(),
        path: descriptor_path(endpoint),
        ioctl: "RPMSG_DESTROY_EPT_IOCTL",
        source,
    })
}

/// What `/proc/self/fd/N` links to, for messages; `descriptor N` where it cannot be read.
fn descriptor_path(fd: BorrowedFd<'_>) -> PathBuf {
    let raw = fd.as_raw_fd();
    std::fs::read_link(format!("/proc/self/fd/{raw}"))
        .unwrap_or_else(|_| PathBuf::from(format!("descriptor {raw}")))
}

/// The endpoint device (`rpmsgM`) of the control device `ctrl` named `name` with addresses
/// `src` and `dst` that is not in `existing`: exactly one, or [`RpmsgError::NotFound`] /
/// [`RpmsgError::Ambiguous`].
///
/// [`create_endpoint`] passes the [`matching_endpoints`] from before its ioctl, so a device
/// left from an earlier open with the same name and addresses is passed over. Only those are
/// remembered, not every device: the kernel gives a new device the lowest free number, which
/// may be that of a device destroyed meanwhile (another channel closing). The one race left —
/// a device with the same name and addresses destroyed between the two looks and its number
/// given to the new one — needs the caller to reuse a channel's addresses while still
/// destroying its previous endpoint, which the supervisor must not do.
pub fn find_endpoint(
    sysfs_root: &Path,
    ctrl: &str,
    name: &str,
    src: u32,
    dst: u32,
    existing: &BTreeSet<String>,
) -> Result<String, RpmsgError> {
    let mut found: Vec<String> = matching_endpoints(sysfs_root, ctrl, name, src, dst)?
        .into_iter()
        .filter(|device| !existing.contains(device))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(RpmsgError::NotFound {
            class: sysfs_root.join("class/rpmsg"),
            ctrl: ctrl.to_owned(),
            name: name.to_owned(),
            src,
            dst,
        }),
        _ => Err(RpmsgError::Ambiguous {
            ctrl: ctrl.to_owned(),
            name: name.to_owned(),
            src,
            dst,
            devices: found,
        }),
    }
}

/// The endpoint devices (`rpmsgN` in `<sysfs_root>/class/rpmsg`) of the control device `ctrl`
/// named `name` with addresses `src` and `dst`.
///
/// A device is the control device's when its `device` link resolves to the control device's
/// sysfs directory (the kernel makes each endpoint device a child of the control device it
/// was created through). `src` and `dst` are read as the kernel prints them (`%d`, so
/// addresses above `0x7fffffff` are negative); `0x…` is accepted too.
pub fn matching_endpoints(
    sysfs_root: &Path,
    ctrl: &str,
    name: &str,
    src: u32,
    dst: u32,
) -> Result<BTreeSet<String>, RpmsgError> {
    check_device(ctrl, "control", "rpmsg_ctrl")?;
    let parent = control_dir(sysfs_root, ctrl)?;
    let class = sysfs_root.join("class/rpmsg");
    let list_error = |source| RpmsgError::Sysfs {
        doing: "list",
        path: class.clone(),
        source,
    };
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&class).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let Some(device) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // Endpoint devices only, not the `rpmsg_ctrlN` control devices.
        if !is_device_name(&device, "rpmsg") {
            continue;
        }
        let dir = class.join(&device);
        let link = dir.join("device");
        match std::fs::canonicalize(&link) {
            Ok(resolved) if resolved == parent => {}
            Ok(_) => continue,
            // Gone since it was listed, or no parent: not ours.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RpmsgError::Sysfs {
                    doing: "resolve",
                    path: link,
                    source,
                });
            }
        }
        if read_attribute(&dir.join("name"))?.as_deref() == Some(name)
            && read_address(&dir.join("src"))? == Some(src)
            && read_address(&dir.join("dst"))? == Some(dst)
        {
            found.insert(device);
        }
    }
    Ok(found)
}

/// Opens the endpoint device `device` (`"rpmsg3"`) at `<dev_root>/<device>` read-write and
/// close-on-exec, after checking that the node is the character device
/// `<sysfs_root>/class/rpmsg/<device>/dev` names (before opening, since opening an endpoint
/// device creates its endpoint, and again on the opened descriptor).
pub fn open_endpoint(
    dev_root: &Path,
    sysfs_root: &Path,
    device: &str,
) -> Result<OwnedFd, RpmsgError> {
    check_device(device, "endpoint", "rpmsg")?;
    let attribute = sysfs_root.join("class/rpmsg").join(device).join("dev");
    let expected = match read_attribute(&attribute)? {
        Some(text) => parse_device_number(&text).ok_or_else(|| RpmsgError::BadAttribute {
            path: attribute.clone(),
            text,
            expected: "a device number MAJOR:MINOR",
        })?,
        None => {
            return Err(RpmsgError::Sysfs {
                doing: "read",
                path: attribute,
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
    };
    let path = dev_root.join(device);
    let node_error = |doing, source| RpmsgError::Node {
        doing,
        path: path.clone(),
        source,
    };
    let check = |meta: &std::fs::Metadata| {
        let found = meta
            .file_type()
            .is_char_device()
            .then(|| device_number(meta.rdev()));
        if found == Some(expected) {
            Ok(())
        } else {
            Err(RpmsgError::WrongNode {
                path: path.clone(),
                found: found.map_or_else(
                    || "not a character device".to_owned(),
                    |(major, minor)| format!("device {major}:{minor}"),
                ),
                attribute: attribute.clone(),
                expected: format!("{}:{}", expected.0, expected.1),
            })
        }
    };
    check(&std::fs::metadata(&path).map_err(|e| node_error("look at", e))?)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| node_error("open", e))?;
    check(&file.metadata().map_err(|e| node_error("look at", e))?)?;
    Ok(OwnedFd::from(file))
}

/// `<sysfs_root>/class/rpmsg/<ctrl>` resolved: the directory endpoint devices' `device` links
/// point to.
fn control_dir(sysfs_root: &Path, ctrl: &str) -> Result<PathBuf, RpmsgError> {
    let dir = sysfs_root.join("class/rpmsg").join(ctrl);
    std::fs::canonicalize(&dir).map_err(|source| RpmsgError::Sysfs {
        doing: "resolve",
        path: dir,
        source,
    })
}

/// A sysfs attribute's text without its final newline; `None` if it does not exist (the
/// device went away, or is not an endpoint device).
fn read_attribute(path: &Path) -> Result<Option<String>, RpmsgError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RpmsgError::Sysfs {
            doing: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// An address attribute (`src`, `dst`), as [`read_attribute`].
fn read_address(path: &Path) -> Result<Option<u32>, RpmsgError> {
    match read_attribute(path)? {
        Some(text) => match parse_address(&text) {
            Some(address) => Ok(Some(address)),
            None => Err(RpmsgError::BadAttribute {
                path: path.to_owned(),
                text,
                expected: "an rpmsg address",
            }),
        },
        None => Ok(None),
    }
}

/// An address as rpmsg_char prints it (`%d` of a `u32`: `4096`, `-1`), or as `0x…`.
fn parse_address(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    let value: i64 = text.parse().ok()?;
    u32::try_from(value)
        .ok()
        .or_else(|| i32::try_from(value).ok().map(i32::cast_unsigned))
}

/// `MAJOR:MINOR`, as the `dev` attribute of every device with a node.
fn parse_device_number(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A `st_rdev` as (major, minor).
fn device_number(rdev: u64) -> (u64, u64) {
    (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev))
}

/// `name` with `prefix` followed by a decimal number (`rpmsg3`, `rpmsg_ctrl0`).
fn is_device_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
}

fn check_device(name: &str, what: &'static str, prefix: &str) -> Result<(), RpmsgError> {
    if is_device_name(name, prefix) {
        Ok(())
    } else {
        Err(RpmsgError::InvalidDevice {
            name: name.to_owned(),
            what,
        })
    }
}

/// An endpoint name: 1 to [`MAX_NAME_LEN`] bytes of `[A-Za-z0-9._-]` (the kernel takes any 31
/// bytes; this keeps the name printable in sysfs and in messages).
pub fn check_name(name: &str) -> Result<(), RpmsgError> {
    let plain = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain {
        Ok(())
    } else {
        Err(RpmsgError::InvalidName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_as_the_kernel_prints_them() {
        assert_eq!(parse_address("4096"), Some(0x1000));
        assert_eq!(parse_address("1024"), Some(0x400));
        assert_eq!(parse_address("-1"), Some(RPMSG_ADDR_ANY));
        assert_eq!(parse_address("-2147483648"), Some(0x8000_0000));
        assert_eq!(parse_address("4294967295"), Some(RPMSG_ADDR_ANY));
        assert_eq!(parse_address("0x1000"), Some(0x1000));
        for bad in ["", "x", "0x", "4294967296", "-2147483649", " 1", "1 "] {
            assert_eq!(parse_address(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn device_names_are_a_prefix_and_a_number() {
        assert!(is_device_name("rpmsg0", "rpmsg"));
        assert!(is_device_name("rpmsg123", "rpmsg"));
        assert!(is_device_name("rpmsg_ctrl0", "rpmsg_ctrl"));
        for bad in ["rpmsg", "rpmsg_ctrl0", "rpmsg1a", "../rpmsg1", "rpmsg-1"] {
            assert!(!is_device_name(bad, "rpmsg"), "{bad:?}");
        }
        assert_eq!(parse_device_number("249:3"), Some((249, 3)));
        assert_eq!(parse_device_number("249"), None);
    }

    #[test]
    fn argument_errors_are_invalid_arguments_and_the_rest_io() {
        let denial = Denial::from(RpmsgError::AnyAddress { which: "src" });
        assert!(matches!(denial, Denial::InvalidArgument(_)), "{denial:?}");
        let denial = Denial::from(RpmsgError::Node {
            doing: "open",
            path: "/dev/rpmsg_ctrl9".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        });
        assert_eq!(
            denial,
            Denial::Io("cannot open /dev/rpmsg_ctrl9: ENOENT: No such file or directory".into())
        );
    }
}
