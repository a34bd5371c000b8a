#include "trace.h"

#include <string.h>

char trace_buffer[TRACE_BUFFER_LEN];
static uint32_t trace_used;

void trace(const char *line)
{
    size_t room = TRACE_BUFFER_LEN - 1 - trace_used;
    size_t n = strlen(line);
    if (n > room) {
        n = room;
    }
    memcpy(trace_buffer + trace_used, line, n);
    trace_used += n;
}
