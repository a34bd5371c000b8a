// heartbeat: a WASI-only app in AssemblyScript. It prints one line per beat, with a counter and
// how long it has been up by the monotonic clock, e.g.
//
//   heartbeat 3 uptime_ms=2001
//
// It is a WASI preview-1 core module (asc with the WASI shim), so it has what preview 1 gives
// and nothing more: arguments, environment, stdout/stderr (its log on the device), clocks,
// random, sleeping — and no peripherals and no network, which only components get.
//
// CmdArgs: [--interval-ms N] [--count N]   (defaults: 1000 ms, 0 = forever)

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

// Static buffers for poll_oneoff: one clock subscription (48 bytes), one event (32 bytes) and
// the count of events. The app sleeps with one subscription at a time, so one set is enough.
const SUBSCRIPTION = memory.data(48, 8);
const EVENT = memory.data(32, 8);
const EVENT_COUNT = memory.data(sizeof<usize>(), sizeof<usize>());

/// Sleeps until the monotonic clock reads `deadlineNs`: an absolute deadline, so the beats do
/// not drift by the time each one takes.
function sleepUntil(deadlineNs: u64): void {
  const sub = changetype<subscription_clock>(SUBSCRIPTION);
  sub.userdata = 1;
  sub.type = eventtype.CLOCK;
  sub.clock_id = clockid.MONOTONIC;
  sub.timeout = deadlineNs;
  sub.precision = 0;
  sub.flags = subclockflags.ABSTIME;
  const err = poll_oneoff(SUBSCRIPTION, EVENT, 1, EVENT_COUNT);
  if (err != errno.SUCCESS) throw new Error("poll_oneoff: " + errnoToString(err));
  const ev = changetype<event>(EVENT);
  if (ev.error != errno.SUCCESS) throw new Error("clock event: " + errnoToString(ev.error));
}

/// The value of `--name N` in the arguments, or `fallback`.
function argument(name: string, fallback: i64): i64 {
  const argv = process.argv; // argv[0] is the program name
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] != name) continue;
    if (i + 1 >= argv.length) throw new Error(name + " needs a value");
    const value = I64.parseInt(argv[i + 1]);
    if (value < 0) throw new Error(name + " must not be negative, got " + argv[i + 1]);
    return value;
  }
  return fallback;
}

const intervalMs = argument("--interval-ms", 1000);
const count = argument("--count", 0);
if (intervalMs == 0) throw new Error("--interval-ms must be at least 1");

const startNs = process.hrtime(); // the monotonic clock, in nanoseconds
console.log(`heartbeat: every ${intervalMs} ms` + (count > 0 ? `, ${count} beats` : ""));
for (let beat: i64 = 1; count == 0 || beat <= count; beat++) {
  const uptimeMs = (process.hrtime() - startNs) / 1_000_000;
  console.log(`heartbeat ${beat} uptime_ms=${uptimeMs}`);
  sleepUntil(startNs + <u64>(beat * intervalMs) * 1_000_000);
}
