//  histogram.h - a log-linear histogram of non-negative integers
//
//  Values below 2^precision_bits get a bucket each; above that, each power
//  of two is split into 2^(precision_bits - 1) equal buckets, so a value is
//  reported within 1 / 2^(precision_bits - 1) of itself. Values from
//  2^max_bits on are clamped to 2^max_bits - 1. Recording costs a shift and
//  an add, never an allocation. `cartmq bench` keeps nanoseconds at 9 bits
//  (0.4%); the broker keeps each service's microseconds at 4 bits (12%) in
//  little memory. Program plumbing, not installed.

#ifndef CARTMQ_HISTOGRAM_H
#define CARTMQ_HISTOGRAM_H

#include <stdint.h>

typedef struct _cmq_histogram_t cmq_histogram_t;

//  precision_bits 1..16, max_bits precision_bits..63.
cmq_histogram_t *cmq_histogram_new (int precision_bits, int max_bits);

void cmq_histogram_destroy (cmq_histogram_t **self_p);

void cmq_histogram_record (cmq_histogram_t *self, uint64_t value);

//  Forgets every value recorded.
void cmq_histogram_reset (cmq_histogram_t *self);

//  Adds every value other recorded; both must have the same shape.
void cmq_histogram_merge (cmq_histogram_t *self, const cmq_histogram_t *other);

uint64_t cmq_histogram_count (const cmq_histogram_t *self);

//  The exact sum of the (clamped) values recorded.
uint64_t cmq_histogram_sum (const cmq_histogram_t *self);

//  The largest value recorded, exactly; 0 when empty.
uint64_t cmq_histogram_max (const cmq_histogram_t *self);

//  The exact mean of the values recorded; 0 when empty.
double cmq_histogram_mean (const cmq_histogram_t *self);

//  The smallest value v such that at least percent % of the values are
//  <= v, as the middle of its bucket and never above the maximum; 0 when
//  empty. percent is 0..100.
uint64_t cmq_histogram_percentile (const cmq_histogram_t *self, double percent);

//  The same rank, as the top of its bucket: never below the true value.
uint64_t cmq_histogram_percentile_top (const cmq_histogram_t *self,
                                       double percent);

//  What a latency report prints, each value divided by unit (1000 turns
//  nanoseconds into microseconds).
typedef struct {
    double p50, p90, p99, p999, max, mean;
} cmq_histogram_summary_t;

cmq_histogram_summary_t cmq_histogram_summary (const cmq_histogram_t *self,
                                               double unit);

#endif
