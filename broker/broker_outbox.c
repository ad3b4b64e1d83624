//  broker_outbox.c - messages the core wants sent, in order

#include "broker_outbox.h"

typedef struct {
    zmsg_t *head;               //  owned frames, sent first
    broker_request_t *request;  //  borrowed body follows, or NULL
} s_entry_t;

struct _broker_outbox_t {
    s_entry_t *entries;  //  ring would be overkill: drained per input
    size_t count;
    size_t capacity;
};

broker_outbox_t *
broker_outbox_new (void)
{
    broker_outbox_t *self = (broker_outbox_t *) zmalloc (sizeof (*self));
    self->capacity = 64;
    self->entries = (s_entry_t *) zmalloc (self->capacity * sizeof (s_entry_t));
    return self;
}

static void
s_entry_clear (s_entry_t *entry)
{
    zmsg_destroy (&entry->head);
    broker_request_unref (&entry->request);
}

void
broker_outbox_destroy (broker_outbox_t **self_p)
{
    assert (self_p);
    broker_outbox_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->count; index++)
        s_entry_clear (&self->entries[index]);
    free (self->entries);
    free (self);
    *self_p = NULL;
}

static s_entry_t *
s_append (broker_outbox_t *self)
{
    if (self->count == self->capacity) {
        self->capacity *= 2;
        self->entries = (s_entry_t *) realloc (
          self->entries, self->capacity * sizeof (s_entry_t));
        assert (self->entries);
    }
    s_entry_t *entry = &self->entries[self->count++];
    entry->head = NULL;
    entry->request = NULL;
    return entry;
}

void
broker_outbox_add (broker_outbox_t *self, zmsg_t **msg_p)
{
    assert (self && msg_p && *msg_p);
    s_entry_t *entry = s_append (self);
    entry->head = *msg_p;
    *msg_p = NULL;
}

void
broker_outbox_add_request (broker_outbox_t *self, zmsg_t **head_p,
                           broker_request_t *request)
{
    assert (self && head_p && *head_p && request);
    s_entry_t *entry = s_append (self);
    entry->head = *head_p;
    *head_p = NULL;
    entry->request = broker_request_ref (request);
}

size_t
broker_outbox_size (broker_outbox_t *self)
{
    assert (self);
    return self->count;
}

//  ZFRAME_REUSE makes libzmq send a shared copy of the frame (reference
//  counted above 33 bytes), so a body is never copied however many times
//  it is sent.
static void
s_send_entry (s_entry_t *entry, void *handle)
{
    zframe_t *frame = zmsg_pop (entry->head);
    while (frame) {
        zframe_t *next = zmsg_pop (entry->head);
        int more = (next || entry->request) ? ZFRAME_MORE : 0;
        zframe_send (&frame, handle, more);
        zframe_destroy (&frame);  //  if the send failed
        frame = next;
    }
    if (entry->request) {
        zmsg_t *body = entry->request->body;
        size_t left = zmsg_size (body);
        for (zframe_t *part = zmsg_first (body); part;
             part = zmsg_next (body)) {
            int flags = ZFRAME_REUSE | (--left ? ZFRAME_MORE : 0);
            zframe_send (&part, handle, flags);
        }
    }
    s_entry_clear (entry);
}

void
broker_outbox_send (broker_outbox_t *self, zsock_t *socket)
{
    assert (self && socket);
    void *handle = zsock_resolve (socket);
    for (size_t index = 0; index < self->count; index++)
        s_send_entry (&self->entries[index], handle);
    self->count = 0;
}

zmsg_t *
broker_outbox_pop (broker_outbox_t *self)
{
    assert (self);
    if (self->count == 0)
        return NULL;
    s_entry_t entry = self->entries[0];
    memmove (&self->entries[0], &self->entries[1],
             (self->count - 1) * sizeof (s_entry_t));
    self->count--;
    zmsg_t *msg = entry.head;
    if (entry.request) {
        zmsg_t *body = entry.request->body;
        for (zframe_t *part = zmsg_first (body); part; part = zmsg_next (body))
            zmsg_append (msg, &(zframe_t *){ zframe_dup (part) });
        broker_request_unref (&entry.request);
    }
    return msg;
}
