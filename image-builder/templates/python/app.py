"""{{name}}: a Warden app. It blinks SAMPLE_LED five times and exits.

Peripherals are opened by their hardware-definition name, and only those listed in
app_manifest.json open: anything else raises `Err` with a `not-granted` error.
"""

import time

from wit_world import exports
from wit_world.imports import gpio, log


class Run(exports.Run):
    """The app's entry point: Warden calls `run` once; returning ends the app with status 0,
    an exception with status 1."""

    def run(self) -> None:
        led = gpio.OutputPin.open("SAMPLE_LED", gpio.Level.HIGH)
        for _ in range(10):
            level = led.toggle()
            log.log(log.Level.INFO, "{{name}}", f"SAMPLE_LED is {level.name.lower()}")
            time.sleep(0.25)
        print("{{name}}: done")
