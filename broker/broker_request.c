//  broker_request.c - one client request as the broker holds it

#include "broker_request.h"

broker_request_t *
broker_request_new (zframe_t **client_p, zmsg_t **body_p, void *service,
                    int64_t arrived_us)
{
    assert (client_p && *client_p);
    assert (body_p && *body_p);
    broker_request_t *self = (broker_request_t *) zmalloc (sizeof (*self));
    self->client = *client_p;
    *client_p = NULL;
    self->body = *body_p;
    *body_p = NULL;
    self->service = service;
    self->arrived_us = arrived_us;
    self->refs = 1;
    return self;
}

broker_request_t *
broker_request_ref (broker_request_t *self)
{
    assert (self);
    self->refs++;
    return self;
}

void
broker_request_unref (broker_request_t **self_p)
{
    assert (self_p);
    broker_request_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    assert (self->refs > 0);
    if (--self->refs > 0)
        return;
    zframe_destroy (&self->client);
    zmsg_destroy (&self->body);
    free (self);
}

//  Frames up to 33 bytes live inside libzmq's message itself: no buffer.
#define S_INLINE_BYTES 33

void
broker_request_compact (broker_request_t *self)
{
    assert (self);
    zmsg_t *compact = zmsg_new ();
    zframe_t *frame;
    while ((frame = zmsg_pop (self->body))) {
        if (zframe_size (frame) > S_INLINE_BYTES) {
            zframe_t *copy = zframe_dup (frame);
            zframe_destroy (&frame);
            frame = copy;
        }
        zmsg_append (compact, &frame);
    }
    zmsg_destroy (&self->body);
    self->body = compact;
}
