/* Inter-core messages as serial frames (docs/formats/intercore.md):
 *
 *   0xA5 0x5A | src u32 | dst u32 | reserved u32 = 0 | len u16 | flags u16 = 0 | payload
 *
 * little-endian, 1 <= len <= 496. */
#ifndef RT_ECHO_FRAME_H
#define RT_ECHO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_SYNC0 0xA5u
#define FRAME_SYNC1 0x5Au
#define FRAME_HEADER_LEN 16u
#define FRAME_MAX_PAYLOAD 496u
#define FRAME_MAX_LEN (2u + FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD)
/* The firmware's service endpoint. */
#define FRAME_SERVICE_ENDPOINT 0x400u

struct frame {
    uint32_t src;
    uint32_t dst;
    uint16_t len;
    const uint8_t *payload;
};

typedef void (*frame_handler)(const struct frame *frame);

/* Collects bytes until they make a frame. It never holds more than one frame: at most
 * FRAME_MAX_LEN bytes decide whether there is a frame at the front. */
struct frame_parser {
    uint8_t buf[FRAME_MAX_LEN];
    size_t held;
    /* Bytes dropped while searching for a sync mark or after a refused header. */
    uint32_t dropped;
};

void frame_parser_init(struct frame_parser *parser);
/* Takes one byte; calls handler for the frame it completes, if any. The payload is valid
 * only during the call. */
void frame_parser_push(struct frame_parser *parser, uint8_t byte, frame_handler handler);

/* Sends one frame on UART0; len must be 1 to FRAME_MAX_PAYLOAD (otherwise nothing is sent). */
void frame_send(uint32_t src, uint32_t dst, const uint8_t *payload, size_t len);

#endif
