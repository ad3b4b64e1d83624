//  log.h - one-line logging through zsys, with a level filter
//
//  Each line carries the component name (set once per program) and the
//  message; callers write key=value fields, e.g.
//      cmq_log_info ("worker ready worker=%s service=%s", id, name);
//  Messages below the current level cost one comparison.

#ifndef CARTMQ_LOG_H
#define CARTMQ_LOG_H

#include <stdbool.h>

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

void cmq_log_set_level (cmq_log_level_t level);

//  True if a message at this level would be written; lets callers skip
//  building expensive arguments (hex ids) on the hot path.
bool cmq_log_enabled (cmq_log_level_t level);

void cmq_log_error (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));
void cmq_log_warning (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));
void cmq_log_info (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));
void cmq_log_debug (const char *format, ...)
  __attribute__ ((format (printf, 1, 2)));

#endif
