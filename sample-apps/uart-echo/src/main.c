// uart-echo: a line protocol on a UART, in C.
//
// The app opens the board's console UART by its hardware-definition name, reads what arrives,
// assembles lines (ended by CR, LF or CRLF) and answers each one on the same UART
// (see src/line_protocol.c for the commands). It logs every exchange through Warden's log
// interface, so `warden app logs` shows what it did.
//
// It is an ordinary C program: WASI (printf, clock_gettime) comes from wasi-libc, the device
// calls from the bindings in warden_device.h, which `cargo xtask sdk` generates from Warden's
// WIT. Every device call returns false and fills an error when it fails; a refusal (say, a
// manifest without the UART) is such an error, never a crash.

#include <stdio.h>
#include <time.h>

#include "line_protocol.h"
#include "warden_device.h"

// The UART, as the hardware definition names it. app_manifest.json grants "$UART_CONSOLE";
// without that grant, opening it fails with `not-granted`.
#define UART_NAME "UART_CONSOLE"

// How much one read may return, and how long it waits for the first byte. A timeout is not an
// error: the read returns nothing and the loop reads again.
#define READ_MAX_BYTES 256
#define READ_TIMEOUT_MS 1000

// Writes one line to the app's log on the device: "[<level>] uart-echo: <message>".
//
// A WIT `string` must be valid UTF-8 (the host refuses anything else, ending the app), but a
// UART carries any byte. So every byte outside printable ASCII is logged as \xNN.
static void log_line(warden_device_log_level_t level, const char *message) {
    char safe[2048];
    size_t len = 0;
    for (const unsigned char *c = (const unsigned char *)message; *c != '\0'; c++) {
        if (len + 5 > sizeof safe) {
            break; // cut a message too long for the buffer, never overrun it
        }
        if (*c >= 0x20 && *c < 0x7f) {
            safe[len++] = (char)*c;
        } else {
            len += (size_t)snprintf(safe + len, sizeof safe - len, "\\x%02x", *c);
        }
    }
    safe[len] = '\0';

    warden_device_string_t context, text;
    // `string_set` borrows the C string, no copy: fine, the call does not keep it.
    warden_device_string_set(&context, "uart-echo");
    warden_device_string_set(&text, safe);
    warden_device_log_log(level, &context, &text);
}

// The WIT name of an error's case, as the docs and the other languages spell it.
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

// Logs why the device call `what` failed, and frees the error's message.
static void log_error(const char *what, warden_device_types_error_t *err) {
    char message[256];
    if (err->tag == WARDEN_DEVICE_TYPES_ERROR_TIMEOUT) {
        snprintf(message, sizeof message, "%s: timeout", what);
    } else {
        // Every other case carries a message naming the peripheral or the value; they share
        // one layout in the union.
        const warden_device_string_t *detail = &err->val.not_granted;
        snprintf(message, sizeof message, "%s: %s: %.*s", what, error_case(err),
                 (int)detail->len, (const char *)detail->ptr);
    }
    log_line(WARDEN_DEVICE_LOG_LEVEL_ERROR, message);
    // The message was allocated by the bindings: give it back.
    warden_device_types_error_free(err);
}

// Seconds on the monotonic clock (which wall-clock changes do not move).
static uint64_t monotonic_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec;
}

// Writes `text` and CRLF (what serial terminals expect) to the UART.
static bool send_line(warden_device_uart_borrow_port_t port, const char *text) {
    char line[ANSWER_MAX_BYTES + 2];
    int len = snprintf(line, sizeof line, "%s\r\n", text);
    if (len < 0 || (size_t)len >= sizeof line) {
        len = (int)sizeof line - 1; // cut, never overrun: answers are sized to fit anyway
    }
    // The bindings take the bytes by pointer and length, and do not keep them.
    warden_device_list_u8_t bytes = {.ptr = (uint8_t *)line, .len = (size_t)len};
    warden_device_uart_error_t err;
    if (!warden_device_uart_method_port_write(port, &bytes, &err)) {
        log_error("writing to " UART_NAME, &err);
        return false;
    }
    return true;
}

// Answers one complete line and logs the exchange.
static bool answer_line(warden_device_uart_borrow_port_t port, const char *line,
                        uint64_t started) {
    char answer[ANSWER_MAX_BYTES];
    bool known = protocol_answer(line, monotonic_seconds() - started, answer, sizeof answer);
    char message[LINE_MAX_BYTES + ANSWER_MAX_BYTES + 16];
    snprintf(message, sizeof message, "\"%s\" -> \"%s\"", line, answer);
    log_line(known ? WARDEN_DEVICE_LOG_LEVEL_INFO : WARDEN_DEVICE_LOG_LEVEL_WARN, message);
    return send_line(port, answer);
}

int main(void) {
    uint64_t started = monotonic_seconds();

    warden_device_string_t name;
    warden_device_string_set(&name, UART_NAME);
    warden_device_uart_own_port_t uart;
    warden_device_uart_error_t err;
    if (!warden_device_uart_static_port_open(&name, &uart, &err)) {
        log_error("opening " UART_NAME, &err);
        return 1;
    }
    // The app owns `uart`; calls take a borrow of it.
    warden_device_uart_borrow_port_t port = warden_device_uart_borrow_port(uart);
    log_line(WARDEN_DEVICE_LOG_LEVEL_INFO, "listening on " UART_NAME);
    if (!send_line(port, "uart-echo ready")) {
        return 1;
    }

    line_reader_t reader;
    line_reader_init(&reader);
    for (;;) {
        warden_device_list_u8_t received;
        if (!warden_device_uart_method_port_read(port, READ_MAX_BYTES, READ_TIMEOUT_MS,
                                                  &received, &err)) {
            log_error("reading from " UART_NAME, &err);
            return 1;
        }
        bool ok = true;
        for (size_t i = 0; i < received.len && ok; i++) {
            switch (line_reader_push(&reader, received.ptr[i])) {
            case LINE_READY:
                ok = answer_line(port, reader.text, started);
                break;
            case LINE_TOO_LONG: {
                char answer[64];
                snprintf(answer, sizeof answer, "ERR line too long (at most %d bytes)",
                         LINE_MAX_BYTES);
                log_line(WARDEN_DEVICE_LOG_LEVEL_WARN, "dropped a line longer than the buffer");
                ok = send_line(port, answer);
                break;
            }
            case LINE_PENDING:
                break;
            }
        }
        // The bytes were allocated by the bindings for this call: free them.
        warden_device_list_u8_free(&received);
        if (!ok) {
            return 1;
        }
    }
}
