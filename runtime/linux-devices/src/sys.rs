//! Every `unsafe` block of the crate: the ioctls the supervisor makes to set a device up before
//! its descriptor goes to a worker — the GPIO character device's line request, spidev's mode,
//! word size and clock, i2c-dev's adapter functions — with the kernel's structures as
//! `#[repr(C)]` types. Layouts and request numbers are those of the kernel uapi headers
//! (`linux/gpio.h`, `linux/spi/spidev.h`, `linux/i2c-dev.h`, `linux/i2c.h`); the tests below pin
//! them to the values the headers give on x86_64, aarch64 and armv7 (where the `_IOC` encoding
//! is the generic one: direction in bits 30–31, size in 16–29, type in 8–15, number in 0–7).
//!
//! Also the rpmsg character driver's two endpoint ioctls (`linux/rpmsg.h`): creating an
//! endpoint device through a control device (`/dev/rpmsg_ctrlN`), and destroying one.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `GPIO_V2_LINES_MAX`: offsets one request can hold (this crate uses one).
const GPIO_V2_LINES_MAX: usize = 64;
/// `GPIO_MAX_NAME_SIZE`: the consumer label, NUL included.
const GPIO_MAX_NAME_SIZE: usize = 32;
/// `GPIO_V2_LINE_NUM_ATTRS_MAX`.
const GPIO_V2_LINE_NUM_ATTRS_MAX: usize = 10;

/// `GPIO_V2_GET_LINE_IOCTL` = `_IOWR(0xB4, 0x07, struct gpio_v2_line_request)`, made on the
/// chip's descriptor; the kernel answers with a new descriptor for the requested lines.
pub(crate) const GPIO_V2_GET_LINE_IOCTL: u32 = 0xC250_B407;

/// `GPIO_V2_LINE_FLAG_ACTIVE_LOW`: never set by this crate (levels are physical; see
/// `docs/broker.md`, "Linux backends"); named so the tests can say so.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const GPIO_V2_LINE_FLAG_ACTIVE_LOW: u64 = 1 << 1;
/// `GPIO_V2_LINE_FLAG_INPUT`.
pub(crate) const GPIO_V2_LINE_FLAG_INPUT: u64 = 1 << 2;
/// `GPIO_V2_LINE_FLAG_OUTPUT`.
pub(crate) const GPIO_V2_LINE_FLAG_OUTPUT: u64 = 1 << 3;
/// `GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES`.
const GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES: u32 = 2;

/// `SPI_IOC_RD_MODE32` = `_IOR('k', 5, __u32)`.
pub(crate) const SPI_IOC_RD_MODE32: u32 = 0x8004_6B05;
/// `SPI_IOC_WR_MODE32` = `_IOW('k', 5, __u32)`.
pub(crate) const SPI_IOC_WR_MODE32: u32 = 0x4004_6B05;
/// `SPI_IOC_WR_BITS_PER_WORD` = `_IOW('k', 3, __u8)`.
pub(crate) const SPI_IOC_WR_BITS_PER_WORD: u32 = 0x4001_6B03;
/// `SPI_IOC_WR_MAX_SPEED_HZ` = `_IOW('k', 4, __u32)`.
pub(crate) const SPI_IOC_WR_MAX_SPEED_HZ: u32 = 0x4004_6B04;
/// `SPI_CPHA | SPI_CPOL`: the bits of the mode number 0–3 (`SPI_MODE_X_MASK`).
pub(crate) const SPI_MODE_X_MASK: u32 = 0x03;

/// `I2C_FUNCS`: the adapter's functionality mask (`unsigned long *`).
pub(crate) const I2C_FUNCS: u32 = 0x0705;
/// `I2C_FUNC_I2C`: the adapter does plain I2C messages, which `I2C_RDWR` needs.
pub(crate) const I2C_FUNC_I2C: u64 = 0x0000_0001;

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
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct GpioLineConfig {
    flags: u64,
    num_attrs: u32,
    padding: [u32; 5],
    attrs: [GpioLineConfigAttribute; GPIO_V2_LINE_NUM_ATTRS_MAX],
}

impl GpioLineConfig {
    /// The one line of a request as an input, without edge detection (the worker switches it
    /// on at the first wait, so no edge from before then is queued).
    pub(crate) fn input() -> GpioLineConfig {
        GpioLineConfig {
            flags: GPIO_V2_LINE_FLAG_INPUT,
            ..GpioLineConfig::default()
        }
    }

    /// The one line of a request as an output driven to `high` from the first moment (the
    /// value travels with the request, so the line never glitches through another level).
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
            // Bit 0: the request's first (and only) line.
            mask: 1,
        };
        config
    }

    #[cfg(test)]
    pub(crate) fn flags(&self) -> u64 {
        self.flags
    }

    #[cfg(test)]
    /// The output value the request starts with, if it sets one.
    pub(crate) fn output_value(&self) -> Option<bool> {
        self.attrs
            .iter()
            .take(usize::try_from(self.num_attrs).unwrap_or(0))
            .find(|a| a.attr.id == GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES && a.mask & 1 == 1)
            .map(|a| a.attr.value & 1 == 1)
    }
}

/// `struct gpio_v2_line_request`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct GpioLineRequest {
    offsets: [u32; GPIO_V2_LINES_MAX],
    consumer: [u8; GPIO_MAX_NAME_SIZE],
    config: GpioLineConfig,
    num_lines: u32,
    /// 0: the kernel's default queue of edge events (16 per line).
    event_buffer_size: u32,
    padding: [u32; 5],
    /// Filled in by the kernel: the new line request's descriptor.
    fd: i32,
}

impl GpioLineRequest {
    /// A request for the one line `offset` of a chip, labelled `consumer` (cut to 31 bytes, the
    /// kernel's limit with the NUL), configured as `config`.
    pub(crate) fn one_line(offset: u32, consumer: &str, config: GpioLineConfig) -> GpioLineRequest {
        let mut offsets = [0u32; GPIO_V2_LINES_MAX];
        offsets[0] = offset;
        let mut label = [0u8; GPIO_MAX_NAME_SIZE];
        for (to, from) in label
            .iter_mut()
            .take(GPIO_MAX_NAME_SIZE - 1)
            .zip(consumer.bytes())
        {
            *to = from;
        }
        GpioLineRequest {
            offsets,
            consumer: label,
            config,
            num_lines: 1,
            event_buffer_size: 0,
            padding: [0; 5],
            fd: -1,
        }
    }

    #[cfg(test)]
    pub(crate) fn config(&self) -> &GpioLineConfig {
        &self.config
    }

    #[cfg(test)]
    pub(crate) fn lines(&self) -> &[u32] {
        self.offsets
            .get(..usize::try_from(self.num_lines).unwrap_or(0))
            .unwrap_or_default()
    }

    #[cfg(test)]
    /// The consumer label up to its NUL.
    pub(crate) fn consumer(&self) -> &[u8] {
        let end = self
            .consumer
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(GPIO_MAX_NAME_SIZE);
        self.consumer.get(..end).unwrap_or_default()
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Requests the lines `request` names from the chip `chip`; returns the line request's
/// descriptor, which holds them until it is closed (the chip's own descriptor may be closed at
/// once).
pub(crate) fn gpio_get_line(
    chip: BorrowedFd<'_>,
    request: &mut GpioLineRequest,
) -> io::Result<OwnedFd> {
    request.fd = -1;
    // SAFETY: GPIO_V2_GET_LINE_IOCTL reads and writes back exactly one `struct
    // gpio_v2_line_request`, which `request` is (repr(C), 592 bytes, layout tested below),
    // borrowed mutably for the call; `chip` is an open descriptor for its duration.
    let rc = unsafe {
        libc::ioctl(
            chip.as_raw_fd(),
            GPIO_V2_GET_LINE_IOCTL as libc::Ioctl,
            std::ptr::from_mut(request),
        )
    };
    check(rc)?;
    if request.fd < 0 {
        return Err(io::Error::other(format!(
            "the kernel answered the line request with descriptor {}",
            request.fd
        )));
    }
    // SAFETY: on success the kernel installed a new descriptor (`anon_inode` "gpio-line") in
    // this process and wrote its number to `request.fd`; nothing else refers to it, so it is
    // ours to own and close.
    Ok(unsafe { OwnedFd::from_raw_fd(request.fd) })
}

/// The spidev device's mode word (`SPI_MODE_*` bits: CPHA, CPOL, CS_HIGH, LSB_FIRST, …).
pub(crate) fn spi_read_mode(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut mode: u32 = 0;
    // SAFETY: SPI_IOC_RD_MODE32 writes exactly one u32 to its argument, `mode`, borrowed
    // mutably for the call; `fd` is open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            SPI_IOC_RD_MODE32 as libc::Ioctl,
            std::ptr::from_mut(&mut mode),
        )
    };
    check(rc).map(|_| mode)
}

/// Sets the spidev device's whole mode word.
pub(crate) fn spi_write_mode(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: SPI_IOC_WR_MODE32 reads exactly one u32 from its argument, `mode`, which lives
    // on this stack frame for the call; `fd` is open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            SPI_IOC_WR_MODE32 as libc::Ioctl,
            std::ptr::from_ref(&mode),
        )
    };
    check(rc).map(drop)
}

/// Sets the spidev device's word size.
pub(crate) fn spi_write_bits_per_word(fd: BorrowedFd<'_>, bits: u8) -> io::Result<()> {
    // SAFETY: SPI_IOC_WR_BITS_PER_WORD reads exactly one u8 from its argument, `bits`, which
    // lives on this stack frame for the call; `fd` is open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            SPI_IOC_WR_BITS_PER_WORD as libc::Ioctl,
            std::ptr::from_ref(&bits),
        )
    };
    check(rc).map(drop)
}

/// Sets the spidev device's default (and highest) clock, used by every transfer that does not
/// name its own (the worker's never do).
pub(crate) fn spi_write_max_speed_hz(fd: BorrowedFd<'_>, hz: u32) -> io::Result<()> {
    // SAFETY: SPI_IOC_WR_MAX_SPEED_HZ reads exactly one u32 from its argument, `hz`, which
    // lives on this stack frame for the call; `fd` is open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            SPI_IOC_WR_MAX_SPEED_HZ as libc::Ioctl,
            std::ptr::from_ref(&hz),
        )
    };
    check(rc).map(drop)
}

/// The i2c-dev adapter's functionality mask (`I2C_FUNC_*`).
pub(crate) fn i2c_funcs(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut funcs: libc::c_ulong = 0;
    // SAFETY: I2C_FUNCS writes exactly one `unsigned long` to its argument, `funcs` (a
    // `c_ulong`: 32 bits on armv7, 64 elsewhere), borrowed mutably for the call; `fd` is open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            I2C_FUNCS as libc::Ioctl,
            std::ptr::from_mut(&mut funcs),
        )
    };
    check(rc)?;
    // `unsigned long` is 32 bits on armv7, where this widens; a no-op elsewhere.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(funcs))
}

/// `RPMSG_NAME_SIZE`: an endpoint name with its NUL (`struct rpmsg_endpoint_info.name`).
pub(crate) const RPMSG_NAME_SIZE: usize = 32;

/// `RPMSG_CREATE_EPT_IOCTL` = `_IOW(0xb5, 0x1, struct rpmsg_endpoint_info)`, made on a control
/// device (`/dev/rpmsg_ctrlN`); the kernel makes a new endpoint device (`/dev/rpmsgM`).
pub(crate) const RPMSG_CREATE_EPT_IOCTL: u32 = 0x4028_B501;
/// `RPMSG_DESTROY_EPT_IOCTL` = `_IO(0xb5, 0x2)`, made on an open endpoint device: removes the
/// device and ends its endpoint for every holder of the descriptor.
pub(crate) const RPMSG_DESTROY_EPT_IOCTL: u32 = 0xB502;

/// `struct rpmsg_endpoint_info`: the endpoint's service name and its two addresses.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RpmsgEndpointInfo {
    name: [u8; RPMSG_NAME_SIZE],
    src: u32,
    dst: u32,
}

impl RpmsgEndpointInfo {
    /// An endpoint named `name` (cut to 31 bytes, the kernel's limit with the NUL; callers
    /// validate it first) from local address `src` to remote address `dst`.
    pub(crate) fn new(name: &str, src: u32, dst: u32) -> RpmsgEndpointInfo {
        let mut label = [0u8; RPMSG_NAME_SIZE];
        for (to, from) in label.iter_mut().take(RPMSG_NAME_SIZE - 1).zip(name.bytes()) {
            *to = from;
        }
        RpmsgEndpointInfo {
            name: label,
            src,
            dst,
        }
    }

    #[cfg(test)]
    /// The name up to its NUL.
    pub(crate) fn name(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(RPMSG_NAME_SIZE);
        self.name.get(..end).unwrap_or_default()
    }
}

/// Asks the rpmsg control device `ctrl` for a new endpoint device as `info` describes. The
/// endpoint itself exists only while that device is open (see `rpmsg`).
pub(crate) fn rpmsg_create_endpoint(
    ctrl: BorrowedFd<'_>,
    info: &RpmsgEndpointInfo,
) -> io::Result<()> {
    // SAFETY: RPMSG_CREATE_EPT_IOCTL reads exactly one `struct rpmsg_endpoint_info` from its
    // argument, which `info` is (repr(C), 40 bytes, layout tested below), borrowed for the
    // call; the kernel writes nothing back. `ctrl` is an open descriptor for its duration.
    let rc = unsafe {
        libc::ioctl(
            ctrl.as_raw_fd(),
            RPMSG_CREATE_EPT_IOCTL as libc::Ioctl,
            std::ptr::from_ref(info),
        )
    };
    check(rc).map(drop)
}

/// Destroys the endpoint device whose open descriptor is `endpoint`: the kernel removes the
/// device and ends the endpoint (reads and writes on any copy of the descriptor then fail
/// with `EPIPE`).
pub(crate) fn rpmsg_destroy_endpoint(endpoint: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: RPMSG_DESTROY_EPT_IOCTL (`_IO`) takes no argument and touches no memory of
    // ours; the third argument is a null pointer the kernel ignores. `endpoint` is open for
    // the call.
    let rc = unsafe {
        libc::ioctl(
            endpoint.as_raw_fd(),
            RPMSG_DESTROY_EPT_IOCTL as libc::Ioctl,
            std::ptr::null::<libc::c_void>(),
        )
    };
    check(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};
    use std::os::fd::AsFd;

    use super::*;

    /// `_IOC(dir, type, nr, size)` as `asm-generic/ioctl.h` encodes it (x86_64, aarch64, armv7).
    fn ioc(dir: u32, kind: u8, nr: u8, size: usize) -> u32 {
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        assert!(size < 1 << 14, "an ioctl argument of {size} bytes");
        (dir << 30) | (size << 16) | (u32::from(kind) << 8) | u32::from(nr)
    }
    const WRITE: u32 = 1; // _IOC_WRITE: user space writes, the kernel reads
    const READ: u32 = 2; // _IOC_READ

    /// The GPIO request number embeds `sizeof(struct gpio_v2_line_request)`: equal to the
    /// number linux-raw-sys generated from the kernel's own header, it also pins the size.
    #[test]
    fn gpio_request_number_is_the_kernels() {
        assert_eq!(
            GPIO_V2_GET_LINE_IOCTL,
            linux_raw_sys::ioctl::GPIO_V2_GET_LINE_IOCTL
        );
        assert_eq!(
            ioc(READ | WRITE, 0xB4, 0x07, size_of::<GpioLineRequest>()),
            GPIO_V2_GET_LINE_IOCTL
        );
        // The line requests the worker then makes carry a `gpio_v2_line_config`; ours is the
        // same structure.
        assert_eq!(
            ioc(READ | WRITE, 0xB4, 0x0D, size_of::<GpioLineConfig>()),
            linux_raw_sys::ioctl::GPIO_V2_LINE_SET_CONFIG_IOCTL
        );
    }

    #[test]
    fn gpio_structures_have_the_kernels_layout() {
        assert_eq!(size_of::<GpioLineAttribute>(), 16);
        assert_eq!(offset_of!(GpioLineAttribute, value), 8);
        assert_eq!(size_of::<GpioLineConfigAttribute>(), 24);
        assert_eq!(offset_of!(GpioLineConfigAttribute, mask), 16);
        assert_eq!(size_of::<GpioLineConfig>(), 272);
        assert_eq!(offset_of!(GpioLineConfig, num_attrs), 8);
        assert_eq!(offset_of!(GpioLineConfig, attrs), 32);
        assert_eq!(size_of::<GpioLineRequest>(), 592);
        assert_eq!(offset_of!(GpioLineRequest, consumer), 256);
        assert_eq!(offset_of!(GpioLineRequest, config), 288);
        assert_eq!(offset_of!(GpioLineRequest, num_lines), 560);
        assert_eq!(offset_of!(GpioLineRequest, event_buffer_size), 564);
        assert_eq!(offset_of!(GpioLineRequest, padding), 568);
        assert_eq!(offset_of!(GpioLineRequest, fd), 588);
        assert_eq!(GPIO_V2_LINE_FLAG_ACTIVE_LOW, 0x2);
        assert_eq!(GPIO_V2_LINE_FLAG_INPUT, 0x4);
        assert_eq!(GPIO_V2_LINE_FLAG_OUTPUT, 0x8);
        assert_eq!(GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES, 2);
    }

    #[test]
    fn a_request_holds_one_line_with_its_label_and_value() {
        let request = GpioLineRequest::one_line(17, "warden", GpioLineConfig::output(true));
        assert_eq!(request.lines(), &[17]);
        assert_eq!(request.consumer(), b"warden");
        assert_eq!(request.config().flags(), GPIO_V2_LINE_FLAG_OUTPUT);
        assert_eq!(request.config().output_value(), Some(true));
        assert_eq!(GpioLineConfig::output(false).output_value(), Some(false));
        let input = GpioLineRequest::one_line(3, "warden", GpioLineConfig::input());
        assert_eq!(input.config().flags(), GPIO_V2_LINE_FLAG_INPUT);
        assert_eq!(input.config().output_value(), None);
        // A label never fills the array: the kernel needs its NUL.
        let long = GpioLineRequest::one_line(0, &"x".repeat(40), GpioLineConfig::input());
        assert_eq!(long.consumer().len(), GPIO_MAX_NAME_SIZE - 1);
    }

    /// The values `linux/spi/spidev.h` and `linux/i2c-dev.h` give, and the same numbers
    /// derived from the argument types.
    #[test]
    fn spi_and_i2c_request_numbers_are_the_kernels() {
        assert_eq!(SPI_IOC_RD_MODE32, 0x8004_6b05);
        assert_eq!(SPI_IOC_WR_MODE32, 0x4004_6b05);
        assert_eq!(SPI_IOC_WR_BITS_PER_WORD, 0x4001_6b03);
        assert_eq!(SPI_IOC_WR_MAX_SPEED_HZ, 0x4004_6b04);
        assert_eq!(ioc(READ, b'k', 5, size_of::<u32>()), SPI_IOC_RD_MODE32);
        assert_eq!(ioc(WRITE, b'k', 5, size_of::<u32>()), SPI_IOC_WR_MODE32);
        assert_eq!(
            ioc(WRITE, b'k', 3, size_of::<u8>()),
            SPI_IOC_WR_BITS_PER_WORD
        );
        assert_eq!(
            ioc(WRITE, b'k', 4, size_of::<u32>()),
            SPI_IOC_WR_MAX_SPEED_HZ
        );
        assert_eq!(SPI_MODE_X_MASK, 0x3);
        // i2c-dev's numbers are plain (no _IOC encoding).
        assert_eq!(I2C_FUNCS, 0x705);
        assert_eq!(I2C_FUNC_I2C, 0x1);
    }

    #[test]
    fn the_ioctls_fail_cleanly_on_a_descriptor_of_another_kind() {
        // No GPIO, I2C or SPI device exists on a build machine: a pipe stands in, and the
        // kernel refuses each request (ENOTTY) without touching memory it was not given.
        let (reader, _writer) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
        let fd = reader.as_fd();
        // Under qemu-user (armv7 tests) an ioctl it cannot translate is ENOSYS instead.
        let errno = |e: io::Error| match e.raw_os_error() {
            Some(libc::ENOSYS) if cfg!(target_arch = "arm") => Some(libc::ENOTTY),
            errno => errno,
        };
        let mut request = GpioLineRequest::one_line(0, "warden", GpioLineConfig::input());
        assert_eq!(
            gpio_get_line(fd, &mut request).err().and_then(errno),
            Some(libc::ENOTTY)
        );
        assert_eq!(spi_read_mode(fd).err().and_then(errno), Some(libc::ENOTTY));
        assert_eq!(
            spi_write_mode(fd, 0).err().and_then(errno),
            Some(libc::ENOTTY)
        );
        assert_eq!(
            spi_write_bits_per_word(fd, 8).err().and_then(errno),
            Some(libc::ENOTTY)
        );
        assert_eq!(
            spi_write_max_speed_hz(fd, 1_000_000).err().and_then(errno),
            Some(libc::ENOTTY)
        );
        assert_eq!(i2c_funcs(fd).err().and_then(errno), Some(libc::ENOTTY));
    }

    /// `linux/rpmsg.h`: the numbers linux-raw-sys generated from the kernel's header (the
    /// create number embeds `sizeof(struct rpmsg_endpoint_info)`, 40), and the same numbers
    /// derived from our structure.
    #[test]
    fn rpmsg_request_numbers_are_the_kernels() {
        assert_eq!(
            RPMSG_CREATE_EPT_IOCTL,
            linux_raw_sys::ioctl::RPMSG_CREATE_EPT_IOCTL
        );
        assert_eq!(
            RPMSG_DESTROY_EPT_IOCTL,
            linux_raw_sys::ioctl::RPMSG_DESTROY_EPT_IOCTL
        );
        assert_eq!(
            ioc(WRITE, 0xB5, 0x01, size_of::<RpmsgEndpointInfo>()),
            RPMSG_CREATE_EPT_IOCTL
        );
        assert_eq!(ioc(0, 0xB5, 0x02, 0), RPMSG_DESTROY_EPT_IOCTL);
    }

    /// `struct rpmsg_endpoint_info { char name[32]; __u32 src; __u32 dst; }` (linux-raw-sys
    /// does not generate it; the size is also pinned by the request number above).
    #[test]
    fn rpmsg_endpoint_info_has_the_kernels_layout() {
        assert_eq!(size_of::<RpmsgEndpointInfo>(), 40);
        assert_eq!(std::mem::align_of::<RpmsgEndpointInfo>(), 4);
        assert_eq!(offset_of!(RpmsgEndpointInfo, name), 0);
        assert_eq!(offset_of!(RpmsgEndpointInfo, src), 32);
        assert_eq!(offset_of!(RpmsgEndpointInfo, dst), 36);
        let info = RpmsgEndpointInfo::new("warden-intercore", 0x1000, 0x400);
        assert_eq!(info.name(), b"warden-intercore");
        assert_eq!((info.src, info.dst), (0x1000, 0x400));
        // A name never fills the array: the kernel needs its NUL.
        let long = RpmsgEndpointInfo::new(&"x".repeat(40), 1, 2);
        assert_eq!(long.name().len(), RPMSG_NAME_SIZE - 1);
    }

    #[test]
    fn the_rpmsg_ioctls_fail_cleanly_on_a_descriptor_of_another_kind() {
        let (reader, _writer) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
        let errno = |e: io::Error| match e.raw_os_error() {
            Some(libc::ENOSYS) if cfg!(target_arch = "arm") => Some(libc::ENOTTY),
            errno => errno,
        };
        let info = RpmsgEndpointInfo::new("warden-intercore", 0x1000, 0x400);
        assert_eq!(
            rpmsg_create_endpoint(reader.as_fd(), &info)
                .err()
                .and_then(errno),
            Some(libc::ENOTTY)
        );
        assert_eq!(
            rpmsg_destroy_endpoint(reader.as_fd()).err().and_then(errno),
            Some(libc::ENOTTY)
        );
    }
}
