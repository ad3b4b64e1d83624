//  broker_wire.h - the broker's socket I/O: messages in, the outbox out
//
//  The only place the broker reads or writes its ROUTER; the routing core
//  and everything it links (broker_core target) is socket-free. Sends
//  never wait and never copy a body (broker_outbox.h); a read allocates
//  nothing once the message's frame array has grown to fit.

#ifndef BROKER_WIRE_H
#define BROKER_WIRE_H

#include <czmq.h>

#include "broker_message.h"
#include "broker_outbox.h"

//  Reads one whole message from a socket handle into message, waiting as
//  its ZMQ_RCVTIMEO says. Returns 0, or -1 on timeout, signal or error (no
//  message held).
int broker_wire_recv (broker_message_t *message, void *handle);

//  Sends every entry of outbox on socket, in order, never waiting, and
//  empties it. The socket must be a ROUTER with ZMQ_ROUTER_MANDATORY: a
//  message to a peer that is gone is dropped; one to a peer whose output
//  is full is dropped and noted in *sent.
void broker_wire_send (broker_outbox_t *outbox, zsock_t *socket,
                       broker_outbox_sent_t *sent);

#endif
