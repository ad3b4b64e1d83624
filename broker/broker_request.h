//  broker_request.h - one client request as the broker holds it
//
//  A request keeps the client's routing id and the body frames from the
//  moment it arrives until its reply is delivered or it is dropped, so it
//  can be sent again if its worker dies. Sends borrow the body frames
//  (libzmq shares the bytes, nothing is copied), so a request is reference
//  counted: the core holds one reference, each pending send another.

#ifndef BROKER_REQUEST_H
#define BROKER_REQUEST_H

#include <czmq.h>
#include <stdint.h>

typedef struct _broker_request_t broker_request_t;

struct _broker_request_t {
    zframe_t *client;       //  client routing id
    zmsg_t *body;           //  body frames, one or more
    void *service;          //  service_t it was sent to (core's type)
    int64_t arrived_us;     //  first arrival at the broker
    int64_t dispatched_us;  //  last handed to a worker
    int redispatches;       //  times re-sent after a worker died
    void *handle;           //  in its service queue or worker's in-flight list
    int refs;
};

//  Takes *client_p and *body_p. One reference.
broker_request_t *broker_request_new (zframe_t **client_p, zmsg_t **body_p,
                                      void *service, int64_t arrived_us);

broker_request_t *broker_request_ref (broker_request_t *self);

//  Gives the body frames storage of their own. libzmq hands received
//  frames over without copying, each pinning the whole receive buffer it
//  came in (8 KiB or more); a request that will wait in a queue copies its
//  body once so that it holds only its own bytes.
void broker_request_compact (broker_request_t *self);

//  Drops one reference and NULLs *self_p; frees at zero.
void broker_request_unref (broker_request_t **self_p);

#endif
