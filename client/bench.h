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

#include <czmq.h>

#include <stddef.h>
#include <stdint.h>

//  Settings given before the command (`cartmq --connect E bench ...`);
//  bench's own flags of the same names override them.
typedef struct {
    zlist_t *endpoints;        //  NULL or empty: the default endpoint
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

//  --services N: the service the index-th request goes to: service
//  itself when services is 1, else service followed by index mod services
//  in decimal ("echo" 3 -> echo0 echo1 echo2 echo0 ...), written into
//  buffer (size bytes). Returns the name, or NULL if it does not fit in
//  size bytes or is over BENCH_SERVICE_NAME_MAX bytes.
#define BENCH_SERVICE_NAME_MAX 255
const char *bench_service_name (const char *service, int64_t services,
                                uint64_t index, char *buffer, size_t size);

//  Latency histograms are cmq_histogram_t (cartmq/histogram.h) of
//  nanoseconds at this precision: within 0.4% of each value, up to about
//  2^43 ns (2.4 hours). Window-1 latencies of two setups a few percent
//  apart must not land in the same bucket: 64 per power of two (1.6 %
//  wide) blurred them.
#define BENCH_HISTOGRAM_BITS     9
#define BENCH_HISTOGRAM_MAX_BITS 43

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
