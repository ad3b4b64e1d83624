//  service_stats.c - a service's request times over the last minute

#include "service_stats.h"

#include <czmq.h>

#define S_SLOTS   6
#define S_SLOT_US (10 * 1000 * 1000LL)
#define S_STEPS   8   //  sub-buckets per power of two
#define S_POWERS  40  //  up to 2^40 us, about 12 days
#define S_BUCKETS (S_POWERS * S_STEPS)

typedef struct {
    int64_t epoch;  //  now_us / S_SLOT_US it belongs to
    uint64_t count;
    int64_t sum_us;
    uint32_t buckets[S_BUCKETS];
} s_slot_t;

struct _service_stats_t {
    s_slot_t slots[S_SLOTS];
};

service_stats_t *
service_stats_new (void)
{
    service_stats_t *self = (service_stats_t *) zmalloc (sizeof (*self));
    for (int index = 0; index < S_SLOTS; index++)
        self->slots[index].epoch = -1;
    return self;
}

void
service_stats_destroy (service_stats_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  Values below S_STEPS get a bucket each; above, a power of two is split
//  into S_STEPS equal steps.
static int
s_bucket_of (int64_t value)
{
    if (value < S_STEPS)
        return value < 0 ? 0 : (int) value;
    int power = 63 - __builtin_clzll ((unsigned long long) value);
    int step = (int) ((value >> (power - 3)) & (S_STEPS - 1));
    int bucket = (power - 2) * S_STEPS + step;
    return bucket < S_BUCKETS ? bucket : S_BUCKETS - 1;
}

//  The largest value that falls in a bucket: p99 errs on the slow side.
static int64_t
s_bucket_top (int bucket)
{
    if (bucket < S_STEPS)
        return bucket;
    int power = bucket / S_STEPS + 2;
    int step = bucket % S_STEPS;
    int64_t base = 1LL << power;
    return base + ((int64_t) (step + 1) << (power - 3)) - 1;
}

void
service_stats_record (service_stats_t *self, int64_t now_us, int64_t elapsed_us)
{
    assert (self);
    int64_t epoch = now_us / S_SLOT_US;
    s_slot_t *slot = &self->slots[epoch % S_SLOTS];
    if (slot->epoch != epoch) {
        memset (slot, 0, sizeof (*slot));
        slot->epoch = epoch;
    }
    if (elapsed_us < 0)
        elapsed_us = 0;
    slot->count++;
    slot->sum_us += elapsed_us;
    slot->buckets[s_bucket_of (elapsed_us)]++;
}

void
service_stats_read (service_stats_t *self, int64_t now_us, uint64_t *count_p,
                    int64_t *mean_us_p, int64_t *p99_us_p)
{
    assert (self);
    int64_t epoch = now_us / S_SLOT_US;
    uint64_t count = 0;
    int64_t sum_us = 0;
    for (int index = 0; index < S_SLOTS; index++) {
        s_slot_t *slot = &self->slots[index];
        if (slot->epoch >= 0 && epoch - slot->epoch < S_SLOTS) {
            count += slot->count;
            sum_us += slot->sum_us;
        }
    }
    *count_p = count;
    *mean_us_p = count ? (sum_us + (int64_t) count / 2) / (int64_t) count : 0;
    *p99_us_p = 0;
    if (count == 0)
        return;
    //  The rank of the 99th percentile, rounded up.
    uint64_t rank = (count * 99 + 99) / 100;
    uint64_t seen = 0;
    for (int bucket = 0; bucket < S_BUCKETS; bucket++) {
        for (int index = 0; index < S_SLOTS; index++) {
            s_slot_t *slot = &self->slots[index];
            if (slot->epoch >= 0 && epoch - slot->epoch < S_SLOTS)
                seen += slot->buckets[bucket];
        }
        if (seen >= rank) {
            *p99_us_p = s_bucket_top (bucket);
            return;
        }
    }
}
