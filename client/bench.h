//  bench.h - `cartmq bench`: pipelined asynchronous load on one service
//
//  N clients (one DEALER each, through the async calls of client.h) keep
//  W requests each in flight from one thread, for a duration or a number
//  of requests, and report throughput and latency percentiles. The cart
//  service gets msgpack bodies in a chosen method mix; any other service
//  gets opaque bodies of a chosen size that it is expected to echo.
//
//  Latency is matched to its request, not assumed from reply order:
//  opaque bodies carry a slot and generation tag; AddItemToCart and
//  UpdateItemQuantity carry the slot in the item id, which the reply
//  repeats. Get, remove and clear replies (and error replies) carry no
//  such id, so they are matched to the oldest request in flight of a
//  method that could have produced them: exact at window 1, approximate
//  above it. A guess that proves wrong (the request it charged gets its
//  own reply later) is set right: the reply goes to the other request the
//  guess could have meant, so no request waits for a reply that already
//  came. A client that gives up on a request gets a fresh socket, so no
//  late reply is ever matched to the request that reuses its slot.

#ifndef CARTMQ_BENCH_H
#define CARTMQ_BENCH_H

#include "cartmq/cart_codec.h"

#include <stddef.h>
#include <stdint.h>

//  Settings given before the command (`cartmq --connect E bench ...`);
//  bench's own flags of the same names override them.
typedef struct {
    const char *endpoint;      //  NULL: the default endpoint
    const char *curve_server;  //  broker's public cert file, or NULL
    const char *curve_cert;    //  our secret cert file, or NULL
    int64_t timeout_ms;        //  a request silent this long is a timeout
} bench_globals_t;

//  Runs `cartmq bench` on the arguments after the command name (argv[0]
//  is "bench"). Returns the exit code: 0 when it ran, 2 on bad usage, 3
//  when no reply came at all.
int bench_main (const bench_globals_t *globals, int argc, char **argv);

//  Monotonic clock in nanoseconds, what every latency here is timed by.
int64_t bench_now_ns (void);

//  ---------------------------------------------------------------------
//  Latency histogram: log-linear buckets, 256 per power of two, so any
//  recorded value is reported within 1/256 (0.4%) of itself; values below
//  512 are exact. Values are nanoseconds up to about 2^43 (2.4 hours);
//  larger ones are clamped.

typedef struct _bench_histogram_t bench_histogram_t;

bench_histogram_t *bench_histogram_new (void);

void bench_histogram_destroy (bench_histogram_t **self_p);

void bench_histogram_record (bench_histogram_t *self, uint64_t value);

//  Forgets every value recorded.
void bench_histogram_reset (bench_histogram_t *self);

uint64_t bench_histogram_count (const bench_histogram_t *self);

//  The largest value recorded, exactly; 0 when empty.
uint64_t bench_histogram_max (const bench_histogram_t *self);

//  The exact mean of the values recorded; 0 when empty.
double bench_histogram_mean (const bench_histogram_t *self);

//  The smallest value v such that at least percent % of the values are
//  <= v, as the middle of its bucket and never above the maximum; 0 when
//  empty. percent is 0..100.
uint64_t bench_histogram_percentile (const bench_histogram_t *self,
                                     double percent);

//  What every report prints, in microseconds.
typedef struct {
    double p50, p90, p99, p999, max, mean;
} bench_latency_us_t;

bench_latency_us_t bench_histogram_summary (const bench_histogram_t *self);

//  ---------------------------------------------------------------------
//  Method mix for the cart service: "add=60,get=30,remove=10". Names are
//  add, get, remove, update, clear; weights are 0..1000000 and at least
//  one must be above 0. A name given twice is an error.

typedef struct {
    uint32_t weights[CMQ_CART_CLEAR + 1];  //  by cmq_cart_method_t; [0] unused
    uint32_t total;                        //  sum of the weights
} bench_mix_t;

//  Parses text into *mix. Returns 0, or -1 with a one-line reason in
//  error (at most error_size bytes with the NUL), *mix then unspecified.
int bench_mix_parse (const char *text, bench_mix_t *mix, char *error,
                     size_t error_size);

//  The method a uniformly random number picks: each method with
//  probability weight / total.
cmq_cart_method_t bench_mix_pick (const bench_mix_t *mix, uint32_t random);

#endif
