#include "frame.h"

#include <string.h>

#include "uart.h"

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t read_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void frame_parser_init(struct frame_parser *parser)
{
    parser->held = 0;
    parser->dropped = 0;
}

static void drop_front(struct frame_parser *parser, size_t n)
{
    memmove(parser->buf, parser->buf + n, parser->held - n);
    parser->held -= n;
}

/* Decides about the bytes at the front as far as they allow: drops what cannot start a frame
 * (one byte at a time, as the format says, so a sync mark inside a refused header is found),
 * hands over a whole frame, or waits for more. */
static void parse(struct frame_parser *parser, frame_handler handler)
{
    for (;;) {
        const uint8_t *b = parser->buf;
        size_t held = parser->held;
        if (held == 0) {
            return;
        }
        if (b[0] != FRAME_SYNC0) {
            drop_front(parser, 1);
            parser->dropped++;
            continue;
        }
        if (held < 2) {
            return;
        }
        if (b[1] != FRAME_SYNC1) {
            drop_front(parser, 1);
            parser->dropped++;
            continue;
        }
        if (held < 2 + FRAME_HEADER_LEN) {
            return;
        }
        const uint8_t *h = b + 2;
        uint32_t reserved = read_u32(h + 8);
        uint16_t len = read_u16(h + 12);
        uint16_t flags = read_u16(h + 14);
        if (reserved != 0 || flags != 0 || len == 0 || len > FRAME_MAX_PAYLOAD) {
            drop_front(parser, 1);
            parser->dropped++;
            continue;
        }
        size_t total = 2 + FRAME_HEADER_LEN + len;
        if (held < total) {
            return;
        }
        struct frame frame = {
            .src = read_u32(h),
            .dst = read_u32(h + 4),
            .len = len,
            .payload = b + 2 + FRAME_HEADER_LEN,
        };
        handler(&frame);
        drop_front(parser, total);
    }
}

void frame_parser_push(struct frame_parser *parser, uint8_t byte, frame_handler handler)
{
    /* parse() leaves fewer than FRAME_MAX_LEN bytes (that many always decide), so there is
     * room; the check guards the invariant rather than trusting it. */
    if (parser->held >= sizeof parser->buf) {
        drop_front(parser, 1);
        parser->dropped++;
    }
    parser->buf[parser->held++] = byte;
    parse(parser, handler);
}

static void write_u32(uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        uart_write((uint8_t)(v >> (8 * i)));
    }
}

static void write_u16(uint16_t v)
{
    uart_write((uint8_t)v);
    uart_write((uint8_t)(v >> 8));
}

void frame_send(uint32_t src, uint32_t dst, const uint8_t *payload, size_t len)
{
    if (len == 0 || len > FRAME_MAX_PAYLOAD) {
        return;
    }
    uart_write(FRAME_SYNC0);
    uart_write(FRAME_SYNC1);
    write_u32(src);
    write_u32(dst);
    write_u32(0);
    write_u16((uint16_t)len);
    write_u16(0);
    for (size_t i = 0; i < len; i++) {
        uart_write(payload[i]);
    }
}
