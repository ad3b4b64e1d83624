//  bench_pace.c - `cartmq bench --rate R`: each client's send schedule
//
//  Pure bookkeeping (no socket, no clock): bench_request.c asks it which
//  client is due and sends. See bench_pace.h.

#include "bench_pace.h"

#include <czmq.h>

#define S_NOT_IN_HEAP UINT32_MAX

struct _bench_pace_t {
    int64_t clients;
    int64_t interval_ns;  //  between two sends of one client
    int64_t backlog;      //  sends a client may run behind
    int64_t *due_ns;      //  per client: its next send time
    uint32_t *heap;       //  clients by due_ns, earliest first
    uint32_t *position;   //  per client: its place in heap, or S_NOT_IN_HEAP
    uint32_t count;       //  clients in heap
};

bench_pace_t *
bench_pace_new (int64_t clients, int64_t rate, int64_t backlog,
                int64_t start_ns)
{
    assert (clients > 0 && rate > 0 && backlog > 0);
    bench_pace_t *self = (bench_pace_t *) zmalloc (sizeof (bench_pace_t));
    self->clients = clients;
    self->interval_ns = clients * 1000000000LL / rate;
    if (self->interval_ns < 1)
        self->interval_ns = 1;
    self->backlog = backlog;
    self->due_ns = (int64_t *) zmalloc ((size_t) clients * sizeof (int64_t));
    self->heap = (uint32_t *) zmalloc ((size_t) clients * sizeof (uint32_t));
    self->position =
      (uint32_t *) zmalloc ((size_t) clients * sizeof (uint32_t));
    //  Staggered by 1/rate: the load as a whole goes out evenly. In this
    //  order the array is already a heap.
    for (int64_t client = 0; client < clients; client++) {
        self->due_ns[client] = start_ns + client * 1000000000LL / rate;
        self->heap[client] = (uint32_t) client;
        self->position[client] = (uint32_t) client;
    }
    self->count = (uint32_t) clients;
    return self;
}

void
bench_pace_destroy (bench_pace_t **self_p)
{
    bench_pace_t *self = *self_p;
    if (!self)
        return;
    free (self->due_ns);
    free (self->heap);
    free (self->position);
    free (self);
    *self_p = NULL;
}

int64_t
bench_pace_interval_ns (const bench_pace_t *self)
{
    return self->interval_ns;
}

int64_t
bench_pace_next_ns (const bench_pace_t *self)
{
    return self->count ? self->due_ns[self->heap[0]] : INT64_MAX;
}

bool
bench_pace_is_waiting (const bench_pace_t *self, int64_t client)
{
    return self->position[client] != S_NOT_IN_HEAP;
}

static void
s_place (bench_pace_t *self, uint32_t at, uint32_t client)
{
    self->heap[at] = client;
    self->position[client] = at;
}

static void
s_sift_up (bench_pace_t *self, uint32_t at)
{
    uint32_t client = self->heap[at];
    while (at > 0) {
        uint32_t parent = (at - 1) / 2;
        if (self->due_ns[self->heap[parent]] <= self->due_ns[client])
            break;
        s_place (self, at, self->heap[parent]);
        at = parent;
    }
    s_place (self, at, client);
}

static void
s_sift_down (bench_pace_t *self, uint32_t at)
{
    uint32_t client = self->heap[at];
    while (true) {
        uint32_t child = 2 * at + 1;
        if (child >= self->count)
            break;
        if (child + 1 < self->count && self->due_ns[self->heap[child + 1]] <
                                         self->due_ns[self->heap[child]])
            child++;
        if (self->due_ns[client] <= self->due_ns[self->heap[child]])
            break;
        s_place (self, at, self->heap[child]);
        at = child;
    }
    s_place (self, at, client);
}

int64_t
bench_pace_pop_due (bench_pace_t *self, int64_t now_ns)
{
    if (self->count == 0 || self->due_ns[self->heap[0]] > now_ns)
        return -1;
    uint32_t client = self->heap[0];
    self->position[client] = S_NOT_IN_HEAP;
    self->count--;
    if (self->count > 0) {
        s_place (self, 0, self->heap[self->count]);
        s_sift_down (self, 0);
    }
    return client;
}

void
bench_pace_push (bench_pace_t *self, int64_t client)
{
    assert (client >= 0 && client < self->clients);
    assert (self->position[client] == S_NOT_IN_HEAP);
    s_place (self, self->count, (uint32_t) client);
    self->count++;
    s_sift_up (self, self->count - 1);
}

bench_pace_turn_t
bench_pace_take (bench_pace_t *self, int64_t client, int64_t now_ns,
                 uint64_t *skipped)
{
    int64_t *due_ns = &self->due_ns[client];
    if (*due_ns > now_ns)
        return BENCH_PACE_NOT_DUE;
    //  Sends due by now, this one included; past the backlog, drop.
    int64_t due = (now_ns - *due_ns) / self->interval_ns + 1;
    if (due > self->backlog) {
        *skipped += (uint64_t) (due - self->backlog);
        *due_ns += (due - self->backlog) * self->interval_ns;
    }
    bool is_late = now_ns - *due_ns > BENCH_PACE_LATE_NS;
    *due_ns += self->interval_ns;
    return is_late ? BENCH_PACE_LATE : BENCH_PACE_ON_TIME;
}
