//  broker_core.h - Majordomo routing as a plain state machine
//
//  Input: a message read from the ROUTER (routing id frame first), or the
//  passage of time. Output: messages to send, appended to the caller's
//  outbox. No sockets, clock or signals inside, so unit tests and fuzzers
//  drive it directly. Times are monotonic microseconds.
//
//  Rules are the contract's §3 and §5: per-service queue of requests in
//  order of first arrival and a ready-queue of workers with free credit
//  (longest idle first), MMI answered here, heartbeats both ways, a token
//  per request as the client address a worker sees, DISCONNECT for invalid
//  worker traffic (a client's invalid message is only dropped), re-dispatch
//  of a dead worker's requests (at most twice), bounded queues, queue
//  timeouts, services without workers giving way at --max-services, and
//  drop lines summarised once a second.

#ifndef BROKER_CORE_H
#define BROKER_CORE_H

#include <czmq.h>
#include <stdint.h>

#include "broker_message.h"
#include "broker_outbox.h"

//  The defaults broker_config_defaults sets (and --help shows).
#define BROKER_DEFAULT_HEARTBEAT_MS     2500
#define BROKER_DEFAULT_LIVENESS         3
#define BROKER_DEFAULT_QUEUE_TIMEOUT_MS 10000
#define BROKER_DEFAULT_MAX_QUEUED       100000
#define BROKER_DEFAULT_MAX_SERVICES     10000
#define BROKER_DEFAULT_MAX_REDISPATCH   2

typedef struct {
    int heartbeat_ms;      //  heartbeat interval both ways
    int liveness;          //  silent intervals before a peer is dead
    int queue_timeout_ms;  //  longest wait in a queue; at least 1
    int max_queued;        //  per service
    int max_services;      //  distinct service names at once
    int max_redispatch;    //  re-sends of one request
} broker_config_t;

//  Counters since start, as mmi.stats reports them.
typedef struct {
    uint64_t requests;  //  client requests read (not MMI), drops included
    uint64_t replies;   //  replies delivered to clients (not MMI)
    uint64_t redispatched;
    uint64_t dropped_expired;
    uint64_t dropped_queue_full;
    uint64_t dropped_redispatch_limit;
    uint64_t dropped_no_service;   //  too many services to create another
    uint64_t dropped_output_full;  //  replies its client's output cap refused
    uint64_t invalid;              //  peer messages refused as invalid
} broker_counters_t;

typedef struct _broker_core_t broker_core_t;

void broker_config_defaults (broker_config_t *config);

broker_core_t *broker_core_new (const broker_config_t *config, int64_t now_us);

void broker_core_destroy (broker_core_t **self_p);

//  Handles one message read from the ROUTER (routing id frame first).
//  Moves out the frames it keeps or forwards (a request's routing id and
//  body, a reply's body), leaving the rest for the caller to close.
//  Appends replies and forwards to outbox.
void broker_core_on_frames (broker_core_t *self, broker_message_t *message,
                            int64_t now_us, broker_outbox_t *outbox);

//  The same for a message built with CZMQ (tests, fuzzers, tools): takes
//  ownership of *msg_p.
void broker_core_on_message (broker_core_t *self, zmsg_t **msg_p,
                             int64_t now_us, broker_outbox_t *outbox);

//  Forgets workers silent for liveness intervals (re-dispatching their
//  requests), sends due heartbeats, drops requests queued too long, and
//  writes the summary of drops and refusals (at most once a second). The
//  cost is the number of expired or due items, not of workers, services
//  or requests; nothing is allocated.
void broker_core_on_tick (broker_core_t *self, int64_t now_us,
                          broker_outbox_t *outbox);

//  Sends DISCONNECT to every worker (broker shutting down).
void broker_core_disconnect_all (broker_core_t *self, broker_outbox_t *outbox);

//  The shell could not hand a reply to its client: what waits for that
//  client is at its cap (§3). Counts the reply as dropped (reason
//  output_full) instead of delivered.
void broker_core_reply_unsent (broker_core_t *self);

size_t broker_core_worker_count (broker_core_t *self);

size_t broker_core_service_count (broker_core_t *self);

//  Queued (not in flight) requests of a service; 0 if unknown.
size_t broker_core_queued (broker_core_t *self, const char *service);

//  Queued requests of every service, and requests in flight on every
//  worker: with the counters, requests = replies + dropped + queued +
//  in flight (§3). O(services) and O(workers): for mmi.stats and tests.
size_t broker_core_queued_total (broker_core_t *self);

size_t broker_core_in_flight (broker_core_t *self);

const broker_counters_t *broker_core_counters (broker_core_t *self);

#endif
