//  service_stats.c - a service's request times over the last minute

#include "service_stats.h"

#include "cartmq/histogram.h"

#include <czmq.h>

#define S_SLOTS    6
#define S_SLOT_US  (10 * 1000 * 1000LL)
#define S_BITS     4   //  eight steps per power of two
#define S_MAX_BITS 42  //  up to 2^42 us, about 50 days

typedef struct {
    int64_t epoch;               //  now_us / S_SLOT_US it belongs to
    cmq_histogram_t *histogram;  //  request times, in us
} s_slot_t;

struct _service_stats_t {
    s_slot_t slots[S_SLOTS];
};

service_stats_t *
service_stats_new (void)
{
    service_stats_t *self = (service_stats_t *) zmalloc (sizeof (*self));
    for (int index = 0; index < S_SLOTS; index++) {
        self->slots[index].epoch = -1;
        self->slots[index].histogram = cmq_histogram_new (S_BITS, S_MAX_BITS);
    }
    return self;
}

void
service_stats_destroy (service_stats_t **self_p)
{
    assert (self_p);
    service_stats_t *self = *self_p;
    if (self) {
        for (int index = 0; index < S_SLOTS; index++)
            cmq_histogram_destroy (&self->slots[index].histogram);
        free (self);
        *self_p = NULL;
    }
}

void
service_stats_record (service_stats_t *self, int64_t now_us, int64_t elapsed_us)
{
    assert (self);
    int64_t epoch = now_us / S_SLOT_US;
    s_slot_t *slot = &self->slots[epoch % S_SLOTS];
    if (slot->epoch != epoch) {
        cmq_histogram_reset (slot->histogram);
        slot->epoch = epoch;
    }
    cmq_histogram_record (slot->histogram,
                          elapsed_us < 0 ? 0 : (uint64_t) elapsed_us);
}

void
service_stats_read (service_stats_t *self, int64_t now_us, uint64_t *count_p,
                    int64_t *mean_us_p, int64_t *p99_us_p)
{
    assert (self);
    int64_t epoch = now_us / S_SLOT_US;
    //  Made per read, not kept: mmi.stats is rare, services are many.
    cmq_histogram_t *minute = cmq_histogram_new (S_BITS, S_MAX_BITS);
    for (int index = 0; index < S_SLOTS; index++) {
        s_slot_t *slot = &self->slots[index];
        if (slot->epoch >= 0 && epoch - slot->epoch < S_SLOTS)
            cmq_histogram_merge (minute, slot->histogram);
    }
    uint64_t count = cmq_histogram_count (minute);
    int64_t sum_us = (int64_t) cmq_histogram_sum (minute);
    *count_p = count;
    *mean_us_p = count ? (sum_us + (int64_t) count / 2) / (int64_t) count : 0;
    //  The top of its bucket: p99 errs on the slow side.
    *p99_us_p = (int64_t) cmq_histogram_percentile_top (minute, 99);
    cmq_histogram_destroy (&minute);
}
