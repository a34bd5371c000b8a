// The line protocol of uart-echo (see include/line_protocol.h).
//
//   PING           -> PONG
//   ECHO <text>    -> <text>
//   UPTIME         -> seconds since the app started
//   HELP           -> the list of commands
//   anything else  -> ERR unknown command: <first word>

#include "line_protocol.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void line_reader_init(line_reader_t *reader) {
    reader->len = 0;
    reader->too_long = false;
    reader->text[0] = '\0';
}

line_status_t line_reader_push(line_reader_t *reader, uint8_t byte) {
    if (byte == '\r' || byte == '\n') {
        line_status_t status = LINE_PENDING;
        if (reader->too_long) {
            status = LINE_TOO_LONG;
        } else if (reader->len > 0) {
            reader->text[reader->len] = '\0';
            status = LINE_READY;
        }
        // The next byte starts a new line; `text` stays valid for the caller until then.
        reader->len = 0;
        reader->too_long = false;
        return status;
    }
    if (reader->too_long) {
        return LINE_PENDING;
    }
    if (reader->len == LINE_MAX_BYTES) {
        // Dropping the line (rather than answering its first part) keeps each answer tied to
        // exactly one line the sender wrote.
        reader->too_long = true;
        return LINE_PENDING;
    }
    reader->text[reader->len++] = (char)byte;
    return LINE_PENDING;
}

// Whether `line` is the command `name`, alone or followed by a space and its argument.
static bool is_command(const char *line, const char *name) {
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

bool protocol_answer(const char *line, uint64_t uptime_s, char *answer, size_t answer_size) {
    if (is_command(line, "PING")) {
        snprintf(answer, answer_size, "PONG");
    } else if (is_command(line, "ECHO")) {
        // Everything after "ECHO ", spaces included; a bare ECHO answers an empty line.
        const char *text = line[4] == ' ' ? line + 5 : "";
        snprintf(answer, answer_size, "%s", text);
    } else if (is_command(line, "UPTIME")) {
        snprintf(answer, answer_size, "%" PRIu64, uptime_s);
    } else if (is_command(line, "HELP")) {
        snprintf(answer, answer_size, "commands: PING, ECHO <text>, UPTIME, HELP");
    } else {
        // Name only the first word: it is what the sender meant as the command.
        size_t word = strcspn(line, " ");
        snprintf(answer, answer_size, "ERR unknown command: %.*s", (int)word, line);
        return false;
    }
    return true;
}
