//  mmi_commands.c - services and stats: the broker's MMI answers shown
//
//  mmi.services as a table (or its array as JSON), mmi.stats as totals
//  and a table of services (or its map as JSON), once or every --watch
//  seconds. Peer strings reach the terminal escaped (commands_print_safe).

#include "json_print.h"
#include "metrics_command.h"
#include "mmi_commands.h"

#include "cartmq/msgpack_scan.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Prints any value as a table cell: numbers and strings plainly,
//  containers as JSON, a missing value as "-".
static void
s_print_cell (FILE *stream, const msgpack_object *object)
{
    if (!object || object->type == MSGPACK_OBJECT_NIL) {
        fputs ("-", stream);
        return;
    }
    if (object->type == MSGPACK_OBJECT_STR) {
        commands_print_safe (stream, object->via.str.ptr, object->via.str.size);
        return;
    }
    char *json = json_print_object (object, NULL);
    fputs (json ? json : "?", stream);
    free (json);
}

static int
s_cell_width (const msgpack_object *object)
{
    if (object && object->type == MSGPACK_OBJECT_STR)
        return commands_safe_width (object->via.str.ptr, object->via.str.size);
    char *json = object ? json_print_object (object, NULL) : NULL;
    int width = json ? (int) strlen (json) : 1;
    free (json);
    return width;
}

//  Prints a cell right-aligned in width columns, or left-aligned when
//  width is negative.
static void
s_print_aligned (FILE *stream, const msgpack_object *object, int width)
{
    int pad = abs (width) - s_cell_width (object);
    if (width < 0)
        s_print_cell (stream, object);
    for (int index = 0; index < pad; index++)
        fputc (' ', stream);
    if (width >= 0)
        s_print_cell (stream, object);
}

//  Prints an object as one line of JSON (is_line), or as a value inside
//  a bigger object: no newline, "null" when it cannot be printed.
static void
s_print_json (const msgpack_object *object, bool is_line)
{
    char *json = json_print_object (object, NULL);
    if (json)
        printf (is_line ? "%s\n" : "%s", json);
    else {
        fputs (is_line ? "" : "null", stdout);
        fprintf (stderr, "cartmq: reply is nested too deeply to print\n");
    }
    free (json);
}

//  A table of maps: one row per map, one column per key; the first
//  column is left-aligned, the others right-aligned.
static void
s_print_table (const msgpack_object *rows, const char *const *keys,
               const char *const *titles, int columns)
{
    int widths[8];
    assert (columns <= 8);
    for (int column = 0; column < columns; column++) {
        widths[column] = (int) strlen (titles[column]);
        for (uint32_t row = 0; row < rows->via.array.size; row++) {
            int width = s_cell_width (
              cmq_msgpack_map_get (&rows->via.array.ptr[row], keys[column]));
            if (width > widths[column])
                widths[column] = width;
        }
    }
    for (int column = 0; column < columns; column++)
        printf (column ? "  %*s" : "%-*s", widths[column], titles[column]);
    printf ("\n");
    for (uint32_t row = 0; row < rows->via.array.size; row++) {
        for (int column = 0; column < columns; column++) {
            if (column)
                printf ("  ");
            s_print_aligned (
              stdout,
              cmq_msgpack_map_get (&rows->via.array.ptr[row], keys[column]),
              column ? widths[column] : -widths[column]);
        }
        printf ("\n");
    }
}

//  Calls an mmi.* service and unpacks the reply, which must be of the
//  given type. Returns COMMANDS_GO, or the exit code. The unpacked strings
//  point into *reply_p, which the caller frees after destroying *unpacked.
static int
s_mmi_call (const commands_globals_t *globals, cmq_client_t *client,
            const char *service, msgpack_object_type type,
            msgpack_unpacked *unpacked, void **reply_p)
{
    msgpack_unpacked_init (unpacked);
    size_t reply_size = 0;
    int64_t started_ms = zclock_mono ();
    int rc =
      cmq_client_call_bytes (client, service, "", 0, reply_p, &reply_size);
    commands_report_call (globals, client, started_ms);
    if (rc)
        return commands_no_reply (client, NULL);
    rc = COMMANDS_GO;
    if (json_print_unpack (*reply_p, reply_size, unpacked) != 0 ||
        unpacked->data.type != type) {
        fprintf (
          stderr, "cartmq: %s: reply is not a valid msgpack %s (%zu bytes)\n",
          service, type == MSGPACK_OBJECT_MAP ? "map" : "array", reply_size);
        rc = COMMANDS_EXIT_STATUS;
    }
    return rc;
}

//  Shows one broker's answer: as a table, or as JSON (one line when
//  is_line, else a value with no newline).
typedef void (s_show_fn) (const msgpack_object *object, bool is_json,
                          bool is_line);

//  What to ask each broker and how to show its answer.
typedef struct {
    const char *service;       //  mmi.services, mmi.stats
    msgpack_object_type type;  //  what the answer must be
    bool is_json;              //  --json
    s_show_fn *show;
} s_query_t;

//  Asks one broker, shows its answer; returns COMMANDS_GO or the exit
//  code. A JSON answer is a line of its own when is_line.
static int
s_query_one (const commands_globals_t *globals, cmq_client_t *client,
             const s_query_t *query, bool is_line)
{
    msgpack_unpacked unpacked;
    void *reply = NULL;
    int rc = s_mmi_call (globals, client, query->service, query->type,
                         &unpacked, &reply);
    if (rc == COMMANDS_GO)
        query->show (&unpacked.data, query->is_json, is_line);
    msgpack_unpacked_destroy (&unpacked);
    free (reply);
    return rc;
}

//  Ranks exit codes: no reply is the worst, then an unreadable answer.
static int
s_worse (int rc, int other)
{
    if (rc == COMMANDS_EXIT_NO_REPLY || other == COMMANDS_EXIT_NO_REPLY)
        return COMMANDS_EXIT_NO_REPLY;
    return rc != COMMANDS_GO ? rc : other;
}

//  Several brokers (contract §7): each asked on its own, with the usual
//  timeout and retries on that broker only, and shown under its endpoint:
//  a header line per broker, or one JSON object keyed by endpoint whose
//  value is the broker's answer or {"error": ...}.
static int
s_query_each (const commands_globals_t *globals, cmq_client_t *client,
              const s_query_t *query)
{
    int rc = COMMANDS_GO;
    size_t count = cmq_client_endpoint_count (client);
    if (query->is_json)
        fputc ('{', stdout);
    for (size_t index = 0; index < count && !zsys_interrupted; index++) {
        const char *endpoint = cmq_client_endpoint (client, index);
        if (query->is_json) {
            printf (index ? "," : "");
            commands_print_json_string (stdout, endpoint, strlen (endpoint));
            fputc (':', stdout);
        } else {
            printf ("%sbroker ", index ? "\n" : "");
            commands_print_safe (stdout, endpoint, strlen (endpoint));
            printf ("\n");
        }
        cmq_client_t *one = commands_client_one (globals, client, index);
        int one_rc =
          one ? s_query_one (globals, one, query, false) : COMMANDS_EXIT_USAGE;
        if (one_rc != COMMANDS_GO) {
            const char *error = one_rc == COMMANDS_EXIT_NO_REPLY
                                  ? cmq_client_errstr (one)
                                  : "reply unreadable";
            if (query->is_json) {
                fputs ("{\"error\":", stdout);
                commands_print_json_string (stdout, error, strlen (error));
                fputc ('}', stdout);
            } else
                printf ("(%s)\n", error);
        }
        cmq_client_destroy (&one);
        rc = s_worse (rc, one_rc);
    }
    if (query->is_json)
        fputs ("}\n", stdout);
    fflush (stdout);
    return rc;
}

//  Asks the one broker, or each of several. Returns COMMANDS_GO or the
//  exit code.
static int
s_query (const commands_globals_t *globals, cmq_client_t *client,
         const s_query_t *query)
{
    if (cmq_client_endpoint_count (client) > 1)
        return s_query_each (globals, client, query);
    return s_query_one (globals, client, query, true);
}

static void
s_show_services (const msgpack_object *services, bool is_json, bool is_line)
{
    static const char *const keys[] = { "name", "workers", "idle", "queued" };
    static const char *const titles[] = { "NAME", "WORKERS", "IDLE", "QUEUED" };
    if (is_json)
        s_print_json (services, is_line);
    else
        s_print_table (services, keys, titles, 4);
}

int
mmi_commands_services (commands_globals_t *globals, int argc, char **argv)
{
    bool is_json = false;
    cmq_option_t table[] = { { "json", CMQ_OPT_FLAG, NULL,
                               "print the reply as one line of JSON", 0, 0,
                               &is_json },
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = commands_parse (globals, "services", "[--json]", table, argc, argv,
                             positional, 0);
    cmq_client_t *client = commands_client_when_go (globals, &rc);
    if (rc == COMMANDS_GO) {
        s_query_t query = { "mmi.services", MSGPACK_OBJECT_ARRAY, is_json,
                            s_show_services };
        rc = s_query (globals, client, &query);
        if (rc == COMMANDS_GO)
            rc = COMMANDS_EXIT_OK;
    }
    cmq_client_destroy (&client);
    cmq_options_free (table);
    return rc;
}

//  Broker totals, the known keys first in the contract's order, then any
//  other key the broker adds; `dropped` as reason=count pairs.
static void
s_print_stats (const msgpack_object *stats)
{
    static const char *const known[] = { "uptime_s",     "requests", "replies",
                                         "redispatched", "dropped",  "invalid",
                                         "workers" };
    size_t known_count = sizeof (known) / sizeof (known[0]);
    for (size_t index = 0; index < known_count; index++) {
        const msgpack_object *value = cmq_msgpack_map_get (stats, known[index]);
        printf ("%-14s", known[index]);
        if (value && value->type == MSGPACK_OBJECT_MAP) {
            for (uint32_t pair = 0; pair < value->via.map.size; pair++) {
                printf (pair ? " " : "");
                s_print_cell (stdout, &value->via.map.ptr[pair].key);
                printf ("=");
                s_print_cell (stdout, &value->via.map.ptr[pair].val);
            }
        } else
            s_print_cell (stdout, value);
        printf ("\n");
    }
    for (uint32_t pair = 0; pair < stats->via.map.size; pair++) {
        const msgpack_object *key = &stats->via.map.ptr[pair].key;
        bool is_known = cmq_msgpack_str_is (key, "services");
        for (size_t index = 0; index < known_count && !is_known; index++)
            is_known = cmq_msgpack_str_is (key, known[index]);
        if (is_known)
            continue;
        s_print_aligned (stdout, key, -14);
        s_print_cell (stdout, &stats->via.map.ptr[pair].val);
        printf ("\n");
    }
    const msgpack_object *services = cmq_msgpack_map_get (stats, "services");
    if (services && services->type == MSGPACK_OBJECT_ARRAY) {
        static const char *const keys[] = { "name",   "workers",  "idle",
                                            "queued", "requests", "mean_us",
                                            "p99_us" };
        static const char *const titles[] = { "NAME",   "WORKERS",  "IDLE",
                                              "QUEUED", "REQUESTS", "MEAN_US",
                                              "P99_US" };
        printf ("\n");
        s_print_table (services, keys, titles, 7);
    }
}

//  Sleeps in short steps so SIGINT ends a --watch at once.
static void
s_sleep_interruptibly (int64_t duration_ms)
{
    int64_t deadline_ms = zclock_mono () + duration_ms;
    while (!zsys_interrupted) {
        int64_t remaining_ms = deadline_ms - zclock_mono ();
        if (remaining_ms <= 0)
            break;
        zclock_sleep ((int) (remaining_ms < 100 ? remaining_ms : 100));
    }
}

static void
s_show_stats (const msgpack_object *stats, bool is_json, bool is_line)
{
    if (is_json)
        s_print_json (stats, is_line);
    else
        s_print_stats (stats);
}

//  The same for a --watch on a terminal: the screen is cleared first, so
//  it redraws in place.
static void
s_show_stats_redraw (const msgpack_object *stats, bool is_json, bool is_line)
{
    printf ("\033[H\033[2J");
    s_show_stats (stats, is_json, is_line);
}

//  One refresh of `stats`. Returns COMMANDS_GO or the exit code.
static int
s_stats_once (const commands_globals_t *globals, cmq_client_t *client,
              bool is_json, bool is_watch)
{
    //  On a terminal a watch redraws in place; into a pipe or file it
    //  appends, so the output stays readable as a log. One broker's
    //  screen changes only when it answered; several brokers' each time.
    bool is_redraw = is_watch && !is_json && isatty (STDOUT_FILENO);
    bool is_several = cmq_client_endpoint_count (client) > 1;
    s_query_t query = { "mmi.stats", MSGPACK_OBJECT_MAP, is_json,
                        s_show_stats };
    if (is_redraw && is_several)
        printf ("\033[H\033[2J");
    else if (is_redraw)
        query.show = s_show_stats_redraw;
    int rc = s_query (globals, client, &query);
    if (is_watch && !is_json && !isatty (STDOUT_FILENO) &&
        (is_several || rc == COMMANDS_GO))
        printf ("\n");
    fflush (stdout);
    return rc;
}

int
mmi_commands_stats (commands_globals_t *globals, int argc, char **argv)
{
    bool is_json = false;
    bool is_prometheus = false;
    int64_t watch_s = 0;
    cmq_option_t table[] = {
        { "json", CMQ_OPT_FLAG, NULL, "print the reply map as one line of JSON",
          0, 0, &is_json },
        { "prometheus", CMQ_OPT_FLAG, NULL,
          "print every broker's stats once in the Prometheus text format", 0, 0,
          &is_prometheus },
        { "watch", CMQ_OPT_INT, "SECONDS",
          "refresh every SECONDS until interrupted", 1, 86400, &watch_s },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    const char *positional[1];
    int rc = commands_parse (globals, "stats",
                             "[--json | --prometheus] [--watch SECONDS]", table,
                             argc, argv, positional, 0);
    if (rc == COMMANDS_GO && is_prometheus && (is_json || watch_s)) {
        fprintf (stderr, "cartmq stats: --prometheus prints once, alone "
                         "(cartmq metrics serves it)\n");
        rc = COMMANDS_EXIT_USAGE;
    }
    if (rc == COMMANDS_GO && is_prometheus) {
        cmq_options_free (table);
        return metrics_command_print_once (globals);
    }
    cmq_client_t *client = commands_client_when_go (globals, &rc);
    if (rc == COMMANDS_GO && watch_s == 0) {
        rc = s_stats_once (globals, client, is_json, false);
        if (rc == COMMANDS_GO)
            rc = COMMANDS_EXIT_OK;
    } else if (rc == COMMANDS_GO) {
        //  A watch outlives a broker restart: failures are shown and the
        //  next refresh tries again; only a signal ends it.
        while (!zsys_interrupted) {
            s_stats_once (globals, client, is_json, true);
            s_sleep_interruptibly (watch_s * 1000);
        }
        rc = COMMANDS_EXIT_OK;
    }
    cmq_client_destroy (&client);
    cmq_options_free (table);
    return rc;
}
