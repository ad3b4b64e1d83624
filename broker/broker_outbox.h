//  broker_outbox.h - messages the core wants sent, in order
//
//  The core appends; after each batch of input the shell flushes them all
//  into its socket sink (broker_wire.h); tests pop them as plain messages
//  through the same emitter (broker_sink.h). Entries are built so
//  that sending allocates nothing and copies no body: routing ids and MDP
//  header frames are kept inline and sent as small frames, a request's body
//  is borrowed (the entry holds a reference) and sent as shared copies, and
//  a reply's body frames are moved from the worker's message (up to
//  BROKER_OUTBOX_INLINE_FRAMES of them inline in the entry).

#ifndef BROKER_OUTBOX_H
#define BROKER_OUTBOX_H

#include <czmq.h>

#include "broker_peer.h"
#include "broker_request.h"
#include "broker_sink.h"
#include "cartmq/mdp.h"

typedef struct _broker_outbox_t broker_outbox_t;

broker_outbox_t *broker_outbox_new (void);

void broker_outbox_destroy (broker_outbox_t **self_p);

//  [worker][""][MDPW01][REQUEST][token][""][body...] from the request;
//  takes a new reference to request.
void broker_outbox_add_request (broker_outbox_t *self, broker_peer_t worker,
                                broker_request_t *request);

//  [client][""][MDPC01][service][body...]; moves the count body frames
//  (one or more) out of body, leaving them empty.
void broker_outbox_add_reply (broker_outbox_t *self, broker_peer_t client,
                              const char *service, zmq_msg_t *body,
                              size_t count);

//  The same with a one-frame body copied from bytes (MMI answers).
void broker_outbox_add_reply_bytes (broker_outbox_t *self, broker_peer_t client,
                                    const char *service, const void *data,
                                    size_t size);

//  [peer][""][MDPW01][command] for HEARTBEAT and DISCONNECT.
void broker_outbox_add_command (broker_outbox_t *self, broker_peer_t peer,
                                cmq_mdpw_command_t command);

size_t broker_outbox_size (broker_outbox_t *self);

//  What a flush could not hand over because the peer's output was full
//  (the socket's ZMQ_SNDHWM of messages waiting for it), added to by each
//  broker_outbox_flush; the caller zeroes it when it has used it.
typedef struct {
    size_t replies_full;   //  replies to clients (not MMI answers)
    size_t requests_full;  //  REQUESTs to workers
    size_t others_full;    //  MMI answers, HEARTBEAT, DISCONNECT
    byte last_full_peer[BROKER_PEER_MAX_BYTES];  //  last refused routing id
    size_t last_full_size;
} broker_outbox_sent_t;

//  Emits every entry into sink, in order, and empties the outbox. An
//  entry whose routing id the sink refuses with EAGAIN (the peer's output
//  is full) is dropped and noted in *sent; with another errno (the peer
//  is gone) it is dropped.
void broker_outbox_flush (broker_outbox_t *self, broker_sink_t *sink,
                          broker_outbox_sent_t *sent);

//  Removes the first entry as one self-contained message, emitted as a
//  flush would; NULL if empty. For tests and tools.
zmsg_t *broker_outbox_pop (broker_outbox_t *self);

#endif
