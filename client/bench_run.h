//  bench_run.h - one `cartmq bench` run, shared by its files
//
//  bench.c sets the run up and polls; bench_request.c builds and sends
//  requests into free slots; bench_match.c matches each reply to the slot
//  of its request; bench_report.c prints the results. Program-internal.

#ifndef CARTMQ_BENCH_RUN_H
#define CARTMQ_BENCH_RUN_H

#include "bench.h"
#include "bench_pace.h"

#include "cartmq/client.h"
#include "cartmq/histogram.h"

#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#define BENCH_TAG_BYTES 8  //  slot and generation in opaque bodies

//  Statuses we count one by one; anything else goes under "other".
extern const int bench_statuses[];
#define BENCH_STATUS_KINDS 6  //  five statuses and "other"

typedef struct {
    char *service;
    int64_t clients;
    int64_t window;
    int64_t duration_s;
    int64_t warmup_s;
    int64_t requests;  //  0: run for duration_s instead
    int64_t users;
    char *mix;
    int64_t size;
    int64_t timeout_ms;
    bool use_request_ids;
    bool is_json;
    zlist_t *connect;  //  endpoints; peer i uses the (i mod n)-th
    char *curve_server;
    char *curve_cert;
    int64_t services;  //  above 1: spread over services S0..S<services-1>
    int64_t rate;      //  --rate: requests/s in all; 0: windows kept full
} bench_settings_t;

typedef struct {
    int64_t sent_ns;      //  when the request went out; 0: slot is free
    uint32_t generation;  //  bumped on each use of the slot
    uint8_t method;       //  cmq_cart_method_t, or 0 for opaque bodies
} bench_slot_t;

//  Replies charged to a request by guess, by what could have sent them:
//  404 (remove or update), 409 (add), anything (other errors, unreadable)
#define BENCH_GUESS_KINDS 3

typedef struct {
    cmq_client_t *client;
    uint32_t guessed[BENCH_GUESS_KINDS];  //  guesses that may have been wrong
    bench_slot_t *slots;                  //  window slots
    uint32_t *free;                       //  stack of free slot indexes
    uint32_t free_count;                  //  slots not in flight
} bench_peer_t;

//  Counters of the measured interval (after the warmup).
typedef struct {
    uint64_t sent;           //  requests sent
    uint64_t completed;      //  replies matched to a request in flight
    uint64_t errors;         //  cart: status not 200; opaque: wrong echo
    uint64_t timeouts;       //  requests silent for timeout_ms
    uint64_t late;           //  replies to no request in flight
    uint64_t bad;            //  cart replies we could not read
    uint64_t send_fails;     //  sends the socket refused
    uint64_t abandoned;      //  in flight on a socket replaced after a timeout
    uint64_t late_sends;     //  --rate: sent over BENCH_PACE_LATE_NS late
    uint64_t skipped_sends;  //  --rate: dropped, over a window behind
    uint64_t statuses[BENCH_STATUS_KINDS];
} bench_counts_t;

typedef struct {
    const bench_settings_t *settings;
    cmq_client_config_t config;  //  how each peer's client connects,
                                 //  but for the endpoint (s_peer_config)
    bool is_cart;                //  msgpack cart requests, else opaque
    bench_mix_t mix;             //  cart only
    bench_peer_t *peers;         //  one per client
    bench_pace_t *pace;          //  --rate only, else NULL
    zmq_pollitem_t *items;       //  one per client, same order
    cmq_histogram_t *latency;    //  nanoseconds
    bench_counts_t counts;
    msgpack_unpacked reply;  //  cart reply being read
    byte *opaque;            //  opaque body template
    uint64_t random;         //  xorshift64 state
    uint64_t request_ids;    //  --request-ids: ids handed out
    bool is_sending;         //  false once the budget or time is spent
    bool is_measuring;       //  false during the warmup
    int64_t in_flight;       //  requests in flight on all clients
    int64_t measure_ns;      //  when the measured interval started
    int64_t stop_ns;         //  duration mode: when sending stops
    int64_t last_reply_ns;   //  end of the measured interval
    uint64_t service_turn;   //  --services: requests sent so far
    char service_name[BENCH_SERVICE_NAME_MAX + 1];  //  --services: scratch
} bench_t;

//  Random numbers for users, methods and item ids (xorshift64).
uint32_t bench_random (bench_t *self);

//  False once the time or the request budget is spent.
bool bench_may_send (bench_t *self);

//  Sends on peer until its window is full or sending must stop.
void bench_fill (bench_t *self, bench_peer_t *peer, int64_t now_ns);

//  --rate: sends what the schedule says is due on client (its window may
//  have room again), and puts it back into the schedule's heap if its
//  window still has room.
void bench_paced_fill (bench_t *self, int64_t client, int64_t now_ns);

//  --rate: sends for every client whose send is due at now_ns.
void bench_paced_run (bench_t *self, int64_t now_ns);

//  Matches a reply (taken) to its request's slot and frees the slot, or
//  counts it late; records latency while measuring.
void bench_match_reply (bench_t *self, bench_peer_t *peer, zmsg_t **body_p,
                        int64_t now_ns);

//  Seconds of the measured interval, up to the last reply.
double bench_report_elapsed_s (const bench_t *self, int64_t now_ns);

//  One line of progress on stderr (a terminal), since the last one.
void bench_report_progress (const bench_t *self, int64_t now_ns,
                            uint64_t *last_completed, int64_t *last_ns);

//  The results as one JSON line, or as text, on stdout.
void bench_report_json (const bench_t *self, double elapsed_s);

void bench_report_text (const bench_t *self, double elapsed_s);

#endif
