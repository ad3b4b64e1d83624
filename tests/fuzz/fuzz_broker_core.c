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
        case 2:  //  REPLY to some client
            msg = s_worker_message (peer, CMQ_MDPW_REPLY);
            zmsg_addstr (msg, s_pick (input, s_peers, 6));
            zmsg_addmem (msg, NULL, 0);
            zmsg_addstr (msg, "reply");
            return msg;
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
                zmsg_destroy (&out);
            }
        }
        assert (broker_core_service_count (core) <= 3);
    }
    broker_core_destroy (&core);
    broker_outbox_destroy (&outbox);
    return 0;
}
