//  broker_outbox.h - messages the core wants sent, in order
//
//  The core appends; the shell sends them all on the ROUTER after each
//  input; tests pop them as plain messages. An entry is a head message the
//  outbox owns, optionally followed by a request's body frames, which are
//  borrowed (the entry holds a reference) and sent without copying.

#ifndef BROKER_OUTBOX_H
#define BROKER_OUTBOX_H

#include <czmq.h>

#include "broker_request.h"

typedef struct _broker_outbox_t broker_outbox_t;

broker_outbox_t *broker_outbox_new (void);

void broker_outbox_destroy (broker_outbox_t **self_p);

//  Appends a message (routing id first). Takes *msg_p.
void broker_outbox_add (broker_outbox_t *self, zmsg_t **msg_p);

//  Appends head followed by request's body frames. Takes *head_p and a
//  new reference to request.
void broker_outbox_add_request (broker_outbox_t *self, zmsg_t **head_p,
                                broker_request_t *request);

size_t broker_outbox_size (broker_outbox_t *self);

//  Sends every entry on socket, in order, and empties the outbox. A
//  message the socket refuses is dropped (ROUTER drops unroutable ones).
void broker_outbox_send (broker_outbox_t *self, zsock_t *socket);

//  Removes the first entry as one self-contained message (borrowed frames
//  copied); NULL if empty. For tests and tools.
zmsg_t *broker_outbox_pop (broker_outbox_t *self);

#endif
