//  broker_ratelimit.h - at most a few log lines a second for one kind
//
//  Lines a peer can cause (a refused key, an accept failure, a dropped
//  message) must not let that peer make the log grow without bound (§3).
//  A limiter allows BROKER_RATELIMIT_LINES lines per second and counts the
//  ones it holds back; the next line allowed reports that count.

#ifndef BROKER_RATELIMIT_H
#define BROKER_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define BROKER_RATELIMIT_LINES 5

typedef struct {
    int64_t window_us;    //  start of the current second
    unsigned lines;       //  lines allowed in it
    uint64_t suppressed;  //  lines held back since the last one allowed
} broker_ratelimit_t;

//  True if a line may be written at now_us; then *held_p is how many
//  lines were held back before it (to be said in the line), else the line
//  is counted as held back.
static inline bool
broker_ratelimit_allow (broker_ratelimit_t *self, int64_t now_us,
                        uint64_t *held_p)
{
    if (now_us - self->window_us >= 1000000) {
        self->window_us = now_us;
        self->lines = 0;
    }
    if (self->lines >= BROKER_RATELIMIT_LINES) {
        self->suppressed++;
        return false;
    }
    self->lines++;
    *held_p = self->suppressed;
    self->suppressed = 0;
    return true;
}

#endif
