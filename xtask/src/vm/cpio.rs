//! An initramfs archive: the `newc` cpio format the kernel unpacks into its rootfs, written
//! here so the VM proof needs no `cpio` program. Uncompressed: the kernel takes it as it is.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Result, bail};

/// An archive being built in memory: directories are added once, before what they hold.
#[derive(Debug, Default)]
pub(crate) struct Cpio {
    bytes: Vec<u8>,
    dirs: BTreeSet<String>,
    next_inode: u32,
}

impl Cpio {
    /// A directory `path` (absolute, `/`-separated) and its parents, mode 0755.
    pub(crate) fn dir(&mut self, path: &str) -> Result<()> {
        let path = relative(path)?;
        let mut at = String::new();
        for part in path.split('/') {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            if self.dirs.insert(at.clone()) {
                let name = at.clone();
                self.entry(&name, 0o040_755, &[]);
            }
        }
        Ok(())
    }

    /// A regular file `path` with `data`, executable or not; its directory is added first.
    pub(crate) fn file(&mut self, path: &str, data: &[u8], executable: bool) -> Result<()> {
        let rel = relative(path)?;
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.dir(&format!("/{parent}"))?;
        }
        let mode = if executable { 0o100_755 } else { 0o100_644 };
        self.entry(rel, mode, data);
        Ok(())
    }

    /// The file at `from` on this machine, as `path`.
    pub(crate) fn copy(&mut self, path: &str, from: &Path, executable: bool) -> Result<()> {
        let data = std::fs::read(from)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", from.display()))?;
        self.file(path, &data, executable)
    }

    /// The finished archive (with its trailer).
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.next_inode += 1;
        let nlink = if mode & 0o040_000 != 0 { 2 } else { 1 };
        let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let name_size = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
        // newc: magic, then 13 fields of 8 hex digits: inode, mode, uid, gid, nlink, mtime,
        // file size, device major/minor, rdev major/minor, name size (with its NUL), check.
        let fields = [
            self.next_inode,
            mode,
            0,
            0,
            nlink,
            0,
            size,
            0,
            0,
            0,
            0,
            name_size,
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Header plus name, and data, each end on a 4-byte boundary.
    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

/// `path` without its leading `/`; refused if it is not absolute or names `.`/`..`.
fn relative(path: &str) -> Result<&str> {
    let Some(rel) = path.strip_prefix('/') else {
        bail!("initramfs path {path:?} is not absolute");
    };
    if rel.is_empty()
        || rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        bail!("initramfs path {path:?} has an empty, `.` or `..` component");
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_directories_come_once_before_their_files() {
        let mut cpio = Cpio::default();
        cpio.file("/usr/bin/tool", b"abc", true).unwrap();
        cpio.file("/usr/share/x", b"", false).unwrap();
        let bytes = cpio.finish();
        assert!(bytes.len().is_multiple_of(4));
        let text = String::from_utf8_lossy(&bytes);
        let names: Vec<&str> = ["usr\0", "usr/bin\0", "usr/bin/tool\0", "usr/share\0"]
            .into_iter()
            .filter(|n| text.contains(n))
            .collect();
        assert_eq!(names.len(), 4, "{text}");
        assert_eq!(text.matches("usr\0").count(), 1);
        assert!(text.find("usr/bin\0") < text.find("usr/bin/tool\0"));
        // The tool's header: mode 0100755, size 3.
        let at = text.find("usr/bin/tool\0").unwrap();
        let header = &text[at - 110..at];
        assert!(header.starts_with("070701"), "{header}");
        assert_eq!(&header[14..22], "000081ed");
        assert_eq!(&header[54..62], "00000003");
        assert!(text.ends_with("TRAILER!!!\0\0\0\0") || text.contains("TRAILER!!!\0"));
    }

    #[test]
    fn relative_and_dotted_paths_are_refused() {
        let mut cpio = Cpio::default();
        assert!(cpio.file("etc/passwd", b"", false).is_err());
        assert!(cpio.file("/etc/../passwd", b"", false).is_err());
        assert!(cpio.dir("/").is_err());
    }
}
