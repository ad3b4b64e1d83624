//  test_cart_codec.c - the cart service's msgpack codec (§4) and the typed
//  cart client calls
//
//  Request bodies are built with msgpack_packer from small field tables,
//  so each case reads as "the ADD body, with item.price replaced by -1".

#define _GNU_SOURCE  //  memmem
#include "cartmq/cart_client.h"
#include "cartmq/cart_codec.h"
#include "cartmq/msgpack_scan.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Field tables

typedef enum {
    V_END = 0,  //  ends a table
    V_STR,      //  s (NULL: len 'x' bytes), len (0 with s: strlen)
    V_BIN,
    V_INT,       //  i, packed in the smallest width
    V_UINT,      //  u, smallest width
    V_FIX_UINT,  //  u, always as uint64 (0xcf)
    V_FIX_INT,   //  i, always as int64 (0xd3)
    V_FLOAT64,
    V_FLOAT32,
    V_TRUE,
    V_FALSE,
    V_NIL,
    V_ARRAY,   //  [1]
    V_MAP,     //  {"id": "x"}
    V_FIELDS,  //  a map of sub
    V_LIST     //  an array of the values in sub
} kind_t;

typedef struct field_s {
    const char *key;
    kind_t kind;
    const char *s;
    size_t len;
    int64_t i;
    uint64_t u;
    double f;
    const struct field_s *sub;
} field_t;

#define STR(k, v)                                                              \
    {                                                                          \
        .key = k, .kind = V_STR, .s = v                                        \
    }
#define BYTES(k, v, n)                                                         \
    {                                                                          \
        .key = k, .kind = V_STR, .s = v, .len = n                              \
    }
#define XSTR(k, n)                                                             \
    {                                                                          \
        .key = k, .kind = V_STR, .len = n                                      \
    }
#define INT(k, v)                                                              \
    {                                                                          \
        .key = k, .kind = V_INT, .i = v                                        \
    }
#define UINT(k, v)                                                             \
    {                                                                          \
        .key = k, .kind = V_UINT, .u = v                                       \
    }
#define FIELDS(k, f)                                                           \
    {                                                                          \
        .key = k, .kind = V_FIELDS, .sub = f                                   \
    }
#define LIST(k, f)                                                             \
    {                                                                          \
        .key = k, .kind = V_LIST, .sub = f                                     \
    }
#define KIND(k, t)                                                             \
    {                                                                          \
        .key = k, .kind = t                                                    \
    }
#define END                                                                    \
    {                                                                          \
        .kind = V_END                                                          \
    }

//  Replaces the value at path ("user_id", "item.price", "items[].id") by
//  value, drops it if value is NULL, or appends it to the parent map if
//  the path is not there. path NULL: no change.
typedef struct {
    const char *path;
    const field_t *value;
} override_t;

static char s_xs[2048];  //  'x' bytes for sized strings

static void pack_value (msgpack_packer *pk, const field_t *value,
                        const char *path, const override_t *ov);

static void
make_path (char *path, size_t size, const char *prefix, const char *key)
{
    if (prefix[0])
        snprintf (path, size, "%s.%s", prefix, key);
    else
        snprintf (path, size, "%s", key);
}

static bool
override_is (const override_t *ov, const char *path)
{
    return ov && ov->path && strcmp (ov->path, path) == 0;
}

//  True if the override path would live directly in the map at prefix.
static bool
override_is_child_of (const override_t *ov, const char *prefix)
{
    if (!ov || !ov->path || !ov->value)
        return false;
    const char *dot = strrchr (ov->path, '.');
    size_t parent = dot ? (size_t) (dot - ov->path) : 0;
    return strlen (prefix) == parent && strncmp (ov->path, prefix, parent) == 0;
}

static const char *
override_leaf (const override_t *ov)
{
    const char *dot = strrchr (ov->path, '.');
    return dot ? dot + 1 : ov->path;
}

static void
pack_fields (msgpack_packer *pk, const field_t *fields, const char *prefix,
             const override_t *ov)
{
    char path[128];
    uint32_t count = 0;
    bool seen = false;
    for (const field_t *field = fields; field->kind != V_END; field++) {
        make_path (path, sizeof (path), prefix, field->key);
        if (override_is (ov, path)) {
            seen = true;
            if (!ov->value)
                continue;
        }
        count++;
    }
    bool append = !seen && override_is_child_of (ov, prefix);
    msgpack_pack_map (pk, count + (append ? 1 : 0));
    for (const field_t *field = fields; field->kind != V_END; field++) {
        make_path (path, sizeof (path), prefix, field->key);
        const field_t *value = field;
        if (override_is (ov, path)) {
            if (!ov->value)
                continue;
            value = ov->value;
        }
        msgpack_pack_str_with_body (pk, field->key, strlen (field->key));
        pack_value (pk, value, path, ov);
    }
    if (append) {
        const char *leaf = override_leaf (ov);
        msgpack_pack_str_with_body (pk, leaf, strlen (leaf));
        pack_value (pk, ov->value, ov->path, ov);
    }
}

static void
pack_value (msgpack_packer *pk, const field_t *value, const char *path,
            const override_t *ov)
{
    const char *bytes = value->s ? value->s : s_xs;
    size_t length =
      value->s && value->len == 0 ? strlen (value->s) : value->len;
    char list_path[128];
    switch (value->kind) {
        case V_STR:
            msgpack_pack_str_with_body (pk, bytes, length);
            break;
        case V_BIN:
            msgpack_pack_bin_with_body (pk, bytes, length);
            break;
        case V_INT:
            msgpack_pack_int64 (pk, value->i);
            break;
        case V_UINT:
            msgpack_pack_uint64 (pk, value->u);
            break;
        case V_FIX_UINT:
            msgpack_pack_fix_uint64 (pk, value->u);
            break;
        case V_FIX_INT:
            msgpack_pack_fix_int64 (pk, value->i);
            break;
        case V_FLOAT64:
            msgpack_pack_double (pk, value->f);
            break;
        case V_FLOAT32:
            msgpack_pack_float (pk, (float) value->f);
            break;
        case V_TRUE:
            msgpack_pack_true (pk);
            break;
        case V_FALSE:
            msgpack_pack_false (pk);
            break;
        case V_NIL:
            msgpack_pack_nil (pk);
            break;
        case V_ARRAY:
            msgpack_pack_array (pk, 1);
            msgpack_pack_int (pk, 1);
            break;
        case V_MAP:
            msgpack_pack_map (pk, 1);
            msgpack_pack_str_with_body (pk, "id", 2);
            msgpack_pack_str_with_body (pk, "x", 1);
            break;
        case V_FIELDS:
            pack_fields (pk, value->sub, path, ov);
            break;
        case V_LIST: {
            uint32_t count = 0;
            while (value->sub[count].kind != V_END)
                count++;
            msgpack_pack_array (pk, count);
            snprintf (list_path, sizeof (list_path), "%s[]", path);
            for (uint32_t index = 0; index < count; index++) {
                const field_t *element = &value->sub[index];
                if (override_is (ov, list_path) && ov->value)
                    element = ov->value;
                pack_value (pk, element, list_path, ov);
            }
            break;
        }
        case V_END:
            fail_msg ("V_END packed");
    }
}

//  The body for fields with one override; caller destroys the buffer.
static void
build_body (msgpack_sbuffer *buffer, const field_t *fields, const char *path,
            const field_t *value)
{
    override_t ov = { path, value };
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    pack_fields (&pk, fields, "", &ov);
}

//  --------------------------------------------------------------------------
//  The five requests, valid as they stand

static const field_t s_item[] = { STR ("id", "sku-1"), STR ("name", "Widget"),
                                  INT ("quantity", 2), INT ("price", 1999),
                                  END };
static const field_t s_get[] = { STR ("method", "GetCartItems"),
                                 STR ("user_id", "u1"), END };
static const field_t s_add[] = { STR ("method", "AddItemToCart"),
                                 STR ("user_id", "u1"), FIELDS ("item", s_item),
                                 STR ("request_id", "r1"), END };
static const field_t s_remove[] = { STR ("method", "RemoveItemFromCart"),
                                    STR ("user_id", "u1"),
                                    STR ("item_id", "sku-1"),
                                    STR ("request_id", "r1"), END };
static const field_t s_update[] = { STR ("method", "UpdateItemQuantity"),
                                    STR ("user_id", "u1"),
                                    STR ("item_id", "sku-1"),
                                    INT ("quantity", 3),
                                    STR ("request_id", "r1"),
                                    END };
static const field_t s_clear[] = { STR ("method", "ClearCart"),
                                   STR ("user_id", "u1"),
                                   STR ("request_id", "r1"), END };

typedef struct {
    const char *name;
    const field_t *fields;
    const char *required[8];  //  NULL-terminated paths
    const char *strings[8];   //  string paths, with their byte limit
    size_t limits[8];
    const char *integers[4];
} method_case_t;

static const method_case_t s_cases[] = {
    { "GetCartItems",
      s_get,
      { "method", "user_id" },
      { "user_id" },
      { 128 },
      { NULL } },
    { "AddItemToCart",
      s_add,
      { "method", "user_id", "item", "item.id", "item.name", "item.quantity",
        "item.price" },
      { "user_id", "item.id", "item.name", "request_id" },
      { 128, 128, 256, 64 },
      { "item.quantity", "item.price" } },
    { "RemoveItemFromCart",
      s_remove,
      { "method", "user_id", "item_id" },
      { "user_id", "item_id", "request_id" },
      { 128, 128, 64 },
      { NULL } },
    { "UpdateItemQuantity",
      s_update,
      { "method", "user_id", "item_id", "quantity" },
      { "user_id", "item_id", "request_id" },
      { 128, 128, 64 },
      { "quantity" } },
    { "ClearCart",
      s_clear,
      { "method", "user_id" },
      { "user_id", "request_id" },
      { 128, 64 },
      { NULL } },
};
#define CASE_COUNT (sizeof (s_cases) / sizeof (s_cases[0]))

//  Values of every msgpack type but str, and of every type but integer.
static const field_t s_not_strings[] = { INT ("", 7),
                                         INT ("", -7),
                                         UINT ("", UINT64_MAX),
                                         { .kind = V_FLOAT64, .f = 1.0 },
                                         { .kind = V_FLOAT32, .f = 1.0 },
                                         KIND ("", V_TRUE),
                                         KIND ("", V_FALSE),
                                         KIND ("", V_NIL),
                                         { .kind = V_BIN, .s = "u1" },
                                         KIND ("", V_ARRAY),
                                         KIND ("", V_MAP),
                                         END };
static const field_t s_not_integers[] = { STR ("", "5"),
                                          { .kind = V_FLOAT64, .f = 1.0 },
                                          { .kind = V_FLOAT64, .f = 5.0 },
                                          { .kind = V_FLOAT32, .f = 1.0 },
                                          KIND ("", V_TRUE),
                                          KIND ("", V_FALSE),
                                          KIND ("", V_NIL),
                                          { .kind = V_BIN, .s = "5" },
                                          KIND ("", V_ARRAY),
                                          KIND ("", V_MAP),
                                          END };

//  --------------------------------------------------------------------------
//  Decode helpers

static bool
request_is_zero (const cmq_cart_request_t *request)
{
    cmq_cart_request_t zero;
    memset (&zero, 0, sizeof (zero));
    return memcmp (request, &zero, sizeof (zero)) == 0;
}

static int
decode_bytes (const void *data, size_t size, cmq_cart_request_t *request,
              char *error)
{
    memset (request, 0xab, sizeof (*request));
    memset (error, 0xab, 256);
    int status = cmq_cart_request_decode (data, size, request, error, 256);
    assert_non_null (memchr (error, '\0', 256));
    assert_null (strchr (error, '\n'));
    if (status == CMQ_CART_BAD_REQUEST) {
        assert_true (request_is_zero (request));
        assert_true (strlen (error) > 0);
    } else
        assert_int_equal (status, CMQ_CART_OK);
    return status;
}

static int
decode_with (const field_t *fields, const char *path, const field_t *value,
             cmq_cart_request_t *request, char *error)
{
    msgpack_sbuffer buffer;
    build_body (&buffer, fields, path, value);
    int status = decode_bytes (buffer.data, buffer.size, request, error);
    msgpack_sbuffer_destroy (&buffer);
    return status;
}

static void
expect_rejected (const field_t *fields, const char *path, const field_t *value,
                 const char *reason)
{
    cmq_cart_request_t request;
    char error[256];
    int status = decode_with (fields, path, value, &request, error);
    if (status != CMQ_CART_BAD_REQUEST || !strstr (error, reason))
        fail_msg ("%s (path %s): status %d error '%s', expected 400 '%s'",
                  fields[0].s, path ? path : "-", status, error, reason);
}

static void
expect_accepted (const field_t *fields, const char *path, const field_t *value,
                 cmq_cart_request_t *request)
{
    char error[256];
    int status = decode_with (fields, path, value, request, error);
    if (status != CMQ_CART_OK)
        fail_msg ("%s (path %s): status %d error '%s', expected 200",
                  fields[0].s, path ? path : "-", status, error);
}

static void
expect_bytes_rejected (const void *data, size_t size, const char *reason)
{
    cmq_cart_request_t request;
    char error[256];
    int status = decode_bytes (data, size, &request, error);
    if (status != CMQ_CART_BAD_REQUEST || !strstr (error, reason))
        fail_msg ("status %d error '%s', expected 400 '%s'", status, error,
                  reason);
}

//  Starts a body with a packer the test can write raw bytes after.
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer pk;
} body_t;

static void
body_init (body_t *body)
{
    msgpack_sbuffer_init (&body->buffer);
    msgpack_packer_init (&body->pk, &body->buffer, msgpack_sbuffer_write);
}

static void
body_str (body_t *body, const char *string)
{
    msgpack_pack_str_with_body (&body->pk, string, strlen (string));
}

static void
body_raw (body_t *body, const void *data, size_t size)
{
    msgpack_sbuffer_write (&body->buffer, (const char *) data, size);
}

//  A GET map whose third key is "x", its value left for the caller.
static void
body_get_with_x (body_t *body)
{
    body_init (body);
    msgpack_pack_map (&body->pk, 3);
    body_str (body, "method");
    body_str (body, "GetCartItems");
    body_str (body, "user_id");
    body_str (body, "u1");
    body_str (body, "x");
}

//  --------------------------------------------------------------------------
//  The body as a whole

static void
empty_body_is_rejected (void **state)
{
    (void) state;
    expect_bytes_rejected ("", 0, "empty body");
    expect_bytes_rejected (NULL, 0, "empty body");
}

static void
reserved_byte_0xc1_is_not_msgpack (void **state)
{
    (void) state;
    expect_bytes_rejected ("\xc1", 1, "not msgpack");
    body_t body;
    body_get_with_x (&body);
    body_raw (&body, "\xc1", 1);
    expect_bytes_rejected (body.buffer.data, body.buffer.size, "not msgpack");
    msgpack_sbuffer_destroy (&body.buffer);
}

static void
text_that_is_not_msgpack_is_rejected (void **state)
{
    (void) state;
    const char *json = "{\"method\": \"GetCartItems\", \"user_id\": \"u1\"}";
    //  '{' is a positive fixint: one object, then trailing bytes.
    expect_bytes_rejected (json, strlen (json), "trailing");
}

static void
every_truncation_of_a_valid_request_is_rejected (void **state)
{
    (void) state;
    msgpack_sbuffer buffer;
    build_body (&buffer, s_add, NULL, NULL);
    for (size_t size = 1; size < buffer.size; size++) {
        //  A heap copy of exactly size bytes, so ASan sees any over-read.
        void *copy = malloc (size);
        memcpy (copy, buffer.data, size);
        expect_bytes_rejected (copy, size, "truncated");
        free (copy);
    }
    msgpack_sbuffer_destroy (&buffer);
}

static void
body_that_is_not_a_map_is_rejected (void **state)
{
    (void) state;
    expect_bytes_rejected ("\x91\x01", 2, "not a map but array");
    expect_bytes_rejected ("\xa2hi", 3, "not a map but string");
    expect_bytes_rejected ("\x05", 1, "not a map but integer");
    expect_bytes_rejected ("\xc0", 1, "not a map but nil");
    expect_bytes_rejected ("\xc3", 1, "not a map but bool");
    expect_bytes_rejected ("\xc4\x01x", 3, "not a map but bin");
    expect_bytes_rejected ("\xcb\0\0\0\0\0\0\0\0", 9, "not a map but float");
}

static void
trailing_bytes_after_the_map_are_rejected (void **state)
{
    (void) state;
    msgpack_sbuffer buffer;
    build_body (&buffer, s_get, NULL, NULL);
    msgpack_sbuffer_write (&buffer, "\x00", 1);
    expect_bytes_rejected (buffer.data, buffer.size, "1 trailing bytes");
    msgpack_sbuffer_destroy (&buffer);

    //  Two whole requests in one frame are not one request.
    build_body (&buffer, s_get, NULL, NULL);
    size_t single = buffer.size;
    msgpack_sbuffer_write (&buffer, buffer.data, single);
    expect_bytes_rejected (buffer.data, buffer.size, "trailing");
    msgpack_sbuffer_destroy (&buffer);
}

static void
deeply_nested_arrays_are_rejected_without_recursion (void **state)
{
    (void) state;
    size_t depth = 200000;
    char *deep = malloc (depth + 1);
    memset (deep, 0x91, depth);
    deep[depth] = 0x01;
    expect_bytes_rejected (deep, depth + 1, "nested deeper");

    body_t body;
    body_get_with_x (&body);
    body_raw (&body, deep, depth + 1);
    expect_bytes_rejected (body.buffer.data, body.buffer.size, "nested deeper");
    msgpack_sbuffer_destroy (&body.buffer);

    //  Deep maps too: {"a": {"a": ...}}
    body_get_with_x (&body);
    for (size_t level = 0; level < 1000; level++)
        body_raw (&body,
                  "\x81\xa1"
                  "a",
                  3);
    body_raw (&body, "\x01", 1);
    expect_bytes_rejected (body.buffer.data, body.buffer.size, "nested deeper");
    msgpack_sbuffer_destroy (&body.buffer);
    free (deep);
}

static void
moderate_nesting_in_an_unknown_key_is_accepted (void **state)
{
    (void) state;
    body_t body;
    body_get_with_x (&body);
    for (int level = 0; level < 12; level++)
        body_raw (&body, "\x91", 1);
    body_raw (&body, "\x01", 1);
    cmq_cart_request_t request;
    char error[256];
    assert_int_equal (
      decode_bytes (body.buffer.data, body.buffer.size, &request, error),
      CMQ_CART_OK);
    msgpack_sbuffer_destroy (&body.buffer);
}

static void
declared_lengths_past_the_end_are_rejected_before_allocating (void **state)
{
    (void) state;
    static const struct {
        const char *bytes;
        size_t size;
        const char *reason;
    } lies[] = {
        //  Containers fail on their header, before any element is read.
        { "\xdd\xff\xff\xff\xff", 5, "4294967295 elements declared" },
        { "\xdd\xff\xff\xff\xff\x01\x01", 7, "elements declared" },
        { "\xdf\xff\xff\xff\xff", 5, "8589934590 elements declared" },
        { "\xde\xff\xff\xa1x\x01", 6, "131070 elements declared" },
        { "\xdc\x00\x03\x01\x01", 5, "3 elements declared" },
        { "\x9f", 1, "15 elements declared" },
        { "\xdb\xff\xff\xff\xff", 5, "4294967295 bytes declared" },
        { "\xc6\xff\xff\xff\xffxx", 7, "4294967295 bytes declared" },
        { "\xc9\xff\xff\xff\xff\x01", 6, "4294967296 bytes declared" },
        { "\xd9\x05xx", 4, "5 bytes declared" },
        { "\xd8\x01xx", 4, "17 bytes declared" },
        { "\xcf\x01\x02", 3, "8 bytes declared" },
        { "\xdb\x00\x01", 3, "truncated msgpack at byte" },
    };
    for (size_t index = 0; index < sizeof (lies) / sizeof (lies[0]); index++) {
        expect_bytes_rejected (lies[index].bytes, lies[index].size,
                               lies[index].reason);
        body_t body;
        body_get_with_x (&body);
        body_raw (&body, lies[index].bytes, lies[index].size);
        expect_bytes_rejected (body.buffer.data, body.buffer.size,
                               lies[index].reason);
        msgpack_sbuffer_destroy (&body.buffer);
    }
}

static void
every_msgpack_type_in_an_unknown_key_is_skipped (void **state)
{
    (void) state;
    static const struct {
        const char *bytes;
        size_t size;
    } values[] = {
        { "\xc0", 1 },
        { "\xc2", 1 },
        { "\xc3", 1 },
        { "\x7f", 1 },
        { "\xe0", 1 },
        { "\xcc\x01", 2 },
        { "\xcd\x01\x02", 3 },
        { "\xce\x01\x02\x03\x04", 5 },
        { "\xcf\0\0\0\0\0\0\0\x01", 9 },
        { "\xd0\x80", 2 },
        { "\xd1\x80\x00", 3 },
        { "\xd2\0\0\0\0", 5 },
        { "\xd3\0\0\0\0\0\0\0\0", 9 },
        { "\xca\0\0\0\0", 5 },
        { "\xcb\0\0\0\0\0\0\0\0", 9 },
        { "\xa3"
          "abc",
          4 },
        { "\xd9\x01z", 3 },
        { "\xda\x00\x01z", 4 },
        { "\xdb\x00\x00\x00\x01z", 6 },
        { "\xc4\x01z", 3 },
        { "\xc5\x00\x01z", 4 },
        { "\xc6\x00\x00\x00\x01z", 6 },
        { "\xd4\x01z", 3 },
        { "\xd5\x01zz", 4 },
        { "\xd6\x01zzzz", 6 },
        { "\xd7\x01zzzzzzzz", 10 },
        { "\xd8\x01zzzzzzzzzzzzzzzz", 18 },
        { "\xc7\x01\x05z", 4 },
        { "\xc8\x00\x01\x05z", 5 },
        { "\xc9\x00\x00\x00\x01\x05z", 7 },
        { "\x90", 1 },
        { "\x80", 1 },
        { "\xdc\x00\x01\xc0", 4 },
        { "\xdd\x00\x00\x00\x01\xc0", 6 },
        { "\xde\x00\x01\x01\x02", 5 },
        { "\xdf\x00\x00\x00\x01\xc0\xc0", 7 },
        { "\x81\x01\x02", 3 },  //  non-str keys below the top are fine
    };
    for (size_t index = 0; index < sizeof (values) / sizeof (values[0]);
         index++) {
        body_t body;
        body_get_with_x (&body);
        body_raw (&body, values[index].bytes, values[index].size);
        cmq_cart_request_t request;
        char error[256];
        int status =
          decode_bytes (body.buffer.data, body.buffer.size, &request, error);
        if (status != CMQ_CART_OK)
            fail_msg ("value %zu: status %d '%s'", index, status, error);
        msgpack_sbuffer_destroy (&body.buffer);
    }
}

static void
body_over_one_mebibyte_is_rejected_and_exactly_one_is_accepted (void **state)
{
    (void) state;
    static const size_t limit = 1024 * 1024;
    field_t pad = { .kind = V_STR, .len = 1000000 };
    pad.s = malloc (limit);
    memset ((char *) pad.s, 'p', limit);
    msgpack_sbuffer buffer;
    build_body (&buffer, s_get, "pad", &pad);
    pad.len += limit - buffer.size;
    msgpack_sbuffer_destroy (&buffer);

    cmq_cart_request_t request;
    expect_accepted (s_get, "pad", &pad, &request);
    pad.len++;
    expect_rejected (s_get, "pad", &pad, "over the 1048576 byte limit");
    free ((char *) pad.s);
}

static void
many_unknown_keys_are_accepted_and_one_repeat_among_them_is_not (void **state)
{
    (void) state;
    static const uint32_t count = 50000;
    for (int with_repeat = 0; with_repeat < 2; with_repeat++) {
        body_t body;
        body_init (&body);
        msgpack_pack_map (&body.pk, count + 2);
        body_str (&body, "method");
        body_str (&body, "GetCartItems");
        body_str (&body, "user_id");
        body_str (&body, "u1");
        char key[32];
        for (uint32_t index = 0; index < count; index++) {
            uint32_t number = with_repeat && index == count - 1 ? 777 : index;
            snprintf (key, sizeof (key), "k%u", number);
            body_str (&body, key);
            msgpack_pack_nil (&body.pk);
        }
        cmq_cart_request_t request;
        char error[256];
        int status =
          decode_bytes (body.buffer.data, body.buffer.size, &request, error);
        if (with_repeat) {
            assert_int_equal (status, CMQ_CART_BAD_REQUEST);
            assert_string_equal (error, "body: duplicate key: k777");
        } else
            assert_int_equal (status, CMQ_CART_OK);
        msgpack_sbuffer_destroy (&body.buffer);
    }
}

static void
random_bytes_and_mutated_requests_never_crash_the_decoder (void **state)
{
    (void) state;
    uint32_t seed = 12345;
    cmq_cart_request_t request;
    char error[256];
    unsigned char bytes[96];
    for (int round = 0; round < 20000; round++) {
        size_t size = 0;
        for (; size < (size_t) (round % 96); size++) {
            seed = seed * 1103515245 + 12345;
            bytes[size] = (unsigned char) (seed >> 16);
        }
        decode_bytes (bytes, size, &request, error);
    }
    const method_case_t *cases = s_cases;
    int accepted = 0;
    for (int round = 0; round < 30000; round++) {
        msgpack_sbuffer buffer;
        build_body (&buffer, cases[round % CASE_COUNT].fields, NULL, NULL);
        for (int flips = 0; flips < 1 + round % 3; flips++) {
            seed = seed * 1103515245 + 12345;
            size_t at = (seed >> 8) % buffer.size;
            buffer.data[at] = (char) (seed >> 20);
        }
        seed = seed * 1103515245 + 12345;
        size_t size = round % 5 ? buffer.size : (seed >> 8) % buffer.size;
        void *copy = malloc (size ? size : 1);
        memcpy (copy, buffer.data, size);
        if (decode_bytes (copy, size, &request, error) == CMQ_CART_OK)
            accepted++;
        free (copy);
        msgpack_sbuffer_destroy (&buffer);
    }
    //  Flipping a value byte often leaves a valid request; the point is
    //  that both outcomes happen and neither crashes.
    assert_true (accepted > 0);
    assert_true (accepted < 30000);
}

//  --------------------------------------------------------------------------
//  Keys and method

static void
non_string_keys_are_rejected (void **state)
{
    (void) state;
    body_t body;
    body_init (&body);
    msgpack_pack_map (&body.pk, 3);
    body_str (&body, "method");
    body_str (&body, "GetCartItems");
    body_str (&body, "user_id");
    body_str (&body, "u1");
    msgpack_pack_int (&body.pk, 1);
    msgpack_pack_int (&body.pk, 1);
    expect_bytes_rejected (body.buffer.data, body.buffer.size,
                           "body: keys must be strings, got integer");
    msgpack_sbuffer_destroy (&body.buffer);

    //  A bin key spelling "user_id" is not the user_id.
    body_init (&body);
    msgpack_pack_map (&body.pk, 2);
    body_str (&body, "method");
    body_str (&body, "GetCartItems");
    msgpack_pack_bin_with_body (&body.pk, "user_id", 7);
    body_str (&body, "u1");
    expect_bytes_rejected (body.buffer.data, body.buffer.size,
                           "body: keys must be strings, got bin");
    msgpack_sbuffer_destroy (&body.buffer);

    body_init (&body);
    msgpack_pack_map (&body.pk, 1);
    msgpack_pack_nil (&body.pk);
    msgpack_pack_nil (&body.pk);
    expect_bytes_rejected (body.buffer.data, body.buffer.size,
                           "keys must be strings, got nil");
    msgpack_sbuffer_destroy (&body.buffer);

    //  Inside item as well.
    body_init (&body);
    msgpack_pack_map (&body.pk, 3);
    body_str (&body, "method");
    body_str (&body, "AddItemToCart");
    body_str (&body, "user_id");
    body_str (&body, "u1");
    body_str (&body, "item");
    msgpack_pack_map (&body.pk, 5);
    body_str (&body, "id");
    body_str (&body, "a");
    body_str (&body, "name");
    body_str (&body, "A");
    body_str (&body, "quantity");
    msgpack_pack_int (&body.pk, 1);
    body_str (&body, "price");
    msgpack_pack_int (&body.pk, 1);
    msgpack_pack_true (&body.pk);
    msgpack_pack_int (&body.pk, 1);
    expect_bytes_rejected (body.buffer.data, body.buffer.size,
                           "item: keys must be strings, got bool");
    msgpack_sbuffer_destroy (&body.buffer);
}

static void
duplicate_keys_are_rejected (void **state)
{
    (void) state;
    //  The same key twice, with the same or another value.
    static const field_t twice_same[] = { STR ("method", "GetCartItems"),
                                          STR ("user_id", "u1"),
                                          STR ("user_id", "u1"), END };
    static const field_t twice_other[] = { STR ("user_id", "u2"),
                                           STR ("method", "GetCartItems"),
                                           STR ("user_id", "u1"), END };
    static const field_t method_twice[] = { STR ("method", "GetCartItems"),
                                            STR ("user_id", "u1"),
                                            STR ("method", "ClearCart"), END };
    static const field_t unknown_twice[] = { STR ("method", "GetCartItems"),
                                             STR ("user_id", "u1"),
                                             INT ("zz", 1), INT ("zz", 1),
                                             END };
    static const field_t item_twice[] = {
        STR ("id", "a"),  STR ("name", "A"),   INT ("quantity", 1),
        INT ("price", 1), INT ("quantity", 2), END
    };
    static const field_t add_item_twice[] = { STR ("method", "AddItemToCart"),
                                              STR ("user_id", "u1"),
                                              FIELDS ("item", item_twice),
                                              END };
    expect_rejected (twice_same, NULL, NULL, "body: duplicate key: user_id");
    expect_rejected (twice_other, NULL, NULL, "body: duplicate key: user_id");
    expect_rejected (method_twice, NULL, NULL, "body: duplicate key: method");
    expect_rejected (unknown_twice, NULL, NULL, "body: duplicate key: zz");
    expect_rejected (add_item_twice, NULL, NULL,
                     "item: duplicate key: quantity");
    //  Keys that differ only past a NUL are different keys; the same
    //  bytes with a NUL inside are the same key.
    for (int same = 0; same < 2; same++) {
        body_t body;
        body_init (&body);
        msgpack_pack_map (&body.pk, 4);
        body_str (&body, "method");
        body_str (&body, "GetCartItems");
        body_str (&body, "user_id");
        body_str (&body, "u1");
        msgpack_pack_str_with_body (&body.pk, "k\0a", 3);
        msgpack_pack_nil (&body.pk);
        msgpack_pack_str_with_body (&body.pk, same ? "k\0a" : "k\0b", 3);
        msgpack_pack_nil (&body.pk);
        cmq_cart_request_t request;
        char error[256];
        int status =
          decode_bytes (body.buffer.data, body.buffer.size, &request, error);
        assert_int_equal (status, same ? CMQ_CART_BAD_REQUEST : CMQ_CART_OK);
        if (same)
            assert_string_equal (error, "body: duplicate key: k?a");
        msgpack_sbuffer_destroy (&body.buffer);
    }
}

static void
unknown_keys_are_ignored_at_the_top_and_in_item (void **state)
{
    (void) state;
    static const field_t extra_nested[] = { INT ("a", 1), KIND ("b", V_NIL),
                                            END };
    field_t extra = FIELDS ("", extra_nested);
    cmq_cart_request_t request;
    for (size_t index = 0; index < CASE_COUNT; index++)
        expect_accepted (s_cases[index].fields, "future_field", &extra,
                         &request);
    field_t flag = KIND ("", V_TRUE);
    expect_accepted (s_add, "item.gift_wrap", &flag, &request);
    assert_string_equal (request.item.id.data, "sku-1");
    //  A request that holds the fields of another method as well is still
    //  judged by its own method only.
    field_t junk = KIND ("", V_NIL);
    expect_accepted (s_get, "item", &junk, &request);
    expect_accepted (s_clear, "item_id", &junk, &request);
    expect_accepted (s_remove, "quantity", &junk, &request);
}

static void
missing_or_mistyped_method_is_rejected (void **state)
{
    (void) state;
    for (size_t index = 0; index < CASE_COUNT; index++)
        expect_rejected (s_cases[index].fields, "method", NULL,
                         "missing field: method");
    for (const field_t *value = s_not_strings; value->kind != V_END; value++)
        expect_rejected (s_add, "method", value, "method: must be a string");
    field_t empty = STR ("", "");
    expect_rejected (s_get, "method", &empty, "method: must not be empty");
}

static void
unknown_method_is_rejected_naming_it_on_one_line (void **state)
{
    (void) state;
    field_t foo = STR ("", "Foo");
    expect_rejected (s_get, "method", &foo, "unknown method: Foo");
    field_t lower = STR ("", "getcartitems");
    expect_rejected (s_get, "method", &lower, "unknown method: getcartitems");
    field_t prefix = STR ("", "GetCartItem");
    expect_rejected (s_get, "method", &prefix, "unknown method: GetCartItem");
    field_t longer = BYTES ("", "GetCartItems\0", 13);
    expect_rejected (s_get, "method", &longer, "unknown method: GetCartItems?");
    field_t control = STR ("", "Bad\nName\x01\xff");
    expect_rejected (s_get, "method", &control, "unknown method: Bad?Name??");
    field_t huge = XSTR ("", 1000);
    expect_rejected (s_get, "method", &huge, "unknown method: xxxx");
    cmq_cart_request_t request;
    char error[256];
    decode_with (s_get, "method", &huge, &request, error);
    assert_true (strlen (error) < 100);
    assert_non_null (strstr (error, "..."));
}

//  --------------------------------------------------------------------------
//  Fields

static void
each_missing_required_field_is_rejected_for_each_method (void **state)
{
    (void) state;
    for (size_t index = 0; index < CASE_COUNT; index++) {
        const method_case_t *test = &s_cases[index];
        for (const char *const *path = test->required; *path; path++) {
            char reason[64];
            snprintf (reason, sizeof (reason), "missing field: %s", *path);
            expect_rejected (test->fields, *path, NULL, reason);
        }
    }
}

static void
request_id_is_optional_for_every_mutation (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    for (size_t index = 1; index < CASE_COUNT; index++) {
        expect_accepted (s_cases[index].fields, "request_id", NULL, &request);
        assert_false (request.has_request_id);
        assert_int_equal (request.request_id.size, 0);
        expect_accepted (s_cases[index].fields, NULL, NULL, &request);
        assert_true (request.has_request_id);
        assert_string_equal (request.request_id.data, "r1");
        assert_int_equal (request.request_id.size, 2);
    }
}

static void
each_string_field_rejects_every_other_type (void **state)
{
    (void) state;
    for (size_t index = 0; index < CASE_COUNT; index++) {
        const method_case_t *test = &s_cases[index];
        for (const char *const *path = test->strings; *path; path++) {
            char reason[64];
            snprintf (reason, sizeof (reason), "%s: must be a string, got",
                      *path);
            for (const field_t *value = s_not_strings; value->kind != V_END;
                 value++)
                expect_rejected (test->fields, *path, value, reason);
        }
    }
}

static void
each_integer_field_rejects_every_other_type_even_whole_floats (void **state)
{
    (void) state;
    for (size_t index = 0; index < CASE_COUNT; index++) {
        const method_case_t *test = &s_cases[index];
        for (const char *const *path = test->integers; *path; path++) {
            char reason[64];
            snprintf (reason, sizeof (reason), "%s: must be an integer, got",
                      *path);
            for (const field_t *value = s_not_integers; value->kind != V_END;
                 value++)
                expect_rejected (test->fields, *path, value, reason);
        }
    }
    field_t one = { .kind = V_FLOAT64, .f = 1.0 };
    expect_rejected (s_add, "item.quantity", &one,
                     "item.quantity: must be an integer, got float");
    field_t yes = KIND ("", V_TRUE);
    expect_rejected (s_update, "quantity", &yes,
                     "quantity: must be an integer, got bool");
}

static void
item_must_be_a_map (void **state)
{
    (void) state;
    for (const field_t *value = s_not_strings; value->kind != V_END; value++)
        if (value->kind != V_MAP)
            expect_rejected (s_add, "item", value, "item: must be a map, got");
    field_t text = STR ("", "sku-1");
    expect_rejected (s_add, "item", &text, "item: must be a map, got string");
    static const field_t empty_item[] = { END };
    field_t empty = FIELDS ("", empty_item);
    expect_rejected (s_add, "item", &empty, "missing field: item.id");
}

static void
get_ignores_request_id_whatever_its_type (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    for (const field_t *value = s_not_strings; value->kind != V_END; value++) {
        expect_accepted (s_get, "request_id", value, &request);
        assert_false (request.has_request_id);
    }
    field_t fine = STR ("", "r1");
    expect_accepted (s_get, "request_id", &fine, &request);
    assert_false (request.has_request_id);
}

static void
empty_strings_are_rejected_in_every_string_field (void **state)
{
    (void) state;
    field_t empty = STR ("", "");
    for (size_t index = 0; index < CASE_COUNT; index++) {
        const method_case_t *test = &s_cases[index];
        for (const char *const *path = test->strings; *path; path++) {
            char reason[64];
            snprintf (reason, sizeof (reason), "%s: must not be empty", *path);
            expect_rejected (test->fields, *path, &empty, reason);
        }
    }
}

static void
string_limits_accept_exactly_the_limit_and_reject_one_byte_more (void **state)
{
    (void) state;
    for (size_t index = 0; index < CASE_COUNT; index++) {
        const method_case_t *test = &s_cases[index];
        for (size_t field = 0; test->strings[field]; field++) {
            const char *path = test->strings[field];
            size_t limit = test->limits[field];
            field_t at = XSTR ("", limit);
            cmq_cart_request_t request;
            expect_accepted (test->fields, path, &at, &request);
            field_t over = XSTR ("", limit + 1);
            char reason[64];
            snprintf (reason, sizeof (reason), "%s: longer than %zu bytes",
                      path, limit);
            expect_rejected (test->fields, path, &over, reason);
            field_t far = XSTR ("", 2000);
            expect_rejected (test->fields, path, &far, reason);
        }
    }
}

static void
strings_at_the_limit_are_copied_whole_and_nul_terminated (void **state)
{
    (void) state;
    field_t name = XSTR ("", 256);
    cmq_cart_request_t request;
    expect_accepted (s_add, "item.name", &name, &request);
    assert_int_equal (request.item.name.size, 256);
    assert_int_equal (request.item.name.data[256], '\0');
    assert_memory_equal (request.item.name.data, s_xs, 256);
    field_t id = XSTR ("", 128);
    expect_accepted (s_remove, "item_id", &id, &request);
    assert_int_equal (request.item.id.size, 128);
    assert_int_equal (strlen (request.item.id.data), 128);
    field_t rid = XSTR ("", 64);
    expect_accepted (s_clear, "request_id", &rid, &request);
    assert_int_equal (request.request_id.size, 64);
    assert_int_equal (strlen (request.request_id.data), 64);
}

static void
strings_keep_nul_and_high_bytes_with_their_size (void **state)
{
    (void) state;
    //  U+0000 and U+00FF are valid UTF-8; a raw 0xff byte is not (below).
    field_t user = BYTES ("", "a\0b\xc3\xbf\x01", 6);
    cmq_cart_request_t request;
    expect_accepted (s_get, "user_id", &user, &request);
    assert_int_equal (request.user_id.size, 6);
    assert_memory_equal (request.user_id.data, "a\0b\xc3\xbf\x01", 7);
    field_t name = STR ("", "caf\xc3\xa9 \xe2\x98\x95");
    expect_accepted (s_add, "item.name", &name, &request);
    assert_string_equal (request.item.name.data, "caf\xc3\xa9 \xe2\x98\x95");
}

//  The classic edge cases of UTF-8 decoders (Markus Kuhn's stress test):
//  each valid form at its boundaries, and each way a sequence goes wrong.
typedef struct {
    const char *bytes;
    size_t size;
    size_t bad_offset;  //  SIZE_MAX: valid
} utf8_case_t;

#define VALID(text)                                                            \
    {                                                                          \
        text, sizeof (text) - 1, SIZE_MAX                                      \
    }
#define BAD(text, at)                                                          \
    {                                                                          \
        text, sizeof (text) - 1, at                                            \
    }

static const utf8_case_t s_utf8_cases[] = {
    VALID (""),
    VALID ("plain ascii ~\x7f"),
    VALID ("\0"),                //  U+0000 is a character
    VALID ("\xc2\x80"),          //  U+0080, first of 2 bytes
    VALID ("\xdf\xbf"),          //  U+07FF, last of 2 bytes
    VALID ("\xe0\xa0\x80"),      //  U+0800, first of 3 bytes
    VALID ("\xed\x9f\xbf"),      //  U+D7FF, just below surrogates
    VALID ("\xee\x80\x80"),      //  U+E000, just above them
    VALID ("\xef\xbf\xbd"),      //  U+FFFD
    VALID ("\xef\xbf\xbf"),      //  U+FFFF, last of 3 bytes
    VALID ("\xf0\x90\x80\x80"),  //  U+10000, first of 4 bytes
    VALID ("\xf4\x8f\xbf\xbf"),  //  U+10FFFF, the last code point
    VALID ("caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80"),
    BAD ("\xff\xfe", 0),  //  never in UTF-8
    BAD ("ab\xfe", 2),
    BAD ("\x80", 0),  //  lone continuation bytes
    BAD ("a\xbf", 1),
    BAD ("\xc0\xaf", 0),  //  overlong '/' in 2, 3 and 4 bytes
    BAD ("\xe0\x80\xaf", 0),
    BAD ("\xf0\x80\x80\xaf", 0),
    BAD ("\xc1\xbf", 0),                  //  overlong U+007F
    BAD ("\xe0\x9f\xbf", 0),              //  overlong U+07FF
    BAD ("\xf0\x8f\xbf\xbf", 0),          //  overlong U+FFFF
    BAD ("\xc0\x80", 0),                  //  overlong NUL ("modified UTF-8")
    BAD ("\xed\xa0\x80", 0),              //  U+D800, first surrogate
    BAD ("\xed\xbf\xbf", 0),              //  U+DFFF, last surrogate
    BAD ("\xed\xa0\xbd\xed\xb8\x80", 0),  //  a CESU-8 surrogate pair
    BAD ("\xf4\x90\x80\x80", 0),          //  U+110000, past the last
    BAD ("\xf5\x80\x80\x80", 0),          //  leads past F4
    BAD ("\xf8\x88\x80\x80\x80", 0),      //  old 5- and 6-byte forms
    BAD ("\xfc\x84\x80\x80\x80\x80", 0),
    BAD ("x\xc3", 1),  //  cut short by the end
    BAD ("x\xe2\x82", 1),
    BAD ("x\xf0\x9f\x98", 1),
    BAD ("\xc3x", 0),  //  cut short by an ASCII byte
    BAD ("\xe2\x82x", 0),
    BAD ("ok \xc3\xa9 then \xe2\x28\xa1", 11),
};

static void
utf8_check_accepts_every_valid_form_and_rejects_the_classic_edge_cases (
  void **state)
{
    (void) state;
    for (size_t index = 0;
         index < sizeof (s_utf8_cases) / sizeof (s_utf8_cases[0]); index++) {
        const utf8_case_t *test = &s_utf8_cases[index];
        size_t offset = 12345;
        bool is_valid =
          cmq_cart_utf8_is_valid (test->bytes, test->size, &offset);
        if (is_valid != (test->bad_offset == SIZE_MAX))
            fail_msg ("case %zu: valid %d, expected %d", index, is_valid,
                      test->bad_offset == SIZE_MAX);
        if (!is_valid && offset != test->bad_offset)
            fail_msg ("case %zu: bad at %zu, expected %zu", index, offset,
                      test->bad_offset);
        if (is_valid)
            assert_int_equal (offset, 12345);  //  left alone
    }
    assert_true (cmq_cart_utf8_is_valid (NULL, 0, NULL));
    assert_false (cmq_cart_utf8_is_valid ("\xff", 1, NULL));
    //  One sequence at a time, as json_print walks a string.
    assert_int_equal (cmq_cart_utf8_sequence ("a", 1), 1);
    assert_int_equal (cmq_cart_utf8_sequence ("\xc3\xa9", 2), 2);
    assert_int_equal (cmq_cart_utf8_sequence ("\xe2\x82\xac", 3), 3);
    assert_int_equal (cmq_cart_utf8_sequence ("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal (cmq_cart_utf8_sequence ("\xf0\x9f\x98\x80", 3), 0);
    assert_int_equal (cmq_cart_utf8_sequence ("\xed\xa0\x80", 3), 0);
}

static void
every_code_point_round_trips_and_every_surrogate_is_refused (void **state)
{
    (void) state;
    for (uint32_t code = 0; code <= 0x10FFFF; code++) {
        char bytes[4];
        size_t size;
        if (code < 0x80) {
            bytes[0] = (char) code;
            size = 1;
        } else if (code < 0x800) {
            bytes[0] = (char) (0xC0 | (code >> 6));
            bytes[1] = (char) (0x80 | (code & 0x3F));
            size = 2;
        } else if (code < 0x10000) {
            bytes[0] = (char) (0xE0 | (code >> 12));
            bytes[1] = (char) (0x80 | ((code >> 6) & 0x3F));
            bytes[2] = (char) (0x80 | (code & 0x3F));
            size = 3;
        } else {
            bytes[0] = (char) (0xF0 | (code >> 18));
            bytes[1] = (char) (0x80 | ((code >> 12) & 0x3F));
            bytes[2] = (char) (0x80 | ((code >> 6) & 0x3F));
            bytes[3] = (char) (0x80 | (code & 0x3F));
            size = 4;
        }
        bool is_surrogate = code >= 0xD800 && code <= 0xDFFF;
        if (cmq_cart_utf8_is_valid (bytes, size, NULL) == is_surrogate)
            fail_msg ("U+%04X: wrong verdict", (unsigned) code);
        //  The same code point one byte longer (overlong) never passes.
        if (size < 4 && code > 0) {
            char longer[4];
            uint32_t shifted = code;
            size_t longer_size = size + 1;
            for (size_t at = longer_size - 1; at > 0; at--) {
                longer[at] = (char) (0x80 | (shifted & 0x3F));
                shifted >>= 6;
            }
            static const unsigned char leads[] = { 0, 0, 0xC0, 0xE0, 0xF0 };
            longer[0] = (char) (leads[longer_size] | shifted);
            assert_false (cmq_cart_utf8_is_valid (longer, longer_size, NULL));
        }
    }
}

static void
each_string_field_rejects_a_str_that_is_not_utf8 (void **state)
{
    (void) state;
    static const field_t bad[] = {
        BYTES ("", "\xff\xfe", 2),         BYTES ("", "sku\x80", 4),
        BYTES ("", "\xc0\xaf", 2),         BYTES ("", "\xed\xa0\x80", 3),
        BYTES ("", "\xf4\x90\x80\x80", 4), BYTES ("", "ok\xe2\x82", 4),
    };
    for (size_t index = 0; index < CASE_COUNT; index++) {
        const method_case_t *test = &s_cases[index];
        for (const char *const *path = test->strings; *path; path++) {
            char reason[64];
            snprintf (reason, sizeof (reason),
                      "%s: must be a UTF-8 string, got invalid UTF-8", *path);
            for (size_t value = 0; value < sizeof (bad) / sizeof (bad[0]);
                 value++)
                expect_rejected (test->fields, *path, &bad[value], reason);
        }
    }
    field_t name = BYTES ("", "Pen \xff", 5);
    expect_rejected (s_add, "item.name", &name,
                     "item.name: must be a UTF-8 string, got invalid UTF-8 "
                     "(byte 0xff at offset 4)");
    //  A method is matched against ASCII names: bytes that are not UTF-8
    //  make it unknown, named readably.
    field_t method = BYTES ("", "Get\xff", 4);
    expect_rejected (s_get, "method", &method, "unknown method: Get?");
}

static void
reply_strings_that_are_not_utf8_are_refused (void **state)
{
    (void) state;
    static const field_t bad_item[] = { BYTES ("id", "\xff\xfe", 2),
                                        STR ("name", "n"), INT ("quantity", 1),
                                        INT ("price", 1), END };
    static const field_t items[] = { FIELDS ("", bad_item), END };
    static const field_t get_reply[] = { INT ("status", 200),
                                         LIST ("items", items),
                                         INT ("total", 1), END };
    cmq_cart_reply_t reply;
    msgpack_sbuffer buffer;
    build_body (&buffer, get_reply, NULL, NULL);
    assert_int_equal (
      cmq_cart_reply_decode (buffer.data, buffer.size, CMQ_CART_GET, &reply),
      -1);
    assert_non_null (strstr (reply.error, "items[].id: must be a UTF-8"));
    assert_null (reply.items);
    msgpack_sbuffer_destroy (&buffer);
    //  An error text is kept readable: what is not UTF-8 becomes '?'.
    static const field_t bad_error[] = {
        INT ("status", 404), BYTES ("error", "gone \xff\xc3\xa9\xe2\x82", 10),
        END
    };
    build_body (&buffer, bad_error, NULL, NULL);
    assert_int_equal (
      cmq_cart_reply_decode (buffer.data, buffer.size, CMQ_CART_REMOVE, &reply),
      0);
    assert_string_equal (reply.error, "gone ?\xc3\xa9??");
    msgpack_sbuffer_destroy (&buffer);
}

static void
add_quantity_must_be_1_to_1000000 (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    field_t value = INT ("", 1);
    expect_accepted (s_add, "item.quantity", &value, &request);
    assert_int_equal (request.item.quantity, 1);
    value.i = 1000000;
    expect_accepted (s_add, "item.quantity", &value, &request);
    assert_int_equal (request.item.quantity, 1000000);
    value.i = 0;
    expect_rejected (s_add, "item.quantity", &value,
                     "item.quantity: 0 is outside 1..1000000");
    value.i = 1000001;
    expect_rejected (s_add, "item.quantity", &value,
                     "item.quantity: 1000001 is outside 1..1000000");
    value.i = -1;
    expect_rejected (s_add, "item.quantity", &value,
                     "item.quantity: -1 is outside 1..1000000");
}

static void
update_quantity_must_be_0_to_1000000 (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    field_t value = INT ("", 0);
    expect_accepted (s_update, "quantity", &value, &request);
    assert_int_equal (request.item.quantity, 0);
    value.i = 1;
    expect_accepted (s_update, "quantity", &value, &request);
    assert_int_equal (request.item.quantity, 1);
    value.i = 1000000;
    expect_accepted (s_update, "quantity", &value, &request);
    assert_int_equal (request.item.quantity, 1000000);
    value.i = 1000001;
    expect_rejected (s_update, "quantity", &value,
                     "quantity: 1000001 is outside 0..1000000");
    value.i = -1;
    expect_rejected (s_update, "quantity", &value,
                     "quantity: -1 is outside 0..1000000");
}

static void
price_must_be_0_to_2_pow_31_minus_1 (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    field_t value = INT ("", 0);
    expect_accepted (s_add, "item.price", &value, &request);
    assert_int_equal (request.item.price, 0);
    value.i = 2147483647;
    expect_accepted (s_add, "item.price", &value, &request);
    assert_int_equal (request.item.price, 2147483647);
    value.i = 2147483648LL;
    expect_rejected (s_add, "item.price", &value,
                     "item.price: 2147483648 is outside 0..2147483647");
    value.i = -1;
    expect_rejected (s_add, "item.price", &value,
                     "item.price: -1 is outside 0..2147483647");
}

static void
huge_and_most_negative_integers_do_not_wrap (void **state)
{
    (void) state;
    static const char *paths[][2] = {
        { "AddItemToCart", "item.quantity" },
        { "AddItemToCart", "item.price" },
        { "UpdateItemQuantity", "quantity" },
    };
    for (size_t index = 0; index < 3; index++) {
        const field_t *fields = index < 2 ? s_add : s_update;
        const char *path = paths[index][1];
        field_t value = UINT ("", UINT64_MAX);  //  -1 if read as int64
        char reason[64];
        snprintf (reason, sizeof (reason), "%s: 18446744073709551615 is", path);
        expect_rejected (fields, path, &value, reason);
        value.u = (uint64_t) INT64_MAX + 1;  //  INT64_MIN if wrapped
        expect_rejected (fields, path, &value, "9223372036854775808 is");
        value.u = (uint64_t) 1 << 32 | 5;  //  5 if cut to 32 bits
        expect_rejected (fields, path, &value, "is outside");
        field_t low = INT ("", INT64_MIN);
        expect_rejected (fields, path, &low, "-9223372036854775808 is");
        field_t low32 = INT ("", INT32_MIN);
        expect_rejected (fields, path, &low32, "is outside");
    }
}

static void
integers_in_any_msgpack_width_are_accepted (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    field_t wide = { .kind = V_FIX_UINT, .u = 7 };
    expect_accepted (s_add, "item.quantity", &wide, &request);
    assert_int_equal (request.item.quantity, 7);
    field_t wide_signed = { .kind = V_FIX_INT, .i = 9 };
    expect_accepted (s_add, "item.price", &wide_signed, &request);
    assert_int_equal (request.item.price, 9);
    field_t wide_zero = { .kind = V_FIX_INT, .i = 0 };
    expect_accepted (s_update, "quantity", &wide_zero, &request);
    assert_int_equal (request.item.quantity, 0);
    //  int8 0x05 (0xd0 0x05): a signed encoding of a positive number.
    body_t body;
    body_init (&body);
    msgpack_pack_map (&body.pk, 4);
    body_str (&body, "method");
    body_str (&body, "UpdateItemQuantity");
    body_str (&body, "user_id");
    body_str (&body, "u1");
    body_str (&body, "item_id");
    body_str (&body, "a");
    body_str (&body, "quantity");
    body_raw (&body, "\xd0\x05", 2);
    char error[256];
    assert_int_equal (
      decode_bytes (body.buffer.data, body.buffer.size, &request, error),
      CMQ_CART_OK);
    assert_int_equal (request.item.quantity, 5);
    msgpack_sbuffer_destroy (&body.buffer);
}

static void
request_id_present_on_a_mutation_must_be_a_valid_string (void **state)
{
    (void) state;
    for (size_t index = 1; index < CASE_COUNT; index++) {
        expect_rejected (s_cases[index].fields, "request_id",
                         &(field_t) KIND ("", V_NIL),
                         "request_id: must be a string, got nil");
        expect_rejected (s_cases[index].fields, "request_id",
                         &(field_t) INT ("", 42),
                         "request_id: must be a string, got integer");
    }
}

static void
decoded_requests_hold_every_field_of_their_method (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    expect_accepted (s_get, NULL, NULL, &request);
    assert_int_equal (request.method, CMQ_CART_GET);
    assert_string_equal (request.user_id.data, "u1");
    assert_int_equal (request.user_id.size, 2);
    assert_false (request.has_request_id);

    expect_accepted (s_add, NULL, NULL, &request);
    assert_int_equal (request.method, CMQ_CART_ADD);
    assert_string_equal (request.item.id.data, "sku-1");
    assert_int_equal (request.item.id.size, 5);
    assert_string_equal (request.item.name.data, "Widget");
    assert_int_equal (request.item.quantity, 2);
    assert_int_equal (request.item.price, 1999);
    assert_true (request.has_request_id);
    assert_string_equal (request.request_id.data, "r1");

    expect_accepted (s_remove, NULL, NULL, &request);
    assert_int_equal (request.method, CMQ_CART_REMOVE);
    assert_string_equal (request.item.id.data, "sku-1");

    expect_accepted (s_update, NULL, NULL, &request);
    assert_int_equal (request.method, CMQ_CART_UPDATE);
    assert_string_equal (request.item.id.data, "sku-1");
    assert_int_equal (request.item.quantity, 3);

    expect_accepted (s_clear, NULL, NULL, &request);
    assert_int_equal (request.method, CMQ_CART_CLEAR);
    assert_string_equal (request.user_id.data, "u1");
    assert_true (request.has_request_id);
}

static void
error_reason_fits_a_small_buffer_or_none (void **state)
{
    (void) state;
    msgpack_sbuffer buffer;
    field_t foo = STR ("", "Foo");
    build_body (&buffer, s_get, "method", &foo);
    cmq_cart_request_t request;
    char small[8];
    memset (small, 0xab, sizeof (small));
    assert_int_equal (cmq_cart_request_decode (buffer.data, buffer.size,
                                               &request, small, sizeof (small)),
                      CMQ_CART_BAD_REQUEST);
    assert_string_equal (small, "unknown");
    assert_int_equal (
      cmq_cart_request_decode (buffer.data, buffer.size, &request, NULL, 0),
      CMQ_CART_BAD_REQUEST);
    char untouched = 'z';
    assert_int_equal (cmq_cart_request_decode (buffer.data, buffer.size,
                                               &request, &untouched, 0),
                      CMQ_CART_BAD_REQUEST);
    assert_int_equal (untouched, 'z');
    msgpack_sbuffer_destroy (&buffer);
}

//  --------------------------------------------------------------------------
//  Encoding

//  The keys of the top map in order, joined by ','; asserts it is one map.
static void
keys_of (const void *data, size_t size, char *keys, size_t keys_size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    assert_int_equal (msgpack_unpack_next (&unpacked, data, size, &offset),
                      MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (offset, size);
    assert_int_equal (unpacked.data.type, MSGPACK_OBJECT_MAP);
    keys[0] = '\0';
    const msgpack_object_map *map = &unpacked.data.via.map;
    for (uint32_t index = 0; index < map->size; index++) {
        assert_int_equal (map->ptr[index].key.type, MSGPACK_OBJECT_STR);
        size_t used = strlen (keys);
        snprintf (keys + used, keys_size - used, "%s%.*s", index ? "," : "",
                  (int) map->ptr[index].key.via.str.size,
                  map->ptr[index].key.via.str.ptr);
    }
    msgpack_unpacked_destroy (&unpacked);
}

static void
set_bytes (cmq_cart_str_t *str, const char *data, size_t size)
{
    str->data = data;  //  a request borrows: data outlives the request
    str->size = size;
}

static void
set_text (cmq_cart_text_t *text, const char *data, size_t size)
{
    memcpy (text->data, data, size);
    text->data[size] = '\0';
    text->size = size;
}

//  A request's strings are views, so two equal requests hold the same
//  bytes, not the same pointers: every field is compared by value.
static void
assert_str_equal (cmq_cart_str_t left, cmq_cart_str_t right)
{
    assert_int_equal (left.size, right.size);
    if (left.size)
        assert_memory_equal (left.data, right.data, left.size);
}

static void
assert_requests_equal (const cmq_cart_request_t *left,
                       const cmq_cart_request_t *right)
{
    assert_int_equal (left->method, right->method);
    assert_str_equal (left->user_id, right->user_id);
    assert_str_equal (left->item.id, right->item.id);
    assert_str_equal (left->item.name, right->item.name);
    assert_int_equal (left->item.quantity, right->item.quantity);
    assert_int_equal (left->item.price, right->item.price);
    assert_int_equal (left->has_request_id, right->has_request_id);
    assert_str_equal (left->request_id, right->request_id);
}

static void
request_round_trips_for_every_method (void **state)
{
    (void) state;
    static const char *expected_keys[] = { NULL,
                                           "method,user_id",
                                           "method,user_id,item",
                                           "method,user_id,item_id",
                                           "method,user_id,item_id,quantity",
                                           "method,user_id" };
    for (int method = CMQ_CART_GET; method <= CMQ_CART_CLEAR; method++)
        for (int with_id = 0; with_id < 2; with_id++) {
            cmq_cart_request_t request;
            memset (&request, 0, sizeof (request));
            request.method = (cmq_cart_method_t) method;
            set_bytes (&request.user_id, "us\0er", 5);
            if (method == CMQ_CART_ADD) {
                set_bytes (&request.item.id, "id\0\xc3\xbf", 5);
                set_bytes (&request.item.name, s_xs, 256);
                request.item.quantity = 1000000;
                request.item.price = 2147483647;
            }
            if (method == CMQ_CART_REMOVE || method == CMQ_CART_UPDATE)
                set_bytes (&request.item.id, s_xs, 128);
            if (method == CMQ_CART_UPDATE)
                request.item.quantity = 0;
            if (with_id && method != CMQ_CART_GET) {
                request.has_request_id = true;
                set_bytes (&request.request_id, s_xs, 64);
            }
            size_t size = 0;
            void *body = cmq_cart_request_encode (&request, &size);
            assert_non_null (body);
            char keys[128], expected[128];
            keys_of (body, size, keys, sizeof (keys));
            snprintf (expected, sizeof (expected), "%s%s",
                      expected_keys[method],
                      request.has_request_id ? ",request_id" : "");
            assert_string_equal (keys, expected);

            cmq_cart_request_t decoded;
            char error[256];
            assert_int_equal (decode_bytes (body, size, &decoded, error),
                              CMQ_CART_OK);
            assert_requests_equal (&decoded, &request);
            free (body);
        }
}

static void
request_item_is_encoded_as_id_name_quantity_price (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    memset (&request, 0, sizeof (request));
    request.method = CMQ_CART_ADD;
    set_bytes (&request.user_id, "u", 1);
    set_bytes (&request.item.id, "i", 1);
    set_bytes (&request.item.name, "n", 1);
    request.item.quantity = 1;
    size_t size = 0;
    char *body = cmq_cart_request_encode (&request, &size);
    //  The item map sits at the end: after its "item" key.
    const char *item = memmem (body, size, "\xa4item", 5);
    assert_non_null (item);
    size_t offset = (size_t) (item + 5 - body);
    char keys[64];
    keys_of (body + offset, size - offset, keys, sizeof (keys));
    assert_string_equal (keys, "id,name,quantity,price");
    free (body);
}

static cmq_cart_item_t *
make_items (size_t count)
{
    cmq_cart_item_t *items = calloc (count, sizeof (cmq_cart_item_t));
    for (size_t index = 0; index < count; index++) {
        char id[32];
        snprintf (id, sizeof (id), "item-%04zu", index);
        cmq_cart_text_set (&items[index].id, id, CMQ_CART_MAX_ID_BYTES);
        cmq_cart_text_set (&items[index].name, "Name", 256);
        items[index].quantity = (int64_t) index + 1;
        items[index].price = 100;
    }
    return items;
}

static void
success_replies_hold_exactly_status_and_the_method_fields (void **state)
{
    (void) state;
    static const char *expected_keys[] = { NULL,
                                           "status,items,total",
                                           "status,item_id,quantity",
                                           "status,message",
                                           "status,item_id,quantity",
                                           "status,message" };
    for (int method = CMQ_CART_GET; method <= CMQ_CART_CLEAR; method++) {
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        reply.status = CMQ_CART_OK;
        reply.method = (cmq_cart_method_t) method;
        //  Leftovers from other methods must not leak into the map.
        snprintf (reply.error, sizeof (reply.error), "stale");
        snprintf (reply.message, sizeof (reply.message), "Item removed");
        reply.total = 5;
        size_t size = 0;
        void *body = cmq_cart_reply_encode (&reply, &size);
        assert_non_null (body);
        char keys[128];
        keys_of (body, size, keys, sizeof (keys));
        assert_string_equal (keys, expected_keys[method]);
        free (body);
    }
}

static void
error_replies_hold_exactly_status_and_error (void **state)
{
    (void) state;
    static const int statuses[] = { 400, 404, 409, 503 };
    for (size_t index = 0; index < 4; index++)
        for (int method = CMQ_CART_GET; method <= CMQ_CART_CLEAR; method++) {
            cmq_cart_reply_t reply;
            memset (&reply, 0, sizeof (reply));
            reply.status = statuses[index];
            reply.method = (cmq_cart_method_t) method;
            snprintf (reply.error, sizeof (reply.error), "why %d", method);
            reply.items = make_items (2);  //  must be ignored
            reply.item_count = 2;
            size_t size = 0;
            void *body = cmq_cart_reply_encode (&reply, &size);
            char keys[128];
            keys_of (body, size, keys, sizeof (keys));
            assert_string_equal (keys, "status,error");

            cmq_cart_reply_t decoded;
            assert_int_equal (cmq_cart_reply_decode (body, size,
                                                     (cmq_cart_method_t) method,
                                                     &decoded),
                              0);
            assert_int_equal (decoded.status, statuses[index]);
            assert_string_equal (decoded.error, reply.error);
            assert_null (decoded.items);
            cmq_cart_reply_reset (&decoded);
            cmq_cart_reply_reset (&reply);
            free (body);
        }
}

static void
error_reply_without_text_still_carries_a_readable_error (void **state)
{
    (void) state;
    static const int statuses[] = { 400, 404, 409, 503, 500 };
    for (size_t index = 0; index < 5; index++) {
        size_t size = 0;
        void *body = cmq_cart_error_encode (statuses[index], NULL, &size);
        cmq_cart_reply_t reply;
        assert_int_equal (
          cmq_cart_reply_decode (body, size, CMQ_CART_GET, &reply), 0);
        assert_int_equal (reply.status, statuses[index]);
        assert_true (strlen (reply.error) > 0);
        free (body);
        body = cmq_cart_error_encode (statuses[index], "", &size);
        char keys[64];
        keys_of (body, size, keys, sizeof (keys));
        assert_string_equal (keys, "status,error");
        assert_int_equal (
          cmq_cart_reply_decode (body, size, CMQ_CART_GET, &reply), 0);
        assert_true (strlen (reply.error) > 0);
        free (body);
    }
    size_t size = 0;
    void *body = cmq_cart_error_encode (503, "storage unavailable", &size);
    cmq_cart_reply_t reply;
    assert_int_equal (cmq_cart_reply_decode (body, size, CMQ_CART_ADD, &reply),
                      0);
    assert_int_equal (reply.status, 503);
    assert_string_equal (reply.error, "storage unavailable");
    free (body);
}

static void
reply_round_trips_for_every_method (void **state)
{
    (void) state;
    for (int method = CMQ_CART_GET; method <= CMQ_CART_CLEAR; method++) {
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        reply.status = CMQ_CART_OK;
        reply.method = (cmq_cart_method_t) method;
        if (method == CMQ_CART_GET) {
            reply.items = make_items (3);
            set_text (&reply.items[1].id, "b\0\xc3\xbf", 4);
            set_text (&reply.items[2].name, s_xs, 256);
            set_text (&reply.items[2].id, s_xs, 128);
            reply.items[2].quantity = 1000000;
            reply.items[2].price = 2147483647;
            reply.item_count = 3;
            reply.total = 1000000LL * 2147483647LL + 500;
        }
        if (method == CMQ_CART_ADD || method == CMQ_CART_UPDATE) {
            set_text (&reply.item_id, "sku\0-1", 6);
            reply.quantity = method == CMQ_CART_ADD ? 1500000 : 0;
        }
        if (method == CMQ_CART_REMOVE)
            snprintf (reply.message, sizeof (reply.message), "Item removed");
        if (method == CMQ_CART_CLEAR)
            snprintf (reply.message, sizeof (reply.message), "Cart cleared");
        size_t size = 0;
        void *body = cmq_cart_reply_encode (&reply, &size);
        assert_non_null (body);
        cmq_cart_reply_t decoded;
        memset (&decoded, 0xab, sizeof (decoded));
        assert_int_equal (cmq_cart_reply_decode (
                            body, size, (cmq_cart_method_t) method, &decoded),
                          0);
        assert_int_equal (decoded.status, 200);
        assert_int_equal (decoded.method, method);
        assert_int_equal (decoded.item_count, reply.item_count);
        for (size_t index = 0; index < reply.item_count; index++) {
            const cmq_cart_item_t *got = &decoded.items[index];
            const cmq_cart_item_t *sent = &reply.items[index];
            assert_int_equal (got->id.size, sent->id.size);
            assert_memory_equal (got->id.data, sent->id.data,
                                 sent->id.size + 1);
            assert_int_equal (got->name.size, sent->name.size);
            assert_memory_equal (got->name.data, sent->name.data,
                                 sent->name.size + 1);
            assert_int_equal (got->quantity, sent->quantity);
            assert_int_equal (got->price, sent->price);
        }
        assert_int_equal (decoded.total, reply.total);
        assert_memory_equal (&decoded.item_id, &reply.item_id,
                             sizeof (reply.item_id));
        assert_int_equal (decoded.quantity, reply.quantity);
        assert_string_equal (decoded.message, reply.message);
        cmq_cart_reply_reset (&decoded);
        cmq_cart_reply_reset (&reply);
        free (body);
    }
}

static void
get_reply_with_no_items_decodes_to_an_empty_list (void **state)
{
    (void) state;
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    reply.status = CMQ_CART_OK;
    reply.method = CMQ_CART_GET;
    size_t size = 0;
    void *body = cmq_cart_reply_encode (&reply, &size);
    cmq_cart_reply_t decoded;
    assert_int_equal (
      cmq_cart_reply_decode (body, size, CMQ_CART_GET, &decoded), 0);
    assert_null (decoded.items);
    assert_int_equal (decoded.item_count, 0);
    assert_int_equal (decoded.total, 0);
    free (body);
}

static void
empty_message_is_encoded_as_the_contract_text (void **state)
{
    (void) state;
    static const struct {
        cmq_cart_method_t method;
        const char *text;
    } cases[] = { { CMQ_CART_REMOVE, "Item removed" },
                  { CMQ_CART_CLEAR, "Cart cleared" } };
    for (size_t index = 0; index < 2; index++) {
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        reply.status = CMQ_CART_OK;
        reply.method = cases[index].method;
        size_t size = 0;
        void *body = cmq_cart_reply_encode (&reply, &size);
        cmq_cart_reply_t decoded;
        assert_int_equal (
          cmq_cart_reply_decode (body, size, cases[index].method, &decoded), 0);
        assert_string_equal (decoded.message, cases[index].text);
        free (body);
    }
}

//  --------------------------------------------------------------------------
//  Reply decoding, as a client sees it

static const field_t s_reply_item[] = { STR ("id", "a"), STR ("name", "A"),
                                        INT ("quantity", 2), INT ("price", 5),
                                        END };
static const field_t s_reply_item_list[] = { FIELDS ("", s_reply_item),
                                             FIELDS ("", s_reply_item), END };
static const field_t s_get_reply[] = { INT ("status", 200),
                                       LIST ("items", s_reply_item_list),
                                       INT ("total", 20), END };
static const field_t s_add_reply[] = { INT ("status", 200),
                                       STR ("item_id", "a"),
                                       INT ("quantity", 2), END };
static const field_t s_remove_reply[] = { INT ("status", 200),
                                          STR ("message", "Item removed"),
                                          END };

static int
reply_decode_with (const field_t *fields, cmq_cart_method_t method,
                   const char *path, const field_t *value,
                   cmq_cart_reply_t *reply)
{
    msgpack_sbuffer buffer;
    build_body (&buffer, fields, path, value);
    void *copy = malloc (buffer.size);
    memcpy (copy, buffer.data, buffer.size);
    memset (reply, 0xab, sizeof (*reply));
    int rc = cmq_cart_reply_decode (copy, buffer.size, method, reply);
    free (copy);
    msgpack_sbuffer_destroy (&buffer);
    if (rc != 0) {
        assert_int_equal (rc, -1);
        assert_null (reply->items);
        assert_int_equal (reply->item_count, 0);
        assert_int_equal (reply->status, 0);
        assert_true (strlen (reply->error) > 0);
    }
    return rc;
}

static void
expect_reply_rejected (const field_t *fields, cmq_cart_method_t method,
                       const char *path, const field_t *value,
                       const char *reason)
{
    cmq_cart_reply_t reply;
    int rc = reply_decode_with (fields, method, path, value, &reply);
    if (rc != -1 || !strstr (reply.error, reason))
        fail_msg ("reply path %s: rc %d error '%s', expected '%s'",
                  path ? path : "-", rc, reply.error, reason);
    cmq_cart_reply_reset (&reply);
}

static void
reply_decoder_rejects_bytes_that_are_not_one_map (void **state)
{
    (void) state;
    cmq_cart_reply_t reply;
    static const struct {
        const char *bytes;
        size_t size;
    } bad[] = {
        { "", 0 },
        { "\xc1", 1 },
        { "\x91\x01", 2 },
        { "\x81\xa6status", 8 },
        { "\x81\xa6status\xcc\xc8\x00", 11 },
        { "\xdd\xff\xff\xff\xff", 5 },
        { "not msgpack at all", 18 },
    };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad[0]); index++) {
        memset (&reply, 0xab, sizeof (reply));
        assert_int_equal (cmq_cart_reply_decode (bad[index].bytes,
                                                 bad[index].size, CMQ_CART_GET,
                                                 &reply),
                          -1);
        assert_null (reply.items);
        assert_true (strlen (reply.error) > 0);
    }
    assert_int_equal (cmq_cart_reply_decode (NULL, 0, CMQ_CART_GET, &reply),
                      -1);
}

static void
reply_needs_an_integer_status_in_range (void **state)
{
    (void) state;
    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "status", NULL,
                           "missing field: status");
    for (const field_t *value = s_not_integers; value->kind != V_END; value++)
        expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "status", value,
                               "status: must be an integer");
    field_t status = INT ("", 0);
    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "status", &status,
                           "status: 0 is outside");
    status.i = 1000;
    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "status", &status,
                           "outside");
    status.i = -200;
    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "status", &status,
                           "outside");
    field_t huge = UINT ("", UINT64_MAX);
    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "status", &huge,
                           "outside");
    field_t wrapped = UINT ("", ((uint64_t) 1 << 32) + 200);
    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "status", &wrapped,
                           "outside");
}

static void
success_reply_must_hold_the_method_fields_with_strict_types (void **state)
{
    (void) state;
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items", NULL,
                           "missing field: items");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "total", NULL,
                           "missing field: total");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items",
                           &(field_t) KIND ("", V_MAP),
                           "items: must be an array");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items[]",
                           &(field_t) INT ("", 1), "items[]: must be a map");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items[].price",
                           &(field_t){ .kind = V_FLOAT64, .f = 5.0 },
                           "items[].price: must be an integer");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items[].id",
                           &(field_t){ .kind = V_BIN, .s = "a" },
                           "items[].id: must be a string");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items[].name",
                           &(field_t) XSTR ("", 257),
                           "items[].name: longer than 256");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items[].quantity", NULL,
                           "missing field: items[].quantity");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "items[].quantity",
                           &(field_t) INT ("", -1), "outside");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "total",
                           &(field_t) KIND ("", V_TRUE),
                           "total: must be an integer");
    expect_reply_rejected (s_get_reply, CMQ_CART_GET, "total",
                           &(field_t) UINT ("", UINT64_MAX), "outside");

    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "item_id", NULL,
                           "missing field: item_id");
    expect_reply_rejected (s_add_reply, CMQ_CART_UPDATE, "quantity", NULL,
                           "missing field: quantity");
    expect_reply_rejected (s_add_reply, CMQ_CART_ADD, "quantity",
                           &(field_t) STR ("", "2"),
                           "quantity: must be an integer");
    expect_reply_rejected (s_add_reply, CMQ_CART_UPDATE, "item_id",
                           &(field_t) XSTR ("", 129), "longer than 128");

    expect_reply_rejected (s_remove_reply, CMQ_CART_REMOVE, "message", NULL,
                           "missing field: message");
    expect_reply_rejected (s_remove_reply, CMQ_CART_CLEAR, "message",
                           &(field_t) KIND ("", V_NIL),
                           "message: must be a string");
    expect_reply_rejected (s_remove_reply, CMQ_CART_CLEAR, "message",
                           &(field_t) XSTR ("", 32), "longer than 31");
    //  Fields of another method do not stand in for the right ones.
    expect_reply_rejected (s_remove_reply, CMQ_CART_GET, NULL, NULL,
                           "missing field: items");
    expect_reply_rejected (s_remove_reply, (cmq_cart_method_t) 0, NULL, NULL,
                           "unknown method");
}

static void
reply_keys_must_be_unique_strings (void **state)
{
    (void) state;
    static const field_t twice[] = { INT ("status", 200),
                                     STR ("message", "Item removed"),
                                     INT ("status", 404), END };
    expect_reply_rejected (twice, CMQ_CART_REMOVE, NULL, NULL,
                           "duplicate key: status");
    cmq_cart_reply_t reply;
    assert_int_equal (cmq_cart_reply_decode ("\x82\xa6status\xcc\xc8\x01\x01",
                                             12, CMQ_CART_REMOVE, &reply),
                      -1);
    assert_non_null (strstr (reply.error, "keys must be strings"));
}

static void
reply_decoder_ignores_unknown_keys (void **state)
{
    (void) state;
    cmq_cart_reply_t reply;
    assert_int_equal (
      reply_decode_with (s_get_reply, CMQ_CART_GET, "server_time",
                         &(field_t){ .kind = V_FLOAT64 }, &reply),
      0);
    assert_int_equal (reply.item_count, 2);
    assert_int_equal (reply.total, 20);
    cmq_cart_reply_reset (&reply);
    assert_int_equal (reply_decode_with (s_get_reply, CMQ_CART_GET,
                                         "items[].image",
                                         &(field_t) STR ("", "x.png"), &reply),
                      0);
    assert_string_equal (reply.items[1].id.data, "a");
    cmq_cart_reply_reset (&reply);
}

static void
reply_with_more_items_than_a_cart_holds_is_rejected (void **state)
{
    (void) state;
    for (int extra = 0; extra < 2; extra++) {
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        reply.status = CMQ_CART_OK;
        reply.method = CMQ_CART_GET;
        reply.item_count = CMQ_CART_MAX_ITEMS + (size_t) extra;
        reply.items = make_items (reply.item_count);
        size_t size = 0;
        void *body = cmq_cart_reply_encode (&reply, &size);
        cmq_cart_reply_t decoded;
        int rc = cmq_cart_reply_decode (body, size, CMQ_CART_GET, &decoded);
        if (extra) {
            assert_int_equal (rc, -1);
            assert_non_null (strstr (decoded.error, "items: 1001 is over"));
        } else {
            assert_int_equal (rc, 0);
            assert_int_equal (decoded.item_count, CMQ_CART_MAX_ITEMS);
            assert_string_equal (decoded.items[999].id.data, "item-0999");
        }
        cmq_cart_reply_reset (&decoded);
        cmq_cart_reply_reset (&reply);
        free (body);
    }
}

static void
error_reply_text_is_optional_kept_to_one_line_and_truncated (void **state)
{
    (void) state;
    static const field_t no_error[] = { INT ("status", 503), END };
    cmq_cart_reply_t reply;
    assert_int_equal (
      reply_decode_with (no_error, CMQ_CART_GET, NULL, NULL, &reply), 0);
    assert_int_equal (reply.status, 503);
    assert_string_equal (reply.error, "");
    static const field_t int_error[] = { INT ("status", 404), INT ("error", 7),
                                         END };
    assert_int_equal (
      reply_decode_with (int_error, CMQ_CART_GET, NULL, NULL, &reply), 0);
    assert_int_equal (reply.status, 404);
    assert_string_equal (reply.error, "");
    static const field_t odd_error[] = {
        INT ("status", 400), STR ("error", "two\nlines\x7f caf\xc3\xa9"), END
    };
    assert_int_equal (
      reply_decode_with (odd_error, CMQ_CART_GET, NULL, NULL, &reply), 0);
    assert_string_equal (reply.error, "two?lines? caf\xc3\xa9");
    static const field_t long_error[] = { INT ("status", 400),
                                          XSTR ("error", 1000), END };
    assert_int_equal (
      reply_decode_with (long_error, CMQ_CART_GET, NULL, NULL, &reply), 0);
    assert_int_equal (strlen (reply.error), sizeof (reply.error) - 1);
    //  A non-200 reply needs none of the success fields.
    static const field_t bare_404[] = { INT ("status", 404),
                                        STR ("error", "item not in cart"),
                                        END };
    assert_int_equal (
      reply_decode_with (bare_404, CMQ_CART_UPDATE, NULL, NULL, &reply), 0);
    assert_string_equal (reply.error, "item not in cart");
}

static void
random_bytes_and_mutated_replies_never_crash_the_reply_decoder (void **state)
{
    (void) state;
    uint32_t seed = 99;
    static const field_t *replies[] = { s_get_reply, s_add_reply,
                                        s_remove_reply };
    static const cmq_cart_method_t methods[] = { CMQ_CART_GET, CMQ_CART_ADD,
                                                 CMQ_CART_REMOVE };
    for (int round = 0; round < 30000; round++) {
        msgpack_sbuffer buffer;
        build_body (&buffer, replies[round % 3], NULL, NULL);
        for (int flips = 0; flips < 1 + round % 4; flips++) {
            seed = seed * 1103515245 + 12345;
            buffer.data[(seed >> 8) % buffer.size] = (char) (seed >> 20);
        }
        seed = seed * 1103515245 + 12345;
        size_t size = round % 4 ? buffer.size : (seed >> 8) % buffer.size;
        void *copy = malloc (size ? size : 1);
        memcpy (copy, buffer.data, size);
        cmq_cart_reply_t reply;
        int rc = cmq_cart_reply_decode (copy, size, methods[round % 3], &reply);
        assert_true (rc == 0 || rc == -1);
        if (rc == -1)
            assert_null (reply.items);
        cmq_cart_reply_reset (&reply);
        free (copy);
        msgpack_sbuffer_destroy (&buffer);
    }
}

static void
reply_reset_frees_items_and_zeroes_the_reply (void **state)
{
    (void) state;
    cmq_cart_reply_t reply;
    assert_int_equal (
      reply_decode_with (s_get_reply, CMQ_CART_GET, NULL, NULL, &reply), 0);
    assert_non_null (reply.items);
    cmq_cart_reply_reset (&reply);
    cmq_cart_reply_t zero;
    memset (&zero, 0, sizeof (zero));
    assert_memory_equal (&reply, &zero, sizeof (zero));
    cmq_cart_reply_reset (&reply);  //  twice is fine
}

//  --------------------------------------------------------------------------
//  Small helpers

static void
method_names_are_the_wire_names (void **state)
{
    (void) state;
    assert_string_equal (cmq_cart_method_name (CMQ_CART_GET), "GetCartItems");
    assert_string_equal (cmq_cart_method_name (CMQ_CART_ADD), "AddItemToCart");
    assert_string_equal (cmq_cart_method_name (CMQ_CART_REMOVE),
                         "RemoveItemFromCart");
    assert_string_equal (cmq_cart_method_name (CMQ_CART_UPDATE),
                         "UpdateItemQuantity");
    assert_string_equal (cmq_cart_method_name (CMQ_CART_CLEAR), "ClearCart");
    assert_null (cmq_cart_method_name ((cmq_cart_method_t) 0));
    assert_null (cmq_cart_method_name ((cmq_cart_method_t) 6));
    assert_null (cmq_cart_method_name ((cmq_cart_method_t) -1));
}

static void
only_get_is_not_a_mutation (void **state)
{
    (void) state;
    assert_false (cmq_cart_method_is_mutation (CMQ_CART_GET));
    assert_true (cmq_cart_method_is_mutation (CMQ_CART_ADD));
    assert_true (cmq_cart_method_is_mutation (CMQ_CART_REMOVE));
    assert_true (cmq_cart_method_is_mutation (CMQ_CART_UPDATE));
    assert_true (cmq_cart_method_is_mutation (CMQ_CART_CLEAR));
    assert_false (cmq_cart_method_is_mutation ((cmq_cart_method_t) 0));
    assert_false (cmq_cart_method_is_mutation ((cmq_cart_method_t) 6));
}

static void
text_set_refuses_null_and_longer_than_max_leaving_it_empty (void **state)
{
    (void) state;
    cmq_cart_text_t str;
    assert_int_equal (cmq_cart_text_set (&str, "abc", 3), 0);
    assert_int_equal (str.size, 3);
    assert_string_equal (str.data, "abc");
    assert_int_equal (cmq_cart_text_set (&str, "abcd", 3), -1);
    assert_int_equal (str.size, 0);
    assert_string_equal (str.data, "");
    assert_int_equal (cmq_cart_text_set (&str, "abc", 3), 0);
    assert_int_equal (cmq_cart_text_set (&str, NULL, 3), -1);
    assert_int_equal (str.size, 0);
    //  max_bytes past the buffer is capped at what the buffer holds.
    char big[300];
    memset (big, 'b', sizeof (big));
    big[257] = '\0';
    assert_int_equal (cmq_cart_text_set (&str, big, 1000), -1);
    big[256] = '\0';
    assert_int_equal (cmq_cart_text_set (&str, big, 1000), 0);
    assert_int_equal (str.size, 256);
    assert_int_equal (cmq_cart_text_set (&str, "", 0), 0);
    assert_int_equal (str.size, 0);
}

//  --------------------------------------------------------------------------
//  Typed calls, against a stand-in broker that answers as the service
//  would: it decodes with the real codec and echoes what it understood.

typedef struct {
    zactor_t *actor;
    char endpoint[64];
    cmq_client_t *client;
} fake_t;

//  Answers [id][""]["MDPC01"][service][body] requests. user_id "silent"
//  gets no answer, "garbage" gets bytes that are not msgpack; GET replies
//  one item named after the user and total = requests seen so far.
static void
s_fake_cart_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", port);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    int64_t seen = 0;
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != router) {
            break;  //  $TERM or interrupted
        }
        zmsg_t *msg = zmsg_recv (router);
        if (!msg || zmsg_size (msg) != 5) {
            zmsg_destroy (&msg);
            continue;
        }
        seen++;
        zframe_t *body = zmsg_last (msg);
        cmq_cart_request_t request;
        char error[256];
        int status =
          cmq_cart_request_decode (zframe_data (body), zframe_size (body),
                                   &request, error, sizeof (error));
        cmq_cart_reply_t reply;
        memset (&reply, 0, sizeof (reply));
        reply.status = status;
        reply.method = request.method;
        snprintf (reply.error, sizeof (reply.error), "%s", error);
        cmq_cart_item_t item;
        if (status == CMQ_CART_OK) {
            if (strcmp (request.user_id.data, "silent") == 0) {
                zmsg_destroy (&msg);
                continue;
            }
            if (request.method == CMQ_CART_GET) {
                memset (&item, 0, sizeof (item));
                cmq_cart_text_set (&item.id, request.user_id.data, 256);
                cmq_cart_text_set (&item.name, "seen", 256);
                item.quantity = 1;
                reply.items = &item;
                reply.item_count = 1;
                reply.total = seen;
            }
            cmq_cart_text_set (&reply.item_id, request.item.id.data,
                               CMQ_CART_MAX_NAME_BYTES);
            reply.quantity = request.item.quantity;
            //  The request id comes back in the message, so tests can
            //  see it was sent.
            if (request.has_request_id)
                snprintf (reply.message, sizeof (reply.message), "rid=%.20s",
                          request.request_id.data);
        }
        size_t size = 0;
        void *answer = cmq_cart_reply_encode (&reply, &size);
        if (status == CMQ_CART_OK &&
            strcmp (request.user_id.data, "garbage") == 0) {
            free (answer);
            answer = strdup ("\xc1garbage");
            size = 8;
        }
        zframe_t *old = zmsg_last (msg);
        zmsg_remove (msg, old);
        zframe_destroy (&old);
        zmsg_addmem (msg, answer, size);
        free (answer);
        zmsg_send (&msg, router);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static int
fake_setup (void **state)
{
    fake_t *fake = calloc (1, sizeof (fake_t));
    fake->actor = zactor_new (s_fake_cart_actor, NULL);
    int port = 0;
    zsock_recv (fake->actor, "i", &port);
    snprintf (fake->endpoint, sizeof (fake->endpoint), "tcp://127.0.0.1:%d",
              port);
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = fake->endpoint;
    //  The fake answers at once; the margin is for a loaded machine under
    //  ASan. Only the silent call waits it out.
    config.timeout_ms = 1000;
    config.retries = 0;
    fake->client = cmq_client_new (&config, NULL, 0);
    if (!fake->client)
        return -1;
    *state = fake;
    return 0;
}

static int
fake_teardown (void **state)
{
    fake_t *fake = *state;
    cmq_client_destroy (&fake->client);
    zactor_destroy (&fake->actor);
    free (fake);
    return 0;
}

static void
typed_calls_send_each_method_and_decode_its_reply (void **state)
{
    fake_t *fake = *state;
    cmq_cart_reply_t reply;
    assert_int_equal (cmq_cart_get (fake->client, "alice", &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_int_equal (reply.method, CMQ_CART_GET);
    assert_int_equal (reply.item_count, 1);
    assert_string_equal (reply.items[0].id.data, "alice");
    cmq_cart_reply_reset (&reply);

    cmq_cart_request_item_t item;
    memset (&item, 0, sizeof (item));
    item.id = cmq_cart_str ("sku-9");
    item.name = cmq_cart_str ("Nine");
    item.quantity = 4;
    item.price = 250;
    assert_int_equal (cmq_cart_add (fake->client, "alice", &item, NULL, &reply),
                      0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (reply.item_id.data, "sku-9");
    assert_int_equal (reply.quantity, 4);

    assert_int_equal (
      cmq_cart_update (fake->client, "alice", "sku-9", 0, "req-7", &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (reply.item_id.data, "sku-9");
    assert_int_equal (reply.quantity, 0);

    assert_int_equal (
      cmq_cart_remove (fake->client, "alice", "sku-9", "req-8", &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (reply.message, "rid=req-8");

    //  No id given: the call makes one (the fake echoes its first 20 hex
    //  digits), since every mutation carries one.
    assert_int_equal (cmq_cart_clear (fake->client, "alice", NULL, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_int_equal (strlen (reply.message), 24);
    assert_memory_equal (reply.message, "rid=", 4);
    assert_int_equal (strspn (reply.message + 4, "0123456789abcdef"), 20);
}

//  A broker that never answers: records the body of every request that
//  reaches it. Asked "BODIES", it sends [count][body]... on the pipe.
static void
s_recorder_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", port);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zmsg_t *bodies = zmsg_new ();
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == router) {
            zmsg_t *msg = zmsg_recv (router);
            if (msg && zmsg_size (msg) == 5) {
                zframe_t *body = zmsg_last (msg);
                zmsg_addmem (bodies, zframe_data (body), zframe_size (body));
            }
            zmsg_destroy (&msg);
            continue;
        }
        char *command = which == pipe ? zstr_recv (pipe) : NULL;
        bool is_bodies = command && streq (command, "BODIES");
        free (command);
        if (!is_bodies)
            break;  //  $TERM or interrupted
        zmsg_t *answer = zmsg_dup (bodies);
        zmsg_pushstrf (answer, "%zu", zmsg_size (bodies));
        zmsg_send (&answer, pipe);
    }
    zmsg_destroy (&bodies);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

//  The request ids of the bodies the recorder holds, once it holds count
//  (within 5 s): each must decode and carry one.
static void
s_recorded_ids (zactor_t *recorder, size_t count, char ids[][72])
{
    zmsg_t *answer = NULL;
    for (int64_t deadline = zclock_mono () + 5000; zclock_mono () < deadline;
         zclock_sleep (10)) {
        zmsg_destroy (&answer);
        zstr_send (recorder, "BODIES");
        answer = zmsg_recv (recorder);
        assert_non_null (answer);
        if (zmsg_size (answer) >= count + 1)
            break;
    }
    assert_int_equal (zmsg_size (answer), count + 1);
    zframe_t *frame = zmsg_first (answer);
    for (size_t index = 0; index < count; index++) {
        frame = zmsg_next (answer);
        cmq_cart_request_t request;
        char error[256];
        assert_int_equal (
          cmq_cart_request_decode (zframe_data (frame), zframe_size (frame),
                                   &request, error, sizeof (error)),
          CMQ_CART_OK);
        assert_true (request.has_request_id);
        snprintf (ids[index], 72, "%.64s", request.request_id.data);
    }
    zmsg_destroy (&answer);
}

static void
every_retry_of_a_call_resends_the_request_id_made_for_that_call (void **state)
{
    (void) state;
    zactor_t *recorder = zactor_new (s_recorder_actor, NULL);
    int port = 0;
    zsock_recv (recorder, "i", &port);
    char endpoint[64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", port);
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = endpoint;
    config.timeout_ms = 150;
    config.retries = 2;
    cmq_client_t *client = cmq_client_new (&config, NULL, 0);
    assert_non_null (client);

    cmq_cart_request_item_t item;
    memset (&item, 0, sizeof (item));
    item.id = cmq_cart_str ("sku-1");
    item.name = cmq_cart_str ("Pen");
    item.quantity = 1;
    item.price = 100;
    cmq_cart_reply_t reply;
    //  Two calls of each mutation with no id, three attempts each; then
    //  one with an id of the caller's.
    for (int call = 0; call < 2; call++) {
        assert_int_equal (cmq_cart_add (client, "u", &item, NULL, &reply), -1);
        assert_int_equal (cmq_cart_remove (client, "u", "sku-1", NULL, &reply),
                          -1);
        assert_int_equal (
          cmq_cart_update (client, "u", "sku-1", 2, NULL, &reply), -1);
        assert_int_equal (cmq_cart_clear (client, "u", NULL, &reply), -1);
    }
    assert_int_equal (cmq_cart_clear (client, "u", "mine-1", &reply), -1);
    char ids[27][72];
    s_recorded_ids (recorder, 27, ids);
    for (size_t call = 0; call < 8; call++) {
        const char *first = ids[3 * call];
        assert_int_equal (strlen (first), CMQ_CART_REQUEST_ID_HEX_BYTES);
        assert_int_equal (strspn (first, "0123456789abcdef"),
                          CMQ_CART_REQUEST_ID_HEX_BYTES);
        assert_string_equal (ids[3 * call + 1], first);
        assert_string_equal (ids[3 * call + 2], first);
        for (size_t other = 0; other < call; other++)
            assert_string_not_equal (ids[3 * other], first);
    }
    for (size_t attempt = 24; attempt < 27; attempt++)
        assert_string_equal (ids[attempt], "mine-1");

    cmq_client_destroy (&client);
    zactor_destroy (&recorder);
}

static void
request_ids_are_32_lowercase_hex_digits_and_do_not_repeat (void **state)
{
    (void) state;
    char previous[CMQ_CART_REQUEST_ID_HEX_BYTES + 1] = "";
    for (int round = 0; round < 1000; round++) {
        char id[CMQ_CART_REQUEST_ID_HEX_BYTES + 1];
        assert_int_equal (cmq_cart_request_id_new (id, sizeof (id)), 0);
        assert_int_equal (strlen (id), CMQ_CART_REQUEST_ID_HEX_BYTES);
        assert_int_equal (strspn (id, "0123456789abcdef"),
                          CMQ_CART_REQUEST_ID_HEX_BYTES);
        assert_string_not_equal (id, previous);
        memcpy (previous, id, sizeof (id));
    }
    char small[CMQ_CART_REQUEST_ID_HEX_BYTES];
    assert_int_equal (cmq_cart_request_id_new (small, sizeof (small)), -1);
    assert_string_equal (small, "");
}

static void
service_rejections_come_back_as_replies_with_status (void **state)
{
    fake_t *fake = *state;
    cmq_cart_reply_t reply;
    //  Longer than the id limit but within what the struct holds: sent,
    //  and the service judges it.
    char long_id[201];
    memset (long_id, 'i', 200);
    long_id[200] = '\0';
    assert_int_equal (
      cmq_cart_remove (fake->client, "bob", long_id, NULL, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error, "item_id: longer than 128 bytes");
    assert_int_equal (
      cmq_cart_update (fake->client, "bob", "a", 1000001, NULL, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_non_null (strstr (reply.error, "quantity: 1000001 is outside"));
    assert_int_equal (cmq_cart_clear (fake->client, "", "r", &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error, "user_id: must not be empty");
}

static void
strings_too_long_to_carry_get_the_services_400_without_a_call (void **state)
{
    fake_t *fake = *state;
    cmq_cart_reply_t reply;
    assert_int_equal (cmq_cart_get (fake->client, "count", &reply), 0);
    int64_t before = reply.total;
    cmq_cart_reply_reset (&reply);

    char huge[400];
    memset (huge, 'h', sizeof (huge) - 1);
    huge[sizeof (huge) - 1] = '\0';
    assert_int_equal (cmq_cart_get (fake->client, huge, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error, "user_id: longer than 128 bytes");
    assert_int_equal (cmq_cart_remove (fake->client, "u", huge, NULL, &reply),
                      0);
    assert_string_equal (reply.error, "item_id: longer than 128 bytes");
    assert_int_equal (cmq_cart_clear (fake->client, "u", huge, &reply), 0);
    assert_string_equal (reply.error, "request_id: longer than 64 bytes");

    assert_int_equal (cmq_cart_get (fake->client, "count", &reply), 0);
    assert_int_equal (reply.total, before + 1);
    cmq_cart_reply_reset (&reply);
}

static void
call_returns_minus_one_when_no_reply_comes (void **state)
{
    fake_t *fake = *state;
    cmq_cart_reply_t reply;
    assert_int_equal (cmq_cart_clear (fake->client, "silent", NULL, &reply),
                      -1);
    assert_non_null (strstr (reply.error, "no reply"));
    assert_int_equal (reply.status, 0);
}

static void
call_returns_minus_one_when_the_reply_does_not_decode (void **state)
{
    fake_t *fake = *state;
    cmq_cart_reply_t reply;
    assert_int_equal (cmq_cart_get (fake->client, "garbage", &reply), -1);
    assert_null (reply.items);
    assert_true (strlen (reply.error) > 0);
}

//  ---------------------------------------------------------------------
//  Borrowed request strings: one encoder for every sender

static void
request_strings_of_any_length_and_bytes_are_encoded_as_they_are (void **state)
{
    (void) state;
    //  Longer than any field may be, with a NUL and a byte that is not
    //  UTF-8: encoded as given, so the service can judge it.
    static char huge[5000];
    memset (huge, 'h', sizeof (huge));
    huge[7] = '\0';
    huge[9] = (char) 0xff;
    cmq_cart_request_t request;
    memset (&request, 0, sizeof (request));
    request.method = CMQ_CART_REMOVE;
    request.user_id = cmq_cart_str ("u");
    set_bytes (&request.item.id, huge, sizeof (huge));
    size_t size = 0;
    void *body = cmq_cart_request_encode (&request, &size);
    assert_non_null (body);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert_int_equal (cmq_msgpack_unpack (body, size, 4, &unpacked, NULL, 0),
                      0);
    const msgpack_object *item_id =
      cmq_msgpack_map_get (&unpacked.data, "item_id");
    assert_non_null (item_id);
    assert_int_equal (item_id->via.str.size, sizeof (huge));
    assert_memory_equal (item_id->via.str.ptr, huge, sizeof (huge));
    msgpack_unpacked_destroy (&unpacked);
    //  The service's decoder refuses it, naming the limit.
    cmq_cart_request_t decoded;
    char error[256];
    assert_int_equal (decode_bytes (body, size, &decoded, error), 400);
    assert_string_equal (error, "item_id: longer than 128 bytes");
    free (body);
}

static void
encode_into_writes_what_encode_does_and_says_the_size_it_needs (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    memset (&request, 0, sizeof (request));
    request.method = CMQ_CART_ADD;
    request.user_id = cmq_cart_str ("alice");
    request.item.id = cmq_cart_str ("sku-1");
    request.item.name = cmq_cart_str ("Pen");
    request.item.quantity = 2;
    request.item.price = 150;
    request.has_request_id = true;
    request.request_id = cmq_cart_str ("r-1");
    size_t size = 0;
    void *body = cmq_cart_request_encode (&request, &size);
    assert_non_null (body);
    char buffer[256];
    assert_int_equal (
      cmq_cart_request_encode_into (&request, buffer, sizeof (buffer)), size);
    assert_memory_equal (buffer, body, size);
    //  Too small: nothing past the buffer, and the size it needs.
    memset (buffer, 0x5a, sizeof (buffer));
    assert_int_equal (cmq_cart_request_encode_into (&request, buffer, 10),
                      size);
    assert_int_equal ((unsigned char) buffer[10], 0x5a);
    assert_int_equal (cmq_cart_request_encode_into (&request, NULL, 0), size);
    free (body);
}

static void
decoded_request_outlives_its_body (void **state)
{
    (void) state;
    cmq_cart_request_t request;
    memset (&request, 0, sizeof (request));
    request.method = CMQ_CART_ADD;
    request.user_id = cmq_cart_str ("bob");
    request.item.id = cmq_cart_str ("sku-2");
    set_bytes (&request.item.name, s_xs, 256);
    request.item.quantity = 1;
    request.has_request_id = true;
    set_bytes (&request.request_id, s_xs, 64);
    size_t size = 0;
    char *body = (char *) cmq_cart_request_encode (&request, &size);
    cmq_cart_request_t decoded;
    char error[256];
    assert_int_equal (decode_bytes (body, size, &decoded, error), 200);
    memset (body, 0, size);  //  the body is gone
    free (body);
    assert_string_equal (decoded.user_id.data, "bob");
    assert_string_equal (decoded.item.id.data, "sku-2");
    assert_int_equal (decoded.item.name.size, 256);
    assert_memory_equal (decoded.item.name.data, s_xs, 256);
    assert_int_equal (decoded.request_id.size, 64);
    assert_memory_equal (decoded.request_id.data, s_xs, 64);
    //  The views point into the request itself: no allocation to free.
    assert_true (decoded.user_id.data >= decoded.storage &&
                 decoded.user_id.data <
                   decoded.storage + sizeof (decoded.storage));
}

static void
give_id_names_mutations_without_one_and_nothing_else (void **state)
{
    (void) state;
    char buffer[CMQ_CART_REQUEST_ID_HEX_BYTES + 1];
    cmq_cart_request_t request;
    memset (&request, 0, sizeof (request));
    request.method = CMQ_CART_GET;
    assert_int_equal (
      cmq_cart_request_give_id (&request, buffer, sizeof (buffer)), 0);
    assert_false (request.has_request_id);
    request.method = CMQ_CART_CLEAR;
    assert_int_equal (
      cmq_cart_request_give_id (&request, buffer, sizeof (buffer)), 0);
    assert_true (request.has_request_id);
    assert_int_equal (request.request_id.size, CMQ_CART_REQUEST_ID_HEX_BYTES);
    assert_ptr_equal (request.request_id.data, buffer);
    request.request_id = cmq_cart_str ("mine");
    assert_int_equal (
      cmq_cart_request_give_id (&request, buffer, sizeof (buffer)), 0);
    assert_string_equal (request.request_id.data, "mine");
}

static int
codec_setup (void **state)
{
    (void) state;
    memset (s_xs, 'x', sizeof (s_xs));
    return 0;
}

int
main (void)
{
    const struct CMUnitTest codec[] = {
        cmocka_unit_test (
          request_strings_of_any_length_and_bytes_are_encoded_as_they_are),
        cmocka_unit_test (
          encode_into_writes_what_encode_does_and_says_the_size_it_needs),
        cmocka_unit_test (decoded_request_outlives_its_body),
        cmocka_unit_test (give_id_names_mutations_without_one_and_nothing_else),
        cmocka_unit_test (empty_body_is_rejected),
        cmocka_unit_test (reserved_byte_0xc1_is_not_msgpack),
        cmocka_unit_test (text_that_is_not_msgpack_is_rejected),
        cmocka_unit_test (every_truncation_of_a_valid_request_is_rejected),
        cmocka_unit_test (body_that_is_not_a_map_is_rejected),
        cmocka_unit_test (trailing_bytes_after_the_map_are_rejected),
        cmocka_unit_test (deeply_nested_arrays_are_rejected_without_recursion),
        cmocka_unit_test (moderate_nesting_in_an_unknown_key_is_accepted),
        cmocka_unit_test (
          declared_lengths_past_the_end_are_rejected_before_allocating),
        cmocka_unit_test (every_msgpack_type_in_an_unknown_key_is_skipped),
        cmocka_unit_test (
          body_over_one_mebibyte_is_rejected_and_exactly_one_is_accepted),
        cmocka_unit_test (
          many_unknown_keys_are_accepted_and_one_repeat_among_them_is_not),
        cmocka_unit_test (
          random_bytes_and_mutated_requests_never_crash_the_decoder),
        cmocka_unit_test (non_string_keys_are_rejected),
        cmocka_unit_test (duplicate_keys_are_rejected),
        cmocka_unit_test (unknown_keys_are_ignored_at_the_top_and_in_item),
        cmocka_unit_test (missing_or_mistyped_method_is_rejected),
        cmocka_unit_test (unknown_method_is_rejected_naming_it_on_one_line),
        cmocka_unit_test (
          each_missing_required_field_is_rejected_for_each_method),
        cmocka_unit_test (request_id_is_optional_for_every_mutation),
        cmocka_unit_test (each_string_field_rejects_every_other_type),
        cmocka_unit_test (
          each_integer_field_rejects_every_other_type_even_whole_floats),
        cmocka_unit_test (item_must_be_a_map),
        cmocka_unit_test (get_ignores_request_id_whatever_its_type),
        cmocka_unit_test (empty_strings_are_rejected_in_every_string_field),
        cmocka_unit_test (
          string_limits_accept_exactly_the_limit_and_reject_one_byte_more),
        cmocka_unit_test (
          strings_at_the_limit_are_copied_whole_and_nul_terminated),
        cmocka_unit_test (strings_keep_nul_and_high_bytes_with_their_size),
        cmocka_unit_test (
          utf8_check_accepts_every_valid_form_and_rejects_the_classic_edge_cases),
        cmocka_unit_test (
          every_code_point_round_trips_and_every_surrogate_is_refused),
        cmocka_unit_test (each_string_field_rejects_a_str_that_is_not_utf8),
        cmocka_unit_test (reply_strings_that_are_not_utf8_are_refused),
        cmocka_unit_test (add_quantity_must_be_1_to_1000000),
        cmocka_unit_test (update_quantity_must_be_0_to_1000000),
        cmocka_unit_test (price_must_be_0_to_2_pow_31_minus_1),
        cmocka_unit_test (huge_and_most_negative_integers_do_not_wrap),
        cmocka_unit_test (integers_in_any_msgpack_width_are_accepted),
        cmocka_unit_test (
          request_id_present_on_a_mutation_must_be_a_valid_string),
        cmocka_unit_test (decoded_requests_hold_every_field_of_their_method),
        cmocka_unit_test (error_reason_fits_a_small_buffer_or_none),
        cmocka_unit_test (request_round_trips_for_every_method),
        cmocka_unit_test (request_item_is_encoded_as_id_name_quantity_price),
        cmocka_unit_test (
          success_replies_hold_exactly_status_and_the_method_fields),
        cmocka_unit_test (error_replies_hold_exactly_status_and_error),
        cmocka_unit_test (
          error_reply_without_text_still_carries_a_readable_error),
        cmocka_unit_test (reply_round_trips_for_every_method),
        cmocka_unit_test (get_reply_with_no_items_decodes_to_an_empty_list),
        cmocka_unit_test (empty_message_is_encoded_as_the_contract_text),
        cmocka_unit_test (reply_decoder_rejects_bytes_that_are_not_one_map),
        cmocka_unit_test (reply_needs_an_integer_status_in_range),
        cmocka_unit_test (
          success_reply_must_hold_the_method_fields_with_strict_types),
        cmocka_unit_test (reply_keys_must_be_unique_strings),
        cmocka_unit_test (reply_decoder_ignores_unknown_keys),
        cmocka_unit_test (reply_with_more_items_than_a_cart_holds_is_rejected),
        cmocka_unit_test (
          error_reply_text_is_optional_kept_to_one_line_and_truncated),
        cmocka_unit_test (
          random_bytes_and_mutated_replies_never_crash_the_reply_decoder),
        cmocka_unit_test (reply_reset_frees_items_and_zeroes_the_reply),
        cmocka_unit_test (method_names_are_the_wire_names),
        cmocka_unit_test (only_get_is_not_a_mutation),
        cmocka_unit_test (
          text_set_refuses_null_and_longer_than_max_leaving_it_empty),
    };
    const struct CMUnitTest client[] = {
        cmocka_unit_test (typed_calls_send_each_method_and_decode_its_reply),
        cmocka_unit_test (service_rejections_come_back_as_replies_with_status),
        cmocka_unit_test (
          strings_too_long_to_carry_get_the_services_400_without_a_call),
        cmocka_unit_test (call_returns_minus_one_when_no_reply_comes),
        cmocka_unit_test (
          call_returns_minus_one_when_the_reply_does_not_decode),
        cmocka_unit_test (
          every_retry_of_a_call_resends_the_request_id_made_for_that_call),
        cmocka_unit_test (
          request_ids_are_32_lowercase_hex_digits_and_do_not_repeat),
    };
    int failed =
      cmocka_run_group_tests_name ("cart_codec", codec, codec_setup, NULL);
    failed += cmocka_run_group_tests_name ("cart_client", client, fake_setup,
                                           fake_teardown);
    return failed;
}
