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

#include "bench.h"

#include "cartmq/cart_client.h"
#include "cartmq/client.h"
#include "cartmq/histogram.h"
#include "cartmq/options.h"

#include <czmq.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_PROGRAM "cartmq bench"
#define S_USAGE                                                                \
    "[--service S] [--clients N] [--window W] [--duration S | --requests N]\n" \
    "       [--warmup S] [--users U] [--mix add=60,get=30,remove=10]\n"        \
    "       [--size BYTES] [--timeout-ms N] [--request-ids] [--json]\n"        \
    "       [--connect ENDPOINT] [--curve-server PUBLIC_CERTFILE "             \
    "--curve-cert CERTFILE]\n"                                                 \
    "\n"                                                                       \
    "Keeps W requests in flight on each of N clients and reports requests/s\n" \
    "and latency. The cart service gets msgpack requests in the --mix "        \
    "given;\n"                                                                 \
    "any other service gets --size opaque bytes, which it should echo back.\n" \
    "Latency is exact for opaque bodies, add and update; get, remove, clear\n" \
    "and error replies carry no request id and are matched to the oldest\n"    \
    "request in flight that could have produced them (exact at window 1)."

#define S_DEFAULT_MIX        "add=60,get=30,remove=10"
#define S_DEFAULT_DURATION_S 10
#define S_DEFAULT_USERS      1000
#define S_DEFAULT_SIZE       32
#define S_MAX_WINDOW         1000  //  item ids s0..s999: one cart's limit
#define S_TAG_BYTES          8     //  slot and generation in opaque bodies
#define S_TICK_MS            20    //  timeout scan and interrupt check
#define S_PROGRESS_NS        1000000000LL
#define S_MAX_WEIGHT         1000000

//  Statuses we count one by one; anything else goes under "other".
static const int s_statuses[] = { 200, 400, 404, 409, 503 };
#define S_STATUS_KINDS (sizeof (s_statuses) / sizeof (s_statuses[0]) + 1)

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
    char *connect;
    char *curve_server;
    char *curve_cert;
} s_settings_t;

typedef struct {
    int64_t sent_ns;      //  when the request went out; 0: slot is free
    uint32_t generation;  //  bumped on each use of the slot
    uint8_t method;       //  cmq_cart_method_t, or 0 for opaque bodies
} s_slot_t;

//  Replies charged to a request by guess, by what could have sent them:
//  404 (remove or update), 409 (add), anything (other errors, unreadable)
#define S_GUESS_KINDS 3

typedef struct {
    cmq_client_t *client;
    uint32_t guessed[S_GUESS_KINDS];  //  guesses that may have been wrong
    s_slot_t *slots;                  //  window slots
    uint32_t *free;                   //  stack of free slot indexes
    uint32_t free_count;              //  slots not in flight
} s_peer_t;

//  Counters of the measured interval (after the warmup).
typedef struct {
    uint64_t sent;        //  requests sent
    uint64_t completed;   //  replies matched to a request in flight
    uint64_t errors;      //  cart: status not 200; opaque: wrong echo
    uint64_t timeouts;    //  requests silent for timeout_ms
    uint64_t late;        //  replies to no request in flight
    uint64_t bad;         //  cart replies we could not read
    uint64_t send_fails;  //  sends the socket refused
    uint64_t abandoned;   //  in flight on a socket replaced after a timeout
    uint64_t statuses[S_STATUS_KINDS];
} s_counts_t;

typedef struct {
    const s_settings_t *settings;
    cmq_client_config_t config;  //  how each peer's client connects
    bool is_cart;                //  msgpack cart requests, else opaque
    bench_mix_t mix;             //  cart only
    s_peer_t *peers;             //  one per client
    zmq_pollitem_t *items;       //  one per client, same order
    cmq_histogram_t *latency;    //  nanoseconds
    s_counts_t counts;
    msgpack_sbuffer buffer;  //  cart request being built
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
} s_bench_t;

//  ---------------------------------------------------------------------
//  Method mix

static const char *const s_mix_names[CMQ_CART_CLEAR + 1] = {
    NULL, "get", "add", "remove", "update", "clear"
};

static int
s_mix_fail (char *error, size_t error_size, const char *reason,
            const char *item, size_t item_size)
{
    snprintf (error, error_size, "--mix: %s: '%.*s'", reason,
              (int) (item_size > 40 ? 40 : item_size), item);
    return -1;
}

//  Parses one "name=weight" of item_size bytes into mix.
static int
s_mix_item (const char *item, size_t item_size, bench_mix_t *mix, char *error,
            size_t error_size, bool *is_given)
{
    const char *equals = memchr (item, '=', item_size);
    if (!equals)
        return s_mix_fail (error, error_size, "expected name=weight", item,
                           item_size);
    size_t name_size = (size_t) (equals - item);
    int method = 0;
    for (int index = CMQ_CART_GET; index <= CMQ_CART_CLEAR; index++)
        if (strlen (s_mix_names[index]) == name_size &&
            memcmp (s_mix_names[index], item, name_size) == 0)
            method = index;
    if (!method)
        return s_mix_fail (error, error_size,
                           "unknown method (add, get, remove, update, clear)",
                           item, item_size);
    if (is_given[method])
        return s_mix_fail (error, error_size, "method given twice", item,
                           item_size);
    const char *digits = equals + 1;
    size_t digit_count = item_size - name_size - 1;
    uint64_t weight = 0;
    if (digit_count == 0 || digit_count > 7)
        return s_mix_fail (error, error_size, "weight must be 0..1000000", item,
                           item_size);
    for (size_t index = 0; index < digit_count; index++) {
        if (digits[index] < '0' || digits[index] > '9')
            return s_mix_fail (error, error_size, "weight must be 0..1000000",
                               item, item_size);
        weight = weight * 10 + (uint64_t) (digits[index] - '0');
    }
    if (weight > S_MAX_WEIGHT)
        return s_mix_fail (error, error_size, "weight must be 0..1000000", item,
                           item_size);
    is_given[method] = true;
    mix->weights[method] = (uint32_t) weight;
    mix->total += (uint32_t) weight;
    return 0;
}

int
bench_mix_parse (const char *text, bench_mix_t *mix, char *error,
                 size_t error_size)
{
    assert (text);
    assert (mix);
    assert (error && error_size > 0);
    memset (mix, 0, sizeof (*mix));
    bool is_given[CMQ_CART_CLEAR + 1] = { false };
    const char *cursor = text;
    while (true) {
        const char *comma = strchr (cursor, ',');
        size_t item_size = comma ? (size_t) (comma - cursor) : strlen (cursor);
        if (s_mix_item (cursor, item_size, mix, error, error_size, is_given) !=
            0)
            return -1;
        if (!comma)
            break;
        cursor = comma + 1;
    }
    if (mix->total == 0) {
        snprintf (error, error_size, "--mix: every weight is 0");
        return -1;
    }
    return 0;
}

cmq_cart_method_t
bench_mix_pick (const bench_mix_t *mix, uint32_t random)
{
    assert (mix && mix->total > 0);
    uint32_t point = random % mix->total;
    for (int method = CMQ_CART_GET; method <= CMQ_CART_CLEAR; method++) {
        if (point < mix->weights[method])
            return (cmq_cart_method_t) method;
        point -= mix->weights[method];
    }
    assert (false);  //  the weights add up to total
    return CMQ_CART_GET;
}

//  ---------------------------------------------------------------------
//  Small helpers

int64_t
bench_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000LL + now.tv_nsec;
}

//  xorshift64: plenty for choosing users and methods, and costs nothing.
static uint32_t
s_random (s_bench_t *self)
{
    uint64_t x = self->random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->random = x;
    return (uint32_t) (x >> 32);
}

static void
s_put_u32 (byte *target, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        target[index] = (byte) (value >> (8 * index));
}

static uint32_t
s_get_u32 (const byte *source)
{
    uint32_t value = 0;
    for (int index = 3; index >= 0; index--)
        value = (value << 8) | source[index];
    return value;
}

static void
s_pack_string (msgpack_packer *packer, const char *string)
{
    size_t size = strlen (string);
    msgpack_pack_str (packer, size);
    msgpack_pack_str_body (packer, string, size);
}

static bool
s_key_is (const msgpack_object *key, const char *name)
{
    size_t size = strlen (name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == size &&
           memcmp (key->via.str.ptr, name, size) == 0;
}

static const msgpack_object *
s_map_get (const msgpack_object *map, const char *name)
{
    for (uint32_t index = 0; index < map->via.map.size; index++)
        if (s_key_is (&map->via.map.ptr[index].key, name))
            return &map->via.map.ptr[index].val;
    return NULL;
}

static double
s_us (uint64_t nanoseconds)
{
    return (double) nanoseconds / 1000.0;
}

//  ---------------------------------------------------------------------
//  Building requests

//  A slot's item id: "s" and the slot number. Add and update replies
//  repeat it, which is how their latency is matched exactly.
static void
s_item_id (char *item_id, size_t size, uint32_t slot)
{
    snprintf (item_id, size, "s%" PRIu32, slot);
}

static void
s_pack_cart (s_bench_t *self, cmq_cart_method_t method, uint32_t slot)
{
    msgpack_sbuffer_clear (&self->buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &self->buffer, msgpack_sbuffer_write);
    char user_id[32];
    snprintf (user_id, sizeof (user_id), "bench-%" PRIu32,
              (uint32_t) (s_random (self) % (uint64_t) self->settings->users));
    char item_id[16];
    //  Remove takes any item this client may have added; add and update
    //  use their own slot so the reply names it.
    s_item_id (item_id, sizeof (item_id),
               method == CMQ_CART_REMOVE
                 ? s_random (self) % (uint32_t) self->settings->window
                 : slot);
    bool has_request_id =
      self->settings->use_request_ids && method != CMQ_CART_GET;
    size_t fields = 2 +
                    (method == CMQ_CART_ADD || method == CMQ_CART_REMOVE ? 1
                     : method == CMQ_CART_UPDATE                         ? 2
                                                                         : 0) +
                    (has_request_id ? 1 : 0);
    msgpack_pack_map (&packer, fields);
    s_pack_string (&packer, "method");
    s_pack_string (&packer, cmq_cart_method_name (method));
    s_pack_string (&packer, "user_id");
    s_pack_string (&packer, user_id);
    if (method == CMQ_CART_ADD) {
        s_pack_string (&packer, "item");
        msgpack_pack_map (&packer, 4);
        s_pack_string (&packer, "id");
        s_pack_string (&packer, item_id);
        s_pack_string (&packer, "name");
        s_pack_string (&packer, "bench item");
        s_pack_string (&packer, "quantity");
        msgpack_pack_int64 (&packer, 1);
        s_pack_string (&packer, "price");
        msgpack_pack_int64 (&packer, 100);
    } else if (method == CMQ_CART_REMOVE || method == CMQ_CART_UPDATE) {
        s_pack_string (&packer, "item_id");
        s_pack_string (&packer, item_id);
    }
    if (method == CMQ_CART_UPDATE) {
        s_pack_string (&packer, "quantity");
        msgpack_pack_int64 (&packer, 1 + s_random (self) % 5);
    }
    if (has_request_id) {
        //  Unique per run and per process: a retried bench never replays.
        char request_id[48];
        snprintf (request_id, sizeof (request_id), "b%d-%" PRIx64 "-%" PRIu64,
                  (int) getpid (), (uint64_t) self->measure_ns,
                  ++self->request_ids);
        s_pack_string (&packer, "request_id");
        s_pack_string (&packer, request_id);
    }
}

//  Sends one request on a free slot of peer. Returns 0, or -1 if the
//  socket refused it (the slot stays free).
static int
s_send_one (s_bench_t *self, s_peer_t *peer, int64_t now_ns)
{
    assert (peer->free_count > 0);
    uint32_t index = peer->free[--peer->free_count];
    s_slot_t *slot = &peer->slots[index];
    slot->generation++;
    zmsg_t *body = zmsg_new ();
    if (self->is_cart) {
        cmq_cart_method_t method = bench_mix_pick (&self->mix, s_random (self));
        slot->method = (uint8_t) method;
        s_pack_cart (self, method, index);
        zmsg_addmem (body, self->buffer.data, self->buffer.size);
    } else {
        s_put_u32 (self->opaque, index);
        s_put_u32 (self->opaque + 4, slot->generation);
        zmsg_addmem (body, self->opaque, (size_t) self->settings->size);
    }
    if (cmq_client_send (peer->client, self->settings->service, &body) != 0) {
        peer->free[peer->free_count++] = index;
        self->counts.send_fails++;
        return -1;
    }
    slot->sent_ns = now_ns;
    self->in_flight++;
    if (self->is_measuring)
        self->counts.sent++;
    return 0;
}

static bool
s_may_send (s_bench_t *self)
{
    if (!self->is_sending)
        return false;
    if (self->settings->requests > 0 && self->is_measuring &&
        self->counts.sent >= (uint64_t) self->settings->requests) {
        self->is_sending = false;
        return false;
    }
    return true;
}

//  Sends on peer until its window is full or sending must stop.
static void
s_fill (s_bench_t *self, s_peer_t *peer, int64_t now_ns)
{
    while (peer->free_count > 0 && s_may_send (self))
        if (s_send_one (self, peer, now_ns) != 0)
            break;
}

//  ---------------------------------------------------------------------
//  Matching replies

//  A slot in flight, or -1.
static int64_t
s_busy_slot (s_bench_t *self, s_peer_t *peer, uint64_t index)
{
    if (index >= (uint64_t) self->settings->window ||
        peer->slots[index].sent_ns == 0)
        return -1;
    return (int64_t) index;
}

//  Opaque bodies must come back as sent: the tag names the slot.
static int64_t
s_match_opaque (s_bench_t *self, s_peer_t *peer, zmsg_t *body, bool *is_error)
{
    zframe_t *frame = zmsg_first (body);
    if (zmsg_size (body) != 1 || !frame ||
        zframe_size (frame) != (size_t) self->settings->size) {
        *is_error = true;
        if (!frame || zframe_size (frame) < S_TAG_BYTES)
            return -1;
    }
    const byte *data = zframe_data (frame);
    int64_t index = s_busy_slot (self, peer, s_get_u32 (data));
    if (index >= 0 &&
        peer->slots[index].generation != s_get_u32 (data + S_TAG_BYTES / 2))
        return -1;
    return index;
}

//  Methods as bits, for matching a reply to the methods that could have
//  sent it.
#define S_BIT(method) (1u << (method))

//  The methods each kind of guess could have charged (0 takes any).
static const unsigned s_guess_masks[S_GUESS_KINDS] = {
    S_BIT (CMQ_CART_REMOVE) | S_BIT (CMQ_CART_UPDATE), S_BIT (CMQ_CART_ADD), 0
};
#define S_GUESS_ANY (S_GUESS_KINDS - 1)

//  The oldest slot in flight whose method is in the mask (0 takes any),
//  and in *count_p, if given, how many slots in flight are in the mask.
static int64_t
s_oldest_counted (s_bench_t *self, s_peer_t *peer, unsigned mask,
                  uint32_t *count_p)
{
    int64_t oldest = -1;
    uint32_t count = 0;
    for (int64_t index = 0; index < self->settings->window; index++) {
        s_slot_t *slot = &peer->slots[index];
        if (slot->sent_ns == 0 || (mask && !(mask & S_BIT (slot->method))))
            continue;
        count++;
        if (oldest < 0 || slot->sent_ns < peer->slots[oldest].sent_ns)
            oldest = index;
    }
    if (count_p)
        *count_p = count;
    return oldest;
}

static int64_t
s_oldest_slot_of (s_bench_t *self, s_peer_t *peer, unsigned mask)
{
    return s_oldest_counted (self, peer, mask, NULL);
}

//  Charges a reply that names no request to the oldest slot in flight of
//  the guess kind's methods, or of any method if none. When more than one
//  request could have sent it, the guess is remembered: it may be wrong.
static int64_t
s_charge_guess (s_bench_t *self, s_peer_t *peer, int kind)
{
    uint32_t count = 0;
    int64_t slot = s_oldest_counted (self, peer, s_guess_masks[kind], &count);
    if (slot < 0 && kind != S_GUESS_ANY) {
        kind = S_GUESS_ANY;
        slot = s_oldest_counted (self, peer, 0, &count);
    }
    if (count > 1)
        peer->guessed[kind]++;
    return slot;
}

//  A reply whose own request is no longer in flight proves that an earlier
//  guess took that request's slot: the guessed reply belonged to another
//  request, still in flight, which is released now (the oldest that guess
//  could have meant). Returns its slot, or -1 if no guess is open.
static int64_t
s_settle_guess (s_bench_t *self, s_peer_t *peer)
{
    int64_t best = -1;
    int best_kind = 0;
    for (int kind = 0; kind < S_GUESS_KINDS; kind++) {
        if (peer->guessed[kind] == 0)
            continue;
        int64_t slot = s_oldest_slot_of (self, peer, s_guess_masks[kind]);
        if (slot >= 0 && (best < 0 || peer->slots[slot].sent_ns <
                                        peer->slots[best].sent_ns)) {
            best = slot;
            best_kind = kind;
        }
    }
    if (best >= 0)
        peer->guessed[best_kind]--;
    return best;
}

//  The oldest slot in flight whose method could have sent this reply;
//  method 0 takes any.
static int64_t
s_oldest_slot (s_bench_t *self, s_peer_t *peer, int method)
{
    return s_oldest_slot_of (self, peer, method ? S_BIT (method) : 0);
}

//  An error reply names no request. Charge it to a request that could
//  have earned it: only remove and update find an item missing (404),
//  only add fills a cart (409). Charging a 404 to an add in flight would
//  leave the remove waiting for a reply that already came (a false
//  timeout) and make the add's real reply look late.
static int64_t
s_slot_of_error (s_bench_t *self, s_peer_t *peer, int64_t code)
{
    return s_charge_guess (self, peer,
                           code == CMQ_CART_NOT_FOUND  ? 0
                           : code == CMQ_CART_CONFLICT ? 1
                                                       : S_GUESS_ANY);
}

//  A slot from an item id "sN", or -1.
static int64_t
s_slot_of_item_id (s_bench_t *self, s_peer_t *peer, const msgpack_object *id)
{
    if (!id || id->type != MSGPACK_OBJECT_STR || id->via.str.size < 2 ||
        id->via.str.size > 5 || id->via.str.ptr[0] != 's')
        return -1;
    uint64_t index = 0;
    for (uint32_t at = 1; at < id->via.str.size; at++) {
        char digit = id->via.str.ptr[at];
        if (digit < '0' || digit > '9')
            return -1;
        index = index * 10 + (uint64_t) (digit - '0');
    }
    int64_t slot = s_busy_slot (self, peer, index);
    if (slot >= 0 && peer->slots[slot].method != CMQ_CART_ADD &&
        peer->slots[slot].method != CMQ_CART_UPDATE)
        return -1;
    return slot;
}

static void
s_count_status (s_bench_t *self, int64_t status)
{
    size_t kind = S_STATUS_KINDS - 1;
    for (size_t index = 0; index < S_STATUS_KINDS - 1; index++)
        if (status == s_statuses[index])
            kind = index;
    if (self->is_measuring) {
        self->counts.statuses[kind]++;
        if (status != CMQ_CART_OK)
            self->counts.errors++;
    }
}

//  Reads a cart reply and finds its slot: by item id for add and update,
//  else the oldest request in flight of a method with this reply's shape.
static int64_t
s_match_cart (s_bench_t *self, s_peer_t *peer, zmsg_t *body)
{
    zframe_t *frame = zmsg_first (body);
    size_t offset = 0;
    const msgpack_object *map = &self->reply.data;
    if (zmsg_size (body) != 1 ||
        msgpack_unpack_next (&self->reply, (const char *) zframe_data (frame),
                             zframe_size (frame),
                             &offset) != MSGPACK_UNPACK_SUCCESS ||
        map->type != MSGPACK_OBJECT_MAP) {
        if (self->is_measuring)
            self->counts.bad++;
        return s_charge_guess (self, peer, S_GUESS_ANY);
    }
    const msgpack_object *status = s_map_get (map, "status");
    int64_t code = status && status->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                       status->via.u64 < 1000
                     ? (int64_t) status->via.u64
                     : -1;
    s_count_status (self, code);
    if (code != CMQ_CART_OK)
        return s_slot_of_error (self, peer, code);
    int64_t slot = s_slot_of_item_id (self, peer, s_map_get (map, "item_id"));
    if (slot >= 0)
        return slot;
    const msgpack_object *message = s_map_get (map, "message");
    if (s_map_get (map, "items"))
        return s_oldest_slot (self, peer, CMQ_CART_GET);
    if (message && s_key_is (message, "Item removed"))
        return s_oldest_slot (self, peer, CMQ_CART_REMOVE);
    if (message && s_key_is (message, "Cart cleared"))
        return s_oldest_slot (self, peer, CMQ_CART_CLEAR);
    return -1;
}

static void
s_on_reply (s_bench_t *self, s_peer_t *peer, zmsg_t **body_p, int64_t now_ns)
{
    bool is_error = false;
    int64_t index = self->is_cart
                      ? s_match_cart (self, peer, *body_p)
                      : s_match_opaque (self, peer, *body_p, &is_error);
    zmsg_destroy (body_p);
    //  The released request's reply came earlier, charged to this one's
    //  slot: a reply all the same, but neither latency is known.
    bool is_settled = false;
    if (index < 0 && self->is_cart) {
        index = s_settle_guess (self, peer);
        is_settled = index >= 0;
    }
    if (index < 0) {
        if (self->is_measuring)
            self->counts.late++;
        return;
    }
    s_slot_t *slot = &peer->slots[index];
    if (self->is_measuring) {
        if (!is_settled)
            cmq_histogram_record (self->latency,
                                  (uint64_t) (now_ns - slot->sent_ns));
        self->counts.completed++;
        if (is_error)
            self->counts.errors++;
        self->last_reply_ns = now_ns;
    }
    slot->sent_ns = 0;
    peer->free[peer->free_count++] = (uint32_t) index;
    self->in_flight--;
}

//  Takes every reply waiting on a peer's socket, then refills its window.
//  No ZMQ_EVENTS check before each receive: that getsockopt costs system
//  calls of its own, and the receive with timeout 0 polls anyway.
static void
s_drain (s_bench_t *self, s_peer_t *peer)
{
    zmsg_t *body;
    while ((body = cmq_client_recv (peer->client, 0, NULL)))
        s_on_reply (self, peer, &body, bench_now_ns ());
    s_fill (self, peer, bench_now_ns ());
}

//  Gives a peer a fresh socket once it has given up on a request. A reply
//  names no request exactly (an add's names only its slot, which the next
//  request reuses), so a reply still on its way to the old socket could
//  be taken for a later request's; on a new socket it can never arrive.
//  The peer's other requests in flight are abandoned with the old socket.
static void
s_renew_peer (s_bench_t *self, int64_t client)
{
    s_peer_t *peer = &self->peers[client];
    cmq_client_t *fresh = cmq_client_new (&self->config);
    if (!fresh)
        return;  //  keep the old socket: matching stays as good as it was
    cmq_client_destroy (&peer->client);
    peer->client = fresh;
    memset (peer->guessed, 0, sizeof (peer->guessed));
    self->items[client].socket = zsock_resolve (cmq_client_socket (fresh));
    for (uint32_t index = 0; index < self->settings->window; index++) {
        s_slot_t *slot = &peer->slots[index];
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
s_expire (s_bench_t *self, int64_t now_ns)
{
    int64_t limit_ns = self->settings->timeout_ms * 1000000LL;
    for (int64_t client = 0; client < self->settings->clients; client++) {
        s_peer_t *peer = &self->peers[client];
        bool has_expired = false;
        for (uint32_t index = 0; index < self->settings->window; index++) {
            s_slot_t *slot = &peer->slots[index];
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
            s_fill (self, peer, now_ns);
        }
    }
}

//  ---------------------------------------------------------------------
//  Reporting

static double
s_elapsed_s (const s_bench_t *self, int64_t now_ns)
{
    int64_t end_ns =
      self->last_reply_ns > self->measure_ns ? self->last_reply_ns : now_ns;
    double elapsed = (double) (end_ns - self->measure_ns) / 1e9;
    return elapsed > 0 ? elapsed : 0;
}

static void
s_progress (const s_bench_t *self, int64_t now_ns, uint64_t *last_completed,
            int64_t *last_ns)
{
    double interval_s = (double) (now_ns - *last_ns) / 1e9;
    double rate =
      interval_s > 0
        ? (double) (self->counts.completed - *last_completed) / interval_s
        : 0;
    fprintf (stderr,
             "\r%s %6.1f s %10.0f req/s  p50 %.1f  p99 %.1f us  errors "
             "%" PRIu64 "  timeouts %" PRIu64 "\033[K",
             self->is_measuring ? "run   " : "warmup",
             (double) (now_ns - self->measure_ns) / 1e9, rate,
             s_us (cmq_histogram_percentile (self->latency, 50)),
             s_us (cmq_histogram_percentile (self->latency, 99)),
             self->counts.errors, self->counts.timeouts);
    fflush (stderr);
    *last_completed = self->counts.completed;
    *last_ns = now_ns;
}

static void
s_print_json (const s_bench_t *self, double elapsed_s)
{
    const s_settings_t *settings = self->settings;
    const cmq_histogram_t *latency = self->latency;
    const s_counts_t *counts = &self->counts;
    printf ("{\"service\":\"%s\",\"clients\":%" PRId64 ",\"window\":%" PRId64,
            settings->service, settings->clients, settings->window);
    if (self->is_cart)
        printf (",\"mix\":\"%s\",\"users\":%" PRId64, settings->mix,
                settings->users);
    else
        printf (",\"size\":%" PRId64, settings->size);
    printf (",\"elapsed_s\":%.3f,\"sent\":%" PRIu64 ",\"requests\":%" PRIu64
            ",\"rps\":%.1f",
            elapsed_s, counts->sent, counts->completed,
            elapsed_s > 0 ? (double) counts->completed / elapsed_s : 0.0);
    cmq_histogram_summary_t us = cmq_histogram_summary (latency, 1000);
    printf (",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
            "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f",
            us.p50, us.p90, us.p99, us.p999, us.max, us.mean);
    printf (",\"errors\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"late\":%" PRIu64
            ",\"bad_replies\":%" PRIu64 ",\"send_failures\":%" PRIu64
            ",\"abandoned\":%" PRIu64,
            counts->errors, counts->timeouts, counts->late, counts->bad,
            counts->send_fails, counts->abandoned);
    if (self->is_cart) {
        printf (",\"statuses\":{");
        bool is_first = true;
        for (size_t kind = 0; kind < S_STATUS_KINDS; kind++) {
            if (!counts->statuses[kind])
                continue;
            if (kind < S_STATUS_KINDS - 1)
                printf ("%s\"%d\":%" PRIu64, is_first ? "" : ",",
                        s_statuses[kind], counts->statuses[kind]);
            else
                printf ("%s\"other\":%" PRIu64, is_first ? "" : ",",
                        counts->statuses[kind]);
            is_first = false;
        }
        printf ("}");
    }
    bool is_exact = !self->is_cart || settings->window == 1 ||
                    (self->mix.weights[CMQ_CART_GET] == 0 &&
                     self->mix.weights[CMQ_CART_REMOVE] == 0 &&
                     self->mix.weights[CMQ_CART_CLEAR] == 0);
    printf (",\"latency_exact\":%s}\n", is_exact ? "true" : "false");
}

static void
s_print_text (const s_bench_t *self, double elapsed_s)
{
    const s_settings_t *settings = self->settings;
    const cmq_histogram_t *latency = self->latency;
    const s_counts_t *counts = &self->counts;
    printf ("service     %s", settings->service);
    if (self->is_cart)
        printf (" (mix %s, %" PRId64 " users)\n", settings->mix,
                settings->users);
    else
        printf (" (%" PRId64 " byte bodies)\n", settings->size);
    printf ("load        %" PRId64 " client%s x window %" PRId64 "\n",
            settings->clients, settings->clients == 1 ? "" : "s",
            settings->window);
    printf ("requests    %" PRIu64 " in %.2f s: %.0f requests/s\n",
            counts->completed, elapsed_s,
            elapsed_s > 0 ? (double) counts->completed / elapsed_s : 0.0);
    cmq_histogram_summary_t us = cmq_histogram_summary (latency, 1000);
    printf ("latency us  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f"
            "  mean %.1f\n",
            us.p50, us.p90, us.p99, us.p999, us.max, us.mean);
    printf ("errors      %" PRIu64, counts->errors);
    if (self->is_cart) {
        for (size_t kind = 0; kind < S_STATUS_KINDS; kind++) {
            if (!counts->statuses[kind])
                continue;
            if (kind < S_STATUS_KINDS - 1)
                printf ("  [%d: %" PRIu64 "]", s_statuses[kind],
                        counts->statuses[kind]);
            else
                printf ("  [other: %" PRIu64 "]", counts->statuses[kind]);
        }
    }
    printf ("\ntimeouts    %" PRIu64 " (over %" PRId64 " ms)", counts->timeouts,
            settings->timeout_ms);
    if (counts->late || counts->bad || counts->send_fails)
        printf ("  late replies %" PRIu64 "  unreadable %" PRIu64
                "  refused sends %" PRIu64,
                counts->late, counts->bad, counts->send_fails);
    if (counts->abandoned)
        printf ("  abandoned with their socket %" PRIu64, counts->abandoned);
    printf ("\n");
    fflush (stdout);
}

//  ---------------------------------------------------------------------
//  Setting up and running

static int
s_connect (s_bench_t *self)
{
    const s_settings_t *settings = self->settings;
    cmq_client_config_t *config = &self->config;
    cmq_client_config_defaults (config);
    if (settings->connect)
        config->endpoint = settings->connect;
    config->timeout_ms = (int) settings->timeout_ms;
    config->curve_server = settings->curve_server;
    config->curve_cert = settings->curve_cert;
    size_t window = (size_t) settings->window;
    for (int64_t index = 0; index < settings->clients; index++) {
        s_peer_t *peer = &self->peers[index];
        peer->client = cmq_client_new (config);
        if (!peer->client) {
            fprintf (stderr, "%s: %s\n", S_PROGRAM, cmq_client_error ());
            return -1;
        }
        peer->slots = (s_slot_t *) zmalloc (window * sizeof (s_slot_t));
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

static s_bench_t *
s_bench_new (const s_settings_t *settings)
{
    s_bench_t *self = (s_bench_t *) zmalloc (sizeof (s_bench_t));
    self->settings = settings;
    self->is_cart = streq (settings->service, CMQ_CART_SERVICE);
    self->peers =
      (s_peer_t *) zmalloc ((size_t) settings->clients * sizeof (s_peer_t));
    self->items = (zmq_pollitem_t *) zmalloc ((size_t) settings->clients *
                                              sizeof (zmq_pollitem_t));
    self->latency =
      cmq_histogram_new (BENCH_HISTOGRAM_BITS, BENCH_HISTOGRAM_MAX_BITS);
    msgpack_sbuffer_init (&self->buffer);
    msgpack_unpacked_init (&self->reply);
    self->opaque = (byte *) zmalloc ((size_t) settings->size);
    for (int64_t index = S_TAG_BYTES; index < settings->size; index++)
        self->opaque[index] = (byte) ('a' + index % 26);
    self->random = (uint64_t) bench_now_ns () ^ ((uint64_t) getpid () << 32);
    if (self->random == 0)
        self->random = 1;
    return self;
}

static void
s_bench_destroy (s_bench_t **self_p)
{
    s_bench_t *self = *self_p;
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
    msgpack_sbuffer_destroy (&self->buffer);
    msgpack_unpacked_destroy (&self->reply);
    free (self->opaque);
    free (self);
    *self_p = NULL;
}

//  Starts the measured interval: what came before it was warmup.
static void
s_start_measuring (s_bench_t *self, int64_t now_ns)
{
    self->is_measuring = true;
    self->measure_ns = now_ns;
    self->last_reply_ns = 0;
    memset (&self->counts, 0, sizeof (self->counts));
    cmq_histogram_reset (self->latency);
    if (self->settings->requests == 0)
        self->stop_ns = now_ns + self->settings->duration_s * 1000000000LL;
}

//  The poll loop, until the time or the budget is spent and every
//  request in flight has come back or timed out, or a signal.
static void
s_run (s_bench_t *self)
{
    const s_settings_t *settings = self->settings;
    bool show_progress = isatty (STDERR_FILENO);
    int64_t start_ns = bench_now_ns ();
    int64_t warmup_end_ns = start_ns + settings->warmup_s * 1000000000LL;
    self->measure_ns = start_ns;
    self->is_sending = true;
    if (settings->warmup_s == 0)
        s_start_measuring (self, start_ns);
    for (int64_t index = 0; index < settings->clients; index++)
        s_fill (self, &self->peers[index], bench_now_ns ());

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
        if (!s_may_send (self) && self->in_flight == 0)
            break;
        if (now_ns >= next_tick_ns) {
            s_expire (self, now_ns);
            next_tick_ns = now_ns + S_TICK_MS * 1000000LL;
        }
        if (show_progress && now_ns >= next_progress_ns) {
            s_progress (self, now_ns, &progress_completed, &progress_ns);
            next_progress_ns = now_ns + S_PROGRESS_NS;
        }
        long wait_ms = (long) ((next_tick_ns - now_ns) / 1000000LL) + 1;
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
s_parse (s_settings_t *settings, cmq_option_t *table, int argc, char **argv,
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

int
bench_main (const bench_globals_t *globals, int argc, char **argv)
{
    assert (globals);
    s_settings_t settings = { NULL,
                              1,
                              1,
                              S_DEFAULT_DURATION_S,
                              0,
                              0,
                              S_DEFAULT_USERS,
                              NULL,
                              S_DEFAULT_SIZE,
                              globals->timeout_ms > 0 ? globals->timeout_ms
                                                      : CMQ_DEFAULT_TIMEOUT_MS,
                              false,
                              false,
                              s_strdup_or_null (globals->endpoint),
                              s_strdup_or_null (globals->curve_server),
                              s_strdup_or_null (globals->curve_cert) };
    cmq_option_t table[] = {
        { "service", CMQ_OPT_STRING, "S", "service to load (default cart)", 0,
          0, &settings.service },
        { "clients", CMQ_OPT_INT, "N", "clients, one socket each (default 1)",
          1, 10000, &settings.clients },
        { "window", CMQ_OPT_INT, "W",
          "requests in flight per client (default 1)", 1, S_MAX_WINDOW,
          &settings.window },
        { "duration", CMQ_OPT_INT, "S", "seconds to measure (default 10)", 1,
          86400, &settings.duration_s },
        { "requests", CMQ_OPT_INT, "N",
          "send N requests instead of running for --duration", 1, INT64_MAX,
          &settings.requests },
        { "warmup", CMQ_OPT_INT, "S",
          "seconds of load before measuring (default 0)", 0, 3600,
          &settings.warmup_s },
        { "users", CMQ_OPT_INT, "U", "cart: distinct user ids (default 1000)",
          1, 100000000, &settings.users },
        { "mix", CMQ_OPT_STRING, "M",
          "cart: method weights (default " S_DEFAULT_MIX ")", 0, 0,
          &settings.mix },
        { "size", CMQ_OPT_INT, "BYTES",
          "other services: body size, echoed back (default 32)", S_TAG_BYTES,
          1024 * 1024 - 1024, &settings.size },
        { "timeout-ms", CMQ_OPT_INT, "N",
          "a request silent this long is a timeout (default 2500)", 1,
          INT32_MAX, &settings.timeout_ms },
        { "request-ids", CMQ_OPT_FLAG, NULL,
          "cart: give every mutation a unique request_id", 0, 0,
          &settings.use_request_ids },
        { "json", CMQ_OPT_FLAG, NULL, "print the results as one JSON line", 0,
          0, &settings.is_json },
        { "connect", CMQ_OPT_STRING, "ENDPOINT",
          "broker endpoint (default " CMQ_DEFAULT_ENDPOINT ")", 0, 0,
          &settings.connect },
        { "curve-server", CMQ_OPT_STRING, "PUBLIC_CERTFILE",
          "the broker's public certificate (CURVE)", 0, 0,
          &settings.curve_server },
        { "curve-cert", CMQ_OPT_STRING, "CERTFILE",
          "our secret certificate, NAME_secret (CURVE)", 0, 0,
          &settings.curve_cert },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    bench_mix_t mix;
    int rc = s_parse (&settings, table, argc, argv, &mix);
    if (rc == -1) {
        if (!settings.service)
            settings.service = strdup (CMQ_CART_SERVICE);
        if (!settings.mix)
            settings.mix = strdup (S_DEFAULT_MIX);
        s_bench_t *bench = s_bench_new (&settings);
        bench->mix = mix;
        rc = 2;
        if (s_connect (bench) == 0) {
            s_run (bench);
            double elapsed_s = s_elapsed_s (bench, bench_now_ns ());
            if (settings.is_json)
                s_print_json (bench, elapsed_s);
            else
                s_print_text (bench, elapsed_s);
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
