//  test_zpl_check.c - ZPL text checked line by line before zconfig reads it
//
//  zconfig itself is the judge: text the check accepts must load, with one
//  tree node per recorded line in pre-order; text it refuses must not.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <czmq.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cartmq/zpl_check.h"

//  Number of nodes below node
static size_t
count_nodes (zconfig_t *node)
{
    size_t count = 0;
    for (zconfig_t *child = zconfig_child (node); child;
         child = zconfig_next (child))
        count += 1 + count_nodes (child);
    return count;
}

//  zconfig_str_load, with what it prints on stdout thrown away
static zconfig_t *
quiet_load (const char *text)
{
    fflush (stdout);
    int saved = dup (STDOUT_FILENO);
    int null_fd = open ("/dev/null", O_WRONLY);
    assert_true (saved >= 0 && null_fd >= 0);
    dup2 (null_fd, STDOUT_FILENO);
    close (null_fd);
    zconfig_t *root = zconfig_str_load (text);
    fflush (stdout);
    dup2 (saved, STDOUT_FILENO);
    close (saved);
    return root;
}

//  Checks text is accepted with items on exactly these lines (ended by 0),
//  and that zconfig builds a tree with as many nodes.
static void
expect_items (const char *text, const int *expected)
{
    int bad_line = -1;
    int *lines = NULL;
    size_t count = 99;
    const char *reason = cmq_zpl_check (text, &bad_line, &lines, &count);
    if (reason)
        fail_msg ("refused at line %d: %s", bad_line, reason);
    assert_int_equal (bad_line, 0);
    size_t expected_count = 0;
    while (expected[expected_count])
        expected_count++;
    assert_int_equal (count, expected_count);
    for (size_t index = 0; index < count; index++)
        assert_int_equal (lines[index], expected[index]);
    free (lines);

    zconfig_t *root = quiet_load (text);
    assert_non_null (root);
    assert_int_equal (count_nodes (root), expected_count);
    zconfig_destroy (&root);
}

//  Checks text is refused at line with a reason containing why. zconfig
//  is asked too unless the text would make it read out of bounds.
static void
expect_refused (const char *text, int line, const char *why, bool ask_zconfig)
{
    int bad_line = -1;
    int dummy;
    int *lines = &dummy;  //  must come back NULL
    size_t count = 99;
    const char *reason = cmq_zpl_check (text, &bad_line, &lines, &count);
    if (!reason)
        fail_msg ("accepted: \"%s\"", text);
    if (!strstr (reason, why))
        fail_msg ("reason \"%s\" lacks \"%s\"", reason, why);
    assert_int_equal (bad_line, line);
    assert_null (lines);
    assert_int_equal (count, 0);
    if (ask_zconfig) {
        zconfig_t *root = quiet_load (text);
        if (root)
            fail_msg ("zconfig loads what the check refuses: \"%s\"", text);
    }
}

static void
items_are_recorded_with_their_lines_in_document_order (void **state)
{
    (void) state;
    static const int lines[] = { 2, 3, 4, 6, 8, 9, 0 };
    expect_items ("# comment\n"
                  "broker\n"
                  "    bind = \"tcp://*:5555\"  # why\n"
                  "    verbose = 1\n"
                  "\n"
                  "    curve\n"
                  "        # nested comment\n"
                  "        server = 'cert'\n"
                  "worker\n",
                  lines);
}

static void
blank_text_comments_and_crlf_lines_are_fine (void **state)
{
    (void) state;
    static const int none[] = { 0 };
    expect_items ("", none);
    expect_items ("\n\n   \n# only comments\n", none);
    static const int two[] = { 1, 2, 0 };
    expect_items ("a = 1\r\nb = \"two\"\r\n", two);
    static const int names[] = { 1, 2, 0 };
    expect_items ("$-_@.&+x\n    a/b = x\n", names);
}

static void
each_syntax_error_names_its_line (void **state)
{
    (void) state;
    expect_refused ("a\n  b = 1\n", 2, "indent by 4 spaces at a time", true);
    expect_refused ("a\nb\n        c = 1\n", 3,
                    "indented deeper than its parent", true);
    expect_refused ("    a = 1\n", 1, "indented deeper than its parent", true);
    expect_refused ("a\n\n# x\nb = \"open\n", 4, "missing closing quote", true);
    expect_refused ("a = 'x' y\n", 1, "invalid syntax after the quoted value",
                    true);
    expect_refused ("/a = 1\n", 1, "'/' not valid at the start or end", true);
    expect_refused ("a/ = 1\n", 1, "'/' not valid at the start or end", true);
    expect_refused ("a b\n", 1, "invalid syntax", true);
    expect_refused ("a\n!b\n", 2, "invalid syntax", true);
    expect_refused ("a\nb : 1", 2, "invalid syntax", true);
}

static void
lines_over_1024_bytes_are_refused_and_1024_is_fine (void **state)
{
    (void) state;
    char text[CMQ_ZPL_MAX_LINE + 32];
    memset (text, 0, sizeof (text));
    strcpy (text, "a\nb = \"");
    size_t head = strlen ("b = \"");
    memset (text + 2 + head, 'x', CMQ_ZPL_MAX_LINE - head - 1);
    strcat (text, "\"\nc\n");
    static const int lines[] = { 1, 2, 3, 0 };
    expect_items (text, lines);

    //  One byte more: zconfig would read past its buffer, so not asked
    memmove (text + 3, text + 2, strlen (text + 2) + 1);
    text[2] = 'b';
    expect_refused (text, 2, "line longer than 1024 bytes", false);
}

static void
outputs_may_be_left_out (void **state)
{
    (void) state;
    assert_null (cmq_zpl_check ("a = 1\n", NULL, NULL, NULL));
    assert_non_null (cmq_zpl_check ("  a = 1\n", NULL, NULL, NULL));
    int bad_line = -1;
    assert_non_null (cmq_zpl_check ("a\n\"\n", &bad_line, NULL, NULL));
    assert_int_equal (bad_line, 2);
    int dummy;
    int *lines = &dummy;
    size_t count = 99;
    assert_null (cmq_zpl_check ("# none\n", NULL, &lines, &count));
    assert_null (lines);
    assert_int_equal (count, 0);
}

static void
many_items_all_get_their_line (void **state)
{
    (void) state;
    size_t items = 1000;
    char *text = (char *) malloc (items * 16);
    int *expected = (int *) calloc (items + 1, sizeof (int));
    text[0] = '\0';
    char *end = text;
    for (size_t index = 0; index < items; index++) {
        end += sprintf (end, "%sk%zu = 1\n", index ? "    " : "", index);
        expected[index] = (int) index + 1;
    }
    expect_items (text, expected);
    free (expected);
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (
          items_are_recorded_with_their_lines_in_document_order),
        cmocka_unit_test (blank_text_comments_and_crlf_lines_are_fine),
        cmocka_unit_test (each_syntax_error_names_its_line),
        cmocka_unit_test (lines_over_1024_bytes_are_refused_and_1024_is_fine),
        cmocka_unit_test (outputs_may_be_left_out),
        cmocka_unit_test (many_items_all_get_their_line),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
