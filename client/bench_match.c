//  bench_match.c - `cartmq bench`: which request a reply answers
//
//  Opaque bodies carry their slot and generation; add and update replies
//  name their slot in the item id. Get, remove and clear replies (and
//  error replies) name nothing, so they are charged to the oldest request
//  in flight of a method that could have sent them, and a guess that
//  proves wrong is set right when the request it charged gets its own
//  reply (see bench.h).

#include "bench_run.h"

#include "cartmq/cart_codec.h"
#include "cartmq/msgpack_scan.h"

#include <string.h>

#define S_MAX_DEPTH 16  //  a cart reply needs 3

const int bench_statuses[BENCH_STATUS_KINDS - 1] = { 200, 400, 404, 409, 503 };

static uint32_t
s_get_u32 (const byte *source)
{
    uint32_t value = 0;
    for (int index = 3; index >= 0; index--)
        value = (value << 8) | source[index];
    return value;
}

//  A slot in flight, or -1.
static int64_t
s_busy_slot (bench_t *self, bench_peer_t *peer, uint64_t index)
{
    if (index >= (uint64_t) self->settings->window ||
        peer->slots[index].sent_ns == 0)
        return -1;
    return (int64_t) index;
}

//  Opaque bodies must come back as sent: the tag names the slot.
static int64_t
s_match_opaque (bench_t *self, bench_peer_t *peer, zmsg_t *body, bool *is_error)
{
    zframe_t *frame = zmsg_first (body);
    if (zmsg_size (body) != 1 || !frame ||
        zframe_size (frame) != (size_t) self->settings->size) {
        *is_error = true;
        if (!frame || zframe_size (frame) < BENCH_TAG_BYTES)
            return -1;
    }
    const byte *data = zframe_data (frame);
    int64_t index = s_busy_slot (self, peer, s_get_u32 (data));
    if (index >= 0 &&
        peer->slots[index].generation != s_get_u32 (data + BENCH_TAG_BYTES / 2))
        return -1;
    return index;
}

//  Methods as bits, for matching a reply to the methods that could have
//  sent it.
#define S_BIT(method) (1u << (method))

//  The methods each kind of guess could have charged (0 takes any).
static const unsigned s_guess_masks[BENCH_GUESS_KINDS] = {
    S_BIT (CMQ_CART_REMOVE) | S_BIT (CMQ_CART_UPDATE), S_BIT (CMQ_CART_ADD), 0
};
#define S_GUESS_ANY (BENCH_GUESS_KINDS - 1)

//  The oldest slot in flight whose method is in the mask (0 takes any),
//  and in *count_p, if given, how many slots in flight are in the mask.
static int64_t
s_oldest_counted (bench_t *self, bench_peer_t *peer, unsigned mask,
                  uint32_t *count_p)
{
    int64_t oldest = -1;
    uint32_t count = 0;
    for (int64_t index = 0; index < self->settings->window; index++) {
        bench_slot_t *slot = &peer->slots[index];
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
s_oldest_slot_of (bench_t *self, bench_peer_t *peer, unsigned mask)
{
    return s_oldest_counted (self, peer, mask, NULL);
}

//  Charges a reply that names no request to the oldest slot in flight of
//  the guess kind's methods, or of any method if none. When more than one
//  request could have sent it, the guess is remembered: it may be wrong.
static int64_t
s_charge_guess (bench_t *self, bench_peer_t *peer, int kind)
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
s_settle_guess (bench_t *self, bench_peer_t *peer)
{
    int64_t best = -1;
    int best_kind = 0;
    for (int kind = 0; kind < BENCH_GUESS_KINDS; kind++) {
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
s_oldest_slot (bench_t *self, bench_peer_t *peer, int method)
{
    return s_oldest_slot_of (self, peer, method ? S_BIT (method) : 0);
}

//  An error reply names no request. Charge it to a request that could
//  have earned it: only remove and update find an item missing (404),
//  only add fills a cart (409). Charging a 404 to an add in flight would
//  leave the remove waiting for a reply that already came (a false
//  timeout) and make the add's real reply look late.
static int64_t
s_slot_of_error (bench_t *self, bench_peer_t *peer, int64_t code)
{
    return s_charge_guess (self, peer,
                           code == CMQ_CART_NOT_FOUND  ? 0
                           : code == CMQ_CART_CONFLICT ? 1
                                                       : S_GUESS_ANY);
}

//  A slot from an item id "sN", or -1.
static int64_t
s_slot_of_item_id (bench_t *self, bench_peer_t *peer, const msgpack_object *id)
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
s_count_status (bench_t *self, int64_t status)
{
    size_t kind = BENCH_STATUS_KINDS - 1;
    for (size_t index = 0; index < BENCH_STATUS_KINDS - 1; index++)
        if (status == bench_statuses[index])
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
s_match_cart (bench_t *self, bench_peer_t *peer, zmsg_t *body)
{
    zframe_t *frame = zmsg_first (body);
    const msgpack_object *map = &self->reply.data;
    if (zmsg_size (body) != 1 ||
        cmq_msgpack_unpack (zframe_data (frame), zframe_size (frame),
                            S_MAX_DEPTH, &self->reply, NULL, 0) != 0 ||
        map->type != MSGPACK_OBJECT_MAP) {
        if (self->is_measuring)
            self->counts.bad++;
        return s_charge_guess (self, peer, S_GUESS_ANY);
    }
    const msgpack_object *status = cmq_msgpack_map_get (map, "status");
    int64_t code = status && status->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                       status->via.u64 < 1000
                     ? (int64_t) status->via.u64
                     : -1;
    s_count_status (self, code);
    if (code != CMQ_CART_OK)
        return s_slot_of_error (self, peer, code);
    int64_t slot =
      s_slot_of_item_id (self, peer, cmq_msgpack_map_get (map, "item_id"));
    if (slot >= 0)
        return slot;
    const msgpack_object *message = cmq_msgpack_map_get (map, "message");
    if (cmq_msgpack_map_get (map, "items"))
        return s_oldest_slot (self, peer, CMQ_CART_GET);
    if (message && cmq_msgpack_str_is (message, "Item removed"))
        return s_oldest_slot (self, peer, CMQ_CART_REMOVE);
    if (message && cmq_msgpack_str_is (message, "Cart cleared"))
        return s_oldest_slot (self, peer, CMQ_CART_CLEAR);
    return -1;
}

void
bench_match_reply (bench_t *self, bench_peer_t *peer, zmsg_t **body_p,
                   int64_t now_ns)
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
    bench_slot_t *slot = &peer->slots[index];
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
