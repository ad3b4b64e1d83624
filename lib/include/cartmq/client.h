//  client.h - the Majordomo client library users link
//
//  One client talks to one or several brokers (contract §7), over one
//  DEALER socket per broker. Every socket is opened by cmq_client_new, so
//  a bad endpoint is an error there and each connection is being made
//  before its first call; a socket closed after silence is reopened when
//  that broker is next used.
//
//  Synchronous: cmq_client_call sends a request and waits up to timeout_ms
//  for the reply; on silence it closes that broker's socket (so a late
//  reply to the old attempt can never be mistaken for a new one) and
//  resends, up to `retries` more times. With several brokers, each call
//  starts at the next broker round-robin among those not down; an attempt
//  that goes unanswered marks its broker down for a backoff (max(timeout,
//  1 s), doubling up to 30 s, reset by any reply from it) and the next
//  attempt goes to ANOTHER broker: the next one up, or when all are down,
//  the one whose backoff ends first. After its backoff a broker gets calls
//  again. Every attempt sends the same bytes (a mutation's request_id
//  too, cartmq/cart_client.h).
//
//  Asynchronous: cmq_client_send queues any number of requests, spread
//  round-robin over the brokers that are up; cmq_client_recv returns
//  replies as they arrive from any of them, in any order. A broker with
//  requests outstanding that has been silent for timeout_ms is marked down
//  at the next send, so later sends (the caller's own resend included) go
//  elsewhere.
//  MDP replies name no request: the caller matches them by their bodies,
//  and a caller that gives up on a request whose reply cannot be told
//  apart from a later one's should start a new client (a fresh socket), as
//  the sync calls do. Do not mix the two on one client while async
//  requests are in flight.
//
//  Not thread safe: one client per thread.
//
//  Errors and defaults follow cartmq/common.h: the reason a call failed is
//  kept in the client (cmq_client_errstr); cmq_client_new, having no
//  client to keep it in, writes it to the caller's buffer.

#ifndef CARTMQ_CLIENT_H
#define CARTMQ_CLIENT_H

#include <czmq.h>
#include <stdint.h>

#include "cartmq/common.h"

#define CMQ_DEFAULT_TIMEOUT_MS 2500
#define CMQ_DEFAULT_RETRIES    2

//  Brokers one client may be given; backoff of a broker that went silent.
#define CMQ_CLIENT_MAX_ENDPOINTS  CMQ_MAX_BROKERS
#define CMQ_CLIENT_BACKOFF_MIN_MS 1000
#define CMQ_CLIENT_BACKOFF_MAX_MS 30000
//  Attempts of the last sync call whose broker is remembered.
#define CMQ_CLIENT_LAST_MAX 32

typedef struct _cmq_client_t cmq_client_t;

typedef struct {
    const char *endpoint;      //  NULL: CMQ_DEFAULT_ENDPOINT; may be a
                               //  list of brokers split at commas (and
                               //  blanks)
    int timeout_ms;            //  per attempt; <= 0: default
    int retries;               //  resends after the first (0: none);
                               //  < 0: default
    const char *curve_server;  //  broker's public cert file, or NULL
    const char *curve_cert;    //  our secret cert file (NAME_secret)
    //  Several brokers; used instead of endpoint when endpoint_count > 0.
    //  An endpoint given twice (here or in a list) is a config error.
    const char *const *endpoints;
    size_t endpoint_count;
} cmq_client_config_t;

//  What a client has done, for a caller that reports it.
typedef struct {
    uint64_t calls;     //  sync calls
    uint64_t attempts;  //  sync attempts sent (calls + resends)
    uint64_t switches;  //  sync attempts on another broker than the
                        //  call's previous attempt
    uint64_t timeouts;  //  sync attempts unanswered, and brokers an async
                        //  client found silent
    uint64_t sends;     //  async requests sent
    uint64_t replies;   //  replies taken, sync and async
} cmq_client_counters_t;

//  Fills a config with the defaults above.
void cmq_client_config_defaults (cmq_client_config_t *config);

//  Connects. config NULL: all defaults. Returns NULL on a bad endpoint or
//  unusable cert, with the reason in error (up to error_size bytes, NUL
//  included; CMQ_ERRSTR_SIZE always fits) unless error is NULL.
cmq_client_t *cmq_client_new (const cmq_client_config_t *config, char *error,
                              size_t error_size);

void cmq_client_destroy (cmq_client_t **self_p);

//  Sends service + body (takes *body_p) and waits for the reply. Returns 0
//  and the reply body in *reply_p (caller destroys), or -1 when every
//  attempt timed out or the call was interrupted (cmq_client_errstr).
int cmq_client_call (cmq_client_t *self, const char *service, zmsg_t **body_p,
                     zmsg_t **reply_p);

//  Convenience: one-frame request and reply. On 0, *reply_p / *reply_size_p
//  hold a heap copy of the first reply frame (caller frees).
int cmq_client_call_bytes (cmq_client_t *self, const char *service,
                           const void *request, size_t request_size,
                           void **reply_p, size_t *reply_size_p);

//  Async: queues one request (takes *body_p). Returns 0, or -1 if the
//  socket would not take it.
int cmq_client_send (cmq_client_t *self, const char *service, zmsg_t **body_p);

//  Async: waits up to timeout_ms (-1: forever, 0: poll) for one reply.
//  Returns the body (caller destroys) and, if service_p, the replying
//  service name (caller frees); NULL on timeout or interrupt. Malformed
//  messages from the broker are dropped, never returned.
zmsg_t *cmq_client_recv (cmq_client_t *self, int timeout_ms, char **service_p);

//  The socket of a one-endpoint client, for callers that poll several
//  things at once (async calls only: a sync call that retries replaces
//  it). NULL for a client of several brokers, whose replies come on
//  several sockets: use cmq_client_recv.
zsock_t *cmq_client_socket (cmq_client_t *self);

//  The brokers, as given (a comma list split), in order.
size_t cmq_client_endpoint_count (cmq_client_t *self);
const char *cmq_client_endpoint (cmq_client_t *self, size_t index);

//  Copies the counters so far into *counters.
void cmq_client_counters (cmq_client_t *self, cmq_client_counters_t *counters);

//  The last sync call's attempts; the broker index of each of the first
//  max (at most CMQ_CLIENT_LAST_MAX) goes into brokers[], in attempt order
//  (brokers may be NULL when max is 0).
size_t cmq_client_last_call (cmq_client_t *self, size_t *brokers, size_t max);

//  Why the last call on this client failed ("no error" if none did). Valid
//  until the next call on it.
const char *cmq_client_errstr (cmq_client_t *self);

#endif
