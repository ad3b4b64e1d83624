//  worker.h - the Majordomo worker library: one service, one or more brokers
//
//  cmq_worker_t owns one DEALER socket per broker (§7: several brokers,
//  all active). On each it says READY (with a credit frame when credit >
//  1: every broker gets the full credit), heartbeats both ways, and
//  reconnects with a fresh socket when that broker goes silent or says
//  DISCONNECT (timing in worker_fsm.h), each broker on its own timers.
//  Callers only receive requests and reply.
//
//  At most one registration per broker (§5): each socket is ZMQ_IMMEDIATE
//  and says READY only once its connection is up, so no READY ever waits
//  in a socket; a socket is closed the moment its broker is judged dead or
//  says DISCONNECT (not when the reconnect backoff ends), and one that
//  said READY says DISCONNECT first unless the broker already forgot it.
//  The same endpoint twice in a config is refused.
//
//  One broker never holds up another: recv polls every socket at once and
//  takes from the readable ones in turn, so one broker's backlog cannot
//  starve the others, and no send ever waits, so a broker that is down,
//  frozen or not reading costs the others nothing.
//
//  Each request comes with a ticket: the client address, the broker it
//  came from and that broker's socket generation. The reply goes back to
//  that broker; a reply whose ticket is from an older socket is dropped,
//  because that broker has already given the request to another worker.
//
//  Errors and defaults follow cartmq/common.h. The library writes no log
//  lines: a call that fails returns NULL or -1 and keeps the reason
//  (cmq_worker_errstr), and what the worker does on its own (reconnects,
//  a malformed message dropped, a reply that could not go) is told to the
//  config's notify hook, which a program points at its log. Each notice
//  names its broker as broker=ENDPOINT.

#ifndef CARTMQ_WORKER_H
#define CARTMQ_WORKER_H

#include <czmq.h>
#include <stdint.h>

#include "cartmq/common.h"

#define CMQ_DEFAULT_HEARTBEAT_MS 2500
#define CMQ_DEFAULT_LIVENESS     3
//  Most brokers one worker serves.
#define CMQ_WORKER_MAX_BROKERS CMQ_MAX_BROKERS

typedef struct _cmq_worker_t cmq_worker_t;

//  How much a notice matters, for a caller that logs it at a level.
typedef enum {
    CMQ_WORKER_NOTICE_DEBUG = 0,   //  routine: READY sent, stale reply
    CMQ_WORKER_NOTICE_INFO = 1,    //  the connection changed
    CMQ_WORKER_NOTICE_WARNING = 2  //  something was lost or refused
} cmq_worker_notice_t;

//  Called from inside the worker's calls with one line of key=value text
//  (valid during the call only).
typedef void (cmq_worker_notify_fn) (void *arg, cmq_worker_notice_t level,
                                     const char *text);

typedef struct {
    const char *endpoint;          //  NULL: CMQ_DEFAULT_ENDPOINT; may be a
                                   //  comma-separated list of brokers
    const char *const *endpoints;  //  the brokers, when endpoint_count > 0
    size_t endpoint_count;         //  0: use endpoint
    const char *service;           //  required
    int heartbeat_ms;              //  <= 0: 2500
    int liveness;                  //  <= 0: 3
    int credit;                    //  per broker, up to 1000; <= 1 sends no
                                   //  credit frame
    int reconnect_min_ms;          //  <= 0: 100
    int reconnect_max_ms;          //  <= 0: 1000
    const char *curve_server;      //  broker's public cert file, or NULL
    const char *curve_cert;        //  our secret cert file
    cmq_worker_notify_fn *notify;  //  NULL: notices are not told
    void *notify_arg;              //  passed to notify
} cmq_worker_config_t;

typedef struct {
    zframe_t *address;    //  the client's address, owned
    uint64_t generation;  //  that broker's socket generation it came in on
    size_t broker;        //  index of the broker it came from (config order)
} cmq_worker_ticket_t;

void cmq_worker_config_defaults (cmq_worker_config_t *config);

//  Connects to every broker and says READY on each. config NULL: all defaults, which name no
//  service, so that fails. NULL on a bad config or cert, with the reason in
//  error (CMQ_ERRSTR_SIZE bytes always fit) unless error is NULL.
cmq_worker_t *cmq_worker_new (const cmq_worker_config_t *config, char *error,
                              size_t error_size);

void cmq_worker_destroy (cmq_worker_t **self_p);

//  Waits up to timeout_ms (-1: forever, 0: poll once) for a request from
//  any broker, heartbeating and reconnecting each meanwhile. Returns its
//  body (caller destroys) and fills *ticket; NULL on timeout or interrupt.
//  Brokers with requests waiting are taken from in turn.
zmsg_t *cmq_worker_recv (cmq_worker_t *self, int timeout_ms,
                         cmq_worker_ticket_t *ticket);

//  Sends the reply for a ticket to the broker it came from. Takes *body_p
//  and the ticket's address. Returns 0, or -1 if dropped (stale ticket, or
//  the broker not reading; cmq_worker_errstr says which).
int cmq_worker_reply (cmq_worker_t *self, cmq_worker_ticket_t *ticket,
                      zmsg_t **body_p);

//  Sends heartbeats or reconnects to each broker where either is due,
//  without waiting. Call it between replies when work is long.
void cmq_worker_tick (cmq_worker_t *self);

//  How many brokers the worker serves (1 or more); they are numbered
//  0..brokers-1 in config order, as in cmq_worker_ticket_t.
size_t cmq_worker_brokers (cmq_worker_t *self);

//  The endpoint of broker index (index < cmq_worker_brokers).
const char *cmq_worker_broker_endpoint (cmq_worker_t *self, size_t index);

//  The current socket to broker index (it changes on reconnect; NULL
//  while waiting out a reconnect backoff).
zsock_t *cmq_worker_broker_socket (cmq_worker_t *self, size_t index);

//  Times the worker has connected to broker index (1 after new).
uint64_t cmq_worker_generation (cmq_worker_t *self, size_t index);

//  Why the last call on this worker failed ("no error" if none did).
const char *cmq_worker_errstr (cmq_worker_t *self);

#endif
