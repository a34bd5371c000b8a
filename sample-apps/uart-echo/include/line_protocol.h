// The uart-echo line protocol, kept apart from the UART so it is plain C: bytes in, lines
// out, an answer for each line. Nothing here allocates or calls the device.

#ifndef UART_ECHO_LINE_PROTOCOL_H
#define UART_ECHO_LINE_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The longest command line accepted, without its line ending. Longer lines are answered with
// an error once they end, never stored past the buffer.
#define LINE_MAX_BYTES 128

// Room for any answer: the longest is an unknown command of LINE_MAX_BYTES echoed back.
#define ANSWER_MAX_BYTES (LINE_MAX_BYTES + 64)

// Assembles lines from a byte stream; a line ends at CR or LF (so CRLF works too).
typedef struct {
    char text[LINE_MAX_BYTES + 1]; // the line so far, NUL-terminated once complete
    size_t len;                    // bytes in `text`
    bool too_long;                 // the line outgrew `text`: the rest is dropped until its end
} line_reader_t;

// What feeding one byte produced.
typedef enum {
    LINE_PENDING,  // no complete line yet
    LINE_READY,    // a complete line is in `text`
    LINE_TOO_LONG, // a line longer than LINE_MAX_BYTES just ended; it was dropped
} line_status_t;

void line_reader_init(line_reader_t *reader);

// Feeds one byte. After LINE_READY, `reader->text` holds the line until the next call.
// Empty lines (as between the CR and LF of CRLF) are not reported.
line_status_t line_reader_push(line_reader_t *reader, uint8_t byte);

// Writes the answer to the command `line` into `answer` (ANSWER_MAX_BYTES or more), without a
// line ending. `uptime_s` is what UPTIME answers. Returns false for an unknown command (the
// answer is then an "ERR ..." line).
bool protocol_answer(const char *line, uint64_t uptime_s, char *answer, size_t answer_size);

#endif
