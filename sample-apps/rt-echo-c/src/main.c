/* rt-echo-c: the inter-core echo service on the emulated Cortex-M4.
 *
 * Every frame addressed to the service endpoint (0x400) is answered with the same payload,
 * from 0x400 to the sender's address. Two payloads are commands instead:
 *
 *   flood:N   (N decimal, at most 100000)  N frames `n:0` ... `n:<N-1>`, then `flood-done`
 *   crash     a fault (a jump to an address without the Thumb bit); the fault handler ends
 *             the emulator with a semihosting failure exit
 *
 * Frames to any other address are ignored. */

#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "trace.h"
#include "uart.h"

#define FLOOD_MAX 100000u

static struct frame_parser parser;

/* Parses the N of `flood:N`: 1 to 6 decimal digits, at most FLOOD_MAX. */
static int parse_flood(const uint8_t *payload, size_t len, uint32_t *count)
{
    static const char prefix[] = "flood:";
    const size_t prefix_len = sizeof prefix - 1;
    if (len <= prefix_len || len > prefix_len + 6 || memcmp(payload, prefix, prefix_len) != 0) {
        return 0;
    }
    uint32_t n = 0;
    for (size_t i = prefix_len; i < len; i++) {
        if (payload[i] < '0' || payload[i] > '9') {
            return 0;
        }
        n = n * 10 + (uint32_t)(payload[i] - '0');
    }
    if (n > FLOOD_MAX) {
        return 0;
    }
    *count = n;
    return 1;
}

/* Writes `n:<i>` into out (at least 13 bytes) and returns its length. */
static size_t format_counter(uint32_t i, uint8_t *out)
{
    char digits[10];
    size_t d = 0;
    do {
        digits[d++] = (char)('0' + i % 10);
        i /= 10;
    } while (i != 0);
    size_t len = 0;
    out[len++] = 'n';
    out[len++] = ':';
    while (d > 0) {
        out[len++] = (uint8_t)digits[--d];
    }
    return len;
}

static void flood(uint32_t to, uint32_t count)
{
    uint8_t payload[16];
    for (uint32_t i = 0; i < count; i++) {
        frame_send(FRAME_SERVICE_ENDPOINT, to, payload, format_counter(i, payload));
    }
    static const char done[] = "flood-done";
    frame_send(FRAME_SERVICE_ENDPOINT, to, (const uint8_t *)done, sizeof done - 1);
}

__attribute__((noreturn)) static void crash(void)
{
    trace("crash requested\n");
    /* An even address: BLX to it clears the Thumb bit, and the next instruction raises an
     * INVSTATE UsageFault, which escalates to HardFault. */
    void (*nowhere)(void) = (void (*)(void))0x00000200u;
    nowhere();
    __builtin_unreachable();
}

static void serve(const struct frame *frame)
{
    if (frame->dst != FRAME_SERVICE_ENDPOINT) {
        return;
    }
    uint32_t count;
    if (frame->len == 5 && memcmp(frame->payload, "crash", 5) == 0) {
        crash();
    } else if (parse_flood(frame->payload, frame->len, &count)) {
        flood(frame->src, count);
    } else {
        frame_send(FRAME_SERVICE_ENDPOINT, frame->src, frame->payload, frame->len);
    }
}

int main(void)
{
    uart_init();
    frame_parser_init(&parser);
    trace("rt-echo-c: serving endpoint 0x400 on UART0\n");
    for (;;) {
        frame_parser_push(&parser, uart_read(), serve);
    }
}
