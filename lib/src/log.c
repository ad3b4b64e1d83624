//  log.c - one-line logging through zsys, with a level filter

#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>

#include "cartmq/log.h"

static cmq_log_level_t s_level = CMQ_LOG_INFO;
static char s_component[32] = "cartmq";

void
cmq_log_init (const char *component, cmq_log_level_t level, bool use_syslog)
{
    snprintf (s_component, sizeof (s_component), "%s",
              component ? component : "cartmq");
    s_level = level;
    zsys_set_logident (s_component);
    //  Logs are diagnostics: stderr, leaving stdout to program output.
    zsys_set_logstream (use_syslog ? NULL : stderr);
    if (use_syslog)
        zsys_set_logsystem (true);
}

bool
cmq_log_enabled (cmq_log_level_t level)
{
    return level <= s_level;
}

static bool
s_is_plain (unsigned char byte)
{
    return byte >= 0x20 && byte < 0x7f && byte != '\\' && byte != '"';
}

const char *
cmq_log_escape (const void *data, size_t size, char *buffer, size_t buffer_size)
{
    assert (buffer && buffer_size >= 4);
    assert (data || size == 0);
    static const char digits[] = "0123456789abcdef";
    const unsigned char *bytes = (const unsigned char *) data;
    size_t needed = 0;
    for (size_t index = 0; index < size; index++)
        needed += s_is_plain (bytes[index]) ? 1 : 4;
    //  What does not fit is cut, leaving room for "..." and the NUL.
    size_t room = needed < buffer_size ? needed : buffer_size - 4;
    size_t used = 0;
    for (size_t index = 0; index < size; index++) {
        bool is_plain = s_is_plain (bytes[index]);
        if (used + (is_plain ? 1 : 4) > room)
            break;
        if (is_plain)
            buffer[used++] = (char) bytes[index];
        else {
            buffer[used++] = '\\';
            buffer[used++] = 'x';
            buffer[used++] = digits[bytes[index] >> 4];
            buffer[used++] = digits[bytes[index] & 15];
        }
    }
    if (needed >= buffer_size) {
        memcpy (buffer + used, "...", 3);
        used += 3;
    }
    buffer[used] = 0;
    return buffer;
}

//  zsys prefixes the level letter, the component (its log ident) and the
//  time, so lines from a broker and its workers can share one terminal.
static void s_log (cmq_log_level_t level, const char *format, va_list args)
  __attribute__ ((format (printf, 2, 0)));

static void
s_log (cmq_log_level_t level, const char *format, va_list args)
{
    char line[4096];
    vsnprintf (line, sizeof (line), format, args);
    switch (level) {
        case CMQ_LOG_ERROR:
            zsys_error ("%s", line);
            break;
        case CMQ_LOG_WARNING:
            zsys_warning ("%s", line);
            break;
        case CMQ_LOG_INFO:
            zsys_info ("%s", line);
            break;
        case CMQ_LOG_DEBUG:
            zsys_debug ("%s", line);
            break;
    }
}

#define S_LOG_FUNCTION(name, level)                                            \
    void name (const char *format, ...)                                        \
    {                                                                          \
        if (level > s_level)                                                   \
            return;                                                            \
        va_list args;                                                          \
        va_start (args, format);                                               \
        s_log (level, format, args);                                           \
        va_end (args);                                                         \
    }

S_LOG_FUNCTION (cmq_log_error, CMQ_LOG_ERROR)
S_LOG_FUNCTION (cmq_log_warning, CMQ_LOG_WARNING)
S_LOG_FUNCTION (cmq_log_info, CMQ_LOG_INFO)
S_LOG_FUNCTION (cmq_log_debug, CMQ_LOG_DEBUG)
