//  error.c - the one way lib/ writes a reason for a failure

#include "error.h"

#include <stdarg.h>
#include <stdio.h>

void
cmq_error_set (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
}
