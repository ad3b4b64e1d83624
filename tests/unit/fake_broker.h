//  fake_broker.h - a ROUTER standing in for a broker, for worker tests
//
//  Real sockets on 127.0.0.1: the test plays the broker, the worker
//  library under test is driven by fake_broker_recv.

#ifndef FAKE_BROKER_H
#define FAKE_BROKER_H

#include <czmq.h>

#include "cartmq/mdp.h"
#include "cartmq/worker.h"

//  Generous: only a broken library waits this long.
#define FAKE_BROKER_DEADLINE_MS 5000

typedef struct {
    zsock_t *router;
    char endpoint[64];
} fake_broker_t;

//  Binds the ROUTER to an ephemeral port and fills endpoint.
static inline void
fake_broker_open (fake_broker_t *broker)
{
    broker->router = zsock_new (ZMQ_ROUTER);
    assert_non_null (broker->router);
    int port = zsock_bind (broker->router, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    snprintf (broker->endpoint, sizeof (broker->endpoint), "tcp://127.0.0.1:%d",
              port);
}

//  Runs the worker (which must take no request meanwhile) until the broker
//  has a message from it, and returns that message; fails the test if
//  none comes within FAKE_BROKER_DEADLINE_MS.
static inline zmsg_t *
fake_broker_recv (fake_broker_t *broker, cmq_worker_t *worker)
{
    int64_t deadline = zclock_mono () + FAKE_BROKER_DEADLINE_MS;
    while (zclock_mono () < deadline) {
        if (zsock_events (broker->router) & ZMQ_POLLIN)
            return zmsg_recv (broker->router);
        cmq_worker_ticket_t ticket;
        assert_null (cmq_worker_recv (worker, 10, &ticket));
    }
    fail_msg ("the worker sent %s nothing within %d ms", broker->endpoint,
              FAKE_BROKER_DEADLINE_MS);
    return NULL;
}

//  Sends the worker at worker_id a REQUEST for client with body, or a
//  HEARTBEAT when client is NULL.
static inline void
fake_broker_send (fake_broker_t *broker, zframe_t *worker_id,
                  const char *client, const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *){ zframe_dup (worker_id) });
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, CMQ_MDPW_HEADER);
    if (client) {
        zmsg_addmem (msg, "\x02", 1);  //  REQUEST
        zmsg_addstr (msg, client);
        zmsg_addstr (msg, "");
        zmsg_addstr (msg, body);
    } else
        zmsg_addmem (msg, "\x04", 1);  //  HEARTBEAT
    assert_int_equal (zmsg_send (&msg, broker->router), 0);
}

#endif
