//  test_msgpack_scan.c - the byte scan that runs before msgpack-c
//
//  Objects are built byte by byte (type, big-endian length, payload), so
//  every format is covered in every width, whatever msgpack_packer would
//  pick. msgpack-c itself is the judge of what is well-formed.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartmq/msgpack_scan.h"

#define MAX_BYTES 64

//  One msgpack object as bytes
typedef struct {
    uint8_t data[MAX_BYTES];
    size_t size;
} bytes_t;

//  A format: type byte, bytes of length after it, the length, and the
//  payload bytes that follow (elements for containers: 0x01 each, a
//  fixint, so a map of N pairs takes 2N).
typedef struct {
    const char *name;
    uint8_t type;
    size_t width;
    uint64_t length;
    size_t payload;
} format_t;

static const format_t s_formats[] = {
    { "positive fixint", 0x05, 0, 0, 0 },
    { "negative fixint", 0xff, 0, 0, 0 },
    { "nil", 0xc0, 0, 0, 0 },
    { "false", 0xc2, 0, 0, 0 },
    { "true", 0xc3, 0, 0, 0 },
    { "bin 8", 0xc4, 1, 3, 3 },
    { "bin 16", 0xc5, 2, 3, 3 },
    { "bin 32", 0xc6, 4, 3, 3 },
    { "empty bin 8", 0xc4, 1, 0, 0 },
    { "ext 8", 0xc7, 1, 3, 4 },
    { "ext 16", 0xc8, 2, 3, 4 },
    { "ext 32", 0xc9, 4, 3, 4 },
    { "float 32", 0xca, 0, 0, 4 },
    { "float 64", 0xcb, 0, 0, 8 },
    { "uint 8", 0xcc, 0, 0, 1 },
    { "uint 16", 0xcd, 0, 0, 2 },
    { "uint 32", 0xce, 0, 0, 4 },
    { "uint 64", 0xcf, 0, 0, 8 },
    { "int 8", 0xd0, 0, 0, 1 },
    { "int 16", 0xd1, 0, 0, 2 },
    { "int 32", 0xd2, 0, 0, 4 },
    { "int 64", 0xd3, 0, 0, 8 },
    { "fixext 1", 0xd4, 0, 0, 2 },
    { "fixext 2", 0xd5, 0, 0, 3 },
    { "fixext 4", 0xd6, 0, 0, 5 },
    { "fixext 8", 0xd7, 0, 0, 9 },
    { "fixext 16", 0xd8, 0, 0, 17 },
    { "fixstr", 0xa3, 0, 0, 3 },
    { "empty fixstr", 0xa0, 0, 0, 0 },
    { "longest fixstr", 0xbf, 0, 0, 31 },
    { "str 8", 0xd9, 1, 3, 3 },
    { "str 16", 0xda, 2, 3, 3 },
    { "str 32", 0xdb, 4, 3, 3 },
    { "fixarray", 0x93, 0, 0, 3 },
    { "empty fixarray", 0x90, 0, 0, 0 },
    { "longest fixarray", 0x9f, 0, 0, 15 },
    { "array 16", 0xdc, 2, 3, 3 },
    { "array 32", 0xdd, 4, 3, 3 },
    { "empty array 32", 0xdd, 4, 0, 0 },
    { "fixmap", 0x82, 0, 0, 4 },
    { "empty fixmap", 0x80, 0, 0, 0 },
    { "longest fixmap", 0x8f, 0, 0, 30 },
    { "map 16", 0xde, 2, 2, 4 },
    { "map 32", 0xdf, 4, 2, 4 },
};
#define FORMAT_COUNT (sizeof (s_formats) / sizeof (s_formats[0]))

static void
build (const format_t *format, bytes_t *bytes)
{
    assert_true (1 + format->width + format->payload <= MAX_BYTES);
    bytes->size = 0;
    bytes->data[bytes->size++] = format->type;
    for (size_t index = format->width; index > 0; index--)
        bytes->data[bytes->size++] =
          (uint8_t) (format->length >> (8 * (index - 1)));
    memset (bytes->data + bytes->size, 0x01, format->payload);
    bytes->size += format->payload;
}

//  True if msgpack-c reads exactly one whole object from the bytes
static bool
msgpack_c_accepts (const void *data, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    msgpack_unpack_return rc =
      msgpack_unpack_next (&unpacked, (const char *) data, size, &offset);
    msgpack_unpacked_destroy (&unpacked);
    return rc == MSGPACK_UNPACK_SUCCESS && offset == size;
}

//  Scans a heap copy of exactly size bytes, so ASan sees any over-read,
//  and returns the scan's answer with its reason in error.
static int
scan (const void *data, size_t size, int max_depth, char *error,
      size_t error_size)
{
    void *copy = malloc (size ? size : 1);
    if (size)
        memcpy (copy, data, size);
    if (error && error_size)
        error[0] = '\0';
    int rc = cmq_msgpack_scan (copy, size, max_depth, error, error_size);
    free (copy);
    return rc;
}

static void
expect_rejected (const void *data, size_t size, int max_depth,
                 const char *reason)
{
    char error[256];
    if (scan (data, size, max_depth, error, sizeof (error)) != -1)
        fail_msg ("accepted %zu bytes, expected \"%s\"", size, reason);
    if (!strstr (error, reason))
        fail_msg ("reason \"%s\" lacks \"%s\"", error, reason);
}

static void
every_format_in_every_width_is_accepted_as_msgpack_c_reads_it (void **state)
{
    (void) state;
    for (size_t index = 0; index < FORMAT_COUNT; index++) {
        bytes_t bytes;
        build (&s_formats[index], &bytes);
        char error[256];
        if (scan (bytes.data, bytes.size, 16, error, sizeof (error)))
            fail_msg ("%s refused: %s", s_formats[index].name, error);
        if (!msgpack_c_accepts (bytes.data, bytes.size))
            fail_msg ("%s: test bytes are wrong", s_formats[index].name);
    }
}

static void
every_format_inside_one_array_is_accepted (void **state)
{
    (void) state;
    uint8_t data[FORMAT_COUNT * MAX_BYTES + 3];
    size_t size = 0;
    data[size++] = 0xdc;
    data[size++] = 0;
    data[size++] = (uint8_t) FORMAT_COUNT;
    for (size_t index = 0; index < FORMAT_COUNT; index++) {
        bytes_t bytes;
        build (&s_formats[index], &bytes);
        memcpy (data + size, bytes.data, bytes.size);
        size += bytes.size;
    }
    assert_true (msgpack_c_accepts (data, size));
    assert_int_equal (scan (data, size, 2, NULL, 0), 0);
}

static void
every_truncation_of_every_format_is_rejected (void **state)
{
    (void) state;
    for (size_t index = 0; index < FORMAT_COUNT; index++) {
        bytes_t bytes;
        build (&s_formats[index], &bytes);
        for (size_t size = 0; size < bytes.size; size++)
            expect_rejected (bytes.data, size, 16, "truncated msgpack");
    }
}

static void
a_byte_after_every_format_is_trailing (void **state)
{
    (void) state;
    for (size_t index = 0; index < FORMAT_COUNT; index++) {
        bytes_t bytes;
        build (&s_formats[index], &bytes);
        bytes.data[bytes.size++] = 0xc0;
        expect_rejected (bytes.data, bytes.size, 16,
                         "1 trailing bytes after the msgpack object");
    }
    expect_rejected ("\x01\x02\x03", 3, 16, "2 trailing bytes");
}

static void
byte_0xc1_is_not_msgpack_wherever_it_is (void **state)
{
    (void) state;
    expect_rejected ("\xc1", 1, 16, "not msgpack: byte 0xc1 at 0");
    expect_rejected ("\x92\x01\xc1", 3, 16, "not msgpack: byte 0xc1 at 2");
    expect_rejected ("\x81\xc1\x01", 3, 16, "not msgpack: byte 0xc1 at 1");
}

static void
declared_lengths_past_the_end_are_refused_at_the_header (void **state)
{
    (void) state;
    expect_rejected ("\xdd\xff\xff\xff\xff", 5, 16,
                     "truncated msgpack: 4294967295 elements declared at "
                     "byte 5, 0 bytes left");
    expect_rejected ("\xdf\xff\xff\xff\xff\x01\x01", 7, 16,
                     "8589934590 elements declared at byte 5, 2 bytes left");
    expect_rejected ("\xde\xff\xff", 3, 16, "131070 elements declared");
    expect_rejected ("\x8f\x01\x01", 3, 16, "30 elements declared at byte 1");
    expect_rejected ("\x9f", 1, 16, "15 elements declared at byte 1");
    expect_rejected ("\xdb\xff\xff\xff\xff", 5, 16,
                     "truncated msgpack: 4294967295 bytes declared at byte "
                     "5, 0 left");
    expect_rejected ("\xc6\xff\xff\xff\xffxx", 7, 16,
                     "4294967295 bytes declared at byte 5, 2 left");
    expect_rejected ("\xc9\xff\xff\xff\xff\x01", 6, 16,
                     "4294967296 bytes declared at byte 5, 1 left");
    expect_rejected ("\xd8\x01xx", 4, 16,
                     "17 bytes declared at byte 1, 3 left");
    expect_rejected ("\xcf\x01\x02", 3, 16, "8 bytes declared");
    expect_rejected ("\xbf", 1, 16, "31 bytes declared");
    //  The length field itself cut short
    expect_rejected ("\xdb\x00\x01", 3, 16, "truncated msgpack at byte 1");
    expect_rejected ("\x91\xdc\x00", 3, 16, "truncated msgpack at byte 2");
    //  An element missing after a whole one
    expect_rejected ("\x92\x91\x01", 3, 16, "truncated msgpack at byte 3");
    expect_rejected ("\x91\xa2x", 3, 16, "2 bytes declared at byte 2, 1 left");
}

static void
nesting_is_allowed_to_max_depth_and_refused_past_it (void **state)
{
    (void) state;
    uint8_t data[CMQ_MSGPACK_SCAN_MAX_DEPTH + 2];
    for (int depth = 0; depth <= CMQ_MSGPACK_SCAN_MAX_DEPTH; depth++) {
        //  depth arrays around a fixint: the fixint is depth levels down
        memset (data, 0x91, (size_t) depth);
        data[depth] = 0x01;
        assert_int_equal (scan (data, (size_t) depth + 1, depth, NULL, 0), 0);
        if (depth > 0) {
            char reason[64];
            snprintf (reason, sizeof (reason),
                      "msgpack nested deeper than %d levels", depth - 1);
            expect_rejected (data, (size_t) depth + 1, depth - 1, reason);
            //  An empty container at the limit holds nothing below it
            data[depth - 1] = 0x90;
            assert_int_equal (scan (data, (size_t) depth, depth - 1, NULL, 0),
                              0);
        }
    }
    //  Maps count the same way, keys and values alike
    expect_rejected ("\x81\x01\x81\x01\x01", 5, 1, "nested deeper than 1");
    expect_rejected ("\x81\x91\x01\x01", 4, 1, "nested deeper than 1");
    assert_int_equal (scan ("\x81\x01\x81\x01\x01", 5, 2, NULL, 0), 0);
}

static void
hostile_nesting_is_refused_without_recursion (void **state)
{
    (void) state;
    size_t depth = 1000000;
    uint8_t *deep = (uint8_t *) malloc (depth + 1);
    memset (deep, 0x91, depth);
    deep[depth] = 0x01;
    expect_rejected (deep, depth + 1, CMQ_MSGPACK_SCAN_MAX_DEPTH,
                     "nested deeper than 64 levels");
    free (deep);
}

static void
long_flat_containers_cost_no_depth (void **state)
{
    (void) state;
    size_t count = 100000;
    uint8_t *data = (uint8_t *) malloc (5 + count);
    memcpy (data, "\xdd\x00\x01\x86\xa0", 5);  //  array 32 of 100000
    memset (data + 5, 0xc0, count);
    assert_int_equal (scan (data, 5 + count, 1, NULL, 0), 0);
    assert_true (msgpack_c_accepts (data, 5 + count));
    free (data);
}

static void
the_reason_is_cut_to_the_buffer_and_may_be_left_out (void **state)
{
    (void) state;
    char error[8];
    memset (error, 'z', sizeof (error));
    assert_int_equal (cmq_msgpack_scan ("\xc1", 1, 16, error, sizeof (error)),
                      -1);
    assert_string_equal (error, "not msg");
    memset (error, 'z', sizeof (error));
    assert_int_equal (cmq_msgpack_scan ("\xc1", 1, 16, error, 0), -1);
    assert_int_equal (error[0], 'z');
    assert_int_equal (cmq_msgpack_scan ("\xc1", 1, 16, NULL, 100), -1);
    assert_int_equal (cmq_msgpack_scan (NULL, 0, 16, NULL, 0), -1);
    expect_rejected ("", 0, 16, "truncated msgpack at byte 0");
}

//  The scan and msgpack-c agree on every short input drawn from bytes that
//  start each format, so nothing msgpack-c reads is refused and nothing
//  it would not read is let through.
static void
scan_agrees_with_msgpack_c_on_random_short_inputs (void **state)
{
    (void) state;
    static const uint8_t alphabet[] = { 0x00, 0x01, 0x02, 0x7f, 0x80, 0x81,
                                        0x82, 0x90, 0x91, 0x92, 0xa0, 0xa1,
                                        0xa2, 0xc0, 0xc1, 0xc2, 0xc4, 0xc7,
                                        0xca, 0xcc, 0xcd, 0xd0, 0xd4, 0xd5,
                                        0xd9, 0xdc, 0xde, 0xe0, 0xff };
    uint32_t seed = 12345;
    size_t accepted = 0;
    size_t rounds = 30000;
    for (size_t round = 0; round < rounds; round++) {
        uint8_t data[10];
        seed = seed * 1103515245u + 12345u;
        size_t size = 1 + (seed >> 16) % sizeof (data);
        for (size_t index = 0; index < size; index++) {
            seed = seed * 1103515245u + 12345u;
            data[index] = alphabet[(seed >> 16) % sizeof (alphabet)];
        }
        bool is_ok = cmq_msgpack_scan (data, size, 32, NULL, 0) == 0;
        if (is_ok != msgpack_c_accepts (data, size)) {
            char hex[3 * sizeof (data) + 1] = "";
            for (size_t index = 0; index < size; index++)
                sprintf (hex + 3 * index, "%02x ", data[index]);
            fail_msg ("scan says %s for %s", is_ok ? "ok" : "bad", hex);
        }
        accepted += is_ok;
    }
    //  Both answers must have come up often for the test to mean much.
    assert_true (accepted > rounds / 100);
    assert_true (accepted < rounds - rounds / 100);
}

//  ---------------------------------------------------------------------
//  Scan-then-unpack and map lookup: the one copy every reader uses

static void
unpack_scans_first_and_reads_one_whole_object (void **state)
{
    (void) state;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    char error[128] = "";
    //  {"a": 1}
    assert_int_equal (cmq_msgpack_unpack ("\x81\xa1\x61\x01", 4, 4, &unpacked,
                                          error, sizeof (error)),
                      0);
    assert_int_equal (unpacked.data.type, MSGPACK_OBJECT_MAP);
    //  A map that claims 15 pairs in 3 bytes: refused by the scan, before
    //  msgpack-c could allocate for them.
    assert_int_equal (cmq_msgpack_unpack ("\x8f\x01\x02", 3, 4, &unpacked,
                                          error, sizeof (error)),
                      -1);
    assert_non_null (strstr (error, "truncated"));
    //  Trailing bytes and nesting past max_depth are refused too.
    assert_int_equal (
      cmq_msgpack_unpack ("\x01\x02", 2, 4, &unpacked, error, sizeof (error)),
      -1);
    assert_non_null (strstr (error, "trailing"));
    assert_int_equal (
      cmq_msgpack_unpack ("\x91\x91\x01", 3, 1, &unpacked, NULL, 0), -1);
    assert_int_equal (cmq_msgpack_unpack ("", 0, 4, &unpacked, NULL, 0), -1);
    msgpack_unpacked_destroy (&unpacked);
}

static void
map_get_finds_the_first_str_key_and_nothing_else (void **state)
{
    (void) state;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    //  {bin "k": 1, "k": 2, "k": 3, "": 4}
    const char body[] = "\x84\xc4\x01k\x01\xa1k\x02\xa1k\x03\xa0\x04";
    assert_int_equal (
      cmq_msgpack_unpack (body, sizeof (body) - 1, 4, &unpacked, NULL, 0), 0);
    const msgpack_object *value = cmq_msgpack_map_get (&unpacked.data, "k");
    assert_non_null (value);
    assert_int_equal (value->via.u64, 2);
    value = cmq_msgpack_map_get (&unpacked.data, "");
    assert_non_null (value);
    assert_int_equal (value->via.u64, 4);
    assert_null (cmq_msgpack_map_get (&unpacked.data, "kk"));
    //  Not a map: nothing found.
    assert_null (cmq_msgpack_map_get (value, "k"));
    assert_true (cmq_msgpack_str_is (&unpacked.data.via.map.ptr[1].key, "k"));
    assert_false (cmq_msgpack_str_is (&unpacked.data.via.map.ptr[0].key, "k"));
    msgpack_unpacked_destroy (&unpacked);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (
          every_format_in_every_width_is_accepted_as_msgpack_c_reads_it),
        cmocka_unit_test (every_format_inside_one_array_is_accepted),
        cmocka_unit_test (every_truncation_of_every_format_is_rejected),
        cmocka_unit_test (a_byte_after_every_format_is_trailing),
        cmocka_unit_test (byte_0xc1_is_not_msgpack_wherever_it_is),
        cmocka_unit_test (
          declared_lengths_past_the_end_are_refused_at_the_header),
        cmocka_unit_test (nesting_is_allowed_to_max_depth_and_refused_past_it),
        cmocka_unit_test (hostile_nesting_is_refused_without_recursion),
        cmocka_unit_test (long_flat_containers_cost_no_depth),
        cmocka_unit_test (the_reason_is_cut_to_the_buffer_and_may_be_left_out),
        cmocka_unit_test (scan_agrees_with_msgpack_c_on_random_short_inputs),
        cmocka_unit_test (unpack_scans_first_and_reads_one_whole_object),
        cmocka_unit_test (map_get_finds_the_first_str_key_and_nothing_else),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
