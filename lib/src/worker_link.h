//  worker_link.h - a worker's connection to one broker
//
//  Internal to libcartmq. A link owns the DEALER to one broker, the
//  heartbeat and reconnect timing for it (worker_fsm.h), its socket
//  generation and whether READY went out on it. cmq_worker_t holds one
//  link per broker and polls their sockets together (§7: credit,
//  heartbeats, expiry and reconnection hold per broker).
//
//  A link never waits: every send is non-blocking and every receive is
//  made only when the socket is readable, so a broker that is down,
//  frozen or slow holds up no other link.
//
//  At most one registration per broker (§5): the socket is ZMQ_IMMEDIATE
//  and says READY only once its connection is up; it is closed the moment
//  the broker is judged dead or says DISCONNECT, and one that said READY
//  says DISCONNECT first unless the broker already forgot it.

#ifndef CARTMQ_WORKER_LINK_H
#define CARTMQ_WORKER_LINK_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "cartmq/worker.h"

typedef struct _cmq_worker_link_t cmq_worker_link_t;

//  What every link of one worker shares. Borrowed: it must outlive the
//  links (cmq_worker_t keeps it).
typedef struct {
    const char *service;           //  service we serve
    const char *curve_server;      //  broker's public cert file, or NULL
    const char *curve_cert;        //  our secret cert file, or NULL
    int credit;                    //  announced to each broker in READY
    int heartbeat_ms;              //  > 0
    int liveness;                  //  > 0
    int reconnect_min_ms;          //  > 0
    int reconnect_max_ms;          //  > 0
    cmq_worker_notify_fn *notify;  //  the caller's hook, or NULL
    void *notify_arg;
} cmq_worker_link_settings_t;

//  Opens a socket to endpoint, which says READY once connected. NULL with
//  the reason in error if the socket or its certificates are unusable.
cmq_worker_link_t *cmq_worker_link_new (
  const cmq_worker_link_settings_t *settings, const char *endpoint, char *error,
  size_t error_size);

//  Closes the socket (DISCONNECT first if registered) and frees the link.
void cmq_worker_link_destroy (cmq_worker_link_t **self_p);

//  Sends READY, a heartbeat, closes a dead broker's socket or reconnects,
//  whichever is due, without waiting.
void cmq_worker_link_tick (cmq_worker_link_t *self);

//  Milliseconds from now_ms until tick may have something to do.
int64_t cmq_worker_link_wait_ms (cmq_worker_link_t *self, int64_t now_ms);

//  Fills item to poll the socket: readable, and before READY went out
//  also writable (the connection came up). False while there is no socket
//  (waiting out a reconnect backoff).
bool cmq_worker_link_poll_item (cmq_worker_link_t *self, zmq_pollitem_t *item);

//  Reads one message, waiting up to wait_ms (0: not at all), and acts on
//  it. Returns a REQUEST's body (caller destroys) with ticket's address
//  and generation filled, or NULL: nothing came (*is_empty set true), or
//  a message was handled or dropped here (*is_empty false: read again).
zmsg_t *cmq_worker_link_recv (cmq_worker_link_t *self,
                              cmq_worker_ticket_t *ticket, int wait_ms,
                              bool *is_empty);

//  True if the link can wait in a blocking read: it has a socket and its
//  READY went out (before that, only a poll sees the connection come up).
bool cmq_worker_link_can_block (cmq_worker_link_t *self);

//  Sends the reply for a ticket that came in on this link. Takes *body_p
//  and the ticket's address. 0, or -1 with the reason in errstr if the
//  reply was dropped (stale generation, or the broker not reading).
int cmq_worker_link_reply (cmq_worker_link_t *self, cmq_worker_ticket_t *ticket,
                           zmsg_t **body_p, char *errstr, size_t errstr_size);

//  The current socket (NULL while waiting out a backoff).
zsock_t *cmq_worker_link_socket (cmq_worker_link_t *self);

//  Times this link has connected (1 after new).
uint64_t cmq_worker_link_generation (cmq_worker_link_t *self);

//  The broker's endpoint, as configured.
const char *cmq_worker_link_endpoint (cmq_worker_link_t *self);

#endif
