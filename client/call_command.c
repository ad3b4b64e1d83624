//  call_command.c - `cartmq call SERVICE [BODY_JSON]` (contract §8)

#include "call_command.h"

#include "json_pack.h"
#include "json_print.h"

#include "cartmq/mdp.h"

#include <msgpack.h>
#include <string.h>

#define S_USAGE "SERVICE [BODY_JSON]"

//  One frame as JSON: its msgpack value, or its bytes as a string.
static void
s_print_frame (FILE *out, zframe_t *frame)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    char *json = NULL;
    if (json_print_unpack (zframe_data (frame), zframe_size (frame),
                           &unpacked) == 0)
        json = json_print_object (&unpacked.data, NULL);
    msgpack_unpacked_destroy (&unpacked);
    if (json)
        fputs (json, out);
    else
        commands_print_json_string (out, (const char *) zframe_data (frame),
                                    zframe_size (frame));
    free (json);
}

void
call_command_print_reply (FILE *out, zmsg_t *reply)
{
    assert (reply);
    bool is_one = zmsg_size (reply) == 1;
    if (!is_one)
        fputc ('[', out);
    //  zmsg_first resets the cursor: compare with the first frame once.
    zframe_t *first = zmsg_first (reply);
    for (zframe_t *frame = first; frame; frame = zmsg_next (reply)) {
        if (frame != first)
            fputc (',', out);
        s_print_frame (out, frame);
    }
    if (!is_one)
        fputc (']', out);
    fputc ('\n', out);
}

//  The request body: the JSON packed, or one empty frame.
static zmsg_t *
s_body_new (const char *json)
{
    zmsg_t *body = zmsg_new ();
    if (!json) {
        zmsg_addmem (body, "", 0);
        return body;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    char error[256];
    if (json_pack_text (json, strlen (json), &buffer, error, sizeof (error))) {
        fprintf (stderr, "cartmq call: BODY_JSON: %s\n", error);
        zmsg_destroy (&body);
    } else
        zmsg_addmem (body, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return body;
}

int
call_command_run (commands_globals_t *globals, int argc, char **argv)
{
    cmq_option_t table[] = { { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[2] = { NULL, NULL };
    int count = 0;
    int rc = commands_parse_some (globals, "call", S_USAGE, table, argc, argv,
                                  positional, 1, 2, &count);
    size_t service_size = positional[0] ? strlen (positional[0]) : 0;
    if (rc == COMMANDS_GO &&
        (service_size == 0 || service_size > CMQ_MAX_SERVICE_NAME_BYTES)) {
        fprintf (stderr, "cartmq call: SERVICE must be 1..%d bytes\n",
                 CMQ_MAX_SERVICE_NAME_BYTES);
        rc = COMMANDS_EXIT_USAGE;
    }
    zmsg_t *body = rc == COMMANDS_GO ? s_body_new (positional[1]) : NULL;
    if (rc == COMMANDS_GO && !body)
        rc = COMMANDS_EXIT_USAGE;
    cmq_client_t *client = commands_client_when_go (globals, &rc);
    if (rc == COMMANDS_GO) {
        int64_t started_ms = zclock_mono ();
        zmsg_t *reply = NULL;
        if (cmq_client_call (client, positional[0], &body, &reply) == 0) {
            call_command_print_reply (stdout, reply);
            rc = COMMANDS_EXIT_OK;
        } else
            rc = commands_no_reply (client, NULL);
        commands_report_call (globals, client, started_ms);
        zmsg_destroy (&reply);
    }
    zmsg_destroy (&body);
    cmq_client_destroy (&client);
    cmq_options_free (table);
    return rc;
}
