//  broker_core.c - Majordomo routing as a plain state machine
//
//  Workers live in three places at once: a hash by routing id (lookup per
//  message), a list ordered by last contact (expiry pops from the head)
//  and a list ordered by last send (heartbeats pop from the head). Each
//  service has a queue of requests in order of first arrival and a
//  ready-queue of workers with free credit. Every per-message step is
//  O(1): a REPLY names its request by a token (below), not by client.
//
//  Request tokens (contract §3): the client address a REQUEST carries is a
//  12-byte token, a slot index into the core's table of requests (4 bytes)
//  and that slot's generation (8 bytes). A slot's generation goes up when
//  it is taken and again when it is freed (odd while in use), so a token
//  names one request for the broker's whole life and a stale or forged one
//  matches nothing. A REPLY is matched to its own request in O(1) with no
//  allocation, whatever order a credit worker answers in; one whose token
//  names no request in flight on that worker is invalid traffic.
//
//  Every live request also sits in one core-wide list in arrival order
//  until its queue timeout passes. All services share the timeout, so the
//  tick pops exactly the requests that are due: queued ones are dropped,
//  ones in flight just leave the list (should their worker die, they are
//  dropped then instead of being queued again). No walk over services.
//
//  Lists are intrusive (broker_list.h) and a worker keeps its routing id
//  inline, which the hash uses as its key: an idle worker is one block
//  plus its hash entry, and dispatching a request allocates nothing.

#include "broker_core.h"

#include <msgpack.h>

#include "cartmq/log.h"
#include "broker_list.h"
#include "cartmq/mdp.h"
#include "service_stats.h"

typedef struct _service_t service_t;
typedef struct _worker_t worker_t;

struct _service_t {
    char *name;
    broker_list_t queue;     //  broker_request_t waiting, by first arrival
    broker_list_t ready;     //  worker_t with free credit, front first
    size_t workers;          //  registered workers of this service
    uint64_t requests;       //  accepted since the service appeared
    service_stats_t *stats;  //  service times, made on first reply
    broker_link_t workerless_link;  //  in core->workerless while no worker
};

struct _worker_t {
    broker_peer_t identity;  //  routing id (in id[]); the hash key
    service_t *service;
    int credit;                  //  requests it accepts at once
    broker_list_t inflight;      //  broker_request_t sent to it
    broker_link_t ready_link;    //  in service->ready while it has credit
    broker_link_t contact_link;  //  in core->by_contact
    broker_link_t sent_link;     //  in core->by_sent
    int64_t heard_us;            //  last message from it
    int64_t sent_us;             //  last message to it
    byte id[];                   //  identity.size bytes
};

//  The worker, request or service a list link belongs to; NULL for NULL.
#define S_READY_WORKER(at)   BROKER_LIST_ITEM (at, worker_t, ready_link)
#define S_CONTACT_WORKER(at) BROKER_LIST_ITEM (at, worker_t, contact_link)
#define S_SENT_WORKER(at)    BROKER_LIST_ITEM (at, worker_t, sent_link)
#define S_REQUEST(at)        BROKER_LIST_ITEM (at, broker_request_t, link)
#define S_ARRIVED(at)        BROKER_LIST_ITEM (at, broker_request_t, arrival_link)
#define S_WORKERLESS(at)     BROKER_LIST_ITEM (at, service_t, workerless_link)

//  One entry of the token table: the request a token names.
typedef struct {
    broker_request_t *request;  //  while in use, else NULL
    uint64_t generation;        //  odd while in use; only ever goes up
    uint32_t next_free;         //  while free: next free index + 1, or 0
} s_slot_t;

//  Drop and refusal lines are summarised (§3): counts per (kind, reason,
//  name) over at least a second, written by the tick. At most
//  S_NOTES_MAX distinct lines per second; the rest are one count.
#define S_NOTES_MAX         32
#define S_NOTES_INTERVAL_US 1000000

typedef enum {
    S_NOTE_DROPPED,         //  a request dropped; name is the service
    S_NOTE_CLIENT_INVALID,  //  a client message dropped; name is the peer
    S_NOTE_REFUSED          //  a peer sent DISCONNECT; name is the peer
} s_note_kind_t;

typedef struct {
    s_note_kind_t kind;
    const char *reason;  //  static string
    uint64_t count;
    size_t name_size;
    byte name[255];  //  service names and routing ids are 1..255 bytes
} s_note_t;

struct _broker_core_t {
    broker_config_t config;
    int64_t heartbeat_us;
    int64_t expiry_us;  //  liveness x heartbeat
    int64_t queue_timeout_us;
    int64_t started_us;
    zhashx_t *workers;         //  worker_t by broker_peer_t routing id
    zhashx_t *services;        //  service_t by name
    broker_list_t by_contact;  //  worker_t, least recently heard first
    broker_list_t by_sent;     //  worker_t, least recently sent to first
    broker_list_t by_arrival;  //  broker_request_t within their timeout
    broker_list_t workerless;  //  service_t without workers, oldest first
    uint64_t last_sequence;    //  of the latest request
    s_slot_t *slots;           //  token table
    uint32_t slots_made;       //  entries of slots in use or on free list
    uint32_t slots_capacity;
    uint32_t free_slot;  //  first free index + 1, or 0
    s_note_t notes[S_NOTES_MAX];
    size_t notes_count;
    uint64_t notes_unlisted;  //  counts past S_NOTES_MAX this interval
    int64_t notes_written_us;
    broker_counters_t counters;
};

void
broker_config_defaults (broker_config_t *config)
{
    assert (config);
    config->heartbeat_ms = 2500;
    config->liveness = 3;
    config->queue_timeout_ms = 10000;
    config->max_queued = 100000;
    config->max_services = 10000;
    config->max_redispatch = 2;
}

//  Routing ids are binary: hash and compare them as bytes. Keys are
//  broker_peer_t: the stored one is the worker's own, a lookup's points
//  into the received frame, so neither copies anything.
static size_t
s_peer_hash (const void *key)
{
    const broker_peer_t *peer = (const broker_peer_t *) key;
    size_t hash = 14695981039346656037ULL;
    for (size_t index = 0; index < peer->size; index++)
        hash = (hash ^ peer->data[index]) * 1099511628211ULL;
    return hash;
}

static int
s_peer_compare (const void *a, const void *b)
{
    const broker_peer_t *left = (const broker_peer_t *) a;
    const broker_peer_t *right = (const broker_peer_t *) b;
    if (left->size != right->size)
        return left->size < right->size ? -1 : 1;
    return memcmp (left->data, right->data, left->size);
}

static worker_t *
s_worker_lookup (broker_core_t *self, broker_peer_t identity)
{
    return (worker_t *) zhashx_lookup (self->workers, &identity);
}

//  A routing id in hex for logs: 255 bytes at most, so 511 with the NUL.
#define S_HEX_BYTES 511

static const char *
s_peer_hex (broker_peer_t peer, char *hex)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t index = 0; index < peer.size; index++) {
        hex[2 * index] = digits[peer.data[index] >> 4];
        hex[2 * index + 1] = digits[peer.data[index] & 15];
    }
    hex[2 * peer.size] = 0;
    return hex;
}

//  A service name as a log may show it: escaped (§3), so that no peer can
//  forge or split a line.
#define S_NAME_LOG_BYTES CMQ_LOG_ESCAPED_BYTES (CMQ_MAX_SERVICE_NAME_BYTES)

static const char *
s_name_log (const char *name, char *buffer)
{
    return cmq_log_escape (name, strlen (name), buffer, S_NAME_LOG_BYTES);
}

broker_core_t *
broker_core_new (const broker_config_t *config, int64_t now_us)
{
    assert (config);
    assert (config->heartbeat_ms > 0 && config->liveness > 0);
    broker_core_t *self = (broker_core_t *) zmalloc (sizeof (*self));
    self->config = *config;
    self->heartbeat_us = (int64_t) config->heartbeat_ms * 1000;
    self->expiry_us = self->heartbeat_us * config->liveness;
    self->queue_timeout_us = (int64_t) config->queue_timeout_ms * 1000;
    self->started_us = now_us;
    self->workers = zhashx_new ();
    zhashx_set_key_hasher (self->workers, s_peer_hash);
    zhashx_set_key_comparator (self->workers, s_peer_compare);
    zhashx_set_key_duplicator (self->workers, NULL);
    zhashx_set_key_destructor (self->workers, NULL);
    self->services = zhashx_new ();
    broker_list_init (&self->by_contact);
    broker_list_init (&self->by_sent);
    broker_list_init (&self->by_arrival);
    broker_list_init (&self->workerless);
    self->notes_written_us = now_us - S_NOTES_INTERVAL_US;
    return self;
}

//  ---------------------------------------------------------------------
//  Log summaries

//  Counts one drop or refusal under (kind, reason, name). A linear scan
//  of at most S_NOTES_MAX entries; reasons are static strings, so they
//  compare as pointers.
static void
s_note (broker_core_t *self, s_note_kind_t kind, const char *reason,
        const void *name, size_t name_size)
{
    assert (name_size <= sizeof (self->notes[0].name));
    for (size_t index = 0; index < self->notes_count; index++) {
        s_note_t *note = &self->notes[index];
        if (note->kind == kind && note->reason == reason &&
            note->name_size == name_size &&
            memcmp (note->name, name, name_size) == 0) {
            note->count++;
            return;
        }
    }
    if (self->notes_count == S_NOTES_MAX) {
        self->notes_unlisted++;
        return;
    }
    s_note_t *note = &self->notes[self->notes_count++];
    note->kind = kind;
    note->reason = reason;
    note->count = 1;
    note->name_size = name_size;
    memcpy (note->name, name, name_size);
}

//  Writes the summary once a second at most, from the tick.
static void
s_notes_write (broker_core_t *self, int64_t now_us)
{
    if (self->notes_count == 0 && self->notes_unlisted == 0)
        return;
    if (now_us - self->notes_written_us < S_NOTES_INTERVAL_US)
        return;
    for (size_t index = 0; index < self->notes_count; index++) {
        s_note_t *note = &self->notes[index];
        unsigned long long count = (unsigned long long) note->count;
        if (note->kind == S_NOTE_DROPPED) {
            char name[S_NAME_LOG_BYTES];
            cmq_log_escape (note->name, note->name_size, name, sizeof (name));
            cmq_log_warning ("requests dropped reason=%s service=%s count=%llu",
                             note->reason, name, count);
            continue;
        }
        char hex[S_HEX_BYTES];
        broker_peer_t peer = { note->name, note->name_size };
        cmq_log_warning ("%s peer=%s count=%llu reason=%s",
                         note->kind == S_NOTE_REFUSED
                           ? "invalid message"
                           : "invalid client message dropped",
                         s_peer_hex (peer, hex), count, note->reason);
    }
    if (self->notes_unlisted)
        cmq_log_warning ("requests dropped or messages refused, not listed "
                         "above count=%llu",
                         (unsigned long long) self->notes_unlisted);
    self->notes_count = 0;
    self->notes_unlisted = 0;
    self->notes_written_us = now_us;
}

//  ---------------------------------------------------------------------
//  Request tokens

static void
s_token_encode (broker_request_t *request, uint32_t index, uint64_t generation)
{
    memcpy (request->token, &index, sizeof (index));
    memcpy (request->token + sizeof (index), &generation, sizeof (generation));
    request->token_size = BROKER_REQUEST_TOKEN_BYTES;
}

//  Gives a request its token before its first dispatch. Amortised O(1):
//  the table only grows when more requests are out at once than ever.
static void
s_token_assign (broker_core_t *self, broker_request_t *request)
{
    if (request->token_size)
        return;
    uint32_t index;
    if (self->free_slot) {
        index = self->free_slot - 1;
        self->free_slot = self->slots[index].next_free;
    } else {
        if (self->slots_made == self->slots_capacity) {
            assert (self->slots_capacity < UINT32_MAX / 2);
            self->slots_capacity =
              self->slots_capacity ? self->slots_capacity * 2 : 64;
            self->slots = (s_slot_t *) realloc (
              self->slots, self->slots_capacity * sizeof (s_slot_t));
            assert (self->slots);
        }
        index = self->slots_made++;
        self->slots[index].generation = 0;
    }
    s_slot_t *slot = &self->slots[index];
    slot->generation++;  //  odd: in use
    slot->request = request;
    slot->next_free = 0;
    s_token_encode (request, index, slot->generation);
}

//  The request's slot is free again; the token it carried matches nothing
//  from now on (its bytes stay, for a send still pending).
static void
s_token_release (broker_core_t *self, broker_request_t *request)
{
    if (!request->token_size)
        return;
    uint32_t index;
    memcpy (&index, request->token, sizeof (index));
    s_slot_t *slot = &self->slots[index];
    assert (slot->request == request);
    slot->generation++;  //  even: free
    slot->request = NULL;
    slot->next_free = self->free_slot;
    self->free_slot = index + 1;
}

//  The request a REPLY's address names, if it is in flight on this worker.
static broker_request_t *
s_token_find (broker_core_t *self, zmq_msg_t *address, worker_t *worker)
{
    if (zmq_msg_size (address) != BROKER_REQUEST_TOKEN_BYTES)
        return NULL;
    const byte *data = (const byte *) zmq_msg_data (address);
    uint32_t index;
    uint64_t generation;
    memcpy (&index, data, sizeof (index));
    memcpy (&generation, data + sizeof (index), sizeof (generation));
    if (index >= self->slots_made)
        return NULL;
    s_slot_t *slot = &self->slots[index];
    if (slot->generation != generation || !(generation & 1))
        return NULL;
    broker_request_t *request = slot->request;
    return request->worker == worker ? request : NULL;
}

//  ---------------------------------------------------------------------
//  Messages out

//  Every send to a worker counts as our heartbeat to it.
static void
s_worker_sent (broker_core_t *self, worker_t *worker, int64_t now_us)
{
    worker->sent_us = now_us;
    broker_list_move_end (&self->by_sent, &worker->sent_link);
}

//  DISCONNECT to any peer, known or not.
static void
s_send_disconnect (broker_peer_t identity, broker_outbox_t *outbox)
{
    broker_outbox_add_command (outbox, identity, CMQ_MDPW_DISCONNECT);
}

//  ---------------------------------------------------------------------
//  Requests

//  The core lets go of a request: its token, its place by arrival, and
//  the core's reference. It is in no queue or in-flight list by now.
static void
s_request_forget (broker_core_t *self, broker_request_t **request_p)
{
    broker_request_t *request = *request_p;
    s_token_release (self, request);
    if (broker_link_is_listed (&request->arrival_link))
        broker_list_remove (&self->by_arrival, &request->arrival_link);
    broker_request_unref (request_p);
}

static void
s_drop_request (broker_core_t *self, broker_request_t **request_p,
                const char *reason, uint64_t *counter)
{
    service_t *service = (service_t *) (*request_p)->service;
    s_note (self, S_NOTE_DROPPED, reason, service->name,
            strlen (service->name));
    (*counter)++;
    s_request_forget (self, request_p);
}

static bool
s_is_expired (broker_core_t *self, broker_request_t *request, int64_t now_us)
{
    return now_us - request->arrived_us >= self->queue_timeout_us;
}

//  ---------------------------------------------------------------------
//  Services

//  A service lives while it has workers or queued requests (§3).
static void
s_service_release_if_unused (broker_core_t *self, service_t *service)
{
    if (service->workers > 0 || broker_list_size (&service->queue) > 0)
        return;
    if (cmq_log_enabled (CMQ_LOG_DEBUG)) {
        char name[S_NAME_LOG_BYTES];
        cmq_log_debug ("service removed service=%s",
                       s_name_log (service->name, name));
    }
    if (broker_link_is_listed (&service->workerless_link))
        broker_list_remove (&self->workerless, &service->workerless_link);
    zhashx_delete (self->services, service->name);
    service_stats_destroy (&service->stats);
    free (service->name);
    free (service);
}

//  Makes room for a worker's service at --max-services: the service
//  without workers that has been so longest gives way, its queued
//  requests dropped as no_service (§3). False if every service has
//  workers.
static bool
s_service_evict (broker_core_t *self)
{
    service_t *service = S_WORKERLESS (broker_list_first (&self->workerless));
    if (!service)
        return false;
    if (cmq_log_enabled (CMQ_LOG_DEBUG)) {
        char name[S_NAME_LOG_BYTES];
        cmq_log_debug ("service evicted for a worker's service service=%s "
                       "queued=%zu",
                       s_name_log (service->name, name),
                       broker_list_size (&service->queue));
    }
    broker_link_t *link;
    while ((link = broker_list_first (&service->queue))) {
        broker_list_remove (&service->queue, link);
        broker_request_t *request = S_REQUEST (link);
        s_drop_request (self, &request, "no_service",
                        &self->counters.dropped_no_service);
    }
    s_service_release_if_unused (self, service);
    return true;
}

//  The service of that name, made if need be. At --max-services a worker
//  (for_worker) may evict a service that has none; a client may not.
static service_t *
s_service_require (broker_core_t *self, const char *name, bool for_worker)
{
    service_t *service = (service_t *) zhashx_lookup (self->services, name);
    if (service)
        return service;
    if (zhashx_size (self->services) >= (size_t) self->config.max_services &&
        (!for_worker || !s_service_evict (self)))
        return NULL;
    service = (service_t *) zmalloc (sizeof (*service));
    service->name = strdup (name);
    broker_list_init (&service->queue);
    broker_list_init (&service->ready);
    zhashx_insert (self->services, name, service);
    //  Without workers until one says READY.
    broker_list_add_end (&self->workerless, &service->workerless_link);
    if (cmq_log_enabled (CMQ_LOG_DEBUG)) {
        char escaped[S_NAME_LOG_BYTES];
        cmq_log_debug ("service created service=%s",
                       s_name_log (name, escaped));
    }
    return service;
}

//  Hands a request to the worker at the front of the ready-queue; the
//  worker goes to the back if it still has credit (§3).
static void
s_worker_take (broker_core_t *self, worker_t *worker, broker_request_t *request,
               int64_t now_us, broker_outbox_t *outbox)
{
    s_token_assign (self, request);
    request->worker = worker;
    broker_outbox_add_request (outbox, worker->identity, request);
    request->dispatched_us = now_us;
    broker_list_add_end (&worker->inflight, &request->link);
    s_worker_sent (self, worker, now_us);

    service_t *service = worker->service;
    if (broker_list_size (&worker->inflight) < (size_t) worker->credit)
        broker_list_move_end (&service->ready, &worker->ready_link);
    else
        broker_list_remove (&service->ready, &worker->ready_link);
}

//  Matches queued requests with ready workers, oldest request first. A
//  request past its timeout is dropped, never handed out (§5), even
//  between two ticks.
static void
s_service_dispatch (broker_core_t *self, service_t *service, int64_t now_us,
                    broker_outbox_t *outbox)
{
    broker_link_t *link;
    while (broker_list_size (&service->ready) &&
           (link = broker_list_first (&service->queue))) {
        broker_list_remove (&service->queue, link);
        broker_request_t *request = S_REQUEST (link);
        if (s_is_expired (self, request, now_us)) {
            s_drop_request (self, &request, "expired",
                            &self->counters.dropped_expired);
            continue;
        }
        worker_t *worker = S_READY_WORKER (broker_list_first (&service->ready));
        s_worker_take (self, worker, request, now_us, outbox);
    }
}

//  Puts requests (in a list sorted by first arrival) back into their
//  service's queue in order of first arrival (§5). One walk from the
//  front: they are usually the oldest, so it is short.
static void
s_service_requeue (service_t *service, broker_list_t *sorted)
{
    broker_link_t *at = &service->queue.head;
    broker_link_t *link;
    while ((link = broker_list_first (sorted))) {
        broker_list_remove (sorted, link);
        uint64_t sequence = S_REQUEST (link)->sequence;
        broker_link_t *next;
        while ((next = broker_list_next (&service->queue, at)) &&
               S_REQUEST (next)->sequence < sequence)
            at = next;
        broker_list_insert_after (&service->queue, at, link);
        at = link;
    }
}

//  Adds a request to a list kept sorted by first arrival, walking from the
//  back: a worker's requests are mostly in arrival order already.
static void
s_sorted_add (broker_list_t *sorted, broker_request_t *request)
{
    broker_link_t *at = broker_list_last (sorted);
    while (at && S_REQUEST (at)->sequence > request->sequence)
        at = broker_list_prev (sorted, at);
    broker_list_insert_after (sorted, at ? at : &sorted->head, &request->link);
}

//  ---------------------------------------------------------------------
//  Workers

static worker_t *
s_worker_new (broker_core_t *self, broker_peer_t identity, service_t *service,
              int credit, int64_t now_us)
{
    worker_t *worker = (worker_t *) zmalloc (sizeof (*worker) + identity.size);
    memcpy (worker->id, identity.data, identity.size);
    worker->identity.data = worker->id;
    worker->identity.size = identity.size;
    worker->service = service;
    worker->credit = credit;
    broker_list_init (&worker->inflight);
    worker->heard_us = now_us;
    worker->sent_us = now_us;
    zhashx_insert (self->workers, &worker->identity, worker);
    broker_list_add_end (&self->by_contact, &worker->contact_link);
    broker_list_add_end (&self->by_sent, &worker->sent_link);
    broker_list_add_end (&service->ready, &worker->ready_link);
    if (broker_link_is_listed (&service->workerless_link))
        broker_list_remove (&self->workerless, &service->workerless_link);
    service->workers++;
    return worker;
}

//  Forgets a worker. Its requests in flight go back into their queue in
//  order of first arrival, unless sent too often already or past their
//  timeout (§5).
static void
s_worker_delete (broker_core_t *self, worker_t *worker, const char *reason,
                 int64_t now_us, broker_outbox_t *outbox)
{
    service_t *service = worker->service;
    char hex[S_HEX_BYTES];
    char name[S_NAME_LOG_BYTES];
    cmq_log_info ("worker removed worker=%s service=%s reason=%s inflight=%zu",
                  s_peer_hex (worker->identity, hex),
                  s_name_log (service->name, name), reason,
                  broker_list_size (&worker->inflight));
    broker_list_t sorted;
    broker_list_init (&sorted);
    broker_link_t *link;
    while ((link = broker_list_first (&worker->inflight))) {
        broker_list_remove (&worker->inflight, link);
        broker_request_t *request = S_REQUEST (link);
        request->worker = NULL;
        if (s_is_expired (self, request, now_us))
            s_drop_request (self, &request, "expired",
                            &self->counters.dropped_expired);
        else if (request->redispatches >= self->config.max_redispatch)
            s_drop_request (self, &request, "redispatch_limit",
                            &self->counters.dropped_redispatch_limit);
        else {
            request->redispatches++;
            self->counters.redispatched++;
            s_sorted_add (&sorted, request);
        }
    }
    s_service_requeue (service, &sorted);
    if (broker_link_is_listed (&worker->ready_link))
        broker_list_remove (&service->ready, &worker->ready_link);
    broker_list_remove (&self->by_contact, &worker->contact_link);
    broker_list_remove (&self->by_sent, &worker->sent_link);
    zhashx_delete (self->workers, &worker->identity);
    free (worker);
    if (--service->workers == 0)
        broker_list_add_end (&self->workerless, &service->workerless_link);
    s_service_dispatch (self, service, now_us, outbox);
    s_service_release_if_unused (self, service);
}

//  A peer broke the protocol: count, log (summarised), DISCONNECT, forget
//  (§3). Never for a client's message (s_client_invalid).
static void
s_refuse (broker_core_t *self, broker_peer_t identity, worker_t *worker,
          const char *reason, int64_t now_us, broker_outbox_t *outbox)
{
    self->counters.invalid++;
    s_note (self, S_NOTE_REFUSED, reason, identity.data, identity.size);
    s_send_disconnect (identity, outbox);
    if (worker)
        s_worker_delete (self, worker, "invalid", now_us, outbox);
}

//  A client message that is invalid: counted, logged (summarised) and
//  dropped. A client is never sent a worker command (§3).
static void
s_client_invalid (broker_core_t *self, broker_peer_t identity,
                  const char *reason)
{
    self->counters.invalid++;
    s_note (self, S_NOTE_CLIENT_INVALID, reason, identity.data, identity.size);
}

//  ---------------------------------------------------------------------
//  Worker messages

//  The message being handled and what the parser found in it. Layout
//  indexes count from the frame after the routing id.
typedef struct {
    broker_message_t *message;
    cmq_mdp_layout_t layout;
} s_input_t;

static zmq_msg_t *
s_frame (const s_input_t *input, int index)
{
    assert (index >= 0 && (size_t) index + 1 < input->message->count);
    return &input->message->frames[1 + index];
}

//  Copies a service-name frame into a C string; names were checked to be
//  1..255 bytes without NUL by the parser.
static void
s_frame_to_name (zmq_msg_t *frame, char *name)
{
    size_t size = zmq_msg_size (frame);
    memcpy (name, zmq_msg_data (frame), size);
    name[size] = 0;
}

static void
s_on_ready (broker_core_t *self, broker_peer_t identity, const s_input_t *input,
            int64_t now_us, broker_outbox_t *outbox)
{
    char name[CMQ_MAX_SERVICE_NAME_BYTES + 1];
    s_frame_to_name (s_frame (input, input->layout.service), name);
    //  RFC 8: mmi.* names are the broker's own.
    if (strncmp (name, "mmi.", 4) == 0) {
        s_refuse (self, identity, NULL, "READY for an mmi.* service", now_us,
                  outbox);
        return;
    }
    service_t *service = s_service_require (self, name, true);
    if (!service) {
        s_refuse (self, identity, NULL, "too many services", now_us, outbox);
        return;
    }
    worker_t *worker =
      s_worker_new (self, identity, service, input->layout.credit, now_us);
    char hex[S_HEX_BYTES];
    char escaped[S_NAME_LOG_BYTES];
    cmq_log_info ("worker ready worker=%s service=%s credit=%d",
                  s_peer_hex (worker->identity, hex),
                  s_name_log (name, escaped), worker->credit);
    s_service_dispatch (self, service, now_us, outbox);
}

//  [wid][""][MDPW01][REPLY][token][""][body...] goes to the client of the
//  request the token names as [client][""][MDPC01][service][body...], the
//  body frames moved.
static void
s_on_reply (broker_core_t *self, worker_t *worker, const s_input_t *input,
            int64_t now_us, broker_outbox_t *outbox)
{
    broker_request_t *request =
      s_token_find (self, s_frame (input, input->layout.address), worker);
    if (!request) {
        s_refuse (self, worker->identity, worker,
                  "REPLY names no request in flight on this worker", now_us,
                  outbox);
        return;
    }
    service_t *service = worker->service;
    broker_list_remove (&worker->inflight, &request->link);
    request->worker = NULL;
    if (!service->stats)
        service->stats = service_stats_new ();
    service_stats_record (service->stats, now_us,
                          now_us - request->dispatched_us);

    broker_peer_t client;
    client.data = broker_request_client (request, &client.size);
    broker_outbox_add_reply (outbox, client, service->name,
                             s_frame (input, input->layout.address + 2),
                             input->layout.body_frames);
    self->counters.replies++;
    s_request_forget (self, &request);

    //  Credit is free again: rejoin the back of the ready-queue (§3).
    if (!broker_link_is_listed (&worker->ready_link))
        broker_list_add_end (&service->ready, &worker->ready_link);
    s_service_dispatch (self, service, now_us, outbox);
}

static void
s_on_worker_message (broker_core_t *self, broker_peer_t identity,
                     const s_input_t *input, int64_t now_us,
                     broker_outbox_t *outbox)
{
    worker_t *worker = s_worker_lookup (self, identity);
    if (!worker) {
        switch (input->layout.command) {
            case CMQ_MDPW_READY:
                s_on_ready (self, identity, input, now_us, outbox);
                break;
            case CMQ_MDPW_HEARTBEAT:
                //  A worker from before a broker restart: make it register
                //  again at once (§2).
                cmq_log_debug ("heartbeat from unknown worker: DISCONNECT");
                s_send_disconnect (identity, outbox);
                break;
            case CMQ_MDPW_DISCONNECT:
                break;
            default:
                s_refuse (self, identity, NULL,
                          "worker command from an unregistered peer", now_us,
                          outbox);
        }
        return;
    }
    worker->heard_us = now_us;
    broker_list_move_end (&self->by_contact, &worker->contact_link);
    switch (input->layout.command) {
        case CMQ_MDPW_REPLY:
            s_on_reply (self, worker, input, now_us, outbox);
            break;
        case CMQ_MDPW_HEARTBEAT:
            break;
        case CMQ_MDPW_DISCONNECT:
            s_worker_delete (self, worker, "disconnect", now_us, outbox);
            break;
        case CMQ_MDPW_READY:
            s_refuse (self, identity, worker, "READY from a registered worker",
                      now_us, outbox);
            break;
        default:
            s_refuse (self, identity, worker, "REQUEST from a worker", now_us,
                      outbox);
    }
}

//  ---------------------------------------------------------------------
//  MMI (RFC 8), answered here

static void
s_pack_str (msgpack_packer *packer, const char *string)
{
    size_t size = strlen (string);
    msgpack_pack_str (packer, size);
    msgpack_pack_str_body (packer, string, size);
}

static void
s_pack_uint_field (msgpack_packer *packer, const char *key, uint64_t value)
{
    s_pack_str (packer, key);
    msgpack_pack_uint64 (packer, value);
}

//  Services sorted by name, for stable listings.
static zlistx_t *
s_services_sorted (broker_core_t *self)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_comparator (list, (zlistx_comparator_fn *) strcmp);
    for (service_t *service = (service_t *) zhashx_first (self->services);
         service; service = (service_t *) zhashx_next (self->services))
        zlistx_add_end (list, service->name);
    zlistx_sort (list);
    return list;
}

static void
s_pack_service (broker_core_t *self, msgpack_packer *packer, service_t *service,
                bool with_times, int64_t now_us)
{
    msgpack_pack_map (packer, with_times ? 7 : 4);
    s_pack_str (packer, "name");
    s_pack_str (packer, service->name);
    s_pack_uint_field (packer, "workers", service->workers);
    s_pack_uint_field (packer, "idle", broker_list_size (&service->ready));
    s_pack_uint_field (packer, "queued", broker_list_size (&service->queue));
    if (!with_times)
        return;
    uint64_t count = 0;
    int64_t mean_us = 0, p99_us = 0;
    if (service->stats)
        service_stats_read (service->stats, now_us, &count, &mean_us, &p99_us);
    (void) self;
    s_pack_uint_field (packer, "requests", service->requests);
    s_pack_uint_field (packer, "mean_us", (uint64_t) mean_us);
    s_pack_uint_field (packer, "p99_us", (uint64_t) p99_us);
}

static void
s_pack_services (broker_core_t *self, msgpack_packer *packer, bool with_times,
                 int64_t now_us)
{
    zlistx_t *names = s_services_sorted (self);
    msgpack_pack_array (packer, zlistx_size (names));
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names))
        s_pack_service (self, packer,
                        (service_t *) zhashx_lookup (self->services, name),
                        with_times, now_us);
    zlistx_destroy (&names);
}

static void
s_pack_stats (broker_core_t *self, msgpack_packer *packer, int64_t now_us)
{
    const broker_counters_t *counters = &self->counters;
    msgpack_pack_map (packer, 10);
    s_pack_uint_field (packer, "uptime_s",
                       (uint64_t) ((now_us - self->started_us) / 1000000));
    s_pack_uint_field (packer, "requests", counters->requests);
    s_pack_uint_field (packer, "replies", counters->replies);
    s_pack_uint_field (packer, "redispatched", counters->redispatched);
    s_pack_str (packer, "dropped");
    msgpack_pack_map (packer, 5);
    s_pack_uint_field (packer, "expired", counters->dropped_expired);
    s_pack_uint_field (packer, "queue_full", counters->dropped_queue_full);
    s_pack_uint_field (packer, "redispatch_limit",
                       counters->dropped_redispatch_limit);
    s_pack_uint_field (packer, "no_service", counters->dropped_no_service);
    s_pack_uint_field (packer, "output_full", counters->dropped_output_full);
    s_pack_uint_field (packer, "invalid", counters->invalid);
    s_pack_uint_field (packer, "workers", zhashx_size (self->workers));
    //  The rest of the identity requests = replies + dropped + queued +
    //  in_flight (§3).
    s_pack_uint_field (packer, "queued", broker_core_queued_total (self));
    s_pack_uint_field (packer, "in_flight", broker_core_in_flight (self));
    s_pack_str (packer, "services");
    s_pack_services (self, packer, true, now_us);
}

//  Answers an MMI request (service is "mmi.*") to the client; body is the
//  request's first body frame.
static void
s_mmi_answer (broker_core_t *self, const char *service, zmq_msg_t *body,
              broker_peer_t client, int64_t now_us, broker_outbox_t *outbox)
{
    if (streq (service, "mmi.service")) {
        //  The whole frame, byte for byte (§3): a NUL inside ("cart\0x")
        //  names no service, since no service name holds one.
        size_t size = zmq_msg_size (body);
        const byte *data = (const byte *) zmq_msg_data (body);
        service_t *known = NULL;
        if (size > 0 && size <= CMQ_MAX_SERVICE_NAME_BYTES &&
            !memchr (data, 0, size)) {
            char name[CMQ_MAX_SERVICE_NAME_BYTES + 1];
            s_frame_to_name (body, name);
            known = (service_t *) zhashx_lookup (self->services, name);
        }
        broker_outbox_add_reply_bytes (
          outbox, client, service, known && known->workers ? "200" : "404", 3);
        return;
    }
    bool is_services = streq (service, "mmi.services");
    if (!is_services && !streq (service, "mmi.stats")) {
        broker_outbox_add_reply_bytes (outbox, client, service, "501", 3);
        return;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    if (is_services)
        s_pack_services (self, &packer, false, now_us);
    else
        s_pack_stats (self, &packer, now_us);
    broker_outbox_add_reply_bytes (outbox, client, service, buffer.data,
                                   buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

//  ---------------------------------------------------------------------
//  Client messages

//  [client][""][MDPC01][service][body...]. What is not taken here (the
//  routing id and body, into a request) is closed by the message's reader.
//  Every request for a service that is not mmi.* counts in requests,
//  dropped at once or not (§3).
static void
s_on_client_request (broker_core_t *self, const s_input_t *input,
                     int64_t now_us, broker_outbox_t *outbox)
{
    char name[CMQ_MAX_SERVICE_NAME_BYTES + 1];
    s_frame_to_name (s_frame (input, input->layout.service), name);
    zmq_msg_t *client = &input->message->frames[0];
    zmq_msg_t *body = s_frame (input, input->layout.service + 1);

    if (strncmp (name, "mmi.", 4) == 0) {
        s_mmi_answer (self, name, body, broker_peer_of_msg (client), now_us,
                      outbox);
        return;
    }
    self->counters.requests++;
    service_t *service = s_service_require (self, name, false);
    if (!service) {
        s_note (self, S_NOTE_DROPPED, "no_service", name, strlen (name));
        self->counters.dropped_no_service++;
        return;
    }
    bool can_wait =
      broker_list_size (&service->queue) < (size_t) self->config.max_queued;
    if (!can_wait && broker_list_size (&service->ready) == 0) {
        s_note (self, S_NOTE_DROPPED, "queue_full", name, strlen (name));
        self->counters.dropped_queue_full++;
        return;
    }
    broker_request_t *request = broker_request_new (
      client, body, input->layout.body_frames, service, now_us);
    request->sequence = ++self->last_sequence;
    broker_list_add_end (&self->by_arrival, &request->arrival_link);
    service->requests++;
    //  A service with a ready worker has an empty queue: workers take
    //  queued requests as soon as they have credit.
    worker_t *worker = S_READY_WORKER (broker_list_first (&service->ready));
    if (worker)
        s_worker_take (self, worker, request, now_us, outbox);
    else {
        broker_request_pack (request);
        broker_list_add_end (&service->queue, &request->link);
    }
}

//  --verbose: one line per message, sizes and names, never body bytes.
static void
s_trace (const s_input_t *input, cmq_mdp_status_t status)
{
    broker_message_t *message = input->message;
    char peer[S_HEX_BYTES];
    s_peer_hex (broker_peer_of_msg (&message->frames[0]), peer);
    char service[S_NAME_LOG_BYTES] = "";
    if (status == CMQ_MDP_OK && input->layout.service >= 0) {
        zmq_msg_t *frame = s_frame (input, input->layout.service);
        cmq_log_escape (zmq_msg_data (frame), zmq_msg_size (frame), service,
                        sizeof (service));
    }
    size_t bytes = 0;
    for (size_t index = 0; index < message->count; index++)
        bytes += zmq_msg_size (&message->frames[index]);
    static const char *commands[] = { "?",     "READY",     "REQUEST",
                                      "REPLY", "HEARTBEAT", "DISCONNECT" };
    bool is_client = input->layout.kind == CMQ_MDP_FROM_CLIENT;
    const char *kind = status != CMQ_MDP_OK ? "invalid"
                       : is_client          ? "REQUEST"
                                            : commands[input->layout.command];
    cmq_log_debug ("recv peer=%s from=%s command=%s service=%s frames=%zu "
                   "bytes=%zu",
                   peer,
                   status != CMQ_MDP_OK ? "unknown"
                   : is_client          ? "client"
                                        : "worker",
                   kind, service, message->count, bytes);
}

//  What the parser reads: the frames after the routing id.
static cmq_mdp_status_t
s_parse (s_input_t *input)
{
    broker_message_t *message = input->message;
    cmq_mdp_frames_t frames;
    memset (&frames, 0, sizeof (frames));
    frames.count = message->count - 1;
    for (size_t index = 0; index < CMQ_MDP_HEAD_FRAMES && index < frames.count;
         index++) {
        zmq_msg_t *frame = &message->frames[1 + index];
        frames.head[index].data = (const byte *) zmq_msg_data (frame);
        frames.head[index].size = zmq_msg_size (frame);
    }
    return cmq_mdp_parse_frames (&frames, &input->layout);
}

void
broker_core_on_frames (broker_core_t *self, broker_message_t *message,
                       int64_t now_us, broker_outbox_t *outbox)
{
    assert (self && message && outbox);
    //  A ROUTER's routing ids are 1..255 bytes; anything else is not from
    //  a peer and cannot be answered.
    if (message->count == 0)
        return;
    broker_peer_t peer = broker_peer_of_msg (&message->frames[0]);
    if (peer.size == 0 || peer.size > 255)
        return;
    s_input_t input = { message, { 0 } };
    cmq_mdp_status_t status = s_parse (&input);
    if (cmq_log_enabled (CMQ_LOG_DEBUG))
        s_trace (&input, status);
    //  A message with the client header is a client's, valid or not: it
    //  is never answered with a worker command. Anything else that is
    //  invalid (a worker's, or an unknown header, which §3 lists as
    //  invalid traffic) gets DISCONNECT.
    bool is_client = input.layout.kind == CMQ_MDP_FROM_CLIENT;
    //  peer points into frames[0], which a client request moves into the
    //  request it makes: nothing below uses peer after that.
    if (message->is_too_long && is_client)
        s_client_invalid (self, peer, "more frames than the broker accepts");
    else if (message->is_too_long)
        s_refuse (self, peer, s_worker_lookup (self, peer),
                  "more frames than the broker accepts", now_us, outbox);
    else if (status != CMQ_MDP_OK && is_client)
        s_client_invalid (self, peer, cmq_mdp_status_str (status));
    else if (status != CMQ_MDP_OK)
        s_refuse (self, peer, s_worker_lookup (self, peer),
                  cmq_mdp_status_str (status), now_us, outbox);
    else if (is_client)
        s_on_client_request (self, &input, now_us, outbox);
    else
        s_on_worker_message (self, peer, &input, now_us, outbox);
}

void
broker_core_on_message (broker_core_t *self, zmsg_t **msg_p, int64_t now_us,
                        broker_outbox_t *outbox)
{
    assert (self && msg_p && *msg_p && outbox);
    broker_message_t *message = broker_message_new ();
    broker_message_set_from_zmsg (message, *msg_p);
    zmsg_destroy (msg_p);
    broker_core_on_frames (self, message, now_us, outbox);
    broker_message_destroy (&message);
}

//  ---------------------------------------------------------------------
//  Time

static void
s_expire_workers (broker_core_t *self, int64_t now_us, broker_outbox_t *outbox)
{
    worker_t *worker;
    while (
      (worker = S_CONTACT_WORKER (broker_list_first (&self->by_contact))) &&
      now_us - worker->heard_us >= self->expiry_us)
        s_worker_delete (self, worker, "expired", now_us, outbox);
}

static void
s_send_heartbeats (broker_core_t *self, int64_t now_us, broker_outbox_t *outbox)
{
    worker_t *worker;
    while ((worker = S_SENT_WORKER (broker_list_first (&self->by_sent))) &&
           now_us - worker->sent_us >= self->heartbeat_us) {
        broker_outbox_add_command (outbox, worker->identity,
                                   CMQ_MDPW_HEARTBEAT);
        s_worker_sent (self, worker, now_us);
    }
}

//  Pops the requests whose timeout has come, wherever they sit (§5): the
//  cost is what is due. One in flight only leaves the list; its worker
//  deleting it later drops it as expired.
static void
s_expire_requests (broker_core_t *self, int64_t now_us)
{
    broker_request_t *request;
    while ((request = S_ARRIVED (broker_list_first (&self->by_arrival))) &&
           s_is_expired (self, request, now_us)) {
        broker_list_remove (&self->by_arrival, &request->arrival_link);
        if (request->worker)
            continue;
        service_t *service = (service_t *) request->service;
        broker_list_remove (&service->queue, &request->link);
        s_drop_request (self, &request, "expired",
                        &self->counters.dropped_expired);
        s_service_release_if_unused (self, service);
    }
}

void
broker_core_on_tick (broker_core_t *self, int64_t now_us,
                     broker_outbox_t *outbox)
{
    assert (self && outbox);
    s_expire_workers (self, now_us, outbox);
    s_send_heartbeats (self, now_us, outbox);
    s_expire_requests (self, now_us);
    s_notes_write (self, now_us);
}

void
broker_core_disconnect_all (broker_core_t *self, broker_outbox_t *outbox)
{
    assert (self && outbox);
    for (broker_link_t *link = broker_list_first (&self->by_contact); link;
         link = broker_list_next (&self->by_contact, link))
        s_send_disconnect (S_CONTACT_WORKER (link)->identity, outbox);
}

void
broker_core_reply_unsent (broker_core_t *self)
{
    assert (self && self->counters.replies > 0);
    self->counters.replies--;
    self->counters.dropped_output_full++;
}

size_t
broker_core_worker_count (broker_core_t *self)
{
    assert (self);
    return zhashx_size (self->workers);
}

size_t
broker_core_service_count (broker_core_t *self)
{
    assert (self);
    return zhashx_size (self->services);
}

size_t
broker_core_queued (broker_core_t *self, const char *name)
{
    assert (self && name);
    service_t *service = (service_t *) zhashx_lookup (self->services, name);
    return service ? broker_list_size (&service->queue) : 0;
}

size_t
broker_core_queued_total (broker_core_t *self)
{
    assert (self);
    size_t total = 0;
    for (service_t *service = (service_t *) zhashx_first (self->services);
         service; service = (service_t *) zhashx_next (self->services))
        total += broker_list_size (&service->queue);
    return total;
}

size_t
broker_core_in_flight (broker_core_t *self)
{
    assert (self);
    size_t total = 0;
    for (broker_link_t *link = broker_list_first (&self->by_contact); link;
         link = broker_list_next (&self->by_contact, link))
        total += broker_list_size (&S_CONTACT_WORKER (link)->inflight);
    return total;
}

const broker_counters_t *
broker_core_counters (broker_core_t *self)
{
    assert (self);
    return &self->counters;
}

void
broker_core_destroy (broker_core_t **self_p)
{
    assert (self_p);
    broker_core_t *self = *self_p;
    if (!self)
        return;
    //  Workers first: deleting one may re-queue its requests.
    broker_outbox_t *discard = broker_outbox_new ();
    self->config.max_redispatch = 0;
    worker_t *worker;
    while ((worker = S_CONTACT_WORKER (broker_list_first (&self->by_contact))))
        s_worker_delete (self, worker, "shutdown", 0, discard);
    broker_outbox_destroy (&discard);
    service_t *service;
    while ((service = (service_t *) zhashx_first (self->services))) {
        broker_link_t *link;
        while ((link = broker_list_first (&service->queue))) {
            broker_list_remove (&service->queue, link);
            broker_request_t *request = S_REQUEST (link);
            s_request_forget (self, &request);
        }
        s_service_release_if_unused (self, service);
    }
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->services);
    free (self->slots);
    free (self);
    *self_p = NULL;
}
