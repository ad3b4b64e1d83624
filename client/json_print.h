//  json_print.h - msgpack objects as one line of JSON
//
//  The conversion is generic: it knows nothing about carts. Map keys keep
//  the order they arrived in; str, bin and ext become JSON strings in which
//  bytes that are not valid UTF-8 are written as \u00XX (the byte's value);
//  integers stay exact at any size; nil is null; a float JSON cannot hold
//  (NaN, infinity) is null. A key that is not a string is written as the
//  string of its JSON ("1", "null"), since JSON keys must be strings.
//  Control characters, DEL and the C1 controls (U+0080..U+009F) are
//  escaped, so a line is safe on a terminal; the output is always valid
//  JSON in valid UTF-8, whatever bytes the object held.

#ifndef CARTMQ_JSON_PRINT_H
#define CARTMQ_JSON_PRINT_H

#include <msgpack.h>
#include <stddef.h>

//  Deeper nesting than this is refused rather than recursed into.
#define JSON_PRINT_MAX_DEPTH 64

//  Converts object to JSON with no newline. Returns a heap string the
//  caller frees, and its length in *length_p if given; NULL when nested
//  deeper than JSON_PRINT_MAX_DEPTH or out of memory.
char *json_print_object (const msgpack_object *object, size_t *length_p);

//  Unpacks data, which must hold exactly one msgpack object, into
//  *unpacked (the caller inits it before and destroys it after, on any
//  return). The bytes go through cmq_msgpack_scan first: msgpack-c
//  allocates a container as soon as it reads its declared length, so a few
//  hostile bytes could claim gigabytes; a container that declares more
//  elements than bytes remain, nesting past msgpack-c's 32 levels,
//  truncation and trailing bytes are refused before it runs. Returns 0, or
//  -1. Strings in the result point into data, which must outlive *unpacked.
int json_print_unpack (const void *data, size_t size,
                       msgpack_unpacked *unpacked);

#endif
