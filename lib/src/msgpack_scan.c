//  msgpack_scan.c - checks raw msgpack bytes before msgpack-c reads them
//
//  Objects are walked in document order with one counter per level of
//  nesting (the objects still to read there), so hostile nesting costs no
//  stack. Each object's header is read and its payload skipped; a container
//  is not entered here, its element count just opens the next level.

#include "cartmq/msgpack_scan.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

//  How a type byte from 0xc0 on reads (the fixed types below and above
//  that range carry their length in the byte itself)
typedef struct {
    bool is_used;      //  false for 0xc1, which msgpack never uses
    uint8_t width;     //  bytes of big-endian length after the type byte
    uint8_t payload;   //  bytes after those, besides what the length says
    uint8_t per_unit;  //  0: the length counts bytes; 1 array, 2 map:
                       //  elements per unit of length (map pairs are two)
} s_format_t;

static const s_format_t s_formats[32] = {
    [0x00] = { true, 0, 0, 0 },   //  nil
    [0x02] = { true, 0, 0, 0 },   //  false
    [0x03] = { true, 0, 0, 0 },   //  true
    [0x04] = { true, 1, 0, 0 },   //  bin 8
    [0x05] = { true, 2, 0, 0 },   //  bin 16
    [0x06] = { true, 4, 0, 0 },   //  bin 32
    [0x07] = { true, 1, 1, 0 },   //  ext 8: length, type, data
    [0x08] = { true, 2, 1, 0 },   //  ext 16
    [0x09] = { true, 4, 1, 0 },   //  ext 32
    [0x0a] = { true, 0, 4, 0 },   //  float 32
    [0x0b] = { true, 0, 8, 0 },   //  float 64
    [0x0c] = { true, 0, 1, 0 },   //  uint 8
    [0x0d] = { true, 0, 2, 0 },   //  uint 16
    [0x0e] = { true, 0, 4, 0 },   //  uint 32
    [0x0f] = { true, 0, 8, 0 },   //  uint 64
    [0x10] = { true, 0, 1, 0 },   //  int 8
    [0x11] = { true, 0, 2, 0 },   //  int 16
    [0x12] = { true, 0, 4, 0 },   //  int 32
    [0x13] = { true, 0, 8, 0 },   //  int 64
    [0x14] = { true, 0, 2, 0 },   //  fixext 1: type, data
    [0x15] = { true, 0, 3, 0 },   //  fixext 2
    [0x16] = { true, 0, 5, 0 },   //  fixext 4
    [0x17] = { true, 0, 9, 0 },   //  fixext 8
    [0x18] = { true, 0, 17, 0 },  //  fixext 16
    [0x19] = { true, 1, 0, 0 },   //  str 8
    [0x1a] = { true, 2, 0, 0 },   //  str 16
    [0x1b] = { true, 4, 0, 0 },   //  str 32
    [0x1c] = { true, 2, 0, 1 },   //  array 16
    [0x1d] = { true, 4, 0, 1 },   //  array 32
    [0x1e] = { true, 2, 0, 2 },   //  map 16
    [0x1f] = { true, 4, 0, 2 },   //  map 32
};

//  A scan in progress
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;   //  next byte to read
    char *error;  //  where a reason goes, or NULL
    size_t error_size;
} s_scan_t;

static int s_fail (s_scan_t *self, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

//  Writes the reason and returns -1, so callers can `return s_fail (...)`.
static int
s_fail (s_scan_t *self, const char *format, ...)
{
    if (self->error && self->error_size > 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (self->error, self->error_size, format, args);
        va_end (args);
    }
    return -1;
}

//  Steps over the header and payload of the object at self->pos, which is
//  before the end. A container's element count (map pairs count twice)
//  goes to *children_p for the caller to walk.
static int
s_scan_one (s_scan_t *self, uint64_t *children_p)
{
    size_t pos = self->pos;
    size_t size = self->size;
    uint8_t byte = self->data[pos++];
    s_format_t format = { true, 0, 0, 0 };  //  fixint: the byte is all
    *children_p = 0;
    if (byte >= 0x80 && byte <= 0x8f)
        *children_p = 2 * (uint64_t) (byte & 0x0f);  //  fixmap
    else if (byte >= 0x90 && byte <= 0x9f)
        *children_p = byte & 0x0f;  //  fixarray
    else if (byte >= 0xa0 && byte <= 0xbf)
        format.payload = byte & 0x1f;  //  fixstr
    else if (byte >= 0xc0 && byte <= 0xdf)
        format = s_formats[byte - 0xc0];
    if (!format.is_used)
        return s_fail (self, "not msgpack: byte 0x%02x at %zu", byte, pos - 1);

    if (size - pos < format.width)
        return s_fail (self, "truncated msgpack at byte %zu", pos);
    uint64_t length = 0;
    for (size_t index = 0; index < format.width; index++)
        length = (length << 8) | self->data[pos++];
    uint64_t payload = format.payload;
    if (format.per_unit)
        *children_p = length * format.per_unit;
    else
        payload += length;
    if (payload > size - pos)
        return s_fail (self,
                       "truncated msgpack: %" PRIu64
                       " bytes declared at byte %zu, %zu left",
                       payload, pos, size - pos);
    //  Every element takes a byte at least, so more is a lie or a cut:
    //  say so at the header rather than after walking what is there.
    if (*children_p > size - pos)
        return s_fail (self,
                       "truncated msgpack: %" PRIu64
                       " elements declared at byte %zu, %zu bytes left",
                       *children_p, pos, size - pos);
    self->pos = pos + (size_t) payload;
    return 0;
}

int
cmq_msgpack_scan (const void *data, size_t size, int max_depth, char *error,
                  size_t error_size)
{
    assert (data || size == 0);
    assert (max_depth >= 0 && max_depth <= CMQ_MSGPACK_SCAN_MAX_DEPTH);
    s_scan_t self = { (const uint8_t *) data, size, 0, error, error_size };
    uint64_t left[CMQ_MSGPACK_SCAN_MAX_DEPTH + 1];  //  objects per level
    int depth = 0;
    left[0] = 1;
    while (depth >= 0) {
        if (left[depth] == 0) {
            depth--;
            continue;
        }
        left[depth]--;
        if (self.pos == size)
            return s_fail (&self, "truncated msgpack at byte %zu", self.pos);
        uint64_t children;
        if (s_scan_one (&self, &children))
            return -1;
        if (children > 0) {
            if (depth == max_depth)
                return s_fail (&self, "msgpack nested deeper than %d levels",
                               max_depth);
            left[++depth] = children;
        }
    }
    if (self.pos != size)
        return s_fail (&self, "%zu trailing bytes after the msgpack object",
                       size - self.pos);
    return 0;
}

int
cmq_msgpack_unpack (const void *data, size_t size, int max_depth,
                    msgpack_unpacked *unpacked, char *error, size_t error_size)
{
    assert (unpacked);
    if (cmq_msgpack_scan (data, size, max_depth, error, error_size))
        return -1;
    s_scan_t self = { (const uint8_t *) data, size, 0, error, error_size };
    size_t offset = 0;
    msgpack_unpack_return rc =
      msgpack_unpack_next (unpacked, (const char *) data, size, &offset);
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        return s_fail (&self, "out of memory decoding msgpack");
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != size)
        return s_fail (&self, "not msgpack");  //  the scan should catch it
    return 0;
}

bool
cmq_msgpack_str_is (const msgpack_object *object, const char *string)
{
    assert (object && string);
    size_t length = strlen (string);
    return object->type == MSGPACK_OBJECT_STR &&
           object->via.str.size == length &&
           (length == 0 || memcmp (object->via.str.ptr, string, length) == 0);
}

const msgpack_object *
cmq_msgpack_map_get (const msgpack_object *map, const char *key)
{
    assert (map && key);
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t index = 0; index < map->via.map.size; index++)
        if (cmq_msgpack_str_is (&map->via.map.ptr[index].key, key))
            return &map->via.map.ptr[index].val;
    return NULL;
}
