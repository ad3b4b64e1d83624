//  broker_sink.h - where the frames of outgoing messages go
//
//  The outbox emits each message it holds as a sequence of frames into a
//  sink, by one function whatever the sink: the shell's sink sends them on
//  the ROUTER (broker_wire.c), the test sink collects them into a zmsg_t
//  (broker_outbox_pop). So the bytes a unit test reads are the bytes
//  production sends. A sink is chosen once per flush; each frame is one
//  call through it.

#ifndef BROKER_SINK_H
#define BROKER_SINK_H

#include <czmq.h>
#include <stdbool.h>

typedef struct _broker_sink_t broker_sink_t;

struct _broker_sink_t {
    //  One frame copied from bytes; more is true if frames follow. For the
    //  first frame of a message (the routing id) returns 0, or -1 with
    //  errno when the peer refused the whole message: the emitter then
    //  emits nothing more of it. Later frames of an accepted message are
    //  never refused.
    int (*bytes) (broker_sink_t *self, const void *data, size_t size,
                  bool more);
    //  One frame taken from *frame (never the first of a message). The
    //  sink may leave *frame empty; the caller closes it either way.
    void (*frame) (broker_sink_t *self, zmq_msg_t *frame, bool more);
};

#endif
