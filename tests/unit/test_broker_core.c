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

//  A REQUEST's client address is a token naming that request (§3). The
//  fixture keeps each token it sees, filed under the worker and the
//  client the test says the request is from, so worker_reply can answer
//  "w1's request from c1" as a worker would: with the token unchanged.
typedef struct {
    char worker[16];
    char client[16];
    byte token[64];
    size_t size;
    bool is_used;
} held_t;

#define HELD_MAX 64

typedef struct {
    broker_core_t *core;
    broker_outbox_t *outbox;
    held_t held[HELD_MAX];
    size_t held_count;
} fixture_t;

static void
test_config (broker_config_t *config)
{
    broker_config_defaults (config);
    config->heartbeat_ms = 1000;
    config->liveness = 3;
    config->queue_timeout_ms = 5000;
    config->max_queued = 3;
}

static int
setup (void **state)
{
    cmq_log_init ("test", CMQ_LOG_ERROR, false);
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    broker_config_t config;
    test_config (&config);
    fx->core = broker_core_new (&config, 0);
    fx->outbox = broker_outbox_new ();
    *state = fx;
    return 0;
}

//  Starts the core again with a changed config.
static void
reconfigure (fixture_t *fx, broker_config_t *config)
{
    broker_core_destroy (&fx->core);
    fx->core = broker_core_new (config, 0);
    fx->held_count = 0;
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

//  REPLY with any address bytes.
static zmsg_t *
worker_reply_to (const char *worker, const void *address, size_t size,
                 const char *body)
{
    zmsg_t *msg = worker_command (worker, CMQ_MDPW_REPLY);
    zmsg_addmem (msg, address, size);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, body);
    return msg;
}

//  The oldest unanswered token held for this worker and client, or NULL.
static held_t *
held_find (fixture_t *fx, const char *worker, const char *client)
{
    for (size_t index = 0; index < fx->held_count; index++) {
        held_t *held = &fx->held[index];
        if (!held->is_used && streq (held->worker, worker) &&
            streq (held->client, client))
            return held;
    }
    return NULL;
}

//  REPLY from worker to its request from client, with that request's
//  token. A worker holding no such request sends the client's name as
//  the address: a forgery.
static zmsg_t *
worker_reply (fixture_t *fx, const char *worker, const char *client,
              const char *body)
{
    held_t *held = held_find (fx, worker, client);
    if (!held)
        return worker_reply_to (worker, client, strlen (client), body);
    held->is_used = true;
    return worker_reply_to (worker, held->token, held->size, body);
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

//  Files a REQUEST's token under worker and client; returns it.
static held_t *
hold_token (fixture_t *fx, const char *worker, const char *client,
            zframe_t *address)
{
    assert_true (fx->held_count < HELD_MAX);
    assert_true (zframe_size (address) <= sizeof (fx->held[0].token));
    held_t *held = &fx->held[fx->held_count++];
    snprintf (held->worker, sizeof (held->worker), "%s", worker);
    snprintf (held->client, sizeof (held->client), "%s", client);
    memcpy (held->token, zframe_data (address), zframe_size (address));
    held->size = zframe_size (address);
    held->is_used = false;
    return held;
}

//  Holds the token of a REQUEST message popped by the test itself.
static held_t *
hold_request_token (fixture_t *fx, zmsg_t *request, const char *worker,
                    const char *client)
{
    zframe_t *address = zmsg_first (request);
    for (int index = 0; index < 4; index++)
        address = zmsg_next (request);
    assert_non_null (address);
    assert_int_equal (zframe_size (address), BROKER_REQUEST_TOKEN_BYTES);
    return hold_token (fx, worker, client, address);
}

//  Pops the next message and checks it is a REQUEST to worker with body;
//  its token is held as the request from client (the client itself is
//  checked where the reply arrives). Returns the held token.
static held_t *
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
    zframe_t *address = zmsg_first (msg);
    for (int index = 0; index < 4; index++)
        address = zmsg_next (msg);
    //  The address names the request, not the client (§3).
    assert_int_equal (zframe_size (address), BROKER_REQUEST_TOKEN_BYTES);
    held_t *held = hold_token (fx, worker, client, address);
    assert_frame (msg, 5, "");
    assert_frame (msg, 6, body);
    zmsg_destroy (&msg);
    return held;
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
    receive (fx, worker_reply (fx, "w1", "c1", "pong"), 0);
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
        receive (fx, worker_reply (fx, expected, "c1", "y"), 10);
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
    receive (fx, worker_reply (fx, "w1", "c1", "r1"), 3);
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
        receive (fx, worker_reply (fx, "w1", "c1", "y"), index * MS + 250);
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
    check_refused (fx, worker_reply (fx, "w1", "c1", "forged"));  //  unknown
    msg = worker_command ("w1", CMQ_MDPW_REPLY);  //  missing frames
    zmsg_addstr (msg, "c1");
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
    held_t *held = hold_request_token (fx, msg, "w1", "c1");
    zmsg_destroy (&msg);

    //  The reply comes back with as many frames, in order.
    msg = worker_command ("w1", CMQ_MDPW_REPLY);
    zmsg_addmem (msg, held->token, held->size);
    zmsg_addmem (msg, NULL, 0);
    for (int part = 0; part < 5; part++)
        zmsg_addstrf (msg, "answer %d", part);
    receive (fx, msg, 0);
    msg = broker_outbox_pop (fx->outbox);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 4 + 5);
    assert_frame (msg, 0, "c1");
    assert_frame (msg, 3, "echo");
    assert_frame (msg, 4, "answer 0");
    assert_frame (msg, 8, "answer 4");
    zmsg_destroy (&msg);

    //  One frame too many from a client: dropped and counted, and the
    //  client is sent nothing, least of all DISCONNECT (§3: a client is
    //  never sent a worker command; this test used to expect one).
    uint64_t invalid = broker_core_counters (fx->core)->invalid;
    msg = client_request ("c1", "echo", "part 0");
    for (int part = 1; part < BROKER_MESSAGE_MAX_FRAMES - 3; part++)
        zmsg_addstrf (msg, "part %d", part);
    receive (fx, msg, 0);
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
    check_refused (fx, worker_reply (fx, "w1", "c9", "forged"));  //  no request

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
    receive (fx, worker_reply (fx, "w2", "c1", "forged"), 0);
    expect_command (fx, "w2", CMQ_MDPW_DISCONNECT);
    expect_nothing (fx);
    receive (fx, worker_reply (fx, "w1", "c1", "real"), 0);
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
    receive (fx, worker_reply (fx, "w1", "c1", "ra"), 0);
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
    receive (fx, worker_reply (fx, "w2", "c1", "y"), 0);
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
    receive (fx, worker_reply (fx, "w2", "c2", "done"), 3000 * MS);
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
    //  Requests dropped on arrival count too (§3: requests = replies +
    //  dropped + queued + in flight); this used to assert 3.
    assert_int_equal (broker_core_counters (fx->core)->requests, 5);
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
    hold_request_token (fx, msg, "w1", "c1");
    zmsg_destroy (&msg);
    msg = worker_reply (fx, "w1", "c1", "r1");
    zmsg_addstr (msg, "r2");
    receive (fx, msg, 0);
    msg = broker_outbox_pop (fx->outbox);
    assert_int_equal (zmsg_size (msg), 6);
    assert_frame (msg, 0, "c1");
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
    held_t *tokens[2];
    for (int round = 0; round < 2; round++) {
        const char *worker = round ? "w2" : "w1";
        receive (fx, worker_ready (worker, "echo", NULL), 0);
        msg = broker_outbox_pop (fx->outbox);
        assert_int_equal (zmsg_size (msg), 9);
        assert_frame (msg, 0, worker);
        tokens[round] = hold_request_token (fx, msg, worker, "c1");
        assert_frame (msg, 6, "part1");
        assert_frame (msg, 7, "");
        assert_frame (msg, 8,
                      "a longer third part, well over thirty-three bytes");
        zmsg_destroy (&msg);
        if (round == 0)
            receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 0);
    }
    //  A request keeps its token when it is sent again.
    assert_memory_equal (tokens[0]->token, tokens[1]->token,
                         BROKER_REQUEST_TOKEN_BYTES);
    receive (fx, worker_reply (fx, "w2", "c1", "done"), 0);
    expect_client_reply (fx, "c1", "echo", "done");
}

//  ---------------------------------------------------------------------
//  Issue 13

//  A credit worker answers R2 first, then says DISCONNECT: R2's client
//  got its reply, and R1 (not R2) is the request sent again (§3).
static void
credit_worker_answering_out_of_order_loses_nothing (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", "2"), 0);
    receive (fx, client_request ("c1", "echo", "R1"), 0);
    held_t *first = expect_request (fx, "w1", "c1", "R1");
    receive (fx, client_request ("c1", "echo", "R2"), 0);
    held_t *second = expect_request (fx, "w1", "c1", "R2");
    assert_memory_not_equal (first->token, second->token,
                             BROKER_REQUEST_TOKEN_BYTES);
    receive (fx, worker_reply_to ("w1", second->token, second->size, "A2"), 0);
    expect_client_reply (fx, "c1", "echo", "A2");
    receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 0);
    expect_nothing (fx);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    held_t *again = expect_request (fx, "w2", "c1", "R1");
    assert_memory_equal (again->token, first->token,
                         BROKER_REQUEST_TOKEN_BYTES);
    receive (fx, worker_reply (fx, "w2", "c1", "A1"), 0);
    expect_client_reply (fx, "c1", "echo", "A1");
    expect_nothing (fx);
    const broker_counters_t *counters = broker_core_counters (fx->core);
    assert_int_equal (counters->replies, 2);
    assert_int_equal (counters->redispatched, 1);
}

//  Replies in any order each reach the client of their own request.
static void
replies_in_reverse_order_reach_their_own_clients (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", "3"), 0);
    const char *clients[] = { "c1", "c2", "c1" };
    const char *bodies[] = { "q0", "q1", "q2" };
    held_t *held[3];
    for (int index = 0; index < 3; index++) {
        receive (fx, client_request (clients[index], "echo", bodies[index]), 0);
        held[index] = expect_request (fx, "w1", clients[index], bodies[index]);
    }
    const char *answers[] = { "a0", "a1", "a2" };
    for (int index = 2; index >= 0; index--) {
        receive (fx,
                 worker_reply_to ("w1", held[index]->token, held[index]->size,
                                  answers[index]),
                 0);
        expect_client_reply (fx, clients[index], "echo", answers[index]);
    }
    expect_nothing (fx);
}

//  A token answered once names nothing any more: the second REPLY is
//  invalid traffic, and never reaches a client.
static void
token_answered_twice_is_refused (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", "2"), 0);
    receive (fx, client_request ("c1", "echo", "x"), 0);
    held_t *held = expect_request (fx, "w1", "c1", "x");
    receive (fx, worker_reply_to ("w1", held->token, held->size, "y"), 0);
    expect_client_reply (fx, "c1", "echo", "y");
    //  The slot is taken again by the next request; the old token still
    //  does not name it.
    receive (fx, client_request ("c2", "echo", "z"), 0);
    expect_request (fx, "w1", "c2", "z");
    receive (fx, worker_reply_to ("w1", held->token, held->size, "again"), 0);
    expect_command (fx, "w1", CMQ_MDPW_DISCONNECT);
    expect_nothing (fx);
    assert_int_equal (broker_core_counters (fx->core)->replies, 1);
}

//  A worker that returns another worker's token, or a token of the wrong
//  size, or one it altered, is refused and the request stays where it was.
static void
token_of_another_workers_request_is_refused (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "x"), 0);
    held_t *held = expect_request (fx, "w1", "c1", "x");
    receive (fx, worker_reply_to ("w2", held->token, held->size, "forged"), 0);
    expect_command (fx, "w2", CMQ_MDPW_DISCONNECT);
    expect_nothing (fx);

    byte altered[BROKER_REQUEST_TOKEN_BYTES];
    memcpy (altered, held->token, sizeof (altered));
    altered[sizeof (altered) - 1] ^= 1;
    receive (fx, worker_ready ("w3", "echo", NULL), 0);
    receive (fx, worker_reply_to ("w3", altered, sizeof (altered), "f"), 0);
    expect_command (fx, "w3", CMQ_MDPW_DISCONNECT);
    receive (fx, worker_ready ("w4", "echo", NULL), 0);
    receive (fx, worker_reply_to ("w4", held->token, 4, "f"), 0);
    expect_command (fx, "w4", CMQ_MDPW_DISCONNECT);
    expect_nothing (fx);

    receive (fx, worker_reply_to ("w1", held->token, held->size, "real"), 0);
    expect_client_reply (fx, "c1", "echo", "real");
}

//  R1 to w1, R2 to w2, R3 queued; w1 then w2 say DISCONNECT: the queue is
//  R1, R2, R3 again, in order of first arrival (§5).
static void
redispatched_requests_return_in_order_of_first_arrival (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "R1"), 1 * MS);
    expect_request (fx, "w1", "c1", "R1");
    receive (fx, client_request ("c2", "echo", "R2"), 2 * MS);
    expect_request (fx, "w2", "c2", "R2");
    receive (fx, client_request ("c3", "echo", "R3"), 3 * MS);
    receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 4 * MS);
    receive (fx, worker_command ("w2", CMQ_MDPW_DISCONNECT), 5 * MS);
    expect_nothing (fx);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 3);
    receive (fx, worker_ready ("w3", "echo", "3"), 6 * MS);
    expect_request (fx, "w3", "c1", "R1");
    expect_request (fx, "w3", "c2", "R2");
    expect_request (fx, "w3", "c3", "R3");
    expect_nothing (fx);
}

//  The same with the dead worker's own requests out of arrival order (a
//  credit worker that got one of them back): they still go in sorted.
static void
redispatch_sorts_a_workers_requests_by_first_arrival (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", "3"), 0);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "R1"), 1 * MS);
    expect_request (fx, "w1", "c1", "R1");
    receive (fx, client_request ("c1", "echo", "R2"), 2 * MS);
    expect_request (fx, "w2", "c1", "R2");
    receive (fx, client_request ("c1", "echo", "R3"), 3 * MS);
    expect_request (fx, "w1", "c1", "R3");
    //  w2 dies: R2 goes to w1, after R3 in w1's list.
    receive (fx, worker_command ("w2", CMQ_MDPW_DISCONNECT), 4 * MS);
    expect_request (fx, "w1", "c1", "R2");
    receive (fx, client_request ("c1", "echo", "R4"), 5 * MS);
    receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 6 * MS);
    receive (fx, worker_ready ("w3", "echo", "4"), 7 * MS);
    expect_request (fx, "w3", "c1", "R1");
    expect_request (fx, "w3", "c1", "R2");
    expect_request (fx, "w3", "c1", "R3");
    expect_request (fx, "w3", "c1", "R4");
    expect_nothing (fx);
}

//  R1 (t=0) behind a younger R2 (t=1 s) in the same setup: R1 is dropped
//  at its timeout (5 s), R2 is still served, and R1 never goes out.
static void
request_behind_a_younger_one_expires_on_time (void **state)
{
    fixture_t *fx = (fixture_t *) *state;  //  queue timeout 5000 ms
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, worker_ready ("w2", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "R1"), 0);
    expect_request (fx, "w1", "c1", "R1");
    receive (fx, client_request ("c2", "echo", "R2"), 1000 * MS);
    expect_request (fx, "w2", "c2", "R2");
    //  w1 dies first, then w2: putting re-dispatched requests at the
    //  front would queue R2 ahead of R1.
    receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 1500 * MS);
    receive (fx, worker_command ("w2", CMQ_MDPW_DISCONNECT), 2000 * MS);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 2);
    broker_core_on_tick (fx->core, 4999 * MS, fx->outbox);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 2);
    broker_core_on_tick (fx->core, 5000 * MS, fx->outbox);
    assert_int_equal (broker_core_queued (fx->core, "echo"), 1);
    assert_int_equal (broker_core_counters (fx->core)->dropped_expired, 1);
    receive (fx, worker_ready ("w3", "echo", "2"), 5500 * MS);
    expect_request (fx, "w3", "c2", "R2");
    expect_nothing (fx);
}

//  A request whose timeout passed since the last tick is not handed out:
//  dispatch checks too.
static void
dispatch_never_hands_out_an_expired_request (void **state)
{
    fixture_t *fx = (fixture_t *) *state;  //  queue timeout 5000 ms
    receive (fx, client_request ("c1", "echo", "old"), 0);
    receive (fx, client_request ("c2", "echo", "young"), 1 * MS);
    receive (fx, worker_ready ("w1", "echo", "2"), 5000 * MS);
    expect_request (fx, "w1", "c2", "young");
    expect_nothing (fx);
    assert_int_equal (broker_core_counters (fx->core)->dropped_expired, 1);
    //  The tick after finds nothing more to do.
    broker_core_on_tick (fx->core, 5000 * MS, fx->outbox);
    assert_int_equal (broker_core_counters (fx->core)->dropped_expired, 1);
}

//  A request in flight past its timeout whose worker dies is dropped as
//  expired, not queued again.
static void
request_past_its_timeout_is_not_redispatched (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "slow"), 0);
    expect_request (fx, "w1", "c1", "slow");
    receive (fx, worker_command ("w1", CMQ_MDPW_HEARTBEAT), 2500 * MS);
    broker_core_on_tick (fx->core, 5000 * MS, fx->outbox);
    expect_command (fx, "w1", CMQ_MDPW_HEARTBEAT);
    receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 5100 * MS);
    receive (fx, worker_ready ("w2", "echo", NULL), 5100 * MS);
    expect_nothing (fx);
    const broker_counters_t *counters = broker_core_counters (fx->core);
    assert_int_equal (counters->dropped_expired, 1);
    assert_int_equal (counters->redispatched, 0);
}

//  Expiry pops only what is due, across many services, and services left
//  without requests or workers go.
static void
expiry_drops_only_due_requests_across_services (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    char name[32];
    for (int index = 0; index < 200; index++) {
        snprintf (name, sizeof (name), "svc-%d", index);
        receive (fx, client_request ("c1", name, "x"), index * 10 * MS);
    }
    assert_int_equal (broker_core_service_count (fx->core), 200);
    broker_core_on_tick (fx->core, 5995 * MS, fx->outbox);
    assert_int_equal (broker_core_counters (fx->core)->dropped_expired, 100);
    assert_int_equal (broker_core_service_count (fx->core), 100);
    assert_int_equal (broker_core_queued (fx->core, "svc-99"), 0);
    assert_int_equal (broker_core_queued (fx->core, "svc-100"), 1);
    broker_core_on_tick (fx->core, 7000 * MS, fx->outbox);
    assert_int_equal (broker_core_counters (fx->core)->dropped_expired, 200);
    assert_int_equal (broker_core_service_count (fx->core), 0);
}

//  At --max-services, a READY for a new name evicts a service that has
//  only queued requests (dropped as no_service); a client's request for
//  a new name is still dropped (§3).
static void
ready_at_max_services_evicts_a_service_without_workers (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    broker_config_t config;
    test_config (&config);
    config.max_services = 2;
    reconfigure (fx, &config);
    receive (fx, worker_ready ("w1", "live", NULL), 0);
    receive (fx, client_request ("c1", "ghost", "a"), 0);
    receive (fx, client_request ("c1", "ghost", "b"), 0);
    receive (fx, client_request ("c1", "other", "c"), 0);  //  over the limit
    assert_int_equal (broker_core_counters (fx->core)->dropped_no_service, 1);
    assert_int_equal (broker_core_service_count (fx->core), 2);

    receive (fx, worker_ready ("w2", "cart", NULL), 0);
    expect_nothing (fx);  //  no DISCONNECT: ghost gave way
    assert_int_equal (broker_core_worker_count (fx->core), 2);
    assert_int_equal (broker_core_service_count (fx->core), 2);
    assert_int_equal (broker_core_queued (fx->core, "ghost"), 0);
    assert_int_equal (broker_core_counters (fx->core)->dropped_no_service, 3);

    //  Every service has a worker now: a READY for a third name is
    //  refused, as before.
    receive (fx, worker_ready ("w3", "third", NULL), 0);
    expect_command (fx, "w3", CMQ_MDPW_DISCONNECT);
    //  cart loses its worker while a request waits: it gives way next.
    receive (fx, client_request ("c1", "cart", "q"), 0);
    expect_request (fx, "w2", "c1", "q");
    receive (fx, worker_command ("w2", CMQ_MDPW_DISCONNECT), 0);
    assert_int_equal (broker_core_queued (fx->core, "cart"), 1);
    receive (fx, worker_ready ("w4", "fourth", NULL), 0);
    expect_nothing (fx);
    assert_int_equal (broker_core_queued (fx->core, "cart"), 0);
    assert_int_equal (broker_core_counters (fx->core)->dropped_no_service, 4);
    //  A worker of the service itself never evicts it.
    receive (fx, client_request ("c1", "fourth", "r"), 0);
    expect_request (fx, "w4", "c1", "r");
}

//  A worker-less service that gets a worker is no longer a candidate.
static void
service_with_a_worker_again_is_not_evicted (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    broker_config_t config;
    test_config (&config);
    config.max_services = 2;
    reconfigure (fx, &config);
    receive (fx, client_request ("c1", "first", "a"), 0);
    receive (fx, client_request ("c1", "second", "b"), 0);
    receive (fx, worker_ready ("w1", "first", NULL), 0);
    expect_request (fx, "w1", "c1", "a");
    receive (fx, worker_ready ("w2", "third", NULL), 0);
    expect_nothing (fx);
    assert_int_equal (broker_core_queued (fx->core, "second"), 0);
    receive (fx, worker_reply (fx, "w1", "c1", "ok"), 0);
    expect_client_reply (fx, "c1", "first", "ok");
    receive (fx, worker_ready ("w3", "fourth", NULL), 0);
    expect_command (fx, "w3", CMQ_MDPW_DISCONNECT);
}

//  Throws away what the core sent so far.
static void
drain (fixture_t *fx)
{
    zmsg_t *msg;
    while ((msg = broker_outbox_pop (fx->outbox)))
        zmsg_destroy (&msg);
}

static void
assert_stats_identity (fixture_t *fx)
{
    const broker_counters_t *counters = broker_core_counters (fx->core);
    uint64_t dropped =
      counters->dropped_expired + counters->dropped_queue_full +
      counters->dropped_redispatch_limit + counters->dropped_no_service +
      counters->dropped_output_full;
    assert_int_equal (counters->requests,
                      counters->replies + dropped +
                        broker_core_queued_total (fx->core) +
                        broker_core_in_flight (fx->core));
}

//  requests = replies + dropped + queued + in flight at every step of a
//  scenario with every kind of drop, re-dispatch and expiry (§3).
static void
stats_identity_holds_through_drops_redispatch_and_expiry (void **state)
{
    fixture_t *fx = (fixture_t *) *state;  //  max_queued 3, timeout 5 s
    broker_config_t config;
    test_config (&config);
    config.max_services = 3;
    config.max_redispatch = 1;
    reconfigure (fx, &config);
    //  queue_full: 5 for a service with no worker, 3 kept.
    for (int index = 0; index < 5; index++) {
        receive (fx, client_request ("c1", "echo", "q"), 0);
        assert_stats_identity (fx);
    }
    //  no_service on arrival: a third and fourth name.
    receive (fx, client_request ("c1", "other", "o"), 0);
    receive (fx, client_request ("c1", "third", "t"), 0);
    receive (fx, client_request ("c1", "fourth", "f"), 0);
    assert_stats_identity (fx);
    assert_int_equal (broker_core_counters (fx->core)->dropped_no_service, 1);
    //  Served, re-dispatched, then redispatch_limit.
    receive (fx, worker_ready ("w1", "echo", "2"), 100 * MS);
    expect_request (fx, "w1", "c1", "q");
    expect_request (fx, "w1", "c1", "q");
    receive (fx, worker_reply (fx, "w1", "c1", "r"), 100 * MS);
    expect_client_reply (fx, "c1", "echo", "r");
    expect_request (fx, "w1", "c1", "q");
    assert_stats_identity (fx);
    receive (fx, worker_command ("w1", CMQ_MDPW_DISCONNECT), 200 * MS);
    assert_stats_identity (fx);
    receive (fx, worker_ready ("w2", "echo", "3"), 300 * MS);
    drain (fx);
    receive (fx, worker_command ("w2", CMQ_MDPW_DISCONNECT), 300 * MS);
    assert_stats_identity (fx);
    assert_true (broker_core_counters (fx->core)->dropped_redispatch_limit > 0);
    //  Output full: the shell could not deliver a reply.
    receive (fx, worker_ready ("w3", "other", NULL), 400 * MS);
    expect_request (fx, "w3", "c1", "o");
    receive (fx, worker_reply (fx, "w3", "c1", "r"), 400 * MS);
    broker_core_reply_unsent (fx->core);
    assert_stats_identity (fx);
    //  no_service by eviction, then expiry.
    receive (fx, client_request ("c1", "echo", "late"), 500 * MS);
    receive (fx, worker_ready ("w4", "fourth", NULL), 500 * MS);
    assert_stats_identity (fx);
    receive (fx, client_request ("c1", "fourth", "held"), 600 * MS);
    broker_core_on_tick (fx->core, 10000 * MS, fx->outbox);
    assert_stats_identity (fx);
    //  MMI and invalid client messages are not requests.
    uint64_t requests = broker_core_counters (fx->core)->requests;
    receive (fx, client_request ("c1", "mmi.stats", ""), 10000 * MS);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "c1");
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    zmsg_addstr (msg, "echo");
    receive (fx, msg, 10000 * MS);
    assert_int_equal (broker_core_counters (fx->core)->requests, requests);
    assert_stats_identity (fx);
    const broker_counters_t *counters = broker_core_counters (fx->core);
    assert_true (counters->dropped_expired > 0);
    assert_true (counters->dropped_queue_full > 0);
    assert_true (counters->dropped_no_service > 1);
    assert_true (counters->dropped_output_full > 0);
    assert_true (counters->redispatched > 0);
}

//  mmi.stats carries the identity's terms: queued and in_flight.
static void
mmi_stats_reports_queued_and_in_flight (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    receive (fx, client_request ("c1", "echo", "a"), 0);
    expect_request (fx, "w1", "c1", "a");
    receive (fx, client_request ("c1", "echo", "b"), 0);
    receive (fx, client_request ("c1", "nobody", "c"), 0);
    receive (fx, client_request ("c1", "mmi.stats", ""), 0);
    msgpack_unpacked unpacked;
    zmsg_t *reply = unpack_reply_body (fx, &unpacked);
    assert_int_equal (map_uint (&unpacked.data, "requests"), 3);
    assert_int_equal (map_uint (&unpacked.data, "queued"), 2);
    assert_int_equal (map_uint (&unpacked.data, "in_flight"), 1);
    msgpack_unpacked_destroy (&unpacked);
    zmsg_destroy (&reply);
}

//  READY credit: 1 to 10 digits, leading zeros allowed (§3).
static void
ready_credit_takes_leading_zeros (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", "00002"), 0);
    receive (fx, worker_ready ("w2", "echo", "0000000001"), 0);
    expect_nothing (fx);
    assert_int_equal (broker_core_worker_count (fx->core), 2);
    const char *expected[] = { "w1", "w2", "w1" };
    for (int index = 0; index < 3; index++) {
        receive (fx, client_request ("c1", "echo", "x"), 0);
        expect_request (fx, expected[index], "c1", "x");
    }
    receive (fx, client_request ("c1", "echo", "x"), 0);
    expect_nothing (fx);
}

static void
ready_credit_outside_the_rules_gets_disconnect (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    const char *bad[] = { "00000000016", "0",   "0000000000", "1001",
                          "9999999999",  "16 ", " 16",        "-1",
                          "1e3",         "" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad[0]); index++) {
        receive (fx, worker_ready ("w1", "echo", bad[index]), 0);
        expect_command (fx, "w1", CMQ_MDPW_DISCONNECT);
        assert_int_equal (broker_core_worker_count (fx->core), 0);
    }
    zmsg_t *msg = worker_ready ("w1", "echo", "0016");
    zmsg_addstr (msg, "third");
    receive (fx, msg, 0);
    expect_command (fx, "w1", CMQ_MDPW_DISCONNECT);
    assert_int_equal (broker_core_worker_count (fx->core), 0);
}

//  mmi.service compares the whole frame: "echo\0junk" is not "echo".
static void
mmi_service_compares_the_whole_frame (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    zmsg_t *msg = client_request ("c1", "mmi.service", "x");
    zframe_t *last = zmsg_last (msg);
    zframe_reset (last, "echo\0junk", 9);
    receive (fx, msg, 0);
    expect_client_reply (fx, "c1", "mmi.service", "404");
    msg = client_request ("c1", "mmi.service", "x");
    zframe_reset (zmsg_last (msg), "echo\0", 5);
    receive (fx, msg, 0);
    expect_client_reply (fx, "c1", "mmi.service", "404");
    receive (fx, client_request ("c1", "mmi.service", "echo"), 0);
    expect_client_reply (fx, "c1", "mmi.service", "200");
    receive (fx, client_request ("c1", "mmi.service", "ech"), 0);
    expect_client_reply (fx, "c1", "mmi.service", "404");
}

//  Invalid messages with the client header are dropped and counted; the
//  client is sent nothing (§3: never a worker command), and no request
//  is counted.
static void
invalid_client_messages_are_dropped_without_disconnect (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    receive (fx, worker_ready ("w1", "echo", NULL), 0);
    zmsg_t *msg;
    for (int kind = 0; kind < 4; kind++) {
        msg = zmsg_new ();
        zmsg_addstr (msg, "c1");
        zmsg_addmem (msg, NULL, 0);
        zmsg_addstr (msg, CMQ_MDPC_HEADER);
        if (kind == 1)
            zmsg_addstr (msg, "echo");  //  no body
        else if (kind == 2)
            zmsg_addmem (msg, NULL, 0);  //  empty service name
        else if (kind == 3) {
            char name[CMQ_MAX_SERVICE_NAME_BYTES + 1];
            memset (name, 'n', sizeof (name));
            zmsg_addmem (msg, name, sizeof (name));  //  256 bytes
            zmsg_addstr (msg, "body");
        }
        receive (fx, msg, 0);
        expect_nothing (fx);
        assert_int_equal (broker_core_counters (fx->core)->invalid,
                          (uint64_t) kind + 1);
    }
    //  Even from a peer that is a registered worker: no DISCONNECT, and
    //  it stays registered.
    msg = zmsg_new ();
    zmsg_addstr (msg, "w1");
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    zmsg_addstr (msg, "echo");
    receive (fx, msg, 0);
    expect_nothing (fx);
    assert_int_equal (broker_core_worker_count (fx->core), 1);
    assert_int_equal (broker_core_counters (fx->core)->requests, 0);
    assert_int_equal (broker_core_service_count (fx->core), 1);
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
        T (credit_worker_answering_out_of_order_loses_nothing),
        T (replies_in_reverse_order_reach_their_own_clients),
        T (token_answered_twice_is_refused),
        T (token_of_another_workers_request_is_refused),
        T (redispatched_requests_return_in_order_of_first_arrival),
        T (redispatch_sorts_a_workers_requests_by_first_arrival),
        T (request_behind_a_younger_one_expires_on_time),
        T (dispatch_never_hands_out_an_expired_request),
        T (request_past_its_timeout_is_not_redispatched),
        T (expiry_drops_only_due_requests_across_services),
        T (ready_at_max_services_evicts_a_service_without_workers),
        T (service_with_a_worker_again_is_not_evicted),
        T (stats_identity_holds_through_drops_redispatch_and_expiry),
        T (mmi_stats_reports_queued_and_in_flight),
        T (ready_credit_takes_leading_zeros),
        T (ready_credit_outside_the_rules_gets_disconnect),
        T (mmi_service_compares_the_whole_frame),
        T (invalid_client_messages_are_dropped_without_disconnect),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
