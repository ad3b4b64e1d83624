//  broker_outbox.h - messages the core wants sent, in order
//
//  The core appends; the shell sends them all on the ROUTER after each
//  batch of input; tests pop them as plain messages. Entries are built so
//  that sending allocates nothing and copies no body: routing ids and MDP
//  header frames are kept inline and sent as small frames, a request's body
//  is borrowed (the entry holds a reference) and sent as shared copies, and
//  a reply's body frames are moved from the worker's message.

#ifndef BROKER_OUTBOX_H
#define BROKER_OUTBOX_H

#include <czmq.h>

#include "broker_request.h"
#include "cartmq/mdp.h"

typedef struct _broker_outbox_t broker_outbox_t;

//  A peer's routing id, 1..255 bytes, borrowed for the call.
typedef struct {
    const byte *data;
    size_t size;
} broker_peer_t;

static inline broker_peer_t
broker_peer_of_frame (zframe_t *frame)
{
    broker_peer_t peer = { zframe_data (frame), zframe_size (frame) };
    return peer;
}

broker_outbox_t *broker_outbox_new (void);

void broker_outbox_destroy (broker_outbox_t **self_p);

//  [worker][""][MDPW01][REQUEST][client][""][body...] from the request;
//  takes a new reference to request.
void broker_outbox_add_request (broker_outbox_t *self, broker_peer_t worker,
                                broker_request_t *request);

//  [client][""][MDPC01][service][body...]; takes *body_p.
void broker_outbox_add_reply (broker_outbox_t *self, broker_peer_t client,
                              const char *service, zmsg_t **body_p);

//  [peer][""][MDPW01][command] for HEARTBEAT and DISCONNECT.
void broker_outbox_add_command (broker_outbox_t *self, broker_peer_t peer,
                                cmq_mdpw_command_t command);

size_t broker_outbox_size (broker_outbox_t *self);

//  Sends every entry on socket, in order, and empties the outbox. A
//  message the socket refuses is dropped (ROUTER drops unroutable ones).
void broker_outbox_send (broker_outbox_t *self, zsock_t *socket);

//  Removes the first entry as one self-contained message; NULL if empty.
//  For tests and tools.
zmsg_t *broker_outbox_pop (broker_outbox_t *self);

#endif
