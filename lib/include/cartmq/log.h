//  log.h - one-line logging through zsys, with a level filter
//
//  Each line carries the component name (set once per program) and the
//  message; callers write key=value fields, e.g.
//      cmq_log_info ("worker ready worker=%s service=%s", id, name);
//  Messages below the current level cost one comparison.

#ifndef CARTMQ_LOG_H
#define CARTMQ_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    CMQ_LOG_ERROR = 0,
    CMQ_LOG_WARNING = 1,
    CMQ_LOG_INFO = 2,
    CMQ_LOG_DEBUG = 3
} cmq_log_level_t;

//  Names the component in every line ("broker", "worker") and sets the
//  level. With use_syslog, lines go to syslog instead of stderr.
void cmq_log_init (const char *component, cmq_log_level_t level,
                   bool use_syslog);

//  True if a message at this level would be written; lets callers skip
//  building expensive arguments (hex ids) on the hot path.
bool cmq_log_enabled (cmq_log_level_t level);

//  Room for the escaped form of size peer bytes, NUL included.
#define CMQ_LOG_ESCAPED_BYTES(size) (4 * (size) + 1)

//  Writes bytes a peer sent (a service name, an id, a key) into buffer so
//  that no peer can forge or split a log line (contract §3): printable
//  ASCII is kept, every other byte and also '\\' and '"' become \xHH.
//  Writes at most buffer_size bytes, NUL included; a value that does not
//  fit is cut at a whole escape and ends in "...". Returns buffer.
const char *cmq_log_escape (const void *data, size_t size, char *buffer,
                            size_t buffer_size);

void cmq_log_error (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));
void cmq_log_warning (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));
void cmq_log_info (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));
void cmq_log_debug (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));

#endif
