//  cart_commands.c - get, add, remove, update, clear: one cart call each
//
//  Each command fills a cmq_cart_request_t straight from the command-line
//  strings (the request borrows them: values that parse are sent as they
//  are, however long or odd, and the service judges them), gives a
//  mutation its request_id once, calls through the typed cart API
//  (cmq_cart_call_body: one encoding resent on every attempt) and prints
//  the reply map as it came.

#include "cart_commands.h"
#include "json_print.h"

#include "cartmq/cart_client.h"
#include "cartmq/msgpack_scan.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

//  An integer flag nobody gave: below every value the flag accepts.
#define S_UNSET INT64_MIN

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

//  cart_commands_print_reply, telling too whether the JSON line went out.
static int
s_print_reply (const void *data, size_t size, FILE *out, FILE *err,
               bool *is_printed_p)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = COMMANDS_EXIT_STATUS;
    if (json_print_unpack (data, size, &unpacked) != 0 ||
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
    *is_printed_p = true;

    int64_t status;
    const msgpack_object *error = cmq_msgpack_map_get (reply, "error");
    if (!s_get_int (cmq_msgpack_map_get (reply, "status"), &status))
        fprintf (err, "cartmq: reply has no integer status\n");
    else if (status == CMQ_CART_OK)
        rc = COMMANDS_EXIT_OK;
    else {
        fprintf (err, "cartmq: %" PRId64 ": ", status);
        if (error && error->type == MSGPACK_OBJECT_STR)
            commands_print_safe (err, error->via.str.ptr, error->via.str.size);
        else
            fputs ("no error text", err);
        fputc ('\n', err);
    }
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

int
cart_commands_print_reply (const void *data, size_t size, FILE *out, FILE *err)
{
    bool is_printed = false;
    return s_print_reply (data, size, out, err, &is_printed);
}

//  A request of method for user, borrowing the command-line strings.
static void
s_request_init (cmq_cart_request_t *request, cmq_cart_method_t method,
                const char *user_id, const char *request_id)
{
    memset (request, 0, sizeof (*request));
    request->method = method;
    request->user_id = cmq_cart_str (user_id);
    if (request_id) {
        request->has_request_id = true;
        request->request_id = cmq_cart_str (request_id);
    }
}

//  Contract §4: a mutation always carries a request_id. One made here is
//  encoded once, and the client resends those very bytes on every
//  attempt, on any broker: however many attempts reach workers, it
//  applies once. Runs on client, or on one of its own when it is NULL.
static int
s_cart_call (const commands_globals_t *globals, cmq_client_t *client,
             cmq_cart_request_t *request, bool *is_printed_p)
{
    char request_id[CMQ_CART_REQUEST_ID_HEX_BYTES + 1];
    if (cmq_cart_request_give_id (request, request_id, sizeof (request_id))) {
        fprintf (stderr, "cartmq: cannot make a request_id: %s\n",
                 strerror (errno));
        return COMMANDS_EXIT_NO_REPLY;
    }
    cmq_client_t *own = NULL;
    if (!client) {
        own = commands_client_new (globals);
        if (!own)
            return COMMANDS_EXIT_USAGE;
        client = own;
    }
    void *reply = NULL;
    size_t reply_size = 0;
    int64_t started_ms = zclock_mono ();
    int rc = cmq_cart_call_body (client, request, &reply, &reply_size);
    if (rc != -2)
        commands_report_call (globals, client, started_ms);
    if (rc == 0)
        rc = s_print_reply (reply, reply_size, stdout, stderr, is_printed_p);
    else if (rc == -2) {
        fprintf (stderr, "cartmq: out of memory encoding the request\n");
        rc = COMMANDS_EXIT_NO_REPLY;
    } else
        rc = commands_no_reply (
          client, request->has_request_id ? request->request_id.data : NULL);
    free (reply);
    cmq_client_destroy (&own);
    return rc;
}

//  What a command takes besides USER: ITEM_ID, and flags. Every flag but
//  --request-id is required.
#define S_ITEM_ID    1u
#define S_NAME       2u
#define S_QUANTITY   4u
#define S_PRICE      8u
#define S_REQUEST_ID 16u

typedef struct {
    const char *name;  //  the command
    cmq_cart_method_t method;
    unsigned takes;             //  S_* bits
    const char *quantity_help;  //  --quantity, if it takes one
    const char *usage;
} s_command_t;

static const s_command_t s_get = { "get", CMQ_CART_GET, 0, NULL, "USER" };
static const s_command_t s_add = {
    "add", CMQ_CART_ADD,
    S_ITEM_ID | S_NAME | S_QUANTITY | S_PRICE | S_REQUEST_ID, "how many to add",
    "USER ITEM_ID --name NAME --quantity Q --price P [--request-id ID]"
};
static const s_command_t s_remove = { "remove", CMQ_CART_REMOVE,
                                      S_ITEM_ID | S_REQUEST_ID, NULL,
                                      "USER ITEM_ID [--request-id ID]" };
static const s_command_t s_update = {
    "update", CMQ_CART_UPDATE, S_ITEM_ID | S_QUANTITY | S_REQUEST_ID,
    "the new quantity (0 removes)",
    "USER ITEM_ID --quantity Q [--request-id ID]"
};
static const s_command_t s_clear = { "clear", CMQ_CART_CLEAR, S_REQUEST_ID,
                                     NULL, "USER [--request-id ID]" };

//  The flag values of one command line.
typedef struct {
    char *name;
    int64_t quantity;  //  S_UNSET if not given
    int64_t price;
    char *request_id;
} s_values_t;

//  Fills table (five entries at most) with the command's flags, in the
//  order --help lists them. Integer flags take every int64 but S_UNSET:
//  any number that parses goes to the service, which judges it.
static void
s_flags (const s_command_t *command, s_values_t *values, cmq_option_t *table)
{
    size_t size = 0;
    if (command->takes & S_NAME)
        table[size++] =
          (cmq_option_t){ "name", CMQ_OPT_STRING, "NAME", "item name", 0,
                          0,      &values->name };
    if (command->takes & S_QUANTITY)
        table[size++] = (cmq_option_t){ "quantity",
                                        CMQ_OPT_INT,
                                        "Q",
                                        command->quantity_help,
                                        INT64_MIN + 1,
                                        INT64_MAX,
                                        &values->quantity };
    if (command->takes & S_PRICE)
        table[size++] = (cmq_option_t){
            "price",       CMQ_OPT_INT,
            "P",           "unit price in the smallest currency unit",
            INT64_MIN + 1, INT64_MAX,
            &values->price
        };
    if (command->takes & S_REQUEST_ID)
        table[size++] =
          (cmq_option_t){ "request-id",
                          CMQ_OPT_STRING,
                          "ID",
                          "id that makes retries apply once (default: random)",
                          0,
                          0,
                          &values->request_id };
    table[size] = (cmq_option_t){ NULL, 0, NULL, NULL, 0, 0, NULL };
}

//  The required flags, checked in the order --help lists them.
static int
s_require_all (const s_command_t *command, const s_values_t *values)
{
    int rc = COMMANDS_GO;
    if (rc == COMMANDS_GO && (command->takes & S_NAME))
        rc = commands_require (command->name, "name", values->name != NULL);
    if (rc == COMMANDS_GO && (command->takes & S_QUANTITY))
        rc = commands_require (command->name, "quantity",
                               values->quantity != S_UNSET);
    if (rc == COMMANDS_GO && (command->takes & S_PRICE))
        rc =
          commands_require (command->name, "price", values->price != S_UNSET);
    return rc;
}

//  Parses one cart command line, then builds its request and calls.
static int
s_run (commands_globals_t *globals, cmq_client_t *client,
       const s_command_t *command, int argc, char **argv, bool *is_printed_p)
{
    s_values_t values = { NULL, S_UNSET, S_UNSET, NULL };
    cmq_option_t table[5];
    s_flags (command, &values, table);
    const char *positional[2];
    int wanted = command->takes & S_ITEM_ID ? 2 : 1;
    int rc = commands_parse (globals, command->name, command->usage, table,
                             argc, argv, positional, wanted);
    if (rc == COMMANDS_GO)
        rc = s_require_all (command, &values);
    if (rc == COMMANDS_GO) {
        cmq_cart_request_t request;
        s_request_init (&request, command->method, positional[0],
                        values.request_id);
        if (wanted == 2)
            request.item.id = cmq_cart_str (positional[1]);
        request.item.name = cmq_cart_str (values.name);
        request.item.quantity = values.quantity;
        request.item.price = values.price;
        rc = s_cart_call (globals, client, &request, is_printed_p);
    }
    cmq_options_free (table);
    return rc;
}

static const s_command_t *const s_commands[] = { &s_get, &s_add, &s_remove,
                                                 &s_update, &s_clear };

int
cart_commands_run (commands_globals_t *globals, cmq_client_t *client, int argc,
                   char **argv, bool *is_printed_p)
{
    assert (argc > 0);
    bool is_printed = false;
    int rc = -1;
    for (size_t index = 0; index < sizeof (s_commands) / sizeof (s_commands[0]);
         index++)
        if (streq (argv[0], s_commands[index]->name))
            rc = s_run (globals, client, s_commands[index], argc, argv,
                        &is_printed);
    if (is_printed_p)
        *is_printed_p = is_printed;
    return rc;
}

int
cart_commands_main (commands_globals_t *globals, int argc, char **argv)
{
    return cart_commands_run (globals, NULL, argc, argv, NULL);
}
