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

int
cart_commands_print_reply (const void *data, size_t size, FILE *out, FILE *err)
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
//  attempt: however many attempts reach workers, it applies once.
static int
s_cart_call (const commands_globals_t *globals, cmq_cart_request_t *request)
{
    char request_id[CMQ_CART_REQUEST_ID_HEX_BYTES + 1];
    if (cmq_cart_request_give_id (request, request_id, sizeof (request_id))) {
        fprintf (stderr, "cartmq: cannot make a request_id: %s\n",
                 strerror (errno));
        return COMMANDS_EXIT_NO_REPLY;
    }
    cmq_client_t *client = commands_client_new (globals);
    if (!client)
        return COMMANDS_EXIT_USAGE;
    void *reply = NULL;
    size_t reply_size = 0;
    int rc;
    if (cmq_cart_call_body (client, request, &reply, &reply_size) == 0)
        rc = cart_commands_print_reply (reply, reply_size, stdout, stderr);
    else
        rc = commands_no_reply (
          request->has_request_id ? request->request_id.data : NULL);
    free (reply);
    cmq_client_destroy (&client);
    return rc;
}

#define S_REQUEST_ID_FLAG(var)                                                 \
    {                                                                          \
        "request-id", CMQ_OPT_STRING, "ID",                                    \
          "id that makes retries apply once (default: random)", 0, 0, &var     \
    }

int
cart_commands_get (commands_globals_t *globals, int argc, char **argv)
{
    cmq_option_t table[] = { { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc =
      commands_parse (globals, "get", "USER", table, argc, argv, positional, 1);
    if (rc == COMMANDS_GO) {
        cmq_cart_request_t request;
        s_request_init (&request, CMQ_CART_GET, positional[0], NULL);
        rc = s_cart_call (globals, &request);
    }
    cmq_options_free (table);
    return rc;
}

int
cart_commands_add (commands_globals_t *globals, int argc, char **argv)
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
    int rc = commands_parse (globals, "add",
                             "USER ITEM_ID --name NAME --quantity Q "
                             "--price P [--request-id ID]",
                             table, argc, argv, positional, 2);
    if (rc == COMMANDS_GO)
        rc = commands_require ("add", "name", name != NULL);
    if (rc == COMMANDS_GO)
        rc = commands_require ("add", "quantity", quantity != S_UNSET);
    if (rc == COMMANDS_GO)
        rc = commands_require ("add", "price", price != S_UNSET);
    if (rc == COMMANDS_GO) {
        cmq_cart_request_t request;
        s_request_init (&request, CMQ_CART_ADD, positional[0], request_id);
        request.item.id = cmq_cart_str (positional[1]);
        request.item.name = cmq_cart_str (name);
        request.item.quantity = quantity;
        request.item.price = price;
        rc = s_cart_call (globals, &request);
    }
    cmq_options_free (table);
    return rc;
}

int
cart_commands_remove (commands_globals_t *globals, int argc, char **argv)
{
    char *request_id = NULL;
    cmq_option_t table[] = { S_REQUEST_ID_FLAG (request_id),
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[2];
    int rc =
      commands_parse (globals, "remove", "USER ITEM_ID [--request-id ID]",
                      table, argc, argv, positional, 2);
    if (rc == COMMANDS_GO) {
        cmq_cart_request_t request;
        s_request_init (&request, CMQ_CART_REMOVE, positional[0], request_id);
        request.item.id = cmq_cart_str (positional[1]);
        rc = s_cart_call (globals, &request);
    }
    cmq_options_free (table);
    return rc;
}

int
cart_commands_update (commands_globals_t *globals, int argc, char **argv)
{
    char *request_id = NULL;
    int64_t quantity = S_UNSET;
    cmq_option_t table[] = { { "quantity", CMQ_OPT_INT, "Q",
                               "the new quantity (0 removes)", INT64_MIN + 1,
                               INT64_MAX, &quantity },
                             S_REQUEST_ID_FLAG (request_id),
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[2];
    int rc = commands_parse (globals, "update",
                             "USER ITEM_ID --quantity Q [--request-id ID]",
                             table, argc, argv, positional, 2);
    if (rc == COMMANDS_GO)
        rc = commands_require ("update", "quantity", quantity != S_UNSET);
    if (rc == COMMANDS_GO) {
        cmq_cart_request_t request;
        s_request_init (&request, CMQ_CART_UPDATE, positional[0], request_id);
        request.item.id = cmq_cart_str (positional[1]);
        request.item.quantity = quantity;
        rc = s_cart_call (globals, &request);
    }
    cmq_options_free (table);
    return rc;
}

int
cart_commands_clear (commands_globals_t *globals, int argc, char **argv)
{
    char *request_id = NULL;
    cmq_option_t table[] = { S_REQUEST_ID_FLAG (request_id),
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = commands_parse (globals, "clear", "USER [--request-id ID]", table,
                             argc, argv, positional, 1);
    if (rc == COMMANDS_GO) {
        cmq_cart_request_t request;
        s_request_init (&request, CMQ_CART_CLEAR, positional[0], request_id);
        rc = s_cart_call (globals, &request);
    }
    cmq_options_free (table);
    return rc;
}
