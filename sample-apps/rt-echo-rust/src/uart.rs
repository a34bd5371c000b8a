//! UART0 of mps2-an386: an Arm CMSDK APB UART at `0x4000_4000`, polled.

use core::ptr;

const BASE: usize = 0x4000_4000;
const DATA: usize = BASE;
const STATE: usize = BASE + 0x04;
const CTRL: usize = BASE + 0x08;
const BAUDDIV: usize = BASE + 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;

/// The board's 25 MHz peripheral clock over 115200 baud (the emulator ignores the rate, but a
/// divider below 16 is invalid).
const DIVIDER: u32 = 25_000_000 / 115_200;

fn read(register: usize) -> u32 {
    // SAFETY: `register` is one of the UART's word-aligned registers above, always mapped on
    // this board; a volatile read has no effect beyond the device's own.
    unsafe { ptr::read_volatile(register as *const u32) }
}

fn write(register: usize, value: u32) {
    // SAFETY: as in `read`; the firmware is the UART's only user.
    unsafe { ptr::write_volatile(register as *mut u32, value) }
}

/// The UART, enabled. Only one exists ([`Uart::take`] is called once, from `main`).
pub struct Uart(());

impl Uart {
    pub fn take() -> Self {
        write(BAUDDIV, DIVIDER);
        write(CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE);
        // QEMU's model looks at its input again only when DATA is read, not when the receiver
        // is enabled: without this read the first byte waits for the emulator's next unrelated
        // wake-up (about a second).
        let _ = read(DATA);
        Uart(())
    }

    /// Waits for a byte and returns it.
    pub fn read_byte(&self) -> u8 {
        while read(STATE) & STATE_RX_FULL == 0 {}
        read(DATA) as u8
    }

    /// Waits until the transmitter has room, then sends `byte`.
    pub fn write_byte(&self, byte: u8) {
        while read(STATE) & STATE_TX_FULL != 0 {}
        write(DATA, u32::from(byte));
    }

    pub fn write_all(&self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }
}
