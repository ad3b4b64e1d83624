//  bench_pace.h - `cartmq bench --rate R`: requests sent on a schedule
//
//  Without --rate every client keeps its window full (closed loop: the
//  rate is whatever the system answers). With it, the R requests/s are
//  spread evenly over the clients: client i of N sends every N/R seconds,
//  its first send i/R seconds after the start, so the whole load goes out
//  one request every 1/R seconds. A send still needs a free slot in its
//  client's window. One that goes out over BENCH_PACE_LATE_NS after its
//  time (the window was full, or the loop woke late) is sent at once and
//  counted late; a client never catches up more than its window's worth
//  of sends at once: sends further behind are dropped from its schedule
//  and counted as skipped, so a stall is not followed by a burst.
//
//  The clients wait in a binary heap ordered by their next send time, so
//  a wake-up costs O(log N) per send, not a walk of every client; a
//  client whose window is full leaves the heap until a reply frees a slot.

#ifndef CARTMQ_BENCH_PACE_H
#define CARTMQ_BENCH_PACE_H

#include <stdbool.h>
#include <stdint.h>

//  zmq_poll waits in milliseconds, so a send may go out up to about a
//  millisecond after its time without being late.
#define BENCH_PACE_LATE_NS 1000000LL

typedef struct _bench_pace_t bench_pace_t;

//  A schedule for clients sending rate requests/s in all, starting at
//  start_ns. Each client may run up to backlog sends behind.
bench_pace_t *bench_pace_new (int64_t clients, int64_t rate, int64_t backlog,
                              int64_t start_ns);

void bench_pace_destroy (bench_pace_t **self_p);

//  Nanoseconds between two sends of one client.
int64_t bench_pace_interval_ns (const bench_pace_t *self);

//  The earliest send time of a client in the heap, or INT64_MAX if none.
int64_t bench_pace_next_ns (const bench_pace_t *self);

//  Takes the client with the earliest send time if it is due at now_ns.
//  Returns its index (it is out of the heap until bench_pace_push), or -1.
int64_t bench_pace_pop_due (bench_pace_t *self, int64_t now_ns);

//  Puts a client back into the heap (it must be out of it).
void bench_pace_push (bench_pace_t *self, int64_t client);

//  True if the client is in the heap (its window has room).
bool bench_pace_is_waiting (const bench_pace_t *self, int64_t client);

//  What the client's schedule says at now_ns.
typedef enum {
    BENCH_PACE_NOT_DUE,  //  its next send is later
    BENCH_PACE_ON_TIME,  //  send now; its time advanced
    BENCH_PACE_LATE      //  send now, counted late; its time advanced
} bench_pace_turn_t;

//  Consumes one send of the client if one is due, first dropping sends
//  more than backlog behind (added to *skipped).
bench_pace_turn_t bench_pace_take (bench_pace_t *self, int64_t client,
                                   int64_t now_ns, uint64_t *skipped);

#endif
