//  json_pack.c - JSON text to one msgpack object, for `cartmq call`

#include "json_pack.h"

#include <assert.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Digits of the largest magnitudes a msgpack integer holds.
#define S_UINT64_MAX_DIGITS "18446744073709551615"
#define S_INT64_MIN_DIGITS  "9223372036854775808"

//  True if the digits (no sign, no leading zeros beyond one) name a
//  magnitude above limit, compared as decimal strings.
static bool
s_digits_above (const char *digits, size_t count, const char *limit)
{
    size_t limit_count = strlen (limit);
    if (count != limit_count)
        return count > limit_count;
    return memcmp (digits, limit, count) > 0;
}

//  What json-c lets through that JSON does not allow or that it would
//  change: a scan of the text outside strings for single-quoted strings
//  (json-c takes them even in strict mode) and integer literals it would
//  clamp. NULL if none, else the reason.
static const char *
s_lenient_part (const char *text, size_t size)
{
    size_t index = 0;
    while (index < size) {
        char ch = text[index];
        if (ch == '"') {  //  skip a string, escapes included
            for (index++; index < size && text[index] != '"'; index++)
                if (text[index] == '\\')
                    index++;
            index++;
            continue;
        }
        if (ch == '\'')
            return "not JSON: a single-quoted string";
        if (ch != '-' && (ch < '0' || ch > '9')) {
            index++;
            continue;
        }
        bool is_negative = ch == '-';
        size_t start = index + (is_negative ? 1 : 0);
        size_t end = start;
        while (end < size && text[end] >= '0' && text[end] <= '9')
            end++;
        bool is_integer = end >= size || (text[end] != '.' &&
                                          text[end] != 'e' && text[end] != 'E');
        if (is_integer && s_digits_above (text + start, end - start,
                                          is_negative ? S_INT64_MIN_DIGITS
                                                      : S_UINT64_MAX_DIGITS))
            return "an integer outside the 64-bit range (-2^63 .. 2^64-1)";
        //  Skip the rest of the number (fraction, exponent)
        index = end;
        while (index < size && strchr ("0123456789.eE+-", text[index]))
            index++;
    }
    return NULL;
}

static int s_pack (msgpack_packer *packer, json_object *value, char *error,
                   size_t error_size);

static int
s_pack_object (msgpack_packer *packer, json_object *value, char *error,
               size_t error_size)
{
    msgpack_pack_map (packer, (size_t) json_object_object_length (value));
    json_object_object_foreach (value, key, member)
    {
        msgpack_pack_str_with_body (packer, key, strlen (key));
        if (s_pack (packer, member, error, error_size))
            return -1;
    }
    return 0;
}

static int
s_pack_array (msgpack_packer *packer, json_object *value, char *error,
              size_t error_size)
{
    size_t length = json_object_array_length (value);
    msgpack_pack_array (packer, length);
    for (size_t index = 0; index < length; index++)
        if (s_pack (packer, json_object_array_get_idx (value, index), error,
                    error_size))
            return -1;
    return 0;
}

static int
s_pack_number (msgpack_packer *packer, json_object *value, char *error,
               size_t error_size)
{
    if (json_object_get_type (value) == json_type_int) {
        int64_t signed_value = json_object_get_int64 (value);
        if (signed_value < 0)
            msgpack_pack_int64 (packer, signed_value);
        else
            msgpack_pack_uint64 (packer, json_object_get_uint64 (value));
        return 0;
    }
    double number = json_object_get_double (value);
    if (!isfinite (number)) {
        snprintf (error, error_size, "number too large for a double");
        return -1;
    }
    msgpack_pack_double (packer, number);
    return 0;
}

static int
s_pack (msgpack_packer *packer, json_object *value, char *error,
        size_t error_size)
{
    switch (json_object_get_type (value)) {
        case json_type_null:
            return msgpack_pack_nil (packer);
        case json_type_boolean:
            return json_object_get_boolean (value)
                     ? msgpack_pack_true (packer)
                     : msgpack_pack_false (packer);
        case json_type_int:
        case json_type_double:
            return s_pack_number (packer, value, error, error_size);
        case json_type_string:
            return msgpack_pack_str_with_body (
              packer, json_object_get_string (value),
              (size_t) json_object_get_string_len (value));
        case json_type_array:
            return s_pack_array (packer, value, error, error_size);
        case json_type_object:
            return s_pack_object (packer, value, error, error_size);
    }
    snprintf (error, error_size, "unsupported JSON value");
    return -1;
}

//  Parses the whole text as one JSON value; NULL with the reason.
static json_object *
s_parse (const char *text, size_t size, char *error, size_t error_size)
{
    json_tokener *tokener = json_tokener_new_ex (JSON_PACK_MAX_DEPTH);
    if (!tokener) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    json_tokener_set_flags (tokener,
                            JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    //  The parser needs to see where the text ends to finish a bare
    //  number, hence the terminating NUL passed as part of the input.
    char *copy = (char *) malloc (size + 1);
    json_object *value = NULL;
    if (copy) {
        memcpy (copy, text, size);
        copy[size] = '\0';
        value = json_tokener_parse_ex (tokener, copy, (int) size + 1);
    }
    enum json_tokener_error status = json_tokener_get_error (tokener);
    if (!copy)
        snprintf (error, error_size, "out of memory");
    else if (status != json_tokener_success || !value)
        snprintf (error, error_size, "not JSON: %s at byte %zu",
                  json_tokener_error_desc (status),
                  json_tokener_get_parse_end (tokener));
    else if (json_tokener_get_parse_end (tokener) < size) {
        snprintf (error, error_size, "not JSON: trailing bytes at byte %zu",
                  json_tokener_get_parse_end (tokener));
        json_object_put (value);
        value = NULL;
    }
    free (copy);
    json_tokener_free (tokener);
    return value;
}

int
json_pack_text (const char *text, size_t size, msgpack_sbuffer *buffer,
                char *error, size_t error_size)
{
    assert (text || size == 0);
    assert (buffer);
    if (size > INT32_MAX - 1) {
        snprintf (error, error_size, "JSON text too long");
        return -1;
    }
    if (memchr (text, '\0', size)) {
        snprintf (error, error_size, "not JSON: a NUL byte");
        return -1;
    }
    json_object *value = s_parse (text, size, error, error_size);
    if (!value)
        return -1;
    int rc = -1;
    const char *lenient = s_lenient_part (text, size);
    if (lenient)
        snprintf (error, error_size, "%s", lenient);
    else {
        msgpack_packer packer;
        msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
        rc = s_pack (&packer, value, error, error_size);
    }
    json_object_put (value);
    return rc;
}
