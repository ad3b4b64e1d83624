//  broker_message.h - one message as the broker reads it: raw frames
//
//  The shell reads each message from the ROUTER into one of these
//  (broker_wire_recv), reused from message to message: its frames are
//  zmq_msg_t, received straight from libzmq, so reading a message allocates nothing (CZMQ's zmsg_recv
//  made a zframe_t and a list node per frame, about 30 allocations per
//  request and reply). frames[0] is the sender's routing id.
//
//  The core may take frames it keeps or forwards (request and reply
//  bodies) with zmq_msg_move, leaving them empty; whatever is left is
//  closed by the next read or by broker_message_close.
//
//  A message of more than BROKER_MESSAGE_MAX_FRAMES frames is read to its
//  end and kept truncated, with is_too_long set: a peer cannot make the
//  broker hold a million empty frames (two bytes each on the wire).

#ifndef BROKER_MESSAGE_H
#define BROKER_MESSAGE_H

#include <czmq.h>
#include <stdbool.h>

#define BROKER_MESSAGE_MAX_FRAMES 1024

typedef struct {
    zmq_msg_t *frames;
    size_t count;      //  frames held
    size_t capacity;   //  frames there is room for
    bool is_too_long;  //  more than BROKER_MESSAGE_MAX_FRAMES were sent
} broker_message_t;

broker_message_t *broker_message_new (void);

void broker_message_destroy (broker_message_t **self_p);

//  Closes every frame held; count becomes 0.
void broker_message_close (broker_message_t *self);

//  Doubles the room for frames (broker_message_frame_next).
void broker_message_grow (broker_message_t *self);

//  Filling a message, frame by frame, as the shell's reader
//  (broker_wire_recv) and broker_message_set_from_zmsg both do: the next
//  free frame, initialised empty, to fill...
static inline zmq_msg_t *
broker_message_frame_next (broker_message_t *self)
{
    if (self->count == self->capacity)
        broker_message_grow (self);
    zmq_msg_t *frame = &self->frames[self->count];
    zmq_msg_init (frame);
    return frame;
}

//  ...then kept, or closed and is_too_long set past
//  BROKER_MESSAGE_MAX_FRAMES.
static inline void
broker_message_frame_keep (broker_message_t *self)
{
    if (self->count < BROKER_MESSAGE_MAX_FRAMES)
        self->count++;
    else {
        zmq_msg_close (&self->frames[self->count]);
        self->is_too_long = true;
    }
}

//  Holds a copy of msg's frames, for tests and tools that build messages
//  with CZMQ: the same filling as the shell's reader, from other bytes.
void broker_message_set_from_zmsg (broker_message_t *self, zmsg_t *msg);

#endif
