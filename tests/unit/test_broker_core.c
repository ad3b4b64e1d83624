//  test_broker_core.c - the routing state machine, driven without sockets

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <msgpack.h>

#include "broker_core.h"
#include "cartmq/log.h"
#include "cartmq/mdp.h"

#define MS 1000LL  //  the core counts microseconds

typedef struct {
    broker_core_t *core;
    broker_outbox_t *outbox;
} fixture_t;

static int
setup (void **state)
{
    cmq_log_init ("test", CMQ_LOG_ERROR, false);
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    broker_config_t config;
    broker_config_defaults (&config);
    config.heartbeat_ms = 1000;
    config.liveness = 3;
    config.queue_timeout_ms = 5000;
    config.max_queued = 3;
    fx->core = broker_core_new (&config, 0);
    fx->outbox = broker_outbox_new ();
    *state = fx;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    broker_core_destroy (&fx->core);
    broker_outbox_destroy (&fx->outbox);
    free (fx);
    return 0;
}

//  Messages as the ROUTER reads them: routing id first.

static zmsg_t *
client_request (const char *client, const char *service, const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, client);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    zmsg_addstr (msg, service);
    zmsg_addstr (msg, body);
    return msg;
}

static zmsg_t *
worker_command (const char *worker, int command)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, worker);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPW_HEADER);
    byte code = (byte) command;
    zmsg_addmem (msg, &code, 1);
    return msg;
}

static zmsg_t *
worker_ready (const char *worker, const char *service, const char *credit)
{
    zmsg_t *msg = worker_command (worker, CMQ_MDPW_READY);
    zmsg_addstr (msg, service);
    if (credit)
        zmsg_addstr (msg, credit);
    return msg;
}

static zmsg_t *
worker_reply (const char *worker, const char *client, const char *body)
{
    zmsg_t *msg = worker_command (worker, CMQ_MDPW_REPLY);
    zmsg_addstr (msg, client);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, body);
    return msg;
}

static void
receive (fixture_t *fx, zmsg_t *msg, int64_t now_us)
{
    broker_core_on_message (fx->core, &msg, now_us, fx->outbox);
    assert_null (msg);
}

static char *
frame_string (zmsg_t *msg, size_t index)
{
    zframe_t *frame = zmsg_first (msg);
    while (frame && index--)
        frame = zmsg_next (msg);
    assert_non_null (frame);
    return zframe_strdup (frame);
}

static void
assert_frame (zmsg_t *msg, size_t index, const char *expected)
{
    char *actual = frame_string (msg, index);
    assert_string_equal (actual, expected);
    free (actual);
}

static int
command_of (zmsg_t *msg)
{
    zframe_t *frame = zmsg_first (msg);
    for (int index = 0; index < 3; index++)
        frame = zmsg_next (msg);
    assert_non_null (frame);
    assert_int_equal (zframe_size (frame), 1);
    return zframe_data (frame)[0];
}

//  Pops the next message and checks it is a REQUEST to worker for client
//  with body.
static void
expect_request (fixture_t *fx, const char *worker, const char *client,
                const char *body)
{
    zmsg_t *msg = broker_outbox_pop (fx->outbox);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 7);
    assert_frame (msg, 0, worker);
    assert_frame (msg, 1, "");
    assert_frame (msg, 2, CMQ_MDPW_HEADER);
    assert_int_equal (command_of (msg), CMQ_MDPW_REQUEST);
    assert_frame (msg, 4, client);
    assert_frame (msg, 5, "");
    assert_frame (msg, 6, body);
    zmsg_destroy (&msg);
}

static void
expect_client_reply (fixture_t *fx, const char *client, const char *service,
                     const char *body)
{
    zmsg_t *msg = broker_outbox_pop (fx->outbox);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 5);
    assert_frame (msg, 0, client);
    assert_frame (msg, 1, "");
    assert_frame (msg, 2, CMQ_MDPC_HEADER);
    assert_frame (msg, 3, service);
    assert_frame (msg, 4, body);
    zmsg_destroy (&msg);
}

static void
expect_command (fixture_t *fx, const char *peer, int command)
{
    zmsg_t *msg = broker_outbox_pop (fx->outbox);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 4);
    assert_frame (msg, 0, peer);
    assert_frame (msg, 2, CMQ_MDPW_HEADER);
    assert_int_equal (command_of (msg), command);
    zmsg_destroy (&msg);
}

static void
expect_nothing (fixture_t *fx)
{
    assert_int_equal (broker_outbox_size (fx->outbox), 0);
}

//  ---------------------------------------------------------------------

static void
request_waits_until_a_worker_is_ready (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, client_request ("c1", "echo", "hello"), 0);
    expect_nothing (fx);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 1);
    receive (fx, worker_ready ("w1", "echo", NULL), 10 * MS);
    expect_request (fx, "w1", "c1", "hello");
    assert_int_equal (broker_core_queued (fx->core, "echo"), 0);
}

static void
reply_reaches_the_client_with_the_service_name (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "ping"), 0);
    expect_request (fx, "w1", "c1", "ping");
    receive (fx, worker_reply ("w1", "c1", "pong"), 0);
    expect_client_reply (fx, "c1", "echo", "pong");
    assert_int_equal (broker_core_counters (fx->core)->requests, 1);
    assert_int_equal (broker_core_counters (fx->core)->replies, 1);
}

static void
sequential_requests_rotate_over_workers (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    const char *workers[] = { "w1", "w2", "w3" };
    for (int index = 0; index < 3; index++)
        receive (fx, worker_ready (workers[index], "echo", NULL), index);
    for (int round = 0; round < 6; round++) {
        const char *expected = workers[round % 3];
        receive (fx, client_request ("c1", "echo", "x"), 10);
        expect_request (fx, expected, "c1", "x");
        receive (fx, worker_reply (expected, "c1", "y"), 10);
        expect_client_reply (fx, "c1", "echo", "y");
    }
}

static void
queued_requests_are_served_in_arrival_order (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, client_request ("c1", "echo", "first"), 0);
    receive (fx, client_request ("c2", "echo", "second"), 1);
    receive (fx, worker_ready ("w1", "echo", NULL), 2);
    expect_request (fx, "w1", "c1", "first");
    expect_nothing (fx);
    receive (fx, worker_reply ("w1", "c1", "r1"), 3);
    expect_client_reply (fx, "c1", "echo", "r1");
    expect_request (fx, "w1", "c2", "second");
}

static void
silent_worker_is_forgotten_after_liveness_intervals (void **state)
{
    fixture_t *fx = (fixture_t *) *state;  //  heartbeat 1000, liveness 3
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    broker_core_on_tick (fx->core, 2999 * MS, fx->outbox);
    assert_int_equal (broker_core_worker_count (fx->core), 1);
    broker_core_on_tick (fx->core, 3000 * MS, fx->outbox);
    assert_int_equal (broker_core_worker_count (fx->core), 0);
    assert_int_equal (broker_core_service_count (fx->core), 0);
}

static void
heartbeat_from_worker_keeps_it_alive (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, worker_command ("w1", CMQ_MDPW_HEARTBEAT), 2500 * MS);
    broker_core_on_tick (fx->core, 5000 * MS, fx->outbox);
    assert_int_equal (broker_core_worker_count (fx->core), 1);
    broker_core_on_tick (fx->core, 5500 * MS, fx->outbox);
    assert_int_equal (broker_core_worker_count (fx->core), 0);
}

static void
broker_heartbeats_a_worker_it_has_not_written_to (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    broker_core_on_tick (fx->core, 999 * MS, fx->outbox);
    expect_nothing (fx);
    broker_core_on_tick (fx->core, 1000 * MS, fx->outbox);
    expect_command (fx, "w1", CMQ_MDPW_HEARTBEAT);
    //  A request counts as traffic: no heartbeat one interval after it.
    receive (fx, client_request ("c1", "echo", "x"), 1500 * MS);
    expect_request (fx, "w1", "c1", "x");
    broker_core_on_tick (fx->core, 2000 * MS, fx->outbox);
    expect_nothing (fx);
    broker_core_on_tick (fx->core, 2500 * MS, fx->outbox);
    expect_command (fx, "w1", CMQ_MDPW_HEARTBEAT);
}

static void
mmi_service_says_200_only_while_workers_live (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, client_request ("c1", "mmi.service", "echo"), 0);
    expect_client_reply (fx, "c1", "mmi.service", "404");
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, client_request ("c1", "mmi.service", "echo"), 0);
    expect_client_reply (fx, "c1", "mmi.service", "200");
    receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 0);
    receive (fx, client_request ("c1", "mmi.service", "echo"), 0);
    expect_client_reply (fx, "c1", "mmi.service", "404");
}

static void
unknown_mmi_service_answers_501 (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, client_request ("c1", "mmi.nonsense", "x"), 0);
    expect_client_reply (fx, "c1", "mmi.nonsense", "501");
    assert_int_equal (broker_core_service_count (fx->core), 0);
}

//  Unpacks the single body frame of a client reply; the objects point
//  into the message, which the caller destroys after.
static zmsg_t *
unpack_reply_body (fixture_t *fx, msgpack_unpacked *unpacked)
{
    zmsg_t *msg = broker_outbox_pop (fx->outbox);
    assert_non_null (msg);
    zframe_t *body = zmsg_last (msg);
    msgpack_unpacked_init (unpacked);
    size_t offset = 0;
    assert_int_equal (msgpack_unpack_next (unpacked,
                                           (const char *) zframe_data (body),
                                           zframe_size (body), &offset),
                      MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (offset, zframe_size (body));
    return msg;
}

static const msgpack_object *
map_get (const msgpack_object *map, const char *key)
{
    assert_int_equal (map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object *name = &map->via.map.ptr[index].key;
        if (name->type == MSGPACK_OBJECT_STR &&
            name->via.str.size == strlen (key) &&
            memcmp (name->via.str.ptr, key, name->via.str.size) == 0)
            return &map->via.map.ptr[index].val;
    }
    fail_msg ("no key %s", key);
    return NULL;
}

static uint64_t
map_uint (const msgpack_object *map, const char *key)
{
    const msgpack_object *value = map_get (map, key);
    assert_int_equal (value->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return value->via.u64;
}

static void
mmi_services_lists_workers_idle_and_queued (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "x"), 0);
    expect_request (fx, "w1", "c1", "x");
    receive (fx, client_request ("c1", "lonely", "x"), 0);
    receive (fx, client_request ("c1", "mmi.services", ""), 0);
    msgpack_unpacked unpacked;
    zmsg_t *reply = unpack_reply_body (fx, &unpacked);
    msgpack_object *list = &unpacked.data;
    assert_int_equal (list->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal (list->via.array.size, 2);
    const msgpack_object *echo = &list->via.array.ptr[0];
    assert_int_equal (map_uint (echo, "workers"), 2);
    assert_int_equal (map_uint (echo, "idle"), 1);
    assert_int_equal (map_uint (echo, "queued"), 0);
    const msgpack_object *lonely = &list->via.array.ptr[1];
    assert_int_equal (map_uint (lonely, "workers"), 0);
    assert_int_equal (map_uint (lonely, "queued"), 1);
    msgpack_unpacked_destroy (&unpacked);
    zmsg_destroy (&reply);
}

static void
mmi_stats_counts_requests_replies_and_invalid (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    for (int index = 0; index < 3; index++) {
        receive (fx, client_request ("c1", "echo", "x"), index * MS);
        expect_request (fx, "w1", "c1", "x");
        receive (fx, worker_reply ("w1", "c1", "y"), index * MS + 250);
        expect_client_reply (fx, "c1", "echo", "y");
    }
    receive (fx, worker_command ("stranger", 9), 0);
    expect_command (fx, "stranger", CMQ_MDPW_DISCONNECT);
    receive (fx, client_request ("c1", "mmi.stats", ""), 61 * MS);
    msgpack_unpacked unpacked;
    zmsg_t *reply = unpack_reply_body (fx, &unpacked);
    const msgpack_object *stats = &unpacked.data;
    assert_int_equal (map_uint (stats, "requests"), 3);
    assert_int_equal (map_uint (stats, "replies"), 3);
    assert_int_equal (map_uint (stats, "invalid"), 1);
    assert_int_equal (map_uint (stats, "workers"), 1);
    assert_int_equal (map_uint (stats, "redispatched"), 0);
    assert_int_equal (map_uint (map_get (stats, "dropped"), "expired"), 0);
    const msgpack_object *services = map_get (stats, "services");
    assert_int_equal (services->via.array.size, 1);
    const msgpack_object *echo = &services->via.array.ptr[0];
    assert_int_equal (map_uint (echo, "requests"), 3);
    assert_int_equal (map_uint (echo, "mean_us"), 250);
    assert_true (map_uint (echo, "p99_us") >= 250);
    assert_true (map_uint (echo, "p99_us") < 300);
    msgpack_unpacked_destroy (&unpacked);
    zmsg_destroy (&reply);
}

static void
ready_for_an_mmi_service_gets_disconnect (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "mmi.service", NULL), 0);
    expect_command (fx, "w1", CMQ_MDPW_DISCONNECT);
    assert_int_equal (broker_core_worker_count (fx->core), 0);
}

//  Each invalid message earns a DISCONNECT and the peer is forgotten.
static void
check_refused (fixture_t *fx, zmsg_t *msg)
{
    uint64_t invalid = broker_core_counters (fx->core)->invalid;
    receive (fx, msg, 0);
    expect_command (fx, "w1", CMQ_MDPW_DISCONNECT);
    expect_nothing (fx);
    assert_int_equal (broker_core_counters (fx->core)->invalid, invalid + 1);
    assert_int_equal (broker_core_worker_count (fx->core), 0);
}

static void
invalid_traffic_is_refused_with_disconnect (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zmsg_t *msg;

    msg = zmsg_new ();  //  unknown header
    zmsg_addstr (msg, "w1");
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, "MDPX99");
    check_refused (fx, msg);

    msg = zmsg_new ();  //  no delimiter
    zmsg_addstr (msg, "w1");
    zmsg_addstr (msg, "MDPW01");
    check_refused (fx, msg);

    msg = zmsg_new ();  //  only the routing id
    zmsg_addstr (msg, "w1");
    check_refused (fx, msg);

    check_refused (fx, worker_command ("w1", 0));  //  unknown command
    check_refused (fx, worker_command ("w1", 6));
    check_refused (fx, worker_command ("w1", CMQ_MDPW_READY));  //  no service
    check_refused (fx, worker_ready ("w1", "echo", "0"));       //  credits
    check_refused (fx, worker_ready ("w1", "echo", "1001"));
    check_refused (fx, worker_ready ("w1", "echo", "abc"));
    check_refused (fx, worker_ready ("w1", "echo", "+5"));
    msg = worker_ready ("w1", "echo", "5");
    zmsg_addstr (msg, "extra");
    check_refused (fx, msg);
    check_refused (fx, worker_reply ("w1", "c1", "forged"));  //  unknown
    msg = worker_command ("w1", CMQ_MDPW_REPLY);              //  missing frames
    zmsg_addstr (msg, "c1");
    check_refused (fx, msg);

    msg = zmsg_new ();  //  client without service
    zmsg_addstr (msg, "w1");
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    check_refused (fx, msg);
    msg = zmsg_new ();  //  client without body
    zmsg_addstr (msg, "w1");
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    zmsg_addstr (msg, "echo");
    check_refused (fx, msg);
    assert_int_equal (broker_core_service_count (fx->core), 0);
}

//  A body may have many frames, up to the broker's limit on frames per
//  message; one frame more is invalid traffic.
static void
many_frames_pass_and_too_many_are_refused (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    zmsg_t *msg = client_request ("c1", "echo", "part 0");
    //  routing id, "", header, service and 1020 body frames: the limit
    for (int part = 1; part < BROKER_MESSAGE_MAX_FRAMES - 4; part++)
        zmsg_addstrf (msg, "part %d", part);
    assert_int_equal (zmsg_size (msg), BROKER_MESSAGE_MAX_FRAMES);
    receive (fx, msg, 0);
    msg = broker_outbox_pop (fx->outbox);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 6 + BROKER_MESSAGE_MAX_FRAMES - 4);
    assert_frame (msg, 6, "part 0");
    assert_frame (msg, zmsg_size (msg) - 1, "part 1019");
    zmsg_destroy (&msg);

    //  The reply comes back with as many frames, in order.
    msg = worker_command ("w1", CMQ_MDPW_REPLY);
    zmsg_addstr (msg, "c1");
    zmsg_addmem (msg, NULL, 0);
    for (int part = 0; part < 5; part++)
        zmsg_addstrf (msg, "answer %d", part);
    receive (fx, msg, 0);
    msg = broker_outbox_pop (fx->outbox);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 4 + 5);
    assert_frame (msg, 3, "echo");
    assert_frame (msg, 4, "answer 0");
    assert_frame (msg, 8, "answer 4");
    zmsg_destroy (&msg);

    uint64_t invalid = broker_core_counters (fx->core)->invalid;
    msg = client_request ("c1", "echo", "part 0");
    for (int part = 1; part < BROKER_MESSAGE_MAX_FRAMES - 3; part++)
        zmsg_addstrf (msg, "part %d", part);
    receive (fx, msg, 0);
    expect_command (fx, "c1", CMQ_MDPW_DISCONNECT);
    expect_nothing (fx);
    assert_int_equal (broker_core_counters (fx->core)->invalid, invalid + 1);
    assert_int_equal (broker_core_counters (fx->core)->requests, 1);
}

static void
registered_worker_breaking_protocol_is_forgotten (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    check_refused (fx, worker_ready ("w1", "echo", NULL));  //  READY twice

    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    check_refused (fx, worker_reply ("w1", "c9", "forged"));  //  no request

    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    zmsg_t *msg = worker_command ("w1", CMQ_MDPW_REQUEST);
    zmsg_addstr (msg, "c1");
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, "x");
    check_refused (fx, msg);
}

static void
forged_reply_never_reaches_a_client (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "x"), 0);
    expect_request (fx, "w1", "c1", "x");
    //  w2 pretends to answer c1, whose request is on w1.
    receive (fx, worker_reply ("w2", "c1", "forged"), 0);
    expect_command (fx, "w2", CMQ_MDPW_DISCONNECT);
    expect_nothing (fx);
    receive (fx, worker_reply ("w1", "c1", "real"), 0);
    expect_client_reply (fx, "c1", "echo", "real");
}

static void
heartbeat_from_unknown_worker_gets_disconnect (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_command ("ghost", CMQ_MDPW_HEARTBEAT), 0);
    expect_command (fx, "ghost", CMQ_MDPW_DISCONNECT);
    assert_int_equal (broker_core_counters (fx->core)->invalid, 0);
    receive (fx, worker_command ("ghost", CMQ_MDPW_DISCONNECT), 0);
    expect_nothing (fx);
}

static void
worker_credit_allows_that_many_in_flight (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", "2"), 0);
    receive (fx, client_request ("c1", "echo", "a"), 0);
    receive (fx, client_request ("c1", "echo", "b"), 0);
    receive (fx, client_request ("c1", "echo", "c"), 0);
    expect_request (fx, "w1", "c1", "a");
    expect_request (fx, "w1", "c1", "b");
    expect_nothing (fx);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 1);
    receive (fx, worker_reply ("w1", "c1", "ra"), 0);
    expect_client_reply (fx, "c1", "echo", "ra");
    expect_request (fx, "w1", "c1", "c");
}

static void
credit_workers_share_requests_front_first (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", "2"), 0);
    receive (fx, worker_ready ("w2", "echo", "2"), 0);
    const char *expected[] = { "w1", "w2", "w1", "w2" };
    for (int index = 0; index < 4; index++) {
        receive (fx, client_request ("c1", "echo", "x"), 0);
        expect_request (fx, expected[index], "c1", "x");
    }
    receive (fx, client_request ("c1", "echo", "x"), 0);
    expect_nothing (fx);
    //  w2 replies first, so it gets the queued request.
    receive (fx, worker_reply ("w2", "c1", "y"), 0);
    expect_client_reply (fx, "c1", "echo", "y");
    expect_request (fx, "w2", "c1", "x");
}

static void
dead_workers_requests_go_to_the_next_worker (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "job"), 0);
    expect_request (fx, "w1", "c1", "job");
    receive (fx, client_request ("c2", "echo", "later"), 0);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    expect_request (fx, "w2", "c2", "later");
    //  w1 falls silent: its request goes to the front, before anything
    //  that arrived after it, and to w2 once w2 is free.
    receive (fx, client_request ("c3", "echo", "latest"), 1 * MS);
    receive (fx, worker_command ("w2", CMQ_MDPW_HEARTBEAT), 2500 * MS);
    broker_core_on_tick (fx->core, 3000 * MS, fx->outbox);
    assert_int_equal (broker_core_worker_count (fx->core), 1);
    expect_command (fx, "w2", CMQ_MDPW_HEARTBEAT);  //  busy, not idle
    expect_nothing (fx);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 2);
    receive (fx, worker_reply ("w2", "c2", "done"), 3000 * MS);
    expect_client_reply (fx, "c2", "echo", "done");
    expect_request (fx, "w2", "c1", "job");
    assert_int_equal (broker_core_counters (fx->core)->redispatched, 1);
}

static void
request_is_dropped_after_two_redispatches (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, client_request ("c1", "echo", "poison"), 0);
    const char *workers[] = { "w1", "w2", "w3" };
    for (int index = 0; index < 3; index++) {
        receive (fx, worker_ready (workers[index], "echo", NULL), 0);
        expect_request (fx, workers[index], "c1", "poison");
        receive (fx, worker_command (workers[index], CMQ_MDPW_DISCONNECT), 0);
    }
    expect_nothing (fx);
    const broker_counters_t *counters = broker_core_counters (fx->core);
    assert_int_equal (counters->redispatched, 2);
    assert_int_equal (counters->dropped_redispatch_limit, 1);
    assert_int_equal (broker_core_service_count (fx->core), 0);
}

static void
queued_request_expires_after_queue_timeout (void **state)
{
    fixture_t *fx = (fixture_t *) *state;  //  queue timeout 5000 ms
    receive (fx, client_request ("c1", "echo", "x"), 0);
    broker_core_on_tick (fx->core, 4999 * MS, fx->outbox);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 1);
    broker_core_on_tick (fx->core, 5000 * MS, fx->outbox);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 0);
    assert_int_equal (broker_core_counters (fx->core)->dropped_expired, 1);
    assert_int_equal (broker_core_service_count (fx->core), 0);
    receive (fx, worker_ready ("w1", "echo", NULL), 5001 * MS);
    expect_nothing (fx);
}

static void
full_queue_drops_new_requests (void **state)
{
    fixture_t *fx = (fixture_t *) *state;  //  max_queued 3
    for (int index = 0; index < 5; index++)
        receive (fx, client_request ("c1", "echo", "x"), 0);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 3);
    assert_int_equal (broker_core_counters (fx->core)->dropped_queue_full, 2);
    assert_int_equal (broker_core_counters (fx->core)->requests, 3);
}

static void
multi_frame_bodies_pass_through_intact (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    zmsg_t *msg = client_request ("c1", "echo", "part1");
    zmsg_addstr (msg, "part2");
    receive (fx, msg, 0);
    msg = broker_outbox_pop (fx->outbox);
    assert_int_equal (zmsg_size (msg), 8);
    assert_frame (msg, 6, "part1");
    assert_frame (msg, 7, "part2");
    zmsg_destroy (&msg);
    msg = worker_reply ("w1", "c1", "r1");
    zmsg_addstr (msg, "r2");
    receive (fx, msg, 0);
    msg = broker_outbox_pop (fx->outbox);
    assert_int_equal (zmsg_size (msg), 6);
    assert_frame (msg, 4, "r1");
    assert_frame (msg, 5, "r2");
    zmsg_destroy (&msg);
}

static void
queued_multi_frame_request_survives_packing_and_redispatch (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zmsg_t *msg = client_request ("c1", "echo", "part1");
    zmsg_addmem (msg, NULL, 0);  //  empty frames survive too
    zmsg_addstr (msg, "a longer third part, well over thirty-three bytes");
    receive (fx, msg, 0);
    for (int round = 0; round < 2; round++) {
        const char *worker = round ? "w2" : "w1";
        receive (fx, worker_ready (worker, "echo", NULL), 0);
        msg = broker_outbox_pop (fx->outbox);
        assert_int_equal (zmsg_size (msg), 9);
        assert_frame (msg, 0, worker);
        assert_frame (msg, 4, "c1");
        assert_frame (msg, 6, "part1");
        assert_frame (msg, 7, "");
        assert_frame (msg, 8,
                      "a longer third part, well over thirty-three bytes");
        zmsg_destroy (&msg);
        if (round == 0)
            receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 0);
    }
    receive (fx, worker_reply ("w2", "c1", "done"), 0);
    expect_client_reply (fx, "c1", "echo", "done");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
        T (request_waits_until_a_worker_is_ready),
        T (reply_reaches_the_client_with_the_service_name),
        T (sequential_requests_rotate_over_workers),
        T (queued_requests_are_served_in_arrival_order),
        T (silent_worker_is_forgotten_after_liveness_intervals),
        T (heartbeat_from_worker_keeps_it_alive),
        T (broker_heartbeats_a_worker_it_has_not_written_to),
        T (mmi_service_says_200_only_while_workers_live),
        T (unknown_mmi_service_answers_501),
        T (mmi_services_lists_workers_idle_and_queued),
        T (mmi_stats_counts_requests_replies_and_invalid),
        T (ready_for_an_mmi_service_gets_disconnect),
        T (invalid_traffic_is_refused_with_disconnect),
        T (many_frames_pass_and_too_many_are_refused),
        T (registered_worker_breaking_protocol_is_forgotten),
        T (forged_reply_never_reaches_a_client),
        T (heartbeat_from_unknown_worker_gets_disconnect),
        T (worker_credit_allows_that_many_in_flight),
        T (credit_workers_share_requests_front_first),
        T (dead_workers_requests_go_to_the_next_worker),
        T (request_is_dropped_after_two_redispatches),
        T (queued_request_expires_after_queue_timeout),
        T (full_queue_drops_new_requests),
        T (multi_frame_bodies_pass_through_intact),
        T (queued_multi_frame_request_survives_packing_and_redispatch),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
