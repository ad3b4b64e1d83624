//  msgpack_scan.h - checks raw msgpack bytes before msgpack-c reads them
//
//  msgpack-c trusts what it reads: it allocates a whole container as soon
//  as it sees the declared length, and nests as deep as the input says.
//  cmq_msgpack_scan walks every object in the raw bytes first, iteratively
//  and without building anything. Bytes that pass hold at most one object
//  per byte, so what msgpack_unpack_next then allocates is bounded by the
//  input's size, and nesting is bounded by the caller's limit.

#ifndef CARTMQ_MSGPACK_SCAN_H
#define CARTMQ_MSGPACK_SCAN_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

//  The largest max_depth cmq_msgpack_scan takes.
#define CMQ_MSGPACK_SCAN_MAX_DEPTH 64

//  Returns 0 if the size bytes at data hold exactly one well-formed msgpack
//  object with nothing inside it more than max_depth levels down (0 to
//  CMQ_MSGPACK_SCAN_MAX_DEPTH; 0 allows no element at all). Otherwise
//  returns -1 and writes a one-line reason to error (if not NULL): a byte
//  that is no msgpack type, truncation (also a length or element count that
//  declares more than the bytes left, refused at its header), nesting past
//  max_depth, or trailing bytes. size 0 is truncation.
int cmq_msgpack_scan (const void *data, size_t size, int max_depth, char *error,
                      size_t error_size);

//  Scans data as cmq_msgpack_scan does, then unpacks its one object into
//  *unpacked (the caller inits it before and destroys it after, on any
//  return); the scan is what keeps msgpack-c's allocation bounded by
//  size. Strings in the result point into data, which must outlive
//  *unpacked. Returns 0, or -1 with a one-line reason in error (if not
//  NULL). Every reader of peer msgpack in cartmq goes through this.
int cmq_msgpack_unpack (const void *data, size_t size, int max_depth,
                        msgpack_unpacked *unpacked, char *error,
                        size_t error_size);

//  True if object is a msgpack str holding exactly the bytes of string.
bool cmq_msgpack_str_is (const msgpack_object *object, const char *string);

//  The value of the first pair whose key is the str key, or NULL (also
//  when map is not a map).
const msgpack_object *cmq_msgpack_map_get (const msgpack_object *map,
                                           const char *key);

#endif
