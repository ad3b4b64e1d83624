//  broker_peer.h - a peer's routing id, borrowed
//
//  Routing ids are 1..255 bytes (libzmq and the core see to that). The core
//  passes them around as a pointer and a size into whatever holds them: the
//  frame just read, or the worker that keeps its own copy.

#ifndef BROKER_PEER_H
#define BROKER_PEER_H

#include <czmq.h>

typedef struct {
    const byte *data;
    size_t size;
} broker_peer_t;

static inline broker_peer_t
broker_peer_of_msg (zmq_msg_t *frame)
{
    broker_peer_t peer = { (const byte *) zmq_msg_data (frame),
                           zmq_msg_size (frame) };
    return peer;
}

#endif
