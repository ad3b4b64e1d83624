//  broker_message.c - one message as the broker reads it: raw frames

#include "broker_message.h"

broker_message_t *
broker_message_new (void)
{
    broker_message_t *self = (broker_message_t *) zmalloc (sizeof (*self));
    self->capacity = 16;
    self->frames = (zmq_msg_t *) malloc (self->capacity * sizeof (zmq_msg_t));
    assert (self->frames);
    return self;
}

void
broker_message_close (broker_message_t *self)
{
    assert (self);
    for (size_t index = 0; index < self->count; index++)
        zmq_msg_close (&self->frames[index]);
    self->count = 0;
    self->is_too_long = false;
}

void
broker_message_destroy (broker_message_t **self_p)
{
    assert (self_p);
    broker_message_t *self = *self_p;
    if (!self)
        return;
    broker_message_close (self);
    free (self->frames);
    free (self);
    *self_p = NULL;
}

void
broker_message_grow (broker_message_t *self)
{
    assert (self);
    //  Frames move by zmq_msg_move, as libzmq asks, not by realloc.
    zmq_msg_t *frames =
      (zmq_msg_t *) malloc (2 * self->capacity * sizeof (zmq_msg_t));
    assert (frames);
    for (size_t index = 0; index < self->count; index++) {
        zmq_msg_init (&frames[index]);
        zmq_msg_move (&frames[index], &self->frames[index]);
        zmq_msg_close (&self->frames[index]);
    }
    free (self->frames);
    self->frames = frames;
    self->capacity *= 2;
}

void
broker_message_set_from_zmsg (broker_message_t *self, zmsg_t *msg)
{
    assert (self && msg);
    broker_message_close (self);
    for (zframe_t *part = zmsg_first (msg); part; part = zmsg_next (msg)) {
        zmq_msg_t *frame = broker_message_frame_next (self);
        zmq_msg_init_size (frame, zframe_size (part));
        memcpy (zmq_msg_data (frame), zframe_data (part), zframe_size (part));
        broker_message_frame_keep (self);
    }
}
