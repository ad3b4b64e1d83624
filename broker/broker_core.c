//  broker_core.c - Majordomo routing as a plain state machine
//
//  The object itself: its making and unmaking, the classification of each
//  message read (client or worker, valid or not) and the tick. The rules
//  live in the files broker_core_state.h lists.

#include "broker_core_state.h"

void
broker_config_defaults (broker_config_t *config)
{
    assert (config);
    config->heartbeat_ms = BROKER_DEFAULT_HEARTBEAT_MS;
    config->liveness = BROKER_DEFAULT_LIVENESS;
    config->queue_timeout_ms = BROKER_DEFAULT_QUEUE_TIMEOUT_MS;
    config->max_queued = BROKER_DEFAULT_MAX_QUEUED;
    config->max_services = BROKER_DEFAULT_MAX_SERVICES;
    config->max_redispatch = BROKER_DEFAULT_MAX_REDISPATCH;
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

broker_core_t *
broker_core_new (const broker_config_t *config, int64_t now_us)
{
    assert (config);
    assert (config->heartbeat_ms > 0 && config->liveness > 0);
    assert (config->queue_timeout_ms > 0);
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
    self->tokens = broker_tokens_new ();
    self->notes = broker_notes_new (now_us);
    return self;
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
        broker_worker_delete (self, worker, "shutdown", 0, discard);
    broker_outbox_destroy (&discard);
    service_t *service;
    while ((service = (service_t *) zhashx_first (self->services))) {
        broker_link_t *link;
        while ((link = broker_list_first (&service->queue))) {
            broker_list_remove (&service->queue, link);
            broker_request_t *request = S_REQUEST (link);
            broker_requests_forget (self, &request);
        }
        broker_service_release_if_unused (self, service);
    }
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->services);
    broker_tokens_destroy (&self->tokens);
    broker_notes_destroy (&self->notes);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Input

//  What the parser reads: the frames after the routing id.
static cmq_mdp_status_t
s_parse (broker_input_t *input)
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

//  A client message that is invalid: counted, logged (summarised) and
//  dropped. A client is never sent a worker command (§3).
static void
s_client_invalid (broker_core_t *self, broker_peer_t identity,
                  const char *reason)
{
    self->counters.invalid++;
    broker_notes_add (self->notes, BROKER_NOTE_CLIENT_INVALID, reason,
                      identity.data, identity.size);
}

void
broker_core_on_frames (broker_core_t *self, broker_message_t *message,
                       int64_t now_us, broker_outbox_t *outbox)
{
    assert (self && message && outbox);
    //  A ROUTER's routing ids are 1..BROKER_PEER_MAX_BYTES bytes; anything
    //  else is not from a peer and cannot be answered.
    if (message->count == 0)
        return;
    broker_peer_t peer = broker_peer_of_msg (&message->frames[0]);
    if (peer.size == 0 || peer.size > BROKER_PEER_MAX_BYTES)
        return;
    broker_input_t input = { message, { 0 } };
    cmq_mdp_status_t status = s_parse (&input);
    if (cmq_log_enabled (CMQ_LOG_DEBUG))
        broker_trace_input (&input, status);
    //  A message with the client header is a client's, valid or not: it
    //  is never answered with a worker command. Anything else that is
    //  invalid (a worker's, or an unknown header, which §3 lists as
    //  invalid traffic) gets DISCONNECT.
    bool is_client = input.layout.kind == CMQ_MDP_FROM_CLIENT;
    const char *invalid = message->is_too_long
                            ? "more frames than the broker accepts"
                          : status != CMQ_MDP_OK ? cmq_mdp_status_str (status)
                                                 : NULL;
    //  peer points into frames[0], which a client request moves into the
    //  request it makes: nothing below uses peer after that.
    if (invalid && is_client)
        s_client_invalid (self, peer, invalid);
    else if (invalid)
        broker_core_refuse (self, peer, broker_worker_lookup (self, peer),
                            invalid, now_us, outbox);
    else if (is_client)
        broker_requests_on_client (self, &input, now_us, outbox);
    else
        broker_workers_on_message (self, peer, &input, now_us, outbox);
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
//  Time and the rest of the API

void
broker_core_on_tick (broker_core_t *self, int64_t now_us,
                     broker_outbox_t *outbox)
{
    assert (self && outbox);
    broker_workers_on_tick (self, now_us, outbox);
    broker_requests_expire (self, now_us);
    broker_notes_write (self->notes, now_us);
}

void
broker_core_disconnect_all (broker_core_t *self, broker_outbox_t *outbox)
{
    assert (self && outbox);
    for (broker_link_t *link = broker_list_first (&self->by_contact); link;
         link = broker_list_next (&self->by_contact, link))
        broker_outbox_add_command (outbox, S_CONTACT_WORKER (link)->identity,
                                   CMQ_MDPW_DISCONNECT);
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
