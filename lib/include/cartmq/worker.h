//  worker.h - the Majordomo worker library: one service, one broker
//
//  cmq_worker_t owns a DEALER socket to the broker. It says READY (with a
//  credit frame when credit > 1), heartbeats both ways, and reconnects
//  with a fresh socket when the broker goes silent or says DISCONNECT
//  (timing in worker_fsm.h). Callers only receive requests and reply.
//
//  At most one registration per broker (§5): the socket is ZMQ_IMMEDIATE
//  and says READY only once its connection is up, so no READY ever waits
//  in a socket; a socket is closed the moment the broker is judged dead or
//  says DISCONNECT (not when the reconnect backoff ends), and one that
//  said READY says DISCONNECT first unless the broker already forgot it.
//
//  Each request comes with a ticket: the client address and the socket
//  generation it arrived on. A reply whose ticket is from an older socket
//  is dropped, because the broker has already given that request to
//  another worker.
//
//  Errors and defaults follow cartmq/common.h. The library writes no log
//  lines: a call that fails returns NULL or -1 and keeps the reason
//  (cmq_worker_errstr), and what the worker does on its own (reconnects,
//  a malformed message dropped, a reply that could not go) is told to the
//  config's notify hook, which a program points at its log.

#ifndef CARTMQ_WORKER_H
#define CARTMQ_WORKER_H

#include <czmq.h>
#include <stdint.h>

#include "cartmq/common.h"

#define CMQ_DEFAULT_HEARTBEAT_MS 2500
#define CMQ_DEFAULT_LIVENESS     3

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
    const char *endpoint;          //  NULL: CMQ_DEFAULT_ENDPOINT
    const char *service;           //  required
    int heartbeat_ms;              //  <= 0: 2500
    int liveness;                  //  <= 0: 3
    int credit;                    //  up to 1000; <= 1 sends no credit frame
    int reconnect_min_ms;          //  <= 0: 100
    int reconnect_max_ms;          //  <= 0: 1000
    const char *curve_server;      //  broker's public cert file, or NULL
    const char *curve_cert;        //  our secret cert file
    cmq_worker_notify_fn *notify;  //  NULL: notices are not told
    void *notify_arg;              //  passed to notify
} cmq_worker_config_t;

typedef struct {
    zframe_t *address;    //  the client's address, owned
    uint64_t generation;  //  socket generation it came in on
} cmq_worker_ticket_t;

void cmq_worker_config_defaults (cmq_worker_config_t *config);

//  Connects and says READY. config NULL: all defaults, which name no
//  service, so that fails. NULL on a bad config or cert, with the reason in
//  error (CMQ_ERRSTR_SIZE bytes always fit) unless error is NULL.
cmq_worker_t *cmq_worker_new (const cmq_worker_config_t *config, char *error,
                              size_t error_size);

void cmq_worker_destroy (cmq_worker_t **self_p);

//  Waits up to timeout_ms (-1: forever, 0: poll once) for a request,
//  heartbeating and reconnecting meanwhile. Returns its body (caller
//  destroys) and fills *ticket; NULL on timeout or interrupt.
zmsg_t *cmq_worker_recv (cmq_worker_t *self, int timeout_ms,
                         cmq_worker_ticket_t *ticket);

//  Sends the reply for a ticket. Takes *body_p and the ticket's address.
//  Returns 0, or -1 if dropped (stale ticket, or the broker not reading;
//  cmq_worker_errstr says which).
int cmq_worker_reply (cmq_worker_t *self, cmq_worker_ticket_t *ticket,
                      zmsg_t **body_p);

//  Sends a heartbeat or reconnects if either is due, without waiting.
//  Call it between replies when work is long.
void cmq_worker_tick (cmq_worker_t *self);

//  The current socket (it changes on reconnect; NULL while waiting out a
//  reconnect backoff), for polling.
zsock_t *cmq_worker_socket (cmq_worker_t *self);

//  Times the worker has connected (1 after new).
uint64_t cmq_worker_generation (cmq_worker_t *self);

//  Why the last call on this worker failed ("no error" if none did).
const char *cmq_worker_errstr (cmq_worker_t *self);

#endif
