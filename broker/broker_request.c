//  broker_request.c - one client request as the broker holds it
//
//  Packed block: [id size: 1 byte][id][frame count: 4 bytes] then for each
//  frame [size: 4 bytes][bytes]. Sizes are host order; the block never
//  leaves the process.

#include "broker_request.h"

_Static_assert(sizeof (broker_request_t) <= 120,
               "a request stays within glibc's fast bins (see the header)");

broker_request_t *
broker_request_new (zmq_msg_t *client, zmq_msg_t *body, size_t body_count,
                    void *service, int64_t arrived_us)
{
    assert (client && zmq_msg_size (client) <= BROKER_PEER_MAX_BYTES);
    assert (body && body_count > 0);
    broker_request_t *self = (broker_request_t *) zmalloc (sizeof (*self));
    self->fresh_count = (uint32_t) (1 + body_count);
    self->fresh = (zmq_msg_t *) malloc (self->fresh_count * sizeof (zmq_msg_t));
    assert (self->fresh);
    for (size_t index = 0; index < self->fresh_count; index++) {
        zmq_msg_init (&self->fresh[index]);
        zmq_msg_move (&self->fresh[index], index ? &body[index - 1] : client);
    }
    self->service = service;
    self->arrived_us = arrived_us;
    self->refs = 1;
    return self;
}

static void
s_fresh_close (broker_request_t *self)
{
    for (size_t index = 0; index < self->fresh_count; index++)
        zmq_msg_close (&self->fresh[index]);
    free (self->fresh);
    self->fresh = NULL;
    self->fresh_count = 0;
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
    s_fresh_close (self);
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
    size_t id_size = zmq_msg_size (&self->fresh[0]);
    size_t size = 1 + id_size + 4;
    for (size_t index = 1; index < self->fresh_count; index++)
        size += 4 + zmq_msg_size (&self->fresh[index]);
    byte *block = (byte *) malloc (size);
    assert (block);
    block[0] = (byte) id_size;
    memcpy (block + 1, zmq_msg_data (&self->fresh[0]), id_size);
    byte *cursor = block + 1 + id_size;
    s_write_u32 (cursor, (uint32_t) (self->fresh_count - 1));
    cursor += 4;
    for (size_t index = 1; index < self->fresh_count; index++) {
        zmq_msg_t *frame = &self->fresh[index];
        s_write_u32 (cursor, (uint32_t) zmq_msg_size (frame));
        memcpy (cursor + 4, zmq_msg_data (frame), zmq_msg_size (frame));
        cursor += 4 + zmq_msg_size (frame);
    }
    s_fresh_close (self);
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
    *size_p = zmq_msg_size (&self->fresh[0]);
    return (const byte *) zmq_msg_data (&self->fresh[0]);
}

const byte *
broker_request_address (broker_request_t *self, size_t *size_p)
{
    assert (self && size_p && self->token_size > 0);
    *size_p = self->token_size;
    return self->token;
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
    size_t total = 0;
    if (!self->packed) {
        for (size_t index = 1; index < self->fresh_count; index++)
            total += zmq_msg_size (&self->fresh[index]);
        return total;
    }
    s_packed_each (self, s_add_size, &total);
    return total;
}

static void
s_emit_packed (const byte *data, size_t size, bool is_last, void *sink)
{
    broker_sink_t *target = (broker_sink_t *) sink;
    target->bytes (target, data, size, !is_last);
}

void
broker_request_emit_body (broker_request_t *self, broker_sink_t *sink)
{
    assert (self && sink);
    if (self->packed) {
        s_packed_each (self, s_emit_packed, sink);
        return;
    }
    for (size_t index = 1; index < self->fresh_count; index++) {
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        zmq_msg_copy (&copy, &self->fresh[index]);
        sink->frame (sink, &copy, index + 1 < self->fresh_count);
        zmq_msg_close (&copy);
    }
}
