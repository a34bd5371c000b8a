//! The real-time firmware samples (`sample-apps/rt-echo-c`, `sample-apps/rt-echo-rust`):
//! each passes the device's firmware check for the simulated board's core `rt0`, and booted
//! on the emulated core (`qemu-system-arm -M mps2-an386`, UART0 on the emulator's stdio)
//! serves inter-core frames as docs/formats/intercore.md says — echo, frames for other
//! endpoints ignored, line noise survived, a flood delivered whole and in order, a crash seen
//! by the host as the emulator's failure exit.
//!
//! The ELFs are `WARDEN_RT_ECHO_C` and `WARDEN_RT_ECHO_RUST` (`cargo xtask test` builds
//! them), or, when those are not set, built here by xtask's own build code. Nothing is
//! skipped: a missing compiler or emulator fails the test, naming it.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use warden_ipc::intercore::{
    Decoder, DecoderStats, FIRMWARE_ENDPOINT, Frame, MAX_PAYLOAD, SYNC, encode,
};
use warden_policy::ids::ComponentId;
use warden_policy::manifest::{ApplicationType, Manifest};

mod common;

/// How long any one expected frame may take: generous, as CI shares its two cores; a working
/// firmware answers in milliseconds.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long the emulator may take to exit after `crash`.
const CRASH_EXIT: Duration = Duration::from_secs(5);
/// The A7 side's channel addresses (`0x1000 + n`).
const CHANNEL: u32 = 0x1000;
const OTHER_CHANNEL: u32 = 0x1001;
/// The A7 intercore sample both manifests allow.
const A7_SAMPLE: &str = "7c0d1e2f-3a4b-4c5d-8e6f-708192a3b4c5";

fn root() -> PathBuf {
    common::repo()
}

#[derive(Clone, Copy, Debug)]
enum Sample {
    C,
    Rust,
}

impl Sample {
    fn dir(self) -> PathBuf {
        root().join("sample-apps").join(match self {
            Sample::C => "rt-echo-c",
            Sample::Rust => "rt-echo-rust",
        })
    }

    fn elf(self) -> PathBuf {
        let [(_, c), (_, rust)] = common::rtcore::firmware_samples();
        match self {
            Sample::C => c,
            Sample::Rust => rust,
        }
    }
}

fn frame(src: u32, dst: u32, payload: &[u8]) -> Frame {
    Frame {
        src,
        dst,
        payload: payload.to_vec(),
    }
}

/// The firmware's answer to `to`.
fn reply(to: u32, payload: &[u8]) -> Frame {
    frame(FIRMWARE_ENDPOINT, to, payload)
}

// ---- the device's firmware check -------------------------------------------------------

fn passes_the_device_check(sample: Sample) {
    let board_file = root().join("buildroot-overlay/board/warden-sim/board.json");
    let (board, _) = wardend::device::load_board(&board_file).unwrap();
    let rt0 = board
        .real_time_cores
        .iter()
        .find(|c| c.name == "rt0")
        .unwrap();
    let elf = sample.elf();
    let bytes = std::fs::read(&elf).unwrap();
    let fw = warden_policy::firmware::check(&bytes, "rt0", &rt0.memory)
        .unwrap_or_else(|e| panic!("{} refused: {e}", elf.display()));
    assert_eq!(fw.resources.vdevs, 1, "{fw:?}");
    assert_eq!(fw.resources.rpmsg, 1, "{fw:?}");
    // The vector table is at 0 (SSRAM1), where the M4 reads it at reset.
    assert!(fw.segments.iter().any(|s| s.address == 0), "{fw:?}");
}

#[test]
fn the_c_sample_passes_the_device_firmware_check() {
    passes_the_device_check(Sample::C);
}

#[test]
fn the_rust_sample_passes_the_device_firmware_check() {
    passes_the_device_check(Sample::Rust);
}

#[test]
fn the_manifests_are_real_time_apps_allowed_to_talk_to_the_a7_sample() {
    let a7: ComponentId = A7_SAMPLE.parse().unwrap();
    let mut ids = Vec::new();
    for sample in [Sample::C, Sample::Rust] {
        let path = sample.dir().join("app_manifest.json");
        let text = std::fs::read(&path).unwrap();
        let manifest = Manifest::parse(&path.display().to_string(), &text)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        assert_eq!(manifest.application_type, ApplicationType::RealTimeCapable);
        assert_eq!(manifest.entry_payload_name(), "bin/app");
        assert_eq!(manifest.capabilities.allowed_application_connections, [a7]);
        assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
        ids.push(manifest.component_id);
    }
    assert_ne!(ids[0], ids[1], "each sample has its own ComponentId");
}

// ---- the firmware on the emulated core -------------------------------------------------

/// The firmware running in qemu-system-arm, its UART0 on the emulator's stdin and stdout.
struct Core {
    child: Child,
    stdin: ChildStdin,
    frames: Receiver<Frame>,
    /// Decodes stdout; ends with the emulator, returning what its decoder saw.
    reader: Option<JoinHandle<DecoderStats>>,
    stderr: Option<JoinHandle<String>>,
}

impl Core {
    fn boot(elf: &Path) -> Core {
        let mut child = Command::new("qemu-system-arm")
            .args(["-M", "mps2-an386", "-nographic", "-monitor", "none"])
            .args(["-serial", "stdio"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-kernel")
            .arg(elf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "qemu-system-arm could not start ({e}); it is Debian's qemu-system-arm, \
                     which `cargo xtask firmware` installs"
                )
            });
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, frames) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut decoder = Decoder::new();
            let mut buf = [0u8; 8192];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => decoder.feed(&buf[..n], |f| {
                        let _ = tx.send(f);
                    }),
                }
            }
            decoder.finish();
            decoder.stats()
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Core {
            child,
            stdin,
            frames,
            reader: Some(reader),
            stderr: Some(stderr),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    fn send(&mut self, frame: &Frame) {
        self.send_raw(&encode(frame).unwrap());
    }

    fn receive(&mut self) -> Frame {
        match self.frames.recv_timeout(PATIENCE) {
            Ok(frame) => frame,
            Err(e) => {
                let exited = self.child.try_wait().unwrap();
                panic!(
                    "no frame from the firmware within {PATIENCE:?} ({e}; emulator: {exited:?}, \
                     stderr: {})",
                    self.stderr_text()
                )
            }
        }
    }

    /// Sends `payload` to the service from `channel` and expects it back.
    fn echo(&mut self, channel: u32, payload: &[u8]) {
        self.send(&frame(channel, FIRMWARE_ENDPOINT, payload));
        assert_eq!(self.receive(), reply(channel, payload));
    }

    fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn stderr_text(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }

    /// Stops the emulator; what the host's decoder saw on the whole line.
    fn stop(mut self) -> DecoderStats {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reader.take().unwrap().join().unwrap()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serves_frames(sample: Sample) {
    let started = Instant::now();
    let mut core = Core::boot(&sample.elf());

    // Echo, to whichever channel asked, of payloads from 1 to 496 bytes, including the sync
    // mark and bytes that look like a header.
    core.echo(CHANNEL, b"hello");
    core.echo(CHANNEL, b"x");
    core.echo(OTHER_CHANNEL, &SYNC);
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    core.echo(CHANNEL, &binary);
    let largest: Vec<u8> = (0..MAX_PAYLOAD).map(|i| (i * 31 % 256) as u8).collect();
    core.echo(OTHER_CHANNEL, &largest);
    // Words that are not commands are echoed like any other.
    for not_a_command in [
        &b"flood:"[..],
        b"flood:100001",
        b"flood:12a",
        b"flood:1234567",
        b"crash!",
        b"CRASH",
    ] {
        core.echo(CHANNEL, not_a_command);
    }

    // Several frames in one write are answered in order.
    let burst: Vec<Frame> = (0..20u8)
        .map(|i| frame(CHANNEL + u32::from(i % 3), FIRMWARE_ENDPOINT, &[i; 40]))
        .collect();
    let mut bytes = Vec::new();
    for f in &burst {
        bytes.extend_from_slice(&encode(f).unwrap());
    }
    core.send_raw(&bytes);
    for f in &burst {
        assert_eq!(core.receive(), reply(f.src, &f.payload));
    }

    // A frame for another endpoint is not answered: the next answer is to the next frame.
    core.send(&frame(
        CHANNEL,
        FIRMWARE_ENDPOINT + 1,
        b"not for the service",
    ));
    core.send(&frame(CHANNEL, 0, b"nor this"));
    core.echo(CHANNEL, b"after the ignored ones");

    // Line noise, a sync mark with a refused header (reserved 1) and one with a length over
    // 496 are dropped a byte at a time; the frame after them is served.
    let mut noise = b"\x00\xffboot noise\r\n\xa5\xa5\x00\x5a".to_vec();
    let mut refused = encode(&frame(CHANNEL, FIRMWARE_ENDPOINT, b"refused")).unwrap();
    refused[10] = 1;
    noise.extend_from_slice(&refused);
    let mut too_long = encode(&frame(CHANNEL, FIRMWARE_ENDPOINT, b"too long")).unwrap();
    too_long[14..16].copy_from_slice(&497u16.to_le_bytes());
    noise.extend_from_slice(&too_long);
    noise.extend_from_slice(b"\x5a\x00");
    core.send_raw(&noise);
    core.echo(CHANNEL, b"still here");

    // A flood of 10000 frames arrives whole and in order, then its end mark.
    let flood_started = Instant::now();
    core.send(&frame(OTHER_CHANNEL, FIRMWARE_ENDPOINT, b"flood:10000"));
    for i in 0..10_000 {
        let got = core.receive();
        assert_eq!(got, reply(OTHER_CHANNEL, format!("n:{i}").as_bytes()));
    }
    assert_eq!(core.receive(), reply(OTHER_CHANNEL, b"flood-done"));
    let flood_took = flood_started.elapsed();
    core.echo(CHANNEL, b"alive after the flood");

    // Nothing but frames came out, and nothing was sent that no one asked for.
    assert!(core.frames.try_recv().is_err());
    let stats = core.stop();
    assert_eq!(
        (stats.dropped_bytes, stats.bad_headers),
        (0, 0),
        "the firmware wrote something that is not a frame: {stats:?}"
    );
    eprintln!(
        "{sample:?}: {} frames in {:?} (the flood of 10000 in {flood_took:?})",
        stats.frames,
        started.elapsed()
    );
}

#[test]
fn the_c_sample_serves_frames_on_the_emulated_core() {
    serves_frames(Sample::C);
}

#[test]
fn the_rust_sample_serves_frames_on_the_emulated_core() {
    serves_frames(Sample::Rust);
}

fn crash_ends_the_emulator_with_failure(sample: Sample) {
    let mut core = Core::boot(&sample.elf());
    core.echo(CHANNEL, b"before the crash");
    let asked = Instant::now();
    core.send(&frame(CHANNEL, FIRMWARE_ENDPOINT, b"crash"));
    let status = core
        .wait(CRASH_EXIT)
        .unwrap_or_else(|| panic!("the emulator still runs {CRASH_EXIT:?} after `crash`"));
    // SYS_EXIT with ADP_Stopped_RunTimeErrorUnknown: QEMU exits with status 1.
    assert_eq!(status.code(), Some(1), "{status}");
    let took = asked.elapsed();
    let stats = core.stop();
    assert_eq!(stats.dropped_bytes, 0, "{stats:?}");
    eprintln!("{sample:?}: crashed and exited {took:?} after `crash`");
}

#[test]
fn the_c_sample_crash_ends_the_emulator_with_failure() {
    crash_ends_the_emulator_with_failure(Sample::C);
}

#[test]
fn the_rust_sample_crash_ends_the_emulator_with_failure() {
    crash_ends_the_emulator_with_failure(Sample::Rust);
}
