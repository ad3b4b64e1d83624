//  client.h - the Majordomo client library users link
//
//  One client talks to one broker endpoint over a DEALER socket.
//
//  Synchronous: cmq_client_call sends a request and waits up to timeout_ms
//  for the reply; on silence it closes the socket, opens a fresh one (so a
//  late reply to the old attempt can never be mistaken for the new one) and
//  resends, up to `retries` more times.
//
//  Asynchronous: cmq_client_send queues any number of requests on the
//  socket; cmq_client_recv returns replies as they arrive, in any order.
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

typedef struct _cmq_client_t cmq_client_t;

typedef struct {
    const char *endpoint;      //  NULL: CMQ_DEFAULT_ENDPOINT
    int timeout_ms;            //  per attempt; <= 0: default
    int retries;               //  resends after the first (0: none);
                               //  < 0: default
    const char *curve_server;  //  broker's public cert file, or NULL
    const char *curve_cert;    //  our secret cert file (NAME_secret)
} cmq_client_config_t;

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

//  The socket, for callers that poll several things at once.
zsock_t *cmq_client_socket (cmq_client_t *self);

//  Why the last call on this client failed ("no error" if none did). Valid
//  until the next call on it.
const char *cmq_client_errstr (cmq_client_t *self);

#endif
