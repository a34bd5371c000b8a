//! `warden device …`: talks to a running `wardend` over its control socket (HTTP/JSON on a
//! Unix socket): sideload, app list/show/start/stop/logs/quota/uninstall, staged updates
//! (`update`, `updates`, `update-cancel`), reports, status, and the simulated board (`sim`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::{checked, request};
use crate::output;

/// The control socket `wardend` listens on by default.
pub(crate) const DEFAULT_SOCKET: &str = "/run/warden/control.sock";

#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The supervisor's control socket.
    #[arg(long, global = true, default_value = DEFAULT_SOCKET, value_name = "PATH")]
    pub(crate) socket: PathBuf,
    /// Print the supervisor's JSON answer.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceApiCommand {
    /// Install (or update) a signed package on the device.
    Sideload {
        /// The `.wpkg` file.
        package: PathBuf,
    },
    /// Stage an update: the package is verified now and installs after the notice (later
    /// while apps with SoftwareUpdateDeferral put it off); apps with SystemEventNotifications
    /// hear of it. A newer update of the same app replaces a pending one.
    Update {
        /// The `.wpkg` file.
        package: PathBuf,
        /// Seconds of notice before it installs (0 to 86400).
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        notice_s: u64,
    },
    /// Pending updates (when each installs, who defers it), deferrals, the latest outcomes.
    Updates,
    /// Cancel a pending update.
    UpdateCancel {
        /// The update's id, as `updates` lists it.
        id: u64,
    },
    /// Manage installed apps.
    #[command(subcommand)]
    App(AppApiCommand),
    /// Failure reports, newest first.
    Reports {
        /// Only this app's.
        #[arg(long, value_name = "ID")]
        app: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Supervisor status.
    Status,
    /// The simulated board: see and drive its peripherals (also `warden sim …`).
    #[command(subcommand)]
    Sim(SimApiCommand),
}

/// The simulated board's outside world. NAME is the board peripheral (`SIM_GPIO8`) or any
/// hardware-definition name that resolves to it (`SAMPLE_LED`).
#[derive(Debug, Subcommand)]
pub(crate) enum SimApiCommand {
    /// Every simulated peripheral and its state.
    Show,
    /// A GPIO line's level; with --drive, drive an input line from outside (a button).
    Gpio {
        name: String,
        #[arg(long, value_parser = ["high", "low"])]
        drive: Option<String>,
    },
    /// The path of a UART's other end: a pty to open with a terminal program.
    Uart { name: String },
    /// Set what an ADC channel samples (raw value).
    Adc {
        name: String,
        channel: u32,
        raw: u32,
    },
    /// A PWM channel's last applied state.
    Pwm { name: String, channel: u32 },
    /// Set an emulated sensor's reading, e.g. `sensor SAMPLE_LSM6DS3_I2C 0x6a accel_x_g 0.5`.
    Sensor {
        name: String,
        address: String,
        quantity: String,
        value: f64,
    },
    /// Recent I2C/SPI transactions on a bus.
    Bus { name: String },
    /// The board's power: on, rebooting or off, the profile, and what apps asked of it.
    Power {
        /// Press the power button of a powered-down board: it boots now.
        #[arg(long)]
        wake: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AppApiCommand {
    /// Every installed app.
    List,
    /// One app.
    Show { id: String },
    /// Start an app (also out of quarantine).
    Start { id: String },
    /// Stop an app.
    Stop { id: String },
    /// What the app wrote to stdout and stderr.
    Logs {
        id: String,
        /// Only lines after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Keep printing new lines as the app writes them, until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Its storage quota and use.
    Quota { id: String },
    /// Remove an app; say what happens to its storage.
    Uninstall {
        id: String,
        #[arg(long, value_parser = ["keep", "wipe"])]
        storage: String,
    },
}

fn call(conn: &Connection, method: &str, path: &str) -> anyhow::Result<Value> {
    crate::client::call(&conn.socket, method, path)
}

pub(crate) fn run(cmd: &DeviceApiCommand, conn: &Connection) -> anyhow::Result<()> {
    let value = match cmd {
        DeviceApiCommand::Sideload { package } => {
            let mut file = std::fs::File::open(package)
                .with_context(|| format!("cannot open {}", package.display()))?;
            let len = file.metadata()?.len();
            let (status, value) = request(&conn.socket, "POST", "/images", Some(&mut file), len)?;
            checked(status, value)?
        }
        DeviceApiCommand::Update { package, notice_s } => {
            let mut file = std::fs::File::open(package)
                .with_context(|| format!("cannot open {}", package.display()))?;
            let len = file.metadata()?.len();
            let path = format!("/updates?notice_s={notice_s}");
            let (status, value) = request(&conn.socket, "POST", &path, Some(&mut file), len)?;
            checked(status, value)?
        }
        DeviceApiCommand::Updates => call(conn, "GET", "/updates")?,
        DeviceApiCommand::UpdateCancel { id } => call(conn, "DELETE", &format!("/updates/{id}"))?,
        DeviceApiCommand::App(app) => match app {
            AppApiCommand::List => call(conn, "GET", "/apps")?,
            AppApiCommand::Show { id } => call(conn, "GET", &format!("/apps/{id}"))?,
            AppApiCommand::Start { id } => call(conn, "POST", &format!("/apps/{id}/start"))?,
            AppApiCommand::Stop { id } => call(conn, "POST", &format!("/apps/{id}/stop"))?,
            AppApiCommand::Logs {
                id,
                after,
                follow: true,
            } => return follow_logs(conn, id, *after),
            AppApiCommand::Logs { id, after, .. } => {
                call(conn, "GET", &format!("/apps/{id}/logs?after={after}"))?
            }
            AppApiCommand::Quota { id } => call(conn, "GET", &format!("/apps/{id}/quota"))?,
            AppApiCommand::Uninstall { id, storage } => {
                call(conn, "DELETE", &format!("/apps/{id}?storage={storage}"))?
            }
        },
        DeviceApiCommand::Reports { app, limit } => {
            let filter = app
                .as_ref()
                .map(|a| format!("&app={a}"))
                .unwrap_or_default();
            call(conn, "GET", &format!("/reports?limit={limit}{filter}"))?
        }
        DeviceApiCommand::Status => call(conn, "GET", "/status")?,
        DeviceApiCommand::Sim(sim) => match sim {
            SimApiCommand::Show => call(conn, "GET", "/sim")?,
            SimApiCommand::Gpio { name, drive: None } => {
                call(conn, "GET", &format!("/sim/gpio/{name}"))?
            }
            SimApiCommand::Gpio {
                name,
                drive: Some(level),
            } => call(conn, "POST", &format!("/sim/gpio/{name}?level={level}"))?,
            SimApiCommand::Uart { name } => call(conn, "GET", &format!("/sim/uart/{name}"))?,
            SimApiCommand::Adc { name, channel, raw } => call(
                conn,
                "POST",
                &format!("/sim/adc/{name}/{channel}?raw={raw}"),
            )?,
            SimApiCommand::Pwm { name, channel } => {
                call(conn, "GET", &format!("/sim/pwm/{name}/{channel}"))?
            }
            SimApiCommand::Sensor {
                name,
                address,
                quantity,
                value,
            } => call(
                conn,
                "POST",
                &format!("/sim/sensor/{name}/{address}?quantity={quantity}&value={value}"),
            )?,
            SimApiCommand::Bus { name } => call(conn, "GET", &format!("/sim/bus/{name}"))?,
            SimApiCommand::Power { wake: false } => call(conn, "GET", "/sim/power")?,
            SimApiCommand::Power { wake: true } => call(conn, "POST", "/sim/power/wake")?,
        },
    };
    if conn.json {
        output::json(&value);
    } else {
        human(cmd, &value);
    }
    Ok(())
}

/// Prints the app's log as it grows: long polls of `logs?wait_ms=`, each picking up after the
/// last line printed.
fn follow_logs(conn: &Connection, id: &str, mut after: u64) -> anyhow::Result<()> {
    loop {
        let value = call(
            conn,
            "GET",
            &format!("/apps/{id}/logs?after={after}&wait_ms=10000"),
        )?;
        for line in value["lines"].as_array().into_iter().flatten() {
            after = after.max(line["seq"].as_u64().unwrap_or(after));
            if conn.json {
                output::json(line);
            } else {
                output::line(log_line(line));
            }
        }
    }
}

fn log_line(l: &Value) -> String {
    format!(
        "{:>6} {:<10} {}",
        text(l, "seq"),
        text(l, "stream"),
        text(l, "text")
    )
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn app_line(a: &Value) -> String {
    let state = a
        .get("status")
        .map(|s| {
            let name = text(s, "state");
            match s.get("pid") {
                Some(pid) => format!("{name} (pid {pid})"),
                None => name,
            }
        })
        .unwrap_or_default();
    format!(
        "{}  {:<24} v{:<4} {:<22} restarts {}",
        text(a, "id"),
        text(a, "name"),
        text(a, "version"),
        state,
        text(a, "restarts")
    )
}

fn updates_human(value: &Value) {
    let updates = value["updates"].as_array().cloned().unwrap_or_default();
    if updates.is_empty() {
        output::line("no pending updates");
    }
    for u in &updates {
        output::line(format!(
            "#{} {} ({}) v{}: {} — installs in {} s, deferrable {} more minutes",
            text(u, "id"),
            text(u, "name"),
            text(u, "component_id"),
            text(u, "version"),
            text(u, "status"),
            text(u, "seconds_to_install"),
            text(u, "max_deferral_minutes")
        ));
        for d in u["deferred_by"].as_array().into_iter().flatten() {
            output::line(format!(
                "    deferred by {} for {} s more",
                text(d, "app"),
                text(d, "seconds_left")
            ));
        }
    }
    for d in value["deferrals"].as_array().into_iter().flatten() {
        output::line(format!(
            "deferral: {} puts {} updates off for {} s more",
            text(d, "app"),
            text(d, "kind"),
            text(d, "seconds_left")
        ));
    }
    for o in value["recent"].as_array().into_iter().flatten() {
        output::line(format!(
            "#{} {} ({}) v{}: {} at unix time {} — {}",
            text(o, "id"),
            text(o, "name"),
            text(o, "component_id"),
            text(o, "version"),
            text(o, "status"),
            text(o, "at"),
            text(o, "detail")
        ));
    }
}

fn human(cmd: &DeviceApiCommand, value: &Value) {
    match cmd {
        DeviceApiCommand::Sideload { .. } => {
            output::line(format!(
                "installed {} ({}) version {}: {}",
                text(value, "name"),
                text(value, "component_id"),
                text(value, "version"),
                text(value, "decision")
            ));
            for w in value["warnings"].as_array().into_iter().flatten() {
                output::line(format!("  warning: {}", w.as_str().unwrap_or_default()));
            }
        }
        DeviceApiCommand::Update { .. } => {
            output::line(format!(
                "staged update {}: {} ({}) version {}, {}; installs in {} s unless deferred",
                text(value, "id"),
                text(value, "name"),
                text(value, "component_id"),
                text(value, "version"),
                text(value, "decision"),
                text(value, "seconds_to_install")
            ));
            for w in value["warnings"].as_array().into_iter().flatten() {
                output::line(format!("  warning: {}", w.as_str().unwrap_or_default()));
            }
        }
        DeviceApiCommand::Updates => updates_human(value),
        DeviceApiCommand::UpdateCancel { .. } => output::line(format!(
            "cancelled update {}: {} ({}) version {}",
            text(value, "id"),
            text(value, "name"),
            text(value, "component_id"),
            text(value, "version")
        )),
        DeviceApiCommand::App(AppApiCommand::List) => {
            let apps = value.as_array().cloned().unwrap_or_default();
            if apps.is_empty() {
                output::line("no apps installed");
            }
            for a in &apps {
                output::line(app_line(a));
            }
        }
        DeviceApiCommand::App(AppApiCommand::Logs { .. }) => {
            for l in value["lines"].as_array().into_iter().flatten() {
                output::line(log_line(l));
            }
            if value["dropped_bytes"].as_u64().unwrap_or(0) > 0 {
                output::line(format!(
                    "({} older bytes dropped to stay bounded)",
                    value["dropped_bytes"]
                ));
            }
        }
        DeviceApiCommand::App(AppApiCommand::Quota { .. }) => {
            if value.get("storage").is_some_and(Value::is_null) {
                output::line("the app has no MutableStorage");
            } else {
                output::line(format!(
                    "used {} of {} bytes ({} available); {}",
                    text(value, "used_bytes"),
                    text(value, "quota_bytes"),
                    text(value, "available_bytes"),
                    if value["enforced"].as_bool() == Some(true) {
                        format!("a hard limit ({})", text(value, "backing"))
                    } else {
                        format!("NOT enforced ({})", text(value, "backing"))
                    }
                ));
                if let Some(requested) = value["requested_quota_bytes"].as_u64() {
                    output::line(format!(
                        "the manifest asks for {requested} bytes, not yet in force"
                    ));
                }
                if let Some(reason) = value["reason"].as_str() {
                    output::line(format!("why: {reason}"));
                }
            }
        }
        DeviceApiCommand::App(_) => {
            if value.get("id").is_some() {
                output::line(app_line(value));
            } else {
                output::line(value.to_string());
            }
        }
        DeviceApiCommand::Reports { .. } => {
            let reports = value.as_array().cloned().unwrap_or_default();
            if reports.is_empty() {
                output::line("no failure reports");
            }
            for r in &reports {
                let failure = r
                    .get("failure")
                    .map(|f| text(f, "kind"))
                    .unwrap_or_default();
                output::line(format!(
                    "#{} {} {} v{}: {} — {} ({})",
                    text(r, "seq"),
                    text(r, "name"),
                    text(r, "app"),
                    text(r, "version"),
                    failure,
                    text(r, "detail"),
                    text(r, "action")
                ));
                for f in r["backtrace"].as_array().into_iter().flatten() {
                    output::line(format!(
                        "      at {} (func {})",
                        text(f, "func_name"),
                        text(f, "func_index")
                    ));
                }
            }
        }
        DeviceApiCommand::Sim(sim) => match sim {
            SimApiCommand::Gpio { .. } => output::line(format!(
                "{} {}",
                text(value, "peripheral"),
                text(value, "level")
            )),
            SimApiCommand::Uart { .. } => output::line(text(value, "path")),
            SimApiCommand::Pwm { .. } => {
                let state = &value["state"];
                if state.is_null() {
                    output::line(format!(
                        "{} channel {}: never applied",
                        text(value, "peripheral"),
                        text(value, "channel")
                    ));
                } else {
                    output::line(format!(
                        "{} channel {}: period {} ns, duty {} ns, {}, {}",
                        text(value, "peripheral"),
                        text(value, "channel"),
                        text(state, "period_ns"),
                        text(state, "duty_ns"),
                        if state["inversed"] == true {
                            "inversed"
                        } else {
                            "normal"
                        },
                        if state["enabled"] == true {
                            "enabled"
                        } else {
                            "disabled"
                        }
                    ));
                }
            }
            SimApiCommand::Power { .. } => {
                output::line(format!(
                    "power {}, profile {}, {} reboot(s), {} power-down(s){}",
                    text(value, "state"),
                    text(value, "profile"),
                    text(value, "reboots"),
                    text(value, "power_downs"),
                    value["wakes_in_s"]
                        .as_u64()
                        .map(|s| format!(", wakes in {s} s"))
                        .unwrap_or_default()
                ));
                for request in value["requests"].as_array().into_iter().flatten() {
                    output::line(format!(
                        "  {} asked for {}",
                        text(request, "app"),
                        request["action"]
                    ));
                }
            }
            SimApiCommand::Show
            | SimApiCommand::Adc { .. }
            | SimApiCommand::Sensor { .. }
            | SimApiCommand::Bus { .. } => output::json(value),
        },
        DeviceApiCommand::Status => {
            for key in [
                "board",
                "device_id",
                "apps",
                "running",
                "uptime_secs",
                "version",
            ] {
                output::line(format!("{key:<14} {}", text(value, key)));
            }
        }
    }
}
