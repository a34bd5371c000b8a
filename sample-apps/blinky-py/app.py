"""Blinky: the classic first Warden app, in Python (the same app in Rust: sample-apps/blinky).

It blinks SAMPLE_LED, changing state every 500 ms, and each press of SAMPLE_BUTTON_1 switches
to the next blink rate, as the Azure Sphere GPIO sample does. Its log lines are exactly those
of the Rust sample, so the two can be compared line for line.

If you know Azure Sphere: `OutputPin.open` is `GPIO_OpenAsOutput`, `InputPin.open` is
`GPIO_OpenAsInput`, and peripherals are opened by the names of the board's hardware
definition. Those names must be listed in app_manifest.json ("Gpio": ["$SAMPLE_LED", ...]):
opening anything else raises `Err` with a `not-granted` error instead of returning a pin.
"""

from typing import NoReturn

# `Err` is the exception every device call raises when the WIT function returns an error;
# its `value` is the WIT's `error` variant (one dataclass per case).
from componentize_py_types import Err
from wit_world import exports

# Each WIT interface the app world imports is a module of `wit_world.imports`: each resource,
# such as `gpio.output-pin`, is a class with the same methods.
from wit_world.imports import gpio, log

# How long the LED stays on, then off, in milliseconds; each button press moves to the next.
BLINK_INTERVALS_MS = (500, 250, 125)

# The context every log line of this app carries.
LOG_CONTEXT = "blinky"


class Run(exports.Run):
    """The app world's export, `wasi:cli/run`: Warden calls `run` once."""

    def run(self) -> None:
        # `blinky` only returns by raising an error: log it where the developer reads the
        # app's log, and fail (`Err` out of `run` ends the app with status 1) so the device
        # reports a failed app rather than a finished one.
        try:
            blinky()
        except Err as error:
            log.log(log.Level.ERROR, LOG_CONTEXT, f"stopped: {describe(error.value)}")
            raise Err(None) from error


def blinky() -> NoReturn:
    """Blinks forever; only a failed device call ends it, with `Err`."""
    # Start with the LED driven high: the LEDs of Azure Sphere boards light when driven low.
    led = gpio.OutputPin.open("SAMPLE_LED", gpio.Level.HIGH)
    # The buttons read high when idle and low while pressed.
    button = gpio.InputPin.open("SAMPLE_BUTTON_1")

    interval = 0
    log.log(
        log.Level.INFO,
        LOG_CONTEXT,
        "blinking SAMPLE_LED every 500 ms; press SAMPLE_BUTTON_1 to change the rate",
    )
    while True:
        led.toggle()
        # Waiting for the button is also the pause between toggles: a press (high to low, so a
        # falling edge) ends the wait early, otherwise it times out (`None`) after one
        # interval. The app never spins, so it costs no CPU while it waits.
        if button.wait_for_edge(gpio.Edge.FALLING, BLINK_INTERVALS_MS[interval]) is not None:
            interval = (interval + 1) % len(BLINK_INTERVALS_MS)
            log.log(
                log.Level.INFO,
                LOG_CONTEXT,
                f"SAMPLE_BUTTON_1 pressed: blinking every {BLINK_INTERVALS_MS[interval]} ms",
            )


def describe(error: object) -> str:
    """The error as the Rust sample prints it (`Error::NotGranted("...")`, the Debug form the
    Rust bindings give it), so both samples log the same line for the same failure.

    The bindings make each case of the WIT's `error` variant a dataclass named `Error_<Case>`,
    with the message (if the case has one) in `value`.
    """
    case = type(error).__name__.removeprefix("Error_")
    message = getattr(error, "value", None)
    if message is None:
        return f"Error::{case}"
    return f"Error::{case}({rust_debug_str(str(message))})"


def rust_debug_str(text: str) -> str:
    """`text` quoted and escaped as Rust's `{:?}` does for a string."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif not char.isprintable():
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
