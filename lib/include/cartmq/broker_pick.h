//  broker_pick.h - which broker a client tries next, and which are down
//
//  Input: what happened to an attempt (answered, went silent) and the
//  time. Output: the broker to use next. No sockets, no clock: cmq_client_t
//  drives it, unit tests drive it with made-up times. Internal to
//  libcartmq (not installed).
//
//  Rules (contract §7):
//  - new calls and async sends go round-robin over the brokers that are
//    up, so load spreads;
//  - a broker whose attempt went unanswered is down for a backoff: the
//    first time backoff_min_ms, then double each time up to backoff_max_ms;
//    any reply from it resets the backoff and brings it up at once;
//  - once its backoff has passed a broker is up again and gets calls: a
//    broker that stopped answering is tried later, never forgotten;
//  - the retry of an unanswered attempt goes to ANOTHER broker: the next
//    up one after it; if every broker is down, the one whose backoff ends
//    first (the client never refuses to try);
//  - async: a broker with requests outstanding that has been silent for
//    silence_ms (since its last reply, or since the first of those
//    requests if later) is marked down as if an attempt had failed, and
//    its outstanding requests are written off.

#ifndef CARTMQ_BROKER_PICK_H
#define CARTMQ_BROKER_PICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _cmq_pick_t cmq_pick_t;

//  count brokers (>= 1), all up. backoff_min_ms > 0, backoff_max_ms >=
//  backoff_min_ms.
cmq_pick_t *cmq_pick_new (size_t count, int64_t backoff_min_ms,
                          int64_t backoff_max_ms);

void cmq_pick_destroy (cmq_pick_t **self_p);

//  The broker for a new call or async send: the next up one round-robin;
//  if none is up, the one whose backoff ends first.
size_t cmq_pick_next (cmq_pick_t *self, int64_t now_ms);

//  The broker for the attempt after one at `failed` went unanswered: the
//  next up one after it other than itself; if none of the others is up,
//  the other whose backoff ends first. With one broker, that broker.
size_t cmq_pick_retry (cmq_pick_t *self, size_t failed, int64_t now_ms);

//  An attempt at index got no answer: down for its backoff, which doubles.
void cmq_pick_failed (cmq_pick_t *self, size_t index, int64_t now_ms);

//  A reply came from index: up, backoff reset, one fewer outstanding.
void cmq_pick_answered (cmq_pick_t *self, size_t index, int64_t now_ms);

//  Async: one more request outstanding at index.
void cmq_pick_sent (cmq_pick_t *self, size_t index, int64_t now_ms);

//  Async: marks down (cmq_pick_failed) each up broker with requests
//  outstanding and silent for silence_ms, and writes those requests off.
//  Returns how many brokers it marked.
size_t cmq_pick_expire (cmq_pick_t *self, int64_t now_ms, int64_t silence_ms);

//  True when index is up at now_ms (never failed, answered since, or its
//  backoff has passed).
bool cmq_pick_is_up (const cmq_pick_t *self, size_t index, int64_t now_ms);

//  When index comes up again (0 when it never went down or answered
//  since), and the backoff its next failure will get.
int64_t cmq_pick_up_at (const cmq_pick_t *self, size_t index);
int64_t cmq_pick_backoff_ms (const cmq_pick_t *self, size_t index);

//  Async requests outstanding at index.
uint64_t cmq_pick_outstanding (const cmq_pick_t *self, size_t index);

#endif
