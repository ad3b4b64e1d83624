//  broker_pick.c - which broker a client tries next, and which are down
//
//  A small array of per-broker health and a round-robin cursor. Every
//  operation is a pass over at most a few dozen brokers: no allocation
//  after new, so a client can consult it on every call.

#include "cartmq/broker_pick.h"

#include <assert.h>
#include <stdlib.h>

typedef struct {
    int64_t up_at_ms;        //  down until then; 0: up
    int64_t backoff_ms;      //  what the next failure gets
    uint64_t outstanding;    //  async requests sent and not answered
    int64_t quiet_since_ms;  //  last reply, or first outstanding send
} s_health_t;

struct _cmq_pick_t {
    size_t count;            //  brokers
    size_t cursor;           //  where the round-robin looks first
    int64_t backoff_min_ms;  //  first backoff, and after a reply
    int64_t backoff_max_ms;  //  doubling stops here
    s_health_t *health;      //  count entries
};

cmq_pick_t *
cmq_pick_new (size_t count, int64_t backoff_min_ms, int64_t backoff_max_ms)
{
    assert (count > 0);
    assert (backoff_min_ms > 0 && backoff_max_ms >= backoff_min_ms);
    cmq_pick_t *self = (cmq_pick_t *) calloc (1, sizeof (cmq_pick_t));
    assert (self);
    self->health = (s_health_t *) calloc (count, sizeof (s_health_t));
    assert (self->health);
    self->count = count;
    self->backoff_min_ms = backoff_min_ms;
    self->backoff_max_ms = backoff_max_ms;
    for (size_t index = 0; index < count; index++)
        self->health[index].backoff_ms = backoff_min_ms;
    return self;
}

void
cmq_pick_destroy (cmq_pick_t **self_p)
{
    assert (self_p);
    cmq_pick_t *self = *self_p;
    if (!self)
        return;
    free (self->health);
    free (self);
    *self_p = NULL;
}

bool
cmq_pick_is_up (const cmq_pick_t *self, size_t index, int64_t now_ms)
{
    assert (self && index < self->count);
    return now_ms >= self->health[index].up_at_ms;
}

//  The first up broker from start on, skipping `skip` (count: none); or
//  when none is up, the one (not skip) whose backoff ends first.
static size_t
s_scan (const cmq_pick_t *self, size_t start, size_t skip, int64_t now_ms)
{
    size_t earliest = self->count;
    for (size_t step = 0; step < self->count; step++) {
        size_t index = (start + step) % self->count;
        if (index == skip)
            continue;
        if (cmq_pick_is_up (self, index, now_ms))
            return index;
        if (earliest == self->count ||
            self->health[index].up_at_ms < self->health[earliest].up_at_ms)
            earliest = index;
    }
    return earliest;
}

size_t
cmq_pick_next (cmq_pick_t *self, int64_t now_ms)
{
    assert (self);
    size_t index = s_scan (self, self->cursor, self->count, now_ms);
    self->cursor = (index + 1) % self->count;
    return index;
}

size_t
cmq_pick_retry (cmq_pick_t *self, size_t failed, int64_t now_ms)
{
    assert (self && failed < self->count);
    if (self->count == 1)
        return 0;
    size_t index = s_scan (self, failed + 1, failed, now_ms);
    //  The round-robin goes on after it, so the next call does not pile
    //  onto the broker that is now taking the retries.
    self->cursor = (index + 1) % self->count;
    return index;
}

void
cmq_pick_failed (cmq_pick_t *self, size_t index, int64_t now_ms)
{
    assert (self && index < self->count);
    s_health_t *health = &self->health[index];
    health->up_at_ms = now_ms + health->backoff_ms;
    health->backoff_ms = health->backoff_ms * 2 > self->backoff_max_ms
                           ? self->backoff_max_ms
                           : health->backoff_ms * 2;
}

void
cmq_pick_answered (cmq_pick_t *self, size_t index, int64_t now_ms)
{
    assert (self && index < self->count);
    s_health_t *health = &self->health[index];
    health->up_at_ms = 0;
    health->backoff_ms = self->backoff_min_ms;
    if (health->outstanding > 0)
        health->outstanding--;
    health->quiet_since_ms = now_ms;
}

void
cmq_pick_sent (cmq_pick_t *self, size_t index, int64_t now_ms)
{
    assert (self && index < self->count);
    s_health_t *health = &self->health[index];
    //  Silence counts from the first request that awaits an answer, not
    //  from a reply long before it.
    if (health->outstanding++ == 0)
        health->quiet_since_ms = now_ms;
}

size_t
cmq_pick_expire (cmq_pick_t *self, int64_t now_ms, int64_t silence_ms)
{
    assert (self);
    size_t marked = 0;
    for (size_t index = 0; index < self->count; index++) {
        s_health_t *health = &self->health[index];
        if (health->outstanding == 0 ||
            now_ms - health->quiet_since_ms < silence_ms ||
            !cmq_pick_is_up (self, index, now_ms))
            continue;
        cmq_pick_failed (self, index, now_ms);
        health->outstanding = 0;
        marked++;
    }
    return marked;
}

int64_t
cmq_pick_up_at (const cmq_pick_t *self, size_t index)
{
    assert (self && index < self->count);
    return self->health[index].up_at_ms;
}

int64_t
cmq_pick_backoff_ms (const cmq_pick_t *self, size_t index)
{
    assert (self && index < self->count);
    return self->health[index].backoff_ms;
}

uint64_t
cmq_pick_outstanding (const cmq_pick_t *self, size_t index)
{
    assert (self && index < self->count);
    return self->health[index].outstanding;
}
