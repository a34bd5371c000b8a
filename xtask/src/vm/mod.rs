//! `cargo xtask vm`: Warden on a real ARM kernel, with real device drivers.
//!
//! Boots Debian's `armmp` kernel on QEMU's `mcimx6ul-evk` — an NXP i.MX6UL, a Cortex-A7 SoC of
//! the class Warden's devices use — from an initramfs assembled here, and runs inside it:
//!
//! 1. **The sandbox escape suite** (`runtime/probe/tests/escape.rs`) built for armv7: every
//!    confinement layer — namespaces, the empty root, rlimits, identity, landlock, the armv7
//!    seccomp profiles made by our own BPF generator, the cgroup — attacked on an ARM kernel.
//! 2. **`wardend` on the board `imx6ul-evk-qemu`** with the run-only (Pulley) worker: a signed
//!    package of `device-probe`, precompiled for `pulley32` on this host, is sideloaded by the
//!    armv7 `warden` CLI and runs confined. Its steps drive GPIO through the GPIO character
//!    device (the kernel's `gpio-mxc` driver), I2C through i2c-dev (`i2c-imx`, with a TMP105
//!    QEMU emulates at 0x48) and a UART through the tty layer (the i.MX serial driver on
//!    QEMU's second serial port, whose other end is a socket here); a pin it was not granted
//!    is refused.
//!
//! The host checks what the emulated hardware saw, not only what the app printed: the GPIO
//! controller's data and direction registers, read through QEMU's monitor while the app holds
//! its lines; the bytes that left the UART, and the reply the app read; the TMP105 register the
//! app wrote and read back.
//!
//! Kernel, modules and busybox come from Debian's archive (`apt-get download`, cached in
//! `target/vm/`); the initramfs is written by [`cpio::Cpio`].

mod cpio;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cross::{TARGET, arm_cargo, build_device, host_precompiler, output};
use crate::device::Warden;
use crate::{render, step};
use cpio::Cpio;

/// Where downloads, the initramfs and the run's scratch files live.
const DIR: &str = "target/vm";
/// The board the VM is, and the app manifest the proof installs.
const BOARD_DIR: &str = "buildroot-overlay/board/imx6ul-evk-qemu";
const MANIFEST: &str = "xtask/vm/app_manifest.json";
/// `device-probe`'s component id: the app's id on the device.
const APP_ID: &str = "a62f4f74-b43c-4f9b-a7fe-87fe7b5462f6";
/// The QEMU machine and the device tree Debian ships for the board it models.
const MACHINE: &str = "mcimx6ul-evk";
const DTB: &str = "imx6ul-14x14-evk.dtb";
/// Modules the board's peripherals need (the rest of the kernel is built in).
const MODULES: &[&str] = &[
    "drivers/gpio/gpio-mxc.ko",
    "drivers/i2c/busses/i2c-imx.ko",
    "drivers/i2c/i2c-dev.ko",
];
/// The armhf C runtime the dynamically linked armv7 binaries load.
const ARM_LIBS: &[&str] = &[
    "ld-linux-armhf.so.3",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
];
const ARM_SYSROOT: &str = "/usr/arm-linux-gnueabihf/lib";
/// GPIO3 of the i.MX6UL (`/dev/gpiochip2`): data register, and direction register after it.
const GPIO3_DR: u32 = 0x020a_4000;
/// The board's lines on GPIO3: STATUS_LED (4), RELAY (5), SPARE_GPIO (6, never granted).
const STATUS_LED: u32 = 1 << 4;
const RELAY: u32 = 1 << 5;
const SPARE: u32 = 1 << 6;
/// What the app writes on the UART, and what the host answers.
const UART_HELLO: &str = "hello over ttymxc1\n";
const UART_REPLY: &str = "pong from the host\n";
/// The whole boot, suite and app: generous, an emulated A7 on a shared 2-core host.
const TIMEOUT: Duration = Duration::from_secs(900);

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask vm");
    }
    let toolchain = crate::setup::ensure_cross_tools(root)?;
    crate::setup::ensure_commands(&[
        ("qemu-system-arm", "qemu-system-arm"),
        ("dpkg-deb", "dpkg"),
        ("apt-get", "apt"),
    ])?;
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir)?;
    let debian = Debian::fetch(&dir)?;

    let (host_worker, fingerprint) = host_precompiler(root)?;
    let arm_out = build_device(root, toolchain, &fingerprint)?;
    let suite = build_escape_suite(root, toolchain)?;

    // The app: built, precompiled for the device's engine, signed.
    let wasm = crate::guests::build_guest(root, "device-probe")?;
    let work = dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let cwasm = work.join("device-probe.pulley32.cwasm");
    let precompiled = output(
        Command::new(&host_worker)
            .args(["precompile", "pulley32"])
            .arg(&wasm)
            .arg(&cwasm),
    )?;
    if !precompiled.ends_with(&fingerprint) {
        bail!("precompiled for `{precompiled}`, the device's engine is {fingerprint}");
    }
    let warden = Warden {
        bin: crate::target_dir(root).join("debug/warden"),
        verbose: false,
    };
    let (app_key, trust) = warden.keys_and_trust(&work)?;
    let package = work.join("device-probe.wpkg");
    warden.ok("pack and sign device-probe with its pulley32 code", |c| {
        c.args(["app", "pack", "--manifest"])
            .arg(root.join(MANIFEST))
            .arg("--wasm")
            .arg(&wasm)
            .arg("--precompiled")
            .arg(format!("pulley32={},engine={fingerprint}", cwasm.display()))
            .arg("--key")
            .arg(&app_key)
            .args(["--version", "1", "-o"])
            .arg(&package);
    })?;

    // The initramfs.
    let mut fs = Cpio::default();
    for d in ["/dev", "/proc", "/sys", "/tmp", "/run", "/var", "/root"] {
        fs.dir(d)?;
    }
    fs.copy("/bin/busybox", &debian.busybox, true)?;
    fs.file("/init", STAGE1.as_bytes(), true)?;
    fs.file("/init2", stage2().as_bytes(), true)?;
    fs.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", false)?;
    for lib in ARM_LIBS {
        fs.copy(
            &format!("/lib/{lib}"),
            &Path::new(ARM_SYSROOT).join(lib),
            true,
        )?;
    }
    for module in MODULES {
        let name = Path::new(module)
            .file_name()
            .and_then(|n| n.to_str())
            .context("module name")?;
        fs.copy(
            &format!("/lib/modules/{name}"),
            &debian.modules.join(module),
            false,
        )?;
    }
    for bin in ["wardend", "warden-worker", "warden"] {
        let stripped = strip(&arm_out.join(bin), &work)?;
        fs.copy(&format!("/usr/bin/{bin}"), &stripped, true)?;
    }
    // The suite finds its probe and the sandbox document at the paths it was built with.
    fs.copy("/usr/bin/escape-suite", &strip(&suite.tests, &work)?, true)?;
    fs.copy(&abs(&suite.probe)?, &strip(&suite.probe, &work)?, true)?;
    fs.dir(&abs(&root.join("runtime/probe"))?)?;
    fs.copy(
        &abs(&root.join("docs/sandbox.md"))?,
        &root.join("docs/sandbox.md"),
        false,
    )?;
    let board = root.join(BOARD_DIR);
    fs.copy(
        "/etc/warden/board/board.json",
        &board.join("board.json"),
        false,
    )?;
    for entry in std::fs::read_dir(board.join("hardware-definitions"))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).context("name")?;
        fs.copy(
            &format!("/etc/warden/board/hardware-definitions/{name}"),
            &path,
            false,
        )?;
    }
    fs.copy("/etc/warden/trust.json", &trust, false)?;
    fs.copy("/root/device-probe.wpkg", &package, false)?;
    let initramfs = dir.join("initramfs.cpio");
    std::fs::write(&initramfs, fs.finish())?;
    println!(
        "\n==> initramfs: {} ({:.1} MiB)",
        initramfs.display(),
        std::fs::metadata(&initramfs)?.len() as f64 / (1024.0 * 1024.0)
    );

    let seen = boot(&debian, &initramfs, &work)?;
    seen.check()?;
    let (data, direction) = seen.gpio.unwrap_or_default();
    println!(
        "\nxtask vm: on Linux {} ({MACHINE}): the escape suite passed ({}); wardend ran \
         device-probe confined on the gpio-mxc, i2c-imx, spi-gpio and i.MX serial drivers (GPIO3 data \
         {data:#010x}, direction {direction:#010x} while it held its lines; the UART carried \
         {:?} out and {UART_REPLY:?} back)",
        seen.kernel.trim(),
        seen.suite_summary.trim_start_matches("test result: "),
        seen.uart
    );
    Ok(())
}

/// Stage 1: the initramfs is the kernel's rootfs, which pivot_root(2) cannot leave, and the
/// sandbox pivots each worker into a new root; so everything moves to a tmpfs first, as a
/// device's real root file system would be.
const STAGE1: &str = "#!/bin/busybox sh
/bin/busybox mkdir -p /newroot
/bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot
for d in /*; do
  case $d in /newroot|/dev|/proc|/sys) ;; *) /bin/busybox cp -a $d /newroot/ ;; esac
done
/bin/busybox mkdir -p /newroot/dev /newroot/proc /newroot/sys
/bin/busybox mount -t devtmpfs devtmpfs /newroot/dev
exec /bin/busybox switch_root /newroot /init2
";

/// Stage 2: the device's start-up, the suite, then wardend and the app. Every line the host
/// looks for starts with `vm: `.
fn stage2() -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# /tmp, /run and /var are the initramfs's, on the root tmpfs (no mount over them: the escape
# suite's probe may have been built under /tmp, and sits at that path).
chmod 1777 /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
echo "vm: kernel $(uname -r) $(uname -m): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
for m in /lib/modules/*.ko; do insmod $m || echo "vm: insmod $m failed"; done
for i in $(seq 100); do [ -e /dev/gpiochip2 ] && [ -e /dev/i2c-0 ] && break; sleep 0.1; done
# The EVK's bit-banged SPI bus carries a 74HC595 no driver here claims: spidev takes it.
for d in /sys/bus/spi/devices/spi*; do
  [ -e $d/driver ] || {{ echo spidev >$d/driver_override; echo ${{d##*/}} >/sys/bus/spi/drivers/spidev/bind; }}
done
echo "vm: spi devices: $(ls /dev/spidev* 2>&1)"
echo "vm: escape suite begins"
/usr/bin/escape-suite --test-threads=1
echo "vm: escape suite exit $?"
mkdir -p /var/lib/warden
wardend --board /etc/warden/board/board.json --trust /etc/warden/trust.json --state /var/lib/warden >/tmp/wardend.log 2>&1 &
for i in $(seq 300); do [ -S /run/warden/control.sock ] && break; sleep 0.1; done
warden device sideload /root/device-probe.wpkg 2>&1
echo "vm: sideload exit $?"
for i in $(seq 1200); do
  warden device app show --json {APP_ID} >/tmp/show.json 2>&1
  grep -Eq '"state": *"(exited|backoff|quarantined|stopped)"' /tmp/show.json && break
  sleep 0.5
done
echo "vm: app log begins"
warden device app logs {APP_ID}
echo "vm: app log ends"
echo "vm: app state $(grep -Eo '"state": *"[a-z_]+"' /tmp/show.json | head -1)"
echo "vm: app last failure $(grep -Eo '"last_failure": *[^,}}]+' /tmp/show.json | head -1)"
echo "vm: wardend log begins"
cat /tmp/wardend.log
echo "vm: wardend log ends"
echo "vm: done"
poweroff -f
"#
    )
}

/// Kernel, device tree, modules and busybox, from Debian's armhf archive.
struct Debian {
    vmlinuz: PathBuf,
    dtb: PathBuf,
    /// `lib/modules/<release>/kernel`.
    modules: PathBuf,
    busybox: PathBuf,
}

impl Debian {
    fn fetch(dir: &Path) -> Result<Debian> {
        let arches = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
        if !arches.lines().any(|a| a.trim() == "armhf") {
            step(
                "let apt fetch armhf packages (the kernel and busybox, not installed)",
                Command::new("dpkg").args(["--add-architecture", "armhf"]),
            )?;
            crate::setup::apt_update()?;
        }
        let tree = dir.join("debian");
        let busybox = tree.join("bin/busybox");
        let mut release = kernel_release()?;
        if !tree.join(format!("boot/vmlinuz-{release}")).exists() || !busybox.exists() {
            let debs = dir.join("debs");
            if !download(&debs, &release)? {
                // Lists older than the archive name a kernel it no longer has: refresh, retry.
                crate::setup::apt_update()?;
                release = kernel_release()?;
                if !download(&debs, &release)? {
                    bail!(
                        "apt-get download of linux-image-{release}:armhf and busybox-static failed"
                    );
                }
            }
            for deb in std::fs::read_dir(&debs)? {
                let deb = deb?.path();
                step(
                    "unpack",
                    Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree),
                )?;
            }
        }
        let vmlinuz = tree.join(format!("boot/vmlinuz-{release}"));
        let debian = Debian {
            dtb: tree.join(format!("usr/lib/linux-image-{release}/{DTB}")),
            modules: tree.join(format!("lib/modules/{release}/kernel")),
            vmlinuz,
            busybox,
        };
        for path in [&debian.vmlinuz, &debian.dtb, &debian.busybox] {
            if !path.exists() {
                bail!("{} is missing from Debian's packages", path.display());
            }
        }
        Ok(debian)
    }
}

/// The kernel release Debian's `linux-image-armmp:armhf` metapackage depends on now
/// (`6.1.0-NN-armmp`: the ABI number moves with Debian's kernel updates).
fn kernel_release() -> Result<String> {
    let depends = output(Command::new("apt-cache").args(["depends", "linux-image-armmp:armhf"]))?;
    depends
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: linux-image-"))
        .map(|p| p.trim_end_matches(":armhf").to_owned())
        .with_context(|| {
            format!("apt-cache depends linux-image-armmp:armhf named no kernel: {depends}")
        })
}

/// Downloads the kernel of `release` and busybox into a fresh `debs`; false if apt could not.
fn download(debs: &Path, release: &str) -> Result<bool> {
    if debs.exists() {
        std::fs::remove_dir_all(debs)?;
    }
    std::fs::create_dir_all(debs)?;
    let mut cmd = Command::new("apt-get");
    cmd.current_dir(debs)
        .args(["download", "-q"])
        .arg(format!("linux-image-{release}:armhf"))
        .arg("busybox-static:armhf");
    println!(
        "\n==> download the armmp kernel and busybox (armhf): {}",
        render(&cmd)
    );
    Ok(cmd.status().context("cannot run apt-get")?.success())
}

/// The escape suite's test binary and the probe it starts, both armv7.
struct Suite {
    tests: PathBuf,
    probe: PathBuf,
}

fn build_escape_suite(root: &Path, toolchain: crate::setup::ArmToolchain) -> Result<Suite> {
    let mut cmd = arm_cargo(root, toolchain, "test");
    cmd.args([
        "--no-run",
        "--locked",
        "--release",
        "--target",
        TARGET,
        "-p",
        "warden-escape-probe",
        "--test",
        "escape",
        "--message-format=json-render-diagnostics",
    ])
    .stderr(Stdio::inherit());
    println!("\n==> build the escape suite for armv7: {}", render(&cmd));
    let out = cmd.output().context("cannot run cargo")?;
    if !out.status.success() {
        bail!(
            "building the escape suite for armv7 failed ({})",
            out.status
        );
    }
    let (mut tests, mut probe) = (None, None);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(exe) = message["executable"].as_str() else {
            continue;
        };
        match message["target"]["name"].as_str() {
            Some("escape") => tests = Some(PathBuf::from(exe)),
            Some("warden-escape-probe") => probe = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Ok(Suite {
        tests: tests.context("cargo named no `escape` test binary")?,
        probe: probe.context("cargo named no `warden-escape-probe` binary")?,
    })
}

/// What the run showed: the console's lines, the UART's bytes, the GPIO registers.
#[derive(Debug, Default)]
struct Seen {
    kernel: String,
    console: Vec<String>,
    suite_summary: String,
    uart: String,
    /// (data, direction) of GPIO3 while the app waited for the UART reply.
    gpio: Option<(u32, u32)>,
}

/// Boots the VM and plays the outside world: the UART's other end and the monitor.
fn boot(debian: &Debian, initramfs: &Path, work: &Path) -> Result<Seen> {
    let uart_socket = work.join("uart2.sock");
    let monitor_socket = work.join("monitor.sock");
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args(["-M", MACHINE, "-m", "1024M", "-display", "none"])
        .arg("-monitor")
        .arg(format!(
            "unix:{},server=on,wait=off",
            monitor_socket.display()
        ))
        .arg("-chardev")
        .arg(format!(
            "socket,id=uart2,path={},server=on,wait=off",
            uart_socket.display()
        ))
        .args(["-serial", "stdio", "-serial", "chardev:uart2"])
        .args(["-device", "tmp105,bus=i2c-bus.0,address=0x48"])
        .arg("-kernel")
        .arg(&debian.vmlinuz)
        .arg("-dtb")
        .arg(&debian.dtb)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttymxc0 quiet", "-no-reboot"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    println!("\n==> boot: {}", render(&cmd));
    let started = Instant::now();
    let mut qemu = Killed(cmd.spawn().context("cannot start qemu-system-arm")?);
    let stdout = qemu.0.stdout.take().context("qemu's stdout")?;
    let (lines, console) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    let mut seen = Seen::default();
    let mut uart = None;
    let mut answered = false;
    loop {
        if started.elapsed() > TIMEOUT {
            bail!(
                "the VM did not finish within {TIMEOUT:?}; last lines:\n{}",
                tail(&seen.console)
            );
        }
        match console.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                println!("    vm| {line}");
                if let Some(kernel) = line.strip_prefix("vm: kernel ") {
                    kernel.clone_into(&mut seen.kernel);
                }
                if line.starts_with("test result:") {
                    line.clone_into(&mut seen.suite_summary);
                }
                let done = line == "vm: done";
                seen.console.push(line);
                if done {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // The UART's other end: connected once QEMU made it; what arrives is kept, and the
        // first full greeting is answered after the GPIO registers are read.
        if uart.is_none()
            && uart_socket.exists()
            && let Ok(stream) = UnixStream::connect(&uart_socket)
        {
            stream.set_nonblocking(true)?;
            uart = Some(stream);
        }
        if let Some(stream) = uart.as_mut() {
            let mut buf = [0u8; 256];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => seen
                        .uart
                        .push_str(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default())),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e).context("reading the UART socket"),
                }
            }
            if !answered && seen.uart.contains(UART_HELLO) {
                seen.gpio = Some(gpio3_registers(&monitor_socket)?);
                stream.set_nonblocking(false)?;
                stream.write_all(UART_REPLY.as_bytes())?;
                stream.set_nonblocking(true)?;
                answered = true;
            }
        }
    }
    let status = wait_exit(&mut qemu.0, Duration::from_secs(30))?;
    println!(
        "    QEMU exited ({status}) after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(seen)
}

/// GPIO3's data and direction registers, read by QEMU's monitor (`xp`): the emulated
/// controller's own state, what a logic analyser on the pins would see.
fn gpio3_registers(socket: &Path) -> Result<(u32, u32)> {
    let mut monitor = UnixStream::connect(socket).context("connecting to QEMU's monitor")?;
    monitor.set_read_timeout(Some(Duration::from_secs(10)))?;
    monitor.write_all(format!("xp /2wx {GPIO3_DR:#x}\n").as_bytes())?;
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    let prefix = format!("{GPIO3_DR:016x}:");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let n = monitor.read(&mut buf)?;
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default()));
        if let Some(line) = text.lines().find(|l| l.starts_with(&prefix))
            && line.split_whitespace().count() >= 3
        {
            let words: Vec<u32> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|w| u32::from_str_radix(w.trim_start_matches("0x"), 16).ok())
                .collect();
            if let [data, direction, ..] = words.as_slice() {
                return Ok((*data, *direction));
            }
        }
    }
    bail!("QEMU's monitor did not show GPIO3's registers: {text:?}")
}

impl Seen {
    fn check(&self) -> Result<()> {
        let mut problems = Vec::new();
        let has = |line: &str| self.console.iter().any(|l| l == line);
        if self.kernel.is_empty() {
            problems.push("the VM never reached its init script".to_owned());
        }
        if !has("vm: escape suite exit 0") || !self.suite_summary.starts_with("test result: ok") {
            problems.push(format!(
                "the escape suite failed on the ARM kernel: {:?}",
                self.suite_summary
            ));
        }
        if !has("vm: sideload exit 0") {
            problems.push("the sideload of device-probe failed".to_owned());
        }
        // device-probe prints one line per step, in step order: `VERB ok [VALUES]` or
        // `VERB error VARIANT MESSAGE` (the steps are in xtask/vm/app_manifest.json).
        let expect = [
            "gpio-out ok",
            "gpio-get ok high",
            "gpio-toggle ok low",
            "gpio-toggle ok high",
            "gpio-out ok",
            "gpio-set ok",
            "gpio-get ok low",
            "gpio-out error not-granted",
            // TMP105's T-high register: 80 °C at reset, then what the app wrote.
            "i2c-write-read ok 5000",
            "i2c-write ok",
            "i2c-write-read ok 2a80",
            "i2c-write-read ok 00",
            "spi-write ok",
            // Nothing drives MISO: the bit-banged master samples a low line.
            "spi-read ok 00",
            "uart-write ok",
            "uart-flush ok",
            "uart-read ok \"pong",
            "log ok",
        ];
        let printed = self.app_output();
        if printed.len() != expect.len()
            || printed
                .iter()
                .zip(expect)
                .any(|(got, want)| !got.starts_with(want))
        {
            problems.push(format!(
                "device-probe printed {printed:#?}\nexpected lines starting with {expect:#?}"
            ));
        }
        if !self.uart.contains(UART_HELLO) {
            problems.push(format!(
                "the UART's other end did not receive {UART_HELLO:?}; it got {:?}",
                self.uart
            ));
        }
        match self.gpio {
            None => problems.push("GPIO3's registers were never read".to_owned()),
            Some((data, direction)) => {
                // STATUS_LED driven high, toggled low, toggled high again (below, in the
                // manifest); RELAY out high, set low; SPARE_GPIO refused: still an input.
                let want = (STATUS_LED, STATUS_LED | RELAY);
                let got = (
                    data & (STATUS_LED | RELAY | SPARE),
                    direction & (STATUS_LED | RELAY | SPARE),
                );
                if got != want {
                    problems.push(format!(
                        "GPIO3 (lines 4..6): data {:#05b}, direction {:#05b}; expected data \
                         {:#05b} (STATUS_LED high, RELAY low), direction {:#05b} (both outputs, \
                         SPARE_GPIO untouched)",
                        got.0 >> 4,
                        got.1 >> 4,
                        want.0 >> 4,
                        want.1 >> 4
                    ));
                }
            }
        }
        if !self
            .console
            .iter()
            .any(|l| l.starts_with("vm: app state") && l.ends_with("\"exited\""))
        {
            problems.push("device-probe did not end as `exited` (exit code 0)".to_owned());
        }
        if problems.is_empty() {
            return Ok(());
        }
        bail!(
            "the VM proof failed:\n  - {}\n(the console is above, each line after `vm|`)",
            problems.join("\n  - ")
        )
    }

    /// What the app printed on stdout: `warden device app logs` lines are `SEQ STREAM TEXT`.
    fn app_output(&self) -> Vec<String> {
        self.console
            .iter()
            .skip_while(|l| *l != "vm: app log begins")
            .skip(1)
            .take_while(|l| *l != "vm: app log ends")
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let (_seq, stream) = (words.next()?, words.next()?);
                (stream == "stdout").then(|| words.collect::<Vec<_>>().join(" "))
            })
            .collect()
    }
}

/// QEMU, killed if the run ends early.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if started.elapsed() > limit {
            bail!("QEMU did not exit after the VM powered off");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last lines of the console, for an error.
fn tail(lines: &[String]) -> String {
    let from = lines.len().saturating_sub(30);
    lines.get(from..).unwrap_or_default().join("\n")
}

/// `path` with debug information removed (the initramfs lives in the VM's RAM).
fn strip(path: &Path, work: &Path) -> Result<PathBuf> {
    let name = path.file_name().context("binary name")?;
    let out = work.join("stripped").join(name);
    std::fs::create_dir_all(out.parent().context("parent")?)?;
    output(
        Command::new("arm-linux-gnueabihf-strip")
            .arg("-o")
            .arg(&out)
            .arg(path),
    )?;
    Ok(out)
}

/// `path` as an absolute string, for the initramfs.
fn abs(path: &Path) -> Result<String> {
    let path = std::path::absolute(path)?;
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
