// {{name}}: a Warden app in C. It blinks SAMPLE_LED five times and exits.
//
// The app is an ordinary C program: WASI (printf, clocks, files under /storage) comes from
// wasi-libc, the devices from the bindings `warden app build` generates from Warden's WIT
// (warden_device.h, in the SDK's c/ directory). Peripherals are opened by their
// hardware-definition name, and only those listed in app_manifest.json open: anything else
// returns a `not-granted` error.

#include <stdio.h>
#include <time.h>

#include "warden_device.h"

// Writes one line to the app's log on the device: "[info] {{name}}: <message>".
static void log_info(const char *message) {
    warden_device_string_t context, text;
    warden_device_string_set(&context, "{{name}}");
    warden_device_string_set(&text, message);
    warden_device_log_log(WARDEN_DEVICE_LOG_LEVEL_INFO, &context, &text);
}

// The WIT name of an error's case, as the docs and other languages spell it.
static const char *error_case(const warden_device_types_error_t *err) {
    switch (err->tag) {
    case WARDEN_DEVICE_TYPES_ERROR_NOT_GRANTED: return "not-granted";
    case WARDEN_DEVICE_TYPES_ERROR_UNKNOWN_NAME: return "unknown-name";
    case WARDEN_DEVICE_TYPES_ERROR_BUSY: return "busy";
    case WARDEN_DEVICE_TYPES_ERROR_INVALID_ARGUMENT: return "invalid-argument";
    case WARDEN_DEVICE_TYPES_ERROR_IO: return "io";
    default: return "timeout";
    }
}

// Prints why a device call failed to stderr (the app's log) and frees the error.
static void print_error(const char *what, warden_device_types_error_t *err) {
    if (err->tag == WARDEN_DEVICE_TYPES_ERROR_TIMEOUT) {
        fprintf(stderr, "%s: timeout\n", what);
    } else {
        // Every other case carries a message naming the peripheral or the value, and they
        // share one layout in the union.
        const warden_device_string_t *message = &err->val.not_granted;
        fprintf(stderr, "%s: %s: %.*s\n", what, error_case(err), (int)message->len,
                (const char *)message->ptr);
    }
    // The message was allocated by the bindings: give it back.
    warden_device_types_error_free(err);
}

int main(void) {
    warden_device_string_t name;
    warden_device_string_set(&name, "SAMPLE_LED");
    warden_device_gpio_own_output_pin_t led;
    warden_device_gpio_error_t err;
    if (!warden_device_gpio_static_output_pin_open(&name, WARDEN_DEVICE_GPIO_LEVEL_HIGH, &led,
                                                   &err)) {
        print_error("opening SAMPLE_LED", &err);
        return 1;
    }
    // Methods take a borrow of the pin; the app keeps owning it.
    warden_device_gpio_borrow_output_pin_t pin = warden_device_gpio_borrow_output_pin(led);
    for (int i = 0; i < 10; i++) {
        warden_device_gpio_level_t level;
        if (!warden_device_gpio_method_output_pin_toggle(pin, &level, &err)) {
            print_error("toggling SAMPLE_LED", &err);
            return 1;
        }
        log_info(level == WARDEN_DEVICE_GPIO_LEVEL_HIGH ? "SAMPLE_LED is high"
                                                        : "SAMPLE_LED is low");
        struct timespec quarter_second = {.tv_sec = 0, .tv_nsec = 250 * 1000 * 1000};
        nanosleep(&quarter_second, NULL);
    }
    // Dropping the pin hands the line back to the board.
    warden_device_gpio_output_pin_drop_own(led);
    printf("{{name}}: done\n");
    return 0;
}
