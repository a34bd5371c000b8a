// {{name}}: a Warden app in AssemblyScript. It prints its arguments and a few lines a second
// apart, then exits.
//
// It is built into a WASI preview-1 core module, which gets preview 1 and nothing else:
// arguments, environment, stdout and stderr (its log on the device), clocks, random numbers
// and sleeping. Peripherals and the network are for components (Rust, C, Python, JavaScript).
//
// Build:  warden app build .
// Run:    warden app run --sim .      (as root: the simulated board, logs until Ctrl-C)

import {
  clockid,
  errno,
  errnoToString,
  event,
  eventtype,
  poll_oneoff,
  subclockflags,
  subscription_clock,
} from "~lib/bindings/wasi_snapshot_preview1";

// poll_oneoff's buffers: one clock subscription (48 bytes), one event (32 bytes), a count.
const SUBSCRIPTION = memory.data(48, 8);
const EVENT = memory.data(32, 8);
const EVENT_COUNT = memory.data(sizeof<usize>(), sizeof<usize>());

/// Sleeps `ms` milliseconds on the monotonic clock.
function sleep(ms: u64): void {
  const sub = changetype<subscription_clock>(SUBSCRIPTION);
  sub.userdata = 1;
  sub.type = eventtype.CLOCK;
  sub.clock_id = clockid.MONOTONIC;
  sub.timeout = ms * 1_000_000;
  sub.precision = 0;
  sub.flags = 0; // relative; subclockflags.ABSTIME makes `timeout` a deadline
  const err = poll_oneoff(SUBSCRIPTION, EVENT, 1, EVENT_COUNT);
  if (err != errno.SUCCESS) throw new Error("poll_oneoff: " + errnoToString(err));
  const ev = changetype<event>(EVENT);
  if (ev.error != errno.SUCCESS) throw new Error("clock event: " + errnoToString(ev.error));
}

// CmdArgs from app_manifest.json (argv[0] is the program name).
const argv = process.argv;
console.log("{{name}}: arguments " + argv.slice(1).join(" "));
let count: i32 = 5;
if (argv.length >= 3 && argv[1] == "--count") count = I32.parseInt(argv[2]);

for (let i = 1; i <= count; i++) {
  console.log(`{{name}}: ${i} of ${count}, ${Date.now()} ms since 1970`);
  sleep(1000);
}
console.log("{{name}}: done");
