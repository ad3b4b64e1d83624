//  commands.c - the cartmq command line: global flags, then one command
//
//  Each command parses its own flags from a cmq_options table, builds one
//  request body, makes one synchronous call and prints what came back.
//  Cart requests are packed here straight from the command-line strings,
//  not through the codec's fixed-size structs: the contract says values
//  that parse are sent as they are and the service judges them, and that
//  includes strings too long for the codec to hold. A mutation always
//  carries a request_id (given, or random), packed once for all attempts.

#include "bench.h"
#include "commands.h"
#include "json_print.h"

#include "cartmq/cart_client.h"
#include "cartmq/client.h"
#include "cartmq/curve.h"
#include "cartmq/log.h"
#include "cartmq/options.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  Returned by helpers to say "carry on"; any other value is an exit code.
#define S_GO (-1)

//  An integer flag nobody gave: below every value the flag accepts.
#define S_UNSET INT64_MIN

//  Room for a command's own flags, and for the global ones after them.
#define S_MAX_COMMAND_FLAGS 8
#define S_GLOBAL_SLOTS      6

#define S_USAGE                                                                \
    "[--connect ENDPOINT] [--timeout-ms N] [--retries N]\n"                    \
    "       [--curve-server PUBLIC_CERTFILE --curve-cert CERTFILE] "           \
    "COMMAND ...\n"                                                            \
    "\n"                                                                       \
    "Commands (each answers --help; global flags may also follow them):\n"     \
    "  get USER\n"                                                             \
    "  add USER ITEM_ID --name NAME --quantity Q --price P "                   \
    "[--request-id ID]\n"                                                      \
    "  remove USER ITEM_ID [--request-id ID]\n"                                \
    "  update USER ITEM_ID --quantity Q [--request-id ID]\n"                   \
    "  clear USER [--request-id ID]\n"                                         \
    "  services [--json]                 services with workers and queues\n"   \
    "  stats [--json] [--watch SECONDS]  broker statistics\n"                  \
    "  keygen NAME                       write certs NAME and NAME_secret\n"   \
    "  bench [--service S] ...           load test (see bench --help)\n"       \
    "\n"                                                                       \
    "Cart commands print the reply as one line of JSON. Exit status: 0 on\n"   \
    "status 200, 1 on another status, 2 on bad usage, 3 when no reply came."

//  The global flags, shared by every command.
typedef struct {
    char *endpoint;      //  --connect, or NULL: the default
    int64_t timeout_ms;  //  --timeout-ms, per attempt
    int64_t retries;     //  --retries, resends after the first
    char *curve_server;  //  --curve-server PUBLIC_CERTFILE
    char *curve_cert;    //  --curve-cert CERTFILE (NAME_secret)
} s_globals_t;

typedef int (s_run_fn) (s_globals_t *globals, int argc, char **argv);

//  Values a cart command sends; NULL or S_UNSET leaves a field out.
typedef struct {
    const char *method;
    const char *user_id;
    const char *item_id;
    const char *name;  //  AddItemToCart: item_id goes inside `item`
    int64_t quantity;
    int64_t price;
    const char *request_id;
} s_cart_args_t;

//  ---------------------------------------------------------------------
//  Small helpers

static void
s_print_usage (FILE *stream)
{
    fprintf (stream, "Usage: cartmq %s\n", S_USAGE);
}

//  Room for the escaped form of a peer string shown on a terminal; a
//  longer one is cut and ends in "...".
#define S_MAX_ESCAPED 4096

//  Writes peer bytes for a terminal as the logs do (cmq_log_escape): every
//  byte outside printable ASCII, and '\\' and '"', as \xHH, so no reply
//  can break a line, move the cursor or send the terminal a command (C1
//  controls and bytes that are not UTF-8 included).
static void
s_print_safe (FILE *stream, const char *data, size_t size)
{
    char escaped[S_MAX_ESCAPED];
    fputs (cmq_log_escape (data, size, escaped, sizeof (escaped)), stream);
}

//  Columns s_print_safe takes for these bytes.
static int
s_safe_width (const char *data, size_t size)
{
    char escaped[S_MAX_ESCAPED];
    return (int) strlen (
      cmq_log_escape (data, size, escaped, sizeof (escaped)));
}

static bool
s_is_key (const msgpack_object *key, const char *name)
{
    size_t size = strlen (name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == size &&
           memcmp (key->via.str.ptr, name, size) == 0;
}

//  The value under a string key of a map, or NULL.
static const msgpack_object *
s_map_get (const msgpack_object *map, const char *name)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t index = 0; index < map->via.map.size; index++)
        if (s_is_key (&map->via.map.ptr[index].key, name))
            return &map->via.map.ptr[index].val;
    return NULL;
}

//  Unpacks exactly one msgpack object filling all of data. Returns 0, or
//  -1 if data is anything else; destroy *unpacked either way.
static int
s_unpack (const void *data, size_t size, msgpack_unpacked *unpacked)
{
    msgpack_unpacked_init (unpacked);
    return json_print_unpack (data, size, unpacked);
}

static bool
s_get_int (const msgpack_object *object, int64_t *value_p)
{
    if (object && object->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        object->via.u64 <= INT64_MAX) {
        *value_p = (int64_t) object->via.u64;
        return true;
    }
    if (object && object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value_p = object->via.i64;
        return true;
    }
    return false;
}

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
        s_print_safe (stream, object->via.str.ptr, object->via.str.size);
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
        return s_safe_width (object->via.str.ptr, object->via.str.size);
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

//  ---------------------------------------------------------------------
//  Parsing and calling

//  Fills entries (six slots: five flags and the terminator) with the
//  global flags. The same table serves before the command and after it,
//  so `cartmq get U --connect E` works as well as `cartmq --connect E get U`.
static void
s_global_options (s_globals_t *globals, cmq_option_t *entries)
{
    cmq_option_t global[] = {
        { "connect", CMQ_OPT_STRING, "ENDPOINT",
          "broker endpoint (default " CMQ_DEFAULT_ENDPOINT ")", 0, 0,
          &globals->endpoint },
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
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    memcpy (entries, global, sizeof (global));
}

//  Parses a command's own flags (and the global ones) and exactly
//  `wanted` positionals. Returns S_GO, or the exit code when help was
//  shown or the usage was wrong. The command's table owns its strings;
//  the global strings stay owned by the global table.
static int
s_parse_command (s_globals_t *globals, const char *command, const char *usage,
                 const cmq_option_t *table, int argc, char **argv,
                 const char **positional, int wanted)
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
    int count = 0;
    int next_arg = argc;
    cmq_options_result_t result = cmq_options_parse (
      &spec, combined, argc, argv, positional, wanted, &count, &next_arg);
    if (result == CMQ_OPTIONS_EXIT)
        return COMMANDS_EXIT_OK;
    if (result != CMQ_OPTIONS_OK)
        return COMMANDS_EXIT_USAGE;
    if (count != wanted) {
        fprintf (stderr, "%s: expected %s\n", program, usage);
        return COMMANDS_EXIT_USAGE;
    }
    return S_GO;
}

static int
s_require (const char *command, const char *flag, bool is_given)
{
    if (is_given)
        return S_GO;
    fprintf (stderr, "cartmq %s: --%s is required\n", command, flag);
    return COMMANDS_EXIT_USAGE;
}

//  Connects with the global flags. Returns NULL, the reason printed, when
//  the endpoint or the certificates are unusable.
static cmq_client_t *
s_client_new (const s_globals_t *globals)
{
    if (!globals->curve_server != !globals->curve_cert) {
        fprintf (stderr,
                 "cartmq: --curve-server and --curve-cert go together\n");
        return NULL;
    }
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    if (globals->endpoint)
        config.endpoint = globals->endpoint;
    config.timeout_ms = (int) globals->timeout_ms;
    config.retries = (int) globals->retries;
    config.curve_server = globals->curve_server;
    config.curve_cert = globals->curve_cert;
    char error[CMQ_ERRSTR_SIZE];
    cmq_client_t *client = cmq_client_new (&config, error, sizeof (error));
    if (!client)
        fprintf (stderr, "cartmq: %s\n", error);
    return client;
}

//  One synchronous call. Returns S_GO with the reply in *reply_p (caller
//  frees), or the exit code: 0 if interrupted, 3 if no reply came. A
//  mutation's request_id, if given, is named in the error: the outcome is
//  unknown, and running it again with that id is safe.
static int
s_call (cmq_client_t *client, const char *service, const void *body,
        size_t body_size, const char *request_id, void **reply_p,
        size_t *reply_size_p)
{
    if (cmq_client_call_bytes (client, service, body, body_size, reply_p,
                               reply_size_p) == 0)
        return S_GO;
    if (zsys_interrupted)
        return COMMANDS_EXIT_OK;
    fprintf (stderr, "cartmq: %s", cmq_client_errstr (client));
    if (request_id) {
        fputs ("; outcome unknown, retry safely with --request-id ", stderr);
        s_print_safe (stderr, request_id, strlen (request_id));
    }
    fputc ('\n', stderr);
    return COMMANDS_EXIT_NO_REPLY;
}

//  Connects, calls and returns the reply as s_call does.
static int
s_call_once (const s_globals_t *globals, const char *service, const void *body,
             size_t body_size, const char *request_id, void **reply_p,
             size_t *reply_size_p)
{
    cmq_client_t *client = s_client_new (globals);
    if (!client)
        return COMMANDS_EXIT_USAGE;
    int rc = s_call (client, service, body, body_size, request_id, reply_p,
                     reply_size_p);
    cmq_client_destroy (&client);
    return rc;
}

//  ---------------------------------------------------------------------
//  Cart commands

int
commands_print_reply (const void *data, size_t size, FILE *out, FILE *err)
{
    msgpack_unpacked unpacked;
    int rc = COMMANDS_EXIT_STATUS;
    if (s_unpack (data, size, &unpacked) != 0 ||
        unpacked.data.type != MSGPACK_OBJECT_MAP) {
        fprintf (err, "cartmq: reply is not a valid msgpack map (%zu bytes)\n",
                 size);
        msgpack_unpacked_destroy (&unpacked);
        return rc;
    }
    const msgpack_object *reply = &unpacked.data;
    char *json = json_print_object (reply, NULL);
    if (!json) {
        fprintf (err, "cartmq: reply is nested too deeply to print\n");
        msgpack_unpacked_destroy (&unpacked);
        return rc;
    }
    fprintf (out, "%s\n", json);
    fflush (out);
    free (json);

    int64_t status;
    const msgpack_object *error = s_map_get (reply, "error");
    if (!s_get_int (s_map_get (reply, "status"), &status))
        fprintf (err, "cartmq: reply has no integer status\n");
    else if (status == CMQ_CART_OK)
        rc = COMMANDS_EXIT_OK;
    else {
        fprintf (err, "cartmq: %" PRId64 ": ", status);
        if (error && error->type == MSGPACK_OBJECT_STR)
            s_print_safe (err, error->via.str.ptr, error->via.str.size);
        else
            fputs ("no error text", err);
        fputc ('\n', err);
    }
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

static void
s_pack_string (msgpack_packer *packer, const char *string)
{
    size_t size = strlen (string);
    msgpack_pack_str (packer, size);
    msgpack_pack_str_body (packer, string, size);
}

static void
s_pack_field (msgpack_packer *packer, const char *key, const char *value)
{
    s_pack_string (packer, key);
    s_pack_string (packer, value);
}

static void
s_pack_int_field (msgpack_packer *packer, const char *key, int64_t value)
{
    s_pack_string (packer, key);
    msgpack_pack_int64 (packer, value);
}

//  The request map of §4, in the order the contract lists its fields.
static void
s_pack_cart_request (msgpack_sbuffer *buffer, const s_cart_args_t *args)
{
    msgpack_packer packer;
    msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
    bool is_add = args->name != NULL;
    size_t fields = 2 + (args->item_id ? 1 : 0) +
                    (!is_add && args->quantity != S_UNSET ? 1 : 0) +
                    (args->request_id ? 1 : 0);
    msgpack_pack_map (&packer, fields);
    s_pack_field (&packer, "method", args->method);
    s_pack_field (&packer, "user_id", args->user_id);
    if (is_add) {
        s_pack_string (&packer, "item");
        msgpack_pack_map (&packer, 4);
        s_pack_field (&packer, "id", args->item_id);
        s_pack_field (&packer, "name", args->name);
        s_pack_int_field (&packer, "quantity", args->quantity);
        s_pack_int_field (&packer, "price", args->price);
    } else if (args->item_id)
        s_pack_field (&packer, "item_id", args->item_id);
    if (!is_add && args->quantity != S_UNSET)
        s_pack_int_field (&packer, "quantity", args->quantity);
    if (args->request_id)
        s_pack_field (&packer, "request_id", args->request_id);
}

static int
s_cart_call (s_globals_t *globals, const s_cart_args_t *args)
{
    //  Contract §4: a mutation always carries a request_id. One made here
    //  is packed once, and the client resends those very bytes on every
    //  attempt: however many attempts reach workers, it applies once.
    s_cart_args_t with_id = *args;
    char request_id[CMQ_CART_REQUEST_ID_HEX_BYTES + 1];
    if (!streq (args->method, "GetCartItems") && !args->request_id) {
        if (cmq_cart_request_id_new (request_id, sizeof (request_id)) != 0) {
            fprintf (stderr, "cartmq: cannot make a request_id: %s\n",
                     strerror (errno));
            return COMMANDS_EXIT_NO_REPLY;
        }
        with_id.request_id = request_id;
        args = &with_id;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    s_pack_cart_request (&buffer, args);
    void *reply = NULL;
    size_t reply_size = 0;
    int rc = s_call_once (globals, CMQ_CART_SERVICE, buffer.data, buffer.size,
                          args->request_id, &reply, &reply_size);
    msgpack_sbuffer_destroy (&buffer);
    if (rc == S_GO)
        rc = commands_print_reply (reply, reply_size, stdout, stderr);
    free (reply);
    return rc;
}

//  Integer flags take every int64 but S_UNSET: any number that parses
//  goes to the service, which judges it.
#define S_INT_FLAG(flag, var, text)                                            \
    {                                                                          \
        flag, CMQ_OPT_INT, "N", text, INT64_MIN + 1, INT64_MAX, &var           \
    }

#define S_REQUEST_ID_FLAG(var)                                                 \
    {                                                                          \
        "request-id", CMQ_OPT_STRING, "ID",                                    \
          "id that makes retries apply once (default: random)", 0, 0, &var     \
    }

static int
s_run_get (s_globals_t *globals, int argc, char **argv)
{
    cmq_option_t table[] = { { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = s_parse_command (globals, "get", "USER", table, argc, argv,
                              positional, 1);
    if (rc == S_GO) {
        s_cart_args_t args = { "GetCartItems", positional[0], NULL, NULL,
                               S_UNSET,        S_UNSET,       NULL };
        rc = s_cart_call (globals, &args);
    }
    cmq_options_free (table);
    return rc;
}

static int
s_run_add (s_globals_t *globals, int argc, char **argv)
{
    char *name = NULL, *request_id = NULL;
    int64_t quantity = S_UNSET, price = S_UNSET;
    cmq_option_t table[] = {
        { "name", CMQ_OPT_STRING, "NAME", "item name", 0, 0, &name },
        { "quantity", CMQ_OPT_INT, "Q", "how many to add", INT64_MIN + 1,
          INT64_MAX, &quantity },
        { "price", CMQ_OPT_INT, "P", "unit price in the smallest currency unit",
          INT64_MIN + 1, INT64_MAX, &price },
        S_REQUEST_ID_FLAG (request_id),
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    const char *positional[2];
    int rc = s_parse_command (globals, "add",
                              "USER ITEM_ID --name NAME --quantity Q "
                              "--price P [--request-id ID]",
                              table, argc, argv, positional, 2);
    if (rc == S_GO)
        rc = s_require ("add", "name", name != NULL);
    if (rc == S_GO)
        rc = s_require ("add", "quantity", quantity != S_UNSET);
    if (rc == S_GO)
        rc = s_require ("add", "price", price != S_UNSET);
    if (rc == S_GO) {
        s_cart_args_t args = { "AddItemToCart", positional[0],
                               positional[1],   name,
                               quantity,        price,
                               request_id };
        rc = s_cart_call (globals, &args);
    }
    cmq_options_free (table);
    return rc;
}

static int
s_run_remove (s_globals_t *globals, int argc, char **argv)
{
    char *request_id = NULL;
    cmq_option_t table[] = { S_REQUEST_ID_FLAG (request_id),
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[2];
    int rc =
      s_parse_command (globals, "remove", "USER ITEM_ID [--request-id ID]",
                       table, argc, argv, positional, 2);
    if (rc == S_GO) {
        s_cart_args_t args = { "RemoveItemFromCart",
                               positional[0],
                               positional[1],
                               NULL,
                               S_UNSET,
                               S_UNSET,
                               request_id };
        rc = s_cart_call (globals, &args);
    }
    cmq_options_free (table);
    return rc;
}

static int
s_run_update (s_globals_t *globals, int argc, char **argv)
{
    char *request_id = NULL;
    int64_t quantity = S_UNSET;
    cmq_option_t table[] = { { "quantity", CMQ_OPT_INT, "Q",
                               "the new quantity (0 removes)", INT64_MIN + 1,
                               INT64_MAX, &quantity },
                             S_REQUEST_ID_FLAG (request_id),
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[2];
    int rc = s_parse_command (globals, "update",
                              "USER ITEM_ID --quantity Q [--request-id ID]",
                              table, argc, argv, positional, 2);
    if (rc == S_GO)
        rc = s_require ("update", "quantity", quantity != S_UNSET);
    if (rc == S_GO) {
        s_cart_args_t args = { "UpdateItemQuantity",
                               positional[0],
                               positional[1],
                               NULL,
                               quantity,
                               S_UNSET,
                               request_id };
        rc = s_cart_call (globals, &args);
    }
    cmq_options_free (table);
    return rc;
}

static int
s_run_clear (s_globals_t *globals, int argc, char **argv)
{
    char *request_id = NULL;
    cmq_option_t table[] = { S_REQUEST_ID_FLAG (request_id),
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = s_parse_command (globals, "clear", "USER [--request-id ID]", table,
                              argc, argv, positional, 1);
    if (rc == S_GO) {
        s_cart_args_t args = { "ClearCart", positional[0], NULL,      NULL,
                               S_UNSET,     S_UNSET,       request_id };
        rc = s_cart_call (globals, &args);
    }
    cmq_options_free (table);
    return rc;
}

//  ---------------------------------------------------------------------
//  MMI commands

static void
s_print_json_line (const msgpack_object *object)
{
    char *json = json_print_object (object, NULL);
    if (json)
        printf ("%s\n", json);
    else
        fprintf (stderr, "cartmq: reply is nested too deeply to print\n");
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
              s_map_get (&rows->via.array.ptr[row], keys[column]));
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
              stdout, s_map_get (&rows->via.array.ptr[row], keys[column]),
              column ? widths[column] : -widths[column]);
        }
        printf ("\n");
    }
}

//  Calls an mmi.* service and unpacks the reply, which must be of the
//  given type. Returns S_GO, or the exit code. The unpacked strings point
//  into *reply_p, which the caller frees after destroying *unpacked.
static int
s_mmi_call (cmq_client_t *client, const char *service, msgpack_object_type type,
            msgpack_unpacked *unpacked, void **reply_p)
{
    msgpack_unpacked_init (unpacked);
    size_t reply_size = 0;
    int rc = s_call (client, service, "", 0, NULL, reply_p, &reply_size);
    if (rc != S_GO)
        return rc;
    if (s_unpack (*reply_p, reply_size, unpacked) != 0 ||
        unpacked->data.type != type) {
        fprintf (
          stderr, "cartmq: %s: reply is not a valid msgpack %s (%zu bytes)\n",
          service, type == MSGPACK_OBJECT_MAP ? "map" : "array", reply_size);
        rc = COMMANDS_EXIT_STATUS;
    }
    return rc;
}

static int
s_run_services (s_globals_t *globals, int argc, char **argv)
{
    bool is_json = false;
    cmq_option_t table[] = { { "json", CMQ_OPT_FLAG, NULL,
                               "print the reply as one line of JSON", 0, 0,
                               &is_json },
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = s_parse_command (globals, "services", "[--json]", table, argc,
                              argv, positional, 0);
    cmq_client_t *client = NULL;
    if (rc == S_GO) {
        client = s_client_new (globals);
        if (!client)
            rc = COMMANDS_EXIT_USAGE;
    }
    if (rc == S_GO) {
        msgpack_unpacked unpacked;
        void *reply = NULL;
        rc = s_mmi_call (client, "mmi.services", MSGPACK_OBJECT_ARRAY,
                         &unpacked, &reply);
        if (rc == S_GO) {
            static const char *const keys[] = { "name", "workers", "idle",
                                                "queued" };
            static const char *const titles[] = { "NAME", "WORKERS", "IDLE",
                                                  "QUEUED" };
            if (is_json)
                s_print_json_line (&unpacked.data);
            else
                s_print_table (&unpacked.data, keys, titles, 4);
            rc = COMMANDS_EXIT_OK;
        }
        msgpack_unpacked_destroy (&unpacked);
        free (reply);
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
        const msgpack_object *value = s_map_get (stats, known[index]);
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
        bool is_known = s_is_key (key, "services");
        for (size_t index = 0; index < known_count && !is_known; index++)
            is_known = s_is_key (key, known[index]);
        if (is_known)
            continue;
        s_print_aligned (stdout, key, -14);
        s_print_cell (stdout, &stats->via.map.ptr[pair].val);
        printf ("\n");
    }
    const msgpack_object *services = s_map_get (stats, "services");
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

//  One refresh of `stats`. Returns S_GO or the exit code.
static int
s_stats_once (cmq_client_t *client, bool is_json, bool is_watch)
{
    msgpack_unpacked unpacked;
    void *reply = NULL;
    int rc =
      s_mmi_call (client, "mmi.stats", MSGPACK_OBJECT_MAP, &unpacked, &reply);
    if (rc == S_GO) {
        //  On a terminal a watch redraws in place; into a pipe or file
        //  it appends, so the output stays readable as a log.
        if (is_watch && !is_json && isatty (STDOUT_FILENO))
            printf ("\033[H\033[2J");
        if (is_json)
            s_print_json_line (&unpacked.data);
        else
            s_print_stats (&unpacked.data);
        if (is_watch && !is_json && !isatty (STDOUT_FILENO))
            printf ("\n");
        fflush (stdout);
    }
    msgpack_unpacked_destroy (&unpacked);
    free (reply);
    return rc;
}

static int
s_run_stats (s_globals_t *globals, int argc, char **argv)
{
    bool is_json = false;
    int64_t watch_s = 0;
    cmq_option_t table[] = {
        { "json", CMQ_OPT_FLAG, NULL, "print the reply map as one line of JSON",
          0, 0, &is_json },
        { "watch", CMQ_OPT_INT, "SECONDS",
          "refresh every SECONDS until interrupted", 1, 86400, &watch_s },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    const char *positional[1];
    int rc = s_parse_command (globals, "stats", "[--json] [--watch SECONDS]",
                              table, argc, argv, positional, 0);
    cmq_client_t *client = NULL;
    if (rc == S_GO) {
        client = s_client_new (globals);
        if (!client)
            rc = COMMANDS_EXIT_USAGE;
    }
    if (rc == S_GO && watch_s == 0) {
        rc = s_stats_once (client, is_json, false);
        if (rc == S_GO)
            rc = COMMANDS_EXIT_OK;
    } else if (rc == S_GO) {
        //  A watch outlives a broker restart: failures are shown and the
        //  next refresh tries again; only a signal ends it.
        while (!zsys_interrupted) {
            s_stats_once (client, is_json, true);
            s_sleep_interruptibly (watch_s * 1000);
        }
        rc = COMMANDS_EXIT_OK;
    }
    cmq_client_destroy (&client);
    cmq_options_free (table);
    return rc;
}

//  ---------------------------------------------------------------------
//  Local commands

static int
s_run_keygen (s_globals_t *globals, int argc, char **argv)
{
    (void) globals;
    cmq_option_t table[] = { { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = s_parse_command (globals, "keygen", "NAME", table, argc, argv,
                              positional, 1);
    if (rc == S_GO) {
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
s_run_bench (s_globals_t *globals, int argc, char **argv)
{
    bench_globals_t bench = { globals->endpoint, globals->curve_server,
                              globals->curve_cert, globals->timeout_ms };
    return bench_main (&bench, argc, argv);
}

//  ---------------------------------------------------------------------
//  The program

static const struct {
    const char *name;
    s_run_fn *run;
} s_commands[] = { { "get", s_run_get },       { "add", s_run_add },
                   { "remove", s_run_remove }, { "update", s_run_update },
                   { "clear", s_run_clear },   { "services", s_run_services },
                   { "stats", s_run_stats },   { "keygen", s_run_keygen },
                   { "bench", s_run_bench } };

static s_run_fn *
s_command_lookup (const char *name)
{
    for (size_t index = 0; index < sizeof (s_commands) / sizeof (s_commands[0]);
         index++)
        if (streq (name, s_commands[index].name))
            return s_commands[index].run;
    return NULL;
}

//  Parses the global flags up to the command. Returns S_GO with
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
    return S_GO;
}

int
commands_main (int argc, char **argv)
{
    s_globals_t globals = { NULL, CMQ_DEFAULT_TIMEOUT_MS, CMQ_DEFAULT_RETRIES,
                            NULL, NULL };
    cmq_option_t table[S_GLOBAL_SLOTS];
    s_global_options (&globals, table);
    int command_arg = argc;
    int rc = s_parse_globals (table, argc, argv, &command_arg);
    if (rc == S_GO) {
        s_run_fn *run = s_command_lookup (argv[command_arg]);
        if (run)
            rc = run (&globals, argc - command_arg, argv + command_arg);
        else {
            fprintf (stderr, "cartmq: unknown command '");
            s_print_safe (stderr, argv[command_arg],
                          strlen (argv[command_arg]));
            fprintf (stderr, "' (see cartmq --help)\n");
            rc = COMMANDS_EXIT_USAGE;
        }
    }
    cmq_options_free (table);
    return rc;
}
