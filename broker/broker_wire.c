//  broker_wire.c - the broker's socket I/O: messages in, the outbox out
//
//  Sending is the outbox's emitter with a sink that writes each frame to
//  the ROUTER: small frames by zmq_send (libzmq keeps up to 33 bytes
//  inside the message, no allocation), bodies as zmq_msg_t.

#include "broker_wire.h"

int
broker_wire_recv (broker_message_t *message, void *handle)
{
    assert (message && handle);
    broker_message_close (message);
    while (true) {
        zmq_msg_t *frame = broker_message_frame_next (message);
        //  Only the first frame can wait or fail: libzmq delivers the
        //  frames of a message together.
        if (zmq_msg_recv (frame, handle, 0) < 0) {
            zmq_msg_close (frame);
            broker_message_close (message);
            return -1;
        }
        bool has_more = zmq_msg_more (frame);
        broker_message_frame_keep (message);
        if (!has_more)
            return 0;
    }
}

//  Every frame goes with ZMQ_DONTWAIT. The socket is a ROUTER with
//  ZMQ_ROUTER_MANDATORY, so the first frame (the routing id) is where
//  libzmq decides: 0 and the rest of the message is taken whatever
//  happens; EAGAIN when the peer's pipe holds its high-water mark of
//  unsent messages; EHOSTUNREACH when no such peer is connected. Later
//  frames of an accepted message never fail with EAGAIN (router.cpp checks
//  the high-water mark on the first frame only), so a message is never
//  cut in half, and DONTWAIT means a full peer can never block the loop.
typedef struct {
    broker_sink_t base;
    void *handle;
} s_socket_sink_t;

static int
s_socket_bytes (broker_sink_t *sink, const void *data, size_t size, bool more)
{
    return zmq_send (((s_socket_sink_t *) sink)->handle, data, size,
                     ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0));
}

//  A sent frame is left empty; one that failed is closed by the caller.
static void
s_socket_frame (broker_sink_t *sink, zmq_msg_t *frame, bool more)
{
    zmq_msg_send (frame, ((s_socket_sink_t *) sink)->handle,
                  ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0));
}

void
broker_wire_send (broker_outbox_t *outbox, zsock_t *socket,
                  broker_outbox_sent_t *sent)
{
    assert (outbox && socket && sent);
    s_socket_sink_t sink = { { s_socket_bytes, s_socket_frame },
                             zsock_resolve (socket) };
    broker_outbox_flush (outbox, &sink.base, sent);
}
