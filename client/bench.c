//  bench.c - `cartmq bench`: pipelined asynchronous load on one service
//
//  One thread drives every client with zmq_poll over their sockets. On a
//  small machine the load generator shares the cores with the broker and
//  the workers it measures, so it must cost as little as it can: one
//  thread means no locks and no context switches of its own, and every
//  socket's replies are drained per wake-up.
//
//  Each client has `window` slots. A slot holds the send time of one
//  request in flight and a generation that changes each time the slot is
//  reused, so a reply that comes back after its request timed out is
//  counted as late instead of being charged to the slot's next request.

#include "bench_run.h"

#include "cartmq/cart_client.h"
#include "cartmq/client.h"
#include "cartmq/histogram.h"
#include "cartmq/options.h"

#include <czmq.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_PROGRAM "cartmq bench"
#define S_USAGE                                                                \
    "[--service S [--services N]] [--clients N] [--window W]\n"                \
    "       [--duration S | --requests N]\n"                                   \
    "       [--warmup S] [--users U] [--mix add=60,get=30,remove=10]\n"        \
    "       [--size BYTES] [--timeout-ms N] [--request-ids] [--rate R]\n"      \
    "       [--json]\n"                                                        \
    "       [--connect ENDPOINT[,ENDPOINT...]]... "                            \
    "[--curve-server PUBLIC_CERTFILE --curve-cert CERTFILE]\n"                 \
    "\n"                                                                       \
    "With several endpoints, client i connects to endpoint i mod n only:\n"    \
    "each client is a one-broker client, so the hot path is the same.\n"       \
    "Keeps W requests in flight on each of N clients and reports requests/s\n" \
    "and latency. The cart service gets msgpack requests in the --mix "        \
    "given;\n"                                                                 \
    "any other service gets --size opaque bytes, which it should echo back.\n" \
    "Latency is exact for opaque bodies, add and update; get, remove, clear\n" \
    "and error replies carry no request id and are matched to the oldest\n"    \
    "request in flight that could have produced them (exact at window 1).\n"   \
    "--rate R sends R requests/s in all, evenly spread over the clients,\n"    \
    "each within its window; a send over 1 ms behind its time is sent at\n"    \
    "once and counted late, one over a window behind is skipped."

#define S_DEFAULT_MIX        "add=60,get=30,remove=10"
#define S_DEFAULT_DURATION_S 10
#define S_DEFAULT_USERS      1000
#define S_DEFAULT_SIZE       32
#define S_MAX_WINDOW         1000  //  item ids s0..s999: one cart's limit
#define S_TICK_MS            20    //  timeout scan and interrupt check
#define S_OPTION_SLOTS       18    //  17 flags and the terminator
#define S_PROGRESS_NS        1000000000LL

int64_t
bench_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000LL + now.tv_nsec;
}

//  Takes every reply waiting on a peer's socket, then refills its window.
//  No ZMQ_EVENTS check before each receive: that getsockopt costs system
//  calls of its own, and the receive with timeout 0 polls anyway.
static void
s_drain (bench_t *self, bench_peer_t *peer)
{
    zmsg_t *body;
    while ((body = cmq_client_recv (peer->client, 0, NULL)))
        bench_match_reply (self, peer, &body, bench_now_ns ());
    if (self->pace)
        bench_paced_fill (self, peer - self->peers, bench_now_ns ());
    else
        bench_fill (self, peer, bench_now_ns ());
}

//  The config of peer index: bench's, with endpoint index mod n, so the
//  peers spread evenly over the brokers given.
static void
s_peer_config (bench_t *self, int64_t index, cmq_client_config_t *config)
{
    *config = self->config;
    zlist_t *endpoints = self->settings->connect;
    size_t count = endpoints ? zlist_size (endpoints) : 0;
    if (count == 0)
        return;
    const char *endpoint = (const char *) zlist_first (endpoints);
    for (size_t step = 0; step < (size_t) index % count; step++)
        endpoint = (const char *) zlist_next (endpoints);
    config->endpoint = endpoint;
}

//  Gives a peer a fresh socket once it has given up on a request. A reply
//  names no request exactly (an add's names only its slot, which the next
//  request reuses), so a reply still on its way to the old socket could
//  be taken for a later request's; on a new socket it can never arrive.
//  The peer's other requests in flight are abandoned with the old socket.
static void
s_renew_peer (bench_t *self, int64_t client)
{
    bench_peer_t *peer = &self->peers[client];
    cmq_client_config_t config;
    s_peer_config (self, client, &config);
    cmq_client_t *fresh = cmq_client_new (&config, NULL, 0);
    if (!fresh)
        return;  //  keep the old socket: matching stays as good as it was
    cmq_client_destroy (&peer->client);
    peer->client = fresh;
    memset (peer->guessed, 0, sizeof (peer->guessed));
    self->items[client].socket = zsock_resolve (cmq_client_socket (fresh));
    for (uint32_t index = 0; index < self->settings->window; index++) {
        bench_slot_t *slot = &peer->slots[index];
        if (slot->sent_ns == 0)
            continue;
        slot->sent_ns = 0;
        peer->free[peer->free_count++] = index;
        self->in_flight--;
        if (self->is_measuring)
            self->counts.abandoned++;
    }
}

//  Frees the slots of requests silent past the timeout, and gives their
//  peer a fresh socket so that no late reply is ever matched.
static void
s_expire (bench_t *self, int64_t now_ns)
{
    int64_t limit_ns = self->settings->timeout_ms * 1000000LL;
    for (int64_t client = 0; client < self->settings->clients; client++) {
        bench_peer_t *peer = &self->peers[client];
        bool has_expired = false;
        for (uint32_t index = 0; index < self->settings->window; index++) {
            bench_slot_t *slot = &peer->slots[index];
            if (slot->sent_ns == 0 || now_ns - slot->sent_ns < limit_ns)
                continue;
            slot->sent_ns = 0;
            peer->free[peer->free_count++] = index;
            self->in_flight--;
            has_expired = true;
            if (self->is_measuring)
                self->counts.timeouts++;
        }
        if (has_expired) {
            s_renew_peer (self, client);
            if (self->pace)
                bench_paced_fill (self, client, now_ns);
            else
                bench_fill (self, peer, now_ns);
        }
    }
}

//  ---------------------------------------------------------------------
//  Setting up and running

static int
s_connect (bench_t *self)
{
    const bench_settings_t *settings = self->settings;
    cmq_client_config_t *config = &self->config;
    cmq_client_config_defaults (config);
    config->timeout_ms = (int) settings->timeout_ms;
    config->curve_server = settings->curve_server;
    config->curve_cert = settings->curve_cert;
    size_t window = (size_t) settings->window;
    for (int64_t index = 0; index < settings->clients; index++) {
        bench_peer_t *peer = &self->peers[index];
        char error[CMQ_ERRSTR_SIZE];
        cmq_client_config_t peer_config;
        s_peer_config (self, index, &peer_config);
        peer->client = cmq_client_new (&peer_config, error, sizeof (error));
        if (!peer->client) {
            fprintf (stderr, "%s: %s\n", S_PROGRAM, error);
            return -1;
        }
        peer->slots = (bench_slot_t *) zmalloc (window * sizeof (bench_slot_t));
        peer->free = (uint32_t *) zmalloc (window * sizeof (uint32_t));
        //  Popped from the end: slot 0 goes first.
        for (size_t slot = 0; slot < window; slot++)
            peer->free[slot] = (uint32_t) (window - 1 - slot);
        peer->free_count = (uint32_t) window;
        self->items[index].socket =
          zsock_resolve (cmq_client_socket (peer->client));
        self->items[index].events = ZMQ_POLLIN;
    }
    return 0;
}

static bench_t *
s_bench_new (const bench_settings_t *settings)
{
    bench_t *self = (bench_t *) zmalloc (sizeof (bench_t));
    self->settings = settings;
    self->is_cart = streq (settings->service, CMQ_CART_SERVICE);
    self->peers = (bench_peer_t *) zmalloc ((size_t) settings->clients *
                                            sizeof (bench_peer_t));
    self->items = (zmq_pollitem_t *) zmalloc ((size_t) settings->clients *
                                              sizeof (zmq_pollitem_t));
    self->latency =
      cmq_histogram_new (BENCH_HISTOGRAM_BITS, BENCH_HISTOGRAM_MAX_BITS);
    msgpack_unpacked_init (&self->reply);
    self->opaque = (byte *) zmalloc ((size_t) settings->size);
    for (int64_t index = BENCH_TAG_BYTES; index < settings->size; index++)
        self->opaque[index] = (byte) ('a' + index % 26);
    self->random = (uint64_t) bench_now_ns () ^ ((uint64_t) getpid () << 32);
    if (self->random == 0)
        self->random = 1;
    return self;
}

static void
s_bench_destroy (bench_t **self_p)
{
    bench_t *self = *self_p;
    if (!self)
        return;
    for (int64_t index = 0; index < self->settings->clients; index++) {
        cmq_client_destroy (&self->peers[index].client);
        free (self->peers[index].slots);
        free (self->peers[index].free);
    }
    free (self->peers);
    free (self->items);
    cmq_histogram_destroy (&self->latency);
    bench_pace_destroy (&self->pace);
    msgpack_unpacked_destroy (&self->reply);
    free (self->opaque);
    free (self);
    *self_p = NULL;
}

//  Starts the measured interval: what came before it was warmup.
static void
s_start_measuring (bench_t *self, int64_t now_ns)
{
    self->is_measuring = true;
    self->measure_ns = now_ns;
    self->last_reply_ns = 0;
    memset (&self->counts, 0, sizeof (self->counts));
    cmq_histogram_reset (self->latency);
    if (self->settings->requests == 0)
        self->stop_ns = now_ns + self->settings->duration_s * 1000000000LL;
}

//  --rate: sends what is due, and how long zmq_poll may wait for the next
//  send (rounded up to whole milliseconds: never early, never a spin).
static long
s_paced_wait_ms (bench_t *self, int64_t now_ns, long wait_ms)
{
    bench_paced_run (self, now_ns);
    int64_t next_ns = bench_pace_next_ns (self->pace);
    if (next_ns == INT64_MAX)
        return wait_ms;
    long until_ms = (long) ((next_ns - now_ns + 999999LL) / 1000000LL);
    return until_ms < wait_ms ? until_ms : wait_ms;
}

//  The poll loop, until the time or the budget is spent and every
//  request in flight has come back or timed out, or a signal.
static void
s_run (bench_t *self)
{
    const bench_settings_t *settings = self->settings;
    bool show_progress = isatty (STDERR_FILENO);
    int64_t start_ns = bench_now_ns ();
    int64_t warmup_end_ns = start_ns + settings->warmup_s * 1000000000LL;
    self->measure_ns = start_ns;
    self->is_sending = true;
    if (settings->warmup_s == 0)
        s_start_measuring (self, start_ns);
    if (settings->rate > 0)
        self->pace = bench_pace_new (settings->clients, settings->rate,
                                     settings->window, start_ns);
    else
        for (int64_t index = 0; index < settings->clients; index++)
            bench_fill (self, &self->peers[index], bench_now_ns ());

    int64_t next_tick_ns = start_ns + S_TICK_MS * 1000000LL;
    int64_t next_progress_ns = start_ns + S_PROGRESS_NS;
    uint64_t progress_completed = 0;
    int64_t progress_ns = start_ns;
    while (!zsys_interrupted) {
        int64_t now_ns = bench_now_ns ();
        if (!self->is_measuring && now_ns >= warmup_end_ns) {
            s_start_measuring (self, now_ns);
            progress_completed = 0;
            progress_ns = now_ns;
        }
        if (self->is_measuring && settings->requests == 0 &&
            now_ns >= self->stop_ns)
            self->is_sending = false;
        if (!bench_may_send (self) && self->in_flight == 0)
            break;
        if (now_ns >= next_tick_ns) {
            s_expire (self, now_ns);
            next_tick_ns = now_ns + S_TICK_MS * 1000000LL;
        }
        if (show_progress && now_ns >= next_progress_ns) {
            bench_report_progress (self, now_ns, &progress_completed,
                                   &progress_ns);
            next_progress_ns = now_ns + S_PROGRESS_NS;
        }
        long wait_ms = (long) ((next_tick_ns - now_ns) / 1000000LL) + 1;
        if (self->pace)
            wait_ms = s_paced_wait_ms (self, now_ns, wait_ms);
        int rc = zmq_poll (self->items, (int) settings->clients, wait_ms);
        if (rc < 0)
            break;  //  interrupted, or the context is gone
        for (int64_t index = 0; rc > 0 && index < settings->clients; index++)
            if (self->items[index].revents & ZMQ_POLLIN) {
                s_drain (self, &self->peers[index]);
                rc--;
            }
    }
    if (show_progress)
        fprintf (stderr, "\r\033[K");
}

//  ---------------------------------------------------------------------
//  Command line

static int
s_parse (bench_settings_t *settings, cmq_option_t *table, int argc, char **argv,
         bench_mix_t *mix)
{
    cmq_options_spec_t spec = { S_PROGRAM, S_USAGE, NULL, false };
    const char *positional[1];
    int count = 0;
    int next_arg = argc;
    cmq_options_result_t result = cmq_options_parse (
      &spec, table, argc, argv, positional, 0, &count, &next_arg);
    if (result == CMQ_OPTIONS_EXIT)
        return 0;
    if (result != CMQ_OPTIONS_OK)
        return 2;
    if (!settings->curve_server != !settings->curve_cert) {
        fprintf (stderr, "%s: --curve-server and --curve-cert go together\n",
                 S_PROGRAM);
        return 2;
    }
    if (settings->service &&
        (strlen (settings->service) == 0 || strlen (settings->service) > 255)) {
        fprintf (stderr, "%s: --service: 1 to 255 bytes\n", S_PROGRAM);
        return 2;
    }
    char longest[BENCH_SERVICE_NAME_MAX + 1];
    if (!bench_service_name (
          settings->service ? settings->service : CMQ_CART_SERVICE,
          settings->services, (uint64_t) settings->services - 1, longest,
          sizeof (longest))) {
        fprintf (stderr,
                 "%s: --service with --services: names over 255 bytes\n",
                 S_PROGRAM);
        return 2;
    }
    char error[128];
    if (bench_mix_parse (settings->mix ? settings->mix : S_DEFAULT_MIX, mix,
                         error, sizeof (error)) != 0) {
        fprintf (stderr, "%s: %s\n", S_PROGRAM, error);
        return 2;
    }
    return -1;
}

//  Global strings become heap copies so the table can free them all.
static char *
s_strdup_or_null (const char *string)
{
    return string ? strdup (string) : NULL;
}

//  Fills table (S_OPTION_SLOTS entries) with bench's flags.
static void
s_options (bench_settings_t *settings, cmq_option_t *table)
{
    cmq_option_t options[] = {
        { "service", CMQ_OPT_STRING, "S", "service to load (default cart)", 0,
          0, &settings->service },
        { "services", CMQ_OPT_INT, "N",
          "spread requests round-robin over services S0..S<N-1> (default 1: "
          "S itself)",
          1, 100000, &settings->services },
        { "clients", CMQ_OPT_INT, "N", "clients, one socket each (default 1)",
          1, 10000, &settings->clients },
        { "window", CMQ_OPT_INT, "W",
          "requests in flight per client (default 1)", 1, S_MAX_WINDOW,
          &settings->window },
        { "duration", CMQ_OPT_INT, "S", "seconds to measure (default 10)", 1,
          86400, &settings->duration_s },
        { "requests", CMQ_OPT_INT, "N",
          "send N requests instead of running for --duration", 1, INT64_MAX,
          &settings->requests },
        { "warmup", CMQ_OPT_INT, "S",
          "seconds of load before measuring (default 0)", 0, 3600,
          &settings->warmup_s },
        { "users", CMQ_OPT_INT, "U", "cart: distinct user ids (default 1000)",
          1, 100000000, &settings->users },
        { "mix", CMQ_OPT_STRING, "M",
          "cart: method weights (default " S_DEFAULT_MIX ")", 0, 0,
          &settings->mix },
        { "size", CMQ_OPT_INT, "BYTES",
          "other services: body size, echoed back (default 32)",
          BENCH_TAG_BYTES, 1024 * 1024 - 1024, &settings->size },
        { "timeout-ms", CMQ_OPT_INT, "N",
          "a request silent this long is a timeout (default 2500)", 1,
          INT32_MAX, &settings->timeout_ms },
        { "request-ids", CMQ_OPT_FLAG, NULL,
          "cart: give every mutation a unique request_id", 0, 0,
          &settings->use_request_ids },
        { "rate", CMQ_OPT_INT, "R",
          "send R requests/s in all, spread evenly over the clients, each "
          "within its window (default: keep every window full)",
          1, 100000000, &settings->rate },
        { "json", CMQ_OPT_FLAG, NULL, "print the results as one JSON line", 0,
          0, &settings->is_json },
        { "connect", CMQ_OPT_ENDPOINT_LIST, "ENDPOINT",
          "broker endpoint, or a comma list: client i uses the (i mod n)-th "
          "(default " CMQ_DEFAULT_ENDPOINT ")",
          0, 0, &settings->connect },
        { "curve-server", CMQ_OPT_STRING, "PUBLIC_CERTFILE",
          "the broker's public certificate (CURVE)", 0, 0,
          &settings->curve_server },
        { "curve-cert", CMQ_OPT_STRING, "CERTFILE",
          "our secret certificate, NAME_secret (CURVE)", 0, 0,
          &settings->curve_cert },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    assert (sizeof (options) == S_OPTION_SLOTS * sizeof (cmq_option_t));
    memcpy (table, options, sizeof (options));
}

int
bench_main (const bench_globals_t *globals, int argc, char **argv)
{
    assert (globals);
    bench_settings_t settings = {
        NULL,
        1,
        1,
        S_DEFAULT_DURATION_S,
        0,
        0,
        S_DEFAULT_USERS,
        NULL,
        S_DEFAULT_SIZE,
        globals->timeout_ms > 0 ? globals->timeout_ms : CMQ_DEFAULT_TIMEOUT_MS,
        false,
        false,
        globals->endpoints ? zlist_dup (globals->endpoints) : NULL,
        s_strdup_or_null (globals->curve_server),
        s_strdup_or_null (globals->curve_cert),
        1,
        0
    };
    cmq_option_t table[S_OPTION_SLOTS];
    s_options (&settings, table);
    bench_mix_t mix;
    int rc = s_parse (&settings, table, argc, argv, &mix);
    if (rc == -1) {
        if (!settings.service)
            settings.service = strdup (CMQ_CART_SERVICE);
        if (!settings.mix)
            settings.mix = strdup (S_DEFAULT_MIX);
        bench_t *bench = s_bench_new (&settings);
        bench->mix = mix;
        rc = 2;
        if (s_connect (bench) == 0) {
            s_run (bench);
            double elapsed_s = bench_report_elapsed_s (bench, bench_now_ns ());
            if (settings.is_json)
                bench_report_json (bench, elapsed_s);
            else
                bench_report_text (bench, elapsed_s);
            rc = bench->counts.completed == 0 && bench->counts.sent > 0 &&
                     !zsys_interrupted
                   ? 3
                   : 0;
        }
        s_bench_destroy (&bench);
    }
    cmq_options_free (table);
    return rc;
}
