//! Intercore: an app on the application core talking to a real-time app on the Cortex-M4.
//!
//! Azure Sphere calls this inter-core communication; on Warden the channel is a capability
//! like a GPIO pin. It exists only when both manifests list each other in
//! `AllowedApplicationConnections` (this app lists the two echo firmware samples,
//! `sample-apps/rt-echo-c` and `sample-apps/rt-echo-rust`; each lists this app) and the
//! real-time app is running.
//!
//! The app takes the component ids of the real-time apps it may talk to as its arguments
//! (`CmdArgs`), opens a channel to the first one that runs, and then sends a numbered ping
//! every second and times its echo. When the firmware stops (an update, a crash and restart),
//! the channel fails with `io`; the app logs it, and looks for a peer again.

use std::time::{Duration, Instant};

use warden_sdk::Error;
use warden_sdk::intercore::Channel;
use warden_sdk::log;

/// The context every log line of this app carries.
const LOG_CONTEXT: &str = "intercore";
/// How long to wait for an echo before counting the ping as lost.
const ECHO_TIMEOUT_MS: u32 = 2_000;
/// The pause between pings, and between looks for a running peer.
const PERIOD: Duration = Duration::from_secs(1);

fn main() {
    let peers: Vec<String> = std::env::args().skip(1).collect();
    if peers.is_empty() {
        log::error(
            LOG_CONTEXT,
            "no real-time app to talk to: list their component ids in CmdArgs",
        );
        std::process::exit(2);
    }
    let mut sequence: u64 = 0;
    loop {
        let Some((peer, channel)) = open_first(&peers) else {
            std::thread::sleep(PERIOD);
            continue;
        };
        log::info(
            LOG_CONTEXT,
            &format!(
                "channel open to {peer} (messages up to {} bytes)",
                channel.max_message_size()
            ),
        );
        if let Err(error) = ping_forever(&channel, &mut sequence) {
            log::warn(
                LOG_CONTEXT,
                &format!("channel to {peer} closed: {error}; looking again"),
            );
        }
    }
}

/// Opens a channel to the first peer that accepts; logs each refusal once per round only when
/// none accepts.
fn open_first(peers: &[String]) -> Option<(&str, Channel)> {
    let mut refusals = Vec::new();
    for peer in peers {
        match Channel::open(peer) {
            Ok(channel) => return Some((peer, channel)),
            Err(error) => refusals.push(format!("{peer}: {error}")),
        }
    }
    log::info(
        LOG_CONTEXT,
        &format!("no real-time app to talk to yet ({})", refusals.join("; ")),
    );
    None
}

/// Sends `ping N` every second and prints each echo with its round-trip time. Returns only
/// when the channel fails.
fn ping_forever(channel: &Channel, sequence: &mut u64) -> Result<std::convert::Infallible, Error> {
    loop {
        *sequence += 1;
        let ping = format!("ping {sequence}");
        let sent = Instant::now();
        channel.send(ping.as_bytes())?;
        // The echo services answer every message with the same bytes; anything else that
        // arrives first (a late echo of a lost ping) is skipped until ours or the timeout.
        loop {
            let waited = u32::try_from(sent.elapsed().as_millis()).unwrap_or(u32::MAX);
            let Some(left) = ECHO_TIMEOUT_MS.checked_sub(waited).filter(|l| *l > 0) else {
                println!("{ping}: no echo within {ECHO_TIMEOUT_MS} ms");
                break;
            };
            match channel.receive(left)? {
                Some(reply) if reply == ping.as_bytes() => {
                    let micros = sent.elapsed().as_micros();
                    println!("{ping}: echo in {micros} us");
                    break;
                }
                Some(other) => log::debug(
                    LOG_CONTEXT,
                    &format!("skipped {:?}", String::from_utf8_lossy(&other)),
                ),
                None => {}
            }
        }
        std::thread::sleep(PERIOD);
    }
}
