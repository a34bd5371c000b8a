//! Every `unsafe` block of the crate: the ioctls of the GPIO character device (v2 line
//! requests), i2c-dev and spidev, with the kernel's structures as `#[repr(C)]` types. Layouts
//! and request numbers are those of the kernel uapi headers (`linux/gpio.h`,
//! `linux/i2c-dev.h`, `linux/i2c.h`, `linux/spi/spidev.h`); the tests below pin them to the
//! values the headers give on x86_64, aarch64 and armv7. Each request number here is also an
//! entry of the `worker_devices` seccomp profile, and the profile allows no other (tested
//! below against `runtime/sandbox/seccomp/*.json`).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `GPIO_V2_LINE_NUM_ATTRS_MAX`.
const GPIO_V2_LINE_NUM_ATTRS_MAX: usize = 10;

/// `GPIO_V2_LINE_SET_CONFIG_IOCTL` = `_IOWR(0xB4, 0x0D, struct gpio_v2_line_config)`.
pub(crate) const GPIO_V2_LINE_SET_CONFIG_IOCTL: u32 = 0xC110_B40D;
/// `GPIO_V2_LINE_GET_VALUES_IOCTL` = `_IOWR(0xB4, 0x0E, struct gpio_v2_line_values)`.
pub(crate) const GPIO_V2_LINE_GET_VALUES_IOCTL: u32 = 0xC010_B40E;
/// `GPIO_V2_LINE_SET_VALUES_IOCTL` = `_IOWR(0xB4, 0x0F, struct gpio_v2_line_values)`.
pub(crate) const GPIO_V2_LINE_SET_VALUES_IOCTL: u32 = 0xC010_B40F;
/// `I2C_RDWR`: a combined transaction of `struct i2c_msg`s.
pub(crate) const I2C_RDWR: u32 = 0x0707;

/// `GPIO_V2_LINE_FLAG_INPUT`.
pub(crate) const GPIO_V2_LINE_FLAG_INPUT: u64 = 1 << 2;
/// `GPIO_V2_LINE_FLAG_OUTPUT`.
pub(crate) const GPIO_V2_LINE_FLAG_OUTPUT: u64 = 1 << 3;
/// `GPIO_V2_LINE_FLAG_EDGE_RISING`.
pub(crate) const GPIO_V2_LINE_FLAG_EDGE_RISING: u64 = 1 << 4;
/// `GPIO_V2_LINE_FLAG_EDGE_FALLING`.
pub(crate) const GPIO_V2_LINE_FLAG_EDGE_FALLING: u64 = 1 << 5;
/// `GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES`.
const GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES: u32 = 2;
/// `GPIO_V2_LINE_EVENT_RISING_EDGE`.
pub(crate) const GPIO_V2_LINE_EVENT_RISING_EDGE: u32 = 1;
/// `GPIO_V2_LINE_EVENT_FALLING_EDGE`.
pub(crate) const GPIO_V2_LINE_EVENT_FALLING_EDGE: u32 = 2;

/// `I2C_M_RD`: the message is a read.
const I2C_M_RD: u16 = 0x0001;
/// `I2C_RDWR_IOCTL_MAX_MSGS`.
pub(crate) const I2C_RDWR_IOCTL_MAX_MSGS: usize = 42;

/// Most transfers in one `SPI_IOC_MESSAGE` this crate sends: the protocol's `MAX_OPS`, one
/// transfer per operation. Every `SPI_IOC_MESSAGE(1..=16)` is in the seccomp profile.
pub(crate) const SPI_MAX_TRANSFERS: usize = warden_ipc::sim::MAX_OPS;

/// `SPI_IOC_MESSAGE(n)` = `_IOW('k', 0, char[n * sizeof(struct spi_ioc_transfer)])`.
pub(crate) const fn spi_ioc_message(n: u32) -> u32 {
    const IOC_WRITE: u32 = 1 << 30;
    IOC_WRITE | ((n * SPI_IOC_TRANSFER_SIZE) << 16) | (0x6B << 8)
}

/// `sizeof(struct spi_ioc_transfer)`, the same on every architecture (pointers travel as u64).
const SPI_IOC_TRANSFER_SIZE: u32 = 32;

/// `struct gpio_v2_line_values`: bit `i` is line `i` of the request.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct GpioLineValues {
    pub(crate) bits: u64,
    pub(crate) mask: u64,
}

/// `struct gpio_v2_line_attribute`; the union (`flags`, `values`, `debounce_period_us`) is
/// its widest member, a u64 (this crate sets only `values`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct GpioLineAttribute {
    id: u32,
    padding: u32,
    value: u64,
}

/// `struct gpio_v2_line_config_attribute`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct GpioLineConfigAttribute {
    attr: GpioLineAttribute,
    mask: u64,
}

/// `struct gpio_v2_line_config`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct GpioLineConfig {
    flags: u64,
    num_attrs: u32,
    padding: [u32; 5],
    attrs: [GpioLineConfigAttribute; GPIO_V2_LINE_NUM_ATTRS_MAX],
}

impl GpioLineConfig {
    /// The one line of a request as an input with `flags` (e.g. edge detection).
    pub(crate) fn input(flags: u64) -> GpioLineConfig {
        GpioLineConfig {
            flags: GPIO_V2_LINE_FLAG_INPUT | flags,
            ..GpioLineConfig::default()
        }
    }

    /// The one line of a request as an output driven to `high` from the first moment.
    pub(crate) fn output(high: bool) -> GpioLineConfig {
        let mut config = GpioLineConfig {
            flags: GPIO_V2_LINE_FLAG_OUTPUT,
            num_attrs: 1,
            ..GpioLineConfig::default()
        };
        config.attrs[0] = GpioLineConfigAttribute {
            attr: GpioLineAttribute {
                id: GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES,
                padding: 0,
                value: u64::from(high),
            },
            mask: 1,
        };
        config
    }
}

/// `struct gpio_v2_line_event`, as `read` returns it from a line request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GpioLineEvent {
    pub(crate) timestamp_ns: u64,
    /// `GPIO_V2_LINE_EVENT_RISING_EDGE` or `_FALLING_EDGE`.
    pub(crate) id: u32,
    pub(crate) offset: u32,
}

/// `sizeof(struct gpio_v2_line_event)`.
pub(crate) const GPIO_LINE_EVENT_SIZE: usize = 48;

impl GpioLineEvent {
    /// Decodes one event from the bytes `read` returned (native byte order, the kernel's
    /// layout: timestamp at 0, id at 8, offset at 12).
    pub(crate) fn from_bytes(bytes: &[u8; GPIO_LINE_EVENT_SIZE]) -> GpioLineEvent {
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_ne_bytes(b)
        };
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[at..at + 4]);
            u32::from_ne_bytes(b)
        };
        GpioLineEvent {
            timestamp_ns: u64_at(0),
            id: u32_at(8),
            offset: u32_at(12),
        }
    }
}

/// `struct i2c_msg`.
#[repr(C)]
#[derive(Debug)]
struct I2cMsg {
    addr: u16,
    flags: u16,
    len: u16,
    buf: *mut u8,
}

/// `struct i2c_rdwr_ioctl_data`.
#[repr(C)]
#[derive(Debug)]
struct I2cRdwrIoctlData {
    msgs: *mut I2cMsg,
    nmsgs: u32,
}

/// `struct spi_ioc_transfer`.
#[repr(C)]
#[derive(Debug, Default)]
struct SpiIocTransfer {
    tx_buf: u64,
    rx_buf: u64,
    len: u32,
    speed_hz: u32,
    delay_usecs: u16,
    bits_per_word: u8,
    cs_change: u8,
    tx_nbits: u8,
    rx_nbits: u8,
    word_delay_usecs: u8,
    pad: u8,
}

/// One message of an I2C transaction: `buf` is written out, or filled by a read.
#[derive(Debug)]
pub(crate) struct I2cSegment {
    pub(crate) read: bool,
    pub(crate) buf: Vec<u8>,
}

/// One transfer of an SPI message: `tx` is sent (or zeros, if `None`), `rx` (if any) is
/// filled with as many bytes; with neither, the transfer is only a `delay_us` with chip select
/// held.
#[derive(Debug, Default)]
pub(crate) struct SpiSegment {
    pub(crate) tx: Option<Vec<u8>>,
    pub(crate) rx: Option<Vec<u8>>,
    pub(crate) delay_us: u16,
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.to_owned())
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Reads the line's level into `values.bits` (bit 0, the request's one line; `mask` 1).
pub(crate) fn gpio_get_values(fd: BorrowedFd<'_>, values: &mut GpioLineValues) -> io::Result<()> {
    // SAFETY: GET_VALUES reads and writes exactly one `struct gpio_v2_line_values`, which
    // `values` is (repr(C), same layout, tested), borrowed mutably for the call; `fd` is open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            GPIO_V2_LINE_GET_VALUES_IOCTL as libc::Ioctl,
            std::ptr::from_mut(values),
        )
    };
    check(rc).map(drop)
}

/// Drives the lines `values.mask` selects to `values.bits`.
pub(crate) fn gpio_set_values(fd: BorrowedFd<'_>, values: &mut GpioLineValues) -> io::Result<()> {
    // SAFETY: SET_VALUES reads (and may write back) exactly one `struct gpio_v2_line_values`,
    // which `values` is, borrowed mutably for the call; `fd` is open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            GPIO_V2_LINE_SET_VALUES_IOCTL as libc::Ioctl,
            std::ptr::from_mut(values),
        )
    };
    check(rc).map(drop)
}

/// Reconfigures every line of the request (direction, edges, output value).
pub(crate) fn gpio_set_config(fd: BorrowedFd<'_>, config: &mut GpioLineConfig) -> io::Result<()> {
    // SAFETY: SET_CONFIG reads (and may write back) exactly one `struct gpio_v2_line_config`,
    // which `config` is (repr(C), 272 bytes, tested), borrowed mutably for the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            GPIO_V2_LINE_SET_CONFIG_IOCTL as libc::Ioctl,
            std::ptr::from_mut(config),
        )
    };
    check(rc).map(drop)
}

/// Runs `segments` as one combined I2C transaction with the target at `address`; reads fill
/// their buffers.
pub(crate) fn i2c_rdwr(
    fd: BorrowedFd<'_>,
    address: u16,
    segments: &mut [I2cSegment],
) -> io::Result<()> {
    if segments.is_empty() || segments.len() > I2C_RDWR_IOCTL_MAX_MSGS {
        return Err(invalid("an I2C transaction of 1 to 42 messages"));
    }
    let mut msgs = Vec::with_capacity(segments.len());
    for segment in segments.iter_mut() {
        msgs.push(I2cMsg {
            addr: address,
            flags: if segment.read { I2C_M_RD } else { 0 },
            len: u16::try_from(segment.buf.len())
                .map_err(|_| invalid("an I2C message longer than 65535 bytes"))?,
            buf: segment.buf.as_mut_ptr(),
        });
    }
    let mut data = I2cRdwrIoctlData {
        msgs: msgs.as_mut_ptr(),
        nmsgs: u32::try_from(msgs.len()).map_err(|_| invalid("too many I2C messages"))?,
    };
    // SAFETY: `data` points at `msgs`, `nmsgs` valid `struct i2c_msg`s; each message's `buf`
    // points at its segment's buffer of exactly `len` bytes, borrowed mutably (`segments`) for
    // the call, so the kernel may read (writes) or fill (reads) them. `msgs` and the buffers
    // outlive the call and are not moved during it.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            I2C_RDWR as libc::Ioctl,
            std::ptr::from_mut(&mut data),
        )
    };
    check(rc).map(drop)
}

/// Runs `segments` as one SPI message (chip select held throughout); receive buffers fill.
pub(crate) fn spi_message(fd: BorrowedFd<'_>, segments: &mut [SpiSegment]) -> io::Result<()> {
    if segments.is_empty() || segments.len() > SPI_MAX_TRANSFERS {
        return Err(invalid("an SPI message of 1 to 16 transfers"));
    }
    let mut transfers = Vec::with_capacity(segments.len());
    for segment in segments.iter_mut() {
        let len = match (&segment.tx, &segment.rx) {
            (Some(tx), Some(rx)) if tx.len() != rx.len() => {
                return Err(invalid(
                    "a full-duplex transfer with buffers of two lengths",
                ));
            }
            (Some(tx), _) => tx.len(),
            (None, Some(rx)) => rx.len(),
            (None, None) => 0,
        };
        transfers.push(SpiIocTransfer {
            // The kernel takes user addresses as u64 on every architecture.
            tx_buf: segment
                .tx
                .as_ref()
                .map_or(0, |b| b.as_ptr() as usize as u64),
            rx_buf: segment
                .rx
                .as_mut()
                .map_or(0, |b| b.as_mut_ptr() as usize as u64),
            len: u32::try_from(len).map_err(|_| invalid("an SPI transfer over 4 GiB"))?,
            delay_usecs: segment.delay_us,
            ..SpiIocTransfer::default()
        });
    }
    let count = u32::try_from(transfers.len()).map_err(|_| invalid("too many transfers"))?;
    // SAFETY: SPI_IOC_MESSAGE(n) reads `n` `struct spi_ioc_transfer`s (repr(C), 32 bytes,
    // tested) from `transfers`, which holds exactly `n`; each `tx_buf` points at `len`
    // readable bytes and each `rx_buf` at `len` writable bytes of a segment borrowed mutably
    // for the call (0 where there is none), all outliving the call and not moved during it.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            spi_ioc_message(count) as libc::Ioctl,
            transfers.as_mut_ptr(),
        )
    };
    check(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    /// The values `linux/gpio.h`, `linux/i2c-dev.h` and `linux/spi/spidev.h` (Linux 6.x) give
    /// on x86_64, aarch64 and armv7 alike (checked with the C compilers for each).
    #[test]
    fn request_numbers_are_the_kernels() {
        assert_eq!(GPIO_V2_LINE_SET_CONFIG_IOCTL, 0xc110_b40d);
        assert_eq!(GPIO_V2_LINE_GET_VALUES_IOCTL, 0xc010_b40e);
        assert_eq!(GPIO_V2_LINE_SET_VALUES_IOCTL, 0xc010_b40f);
        assert_eq!(I2C_RDWR, 0x707);
        assert_eq!(spi_ioc_message(1), 0x4020_6b00);
        assert_eq!(spi_ioc_message(16), 0x4200_6b00);
        // The _IOC encoding of those derived here from the structures' sizes.
        let iowr = |nr: u32, size: usize| (3 << 30) | ((size as u32) << 16) | (0xB4 << 8) | nr;
        assert_eq!(
            iowr(0x0D, size_of::<GpioLineConfig>()),
            GPIO_V2_LINE_SET_CONFIG_IOCTL
        );
        assert_eq!(
            iowr(0x0E, size_of::<GpioLineValues>()),
            GPIO_V2_LINE_GET_VALUES_IOCTL
        );
        assert_eq!(
            iowr(0x0F, size_of::<GpioLineValues>()),
            GPIO_V2_LINE_SET_VALUES_IOCTL
        );
        assert_eq!(size_of::<SpiIocTransfer>() as u32, SPI_IOC_TRANSFER_SIZE);
    }

    #[test]
    fn gpio_structures_have_the_kernels_layout() {
        assert_eq!(size_of::<GpioLineValues>(), 16);
        assert_eq!(size_of::<GpioLineAttribute>(), 16);
        assert_eq!(size_of::<GpioLineConfigAttribute>(), 24);
        assert_eq!(size_of::<GpioLineConfig>(), 272);
        assert_eq!(offset_of!(GpioLineConfig, num_attrs), 8);
        assert_eq!(offset_of!(GpioLineConfig, attrs), 32);
        assert_eq!(offset_of!(GpioLineConfigAttribute, mask), 16);
        assert_eq!(offset_of!(GpioLineAttribute, value), 8);
        assert_eq!(GPIO_V2_LINE_FLAG_INPUT, 0x4);
        assert_eq!(GPIO_V2_LINE_FLAG_OUTPUT, 0x8);
        assert_eq!(GPIO_V2_LINE_FLAG_EDGE_RISING, 0x10);
        assert_eq!(GPIO_V2_LINE_FLAG_EDGE_FALLING, 0x20);
        assert_eq!(GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES, 2);
        assert_eq!(
            (
                GPIO_V2_LINE_EVENT_RISING_EDGE,
                GPIO_V2_LINE_EVENT_FALLING_EDGE
            ),
            (1, 2)
        );
    }

    #[test]
    fn an_output_config_sets_the_value_attribute_of_line_0() {
        let config = GpioLineConfig::output(true);
        assert_eq!(config.flags, GPIO_V2_LINE_FLAG_OUTPUT);
        assert_eq!(config.num_attrs, 1);
        assert_eq!(config.attrs[0].attr.id, GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES);
        assert_eq!((config.attrs[0].attr.value, config.attrs[0].mask), (1, 1));
        let input = GpioLineConfig::input(GPIO_V2_LINE_FLAG_EDGE_RISING);
        assert_eq!(input.flags, 0x14);
        assert_eq!(input.num_attrs, 0);
    }

    #[test]
    fn a_line_event_decodes_from_the_kernels_layout() {
        let mut bytes = [0u8; GPIO_LINE_EVENT_SIZE];
        bytes[0..8].copy_from_slice(&123_456_789u64.to_ne_bytes());
        bytes[8..12].copy_from_slice(&GPIO_V2_LINE_EVENT_FALLING_EDGE.to_ne_bytes());
        bytes[12..16].copy_from_slice(&17u32.to_ne_bytes());
        bytes[16..20].copy_from_slice(&5u32.to_ne_bytes()); // seqno, not decoded
        assert_eq!(
            GpioLineEvent::from_bytes(&bytes),
            GpioLineEvent {
                timestamp_ns: 123_456_789,
                id: GPIO_V2_LINE_EVENT_FALLING_EDGE,
                offset: 17
            }
        );
    }

    #[test]
    fn i2c_and_spi_structures_have_the_kernels_layout() {
        // `struct i2c_msg`: 16 bytes with 64-bit pointers, 12 with 32-bit ones.
        let pointer = size_of::<usize>();
        assert_eq!(size_of::<I2cMsg>(), 8 + pointer);
        assert_eq!(offset_of!(I2cMsg, len), 4);
        assert_eq!(offset_of!(I2cMsg, buf), 8);
        assert_eq!(size_of::<I2cRdwrIoctlData>(), 2 * pointer);
        assert_eq!(offset_of!(I2cRdwrIoctlData, nmsgs), pointer);
        assert_eq!(I2C_M_RD, 1);
        assert_eq!(I2C_RDWR_IOCTL_MAX_MSGS, 42);
        assert_eq!(size_of::<SpiIocTransfer>(), 32);
        assert_eq!(offset_of!(SpiIocTransfer, len), 16);
        assert_eq!(offset_of!(SpiIocTransfer, speed_hz), 20);
        assert_eq!(offset_of!(SpiIocTransfer, delay_usecs), 24);
        assert_eq!(offset_of!(SpiIocTransfer, pad), 31);
    }

    /// The ioctl requests `worker_devices` allows on every architecture are exactly the ones
    /// this crate makes: tcdrain's `TCSBRK` and the requests above.
    #[test]
    fn the_seccomp_profiles_allow_exactly_these_requests() {
        let files = [
            include_str!("../../../runtime/sandbox/seccomp/x86_64.json"),
            include_str!("../../../runtime/sandbox/seccomp/aarch64.json"),
            include_str!("../../../runtime/sandbox/seccomp/armv7.json"),
        ];
        // An unsigned long: 64 bits here, 32 on armv7.
        #[allow(clippy::unnecessary_cast)]
        let tcsbrk = libc::TCSBRK as u64;
        let mut ours: Vec<u64> = vec![
            tcsbrk,
            u64::from(GPIO_V2_LINE_SET_CONFIG_IOCTL),
            u64::from(GPIO_V2_LINE_GET_VALUES_IOCTL),
            u64::from(GPIO_V2_LINE_SET_VALUES_IOCTL),
            u64::from(I2C_RDWR),
        ];
        ours.extend((1..=SPI_MAX_TRANSFERS as u32).map(|n| u64::from(spi_ioc_message(n))));
        ours.sort_unstable();
        for text in files {
            let file: serde_json::Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
            let requests = |profile: &str| -> Vec<u64> {
                let mut found: Vec<u64> = file["profiles"][profile]["syscalls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|rule| rule["syscall"] == "ioctl")
                    .map(|rule| {
                        assert_eq!(rule["args"][0]["index"], 1, "{rule}");
                        assert_eq!(rule["args"][0]["op"], "eq", "{rule}");
                        rule["args"][0]["val"].as_u64().unwrap_or_default()
                    })
                    .collect();
                found.sort_unstable();
                found
            };
            assert_eq!(requests("worker_devices"), ours, "{}", file["arch"]);
            assert!(requests("worker").is_empty(), "{}", file["arch"]);
            assert_eq!(
                file["profiles"]["worker_storage_devices"]["extends"],
                serde_json::json!(["worker_storage", "worker_devices"])
            );
        }
    }

    #[test]
    fn the_ioctls_fail_cleanly_on_a_descriptor_of_another_kind() {
        // No GPIO, I2C or SPI device exists on a build machine: a pipe stands in, and the
        // kernel refuses each request (ENOTTY) without touching memory it was not given.
        let (reader, _writer) = rustix::pipe::pipe().unwrap_or_else(|e| panic!("{e}"));
        use std::os::fd::AsFd;
        let fd = reader.as_fd();
        // On armv7 these tests run under qemu-user, which answers ENOSYS to an ioctl it has no
        // translation for instead of passing it to the kernel.
        let enotty = |r: io::Result<()>| match r.err().and_then(|e| e.raw_os_error()) {
            Some(libc::ENOSYS) if cfg!(target_arch = "arm") => Some(libc::ENOTTY),
            errno => errno,
        };
        assert_eq!(
            enotty(gpio_get_values(fd, &mut GpioLineValues::default())),
            Some(libc::ENOTTY)
        );
        assert_eq!(
            enotty(gpio_set_config(fd, &mut GpioLineConfig::output(false))),
            Some(libc::ENOTTY)
        );
        let mut i2c = [I2cSegment {
            read: true,
            buf: vec![0; 2],
        }];
        assert_eq!(enotty(i2c_rdwr(fd, 0x48, &mut i2c)), Some(libc::ENOTTY));
        let mut spi = [SpiSegment {
            tx: Some(vec![1, 2]),
            rx: Some(vec![0, 0]),
            delay_us: 0,
        }];
        assert_eq!(enotty(spi_message(fd, &mut spi)), Some(libc::ENOTTY));
        assert!(spi_message(fd, &mut []).is_err());
    }
}
