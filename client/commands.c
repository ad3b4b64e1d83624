//  commands.c - the cartmq program: global flags, dispatch, shared helpers
//
//  The commands themselves live by concern: cart_commands.c, mmi_commands.c
//  and bench.c; keygen, which needs no broker, is here.

#include "batch.h"
#include "bench.h"
#include "call_command.h"
#include "cart_commands.h"
#include "commands.h"
#include "json_print.h"
#include "metrics_command.h"
#include "mmi_commands.h"

#include "cartmq/curve.h"
#include "cartmq/log.h"

#include <czmq.h>
#include <inttypes.h>
#include <string.h>

//  Room for a command's own flags, and for the global ones after them.
#define S_MAX_COMMAND_FLAGS 8
#define S_GLOBAL_SLOTS      7

#define S_USAGE                                                                \
    "[--connect ENDPOINT[,ENDPOINT...]]... [--timeout-ms N] [--retries N]\n"   \
    "       [--curve-server PUBLIC_CERTFILE --curve-cert CERTFILE] "           \
    "[--verbose] COMMAND ...\n"                                                \
    "\n"                                                                       \
    "Commands (each answers --help; global flags may also follow them):\n"     \
    "  get USER\n"                                                             \
    "  add USER ITEM_ID --name NAME --quantity Q --price P "                   \
    "[--request-id ID]\n"                                                      \
    "  remove USER ITEM_ID [--request-id ID]\n"                                \
    "  update USER ITEM_ID --quantity Q [--request-id ID]\n"                   \
    "  clear USER [--request-id ID]\n"                                         \
    "  services [--json]                 services with workers and queues\n"   \
    "  stats [--json|--prometheus] [--watch SECONDS]  broker statistics\n"     \
    "  keygen NAME                       write certs NAME and NAME_secret\n"   \
    "  batch                             cart commands from stdin, one a "     \
    "line\n"                                                                   \
    "  bench [--service S] ...           load test (see bench --help)\n"       \
    "  call SERVICE [BODY_JSON]          any service; the reply as JSON\n"     \
    "  metrics --listen HOST:PORT        serve /metrics for Prometheus\n"      \
    "\n"                                                                       \
    "Cart commands print the reply as one line of JSON. Exit status: 0 on\n"   \
    "status 200, 1 on another status, 2 on bad usage, 3 when no reply came."

typedef int (s_run_fn) (commands_globals_t *globals, int argc, char **argv);

static void
s_print_usage (FILE *stream)
{
    fprintf (stream, "Usage: cartmq %s\n", S_USAGE);
}

//  Room for the escaped form of a peer string shown on a terminal; a
//  longer one is cut and ends in "...".
#define S_MAX_ESCAPED 4096

void
commands_print_safe (FILE *stream, const char *data, size_t size)
{
    char escaped[S_MAX_ESCAPED];
    fputs (cmq_log_escape (data, size, escaped, sizeof (escaped)), stream);
}

int
commands_safe_width (const char *data, size_t size)
{
    char escaped[S_MAX_ESCAPED];
    return (int) strlen (
      cmq_log_escape (data, size, escaped, sizeof (escaped)));
}

//  Fills entries (seven slots: six flags and the terminator) with the
//  global flags. The same table serves before the command and after it,
//  so `cartmq get U --connect E` works as well as `cartmq --connect E get U`.
static void
s_global_options (commands_globals_t *globals, cmq_option_t *entries)
{
    cmq_option_t global[] = {
        { "connect", CMQ_OPT_ENDPOINT_LIST, "ENDPOINT",
          "broker endpoint, or a comma list of brokers "
          "(default " CMQ_DEFAULT_ENDPOINT ")",
          0, 0, &globals->endpoints },
        { "timeout-ms", CMQ_OPT_INT, "N", "wait per attempt (default 2500)", 1,
          INT32_MAX, &globals->timeout_ms },
        { "retries", CMQ_OPT_INT, "N",
          "resends after the first attempt (default 2)", 0, 1000,
          &globals->retries },
        { "curve-server", CMQ_OPT_STRING, "PUBLIC_CERTFILE",
          "the broker's public certificate (CURVE)", 0, 0,
          &globals->curve_server },
        { "curve-cert", CMQ_OPT_STRING, "CERTFILE",
          "our secret certificate, NAME_secret (CURVE)", 0, 0,
          &globals->curve_cert },
        { "verbose", CMQ_OPT_FLAG, NULL,
          "after each call, its attempts and brokers on stderr", 0, 0,
          &globals->is_verbose },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    assert (sizeof (global) == S_GLOBAL_SLOTS * sizeof (cmq_option_t));
    memcpy (entries, global, sizeof (global));
}

int
commands_parse (commands_globals_t *globals, const char *command,
                const char *usage, const cmq_option_t *table, int argc,
                char **argv, const char **positional, int wanted)
{
    int count = 0;
    return commands_parse_some (globals, command, usage, table, argc, argv,
                                positional, wanted, wanted, &count);
}

int
commands_parse_some (commands_globals_t *globals, const char *command,
                     const char *usage, const cmq_option_t *table, int argc,
                     char **argv, const char **positional, int least, int most,
                     int *count_p)
{
    cmq_option_t combined[S_MAX_COMMAND_FLAGS + S_GLOBAL_SLOTS];
    size_t size = 0;
    while (table[size].name) {
        assert (size < S_MAX_COMMAND_FLAGS);
        combined[size] = table[size];
        size++;
    }
    s_global_options (globals, combined + size);

    char program[64];
    snprintf (program, sizeof (program), "cartmq %s", command);
    cmq_options_spec_t spec = { program, usage, NULL, false };
    int next_arg = argc;
    cmq_options_result_t result = cmq_options_parse (
      &spec, combined, argc, argv, positional, most, count_p, &next_arg);
    if (result == CMQ_OPTIONS_EXIT)
        return COMMANDS_EXIT_OK;
    if (result != CMQ_OPTIONS_OK)
        return COMMANDS_EXIT_USAGE;
    if (*count_p < least) {
        fprintf (stderr, "%s: expected %s\n", program, usage);
        return COMMANDS_EXIT_USAGE;
    }
    return COMMANDS_GO;
}

int
commands_require (const char *command, const char *flag, bool is_given)
{
    if (is_given)
        return COMMANDS_GO;
    fprintf (stderr, "cartmq %s: --%s is required\n", command, flag);
    return COMMANDS_EXIT_USAGE;
}

void
commands_client_config (const commands_globals_t *globals,
                        cmq_client_config_t *config, const char **list)
{
    cmq_client_config_defaults (config);
    size_t count = 0;
    if (globals->endpoints)
        for (const char *endpoint =
               (const char *) zlist_first (globals->endpoints);
             endpoint && count < CMQ_CLIENT_MAX_ENDPOINTS;
             endpoint = (const char *) zlist_next (globals->endpoints))
            list[count++] = endpoint;
    config->endpoints = list;
    config->endpoint_count = count;
    config->timeout_ms = (int) globals->timeout_ms;
    config->retries = (int) globals->retries;
    config->curve_server = globals->curve_server;
    config->curve_cert = globals->curve_cert;
}

static cmq_client_t *
s_client_new (const cmq_client_config_t *config)
{
    char error[CMQ_ERRSTR_SIZE];
    cmq_client_t *client = cmq_client_new (config, error, sizeof (error));
    if (!client)
        fprintf (stderr, "cartmq: %s\n", error);
    return client;
}

cmq_client_t *
commands_client_new (const commands_globals_t *globals)
{
    if (!globals->curve_server != !globals->curve_cert) {
        fprintf (stderr,
                 "cartmq: --curve-server and --curve-cert go together\n");
        return NULL;
    }
    const char *list[CMQ_CLIENT_MAX_ENDPOINTS];
    cmq_client_config_t config;
    commands_client_config (globals, &config, list);
    if (globals->endpoints &&
        zlist_size (globals->endpoints) > CMQ_CLIENT_MAX_ENDPOINTS) {
        fprintf (stderr, "cartmq: more than %d endpoints\n",
                 CMQ_CLIENT_MAX_ENDPOINTS);
        return NULL;
    }
    return s_client_new (&config);
}

cmq_client_t *
commands_client_when_go (const commands_globals_t *globals, int *rc)
{
    if (*rc != COMMANDS_GO)
        return NULL;
    cmq_client_t *client = commands_client_new (globals);
    if (!client)
        *rc = COMMANDS_EXIT_USAGE;
    return client;
}

cmq_client_t *
commands_client_one (const commands_globals_t *globals, cmq_client_t *client,
                     size_t index)
{
    const char *list[CMQ_CLIENT_MAX_ENDPOINTS];
    cmq_client_config_t config;
    commands_client_config (globals, &config, list);
    config.endpoints = NULL;
    config.endpoint_count = 0;
    config.endpoint = cmq_client_endpoint (client, index);
    return s_client_new (&config);
}

void
commands_report_call (const commands_globals_t *globals, cmq_client_t *client,
                      int64_t started_ms)
{
    if (!globals->is_verbose)
        return;
    size_t brokers[CMQ_CLIENT_LAST_MAX];
    size_t attempts =
      cmq_client_last_call (client, brokers, CMQ_CLIENT_LAST_MAX);
    fprintf (stderr, "cartmq: call attempts=%zu brokers=", attempts);
    for (size_t index = 0; index < attempts && index < CMQ_CLIENT_LAST_MAX;
         index++) {
        const char *endpoint = cmq_client_endpoint (client, brokers[index]);
        if (index)
            fputc (',', stderr);
        commands_print_safe (stderr, endpoint, strlen (endpoint));
    }
    fprintf (stderr, " ms=%" PRId64 "\n", zclock_mono () - started_ms);
}

void
commands_print_json_string (FILE *out, const char *data, size_t size)
{
    msgpack_object object;
    object.type = MSGPACK_OBJECT_STR;
    object.via.str.ptr = data;
    object.via.str.size = (uint32_t) size;
    char *json = json_print_object (&object, NULL);
    fputs (json ? json : "\"\"", out);
    free (json);
}

void
commands_print_json_error (FILE *out, const char *text)
{
    fputs ("{\"error\":", out);
    commands_print_json_string (out, text, strlen (text));
    fputs ("}\n", out);
    fflush (out);
}

int
commands_no_reply (cmq_client_t *client, const char *request_id)
{
    if (zsys_interrupted)
        return COMMANDS_EXIT_OK;
    fprintf (stderr, "cartmq: %s", cmq_client_errstr (client));
    if (request_id) {
        fputs ("; outcome unknown, retry safely with --request-id ", stderr);
        commands_print_safe (stderr, request_id, strlen (request_id));
    }
    fputc ('\n', stderr);
    return COMMANDS_EXIT_NO_REPLY;
}

//  ---------------------------------------------------------------------
//  Local commands

static int
s_run_keygen (commands_globals_t *globals, int argc, char **argv)
{
    (void) globals;
    cmq_option_t table[] = { { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = commands_parse (globals, "keygen", "NAME", table, argc, argv,
                             positional, 1);
    if (rc == COMMANDS_GO) {
        char error[256] = "";
        if (cmq_curve_keygen (positional[0], error, sizeof (error)) == 0) {
            printf ("wrote %s (public) and %s_secret (secret)\n", positional[0],
                    positional[0]);
            rc = COMMANDS_EXIT_OK;
        } else {
            fprintf (stderr, "cartmq keygen: %s\n",
                     error[0] ? error : "failed");
            rc = COMMANDS_EXIT_STATUS;
        }
    }
    cmq_options_free (table);
    return rc;
}

static int
s_run_bench (commands_globals_t *globals, int argc, char **argv)
{
    bench_globals_t bench = { globals->endpoints, globals->curve_server,
                              globals->curve_cert, globals->timeout_ms };
    return bench_main (&bench, argc, argv);
}

//  ---------------------------------------------------------------------
//  The program

static const struct {
    const char *name;
    s_run_fn *run;
} s_commands[] = {
    { "get", cart_commands_main },    { "add", cart_commands_main },
    { "remove", cart_commands_main }, { "update", cart_commands_main },
    { "clear", cart_commands_main },  { "services", mmi_commands_services },
    { "stats", mmi_commands_stats },  { "batch", batch_main },
    { "keygen", s_run_keygen },       { "bench", s_run_bench },
    { "call", call_command_run },     { "metrics", metrics_command_run }
};

static s_run_fn *
s_command_lookup (const char *name)
{
    for (size_t index = 0; index < sizeof (s_commands) / sizeof (s_commands[0]);
         index++)
        if (streq (name, s_commands[index].name))
            return s_commands[index].run;
    return NULL;
}

//  Parses the global flags up to the command. Returns COMMANDS_GO with
//  *command_arg the command's index, or the exit code.
static int
s_parse_globals (cmq_option_t *table, int argc, char **argv, int *command_arg)
{
    cmq_options_spec_t spec = { "cartmq", S_USAGE, NULL, true };
    const char *positional[1];
    int count = 0;
    cmq_options_result_t result = cmq_options_parse (
      &spec, table, argc, argv, positional, 1, &count, command_arg);
    if (result == CMQ_OPTIONS_EXIT)
        return COMMANDS_EXIT_OK;
    if (result != CMQ_OPTIONS_OK)
        return COMMANDS_EXIT_USAGE;
    if (*command_arg >= argc) {
        fprintf (stderr, "cartmq: no command given\n");
        s_print_usage (stderr);
        return COMMANDS_EXIT_USAGE;
    }
    return COMMANDS_GO;
}

int
commands_main (int argc, char **argv)
{
    commands_globals_t globals = {
        NULL, false, CMQ_DEFAULT_TIMEOUT_MS, CMQ_DEFAULT_RETRIES, NULL, NULL
    };
    cmq_option_t table[S_GLOBAL_SLOTS];
    s_global_options (&globals, table);
    int command_arg = argc;
    int rc = s_parse_globals (table, argc, argv, &command_arg);
    if (rc == COMMANDS_GO) {
        s_run_fn *run = s_command_lookup (argv[command_arg]);
        if (run)
            rc = run (&globals, argc - command_arg, argv + command_arg);
        else {
            fprintf (stderr, "cartmq: unknown command '");
            commands_print_safe (stderr, argv[command_arg],
                                 strlen (argv[command_arg]));
            fprintf (stderr, "' (see cartmq --help)\n");
            rc = COMMANDS_EXIT_USAGE;
        }
    }
    cmq_options_free (table);
    return rc;
}
