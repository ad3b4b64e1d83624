//  test_broker_outbox.c - the one frame emitter and its sinks
//
//  A recording sink stands where the shell's socket sink stands
//  (broker_wire.c): it sees the frames, their order and their "more"
//  flags exactly as the ROUTER would, and can refuse a message the way a
//  full peer does.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_message.h"
#include "broker_outbox.h"
#include "broker_tokens.h"

#define S_MAX_FRAMES 64

typedef struct {
    broker_sink_t base;
    zmsg_t *frames;           //  every frame accepted, all messages
    bool more[S_MAX_FRAMES];  //  each frame's flag
    size_t count;             //  frames accepted
    size_t messages;          //  messages ended (a frame without more)
    int refuse_errno;         //  refuse every routing id with this
    bool at_start;            //  the next frame is a routing id
} recorder_t;

static int
s_record_bytes (broker_sink_t *sink, const void *data, size_t size, bool more)
{
    recorder_t *self = (recorder_t *) sink;
    if (self->at_start && self->refuse_errno) {
        errno = self->refuse_errno;
        return -1;
    }
    assert_true (self->count < S_MAX_FRAMES);
    zmsg_addmem (self->frames, data, size);
    self->more[self->count++] = more;
    self->at_start = !more;
    if (!more)
        self->messages++;
    return 0;
}

static void
s_record_frame (broker_sink_t *sink, zmq_msg_t *frame, bool more)
{
    assert_false (((recorder_t *) sink)->at_start);
    s_record_bytes (sink, zmq_msg_data (frame), zmq_msg_size (frame), more);
}

static void
s_recorder_init (recorder_t *self)
{
    memset (self, 0, sizeof (*self));
    self->base.bytes = s_record_bytes;
    self->base.frame = s_record_frame;
    self->frames = zmsg_new ();
    self->at_start = true;
}

static broker_peer_t
s_peer (const char *name)
{
    broker_peer_t peer = { (const byte *) name, strlen (name) };
    return peer;
}

//  A request from client "C" with body frames "a" and "bb", tokened.
static broker_request_t *
s_request (broker_tokens_t *tokens)
{
    zmq_msg_t client, body[2];
    zmq_msg_init_size (&client, 1);
    memcpy (zmq_msg_data (&client), "C", 1);
    zmq_msg_init_size (&body[0], 1);
    memcpy (zmq_msg_data (&body[0]), "a", 1);
    zmq_msg_init_size (&body[1], 2);
    memcpy (zmq_msg_data (&body[1]), "bb", 2);
    broker_request_t *request = broker_request_new (&client, body, 2, NULL, 0);
    zmq_msg_close (&client);
    zmq_msg_close (&body[0]);
    zmq_msg_close (&body[1]);
    broker_tokens_assign (tokens, request);
    return request;
}

//  One of each: REQUEST (fresh and packed), reply, MMI answer, command.
static void
s_fill (broker_outbox_t *outbox, broker_request_t *request)
{
    broker_outbox_add_request (outbox, s_peer ("W"), request);
    zmq_msg_t body[2];
    zmq_msg_init_size (&body[0], 3);
    memcpy (zmq_msg_data (&body[0]), "one", 3);
    zmq_msg_init_size (&body[1], 3);
    memcpy (zmq_msg_data (&body[1]), "two", 3);
    broker_outbox_add_reply (outbox, s_peer ("C"), "echo", body, 2);
    zmq_msg_close (&body[0]);
    zmq_msg_close (&body[1]);
    broker_outbox_add_reply_bytes (outbox, s_peer ("C"), "mmi.service", "200",
                                   3);
    broker_outbox_add_command (outbox, s_peer ("W"), CMQ_MDPW_HEARTBEAT);
}

static void
s_assert_frames_equal (zmsg_t *left, zmsg_t *right)
{
    assert_int_equal (zmsg_size (left), zmsg_size (right));
    zframe_t *a = zmsg_first (left), *b = zmsg_first (right);
    for (; a && b; a = zmsg_next (left), b = zmsg_next (right))
        assert_true (zframe_eq (a, b));
}

static void
flush_and_pop_emit_the_same_frames (void **state)
{
    (void) state;
    broker_tokens_t *tokens = broker_tokens_new ();
    broker_request_t *request = s_request (tokens);
    broker_outbox_t *outbox = broker_outbox_new ();
    s_fill (outbox, request);
    broker_request_pack (request);  //  a queued request sends the same bytes
    s_fill (outbox, request);
    assert_int_equal (broker_outbox_size (outbox), 8);

    //  What tests pop, message by message...
    broker_outbox_t *copy = broker_outbox_new ();
    s_fill (copy, request);
    s_fill (copy, request);
    zmsg_t *popped = zmsg_new ();
    zmsg_t *msg;
    size_t messages = 0;
    while ((msg = broker_outbox_pop (copy))) {
        zframe_t *frame;
        while ((frame = zmsg_pop (msg)))
            zmsg_append (popped, &frame);
        zmsg_destroy (&msg);
        messages++;
    }
    //  ...is what a flush hands the sink, with "more" on all but the last
    //  frame of each message.
    recorder_t sink;
    s_recorder_init (&sink);
    broker_outbox_sent_t sent = { 0 };
    broker_outbox_flush (outbox, &sink.base, &sent);
    assert_int_equal (broker_outbox_size (outbox), 0);
    assert_int_equal (sink.messages, messages);
    assert_int_equal (messages, 8);
    s_assert_frames_equal (sink.frames, popped);
    //  REQUEST: W "" MDPW01 0x02 token "" a bb: 8 frames, last one ends.
    assert_int_equal (sink.count, 2 * (8 + 6 + 5 + 4));
    for (size_t index = 0; index < 7; index++)
        assert_true (sink.more[index]);
    assert_false (sink.more[7]);
    zframe_t *frame = zmsg_first (sink.frames);
    assert_true (zframe_streq (frame, "W"));
    for (int index = 0; index < 4; index++)
        frame = zmsg_next (sink.frames);
    assert_memory_equal (zframe_data (frame), request->token,
                         BROKER_REQUEST_TOKEN_BYTES);
    assert_int_equal (sent.replies_full + sent.requests_full + sent.others_full,
                      0);
    zmsg_destroy (&popped);
    zmsg_destroy (&sink.frames);
    broker_outbox_destroy (&copy);
    broker_outbox_destroy (&outbox);
    broker_tokens_release (tokens, request);
    broker_request_unref (&request);
    broker_tokens_destroy (&tokens);
}

static void
a_refused_routing_id_drops_the_message_and_notes_a_full_peer (void **state)
{
    (void) state;
    broker_tokens_t *tokens = broker_tokens_new ();
    broker_request_t *request = s_request (tokens);
    broker_outbox_t *outbox = broker_outbox_new ();
    s_fill (outbox, request);
    recorder_t sink;
    s_recorder_init (&sink);
    sink.refuse_errno = EAGAIN;
    broker_outbox_sent_t sent = { 0 };
    broker_outbox_flush (outbox, &sink.base, &sent);
    assert_int_equal (sink.count, 0);
    assert_int_equal (sent.requests_full, 1);
    assert_int_equal (sent.replies_full, 1);
    assert_int_equal (sent.others_full, 2);  //  the MMI answer, HEARTBEAT
    assert_int_equal (sent.last_full_size, 1);
    assert_memory_equal (sent.last_full_peer, "W", 1);

    //  A peer that is gone is no full peer.
    memset (&sent, 0, sizeof (sent));
    s_fill (outbox, request);
    sink.refuse_errno = EHOSTUNREACH;
    broker_outbox_flush (outbox, &sink.base, &sent);
    assert_int_equal (sink.count, 0);
    assert_int_equal (sent.replies_full + sent.requests_full + sent.others_full,
                      0);
    zmsg_destroy (&sink.frames);
    broker_outbox_destroy (&outbox);
    broker_tokens_release (tokens, request);
    broker_request_unref (&request);
    broker_tokens_destroy (&tokens);
}

static void
input_past_the_frame_limit_is_kept_truncated (void **state)
{
    (void) state;
    zmsg_t *msg = zmsg_new ();
    for (int index = 0; index < BROKER_MESSAGE_MAX_FRAMES + 5; index++)
        zmsg_addstrf (msg, "%d", index);
    broker_message_t *message = broker_message_new ();
    broker_message_set_from_zmsg (message, msg);
    assert_int_equal (message->count, BROKER_MESSAGE_MAX_FRAMES);
    assert_true (message->is_too_long);
    assert_int_equal (zmq_msg_size (&message->frames[10]), 2);
    assert_memory_equal (zmq_msg_data (&message->frames[10]), "10", 2);
    broker_message_close (message);
    assert_int_equal (message->count, 0);
    assert_false (message->is_too_long);
    broker_message_destroy (&message);
    zmsg_destroy (&msg);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (flush_and_pop_emit_the_same_frames),
        cmocka_unit_test (
          a_refused_routing_id_drops_the_message_and_notes_a_full_peer),
        cmocka_unit_test (input_past_the_frame_limit_is_kept_truncated),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
