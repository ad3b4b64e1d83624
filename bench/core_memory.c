//  core_memory.c - cartmq-core-memory: the broker's own memory per worker
//  and per queued request, exactly
//
//  RSS measured from outside mixes the broker's data with libzmq's per-
//  connection buffers and with the allocator's slack, and moves with the
//  machine's noise. This drives the routing core directly, without
//  sockets, and reads the heap's own count of bytes in use (mallinfo2)
//  before and after: what the broker's data structures cost, to the byte,
//  on this libc. run.py prints it next to the RSS figures.

#include <czmq.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker_core.h"
#include "cartmq/log.h"
#include "cartmq/mdp.h"

#define S_BODY_BYTES 32

static size_t
s_heap_in_use (void)
{
    struct mallinfo2 info = mallinfo2 ();
    return info.uordblks + info.hblkhd;
}

//  A routing id as libzmq makes them: a zero byte and a 32-bit counter.
static zframe_t *
s_routing_id (uint32_t serial)
{
    byte id[5] = { 0 };
    memcpy (id + 1, &serial, sizeof (serial));
    return zframe_new (id, sizeof (id));
}

static zmsg_t *
s_ready (uint32_t serial, const char *service)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *){ s_routing_id (serial) });
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPW_HEADER);
    zmsg_addmem (msg, (byte[]){ CMQ_MDPW_READY }, 1);
    zmsg_addstr (msg, service);
    return msg;
}

static zmsg_t *
s_request (uint32_t serial, const char *service)
{
    byte body[S_BODY_BYTES] = { 0 };
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *){ s_routing_id (serial) });
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    zmsg_addstr (msg, service);
    zmsg_addmem (msg, body, sizeof (body));
    return msg;
}

//  Bytes the core holds per idle worker, with count workers registered.
static double
s_per_worker (size_t count)
{
    broker_config_t config;
    broker_config_defaults (&config);
    broker_core_t *core = broker_core_new (&config, 0);
    broker_outbox_t *outbox = broker_outbox_new ();
    //  One worker first, so the service and its structures exist
    zmsg_t *msg = s_ready (0, "echo");
    broker_core_on_message (core, &msg, 0, outbox);
    while (broker_outbox_size (outbox))
        zmsg_destroy (&(zmsg_t *){ broker_outbox_pop (outbox) });
    size_t before = s_heap_in_use ();
    for (uint32_t serial = 1; serial <= count; serial++) {
        msg = s_ready (serial, "echo");
        broker_core_on_message (core, &msg, 0, outbox);
    }
    size_t after = s_heap_in_use ();
    assert (broker_core_worker_count (core) == count + 1);
    assert (broker_outbox_size (outbox) == 0);
    broker_outbox_destroy (&outbox);
    broker_core_destroy (&core);
    return (double) (after - before) / (double) count;
}

//  Bytes the core holds per queued request beyond its body.
static double
s_per_queued (size_t count)
{
    broker_config_t config;
    broker_config_defaults (&config);
    config.max_queued = (int) count + 1;
    broker_core_t *core = broker_core_new (&config, 0);
    broker_outbox_t *outbox = broker_outbox_new ();
    zmsg_t *msg = s_request (0, "echo");
    broker_core_on_message (core, &msg, 0, outbox);
    size_t before = s_heap_in_use ();
    for (uint32_t serial = 1; serial <= count; serial++) {
        msg = s_request (serial, "echo");
        broker_core_on_message (core, &msg, 0, outbox);
    }
    size_t after = s_heap_in_use ();
    assert (broker_core_queued (core, "echo") == count + 1);
    broker_outbox_destroy (&outbox);
    broker_core_destroy (&core);
    return (double) (after - before) / (double) count - S_BODY_BYTES;
}

int
main (int argc, char **argv)
{
    size_t count = argc > 1 ? (size_t) atol (argv[1]) : 10000;
    if (count == 0 || count > 10000000) {
        fprintf (stderr, "usage: cartmq-core-memory [COUNT]\n");
        return 2;
    }
    cmq_log_init ("cartmq-core-memory", CMQ_LOG_ERROR, false);
    double worker = s_per_worker (count);
    double queued = s_per_queued (count);
    printf ("{\"count\": %zu, \"bytes_per_idle_worker\": %.1f, "
            "\"bytes_per_queued_request_beyond_body\": %.1f}\n",
            count, worker, queued);
    return 0;
}
