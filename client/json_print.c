//  json_print.c - msgpack objects as one line of JSON

#include "json_print.h"

#include "cartmq/cart_codec.h"
#include "cartmq/msgpack_scan.h"

#include <float.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  msgpack-c refuses deeper nesting itself (MSGPACK_EMBED_STACK_SIZE).
#define S_MAX_UNPACK_DEPTH 32

//  A growing output buffer; once an append fails, it stays failed so the
//  callers need not check every step.
typedef struct {
    char *data;
    size_t size;      //  bytes written, without the NUL
    size_t capacity;  //  bytes allocated
    bool is_failed;   //  out of memory or too deep
} s_buffer_t;

static void
s_append (s_buffer_t *buffer, const char *data, size_t size)
{
    if (buffer->is_failed)
        return;
    if (buffer->size + size + 1 > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 64;
        while (buffer->size + size + 1 > capacity)
            capacity *= 2;
        char *grown = (char *) realloc (buffer->data, capacity);
        if (!grown) {
            buffer->is_failed = true;
            return;
        }
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy (buffer->data + buffer->size, data, size);
    buffer->size += size;
    buffer->data[buffer->size] = 0;
}

static void
s_append_str (s_buffer_t *buffer, const char *string)
{
    s_append (buffer, string, strlen (string));
}

static void
s_append_escape (s_buffer_t *buffer, unsigned char byte)
{
    char escape[8];
    switch (byte) {
        case '"':
            s_append_str (buffer, "\\\"");
            break;
        case '\\':
            s_append_str (buffer, "\\\\");
            break;
        case '\b':
            s_append_str (buffer, "\\b");
            break;
        case '\f':
            s_append_str (buffer, "\\f");
            break;
        case '\n':
            s_append_str (buffer, "\\n");
            break;
        case '\r':
            s_append_str (buffer, "\\r");
            break;
        case '\t':
            s_append_str (buffer, "\\t");
            break;
        default:
            snprintf (escape, sizeof (escape), "\\u%04x", byte);
            s_append_str (buffer, escape);
    }
}

//  Raw bytes as a JSON string. DEL and the C1 controls (U+0080..U+009F,
//  bytes C2 80..C2 9F) are escaped too, though JSON allows them, so the
//  line is safe to show on a terminal: some terminals act on C1 CSI.
static void
s_append_string (s_buffer_t *buffer, const char *data, size_t size)
{
    const unsigned char *bytes = (const unsigned char *) data;
    s_append (buffer, "\"", 1);
    size_t index = 0;
    while (index < size) {
        unsigned char byte = bytes[index];
        if (byte < 0x20 || byte == '"' || byte == '\\' || byte == 0x7F) {
            s_append_escape (buffer, byte);
            index++;
            continue;
        }
        size_t length = cmq_cart_utf8_sequence (bytes + index, size - index);
        if (length == 0) {
            s_append_escape (buffer, byte);
            index++;
            continue;
        }
        if (length == 2 && byte == 0xC2 && bytes[index + 1] < 0xA0) {
            s_append_escape (buffer, bytes[index + 1]);  //  C1: \u0080..
            index += 2;
            continue;
        }
        //  Copy the longest run of plain bytes at once.
        size_t end = index + length;
        while (end < size && bytes[end] >= 0x20 && bytes[end] < 0x7F &&
               bytes[end] != '"' && bytes[end] != '\\')
            end++;
        s_append (buffer, data + index, end - index);
        index = end;
    }
    s_append (buffer, "\"", 1);
}

//  The shortest decimal that reads back as the same value, always with a
//  fraction or exponent so that it stays a float to JSON readers.
static void
s_append_float (s_buffer_t *buffer, double value, bool is_single)
{
    if (value != value || value - value != 0) {
        s_append_str (buffer, "null");  //  NaN or infinity
        return;
    }
    char text[40];
    int max_precision = is_single ? 9 : 17;
    for (int precision = 1; precision <= max_precision; precision++) {
        snprintf (text, sizeof (text), "%.*g", precision, value);
        double back = strtod (text, NULL);
        if (is_single ? (float) back == (float) value : back == value)
            break;
    }
    if (!strpbrk (text, ".eE"))
        strcat (text, ".0");
    s_append_str (buffer, text);
}

static void s_append_object (s_buffer_t *buffer, const msgpack_object *object,
                             int depth);

//  JSON keys must be strings: a key of any other type is written as the
//  string of its own JSON.
static void
s_append_key (s_buffer_t *buffer, const msgpack_object *key, int depth)
{
    if (key->type == MSGPACK_OBJECT_STR)
        s_append_string (buffer, key->via.str.ptr, key->via.str.size);
    else if (key->type == MSGPACK_OBJECT_BIN)
        s_append_string (buffer, key->via.bin.ptr, key->via.bin.size);
    else {
        s_buffer_t inner = { NULL, 0, 0, false };
        s_append_object (&inner, key, depth);
        if (inner.is_failed)
            buffer->is_failed = true;
        else
            s_append_string (buffer, inner.data, inner.size);
        free (inner.data);
    }
}

static void
s_append_array (s_buffer_t *buffer, const msgpack_object_array *array,
                int depth)
{
    s_append (buffer, "[", 1);
    for (uint32_t index = 0; index < array->size; index++) {
        if (index)
            s_append (buffer, ",", 1);
        s_append_object (buffer, &array->ptr[index], depth + 1);
    }
    s_append (buffer, "]", 1);
}

static void
s_append_map (s_buffer_t *buffer, const msgpack_object_map *map, int depth)
{
    s_append (buffer, "{", 1);
    for (uint32_t index = 0; index < map->size; index++) {
        const msgpack_object_kv *pair = &map->ptr[index];
        if (index)
            s_append (buffer, ",", 1);
        s_append_key (buffer, &pair->key, depth + 1);
        s_append (buffer, ":", 1);
        s_append_object (buffer, &pair->val, depth + 1);
    }
    s_append (buffer, "}", 1);
}

static void
s_append_object (s_buffer_t *buffer, const msgpack_object *object, int depth)
{
    char number[32];
    if (depth > JSON_PRINT_MAX_DEPTH) {
        buffer->is_failed = true;
        return;
    }
    switch (object->type) {
        case MSGPACK_OBJECT_NIL:
            s_append_str (buffer, "null");
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            s_append_str (buffer, object->via.boolean ? "true" : "false");
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            snprintf (number, sizeof (number), "%" PRIu64, object->via.u64);
            s_append_str (buffer, number);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            snprintf (number, sizeof (number), "%" PRId64, object->via.i64);
            s_append_str (buffer, number);
            break;
        case MSGPACK_OBJECT_FLOAT32:
            s_append_float (buffer, object->via.f64, true);
            break;
        case MSGPACK_OBJECT_FLOAT64:
            s_append_float (buffer, object->via.f64, false);
            break;
        case MSGPACK_OBJECT_STR:
            s_append_string (buffer, object->via.str.ptr, object->via.str.size);
            break;
        case MSGPACK_OBJECT_BIN:
            s_append_string (buffer, object->via.bin.ptr, object->via.bin.size);
            break;
        case MSGPACK_OBJECT_EXT:
            s_append_string (buffer, object->via.ext.ptr, object->via.ext.size);
            break;
        case MSGPACK_OBJECT_ARRAY:
            s_append_array (buffer, &object->via.array, depth);
            break;
        case MSGPACK_OBJECT_MAP:
            s_append_map (buffer, &object->via.map, depth);
            break;
        default:
            s_append_str (buffer, "null");  //  a type newer than this code
    }
}

char *
json_print_object (const msgpack_object *object, size_t *length_p)
{
    if (!object)
        return NULL;
    s_buffer_t buffer = { NULL, 0, 0, false };
    s_append_object (&buffer, object, 0);
    //  An empty result cannot happen, but keep the contract: a string.
    if (!buffer.is_failed && !buffer.data)
        s_append (&buffer, "", 0);
    if (buffer.is_failed) {
        free (buffer.data);
        return NULL;
    }
    if (length_p)
        *length_p = buffer.size;
    return buffer.data;
}

int
json_print_unpack (const void *data, size_t size, msgpack_unpacked *unpacked)
{
    return cmq_msgpack_unpack (data, size, S_MAX_UNPACK_DEPTH, unpacked, NULL,
                               0);
}
