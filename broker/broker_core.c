//  broker_core.c - Majordomo routing as a plain state machine
//
//  Workers live in three places at once: a hash by routing id (lookup per
//  message), a list ordered by last contact (expiry pops from the head)
//  and a list ordered by last send (heartbeats pop from the head). Each
//  service has a FIFO of queued requests and a ready-queue of workers with
//  free credit. Every per-message step is O(1) but the REPLY match, which
//  scans the worker's own in-flight requests (at most its credit).
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
    broker_list_t queue;     //  broker_request_t waiting, oldest first
    broker_list_t ready;     //  worker_t with free credit, front first
    size_t workers;          //  registered workers of this service
    uint64_t requests;       //  accepted since the service appeared
    service_stats_t *stats;  //  service times, made on first reply
};

struct _worker_t {
    broker_peer_t identity;  //  routing id (in id[]); the hash key
    service_t *service;
    int credit;                  //  requests it accepts at once
    broker_list_t inflight;      //  broker_request_t sent to it, oldest first
    broker_link_t ready_link;    //  in service->ready while it has credit
    broker_link_t contact_link;  //  in core->by_contact
    broker_link_t sent_link;     //  in core->by_sent
    int64_t heard_us;            //  last message from it
    int64_t sent_us;             //  last message to it
    byte id[];                   //  identity.size bytes
};

//  The worker or request a list link belongs to; NULL for NULL.
#define S_READY_WORKER(at)   BROKER_LIST_ITEM (at, worker_t, ready_link)
#define S_CONTACT_WORKER(at) BROKER_LIST_ITEM (at, worker_t, contact_link)
#define S_SENT_WORKER(at)    BROKER_LIST_ITEM (at, worker_t, sent_link)
#define S_REQUEST(at)        BROKER_LIST_ITEM (at, broker_request_t, link)

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
    return self;
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
//  Services

static service_t *
s_service_require (broker_core_t *self, const char *name)
{
    service_t *service = (service_t *) zhashx_lookup (self->services, name);
    if (service)
        return service;
    if (zhashx_size (self->services) >= (size_t) self->config.max_services)
        return NULL;
    service = (service_t *) zmalloc (sizeof (*service));
    service->name = strdup (name);
    broker_list_init (&service->queue);
    broker_list_init (&service->ready);
    zhashx_insert (self->services, name, service);
    cmq_log_debug ("service created service=%s", name);
    return service;
}

//  A service lives while it has workers or queued requests (§3).
static void
s_service_release_if_unused (broker_core_t *self, service_t *service)
{
    if (service->workers > 0 || broker_list_size (&service->queue) > 0)
        return;
    cmq_log_debug ("service removed service=%s", service->name);
    zhashx_delete (self->services, service->name);
    service_stats_destroy (&service->stats);
    free (service->name);
    free (service);
}

static void
s_drop_request (broker_request_t **request_p, const char *reason,
                uint64_t *counter)
{
    broker_request_t *request = *request_p;
    service_t *service = (service_t *) request->service;
    cmq_log_warning ("request dropped reason=%s service=%s body_bytes=%zu",
                     reason, service->name, broker_request_body_size (request));
    (*counter)++;
    broker_request_unref (request_p);
}

//  Hands a request to the worker at the front of the ready-queue; the
//  worker goes to the back if it still has credit (§3).
static void
s_worker_take (broker_core_t *self, worker_t *worker, broker_request_t *request,
               int64_t now_us, broker_outbox_t *outbox)
{
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

//  Matches queued requests with ready workers, oldest request first.
static void
s_service_dispatch (broker_core_t *self, service_t *service, int64_t now_us,
                    broker_outbox_t *outbox)
{
    broker_link_t *link;
    while (broker_list_size (&service->ready) &&
           (link = broker_list_first (&service->queue))) {
        broker_list_remove (&service->queue, link);
        worker_t *worker = S_READY_WORKER (broker_list_first (&service->ready));
        s_worker_take (self, worker, S_REQUEST (link), now_us, outbox);
    }
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
    service->workers++;
    return worker;
}

//  Forgets a worker. Its requests in flight go back to the front of their
//  queue, in their order, unless sent too often already (§5).
static void
s_worker_delete (broker_core_t *self, worker_t *worker, const char *reason,
                 int64_t now_us, broker_outbox_t *outbox)
{
    service_t *service = worker->service;
    char hex[S_HEX_BYTES];
    cmq_log_info ("worker removed worker=%s service=%s reason=%s inflight=%zu",
                  s_peer_hex (worker->identity, hex), service->name, reason,
                  broker_list_size (&worker->inflight));
    broker_link_t *link;
    while ((link = broker_list_last (&worker->inflight))) {
        broker_list_remove (&worker->inflight, link);
        broker_request_t *request = S_REQUEST (link);
        if (request->redispatches >= self->config.max_redispatch) {
            s_drop_request (&request, "redispatch_limit",
                            &self->counters.dropped_redispatch_limit);
            continue;
        }
        request->redispatches++;
        self->counters.redispatched++;
        broker_list_add_start (&service->queue, &request->link);
    }
    if (broker_link_is_listed (&worker->ready_link))
        broker_list_remove (&service->ready, &worker->ready_link);
    broker_list_remove (&self->by_contact, &worker->contact_link);
    broker_list_remove (&self->by_sent, &worker->sent_link);
    zhashx_delete (self->workers, &worker->identity);
    service->workers--;
    free (worker);
    s_service_dispatch (self, service, now_us, outbox);
    s_service_release_if_unused (self, service);
}

//  A peer broke the protocol: log, DISCONNECT, forget (§3).
static void
s_refuse (broker_core_t *self, broker_peer_t identity, worker_t *worker,
          const char *reason, int64_t now_us, broker_outbox_t *outbox)
{
    self->counters.invalid++;
    char hex[S_HEX_BYTES];
    cmq_log_warning ("invalid message peer=%s reason=\"%s\"",
                     s_peer_hex (identity, hex), reason);
    s_send_disconnect (identity, outbox);
    if (worker)
        s_worker_delete (self, worker, "invalid", now_us, outbox);
}

//  ---------------------------------------------------------------------
//  Worker messages

//  Copies a service-name frame into a C string; names were checked to be
//  1..255 bytes without NUL by the parser.
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
    service_t *service = s_service_require (self, name);
    if (!service) {
        s_refuse (self, identity, NULL, "too many services", now_us, outbox);
        return;
    }
    worker_t *worker =
      s_worker_new (self, identity, service, input->layout.credit, now_us);
    char hex[S_HEX_BYTES];
    cmq_log_info ("worker ready worker=%s service=%s credit=%d",
                  s_peer_hex (worker->identity, hex), name, worker->credit);
    s_service_dispatch (self, service, now_us, outbox);
}

//  Finds the request in flight on this worker for this client: the oldest,
//  since a client may have several in flight on one worker.
static broker_request_t *
s_inflight_find (worker_t *worker, broker_peer_t client)
{
    for (broker_link_t *link = broker_list_first (&worker->inflight); link;
         link = broker_list_next (&worker->inflight, link))
        if (broker_request_is_from (S_REQUEST (link), client))
            return S_REQUEST (link);
    return NULL;
}

//  [wid][""][MDPW01][REPLY][client][""][body...] goes to the client as
//  [client][""][MDPC01][service][body...], the body frames moved.
static void
s_on_reply (broker_core_t *self, worker_t *worker, const s_input_t *input,
            int64_t now_us, broker_outbox_t *outbox)
{
    broker_peer_t client =
      broker_peer_of_msg (s_frame (input, input->layout.address));
    broker_request_t *request = s_inflight_find (worker, client);
    if (!request) {
        s_refuse (self, worker->identity, worker, "REPLY without a request",
                  now_us, outbox);
        return;
    }
    service_t *service = worker->service;
    broker_list_remove (&worker->inflight, &request->link);
    if (!service->stats)
        service->stats = service_stats_new ();
    service_stats_record (service->stats, now_us,
                          now_us - request->dispatched_us);
    broker_request_unref (&request);

    broker_outbox_add_reply (outbox, client, service->name,
                             s_frame (input, input->layout.address + 2),
                             input->layout.body_frames);
    self->counters.replies++;

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
    msgpack_pack_map (packer, 8);
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
        char name[CMQ_MAX_SERVICE_NAME_BYTES + 1] = "";
        size_t size = zmq_msg_size (body);
        if (size <= CMQ_MAX_SERVICE_NAME_BYTES)
            s_frame_to_name (body, name);
        service_t *known =
          size <= CMQ_MAX_SERVICE_NAME_BYTES
            ? (service_t *) zhashx_lookup (self->services, name)
            : NULL;
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
    service_t *service = s_service_require (self, name);
    if (!service) {
        cmq_log_warning ("request dropped reason=no_service service=%s", name);
        self->counters.dropped_no_service++;
        return;
    }
    bool can_wait =
      broker_list_size (&service->queue) < (size_t) self->config.max_queued;
    if (!can_wait && broker_list_size (&service->ready) == 0) {
        cmq_log_warning ("request dropped reason=queue_full service=%s", name);
        self->counters.dropped_queue_full++;
        return;
    }
    broker_request_t *request = broker_request_new (
      client, body, input->layout.body_frames, service, now_us);
    self->counters.requests++;
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
    char service[CMQ_MAX_SERVICE_NAME_BYTES + 1] = "";
    if (status == CMQ_MDP_OK && input->layout.service >= 0)
        s_frame_to_name (s_frame (input, input->layout.service), service);
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
    //  peer points into frames[0], which a client request moves into the
    //  request it makes: nothing below uses peer after that.
    if (message->is_too_long)
        s_refuse (self, peer, s_worker_lookup (self, peer),
                  "more frames than the broker accepts", now_us, outbox);
    else if (status != CMQ_MDP_OK)
        s_refuse (self, peer, s_worker_lookup (self, peer),
                  cmq_mdp_status_str (status), now_us, outbox);
    else if (input.layout.kind == CMQ_MDP_FROM_CLIENT)
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

//  Queues are in arrival order (re-dispatched requests, at the front,
//  arrived earlier still), so expired requests are at the head.
static void
s_expire_requests (broker_core_t *self, int64_t now_us)
{
    zlistx_t *idle = NULL;
    for (service_t *service = (service_t *) zhashx_first (self->services);
         service; service = (service_t *) zhashx_next (self->services)) {
        broker_request_t *request;
        while ((request = S_REQUEST (broker_list_first (&service->queue))) &&
               now_us - request->arrived_us >= self->queue_timeout_us) {
            broker_list_remove (&service->queue, &request->link);
            s_drop_request (&request, "expired",
                            &self->counters.dropped_expired);
        }
        if (service->workers == 0 && broker_list_size (&service->queue) == 0) {
            if (!idle)
                idle = zlistx_new ();
            zlistx_add_end (idle, service);
        }
    }
    //  Not while iterating the hash.
    if (idle) {
        for (service_t *service = (service_t *) zlistx_first (idle); service;
             service = (service_t *) zlistx_next (idle))
            s_service_release_if_unused (self, service);
        zlistx_destroy (&idle);
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
            broker_request_unref (&request);
        }
        s_service_release_if_unused (self, service);
    }
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->services);
    free (self);
    *self_p = NULL;
}
