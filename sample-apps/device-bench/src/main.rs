//! The guest of `cargo xtask bench devices` (`runtime/worker/examples/device_bench.rs`): opens
//! one peripheral, then times a tight loop of host calls on it with the WASI monotonic clock
//! and prints what it did.
//!
//! ```text
//! device-bench gpio NAME CALLS           CALLS × output-pin.set, alternating high and low
//! device-bench uart NAME BYTES CHUNK     BYTES / CHUNK × port.write of CHUNK bytes
//! ```
//!
//! Output, one line on stdout: `CALLS BYTES NANOSECONDS` (BYTES is 0 for GPIO). Only the loop is
//! timed, inside the guest: the open (a broker round trip), instantiation and the print are
//! not, so the host can compare the loop with the same loop of raw syscalls.

use std::process::ExitCode;
use std::time::Instant;

use warden::device::gpio::{Level, OutputPin};
use warden::device::types::Error;
use warden::device::uart::Port;

wit_bindgen::generate!({
    path: "../../host-api/wit",
    world: "warden:device/app",
});

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["gpio", name, calls] => number(calls).and_then(|calls| gpio(name, calls)),
        ["uart", name, bytes, chunk] => {
            number(bytes).and_then(|bytes| number(chunk).and_then(|chunk| uart(name, bytes, chunk)))
        }
        _ => Err("usage: device-bench gpio NAME CALLS | uart NAME BYTES CHUNK".to_owned()),
    };
    match result {
        Ok((calls, bytes, nanos)) => {
            println!("{calls} {bytes} {nanos}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("device-bench: {why}");
            ExitCode::FAILURE
        }
    }
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("`{text}` is not a count"))
}

fn failed(what: &str) -> impl Fn(Error) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

/// `calls` sets of the pin, alternating, so every call changes the line (the board does the
/// same work for each). Returns (calls, 0, loop nanoseconds).
fn gpio(name: &str, calls: u64) -> Result<(u64, u64, u128), String> {
    let pin = OutputPin::open(name, Level::Low).map_err(failed("opening the pin"))?;
    let started = Instant::now();
    for i in 0..calls {
        let level = if i & 1 == 0 { Level::High } else { Level::Low };
        pin.set(level).map_err(failed("set"))?;
    }
    let nanos = started.elapsed().as_nanos();
    Ok((calls, 0, nanos))
}

/// `bytes / chunk` writes of one `chunk`-byte buffer. Returns (writes, bytes written, loop
/// nanoseconds).
fn uart(name: &str, bytes: u64, chunk: u64) -> Result<(u64, u64, u128), String> {
    if chunk == 0 {
        return Err("a chunk of 0 bytes".to_owned());
    }
    let port = Port::open(name).map_err(failed("opening the port"))?;
    let buf = vec![0x55u8; usize::try_from(chunk).map_err(|_| "chunk too large")?];
    let writes = bytes / chunk;
    let started = Instant::now();
    for _ in 0..writes {
        port.write(&buf).map_err(failed("write"))?;
    }
    let nanos = started.elapsed().as_nanos();
    Ok((writes, writes * chunk, nanos))
}
