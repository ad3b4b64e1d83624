//  bench_request.c - `cartmq bench` requests: built, sent into free slots
//
//  Cart requests go through the one encoder (cmq_cart_request_encode_into,
//  into a stack buffer: no allocation per request); opaque bodies carry
//  their slot and generation in the first BENCH_TAG_BYTES.

#include "bench_run.h"

#include "cartmq/cart_codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  Room for any request bench builds (a few dozen bytes).
#define S_MAX_REQUEST_BYTES 256

//  xorshift64: plenty for choosing users and methods, and costs nothing.
uint32_t
bench_random (bench_t *self)
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

//  A slot's item id: "s" and the slot number. Add and update replies
//  repeat it, which is how their latency is matched exactly.
static void
s_item_id (char *item_id, size_t size, uint32_t slot)
{
    snprintf (item_id, size, "s%" PRIu32, slot);
}

//  The cart request of method for slot, encoded into body.
static void
s_add_cart (bench_t *self, cmq_cart_method_t method, uint32_t slot,
            zmsg_t *body)
{
    char user_id[32];
    snprintf (
      user_id, sizeof (user_id), "bench-%" PRIu32,
      (uint32_t) (bench_random (self) % (uint64_t) self->settings->users));
    char item_id[16];
    //  Remove takes any item this client may have added; add and update
    //  use their own slot so the reply names it.
    s_item_id (item_id, sizeof (item_id),
               method == CMQ_CART_REMOVE
                 ? bench_random (self) % (uint32_t) self->settings->window
                 : slot);
    cmq_cart_request_t request;
    memset (&request, 0, sizeof (request));
    request.method = method;
    request.user_id = cmq_cart_str (user_id);
    request.item.id = cmq_cart_str (item_id);
    request.item.name = cmq_cart_str ("bench item");
    request.item.quantity =
      method == CMQ_CART_UPDATE ? 1 + bench_random (self) % 5 : 1;
    request.item.price = 100;
    char request_id[48];
    if (self->settings->use_request_ids && method != CMQ_CART_GET) {
        //  Unique per run and per process: a retried bench never replays.
        snprintf (request_id, sizeof (request_id), "b%d-%" PRIx64 "-%" PRIu64,
                  (int) getpid (), (uint64_t) self->measure_ns,
                  ++self->request_ids);
        request.has_request_id = true;
        request.request_id = cmq_cart_str (request_id);
    }
    byte encoded[S_MAX_REQUEST_BYTES];
    size_t size =
      cmq_cart_request_encode_into (&request, encoded, sizeof (encoded));
    if (size <= sizeof (encoded)) {
        zmsg_addmem (body, encoded, size);
        return;
    }
    void *heap = cmq_cart_request_encode (&request, &size);
    zmsg_addmem (body, heap, heap ? size : 0);
    free (heap);
}

const char *
bench_service_name (const char *service, int64_t services, uint64_t index,
                    char *buffer, size_t size)
{
    assert (service && services >= 1 && buffer);
    if (services == 1)
        return service;
    int written = snprintf (buffer, size, "%s%" PRIu64, service,
                            index % (uint64_t) services);
    if (written < 0 || (size_t) written >= size ||
        written > BENCH_SERVICE_NAME_MAX)
        return NULL;
    return buffer;
}

//  Sends one request on a free slot of peer. Returns 0, or -1 if the
//  socket refused it (the slot stays free).
static int
s_send_one (bench_t *self, bench_peer_t *peer, int64_t now_ns)
{
    assert (peer->free_count > 0);
    uint32_t index = peer->free[--peer->free_count];
    bench_slot_t *slot = &peer->slots[index];
    slot->generation++;
    zmsg_t *body = zmsg_new ();
    if (self->is_cart) {
        cmq_cart_method_t method =
          bench_mix_pick (&self->mix, bench_random (self));
        slot->method = (uint8_t) method;
        s_add_cart (self, method, index, body);
    } else {
        s_put_u32 (self->opaque, index);
        s_put_u32 (self->opaque + 4, slot->generation);
        zmsg_addmem (body, self->opaque, (size_t) self->settings->size);
    }
    const char *service = bench_service_name (
      self->settings->service, self->settings->services, self->service_turn++,
      self->service_name, sizeof (self->service_name));
    assert (service);  //  bench.c checked the longest name fits
    if (cmq_client_send (peer->client, service, &body) != 0) {
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

bool
bench_may_send (bench_t *self)
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

void
bench_fill (bench_t *self, bench_peer_t *peer, int64_t now_ns)
{
    while (peer->free_count > 0 && bench_may_send (self))
        if (s_send_one (self, peer, now_ns) != 0)
            break;
}

//  ---------------------------------------------------------------------
//  --rate: sends when the schedule says so (bench_pace.h)

void
bench_paced_fill (bench_t *self, int64_t client, int64_t now_ns)
{
    bench_pace_t *pace = self->pace;
    if (bench_pace_is_waiting (pace, client))
        return;  //  bench_paced_run sends for it when it is due
    bench_peer_t *peer = &self->peers[client];
    uint64_t skipped = 0;
    while (peer->free_count > 0 && bench_may_send (self)) {
        bench_pace_turn_t turn =
          bench_pace_take (pace, client, now_ns, &skipped);
        if (turn == BENCH_PACE_NOT_DUE)
            break;
        if (turn == BENCH_PACE_LATE && self->is_measuring)
            self->counts.late_sends++;
        if (s_send_one (self, peer, now_ns) != 0)
            break;
    }
    if (self->is_measuring)
        self->counts.skipped_sends += skipped;
    //  A full window waits out of the heap for a reply to free a slot.
    if (peer->free_count > 0 && bench_may_send (self))
        bench_pace_push (pace, client);
}

void
bench_paced_run (bench_t *self, int64_t now_ns)
{
    int64_t client;
    while ((client = bench_pace_pop_due (self->pace, now_ns)) >= 0)
        bench_paced_fill (self, client, now_ns);
}
