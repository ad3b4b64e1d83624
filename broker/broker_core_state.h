//  broker_core_state.h - the routing core's state, shared by its files
//
//  The core (broker_core.h) is one object written as several files, one
//  concern each: broker_core.c (the object, input and time),
//  broker_services.c (services and dispatch), broker_workers.c (workers
//  and their messages), broker_requests.c (client requests and their
//  timeouts), broker_mmi.c (MMI answers) and broker_trace.c (--verbose).
//  This header is what they share; nothing outside the core includes it.
//
//  Workers live in three places at once: a hash by routing id (lookup per
//  message), a list ordered by last contact (expiry pops from the head)
//  and a list ordered by last send (heartbeats pop from the head). Each
//  service has a queue of requests in order of first arrival and a
//  ready-queue of workers with free credit. Every per-message step is
//  O(1): a REPLY names its request by a token (broker_tokens.h).
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

#ifndef BROKER_CORE_STATE_H
#define BROKER_CORE_STATE_H

#include "broker_core.h"
#include "broker_list.h"
#include "broker_notes.h"
#include "broker_tokens.h"
#include "cartmq/log.h"
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
    broker_tokens_t *tokens;
    broker_notes_t *notes;
    broker_counters_t counters;
};

//  The message being handled and what the parser found in it. Layout
//  indexes count from the frame after the routing id.
typedef struct {
    broker_message_t *message;
    cmq_mdp_layout_t layout;
} broker_input_t;

static inline zmq_msg_t *
broker_input_frame (const broker_input_t *input, int index)
{
    assert (index >= 0 && (size_t) index + 1 < input->message->count);
    return &input->message->frames[1 + index];
}

//  Copies a service-name frame into a C string (CMQ_MAX_SERVICE_NAME_BYTES
//  + 1); the parser checked names to be 1..255 bytes without NUL.
static inline void
broker_frame_to_name (zmq_msg_t *frame, char *name)
{
    size_t size = zmq_msg_size (frame);
    memcpy (name, zmq_msg_data (frame), size);
    name[size] = 0;
}

//  A service name as a log may show it: escaped (§3), so that no peer can
//  forge or split a line.
#define BROKER_NAME_LOG_BYTES CMQ_LOG_ESCAPED_BYTES (CMQ_MAX_SERVICE_NAME_BYTES)

static inline const char *
broker_name_log (const char *name, char *buffer)
{
    return cmq_log_escape (name, strlen (name), buffer, BROKER_NAME_LOG_BYTES);
}

//  broker_services.c
service_t *broker_service_require (broker_core_t *self, const char *name,
                                   bool for_worker);
void broker_service_release_if_unused (broker_core_t *self, service_t *service);
void broker_service_dispatch (broker_core_t *self, service_t *service,
                              int64_t now_us, broker_outbox_t *outbox);

//  broker_workers.c
worker_t *broker_worker_lookup (broker_core_t *self, broker_peer_t identity);
void broker_worker_delete (broker_core_t *self, worker_t *worker,
                           const char *reason, int64_t now_us,
                           broker_outbox_t *outbox);
void broker_worker_sent (broker_core_t *self, worker_t *worker, int64_t now_us);
void broker_workers_on_message (broker_core_t *self, broker_peer_t identity,
                                const broker_input_t *input, int64_t now_us,
                                broker_outbox_t *outbox);
void broker_workers_on_tick (broker_core_t *self, int64_t now_us,
                             broker_outbox_t *outbox);
void broker_core_refuse (broker_core_t *self, broker_peer_t identity,
                         worker_t *worker, const char *reason, int64_t now_us,
                         broker_outbox_t *outbox);

//  broker_requests.c
bool broker_requests_is_expired (broker_core_t *self, broker_request_t *request,
                                 int64_t now_us);
void broker_requests_forget (broker_core_t *self, broker_request_t **request_p);
void broker_requests_drop (broker_core_t *self, broker_request_t **request_p,
                           const char *reason, uint64_t *counter);
void broker_requests_on_client (broker_core_t *self,
                                const broker_input_t *input, int64_t now_us,
                                broker_outbox_t *outbox);
void broker_requests_expire (broker_core_t *self, int64_t now_us);

//  broker_mmi.c: answers an MMI request (service is "mmi.*") to the
//  client; body is the request's first body frame.
void broker_mmi_answer (broker_core_t *self, const char *service,
                        zmq_msg_t *body, broker_peer_t client, int64_t now_us,
                        broker_outbox_t *outbox);

//  broker_trace.c: --verbose, one line per message read.
void broker_trace_input (const broker_input_t *input, cmq_mdp_status_t status);

#endif
