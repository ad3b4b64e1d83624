//  error.h - the one way lib/ writes a reason for a failure
//
//  Internal to libcartmq. Objects keep the reason in their own buffer
//  (cartmq/common.h); constructors and curve calls write it to the
//  caller's buffer, which may be NULL when the caller does not ask.

#ifndef CARTMQ_ERROR_H
#define CARTMQ_ERROR_H

#include <stddef.h>

//  snprintf into error, unless error is NULL or error_size is 0.
void cmq_error_set (char *error, size_t error_size, const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

#endif
