//  broker_requests.c - client requests in the routing core, by arrival
//
//  A client request is counted, given to its service's queue and
//  dispatched (broker_services.c); one left waiting is packed so that it
//  does not pin libzmq's receive buffer. Every live request sits in the
//  core's list by arrival until its queue timeout passes; the tick pops
//  only what is due.

#include "broker_core_state.h"

bool
broker_requests_is_expired (broker_core_t *self, broker_request_t *request,
                            int64_t now_us)
{
    return now_us - request->arrived_us >= self->queue_timeout_us;
}

//  The core lets go of a request: its token, its place by arrival, and
//  the core's reference. It is in no queue or in-flight list by now.
void
broker_requests_forget (broker_core_t *self, broker_request_t **request_p)
{
    broker_request_t *request = *request_p;
    broker_tokens_release (self->tokens, request);
    if (broker_link_is_listed (&request->arrival_link))
        broker_list_remove (&self->by_arrival, &request->arrival_link);
    broker_request_unref (request_p);
}

void
broker_requests_drop (broker_core_t *self, broker_request_t **request_p,
                      const char *reason, uint64_t *counter)
{
    service_t *service = (service_t *) (*request_p)->service;
    broker_notes_add (self->notes, BROKER_NOTE_DROPPED, reason, service->name,
                      strlen (service->name));
    (*counter)++;
    broker_requests_forget (self, request_p);
}

//  A request for a service that is not mmi.* is counted in requests,
//  dropped at once or not (§3). The service, or NULL if it was dropped.
static service_t *
s_admit (broker_core_t *self, const char *name)
{
    self->counters.requests++;
    service_t *service = broker_service_require (self, name, false);
    if (!service) {
        broker_notes_add (self->notes, BROKER_NOTE_DROPPED, "no_service", name,
                          strlen (name));
        self->counters.dropped_no_service++;
        return NULL;
    }
    bool can_wait =
      broker_list_size (&service->queue) < (size_t) self->config.max_queued;
    if (!can_wait && broker_list_size (&service->ready) == 0) {
        broker_notes_add (self->notes, BROKER_NOTE_DROPPED, "queue_full", name,
                          strlen (name));
        self->counters.dropped_queue_full++;
        return NULL;
    }
    return service;
}

//  [client][""][MDPC01][service][body...]. What is not taken here (the
//  routing id and body, into a request) is closed by the message's reader.
void
broker_requests_on_client (broker_core_t *self, const broker_input_t *input,
                           int64_t now_us, broker_outbox_t *outbox)
{
    char name[CMQ_MAX_SERVICE_NAME_BYTES + 1];
    broker_frame_to_name (broker_input_frame (input, input->layout.service),
                          name);
    zmq_msg_t *client = &input->message->frames[0];
    zmq_msg_t *body = broker_input_frame (input, input->layout.service + 1);
    if (strncmp (name, "mmi.", 4) == 0) {
        broker_mmi_answer (self, name, body, broker_peer_of_msg (client),
                           now_us, outbox);
        return;
    }
    service_t *service = s_admit (self, name);
    if (!service)
        return;
    broker_request_t *request = broker_request_new (
      client, body, input->layout.body_frames, service, now_us);
    request->sequence = ++self->last_sequence;
    broker_list_add_end (&self->by_arrival, &request->arrival_link);
    service->requests++;
    broker_list_add_end (&service->queue, &request->link);
    broker_service_dispatch (self, service, now_us, outbox);
    //  Not taken: it waits (a fresh request is never past its timeout, so
    //  dispatch did not drop it).
    if (!request->worker)
        broker_request_pack (request);
}

//  Pops the requests whose timeout has come, wherever they sit (§5): the
//  cost is what is due, and nothing is allocated. One in flight only
//  leaves the list; its worker deleting it later drops it as expired.
void
broker_requests_expire (broker_core_t *self, int64_t now_us)
{
    broker_request_t *request;
    while ((request = S_ARRIVED (broker_list_first (&self->by_arrival))) &&
           broker_requests_is_expired (self, request, now_us)) {
        broker_list_remove (&self->by_arrival, &request->arrival_link);
        if (request->worker)
            continue;
        service_t *service = (service_t *) request->service;
        broker_list_remove (&service->queue, &request->link);
        broker_requests_drop (self, &request, "expired",
                              &self->counters.dropped_expired);
        broker_service_release_if_unused (self, service);
    }
}
