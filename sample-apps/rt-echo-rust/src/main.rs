//! rt-echo-rust: the inter-core echo service on the emulated Cortex-M4 (mps2-an386).
//!
//! Every frame addressed to the service endpoint (0x400) is answered with the same payload,
//! from 0x400 to the sender's address. Two payloads are commands instead:
//!
//! - `flood:N` (N decimal, at most 100000): N frames `n:0` … `n:<N-1>`, then `flood-done`;
//! - `crash`: a fault (a branch to an address without the Thumb bit); the fault handler ends
//!   the emulator with a semihosting failure exit, so the host sees the core crash.
//!
//! Frames to any other address are ignored.
#![no_std]
#![no_main]

mod frame;
mod resource_table;
mod uart;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::debug;

use frame::Parser;
use uart::Uart;

/// The service endpoint (the first dynamic rpmsg address).
const SERVICE_ENDPOINT: u32 = 0x400;
const FLOOD_MAX: u32 = 100_000;

#[entry]
fn main() -> ! {
    let uart = Uart::take();
    let mut parser = Parser::new();
    loop {
        let byte = uart.read_byte();
        parser.push(byte, |f| serve(&uart, f));
    }
}

fn serve(uart: &Uart, f: &frame::Frame<'_>) {
    if f.dst != SERVICE_ENDPOINT {
        return;
    }
    if f.payload == b"crash" {
        crash();
    } else if let Some(n) = flood_count(f.payload) {
        for i in 0..n {
            let mut buf = [0u8; 16];
            let len = counter(i, &mut buf);
            frame::send(uart, SERVICE_ENDPOINT, f.src, &buf[..len]);
        }
        frame::send(uart, SERVICE_ENDPOINT, f.src, b"flood-done");
    } else {
        frame::send(uart, SERVICE_ENDPOINT, f.src, f.payload);
    }
}

/// The N of `flood:N`: 1 to 6 decimal digits, at most [`FLOOD_MAX`].
fn flood_count(payload: &[u8]) -> Option<u32> {
    let digits = payload.strip_prefix(b"flood:")?;
    if digits.is_empty() || digits.len() > 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    (n <= FLOOD_MAX).then_some(n)
}

/// Writes `n:<i>` into `out` and returns its length.
fn counter(mut i: u32, out: &mut [u8; 16]) -> usize {
    let mut digits = [0u8; 10];
    let mut d = 0;
    loop {
        digits[d] = b'0' + (i % 10) as u8;
        d += 1;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    out[0] = b'n';
    out[1] = b':';
    for k in 0..d {
        out[2 + k] = digits[d - 1 - k];
    }
    2 + d
}

fn crash() -> ! {
    // SAFETY: the fault is the point, and `noreturn` holds: a branch to an even address
    // clears the Thumb bit, the next instruction raises an INVSTATE UsageFault, which
    // escalates to HardFault, whose handler ends the emulator. No memory is touched.
    unsafe { core::arch::asm!("bx {0}", in(reg) 0x200u32, options(noreturn)) }
}

/// Ends the emulator with a failure status (SYS_EXIT, ADP_Stopped_RunTimeErrorUnknown), then
/// stops for good where nothing handles semihosting.
fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    exit_failure()
}

#[exception]
unsafe fn DefaultHandler(_irqn: i16) {
    exit_failure()
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    exit_failure()
}
