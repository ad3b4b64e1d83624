//  broker_request.h - one client request as the broker holds it
//
//  A request keeps the client's routing id and the body frames from the
//  moment it arrives until its reply is delivered or it is dropped, so it
//  can be sent again if its worker dies.
//
//  It has two forms. Fresh, it holds the frames as received (zmq_msg_t,
//  moved out of the message read): sends borrow them (libzmq shares the
//  bytes, nothing is copied), which is what a request that goes straight
//  to a worker needs. Packed, it holds one compact block with the routing
//  id and the body: what a request waiting in a queue needs, since a
//  received frame may pin libzmq's whole receive buffer (8 KiB or more)
//  and each zmq_msg_t is 64 bytes.
//
//  Sends borrow the request, so it is reference counted: the core holds
//  one reference, each pending send another.
//
//  The address a worker sees in REQUEST is not the client's routing id but
//  a token the core gives the request when it is first handed to a worker
//  (contract §3: it names that one request). The token never changes
//  while the request lives, so a send still pending when the request is
//  re-dispatched writes the same bytes.

#ifndef BROKER_REQUEST_H
#define BROKER_REQUEST_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker_list.h"
#include "broker_peer.h"
#include "broker_sink.h"

typedef struct _broker_request_t broker_request_t;

//  Bytes of the token a REQUEST carries as its client address.
#define BROKER_REQUEST_TOKEN_BYTES 12

//  Laid out to stay within 120 bytes, a 128-byte heap chunk: glibc
//  recycles chunks up to that size from its fast bins, and a request is
//  made and freed per message (a larger one cost about 100 more
//  instructions per request under callgrind).
struct _broker_request_t {
    zmq_msg_t *fresh;            //  fresh: [client routing id][body...]
    byte *packed;                //  packed: id and body in one block
    void *service;               //  service_t it was sent to (core's type)
    void *worker;                //  worker_t it is in flight on, or NULL
    uint64_t sequence;           //  arrival order at the broker, from 1
    int64_t arrived_us;          //  first arrival at the broker
    int64_t dispatched_us;       //  last handed to a worker
    broker_link_t link;          //  in its service queue or a worker's
    broker_link_t arrival_link;  //  in the core's list by arrival
    uint32_t fresh_count;        //  fresh: frames, the id included; else 0
    int refs;
    byte token[BROKER_REQUEST_TOKEN_BYTES];  //  the core's name for it
    uint16_t redispatches;                   //  times re-sent after a death
    uint8_t token_size;  //  0 until first dispatched, then TOKEN_BYTES
};

//  Moves the client's routing id and body_count body frames (one or more)
//  out of the caller's frames, leaving them empty. One reference.
broker_request_t *broker_request_new (zmq_msg_t *client, zmq_msg_t *body,
                                      size_t body_count, void *service,
                                      int64_t arrived_us);

broker_request_t *broker_request_ref (broker_request_t *self);

//  Drops one reference and NULLs *self_p; frees at zero.
void broker_request_unref (broker_request_t **self_p);

//  Moves a fresh request to the packed form; nothing if packed already.
//  Pending sends stay valid (they read the request when sent).
void broker_request_pack (broker_request_t *self);

//  The client's routing id.
const byte *broker_request_client (broker_request_t *self, size_t *size_p);

//  The client address a REQUEST carries to the worker: the request's token
//  (the core sets it before the first dispatch).
const byte *broker_request_address (broker_request_t *self, size_t *size_p);

//  Total bytes of body, for logs.
size_t broker_request_body_size (broker_request_t *self);

//  Emits the body frames into sink as the last frames of a message. A
//  fresh body is emitted as shared copies (zmq_msg_copy counts references
//  above 33 bytes): never copied however many times it is sent.
void broker_request_emit_body (broker_request_t *self, broker_sink_t *sink);

#endif
