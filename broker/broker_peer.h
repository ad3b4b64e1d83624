//  broker_peer.h - a peer's routing id, borrowed
//
//  Routing ids are 1..BROKER_PEER_MAX_BYTES bytes (libzmq and the core see
//  to that). The core passes them around as a pointer and a size into
//  whatever holds them: the frame just read, or the worker that keeps its
//  own copy.

#ifndef BROKER_PEER_H
#define BROKER_PEER_H

#include <czmq.h>

//  The longest routing id libzmq gives a peer (a ZMQ_ROUTING_ID is 1..255
//  bytes), and so the longest the broker ever stores or sends.
#define BROKER_PEER_MAX_BYTES 255

//  A routing id in hex for logs, with its NUL.
#define BROKER_PEER_HEX_BYTES (2 * BROKER_PEER_MAX_BYTES + 1)

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

//  Writes peer in hex into hex (BROKER_PEER_HEX_BYTES) and returns it.
static inline const char *
broker_peer_hex (broker_peer_t peer, char *hex)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t index = 0; index < peer.size; index++) {
        hex[2 * index] = digits[peer.data[index] >> 4];
        hex[2 * index + 1] = digits[peer.data[index] & 15];
    }
    hex[2 * peer.size] = 0;
    return hex;
}

#endif
