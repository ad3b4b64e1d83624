//  test_options.c - flags and ZPL config files parsed from one table

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <unistd.h>

#include "cartmq/options.h"

#define MAX_ARGS 16

typedef struct {
    bool verbose;
    int64_t liveness;
    char *redis;
    zlist_t *bind;
    cmq_option_t table[5];
    cmq_options_spec_t spec;
    char *config_path;  //  temp file, removed in teardown
    char *err;          //  what the last run wrote on stderr
    char *out;          //  and on stdout
    const char *positional[2];
    int positional_count;
    int next_arg;
} fixture_t;

static int
setup (void **state)
{
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    fx->liveness = 3;
    cmq_option_t table[] = {
        { "verbose", CMQ_OPT_FLAG, NULL, "log more", 0, 0, &fx->verbose },
        { "liveness", CMQ_OPT_INT, "N", "heartbeats to miss", 1, 100,
          &fx->liveness },
        { "redis", CMQ_OPT_STRING, "URL", "Redis server", 0, 0, &fx->redis },
        { "bind", CMQ_OPT_STRING_LIST, "ENDPOINT", "listen here", 0, 0,
          &fx->bind },
        { NULL, CMQ_OPT_FLAG, NULL, NULL, 0, 0, NULL },
    };
    memcpy (fx->table, table, sizeof (table));
    fx->spec.program = "cartmq-test";
    fx->spec.usage = "[OPTIONS] [FILE]";
    fx->spec.section = "broker";
    *state = fx;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fx = *state;
    cmq_options_free (fx->table);
    if (fx->config_path) {
        unlink (fx->config_path);
        free (fx->config_path);
    }
    free (fx->err);
    free (fx->out);
    free (fx);
    return 0;
}

//  Points fd (1 or 2) at a fresh temp file; returns the saved original
static int
s_capture_start (int fd, char *path)
{
    strcpy (path, "/tmp/cmq-test-options-out-XXXXXX");
    int tmp = mkstemp (path);
    assert_true (tmp >= 0);
    fflush (fd == 1 ? stdout : stderr);
    int saved = dup (fd);
    dup2 (tmp, fd);
    close (tmp);
    return saved;
}

static char *
s_capture_end (int fd, int saved, const char *path)
{
    fflush (fd == 1 ? stdout : stderr);
    dup2 (saved, fd);
    close (saved);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char *text = (char *) zmalloc (8192);
    size_t size = fread (text, 1, 8191, file);
    text[size] = '\0';
    fclose (file);
    unlink (path);
    return text;
}

//  Parses the NULL-ended arguments (program name added), keeping what was
//  printed in fx->out and fx->err
static cmq_options_result_t
s_parse (fixture_t *fx, const char *arg, ...)
{
    char *argv[MAX_ARGS] = { "cartmq-test" };
    int argc = 1;
    va_list args;
    va_start (args, arg);
    for (; arg; arg = va_arg (args, const char *)) {
        assert_true (argc < MAX_ARGS);
        argv[argc++] = (char *) arg;
    }
    va_end (args);

    char out_path[64], err_path[64];
    int saved_out = s_capture_start (1, out_path);
    int saved_err = s_capture_start (2, err_path);
    cmq_options_result_t result =
      cmq_options_parse (&fx->spec, fx->table, argc, argv, fx->positional, 2,
                         &fx->positional_count, &fx->next_arg);
    free (fx->out);
    free (fx->err);
    fx->err = s_capture_end (2, saved_err, err_path);
    fx->out = s_capture_end (1, saved_out, out_path);
    return result;
}

static void
s_write_config (fixture_t *fx, const char *text)
{
    char path[] = "/tmp/cmq-test-options-cfg-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    fx->config_path = strdup (path);
}

static int
s_count_lines (const char *text)
{
    int lines = 0;
    for (; *text; text++)
        lines += *text == '\n';
    return lines;
}

//  The one stderr line starts "PROGRAM: " and holds each fragment
static void
s_assert_one_error (fixture_t *fx, const char *fragment1, const char *fragment2)
{
    assert_int_equal (s_count_lines (fx->err), 1);
    assert_true (strncmp (fx->err, "cartmq-test: ", 13) == 0);
    if (!strstr (fx->err, fragment1) ||
        (fragment2 && !strstr (fx->err, fragment2)))
        fail_msg ("stderr \"%s\" lacks \"%s\" / \"%s\"", fx->err, fragment1,
                  fragment2 ? fragment2 : "");
    assert_string_equal (fx->out, "");
}

static void
flags_of_every_type_are_stored (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--verbose", "--liveness", "7", "--redis",
                               "redis://x", "--bind", "tcp://a:1", NULL),
                      CMQ_OPTIONS_OK);
    assert_true (fx->verbose);
    assert_int_equal (fx->liveness, 7);
    assert_string_equal (fx->redis, "redis://x");
    assert_int_equal (zlist_size (fx->bind), 1);
    assert_string_equal (zlist_first (fx->bind), "tcp://a:1");
    assert_int_equal (fx->positional_count, 0);
    assert_int_equal (fx->next_arg, 8);  //  argc
    assert_string_equal (fx->err, "");
}

static void
equals_form_sets_the_value_and_keeps_later_equals_signs (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--liveness=12", "--redis=a=b", NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (fx->liveness, 12);
    assert_string_equal (fx->redis, "a=b");
}

static void
negative_number_is_a_value_not_a_flag (void **state)
{
    fixture_t *fx = *state;
    fx->table[1].min = -10;
    assert_int_equal (s_parse (fx, "--liveness", "-5", NULL), CMQ_OPTIONS_OK);
    assert_int_equal (fx->liveness, -5);
}

static void
later_string_replaces_earlier_one (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--redis", "a", "--redis", "b", NULL),
                      CMQ_OPTIONS_OK);
    assert_string_equal (fx->redis, "b");
}

static void
repeated_list_flag_appends_in_order (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--bind", "tcp://a:1", "--bind=tcp://b:2",
                               "--bind", "tcp://c:3", NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (zlist_size (fx->bind), 3);
    assert_string_equal (zlist_first (fx->bind), "tcp://a:1");
    assert_string_equal (zlist_next (fx->bind), "tcp://b:2");
    assert_string_equal (zlist_next (fx->bind), "tcp://c:3");
}

static void
unknown_flag_is_one_error_line_naming_it (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--verbose", "--bogus=3", NULL),
                      CMQ_OPTIONS_ERROR);
    assert_string_equal (fx->err, "cartmq-test: unknown option --bogus\n");
}

static void
single_dash_flag_is_unknown (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "-v", NULL), CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "unknown option -v", NULL);
}

static void
flag_without_its_value_is_an_error (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--liveness", NULL), CMQ_OPTIONS_ERROR);
    assert_string_equal (fx->err, "cartmq-test: --liveness: needs a value\n");
    //  The next flag is not taken as the value
    assert_int_equal (s_parse (fx, "--redis", "--verbose", NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "--redis: needs a value", NULL);
}

static void
boolean_flag_given_a_value_is_an_error (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--verbose=yes", NULL), CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "--verbose: takes no value", NULL);
}

static void
number_that_does_not_parse_is_an_error (void **state)
{
    fixture_t *fx = *state;
    const char *bad[] = {
        "", "abc", "5x", " 5", "5 ", "0x10", "99999999999999999999"
    };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad[0]); index++) {
        char arg[64];
        snprintf (arg, sizeof (arg), "--liveness=%s", bad[index]);
        assert_int_equal (s_parse (fx, arg, NULL), CMQ_OPTIONS_ERROR);
        if (index < 6)
            s_assert_one_error (fx, "--liveness: not a number", NULL);
        else
            s_assert_one_error (fx, "--liveness: out of range", NULL);
    }
    assert_int_equal (fx->liveness, 3);
}

static void
number_outside_min_max_is_an_error (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--liveness", "0", NULL), CMQ_OPTIONS_ERROR);
    assert_string_equal (fx->err,
                         "cartmq-test: --liveness: out of range (1..100)\n");
    assert_int_equal (s_parse (fx, "--liveness", "101", NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "out of range", NULL);
    assert_int_equal (s_parse (fx, "--liveness", "100", NULL), CMQ_OPTIONS_OK);
    assert_int_equal (fx->liveness, 100);
}

static void
help_prints_every_option_and_returns_exit (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--help", "--bogus", NULL),
                      CMQ_OPTIONS_EXIT);
    assert_string_equal (fx->err, "");
    assert_non_null (strstr (fx->out, "Usage: cartmq-test [OPTIONS] [FILE]\n"));
    const char *expected[] = { "  --verbose ",     "  --liveness N ",
                               "  --redis URL ",   "  --bind ENDPOINT ",
                               "  --config FILE ", "  --help ",
                               "  --version ",     "heartbeats to miss\n" };
    for (size_t index = 0; index < 8; index++)
        if (!strstr (fx->out, expected[index]))
            fail_msg ("help lacks \"%s\":\n%s", expected[index], fx->out);
}

static void
version_prints_program_and_version (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--version", NULL), CMQ_OPTIONS_EXIT);
    assert_string_equal (fx->out, "cartmq-test " CMQ_VERSION_STRING "\n");
    assert_string_equal (fx->err, "");
}

static void
config_flag_is_unknown_without_a_section (void **state)
{
    fixture_t *fx = *state;
    fx->spec.section = NULL;
    assert_int_equal (s_parse (fx, "--config", "x.cfg", NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "unknown option --config", NULL);
    assert_int_equal (s_parse (fx, "--help", NULL), CMQ_OPTIONS_EXIT);
    assert_null (strstr (fx->out, "--config"));
}

static void
config_file_values_are_applied (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "#  cartmq\n"
                        "broker\n"
                        "    verbose = yes\n"
                        "    liveness = 9        #  a comment\n"
                        "    redis = \"unix:///run/redis.sock\"\n"
                        "    bind = \"tcp://a:1, tcp://b:2\"\n"
                        "    bind = tcp://c:3\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_OK);
    assert_string_equal (fx->err, "");
    assert_true (fx->verbose);
    assert_int_equal (fx->liveness, 9);
    assert_string_equal (fx->redis, "unix:///run/redis.sock");
    assert_int_equal (zlist_size (fx->bind), 3);
    assert_string_equal (zlist_first (fx->bind), "tcp://a:1");
    assert_string_equal (zlist_next (fx->bind), "tcp://b:2");
    assert_string_equal (zlist_next (fx->bind), "tcp://c:3");
}

static void
command_line_flag_overrides_file_wherever_it_stands (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "broker\n"
                        "    liveness = 9\n"
                        "    redis = redis://file\n"
                        "    bind = \"tcp://a:1,tcp://b:2\"\n");
    assert_int_equal (s_parse (fx, "--liveness", "4", "--bind", "tcp://c:3",
                               "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (fx->liveness, 4);
    assert_string_equal (fx->redis, "redis://file");
    //  The command line's list replaces the file's
    assert_int_equal (zlist_size (fx->bind), 1);
    assert_string_equal (zlist_first (fx->bind), "tcp://c:3");
}

static void
file_replaces_a_default_list (void **state)
{
    fixture_t *fx = *state;
    fx->bind = zlist_new ();
    zlist_autofree (fx->bind);
    zlist_append (fx->bind, "tcp://default:1");
    s_write_config (fx, "broker\n    bind = tcp://file:1\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (zlist_size (fx->bind), 1);
    assert_string_equal (zlist_first (fx->bind), "tcp://file:1");
}

static void
unknown_key_in_file_names_file_line_and_key (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "broker\n"
                        "    liveness = 9\n"
                        "\n"
                        "    # heartbeat next\n"
                        "    heartbeat-ms = 2500\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    char expected[128];
    snprintf (expected, sizeof (expected), "%s:5: heartbeat-ms: unknown key",
              fx->config_path);
    s_assert_one_error (fx, expected, NULL);
}

static void
line_of_a_repeated_key_is_the_bad_one (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "worker\n"
                        "    liveness = x\n"
                        "broker\n"
                        "    liveness = 5\n"
                        "    liveness = 500\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, ":5: liveness: out of range (1..100)", NULL);
}

static void
bad_values_in_file_are_errors_naming_the_key (void **state)
{
    fixture_t *fx = *state;
    const char *files[] = { "broker\n    liveness = many\n",
                            "broker\n    verbose = maybe\n",
                            "broker\n    redis = \"\"\n",
                            "broker\n    bind = \" , \"\n" };
    const char *reasons[] = { ":2: liveness: not a number",
                              ":2: verbose: not a boolean",
                              ":2: redis: empty value",
                              ":2: bind: empty value" };
    for (size_t index = 0; index < 4; index++) {
        s_write_config (fx, files[index]);
        assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                          CMQ_OPTIONS_ERROR);
        s_assert_one_error (fx, fx->config_path, reasons[index]);
        unlink (fx->config_path);
        free (fx->config_path);
        fx->config_path = NULL;
    }
}

static void
false_in_file_clears_a_flag (void **state)
{
    fixture_t *fx = *state;
    fx->verbose = true;
    s_write_config (fx, "broker\n    verbose = False\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_OK);
    assert_false (fx->verbose);
}

static void
missing_config_file_is_an_error_naming_it (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--config", "/nonexistent/cartmq.cfg", NULL),
                      CMQ_OPTIONS_ERROR);
    assert_string_equal (fx->err, "cartmq-test: /nonexistent/cartmq.cfg: No "
                                  "such file or directory\n");
}

static void
directory_as_config_file_is_an_error (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--config=/tmp", NULL), CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "/tmp: ", NULL);
}

static void
other_sections_in_file_are_ignored (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "worker\n"
                        "    connect = tcp://x:1\n"
                        "    concurrency = 16\n"
                        "    deep\n"
                        "        nested = 1\n"
                        "broker\n"
                        "    liveness = 8\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (fx->liveness, 8);
    assert_string_equal (fx->err, "");
}

static void
subsection_under_our_section_is_an_unknown_key (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "broker\n"
                        "    bind = tcp://a:1\n"
                        "        extra = 1\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, ":3: bind/extra: unknown key", NULL);
}

static void
config_key_inside_a_file_is_refused (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "broker\n    config = other.cfg\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, ":2: config: not allowed", NULL);
}

static void
zpl_syntax_error_gives_line_on_stderr_and_nothing_on_stdout (void **state)
{
    fixture_t *fx = *state;
    s_write_config (fx, "broker\n"
                        "    liveness = 9\n"
                        "   redis = x\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, ":3: indent", NULL);

    unlink (fx->config_path);
    free (fx->config_path);
    s_write_config (fx, "broker\n    redis = \"unclosed\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, ":2: missing closing quote", NULL);
}

static void
overlong_config_line_is_refused (void **state)
{
    fixture_t *fx = *state;
    char text[1200] = "broker\n    redis = ";
    memset (text + strlen (text), 'x', 1100);
    s_write_config (fx, text);
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, ":2: line longer than 1024", NULL);
}

static void
stop_at_positional_leaves_the_command_unparsed (void **state)
{
    fixture_t *fx = *state;
    fx->spec.stop_at_positional = true;
    assert_int_equal (
      s_parse (fx, "--liveness", "5", "add", "--quantity", "2", NULL),
      CMQ_OPTIONS_OK);
    assert_int_equal (fx->next_arg, 3);
    assert_int_equal (fx->positional_count, 0);
    assert_int_equal (fx->liveness, 5);
    assert_string_equal (fx->err, "");

    assert_int_equal (s_parse (fx, "--verbose", NULL), CMQ_OPTIONS_OK);
    assert_int_equal (fx->next_arg, 2);  //  argc: no command
    assert_int_equal (s_parse (fx, "--", "--weird", NULL), CMQ_OPTIONS_OK);
    assert_int_equal (fx->next_arg, 2);
}

static void
positionals_are_collected_up_to_the_maximum (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "one", "--verbose", "-", NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (fx->positional_count, 2);
    assert_string_equal (fx->positional[0], "one");
    assert_string_equal (fx->positional[1], "-");
    assert_true (fx->verbose);

    assert_int_equal (s_parse (fx, "a", "b", "c", NULL), CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "unexpected argument c", NULL);
}

static void
double_dash_makes_the_rest_positional (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--verbose", "--", "--liveness", NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (fx->positional_count, 1);
    assert_string_equal (fx->positional[0], "--liveness");
    assert_int_equal (fx->liveness, 3);
}

static void
free_releases_and_nulls_strings_and_lists (void **state)
{
    fixture_t *fx = *state;
    assert_int_equal (s_parse (fx, "--redis", "r", "--bind", "b", NULL),
                      CMQ_OPTIONS_OK);
    cmq_options_free (fx->table);
    assert_null (fx->redis);
    assert_null (fx->bind);
    cmq_options_free (fx->table);  //  safe twice
}

//  Endpoints: the form is checked before libzmq sees it (§2)

static void
endpoint_check_accepts_every_transport_and_any_port (void **state)
{
    (void) state;
    const char *good[] = { "tcp://127.0.0.1:5555",
                           "tcp://*:*",
                           "tcp://0.0.0.0:0",
                           "tcp://[::1]:65535",
                           "tcp://eth0:1",
                           "ws://0.0.0.0:8080/mdp",
                           "wss://host:443",
                           "ipc:///tmp/cartmq.sock",
                           "inproc://broker",
                           "ws://127.0.0.1:*/x",
                           NULL };
    char reason[256];
    for (size_t index = 0; good[index]; index++)
        if (cmq_endpoint_check (good[index], reason, sizeof (reason)))
            fail_msg ("%s refused: %s", good[index], reason);
}

static void
endpoint_check_refuses_garbage_and_ports_libzmq_would_wrap (void **state)
{
    (void) state;
    const char *bad[] = { "garbage",
                          "",
                          "tcp://",
                          "tcp:/127.0.0.1:5555",
                          "smtp://127.0.0.1:25",
                          "tcp://127.0.0.1",
                          "tcp://127.0.0.1:70000",
                          "tcp://127.0.0.1:65536",
                          "tcp://127.0.0.1:123456",
                          "tcp://127.0.0.1:-1",
                          "tcp://127.0.0.1:55a",
                          "tcp://127.0.0.1:",
                          "tcp://:5555",
                          "ws://0.0.0.0:99999/path",
                          NULL };
    char reason[256];
    for (size_t index = 0; bad[index]; index++)
        if (cmq_endpoint_check (bad[index], reason, sizeof (reason)) == 0)
            fail_msg ("%s accepted", bad[index]);
}

static void
bad_bind_flag_is_an_error_naming_the_flag (void **state)
{
    fixture_t *fx = *state;
    fx->table[3].type = CMQ_OPT_ENDPOINT_LIST;
    assert_int_equal (s_parse (fx, "--bind", "garbage", NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "--bind", "garbage");
    assert_int_equal (s_parse (fx, "--bind", "tcp://127.0.0.1:70000", NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "--bind", "70000");
}

static void
bad_bind_in_file_is_an_error_naming_the_key (void **state)
{
    fixture_t *fx = *state;
    fx->table[3].type = CMQ_OPT_ENDPOINT_LIST;
    s_write_config (fx, "broker\n    bind = \"tcp://127.0.0.1:5555, "
                        "garbage\"\n");
    assert_int_equal (s_parse (fx, "--config", fx->config_path, NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, ":2: bind: ", "garbage");
    //  A good list is kept whole
    assert_int_equal (
      s_parse (fx, "--bind", "tcp://*:1", "--bind", "ws://0.0.0.0:2/x", NULL),
      CMQ_OPTIONS_OK);
    assert_int_equal (zlist_size (fx->bind), 2);
}

static void
endpoint_list_flag_splits_at_commas_and_checks_each (void **state)
{
    fixture_t *fx = *state;
    fx->table[3].type = CMQ_OPT_ENDPOINT_LIST;
    assert_int_equal (s_parse (fx, "--bind",
                               "tcp://127.0.0.1:1,tcp://127.0.0.1:2", "--bind",
                               "ipc:///tmp/x", NULL),
                      CMQ_OPTIONS_OK);
    assert_int_equal (zlist_size (fx->bind), 3);
    assert_string_equal (zlist_first (fx->bind), "tcp://127.0.0.1:1");
    assert_string_equal (zlist_next (fx->bind), "tcp://127.0.0.1:2");
    assert_string_equal (zlist_next (fx->bind), "ipc:///tmp/x");
    //  Each piece is checked on its own, and nothing but commas is empty
    assert_int_equal (s_parse (fx, "--bind", "tcp://127.0.0.1:1,garbage", NULL),
                      CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "--bind", "garbage");
    assert_int_equal (s_parse (fx, "--bind", ",", NULL), CMQ_OPTIONS_ERROR);
    s_assert_one_error (fx, "--bind", "empty value");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
        T (flags_of_every_type_are_stored),
        T (equals_form_sets_the_value_and_keeps_later_equals_signs),
        T (negative_number_is_a_value_not_a_flag),
        T (later_string_replaces_earlier_one),
        T (repeated_list_flag_appends_in_order),
        T (unknown_flag_is_one_error_line_naming_it),
        T (single_dash_flag_is_unknown),
        T (flag_without_its_value_is_an_error),
        T (boolean_flag_given_a_value_is_an_error),
        T (number_that_does_not_parse_is_an_error),
        T (number_outside_min_max_is_an_error),
        T (help_prints_every_option_and_returns_exit),
        T (version_prints_program_and_version),
        T (config_flag_is_unknown_without_a_section),
        T (config_file_values_are_applied),
        T (command_line_flag_overrides_file_wherever_it_stands),
        T (file_replaces_a_default_list),
        T (unknown_key_in_file_names_file_line_and_key),
        T (line_of_a_repeated_key_is_the_bad_one),
        T (bad_values_in_file_are_errors_naming_the_key),
        T (false_in_file_clears_a_flag),
        T (missing_config_file_is_an_error_naming_it),
        T (directory_as_config_file_is_an_error),
        T (other_sections_in_file_are_ignored),
        T (subsection_under_our_section_is_an_unknown_key),
        T (config_key_inside_a_file_is_refused),
        T (zpl_syntax_error_gives_line_on_stderr_and_nothing_on_stdout),
        T (overlong_config_line_is_refused),
        T (stop_at_positional_leaves_the_command_unparsed),
        T (positionals_are_collected_up_to_the_maximum),
        T (double_dash_makes_the_rest_positional),
        T (free_releases_and_nulls_strings_and_lists),
        T (endpoint_check_accepts_every_transport_and_any_port),
        T (endpoint_check_refuses_garbage_and_ports_libzmq_would_wrap),
        T (bad_bind_flag_is_an_error_naming_the_flag),
        T (endpoint_list_flag_splits_at_commas_and_checks_each),
        T (bad_bind_in_file_is_an_error_naming_the_key),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
