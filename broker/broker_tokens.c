//  broker_tokens.c - the names a REQUEST gives its worker for a request
//
//  Free slots form a list threaded through the table (next_free), so
//  taking and freeing one is O(1).

#include "broker_tokens.h"

typedef struct {
    broker_request_t *request;  //  while in use, else NULL
    uint64_t generation;        //  odd while in use; only ever goes up
    uint32_t next_free;         //  while free: next free index + 1, or 0
} s_slot_t;

struct _broker_tokens_t {
    s_slot_t *slots;
    uint32_t made;  //  slots in use or on the free list
    uint32_t capacity;
    uint32_t free_slot;  //  first free index + 1, or 0
};

broker_tokens_t *
broker_tokens_new (void)
{
    return (broker_tokens_t *) zmalloc (sizeof (broker_tokens_t));
}

void
broker_tokens_destroy (broker_tokens_t **self_p)
{
    assert (self_p);
    broker_tokens_t *self = *self_p;
    if (!self)
        return;
    free (self->slots);
    free (self);
    *self_p = NULL;
}

static void
s_encode (broker_request_t *request, uint32_t index, uint64_t generation)
{
    memcpy (request->token, &index, sizeof (index));
    memcpy (request->token + sizeof (index), &generation, sizeof (generation));
    request->token_size = BROKER_REQUEST_TOKEN_BYTES;
}

//  A slot index that is free, made if need be.
static uint32_t
s_take_slot (broker_tokens_t *self)
{
    if (self->free_slot) {
        uint32_t index = self->free_slot - 1;
        self->free_slot = self->slots[index].next_free;
        return index;
    }
    if (self->made == self->capacity) {
        assert (self->capacity < UINT32_MAX / 2);
        self->capacity = self->capacity ? self->capacity * 2 : 64;
        self->slots = (s_slot_t *) realloc (self->slots,
                                            self->capacity * sizeof (s_slot_t));
        assert (self->slots);
    }
    self->slots[self->made].generation = 0;
    return self->made++;
}

void
broker_tokens_assign (broker_tokens_t *self, broker_request_t *request)
{
    assert (self && request);
    if (request->token_size)
        return;
    uint32_t index = s_take_slot (self);
    s_slot_t *slot = &self->slots[index];
    slot->generation++;  //  odd: in use
    slot->request = request;
    slot->next_free = 0;
    s_encode (request, index, slot->generation);
}

void
broker_tokens_release (broker_tokens_t *self, broker_request_t *request)
{
    assert (self && request);
    if (!request->token_size)
        return;
    uint32_t index;
    memcpy (&index, request->token, sizeof (index));
    s_slot_t *slot = &self->slots[index];
    assert (slot->request == request);
    slot->generation++;  //  even: free
    slot->request = NULL;
    slot->next_free = self->free_slot;
    self->free_slot = index + 1;
}

broker_request_t *
broker_tokens_find (broker_tokens_t *self, const byte *data, size_t size)
{
    assert (self && (data || size == 0));
    if (size != BROKER_REQUEST_TOKEN_BYTES)
        return NULL;
    uint32_t index;
    uint64_t generation;
    memcpy (&index, data, sizeof (index));
    memcpy (&generation, data + sizeof (index), sizeof (generation));
    if (index >= self->made)
        return NULL;
    s_slot_t *slot = &self->slots[index];
    if (slot->generation != generation || !(generation & 1))
        return NULL;
    return slot->request;
}
