//! Each app's `MutableStorage` as its own small ext4 file system: a hard quota the kernel
//! enforces on every write path (preview-1 modules, components, growing files, new files, new
//! inodes), so an app that writes past `SizeKB` gets `ENOSPC` — WASI's "insufficient space" —
//! and nothing else on the device notices.
//!
//! ```text
//! STATE/storage/
//!   <id>.img     the file system image (0600 root; sparse: blocks never written take no space)
//!   <id>.json    its record: the quota it is configured for (written last: the commit point)
//!   <id>/        the mount point (0700 root); the mounted root is 0700 and owned by the app
//! ```
//!
//! **Sizing.** An image holds a 1 MiB (or larger, see [`journal_blocks`]) journal, its
//! metadata, the kernel's own reserve (2 % of the blocks, at most 4096) and the quota. The
//! space the app may use is cut to exactly the quota with the *reserved block count* (blocks
//! only root may allocate; the worker runs as the app's uid with no capability): after the
//! file system is made, it is mounted once, `statvfs` says how many blocks the kernel counts
//! as usable (`f_blocks`, metadata and journal excluded) and how many it keeps for itself,
//! and `tune2fs -r` reserves the rest. Then `used + available = quota` for the app, to the
//! block (1 KiB). A journal needs at least 2048 blocks, so small quotas sit in a ~2.1 MiB
//! image whose surplus is reserved; the reserve is never written, so it costs no disk.
//!
//! **Tools.** `mke2fs`, `tune2fs`, `e2fsck`, `resize2fs` (e2fsprogs) and `mount` (util-linux),
//! found at start-up in fixed system directories (never `$PATH`), run with fixed arguments,
//! an empty environment and no shell. `mount -o loop` attaches the loop device with
//! auto-clear (unmounting detaches it) and, when the image is still attached to a loop device
//! (a mount copy in a worker's namespace that has not gone yet), reuses that device instead
//! of attaching a second one: two ext4 instances on one image would corrupt it. Unmounting is
//! `umount2` (rustix), no tool. A loop-device crate was not used: the maintained one
//! (`loopdev-3`) generates its bindings with bindgen at build time, which needs libclang on
//! every build machine, the armv7 cross build included, and doing the ioctls here would need
//! `unsafe` in a crate that forbids it.
//!
//! **Fallback.** Without root and `CAP_SYS_ADMIN`, `/dev/loop-control` or one of the tools,
//! storage is the plain directory `storage/<id>/`, whose total nothing limits
//! (`RLIMIT_FSIZE` still caps one file); this is reported in `/status` and in every quota
//! answer (`"enforced": false` with the reason), never silent.
//!
//! **Quota changes** (an upgrade with another `SizeKB`) are applied at the app's next start,
//! which the install triggers: a larger quota grows the image (`resize2fs`) and the reserve
//! is recomputed; a smaller one shrinks it when the app's data fits the new quota. When the
//! data does not fit, the storage keeps its previous quota (nothing is deleted) and the quota
//! answer says so (`requested_quota_bytes`, `reason`); every later start tries again.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cap_std::fs::{Dir, MetadataExt as _, OpenOptionsExt as _};
use rustix::mount::UnmountFlags;
use serde::{Deserialize, Serialize};

use crate::state::{self, STORAGE, StateDir};

/// Block size of every storage file system: the quota is enforced to this many bytes.
pub const BLOCK_SIZE: u64 = 1024;
/// Blocks per block group at 1 KiB blocks (one bitmap block of 8192 bits).
const BLOCKS_PER_GROUP: u64 = 8 * BLOCK_SIZE;
/// Bytes per inode on disk.
const INODE_SIZE: u64 = 256;
/// Bytes per group descriptor (the `64bit` feature).
const GROUP_DESC_SIZE: u64 = 64;
/// Blocks added beyond the estimate so a mis-estimate never leaves less than the quota; the
/// reserve absorbs them and, never written, they take no disk.
const MARGIN_BLOCKS: u64 = 32;
/// How long an unmount waits for the last user (a worker being killed) before detaching
/// lazily, and how long an offline change waits for the loop device to go.
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// Mount options of every storage file system.
const MOUNT_OPTIONS: &str = "loop,nodev,nosuid,noexec,noatime,errors=remount-ro";
/// Where the tools are looked for, in order. `$PATH` is not used.
const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
/// Largest `/proc/self/mountinfo` read.
const MAX_MOUNTINFO: u64 = 4 * 1024 * 1024;

/// The layout of one storage image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The quota in blocks.
    pub quota_blocks: u64,
    /// Size of the image in blocks.
    pub blocks: u64,
    /// Inodes asked of `mke2fs` (it rounds up to fill its inode tables).
    pub inodes: u64,
    pub journal_blocks: u64,
}

/// The journal for a quota: the smallest JBD2 accepts (1024 blocks) up to 32 MiB, larger
/// ones for larger quotas so big transactions are not throttled.
pub fn journal_blocks(quota_blocks: u64) -> u64 {
    match quota_blocks {
        0..=32_768 => 1024,
        32_769..=262_144 => 4096,
        262_145..=1_048_576 => 8192,
        _ => 16_384,
    }
}

/// Inodes for a quota: one per 16 KiB, at least 64, at most 65536. The inode count bounds
/// how many files and directories an app can make; their tables are metadata, outside the
/// quota.
pub fn inodes(quota_blocks: u64) -> u64 {
    (quota_blocks / 16).clamp(64, 65_536)
}

/// Whether block group `g` holds a superblock backup (`sparse_super`: 0, 1, powers of 3, 5, 7).
fn has_super(g: u64) -> bool {
    if g <= 1 {
        return true;
    }
    [3u64, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < g {
            p = p.saturating_mul(base);
        }
        p == g
    })
}

/// Blocks of metadata other than the journal (superblocks and descriptor copies, bitmaps,
/// inode tables), estimated from above.
fn metadata_blocks(blocks: u64, inodes: u64) -> u64 {
    let groups = blocks.div_ceil(BLOCKS_PER_GROUP).max(1);
    let descriptors = (groups * GROUP_DESC_SIZE).div_ceil(BLOCK_SIZE);
    let backups = (0..groups).filter(|&g| has_super(g)).count() as u64;
    // mke2fs rounds the inodes per group up to a multiple of 8.
    let inode_table = ((inodes + 8 * groups) * INODE_SIZE).div_ceil(BLOCK_SIZE);
    backups * (1 + descriptors) + 2 * groups + inode_table + 16
}

/// Blocks the kernel keeps for itself on an ext4 with extents: 2 % of the blocks, at most
/// 4096 (`ext4_calculate_resv_clusters`). Used for sizing; the real value is measured.
fn kernel_reserve(blocks: u64) -> u64 {
    (blocks / 50).min(4096)
}

/// `mke2fs` rounds a size down to whole pages (up to 64 KiB on some aarch64 kernels): sizes
/// are multiples of this many blocks so the image is what the layout says.
const SIZE_STEP: u64 = 64;

fn round_up(blocks: u64) -> u64 {
    blocks.div_ceil(SIZE_STEP) * SIZE_STEP
}

/// The image for a quota of `quota_bytes`: big enough for the quota, the root directory's
/// block, the journal, the metadata and the kernel's reserve, and for `mke2fs` to accept a
/// journal (at least twice the journal in free blocks before it is made).
pub fn layout(quota_bytes: u64) -> Layout {
    let quota_blocks = quota_bytes.div_ceil(BLOCK_SIZE).max(1);
    let journal = journal_blocks(quota_blocks);
    let inodes = inodes(quota_blocks);
    let margin = MARGIN_BLOCKS + quota_blocks / 512;
    let mut blocks = round_up(quota_blocks + journal);
    // The metadata and the reserve grow with the size: iterate to a fixed point (a few steps).
    for _ in 0..8 {
        let meta = metadata_blocks(blocks, inodes);
        let need = (quota_blocks + 1 + margin + journal + meta + kernel_reserve(blocks))
            .max(2 * journal + meta + MARGIN_BLOCKS);
        let need = round_up(need);
        if need == blocks {
            break;
        }
        blocks = need;
    }
    Layout {
        quota_blocks,
        blocks,
        inodes,
        journal_blocks: journal,
    }
}

/// The reserved block count that leaves an app exactly `quota_blocks`: `fs_blocks` is what
/// `statvfs` counts as the file system's blocks (metadata and journal excluded),
/// `kernel_reserved` what the kernel keeps for itself, `base_blocks` what the empty file
/// system uses (its root directory's block), which is not counted against the app. `None`
/// when the file system is too small for the quota.
pub fn reserved_blocks(
    fs_blocks: u64,
    kernel_reserved: u64,
    base_blocks: u64,
    quota_blocks: u64,
) -> Option<u64> {
    fs_blocks
        .checked_sub(kernel_reserved)?
        .checked_sub(base_blocks)?
        .checked_sub(quota_blocks)
}

/// Why storage could not be prepared, measured or released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("`{tool}` failed on {path}: {detail}")]
    Tool {
        tool: String,
        path: String,
        detail: String,
    },
    #[error("{path} is a mount point of something other than this app's storage image ({detail})")]
    Foreign { path: String, detail: String },
    #[error(
        "{path} holds files from a directory-backed storage; move them away (or uninstall with \
         storage=wipe) before its quota can be enforced"
    )]
    NotEmpty { path: String },
    #[error("{image} is still attached to a loop device after {} s", BUSY_WAIT.as_secs())]
    StillAttached { image: String },
    #[error("the storage of app {0} is being removed")]
    Closed(String),
    #[error("storage image {image}: {reason}")]
    Layout { image: String, reason: String },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.display().to_string();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

/// How storage is backed on this device.
#[derive(Clone, Debug, Serialize)]
pub struct StorageStatus {
    /// Whether quotas are hard limits.
    pub enforced: bool,
    /// `ext4-image` or `directory`.
    pub backing: &'static str,
    /// Why they are not, when they are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One app's storage use, as the quota answer shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Usage {
    /// The quota in force, in bytes.
    pub quota_bytes: u64,
    /// Bytes the app's files and directories take (whole blocks, from `statvfs`).
    pub used_bytes: u64,
    /// Bytes the app may still write.
    pub available_bytes: u64,
    pub enforced: bool,
    pub backing: &'static str,
    /// The manifest's quota when it is not (yet) the one in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_quota_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The storage handed to a worker.
#[derive(Debug)]
pub struct Prepared {
    /// The storage's root directory, owned by the app's uid.
    pub dir: File,
    /// The quota in force.
    pub quota_bytes: u64,
    /// Lines for the app's log (how the storage is backed, a quota change).
    pub notes: Vec<String>,
}

/// The record beside an image (`<id>.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    /// `false` while a change is under way: the next start redoes it.
    configured: bool,
    quota_bytes: u64,
    /// The image's size in blocks.
    blocks: u64,
    reserved_blocks: u64,
    /// Blocks the empty file system used (not the app's): its root directory.
    base_blocks: u64,
}

/// Absolute paths of the external tools.
#[derive(Clone, Debug)]
struct Tools {
    mke2fs: PathBuf,
    tune2fs: PathBuf,
    e2fsck: PathBuf,
    resize2fs: PathBuf,
    mount: PathBuf,
}

#[derive(Debug)]
enum Backing {
    Images(Tools),
    Directory { reason: String },
}

/// Every app's storage. Operations are serialised by one lock (they are rare: a start, an
/// uninstall, a quota read).
#[derive(Debug)]
pub struct StorageManager {
    /// `STATE/storage`, opened.
    dir: Dir,
    /// Its canonical path (mount points and loop back-files are compared with it).
    root: PathBuf,
    backing: Backing,
    /// Apps whose storage is being removed: nothing may mount it again until reinstalled.
    closed: Mutex<BTreeSet<String>>,
    lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Finds an executable `name` in the system directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    TOOL_DIRS.iter().map(|d| Path::new(d).join(name)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Whether this process has `CAP_SYS_ADMIN` in its effective set (mounting needs it).
fn has_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// What this machine can do: image-backed storage, or the reason it cannot.
fn probe() -> Result<Tools, String> {
    let mut missing = Vec::new();
    if !rustix::process::geteuid().is_root() || !has_sys_admin() {
        missing.push("wardend is not root with CAP_SYS_ADMIN (mounting needs it)".to_owned());
    }
    if !Path::new("/dev/loop-control").exists() {
        missing.push("/dev/loop-control is missing (no loop device support)".to_owned());
    }
    let mut tool = |name: &str, package: &str| {
        find_tool(name).unwrap_or_else(|| {
            missing.push(format!(
                "`{name}` ({package}) is not in {}",
                TOOL_DIRS.join(", ")
            ));
            PathBuf::new()
        })
    };
    let tools = Tools {
        mke2fs: tool("mke2fs", "e2fsprogs"),
        tune2fs: tool("tune2fs", "e2fsprogs"),
        e2fsck: tool("e2fsck", "e2fsprogs"),
        resize2fs: tool("resize2fs", "e2fsprogs"),
        mount: tool("mount", "util-linux"),
    };
    if missing.is_empty() {
        Ok(tools)
    } else {
        Err(format!(
            "storage quotas are not enforced: {}",
            missing.join("; ")
        ))
    }
}

/// One line of `/proc/self/mountinfo`: the mount point and what is mounted there.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MountEntry {
    mount_point: PathBuf,
    fstype: String,
    source: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let source = right.next()?;
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(mount_point)),
                fstype: unescape(fstype),
                source: unescape(source),
            })
        })
        .collect()
}

fn mounts() -> Result<Vec<MountEntry>, StorageError> {
    let path = Path::new("/proc/self/mountinfo");
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_MOUNTINFO).read_to_string(&mut text))
        .map_err(io_err("read", path))?;
    Ok(parse_mountinfo(&text))
}

/// The file a loop device (`/dev/loopN`) is attached to.
fn loop_backing_file(source: &str) -> Option<PathBuf> {
    let name = source.strip_prefix("/dev/")?;
    if !name.starts_with("loop") {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(
        text.trim_end().trim_end_matches(" (deleted)"),
    ))
}

/// Whether any loop device is attached to `image`.
fn attached(image: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with("loop")
            && loop_backing_file(&format!("/dev/{name}")).is_some_and(|b| b == image)
    })
}

/// Runs a tool with fixed arguments and no environment; exit codes in `ok` count as success.
/// `paths` follow `args`; the first names the image in messages.
fn run(tool: &Path, args: &[&str], paths: &[&Path], ok: &[i32]) -> Result<(), StorageError> {
    let on = paths.first().copied().unwrap_or(tool);
    let name = tool
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let out = Command::new(tool)
        .args(args)
        .args(paths)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map_err(|e| StorageError::Tool {
            tool: name.clone(),
            path: on.display().to_string(),
            detail: e.to_string(),
        })?;
    if out.status.code().is_some_and(|c| ok.contains(&c)) {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    let tail: String = stderr
        .chars()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(StorageError::Tool {
        tool: name,
        path: on.display().to_string(),
        detail: format!("{} ({tail})", out.status),
    })
}

/// Unmounts `target`, waiting for a last user (a worker being killed) to go; after
/// [`BUSY_WAIT`] detaches lazily (the kernel finishes when the last user is gone).
fn unmount(target: &Path) -> Result<(), StorageError> {
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
            Ok(()) => return Ok(()),
            // Not a mount point (any more).
            Err(rustix::io::Errno::INVAL) => return Ok(()),
            Err(rustix::io::Errno::BUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(rustix::io::Errno::BUSY) => {
                return rustix::mount::unmount(
                    target,
                    UnmountFlags::NOFOLLOW | UnmountFlags::DETACH,
                )
                .map_err(|e| io_err("detach", target)(e.into()));
            }
            Err(e) => return Err(io_err("unmount", target)(e.into())),
        }
    }
}

/// Waits until no loop device is attached to `image` (offline changes need it alone).
fn wait_detached(image: &Path) -> Result<(), StorageError> {
    let deadline = Instant::now() + BUSY_WAIT;
    while attached(image) {
        if Instant::now() >= deadline {
            return Err(StorageError::StillAttached {
                image: image.display().to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `statvfs` numbers of a mounted storage, in blocks.
#[derive(Clone, Copy, Debug)]
struct Blocks {
    /// Blocks of the file system less metadata and journal (`f_blocks`).
    total: u64,
    free: u64,
    available: u64,
    /// Block size (`f_frsize`).
    size: u64,
}

fn blocks_of(dir: &File, path: &Path) -> Result<Blocks, StorageError> {
    let s = rustix::fs::fstatvfs(dir).map_err(|e| io_err("statvfs", path)(e.into()))?;
    Ok(Blocks {
        total: s.f_blocks,
        free: s.f_bfree,
        available: s.f_bavail,
        size: s.f_frsize.max(1),
    })
}

impl Blocks {
    fn used(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }
}

impl StorageManager {
    /// Opens `STATE/storage` and finds out whether quotas can be enforced here.
    pub fn open(state: &StateDir) -> Result<StorageManager, StorageError> {
        let backing = match probe() {
            Ok(tools) => Backing::Images(tools),
            Err(reason) => Backing::Directory { reason },
        };
        Self::with_backing(state, backing)
    }

    /// Like [`StorageManager::open`], but always the plain directory (a machine or a test that
    /// cannot mount), with `reason` reported.
    pub fn directory(state: &StateDir, reason: &str) -> Result<StorageManager, StorageError> {
        Self::with_backing(
            state,
            Backing::Directory {
                reason: reason.to_owned(),
            },
        )
    }

    fn with_backing(state: &StateDir, backing: Backing) -> Result<StorageManager, StorageError> {
        let path = state.path().join(STORAGE);
        let dir = state.dir(STORAGE).map_err(|e| StorageError::Io {
            action: "open",
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let root = std::fs::canonicalize(&path).map_err(io_err("resolve", &path))?;
        Ok(StorageManager {
            dir,
            root,
            backing,
            closed: Mutex::new(BTreeSet::new()),
            lock: Mutex::new(()),
        })
    }

    /// How storage is backed here.
    pub fn status(&self) -> StorageStatus {
        match &self.backing {
            Backing::Images(_) => StorageStatus {
                enforced: true,
                backing: "ext4-image",
                reason: None,
            },
            Backing::Directory { reason } => StorageStatus {
                enforced: false,
                backing: "directory",
                reason: Some(reason.clone()),
            },
        }
    }

    fn mount_point(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn image(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.img"))
    }

    fn record_name(id: &str) -> String {
        format!("{id}.json")
    }

    fn read_record(&self, id: &str) -> Option<Record> {
        let mut text = String::new();
        self.dir
            .open(Self::record_name(id))
            .ok()?
            .take(4096)
            .read_to_string(&mut text)
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_record(&self, id: &str, record: &Record) -> Result<(), StorageError> {
        let path = self.root.join(Self::record_name(id));
        let bytes = serde_json::to_vec(record).map_err(|e| io_err("encode", &path)(e.into()))?;
        state::write_atomic(&self.dir, &Self::record_name(id), &bytes)
            .map_err(io_err("write", &path))
    }

    /// This app's storage may be mounted again (an install).
    pub fn reopen(&self, id: &str) {
        lock(&self.closed).remove(id);
    }

    /// Whether our image is mounted at the app's mount point; an error if something else is.
    fn mounted(&self, id: &str) -> Result<bool, StorageError> {
        let target = self.mount_point(id);
        let image = self.image(id);
        let Some(top) = mounts()?
            .into_iter()
            .rev()
            .find(|m| m.mount_point == target)
        else {
            return Ok(false);
        };
        let ours =
            top.fstype == "ext4" && loop_backing_file(&top.source).is_some_and(|b| b == image);
        if ours {
            Ok(true)
        } else {
            Err(StorageError::Foreign {
                path: target.display().to_string(),
                detail: format!("{} {}", top.fstype, top.source),
            })
        }
    }

    /// Opens the mount point's root and checks it is another file system than `storage/`.
    fn open_mounted_root(&self, id: &str) -> Result<File, StorageError> {
        let target = self.mount_point(id);
        let root = self.open_dir_file(id)?;
        let inner = root.metadata().map_err(io_err("stat", &target))?.dev();
        let outer = self
            .dir
            .dir_metadata()
            .map_err(io_err("stat", &self.root))?
            .dev();
        if inner == outer {
            return Err(StorageError::Foreign {
                path: target.display().to_string(),
                detail: "nothing is mounted there".into(),
            });
        }
        Ok(root)
    }

    /// Opens `storage/<id>` as a readable directory (not `O_PATH`: it is chowned, chmodded
    /// and measured through this descriptor), never following a symlink.
    fn open_dir_file(&self, id: &str) -> Result<File, StorageError> {
        let flags = rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW;
        self.dir
            .open_with(
                id,
                cap_std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(flags.bits() as i32),
            )
            .map(cap_std::fs::File::into_std)
            .map_err(io_err("open", &self.mount_point(id)))
    }

    fn mount(&self, tools: &Tools, id: &str) -> Result<(), StorageError> {
        let target = self.mount_point(id);
        let image = self.image(id);
        run(
            &tools.mount,
            &["-t", "ext4", "-o", MOUNT_OPTIONS],
            &[&image, &target],
            &[0],
        )
    }

    /// Makes a fresh, empty file system for `quota_bytes` (an existing image is replaced:
    /// only called when no record says an app ever used it).
    fn create(&self, tools: &Tools, id: &str, quota_bytes: u64) -> Result<(), StorageError> {
        let image = self.image(id);
        let name = format!("{id}.img");
        let layout = layout(quota_bytes);
        let _ = self.dir.remove_file(&name);
        let file = self
            .dir
            .open_with(
                &name,
                cap_std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600),
            )
            .map_err(io_err("create", &image))?;
        file.set_len(layout.blocks * BLOCK_SIZE)
            .map_err(io_err("size", &image))?;
        file.sync_all().map_err(io_err("sync", &image))?;
        drop(file);
        let inodes = layout.inodes.to_string();
        let journal = format!(
            "size={}",
            layout.journal_blocks * BLOCK_SIZE / (1024 * 1024)
        );
        let block = BLOCK_SIZE.to_string();
        let inode_size = INODE_SIZE.to_string();
        let args = [
            "-F",
            "-q",
            "-t",
            "ext4",
            "-b",
            &block,
            "-I",
            &inode_size,
            "-N",
            &inodes,
            "-m",
            "0",
            "-O",
            "^resize_inode",
            "-J",
            &journal,
        ];
        run(&tools.mke2fs, &args, &[&image], &[0])
    }

    /// Configures an unmounted image for `quota_bytes`, keeping its data: resizes it to the
    /// layout, measures it mounted, and sets the reserve. `Ok(Err(used_bytes))` when the
    /// app's data does not fit the new quota (the image is left as it was).
    fn configure(
        &self,
        tools: &Tools,
        id: &str,
        quota_bytes: u64,
        previous: Option<&Record>,
    ) -> Result<Result<Record, u64>, StorageError> {
        let image = self.image(id);
        let target = self.mount_point(id);
        let layout = layout(quota_bytes);
        let current_blocks = std::fs::metadata(&image)
            .map_err(io_err("stat", &image))?
            .len()
            / BLOCK_SIZE;
        let resize = current_blocks != layout.blocks;
        if let Some(previous) = previous {
            // Refuse a quota the data does not fit before changing anything.
            self.mount(tools, id)?;
            let measured = self
                .open_mounted_root(id)
                .and_then(|d| blocks_of(&d, &target));
            unmount(&target)?;
            let used = measured?.used().saturating_sub(previous.base_blocks);
            if used > layout.quota_blocks {
                return Ok(Err(used * BLOCK_SIZE));
            }
            self.write_record(
                id,
                &Record {
                    configured: false,
                    ..previous.clone()
                },
            )?;
            wait_detached(&image)?;
        }
        if resize {
            // 0: clean, 1: errors corrected, 2: corrected, reboot advised (root fs only).
            run(&tools.e2fsck, &["-f", "-p"], &[&image], &[0, 1, 2])?;
            let size = format!("{}K", layout.blocks);
            // resize2fs takes the size after the device.
            run(&tools.resize2fs, &[], &[&image, Path::new(&size)], &[0])?;
        }
        let blocks = std::fs::metadata(&image)
            .map_err(io_err("stat", &image))?
            .len()
            / BLOCK_SIZE;
        // Measure with no reserve: `f_bfree - f_bavail` is then the kernel's own.
        run(&tools.tune2fs, &["-r", "0"], &[&image], &[0])?;
        self.mount(tools, id)?;
        let measured = self.open_mounted_root(id).and_then(|root| {
            // `lost+found` (root-only, 12 blocks) would count against the app: e2fsck makes
            // it again when it needs it. Not empty (e2fsck put files there): kept.
            let _ = self.dir.remove_dir(format!("{id}/lost+found"));
            blocks_of(&root, &target)
        });
        unmount(&target)?;
        let measured = measured?;
        let kernel = if measured.available > 0 {
            measured.free - measured.available
        } else {
            kernel_reserve(blocks)
        };
        // A fresh file system's use is its base; an existing one keeps the base it had.
        let base = previous.map_or(measured.used(), |p| p.base_blocks);
        let reserved = reserved_blocks(measured.total, kernel, base, layout.quota_blocks)
            .ok_or_else(|| StorageError::Layout {
                image: image.display().to_string(),
                reason: format!(
                    "{} usable blocks, {kernel} kept by the kernel: less than the quota of {}",
                    measured.total, layout.quota_blocks
                ),
            })?;
        wait_detached(&image)?;
        let count = reserved.to_string();
        run(&tools.tune2fs, &["-r", &count], &[&image], &[0])?;
        let record = Record {
            configured: true,
            quota_bytes,
            blocks,
            reserved_blocks: reserved,
            base_blocks: base,
        };
        self.write_record(id, &record)?;
        Ok(Ok(record))
    }

    /// Makes the app's storage ready for a worker: created at first need, configured for
    /// `quota_bytes`, mounted (a mount left by an earlier run of the supervisor is reused),
    /// its root owned by `uid` and mode 0700. Returns the opened root.
    pub fn prepare(&self, id: &str, uid: u32, quota_bytes: u64) -> Result<Prepared, StorageError> {
        let began = Instant::now();
        let _serial = lock(&self.lock);
        if lock(&self.closed).contains(id) {
            return Err(StorageError::Closed(id.to_owned()));
        }
        let tools = match &self.backing {
            Backing::Images(tools) => tools,
            Backing::Directory { reason } => {
                let dir = self.plain_dir(id, uid)?;
                return Ok(Prepared {
                    dir,
                    quota_bytes,
                    notes: vec![format!(
                        "storage: directory, quota of {quota_bytes} bytes NOT enforced ({reason})"
                    )],
                });
            }
        };
        let target = self.mount_point(id);
        let mut notes = Vec::new();
        let mut mounted = self.mounted(id)?;
        // A record without its image (removed by hand): the storage is made anew.
        let mut record = self
            .read_record(id)
            .filter(|_| mounted || self.image(id).exists());
        let ready = mounted
            && record
                .as_ref()
                .is_some_and(|r| r.configured && r.quota_bytes == quota_bytes);
        if !ready {
            if mounted {
                unmount(&target)?;
                mounted = false;
            }
            self.ensure_mount_point(id)?;
            wait_detached(&self.image(id))?;
            let previous = match record.clone() {
                // Never used by an app: made (again) from scratch.
                None => {
                    self.create(tools, id, quota_bytes)?;
                    None
                }
                Some(r) => Some(r),
            };
            if previous
                .as_ref()
                .is_none_or(|r| !r.configured || r.quota_bytes != quota_bytes)
            {
                match self.configure(tools, id, quota_bytes, previous.as_ref())? {
                    Ok(configured) => {
                        if let Some(p) = &previous
                            && p.quota_bytes != quota_bytes
                        {
                            notes.push(format!(
                                "storage: quota changed from {} to {quota_bytes} bytes",
                                p.quota_bytes
                            ));
                        }
                        record = Some(configured);
                    }
                    Err(used) => notes.push(format!(
                        "storage: the app uses {used} bytes, more than its new quota of \
                         {quota_bytes} bytes; its previous quota stays until it uses less"
                    )),
                }
            }
        }
        if !mounted {
            self.mount(tools, id)?;
        }
        let root = self.open_mounted_root(id)?;
        std::os::unix::fs::fchown(&root, Some(uid), Some(uid)).map_err(io_err("chown", &target))?;
        root.set_permissions(std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", &target))?;
        let (enforced, base) = record.map_or((quota_bytes, 0), |r| (r.quota_bytes, r.base_blocks));
        let blocks = blocks_of(&root, &target)?;
        notes.insert(
            0,
            format!(
                "storage: ext4 image, quota {enforced} bytes enforced, {} bytes used, {} bytes \
                 available (ready in {} ms)",
                blocks.used().saturating_sub(base) * blocks.size,
                blocks.available * blocks.size,
                began.elapsed().as_millis()
            ),
        );
        Ok(Prepared {
            dir: root,
            quota_bytes: enforced,
            notes,
        })
    }

    /// The mount point: a root-only directory; an existing one must be empty (files of a
    /// directory-backed storage are never hidden under a mount).
    fn ensure_mount_point(&self, id: &str) -> Result<(), StorageError> {
        let target = self.mount_point(id);
        self.dir
            .create_dir_all(id)
            .map_err(io_err("create", &target))?;
        let dir = self.dir.open_dir(id).map_err(io_err("open", &target))?;
        if dir
            .entries()
            .map_err(io_err("list", &target))?
            .next()
            .is_some()
        {
            return Err(StorageError::NotEmpty {
                path: target.display().to_string(),
            });
        }
        let file = self.open_dir_file(id)?;
        std::os::unix::fs::fchown(&file, Some(0), Some(0)).map_err(io_err("chown", &target))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", &target))
    }

    /// The fallback: the app's own directory, created on first use and owned by its uid.
    fn plain_dir(&self, id: &str, uid: u32) -> Result<File, StorageError> {
        let path = self.mount_point(id);
        self.dir
            .create_dir_all(id)
            .map_err(io_err("create", &path))?;
        let dir = self.open_dir_file(id)?;
        std::os::unix::fs::fchown(&dir, Some(uid), Some(uid)).map_err(io_err("chown", &path))?;
        Ok(dir)
    }

    /// The app's storage use for its manifest quota `quota_bytes`. An image not mounted yet is
    /// mounted to be measured; an app that never ran has used nothing.
    pub fn usage(&self, id: &str, quota_bytes: u64) -> Result<Usage, StorageError> {
        let _serial = lock(&self.lock);
        let status = self.status();
        let tools = match &self.backing {
            Backing::Images(tools) => tools,
            Backing::Directory { .. } => {
                let used = self.dir.open_dir(id).map(|d| dir_usage(&d, 0)).unwrap_or(0);
                return Ok(Usage {
                    quota_bytes,
                    used_bytes: used,
                    available_bytes: quota_bytes.saturating_sub(used),
                    enforced: false,
                    backing: status.backing,
                    requested_quota_bytes: None,
                    reason: status.reason,
                });
            }
        };
        let record = self.read_record(id).filter(|r| r.configured);
        let Some(record) = record else {
            return Ok(Usage {
                quota_bytes,
                used_bytes: 0,
                available_bytes: quota_bytes,
                enforced: true,
                backing: status.backing,
                requested_quota_bytes: None,
                reason: Some("the storage is made when the app first starts".into()),
            });
        };
        if !self.mounted(id)? {
            if lock(&self.closed).contains(id) {
                return Err(StorageError::Closed(id.to_owned()));
            }
            self.ensure_mount_point(id)?;
            wait_detached(&self.image(id))?;
            self.mount(tools, id)?;
        }
        let target = self.mount_point(id);
        let root = self.open_mounted_root(id)?;
        let blocks = blocks_of(&root, &target)?;
        let differs = record.quota_bytes != quota_bytes;
        Ok(Usage {
            quota_bytes: record.quota_bytes,
            used_bytes: blocks.used().saturating_sub(record.base_blocks) * blocks.size,
            available_bytes: blocks.available * blocks.size,
            enforced: true,
            backing: status.backing,
            requested_quota_bytes: differs.then_some(quota_bytes),
            reason: differs.then(|| {
                "the app's data did not fit the manifest's new quota: the previous one stays \
                 until it does (retried at every start)"
                    .to_owned()
            }),
        })
    }

    /// Uninstall: unmounts the app's storage (the loop device goes with it), and with `wipe`
    /// removes its image, record and mount point. Nothing mounts it again until
    /// [`StorageManager::reopen`].
    pub fn release(&self, id: &str, wipe: bool) -> Result<(), StorageError> {
        lock(&self.closed).insert(id.to_owned());
        let _serial = lock(&self.lock);
        let target = self.mount_point(id);
        if let Backing::Directory { .. } = self.backing {
            if wipe {
                let _ = self.dir.remove_dir_all(id);
            }
            return Ok(());
        }
        if self.mounted(id)? {
            unmount(&target)?;
        }
        if wipe {
            let image = self.image(id);
            for name in [format!("{id}.img"), Self::record_name(id)] {
                match self.dir.remove_file(&name) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &image)(e)),
                }
            }
        }
        let _ = self.dir.remove_dir(id);
        state::sync_dir(&self.dir).map_err(io_err("sync", &self.root))
    }

    /// Supervisor shutdown: unmounts every storage (the workers were stopped).
    pub fn unmount_all(&self) {
        let _serial = lock(&self.lock);
        let Ok(all) = mounts() else { return };
        for m in all.iter().rev() {
            if m.mount_point.parent() == Some(self.root.as_path()) {
                let _ = unmount(&m.mount_point);
            }
        }
    }
}

/// Bytes used under a directory (bounded depth; errors count as zero): the fallback's
/// measure, which nothing enforces.
fn dir_usage(dir: &Dir, depth: u32) -> u64 {
    if depth > 32 {
        return 0;
    }
    let Ok(entries) = dir.entries() else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => e.open_dir().map_or(0, |d| dir_usage(&d, depth + 1)),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a layout leaves for the reserve, by the estimate: must be at least zero (the
    /// quota fits) and at most half the image (`tune2fs` refuses more).
    fn estimated_reserve(l: &Layout) -> i64 {
        let overhead = l.journal_blocks + metadata_blocks(l.blocks, l.inodes);
        l.blocks as i64 - overhead as i64 - kernel_reserve(l.blocks) as i64 - l.quota_blocks as i64
    }

    #[test]
    fn every_quota_fits_its_image_and_the_reserve_stays_under_half() {
        let mut kib = 1u64;
        let mut previous = 0;
        while kib <= 4 * 1024 * 1024 {
            for q in [kib, kib + 1, kib * 3 / 2] {
                let l = layout(q * 1024);
                let r = estimated_reserve(&l);
                assert!(r >= MARGIN_BLOCKS as i64, "{q} KiB: {l:?} leaves {r}");
                assert!(r as u64 <= l.blocks / 2, "{q} KiB: {l:?} reserve {r}");
                // mke2fs makes a journal only with twice its size free before it.
                assert!(l.blocks - metadata_blocks(l.blocks, l.inodes) >= 2 * l.journal_blocks);
                assert!(l.blocks >= 2048);
            }
            let l = layout(kib * 1024);
            assert!(l.blocks >= previous, "sizes grow with the quota");
            previous = l.blocks;
            kib *= 2;
        }
    }

    #[test]
    fn small_quotas_get_the_smallest_journalled_image() {
        let l = layout(64 * 1024);
        assert_eq!(l.quota_blocks, 64);
        assert_eq!(l.journal_blocks, 1024);
        assert_eq!(l.inodes, 64);
        assert!((2048..2200).contains(&l.blocks), "{l:?}");
        assert_eq!(l.blocks % SIZE_STEP, 0);
        // Rounded up to whole blocks, never down; zero still gets a block.
        assert_eq!(layout(1025).quota_blocks, 2);
        assert_eq!(layout(0).quota_blocks, 1);
    }

    #[test]
    fn large_quotas_cost_little_beyond_the_quota() {
        let l = layout(1024 * 1024 * 1024);
        assert_eq!(l.journal_blocks, 8192);
        assert_eq!(l.inodes, 65_536);
        let overhead = l.blocks - l.quota_blocks;
        assert!(overhead * 100 < l.quota_blocks * 5, "{l:?}");
    }

    #[test]
    fn the_reserve_leaves_exactly_the_quota() {
        // Numbers measured on a 2200-block image (1045 blocks of journal and metadata).
        // The root directory's block is the base.
        assert_eq!(reserved_blocks(1155, 44, 1, 64), Some(1046));
        // available = free - reserve - kernel = (1155 - 1 - used) - 1046 - 44 = 64 - used
        assert_eq!(reserved_blocks(1155, 44, 1, 1110), Some(0));
        assert_eq!(reserved_blocks(1155, 44, 1, 1111), None);
        assert_eq!(reserved_blocks(40, 50, 0, 1), None);
    }

    #[test]
    fn superblock_backups_follow_sparse_super() {
        let groups: Vec<u64> = (0..60).filter(|&g| has_super(g)).collect();
        assert_eq!(groups, vec![0, 1, 3, 5, 7, 9, 25, 27, 49]);
    }

    #[test]
    fn mountinfo_lines_are_parsed_and_unescaped() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext4 /dev/loop3 rw,errors=continue\n\
                    40 35 0:5 / /proc rw - proc proc rw\n\
                    garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].source, "/dev/loop3");
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn the_fallback_is_reported_and_measures_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let storage = StorageManager::directory(&state, "no loop devices here").unwrap();
        let status = storage.status();
        assert!(!status.enforced);
        assert_eq!(status.reason.as_deref(), Some("no loop devices here"));
        let id = "6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b";
        let uid = rustix::process::geteuid().as_raw();
        let prepared = storage.prepare(id, uid, 4096).unwrap();
        assert!(
            prepared.notes[0].contains("NOT enforced"),
            "{:?}",
            prepared.notes
        );
        std::fs::write(tmp.path().join("storage").join(id).join("f"), [0u8; 3000]).unwrap();
        let usage = storage.usage(id, 4096).unwrap();
        assert!(!usage.enforced);
        assert_eq!(usage.used_bytes, 3000);
        assert_eq!(usage.available_bytes, 1096);
        assert_eq!(usage.reason.as_deref(), Some("no loop devices here"));
        storage.release(id, true).unwrap();
        assert!(!tmp.path().join("storage").join(id).exists());
    }

    /// The estimate against the real `mke2fs` (no mount, no root needed): its metadata and
    /// journal never exceed what the layout allowed for.
    #[test]
    fn the_estimate_holds_for_real_mke2fs() {
        let Some(mke2fs) = find_tool("mke2fs") else {
            panic!("mke2fs (e2fsprogs) is needed by wardend's storage; install e2fsprogs");
        };
        let tools = Tools {
            mke2fs,
            tune2fs: PathBuf::new(),
            e2fsck: PathBuf::new(),
            resize2fs: PathBuf::new(),
            mount: PathBuf::new(),
        };
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let storage = StorageManager::directory(&state, "test").unwrap();
        for kib in [1u64, 64, 1024, 40 * 1024, 300 * 1024] {
            let id = format!("q{kib}");
            storage.create(&tools, &id, kib * 1024).unwrap();
            let mut sb = [0u8; 1024];
            let mut f = File::open(storage.image(&id)).unwrap();
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(1024)).unwrap();
            f.read_exact(&mut sb).unwrap();
            let le32 =
                |at: usize| u64::from(u32::from_le_bytes(sb[at..at + 4].try_into().unwrap()));
            let (blocks, free, overhead) = (le32(4), le32(12), le32(0x248));
            let l = layout(kib * 1024);
            assert_eq!(blocks, l.blocks, "{kib} KiB");
            assert!(overhead > 0, "mke2fs records its overhead");
            assert!(
                overhead <= l.journal_blocks + metadata_blocks(l.blocks, l.inodes),
                "{kib} KiB: overhead {overhead}, {l:?}"
            );
            // Free blocks = all but overhead, the root directory and lost+found.
            assert!(free + overhead + 16 >= blocks);
            let reserve = blocks - overhead - 1 - kernel_reserve(blocks) - l.quota_blocks;
            assert!(
                reserve <= blocks / 2,
                "{kib} KiB: reserve {reserve} of {blocks}"
            );
            std::fs::remove_file(storage.image(&id)).unwrap();
        }
    }
}
