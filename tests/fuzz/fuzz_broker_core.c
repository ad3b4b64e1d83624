//  fuzz_broker_core.c - libFuzzer target: the broker's state machine fed
//  arbitrary sequences of messages and ticks
//
//  Most steps build well-formed MDP messages from a handful of peer ids and
//  service names, so the fuzzer reaches deep states (credit, re-dispatch,
//  expiry); raw steps add arbitrary frames. Invariants are checked after
//  every step; the sanitizers catch the rest.

#include <czmq.h>

#include "broker_core.h"
#include "cartmq/log.h"
#include "cartmq/mdp.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *s_peers[] = { "p0", "p1", "p2", "p3", "p4", "p5" };
static const char *s_services[] = { "echo",         "cart",      "mmi.service",
                                    "mmi.services", "mmi.stats", "mmi.x" };

//  Request tokens the broker sent in REQUESTs, so REPLY steps can answer
//  real requests (in any order, from any peer, or twice), not only forge.
#define S_TOKENS 8
static byte s_tokens[S_TOKENS][32];
static size_t s_token_sizes[S_TOKENS];
static size_t s_token_count;

static void
s_keep_token (zmsg_t *out)
{
    //  [worker][""][MDPW01][REQUEST][token]...
    if (zmsg_size (out) < 5)
        return;
    zframe_t *frame = zmsg_first (out);
    for (int index = 0; index < 3; index++)
        frame = zmsg_next (out);
    if (zframe_size (frame) != 1 || zframe_data (frame)[0] != CMQ_MDPW_REQUEST)
        return;
    frame = zmsg_next (out);
    if (zframe_size (frame) > sizeof (s_tokens[0]))
        return;
    size_t slot = s_token_count++ % S_TOKENS;
    memcpy (s_tokens[slot], zframe_data (frame), zframe_size (frame));
    s_token_sizes[slot] = zframe_size (frame);
}

static const char *
s_pick (fuzz_input_t *input, const char **list, size_t count)
{
    return list[fuzz_byte (input) % count];
}

static zmsg_t *
s_worker_message (const char *peer, int command)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, peer);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPW_HEADER);
    byte code = (byte) command;
    zmsg_addmem (msg, &code, 1);
    return msg;
}

static zmsg_t *
s_step_message (fuzz_input_t *input, uint8_t op)
{
    const char *peer = s_pick (input, s_peers, 6);
    zmsg_t *msg;
    switch (op % 6) {
        case 0:  //  client request
            msg = zmsg_new ();
            zmsg_addstr (msg, peer);
            zmsg_addmem (msg, NULL, 0);
            zmsg_addstr (msg, CMQ_MDPC_HEADER);
            zmsg_addstr (msg, s_pick (input, s_services, 6));
            zmsg_addstr (msg, s_pick (input, s_services, 6));
            return msg;
        case 1:  //  READY, sometimes with credit
            msg = s_worker_message (peer, CMQ_MDPW_READY);
            zmsg_addstr (msg, s_pick (input, s_services, 2));
            if (fuzz_byte (input) & 1)
                zmsg_addstrf (msg, "%d", fuzz_byte (input) % 5);
            return msg;
        case 2: {  //  REPLY with a token seen, or a client's name
            msg = s_worker_message (peer, CMQ_MDPW_REPLY);
            uint8_t pick = fuzz_byte (input);
            size_t known = s_token_count < S_TOKENS ? s_token_count : S_TOKENS;
            if (known && pick % 4)
                zmsg_addmem (msg, s_tokens[pick % known],
                             s_token_sizes[pick % known]);
            else
                zmsg_addstr (msg, s_pick (input, s_peers, 6));
            zmsg_addmem (msg, NULL, 0);
            zmsg_addstr (msg, "reply");
            return msg;
        }
        case 3:
            return s_worker_message (peer, CMQ_MDPW_HEARTBEAT);
        case 4:
            return s_worker_message (peer, CMQ_MDPW_DISCONNECT);
        default: {  //  raw frames after a known routing id
            msg = zmsg_new ();
            zmsg_addstr (msg, peer);
            size_t frames = fuzz_byte (input) % 8;
            for (size_t index = 0; index < frames; index++) {
                size_t length;
                const uint8_t *bytes = fuzz_bytes (input, 64, &length);
                zmsg_addmem (msg, bytes, length);
            }
            return msg;
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static bool initialised = false;
    if (!initialised) {
        cmq_log_init ("fuzz", CMQ_LOG_ERROR, false);
        initialised = true;
    }
    fuzz_input_t input = { data, size };
    s_token_count = 0;
    broker_config_t config;
    broker_config_defaults (&config);
    config.heartbeat_ms = 10;
    config.queue_timeout_ms = 50;
    config.max_queued = 4;
    config.max_services = 3;
    broker_core_t *core = broker_core_new (&config, 0);
    broker_outbox_t *outbox = broker_outbox_new ();
    int64_t now_us = 0;
    for (int step = 0; step < 256 && input.size > 0; step++) {
        uint8_t op = fuzz_byte (&input);
        if (op >= 224) {
            now_us += (int64_t) (op - 223) * 1000;
            broker_core_on_tick (core, now_us, outbox);
        } else {
            zmsg_t *msg = s_step_message (&input, op);
            broker_core_on_message (core, &msg, now_us, outbox);
            assert (msg == NULL);
        }
        //  Drain as the shell would; the odd step keeps a backlog so a
        //  request can be dropped while a send still borrows it.
        if (op & 0x10) {
            zmsg_t *out;
            while ((out = broker_outbox_pop (outbox))) {
                assert (zmsg_size (out) >= 4);
                s_keep_token (out);
                zmsg_destroy (&out);
            }
        }
        assert (broker_core_service_count (core) <= 3);
        //  requests = replies + dropped + queued + in flight (§3).
        const broker_counters_t *counters = broker_core_counters (core);
        assert (
          counters->requests ==
          counters->replies + counters->dropped_expired +
            counters->dropped_queue_full + counters->dropped_redispatch_limit +
            counters->dropped_no_service + counters->dropped_output_full +
            broker_core_queued_total (core) + broker_core_in_flight (core));
    }
    broker_core_destroy (&core);
    broker_outbox_destroy (&outbox);
    return 0;
}
