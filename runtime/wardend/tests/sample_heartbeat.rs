#![allow(clippy::unwrap_used)]
//! The heartbeat sample (`sample-apps/heartbeat`, AssemblyScript, a WASI preview-1 core module)
//! under a real `wardend` on the simulated board: its beats arrive in its log with counters
//! 1, 2, 3, … about a second apart, by its own monotonic clock and by this test's. Needs root,
//! like the supervisor.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Daemon, require_root};
use common::fixture;
use common::guest::stdout;
use common::samples::{install, manifest};

/// One beat: `heartbeat N uptime_ms=M`.
fn parse_beat(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("heartbeat ")?;
    let (count, uptime) = rest.split_once(" uptime_ms=")?;
    Some((count.parse().ok()?, uptime.parse().ok()?))
}

#[test]
fn beats_arrive_with_increasing_counters_about_a_second_apart() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let sample = manifest("heartbeat");
    // A preview-1 module cannot use devices or the network: the sample asks for nothing.
    let value: serde_json::Value = serde_json::from_str(&sample).unwrap();
    assert_eq!(value["Capabilities"], serde_json::json!({}));
    assert_eq!(
        value["CmdArgs"],
        serde_json::json!(["--interval-ms", "1000"])
    );
    let id = install(&d, &f, "heartbeat", &sample);

    // When each beat was first seen here (polled every 20 ms).
    let mut seen: Vec<(u64, u64, Instant)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "only {} beats in 30 s: {:?}",
            seen.len(),
            d.logs(&id)
        );
        for line in stdout(&d, &id) {
            if let Some((count, uptime)) = parse_beat(&line)
                && !seen.iter().any(|(c, _, _)| *c == count)
            {
                seen.push((count, uptime, Instant::now()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = stdout(&d, &id);
    assert_eq!(out[0], "heartbeat: every 1000 ms", "{out:?}");
    seen.sort_by_key(|(count, _, _)| *count);
    let counts: Vec<u64> = seen.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(counts[..5], [1, 2, 3, 4, 5], "{out:?}");
    // Beat 1 is at once; each next one a second later by the app's monotonic clock (the app
    // sleeps to absolute deadlines, so the beats do not drift)...
    assert!(seen[0].1 < 200, "{out:?}");
    for pair in seen.windows(2) {
        let step = pair[1].1 - pair[0].1;
        assert!(
            (900..=1300).contains(&step),
            "{step} ms between beats: {out:?}"
        );
    }
    // ...and by this test's: beats 1 to 5 span about four seconds.
    let span = seen[4].2 - seen[0].2;
    assert!(
        (Duration::from_millis(3500)..=Duration::from_millis(5000)).contains(&span),
        "beats 1 to 5 seen {span:?} apart: {out:?}"
    );
    let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(app["status"]["state"], "running", "{app}");
    eprintln!("heartbeat running: {app}");
    d.kill();
}
