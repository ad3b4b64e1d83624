//  broker_workers.c - workers of the routing core, and their messages
//
//  READY registers a worker, REPLY frees one credit and goes to the
//  request's client, HEARTBEAT is contact, DISCONNECT or silence for
//  liveness intervals forgets it; anything else from a worker is invalid
//  traffic and gets DISCONNECT (§3). A forgotten worker's requests go back
//  to their queue in order of first arrival, at most max_redispatch times
//  each (§5).

#include "broker_core_state.h"

worker_t *
broker_worker_lookup (broker_core_t *self, broker_peer_t identity)
{
    return (worker_t *) zhashx_lookup (self->workers, &identity);
}

//  Every send to a worker counts as our heartbeat to it.
void
broker_worker_sent (broker_core_t *self, worker_t *worker, int64_t now_us)
{
    worker->sent_us = now_us;
    broker_list_move_end (&self->by_sent, &worker->sent_link);
}

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

//  Puts requests (in a list sorted by first arrival) back into their
//  service's queue in order of first arrival (§5). One walk from the
//  front: they are usually the oldest, so it is short.
static void
s_requeue (service_t *service, broker_list_t *sorted)
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

//  Takes a dead worker's requests back: dropped if sent too often already
//  or past their timeout (§5), else requeued by first arrival.
static void
s_take_back (broker_core_t *self, worker_t *worker, int64_t now_us)
{
    broker_list_t sorted;
    broker_list_init (&sorted);
    broker_link_t *link;
    while ((link = broker_list_first (&worker->inflight))) {
        broker_list_remove (&worker->inflight, link);
        broker_request_t *request = S_REQUEST (link);
        request->worker = NULL;
        if (broker_requests_is_expired (self, request, now_us))
            broker_requests_drop (self, &request, "expired",
                                  &self->counters.dropped_expired);
        else if (request->redispatches >= self->config.max_redispatch)
            broker_requests_drop (self, &request, "redispatch_limit",
                                  &self->counters.dropped_redispatch_limit);
        else {
            request->redispatches++;
            self->counters.redispatched++;
            s_sorted_add (&sorted, request);
        }
    }
    s_requeue (worker->service, &sorted);
}

void
broker_worker_delete (broker_core_t *self, worker_t *worker, const char *reason,
                      int64_t now_us, broker_outbox_t *outbox)
{
    service_t *service = worker->service;
    char hex[BROKER_PEER_HEX_BYTES];
    char name[BROKER_NAME_LOG_BYTES];
    cmq_log_info ("worker removed worker=%s service=%s reason=%s inflight=%zu",
                  broker_peer_hex (worker->identity, hex),
                  broker_name_log (service->name, name), reason,
                  broker_list_size (&worker->inflight));
    s_take_back (self, worker, now_us);
    if (broker_link_is_listed (&worker->ready_link))
        broker_list_remove (&service->ready, &worker->ready_link);
    broker_list_remove (&self->by_contact, &worker->contact_link);
    broker_list_remove (&self->by_sent, &worker->sent_link);
    zhashx_delete (self->workers, &worker->identity);
    free (worker);
    if (--service->workers == 0)
        broker_list_add_end (&self->workerless, &service->workerless_link);
    broker_service_dispatch (self, service, now_us, outbox);
    broker_service_release_if_unused (self, service);
}

//  A peer broke the protocol: count, log (summarised), DISCONNECT, forget
//  (§3). Never for a client's message.
void
broker_core_refuse (broker_core_t *self, broker_peer_t identity,
                    worker_t *worker, const char *reason, int64_t now_us,
                    broker_outbox_t *outbox)
{
    self->counters.invalid++;
    broker_notes_add (self->notes, BROKER_NOTE_REFUSED, reason, identity.data,
                      identity.size);
    broker_outbox_add_command (outbox, identity, CMQ_MDPW_DISCONNECT);
    if (worker)
        broker_worker_delete (self, worker, "invalid", now_us, outbox);
}

static void
s_on_ready (broker_core_t *self, broker_peer_t identity,
            const broker_input_t *input, int64_t now_us,
            broker_outbox_t *outbox)
{
    char name[CMQ_MAX_SERVICE_NAME_BYTES + 1];
    broker_frame_to_name (broker_input_frame (input, input->layout.service),
                          name);
    //  RFC 8: mmi.* names are the broker's own.
    if (strncmp (name, "mmi.", 4) == 0) {
        broker_core_refuse (self, identity, NULL, "READY for an mmi.* service",
                            now_us, outbox);
        return;
    }
    service_t *service = broker_service_require (self, name, true);
    if (!service) {
        broker_core_refuse (self, identity, NULL, "too many services", now_us,
                            outbox);
        return;
    }
    worker_t *worker =
      s_worker_new (self, identity, service, input->layout.credit, now_us);
    char hex[BROKER_PEER_HEX_BYTES];
    char escaped[BROKER_NAME_LOG_BYTES];
    cmq_log_info ("worker ready worker=%s service=%s credit=%d",
                  broker_peer_hex (worker->identity, hex),
                  broker_name_log (name, escaped), worker->credit);
    broker_service_dispatch (self, service, now_us, outbox);
}

//  [wid][""][MDPW01][REPLY][token][""][body...] goes to the client of the
//  request the token names as [client][""][MDPC01][service][body...], the
//  body frames moved.
static void
s_on_reply (broker_core_t *self, worker_t *worker, const broker_input_t *input,
            int64_t now_us, broker_outbox_t *outbox)
{
    zmq_msg_t *address = broker_input_frame (input, input->layout.address);
    broker_request_t *request =
      broker_tokens_find (self->tokens, (const byte *) zmq_msg_data (address),
                          zmq_msg_size (address));
    if (!request || request->worker != worker) {
        broker_core_refuse (self, worker->identity, worker,
                            "REPLY names no request in flight on this worker",
                            now_us, outbox);
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
    broker_outbox_add_reply (
      outbox, client, service->name,
      broker_input_frame (input, input->layout.address + 2),
      input->layout.body_frames);
    self->counters.replies++;
    broker_requests_forget (self, &request);

    //  Credit is free again: rejoin the back of the ready-queue (§3).
    if (!broker_link_is_listed (&worker->ready_link))
        broker_list_add_end (&service->ready, &worker->ready_link);
    broker_service_dispatch (self, service, now_us, outbox);
}

//  A worker command from a peer that is not a registered worker.
static void
s_on_stranger (broker_core_t *self, broker_peer_t identity,
               const broker_input_t *input, int64_t now_us,
               broker_outbox_t *outbox)
{
    switch (input->layout.command) {
        case CMQ_MDPW_READY:
            s_on_ready (self, identity, input, now_us, outbox);
            break;
        case CMQ_MDPW_HEARTBEAT:
            //  A worker from before a broker restart: make it register
            //  again at once (§2).
            cmq_log_debug ("heartbeat from unknown worker: DISCONNECT");
            broker_outbox_add_command (outbox, identity, CMQ_MDPW_DISCONNECT);
            break;
        case CMQ_MDPW_DISCONNECT:
            break;
        default:
            broker_core_refuse (self, identity, NULL,
                                "worker command from an unregistered peer",
                                now_us, outbox);
    }
}

void
broker_workers_on_message (broker_core_t *self, broker_peer_t identity,
                           const broker_input_t *input, int64_t now_us,
                           broker_outbox_t *outbox)
{
    worker_t *worker = broker_worker_lookup (self, identity);
    if (!worker) {
        s_on_stranger (self, identity, input, now_us, outbox);
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
            broker_worker_delete (self, worker, "disconnect", now_us, outbox);
            break;
        case CMQ_MDPW_READY:
            broker_core_refuse (self, identity, worker,
                                "READY from a registered worker", now_us,
                                outbox);
            break;
        default:
            broker_core_refuse (self, identity, worker, "REQUEST from a worker",
                                now_us, outbox);
    }
}

//  Forgets workers silent for liveness intervals and sends due
//  heartbeats: both lists pop from the head, so the cost is what is due.
void
broker_workers_on_tick (broker_core_t *self, int64_t now_us,
                        broker_outbox_t *outbox)
{
    worker_t *worker;
    while (
      (worker = S_CONTACT_WORKER (broker_list_first (&self->by_contact))) &&
      now_us - worker->heard_us >= self->expiry_us)
        broker_worker_delete (self, worker, "expired", now_us, outbox);
    while ((worker = S_SENT_WORKER (broker_list_first (&self->by_sent))) &&
           now_us - worker->sent_us >= self->heartbeat_us) {
        broker_outbox_add_command (outbox, worker->identity,
                                   CMQ_MDPW_HEARTBEAT);
        broker_worker_sent (self, worker, now_us);
    }
}
