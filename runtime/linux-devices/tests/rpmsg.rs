//! rpmsg endpoints where no rpmsg bus exists (no remote processor, no `rpmsg_char` here): the
//! discovery and the open run for real against a temporary tree laid out like `/sys` and
//! `/dev` (`/dev/null` stands in for the endpoint's node), and every way [`create_endpoint`]
//! fails before or at the ioctl: bad arguments, a missing control device, a control device of
//! another kind (`ENOTTY`). The ioctl numbers and `struct rpmsg_endpoint_info` are pinned by
//! the unit tests of `src/sys.rs`. The successful ioctl needs a board.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use warden_linux_devices::rpmsg::{
    MAX_NAME_LEN, RPMSG_ADDR_ANY, RpmsgError, check_name, create_endpoint, destroy_endpoint,
    find_endpoint, matching_endpoints, open_endpoint,
};

const NAME: &str = "warden-intercore";
const SRC: u32 = 0x1000;
const DST: u32 = 0x400;

/// A temporary `/dev` and `/sys`, the latter as the kernel lays it out: control devices
/// `rpmsg_ctrl0` and `rpmsg_ctrl1` under their virtio rpmsg devices, each endpoint device a
/// directory under its control device with `name`, `src`, `dst`, `dev` and a `device` link to
/// the control device, and `class/rpmsg/*` links to all of them.
struct Tree {
    _dir: tempfile::TempDir,
    dev: PathBuf,
    sys: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("dev");
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(sys.join("class/rpmsg")).unwrap();
        let tree = Tree {
            _dir: dir,
            dev,
            sys,
        };
        for ctrl in 0..2 {
            let path = tree.control_path(ctrl);
            std::fs::create_dir_all(&path).unwrap();
            tree.link_class(&format!("rpmsg_ctrl{ctrl}"), &path);
        }
        tree
    }

    fn control_path(&self, ctrl: u32) -> PathBuf {
        self.sys.join(format!(
            "devices/platform/m4/remoteproc/remoteproc0/virtio{ctrl}/virtio{ctrl}.rpmsg_ctrl.0.0/rpmsg/rpmsg_ctrl{ctrl}"
        ))
    }

    fn link_class(&self, name: &str, target: &Path) {
        let link = self.sys.join("class/rpmsg").join(name);
        let relative = Path::new("../..").join(target.strip_prefix(&self.sys).unwrap());
        symlink(relative, link).unwrap();
    }

    /// Endpoint device `rpmsg<n>` of `rpmsg_ctrl<ctrl>`, its addresses printed as the kernel
    /// does (`%d`).
    fn endpoint(&self, n: u32, ctrl: u32, name: &str, src: u32, dst: u32) -> PathBuf {
        self.endpoint_raw(
            n,
            ctrl,
            name,
            &src.cast_signed().to_string(),
            &dst.cast_signed().to_string(),
        )
    }

    fn endpoint_raw(&self, n: u32, ctrl: u32, name: &str, src: &str, dst: &str) -> PathBuf {
        let dir = self.control_path(ctrl).join(format!("rpmsg{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(dir.join("src"), format!("{src}\n")).unwrap();
        std::fs::write(dir.join("dst"), format!("{dst}\n")).unwrap();
        std::fs::write(dir.join("dev"), format!("249:{n}\n")).unwrap();
        symlink("..", dir.join("device")).unwrap();
        self.link_class(&format!("rpmsg{n}"), &dir);
        dir
    }

    fn find(&self, existing: &[&str]) -> Result<String, RpmsgError> {
        let existing: BTreeSet<String> = existing.iter().map(|s| (*s).to_owned()).collect();
        find_endpoint(&self.sys, "rpmsg_ctrl0", NAME, SRC, DST, &existing)
    }
}

fn none() -> &'static [&'static str] {
    &[]
}

#[test]
fn the_one_endpoint_with_the_name_and_both_addresses_is_found() {
    let tree = Tree::new();
    tree.endpoint(0, 0, "rpmsg-tty", SRC, DST);
    tree.endpoint(1, 0, NAME, SRC, DST);
    tree.endpoint(2, 0, NAME, SRC + 1, DST);
    tree.endpoint(3, 0, NAME, SRC, DST + 1);
    tree.endpoint(4, 0, "warden-intercorf", SRC, DST);
    assert_eq!(tree.find(none()).unwrap(), "rpmsg1");
    assert_eq!(
        matching_endpoints(&tree.sys, "rpmsg_ctrl0", NAME, SRC, DST).unwrap(),
        BTreeSet::from(["rpmsg1".to_owned()])
    );
}

#[test]
fn no_matching_endpoint_is_not_found_naming_what_was_looked_for() {
    let tree = Tree::new();
    tree.endpoint(0, 0, "rpmsg-tty", SRC, DST);
    let error = tree.find(none()).unwrap_err();
    assert!(matches!(error, RpmsgError::NotFound { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "no new endpoint device of rpmsg_ctrl0 named \"warden-intercore\" with src 0x1000 and dst 0x400 in {}",
            tree.sys.join("class/rpmsg").display()
        )
    );
}

#[test]
fn two_matching_endpoints_are_refused_naming_both() {
    let tree = Tree::new();
    tree.endpoint(1, 0, NAME, SRC, DST);
    tree.endpoint(2, 0, NAME, SRC, DST);
    let error = tree.find(none()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "2 new endpoint devices of rpmsg_ctrl0 are named \"warden-intercore\" with src 0x1000 and dst 0x400: rpmsg1, rpmsg2"
    );
}

#[test]
fn a_device_left_from_an_earlier_open_is_not_the_new_one() {
    // The kernel keeps an endpoint device after its descriptor is closed; the devices that
    // existed before the ioctl are passed over.
    let tree = Tree::new();
    tree.endpoint(1, 0, NAME, SRC, DST);
    tree.endpoint(2, 0, NAME, SRC, DST);
    assert_eq!(tree.find(&["rpmsg1"]).unwrap(), "rpmsg2");
    assert!(matches!(
        tree.find(&["rpmsg1", "rpmsg2"]),
        Err(RpmsgError::NotFound { .. })
    ));
}

#[test]
fn an_endpoint_of_another_control_device_is_not_ours() {
    let tree = Tree::new();
    tree.endpoint(5, 1, NAME, SRC, DST);
    assert!(matches!(
        tree.find(none()),
        Err(RpmsgError::NotFound { .. })
    ));
    let existing = BTreeSet::new();
    assert_eq!(
        find_endpoint(&tree.sys, "rpmsg_ctrl1", NAME, SRC, DST, &existing).unwrap(),
        "rpmsg5"
    );
    // A device without a parent link (as an rpmsg-raw channel's own device may look from
    // here) is skipped, not an error.
    let orphan = tree.endpoint(6, 0, NAME, SRC, DST);
    std::fs::remove_file(orphan.join("device")).unwrap();
    assert!(matches!(
        tree.find(none()),
        Err(RpmsgError::NotFound { .. })
    ));
}

#[test]
fn addresses_above_i32_max_match_as_the_kernel_prints_them() {
    let tree = Tree::new();
    let high = 0x8000_1000;
    tree.endpoint(1, 0, NAME, high, DST);
    assert_eq!(
        std::fs::read_to_string(tree.sys.join("class/rpmsg/rpmsg1/src")).unwrap(),
        "-2147479552\n"
    );
    let existing = BTreeSet::new();
    assert_eq!(
        find_endpoint(&tree.sys, "rpmsg_ctrl0", NAME, high, DST, &existing).unwrap(),
        "rpmsg1"
    );
    // `0x…` (as the rpmsg bus's own devices print theirs) is read too.
    tree.endpoint_raw(2, 0, NAME, "0x1000", "0x400");
    assert_eq!(tree.find(none()).unwrap(), "rpmsg2");
}

#[test]
fn an_unreadable_address_is_an_error_naming_the_attribute() {
    let tree = Tree::new();
    tree.endpoint_raw(1, 0, NAME, "four thousand", "1024");
    let error = tree.find(none()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{} reads \"four thousand\", not an rpmsg address",
            tree.sys.join("class/rpmsg/rpmsg1/src").display()
        )
    );
}

#[test]
fn a_missing_control_device_in_sysfs_is_named() {
    let tree = Tree::new();
    let existing = BTreeSet::new();
    let error = find_endpoint(&tree.sys, "rpmsg_ctrl7", NAME, SRC, DST, &existing).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot resolve {}: ENOENT: No such file or directory",
            tree.sys.join("class/rpmsg/rpmsg_ctrl7").display()
        )
    );
}

/// Asserts that `fd` is `/dev/null` (same inode), read-write and close-on-exec.
fn assert_is_dev_null_read_write(fd: &OwnedFd) {
    let opened = std::fs::File::from(fd.try_clone().unwrap())
        .metadata()
        .unwrap();
    let null = std::fs::metadata("/dev/null").unwrap();
    assert_eq!((opened.dev(), opened.ino()), (null.dev(), null.ino()));
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap());
    assert_eq!(flags & OFlag::O_ACCMODE, OFlag::O_RDWR);
    let fd_flags = FdFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(fd_flags.contains(FdFlag::FD_CLOEXEC));
}

/// `/dev/null`'s device number as sysfs would print it.
fn dev_null_number() -> String {
    let rdev = std::fs::metadata("/dev/null").unwrap().rdev();
    format!(
        "{}:{}\n",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    )
}

#[test]
fn the_endpoint_node_is_opened_read_write_close_on_exec_if_it_is_the_sysfs_device() {
    let tree = Tree::new();
    let dir = tree.endpoint(3, 0, NAME, SRC, DST);
    symlink("/dev/null", tree.dev.join("rpmsg3")).unwrap();

    // The node is another device than sysfs says (249:3): refused before it is opened.
    let error = open_endpoint(&tree.dev, &tree.sys, "rpmsg3").unwrap_err();
    let null = dev_null_number();
    assert_eq!(
        error.to_string(),
        format!(
            "{} is device {}, but {} says 249:3",
            tree.dev.join("rpmsg3").display(),
            null.trim_end(),
            tree.sys.join("class/rpmsg/rpmsg3/dev").display()
        )
    );

    std::fs::write(dir.join("dev"), &null).unwrap();
    let fd = open_endpoint(&tree.dev, &tree.sys, "rpmsg3").unwrap();
    assert_is_dev_null_read_write(&fd);
}

#[test]
fn a_missing_or_plain_endpoint_node_is_named() {
    let tree = Tree::new();
    tree.endpoint(3, 0, NAME, SRC, DST);
    let error = open_endpoint(&tree.dev, &tree.sys, "rpmsg3").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot look at {}: ENOENT: No such file or directory",
            tree.dev.join("rpmsg3").display()
        )
    );
    std::fs::write(tree.dev.join("rpmsg3"), "").unwrap();
    let error = open_endpoint(&tree.dev, &tree.sys, "rpmsg3").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("rpmsg3 is not a character device"),
        "{error}"
    );
    assert!(matches!(
        open_endpoint(&tree.dev, &tree.sys, "../rpmsg3"),
        Err(RpmsgError::InvalidDevice { .. })
    ));
}

#[test]
fn endpoint_names_are_short_and_plain() {
    for good in [
        "warden-intercore",
        "rpmsg-raw",
        "a",
        "A.b_c-9",
        &"x".repeat(MAX_NAME_LEN),
    ] {
        assert!(check_name(good).is_ok(), "{good:?}");
    }
    assert_eq!(MAX_NAME_LEN, 31);
    let tree = Tree::new();
    for bad in [
        String::new(),
        "x".repeat(MAX_NAME_LEN + 1),
        "a/b".into(),
        "a b".into(),
        "a\0b".into(),
        "é".into(),
        "name\n".into(),
    ] {
        // Refused before anything is opened (the control device does not exist).
        let error =
            create_endpoint(&tree.dev, &tree.sys, "rpmsg_ctrl0", &bad, SRC, DST).unwrap_err();
        assert!(
            matches!(&error, RpmsgError::InvalidName { name } if *name == bad),
            "{bad:?}: {error:?}"
        );
    }
    let error = check_name("a/b").unwrap_err();
    assert_eq!(
        error.to_string(),
        "endpoint name \"a/b\" is not 1 to 31 bytes of letters, digits, '.', '_' and '-'"
    );
}

#[test]
fn addresses_must_be_explicit_and_the_control_device_an_rpmsg_ctrl() {
    let tree = Tree::new();
    for (src, dst, which) in [(RPMSG_ADDR_ANY, DST, "src"), (SRC, RPMSG_ADDR_ANY, "dst")] {
        let error =
            create_endpoint(&tree.dev, &tree.sys, "rpmsg_ctrl0", NAME, src, dst).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "endpoint {which} address is RPMSG_ADDR_ANY (0xffffffff); both addresses must be explicit"
            )
        );
    }
    for bad in [
        "rpmsg0",
        "rpmsg_ctrl",
        "../rpmsg_ctrl0",
        "rpmsg_ctrl0/x",
        "null",
    ] {
        let error = create_endpoint(&tree.dev, &tree.sys, bad, NAME, SRC, DST).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{bad:?} is not an rpmsg control device name")
        );
    }
}

#[test]
fn a_missing_control_device_is_named() {
    assert!(!Path::new("/dev/rpmsg_ctrl9").exists());
    let error = create_endpoint(
        Path::new("/dev"),
        Path::new("/sys"),
        "rpmsg_ctrl9",
        NAME,
        SRC,
        DST,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot open /dev/rpmsg_ctrl9: ENOENT: No such file or directory"
    );
}

/// The errno of an ioctl refused by a device of another kind: `ENOTTY`, or `ENOSYS` under
/// qemu-user (armv7 tests), which does not translate ioctls it does not know.
fn refused(text: &str, ioctl: &str) -> bool {
    text.contains(&format!("({ioctl}): ENOTTY: "))
        || (cfg!(target_arch = "arm") && text.contains(&format!("({ioctl}): ENOSYS: ")))
}

#[test]
fn a_control_device_of_another_kind_fails_at_the_ioctl_named() {
    let tree = Tree::new();
    symlink("/dev/null", tree.dev.join("rpmsg_ctrl0")).unwrap();
    let error = create_endpoint(&tree.dev, &tree.sys, "rpmsg_ctrl0", NAME, SRC, DST).unwrap_err();
    let text = error.to_string();
    let expected = format!(
        "cannot create endpoint \"warden-intercore\" (src 0x1000, dst 0x400) through {} (RPMSG_CREATE_EPT_IOCTL): ",
        tree.dev.join("rpmsg_ctrl0").display()
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(refused(&text, "RPMSG_CREATE_EPT_IOCTL"), "{text}");
    assert!(matches!(error, RpmsgError::Ioctl { .. }));

    // Without the control device in sysfs nothing is created: the error names the directory.
    let bare = tempfile::tempdir().unwrap();
    let error = create_endpoint(&tree.dev, bare.path(), "rpmsg_ctrl0", NAME, SRC, DST)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "cannot resolve {}: ENOENT: No such file or directory",
            bare.path().join("class/rpmsg/rpmsg_ctrl0").display()
        )
    );
}

#[test]
fn destroying_a_descriptor_of_another_kind_fails_named() {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    let text = destroy_endpoint(null.as_fd()).unwrap_err().to_string();
    assert!(
        text.starts_with("cannot destroy endpoint /dev/null (RPMSG_DESTROY_EPT_IOCTL): "),
        "{text}"
    );
    assert!(refused(&text, "RPMSG_DESTROY_EPT_IOCTL"), "{text}");
}

#[test]
fn rpmsg_addr_any_is_the_kernels() {
    // `#define RPMSG_ADDR_ANY 0xFFFFFFFF` (linux/rpmsg.h; linux-raw-sys does not carry it).
    assert_eq!(RPMSG_ADDR_ANY, u32::MAX);
}
