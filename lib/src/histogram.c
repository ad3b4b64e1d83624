//  histogram.c - a log-linear histogram of non-negative integers
//
//  Bucket b below 2^bits holds the value b. Above, a value v whose top set
//  bit is at position p goes to shift * half + (v >> shift), with shift =
//  p - (bits - 1) and half = 2^(bits - 1): v >> shift lies in half..2*half-1,
//  so every power of two gets half buckets and the index grows with v.

#include "cartmq/histogram.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _cmq_histogram_t {
    int bits;            //  precision_bits
    uint64_t max_value;  //  larger values are clamped to it
    size_t buckets;      //  entries in counts
    uint64_t count;      //  values recorded
    uint64_t sum;        //  of the values, exact
    uint64_t max;        //  largest value, exact
    uint64_t *counts;    //  by bucket
};

cmq_histogram_t *
cmq_histogram_new (int precision_bits, int max_bits)
{
    assert (precision_bits >= 1 && precision_bits <= 16);
    assert (max_bits >= precision_bits && max_bits <= 63);
    cmq_histogram_t *self = (cmq_histogram_t *) calloc (1, sizeof (*self));
    assert (self);
    self->bits = precision_bits;
    self->max_value = (UINT64_C (1) << max_bits) - 1;
    size_t half = (size_t) 1 << (precision_bits - 1);
    self->buckets = (size_t) (max_bits - precision_bits + 2) * half;
    self->counts = (uint64_t *) calloc (self->buckets, sizeof (uint64_t));
    assert (self->counts);
    return self;
}

void
cmq_histogram_destroy (cmq_histogram_t **self_p)
{
    assert (self_p);
    cmq_histogram_t *self = *self_p;
    if (self) {
        free (self->counts);
        free (self);
        *self_p = NULL;
    }
}

static size_t
s_bucket_of (const cmq_histogram_t *self, uint64_t value)
{
    if (value < (UINT64_C (1) << self->bits))
        return (size_t) value;
    int shift = (63 - __builtin_clzll (value)) - (self->bits - 1);
    return (size_t) shift * ((size_t) 1 << (self->bits - 1)) +
           (size_t) (value >> shift);
}

//  The lowest value of a bucket, and in *width_p how many values it holds.
static uint64_t
s_bucket_lowest (const cmq_histogram_t *self, size_t bucket, uint64_t *width_p)
{
    size_t half = (size_t) 1 << (self->bits - 1);
    *width_p = 1;
    if (bucket < 2 * half)
        return bucket;
    size_t shift = bucket / half - 1;
    *width_p = UINT64_C (1) << shift;
    return (uint64_t) (bucket - shift * half) << shift;
}

void
cmq_histogram_record (cmq_histogram_t *self, uint64_t value)
{
    assert (self);
    if (value > self->max_value)
        value = self->max_value;
    self->counts[s_bucket_of (self, value)]++;
    self->count++;
    self->sum += value;
    if (value > self->max)
        self->max = value;
}

void
cmq_histogram_reset (cmq_histogram_t *self)
{
    assert (self);
    memset (self->counts, 0, self->buckets * sizeof (uint64_t));
    self->count = self->sum = self->max = 0;
}

void
cmq_histogram_merge (cmq_histogram_t *self, const cmq_histogram_t *other)
{
    assert (self && other);
    assert (self->bits == other->bits && self->buckets == other->buckets);
    for (size_t bucket = 0; bucket < self->buckets; bucket++)
        self->counts[bucket] += other->counts[bucket];
    self->count += other->count;
    self->sum += other->sum;
    if (other->max > self->max)
        self->max = other->max;
}

uint64_t
cmq_histogram_count (const cmq_histogram_t *self)
{
    assert (self);
    return self->count;
}

uint64_t
cmq_histogram_sum (const cmq_histogram_t *self)
{
    assert (self);
    return self->sum;
}

uint64_t
cmq_histogram_max (const cmq_histogram_t *self)
{
    assert (self);
    return self->max;
}

double
cmq_histogram_mean (const cmq_histogram_t *self)
{
    assert (self);
    return self->count ? (double) self->sum / (double) self->count : 0;
}

//  The bucket holding the value of the given percentile's rank.
static size_t
s_bucket_at (const cmq_histogram_t *self, double percent)
{
    double wanted = percent / 100.0 * (double) self->count;
    uint64_t rank = wanted < 1 ? 1 : (uint64_t) wanted;
    if ((double) rank < wanted)
        rank++;  //  rounded up, without libm
    if (rank > self->count)
        rank = self->count;
    uint64_t seen = 0;
    for (size_t bucket = 0; bucket < self->buckets; bucket++) {
        seen += self->counts[bucket];
        if (seen >= rank)
            return bucket;
    }
    return self->buckets - 1;
}

uint64_t
cmq_histogram_percentile (const cmq_histogram_t *self, double percent)
{
    assert (self);
    if (self->count == 0)
        return 0;
    uint64_t width;
    uint64_t lowest =
      s_bucket_lowest (self, s_bucket_at (self, percent), &width);
    uint64_t middle = lowest + width / 2;
    return middle < self->max ? middle : self->max;
}

uint64_t
cmq_histogram_percentile_top (const cmq_histogram_t *self, double percent)
{
    assert (self);
    if (self->count == 0)
        return 0;
    uint64_t width;
    uint64_t lowest =
      s_bucket_lowest (self, s_bucket_at (self, percent), &width);
    return lowest + width - 1;
}

cmq_histogram_summary_t
cmq_histogram_summary (const cmq_histogram_t *self, double unit)
{
    assert (self);
    assert (unit > 0);
    cmq_histogram_summary_t summary = {
        (double) cmq_histogram_percentile (self, 50) / unit,
        (double) cmq_histogram_percentile (self, 90) / unit,
        (double) cmq_histogram_percentile (self, 99) / unit,
        (double) cmq_histogram_percentile (self, 99.9) / unit,
        (double) self->max / unit,
        cmq_histogram_mean (self) / unit
    };
    return summary;
}
