//! Checking a real-time app's firmware before it reaches the kernel (remoteproc) or the
//! emulator: it must be a 32-bit little-endian ARM EABI5 executable, every loadable segment
//! must lie within one memory region of the core it will run on (the board file's `Memory`),
//! and it must carry a well-formed `.resource_table` — the table Linux remoteproc reads to
//! set up the firmware's trace buffer and rpmsg virtio device — inside what is loaded.
//!
//! The ELF is untrusted input (it is signed, but a signature says who made it, not that it is
//! well-formed), so everything is bounds-checked: the `object` crate reads the headers, this
//! module reads the resource table itself, and nothing here panics on any input (fuzz target
//! `firmware`).

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};

use crate::board::MemoryRegion;

/// Largest firmware accepted: the largest memory a core may list (4 GiB) is far beyond any
/// M4's, so this bounds the work instead.
pub const MAX_FIRMWARE_BYTES: u64 = 16 * 1024 * 1024;

/// Most resource-table entries accepted (the kernel has no limit; real tables have 2 or 3).
pub const MAX_RESOURCES: u32 = 64;

/// Resource types of `include/linux/remoteproc.h`.
const RSC_CARVEOUT: u32 = 0;
const RSC_DEVMEM: u32 = 1;
const RSC_TRACE: u32 = 2;
const RSC_VDEV: u32 = 3;
/// Vendor-specific resources (`RSC_VENDOR_START..=RSC_VENDOR_END`): the kernel hands them to
/// the platform driver, so only their presence is checked.
const RSC_VENDOR: std::ops::RangeInclusive<u32> = 128..=512;

/// The `e_flags` EABI version field, and the version the kernel's ARM ELF loader expects.
const EF_ARM_EABIMASK: u32 = 0xff00_0000;
const EF_ARM_EABI_VER5: u32 = 0x0500_0000;

/// Why firmware was refused. Every message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirmwareError {
    #[error("firmware of {0} bytes is larger than {MAX_FIRMWARE_BYTES} bytes")]
    TooLarge(u64),
    #[error("not an ELF file (no `\\x7fELF` magic)")]
    NotElf,
    #[error("a 64-bit ELF: a Cortex-M core runs 32-bit ELF executables")]
    Not32Bit,
    #[error("a big-endian ELF: the core is little-endian")]
    BigEndian,
    #[error("an ELF for machine {0} (expected 40, ARM)")]
    NotArm(u16),
    #[error(
        "an ELF of type {0} (expected 2, an executable; relocatable objects and shared libraries cannot be loaded)"
    )]
    NotExecutable(u16),
    #[error("ARM EABI version {0:#x} in e_flags (expected EABI 5)")]
    WrongAbi(u32),
    #[error("a malformed ELF: {0}")]
    Malformed(String),
    #[error("no loadable segment: nothing would be loaded")]
    NothingToLoad,
    #[error(
        "segment {index} ({address:#010x}, {size} bytes) lies outside the memory of core `{core}` ({regions})"
    )]
    OutsideMemory {
        index: usize,
        address: u64,
        size: u64,
        core: String,
        regions: String,
    },
    #[error(
        "no `.resource_table` section: Linux remoteproc needs one to give the firmware its trace buffer and rpmsg channel"
    )]
    NoResourceTable,
    #[error(
        "the `.resource_table` section is not within a loadable segment, so the kernel could not find it in the core's memory"
    )]
    ResourceTableNotLoaded,
    #[error("the resource table is malformed: {0}")]
    BadResourceTable(String),
}

/// One loadable segment, as the core will see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Segment {
    /// Where it is loaded (`p_paddr`, the address remoteproc uses).
    pub address: u64,
    /// Bytes in memory (`p_memsz`); the tail beyond `p_filesz` is zeroed.
    pub size: u64,
}

/// What a resource table provides.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resources {
    pub carveouts: u32,
    pub device_memories: u32,
    pub trace_buffers: u32,
    /// Virtio devices (an rpmsg channel is one, id 7).
    pub vdevs: u32,
    /// Of those, rpmsg devices (virtio id 7).
    pub rpmsg: u32,
    pub vendor: u32,
}

/// A firmware that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Firmware {
    pub entry: u64,
    pub segments: Vec<Segment>,
    pub resources: Resources,
}

fn malformed(e: object::read::Error) -> FirmwareError {
    FirmwareError::Malformed(e.to_string())
}

/// Checks `bytes` as firmware for the core named `core` with memory `regions`.
pub fn check(
    bytes: &[u8],
    core: &str,
    regions: &[MemoryRegion],
) -> Result<Firmware, FirmwareError> {
    if bytes.len() as u64 > MAX_FIRMWARE_BYTES {
        return Err(FirmwareError::TooLarge(bytes.len() as u64));
    }
    let ident = bytes.get(..6).ok_or(FirmwareError::NotElf)?;
    if ident.get(..4) != Some(&elf::ELFMAG[..]) {
        return Err(FirmwareError::NotElf);
    }
    match (ident.get(4), ident.get(5)) {
        (Some(&elf::ELFCLASS32), Some(&elf::ELFDATA2LSB)) => {}
        (Some(&elf::ELFCLASS64), _) => return Err(FirmwareError::Not32Bit),
        (Some(&elf::ELFCLASS32), Some(&elf::ELFDATA2MSB)) => return Err(FirmwareError::BigEndian),
        _ => {
            return Err(FirmwareError::Malformed(
                "unknown ELF class or data encoding".into(),
            ));
        }
    }
    let header = elf::FileHeader32::<object::Endianness>::parse(bytes).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let machine = header.e_machine(endian);
    if machine != elf::EM_ARM {
        return Err(FirmwareError::NotArm(machine));
    }
    let kind = header.e_type(endian);
    if kind != elf::ET_EXEC {
        return Err(FirmwareError::NotExecutable(kind));
    }
    let abi = header.e_flags(endian) & EF_ARM_EABIMASK;
    if abi != EF_ARM_EABI_VER5 {
        return Err(FirmwareError::WrongAbi(abi));
    }

    let mut segments = Vec::new();
    for (index, ph) in header
        .program_headers(endian, bytes)
        .map_err(malformed)?
        .iter()
        .enumerate()
    {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let address = u64::from(ph.p_paddr(endian));
        let size = u64::from(ph.p_memsz(endian));
        let file_size = u64::from(ph.p_filesz(endian));
        if file_size > size {
            return Err(FirmwareError::Malformed(format!(
                "segment {index} has {file_size} bytes in the file but only {size} in memory"
            )));
        }
        // The bytes it loads must be in the file.
        ph.data(endian, bytes).map_err(|()| {
            FirmwareError::Malformed(format!("segment {index} reaches past the end of the file"))
        })?;
        if size == 0 {
            continue;
        }
        if !regions.iter().any(|r| r.contains(address, size)) {
            return Err(FirmwareError::OutsideMemory {
                index,
                address,
                size,
                core: core.to_owned(),
                regions: describe(regions),
            });
        }
        segments.push(Segment { address, size });
    }
    if segments.is_empty() {
        return Err(FirmwareError::NothingToLoad);
    }

    let sections = header.sections(endian, bytes).map_err(malformed)?;
    let (_, table) = sections
        .section_by_name(endian, b".resource_table")
        .ok_or(FirmwareError::NoResourceTable)?;
    let table_bytes = table.data(endian, bytes).map_err(malformed)?;
    // The kernel finds the table at the section's address in the core's memory, so that
    // address must be loaded — by a segment whose file bytes cover it.
    let at = u64::from(table.sh_addr(endian));
    let len = table_bytes.len() as u64;
    let loaded = header
        .program_headers(endian, bytes)
        .map_err(malformed)?
        .iter()
        .any(|ph| {
            ph.p_type(endian) == elf::PT_LOAD
                && at >= u64::from(ph.p_vaddr(endian))
                && at + len <= u64::from(ph.p_vaddr(endian)) + u64::from(ph.p_filesz(endian))
        });
    if !loaded {
        return Err(FirmwareError::ResourceTableNotLoaded);
    }
    let resources = read_resource_table(table_bytes)?;
    Ok(Firmware {
        entry: u64::from(header.e_entry(endian)),
        segments,
        resources,
    })
}

fn describe(regions: &[MemoryRegion]) -> String {
    regions
        .iter()
        .map(|r| format!("{} {:#010x}+{} KiB", r.name, r.origin, r.size / 1024))
        .collect::<Vec<_>>()
        .join(", ")
}

fn word(table: &[u8], offset: usize) -> Result<u32, FirmwareError> {
    table
        .get(offset..offset.saturating_add(4))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| {
            FirmwareError::BadResourceTable(format!(
                "it ends at byte {} but a field is at {offset}",
                table.len()
            ))
        })
}

fn bad(message: String) -> FirmwareError {
    FirmwareError::BadResourceTable(message)
}

/// Reads `struct resource_table { u32 ver; u32 num; u32 reserved[2]; u32 offset[num]; }` and
/// the entries the offsets point at, each `u32 type` then its body.
pub fn read_resource_table(table: &[u8]) -> Result<Resources, FirmwareError> {
    let version = word(table, 0)?;
    if version != 1 {
        return Err(bad(format!("version {version} (the kernel knows 1)")));
    }
    let count = word(table, 4)?;
    if count > MAX_RESOURCES {
        return Err(bad(format!("{count} entries (at most {MAX_RESOURCES})")));
    }
    let header = 16 + 4 * count as usize;
    if header > table.len() {
        return Err(bad(format!(
            "{count} entries need a {header}-byte header, the section has {} bytes",
            table.len()
        )));
    }
    let mut found = Resources::default();
    for i in 0..count as usize {
        let offset = word(table, 16 + 4 * i)? as usize;
        if offset < header {
            return Err(bad(format!(
                "entry {i} at offset {offset}, inside the table's header"
            )));
        }
        let kind = word(table, offset)?;
        let body = offset + 4;
        // Each body's fixed size (include/linux/remoteproc.h), all u32 but the noted bytes.
        let size = match kind {
            // da, pa, len, flags, reserved, name[32]
            RSC_CARVEOUT | RSC_DEVMEM => 5 * 4 + 32,
            // da, len, reserved, name[32]
            RSC_TRACE => 3 * 4 + 32,
            // id, notifyid, dfeatures, gfeatures, config_len, status u8, num_of_vrings u8,
            // reserved[2] u8, then the vrings (5 u32 each) and config_len bytes of config
            RSC_VDEV => {
                let vrings = table.get(body + 21).copied().ok_or_else(|| {
                    bad(format!("vdev entry {i} is cut off at byte {}", table.len()))
                })?;
                let config = word(table, body + 16)? as usize;
                5 * 4 + 4 + 20 * usize::from(vrings) + config
            }
            vendor if RSC_VENDOR.contains(&vendor) => 0,
            other => return Err(bad(format!("entry {i} has the unknown type {other}"))),
        };
        if body.saturating_add(size) > table.len() {
            return Err(bad(format!(
                "entry {i} (type {kind}) needs {size} bytes at offset {body}, the section has {}",
                table.len()
            )));
        }
        match kind {
            RSC_CARVEOUT => found.carveouts += 1,
            RSC_DEVMEM => found.device_memories += 1,
            RSC_TRACE => found.trace_buffers += 1,
            RSC_VDEV => {
                found.vdevs += 1;
                if word(table, body)? == 7 {
                    found.rpmsg += 1;
                }
            }
            _ => found.vendor += 1,
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A resource table with one trace buffer and one rpmsg vdev with two vrings.
    pub(crate) fn table() -> Vec<u8> {
        let mut t = Vec::new();
        let push = |t: &mut Vec<u8>, w: u32| t.extend_from_slice(&w.to_le_bytes());
        push(&mut t, 1); // ver
        push(&mut t, 2); // num
        push(&mut t, 0);
        push(&mut t, 0);
        push(&mut t, 24); // offset[0]
        push(&mut t, 24 + 48); // offset[1]
        // trace: type, da, len, reserved, name[32]
        push(&mut t, RSC_TRACE);
        push(&mut t, 0x2000_0000);
        push(&mut t, 1024);
        push(&mut t, 0);
        t.extend_from_slice(&[0u8; 32]);
        // vdev: type, id, notifyid, dfeatures, gfeatures, config_len, status, num_of_vrings,
        // reserved[2], vrings
        push(&mut t, RSC_VDEV);
        push(&mut t, 7);
        push(&mut t, 0);
        push(&mut t, 1);
        push(&mut t, 0);
        push(&mut t, 0);
        t.extend_from_slice(&[0, 2, 0, 0]);
        for _ in 0..2 {
            for w in [u32::MAX, 16, 8, 0, 0] {
                push(&mut t, w);
            }
        }
        t
    }

    #[test]
    fn a_table_is_read_and_every_cut_is_refused() {
        let t = table();
        let found = read_resource_table(&t).unwrap();
        assert_eq!((found.trace_buffers, found.vdevs, found.rpmsg), (1, 1, 1));
        for len in 0..t.len() {
            assert!(
                read_resource_table(&t[..len]).is_err(),
                "a table cut at {len} bytes was accepted"
            );
        }
        let mut v2 = t.clone();
        v2[0] = 2;
        assert!(
            matches!(read_resource_table(&v2), Err(FirmwareError::BadResourceTable(m)) if m.contains("version 2"))
        );
        let mut inside = t.clone();
        inside[16] = 8;
        assert!(
            matches!(read_resource_table(&inside), Err(FirmwareError::BadResourceTable(m)) if m.contains("header"))
        );
        let mut unknown = t;
        unknown[24] = 9;
        assert!(
            matches!(read_resource_table(&unknown), Err(FirmwareError::BadResourceTable(m)) if m.contains("unknown type 9"))
        );
    }

    /// How the test ELF differs from a good one.
    #[derive(Clone)]
    struct Elf {
        machine: u16,
        kind: u16,
        flags: u32,
        load: u32,
        table_name: &'static [u8],
        table_addr: Option<u32>,
        table: Vec<u8>,
        /// Bytes the segment claims beyond the end of the file.
        overrun: u32,
    }

    impl Default for Elf {
        fn default() -> Self {
            Elf {
                machine: elf::EM_ARM,
                kind: elf::ET_EXEC,
                flags: EF_ARM_EABI_VER5 | 0x400,
                load: 0x2000_0000,
                table_name: b".resource_table",
                table_addr: None,
                table: table(),
                overrun: 0,
            }
        }
    }

    /// A minimal ELF32 executable: one PT_LOAD segment whose bytes are the resource table,
    /// and the sections `.resource_table` (or `table_name`) and `.shstrtab`.
    fn build(e: &Elf) -> Vec<u8> {
        let mut strtab = vec![0u8];
        strtab.extend_from_slice(e.table_name);
        strtab.push(0);
        let shstrtab_name = strtab.len() as u32;
        strtab.extend_from_slice(b".shstrtab\0");
        let data_at = 52 + 32;
        let strtab_at = data_at + e.table.len();
        let sections_at = strtab_at + strtab.len();
        let mut out = Vec::new();
        let h = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_le_bytes());
        let w = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
        out.extend_from_slice(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0");
        h(&mut out, e.kind);
        h(&mut out, e.machine);
        w(&mut out, 1); // e_version
        w(&mut out, e.load | 1); // e_entry (Thumb)
        w(&mut out, 52); // e_phoff
        w(&mut out, sections_at as u32); // e_shoff
        w(&mut out, e.flags);
        h(&mut out, 52); // e_ehsize
        h(&mut out, 32); // e_phentsize
        h(&mut out, 1); // e_phnum
        h(&mut out, 40); // e_shentsize
        h(&mut out, 3); // e_shnum
        h(&mut out, 2); // e_shstrndx
        // PT_LOAD
        w(&mut out, elf::PT_LOAD);
        w(&mut out, data_at as u32);
        w(&mut out, e.load); // p_vaddr
        w(&mut out, e.load); // p_paddr
        w(&mut out, e.table.len() as u32 + e.overrun); // p_filesz
        w(&mut out, e.table.len() as u32 + e.overrun + 256); // p_memsz
        w(&mut out, 7);
        w(&mut out, 4);
        out.extend_from_slice(&e.table);
        out.extend_from_slice(&strtab);
        out.extend_from_slice(&[0u8; 40]);
        for (name, kind, flags, addr, offset, size) in [
            (
                1,
                elf::SHT_PROGBITS,
                elf::SHF_ALLOC,
                e.table_addr.unwrap_or(e.load),
                data_at,
                e.table.len(),
            ),
            (
                shstrtab_name,
                elf::SHT_STRTAB,
                0,
                0,
                strtab_at,
                strtab.len(),
            ),
        ] {
            w(&mut out, name);
            w(&mut out, kind);
            w(&mut out, flags);
            w(&mut out, addr);
            w(&mut out, offset as u32);
            w(&mut out, size as u32);
            w(&mut out, 0);
            w(&mut out, 0);
            w(&mut out, 4);
            w(&mut out, 0);
        }
        out
    }

    fn sram() -> Vec<MemoryRegion> {
        vec![
            MemoryRegion {
                name: "FLASH".into(),
                origin: 0,
                size: 4 << 20,
            },
            MemoryRegion {
                name: "SRAM".into(),
                origin: 0x2000_0000,
                size: 64 * 1024,
            },
        ]
    }

    #[test]
    fn a_good_firmware_is_accepted_with_what_it_loads_and_provides() {
        let fw = check(&build(&Elf::default()), "m4", &sram()).unwrap();
        assert_eq!(fw.entry, 0x2000_0001);
        assert_eq!(
            fw.segments,
            [Segment {
                address: 0x2000_0000,
                size: table().len() as u64 + 256
            }]
        );
        assert_eq!((fw.resources.vdevs, fw.resources.rpmsg), (1, 1));
    }

    #[test]
    fn each_wrong_firmware_is_refused_naming_the_problem() {
        let refused = |e: Elf| check(&build(&e), "m4", &sram()).unwrap_err();
        assert_eq!(
            refused(Elf {
                machine: elf::EM_386,
                ..Elf::default()
            }),
            FirmwareError::NotArm(elf::EM_386)
        );
        assert_eq!(
            refused(Elf {
                kind: elf::ET_REL,
                ..Elf::default()
            }),
            FirmwareError::NotExecutable(elf::ET_REL)
        );
        assert_eq!(
            refused(Elf {
                flags: 0x0400_0000,
                ..Elf::default()
            }),
            FirmwareError::WrongAbi(0x0400_0000)
        );
        let outside = refused(Elf {
            load: 0x2000_ff00,
            ..Elf::default()
        });
        assert!(
            matches!(
                &outside,
                FirmwareError::OutsideMemory {
                    address: 0x2000_ff00,
                    ..
                }
            ),
            "{outside}"
        );
        assert!(
            outside.to_string().contains("SRAM 0x20000000+64 KiB"),
            "{outside}"
        );
        assert_eq!(
            refused(Elf {
                table_name: b".resource_tabl",
                ..Elf::default()
            }),
            FirmwareError::NoResourceTable
        );
        assert_eq!(
            refused(Elf {
                table_addr: Some(0x2000_8000),
                ..Elf::default()
            }),
            FirmwareError::ResourceTableNotLoaded
        );
        let mut bad_table = table();
        bad_table[4] = 3;
        assert!(matches!(
            refused(Elf {
                table: bad_table,
                ..Elf::default()
            }),
            FirmwareError::BadResourceTable(_)
        ));
        assert!(matches!(
            refused(Elf {
                overrun: 4096,
                ..Elf::default()
            }),
            FirmwareError::Malformed(m) if m.contains("past the end")
        ));
    }

    /// The committed fuzz seed is this module's good firmware, byte for byte.
    #[test]
    fn the_fuzz_seed_is_the_good_firmware() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/firmware/minimal.elf");
        if std::env::var_os("WARDEN_WRITE_SEED").is_some() {
            std::fs::write(&seed, build(&Elf::default())).unwrap();
        }
        let bytes = std::fs::read(&seed).unwrap();
        assert_eq!(bytes, build(&Elf::default()));
        check(&bytes, "m4", &sram()).unwrap();
    }

    #[test]
    fn every_truncation_of_a_good_firmware_is_refused_without_panic() {
        let good = build(&Elf::default());
        for len in 0..good.len() {
            assert!(check(&good[..len], "m4", &sram()).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn what_is_not_a_32_bit_arm_elf_is_named() {
        let regions = [MemoryRegion {
            name: "RAM".into(),
            origin: 0,
            size: 1 << 20,
        }];
        assert_eq!(check(b"", "m4", &regions), Err(FirmwareError::NotElf));
        assert_eq!(
            check(b"MZ\x90\0\0\0", "m4", &regions),
            Err(FirmwareError::NotElf)
        );
        assert_eq!(
            check(b"\x7fELF\x02\x01", "m4", &regions),
            Err(FirmwareError::Not32Bit)
        );
        assert_eq!(
            check(b"\x7fELF\x01\x02", "m4", &regions),
            Err(FirmwareError::BigEndian)
        );
        assert!(matches!(
            check(b"\x7fELF\x01\x01", "m4", &regions),
            Err(FirmwareError::Malformed(_))
        ));
    }
}
