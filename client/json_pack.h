//  json_pack.h - JSON text to one msgpack object, for `cartmq call`
//
//  Parsing is json-c's (Debian's libjson-c), in strict mode with UTF-8
//  validation; this module only walks the tree it gives and packs it:
//  objects become maps (keys in their order), arrays arrays, strings str,
//  integers the smallest msgpack integer that holds them exactly (any value
//  from INT64_MIN to UINT64_MAX), other numbers float64, true/false bool,
//  null nil. json-c was chosen over cJSON because cJSON keeps every number
//  as a double, which would corrupt 64-bit integers past 2^53.
//
//  Refused with a one-line reason, nothing packed: text that is not one
//  JSON value (trailing bytes included), strings that are not UTF-8,
//  nesting deeper than JSON_PACK_MAX_DEPTH, integers outside the 64-bit
//  range (json-c would clamp them silently), and numbers too large for a
//  double.

#ifndef CARTMQ_JSON_PACK_H
#define CARTMQ_JSON_PACK_H

#include <msgpack.h>
#include <stddef.h>

#define JSON_PACK_MAX_DEPTH 64

//  Packs the JSON text (size bytes, no NUL needed) into buffer. Returns
//  0, or -1 with the reason in error.
int json_pack_text (const char *text, size_t size, msgpack_sbuffer *buffer,
                    char *error, size_t error_size);

#endif
