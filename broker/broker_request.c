//  broker_request.c - one client request as the broker holds it
//
//  Packed block: [id size: 1 byte][id][frame count: 4 bytes] then for each
//  frame [size: 4 bytes][bytes]. Sizes are host order; the block never
//  leaves the process.

#include "broker_request.h"

broker_request_t *
broker_request_new (zframe_t **client_p, zmsg_t **body_p, void *service,
                    int64_t arrived_us)
{
    assert (client_p && *client_p && zframe_size (*client_p) <= 255);
    assert (body_p && *body_p && zmsg_size (*body_p) > 0);
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
    free (self->packed);
    free (self);
}

//  ---------------------------------------------------------------------
//  The packed block

static uint32_t
s_read_u32 (const byte *data)
{
    uint32_t value;
    memcpy (&value, data, sizeof (value));
    return value;
}

static void
s_write_u32 (byte *data, uint32_t value)
{
    memcpy (data, &value, sizeof (value));
}

//  Where the frame count sits: after the routing id.
static byte *
s_packed_frames (broker_request_t *self)
{
    return self->packed + 1 + self->packed[0];
}

void
broker_request_pack (broker_request_t *self)
{
    assert (self);
    if (self->packed)
        return;
    size_t id_size = zframe_size (self->client);
    size_t size = 1 + id_size + 4;
    for (zframe_t *frame = zmsg_first (self->body); frame;
         frame = zmsg_next (self->body))
        size += 4 + zframe_size (frame);
    byte *block = (byte *) malloc (size);
    assert (block);
    block[0] = (byte) id_size;
    memcpy (block + 1, zframe_data (self->client), id_size);
    byte *cursor = block + 1 + id_size;
    s_write_u32 (cursor, (uint32_t) zmsg_size (self->body));
    cursor += 4;
    for (zframe_t *frame = zmsg_first (self->body); frame;
         frame = zmsg_next (self->body)) {
        s_write_u32 (cursor, (uint32_t) zframe_size (frame));
        memcpy (cursor + 4, zframe_data (frame), zframe_size (frame));
        cursor += 4 + zframe_size (frame);
    }
    zframe_destroy (&self->client);
    zmsg_destroy (&self->body);
    self->packed = block;
}

const byte *
broker_request_client (broker_request_t *self, size_t *size_p)
{
    assert (self && size_p);
    if (self->packed) {
        *size_p = self->packed[0];
        return self->packed + 1;
    }
    *size_p = zframe_size (self->client);
    return zframe_data (self->client);
}

bool
broker_request_is_from (broker_request_t *self, zframe_t *client)
{
    size_t size;
    const byte *data = broker_request_client (self, &size);
    return size == zframe_size (client) &&
           memcmp (data, zframe_data (client), size) == 0;
}

//  Calls visit for each packed frame in order, with whether it is last.
typedef void (s_visit_fn) (const byte *data, size_t size, bool is_last,
                           void *arg);

static void
s_packed_each (broker_request_t *self, s_visit_fn *visit, void *arg)
{
    const byte *cursor = s_packed_frames (self);
    uint32_t count = s_read_u32 (cursor);
    cursor += 4;
    for (uint32_t index = 0; index < count; index++) {
        uint32_t size = s_read_u32 (cursor);
        visit (cursor + 4, size, index + 1 == count, arg);
        cursor += 4 + size;
    }
}

static void
s_add_size (const byte *data, size_t size, bool is_last, void *arg)
{
    (void) data;
    (void) is_last;
    *(size_t *) arg += size;
}

size_t
broker_request_body_size (broker_request_t *self)
{
    assert (self);
    if (!self->packed)
        return zmsg_content_size (self->body);
    size_t total = 0;
    s_packed_each (self, s_add_size, &total);
    return total;
}

static void
s_send_packed (const byte *data, size_t size, bool is_last, void *handle)
{
    zmq_send (handle, data, size, is_last ? 0 : ZMQ_SNDMORE);
}

//  ZFRAME_REUSE sends a shared copy (reference counted above 33 bytes), so
//  a fresh body is never copied however many times it is sent.
void
broker_request_send_body (broker_request_t *self, void *handle)
{
    assert (self && handle);
    if (self->packed) {
        s_packed_each (self, s_send_packed, handle);
        return;
    }
    size_t left = zmsg_size (self->body);
    for (zframe_t *part = zmsg_first (self->body); part;
         part = zmsg_next (self->body)) {
        int flags = ZFRAME_REUSE | (--left ? ZFRAME_MORE : 0);
        zframe_send (&part, handle, flags);
    }
}

static void
s_add_frame (const byte *data, size_t size, bool is_last, void *msg)
{
    (void) is_last;
    zmsg_addmem ((zmsg_t *) msg, data, size);
}

zmsg_t *
broker_request_body_copy (broker_request_t *self)
{
    assert (self);
    if (!self->packed)
        return zmsg_dup (self->body);
    zmsg_t *copy = zmsg_new ();
    s_packed_each (self, s_add_frame, copy);
    return copy;
}
