/* The trace buffer the resource table declares: on a real board Linux shows it as
 * /sys/kernel/debug/remoteproc/remoteprocN/trace0. The firmware logs what it does there. */
#ifndef RT_ECHO_TRACE_H
#define RT_ECHO_TRACE_H

#include <stdint.h>

#define TRACE_BUFFER_LEN 1024u

extern char trace_buffer[TRACE_BUFFER_LEN];

/* Appends a line to the trace buffer (as much as fits; the last byte stays 0). */
void trace(const char *line);

#endif
