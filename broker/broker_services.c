//  broker_services.c - services of the routing core, and dispatch
//
//  A service lives while it has workers or queued requests (§3). Dispatch
//  is the one path by which a request reaches a worker: a new request
//  joins the back of its queue and is taken at once if a worker is ready
//  (a service with a ready worker has an empty queue), and every freed
//  credit takes from the front.

#include "broker_core_state.h"

void
broker_service_release_if_unused (broker_core_t *self, service_t *service)
{
    if (service->workers > 0 || broker_list_size (&service->queue) > 0)
        return;
    if (cmq_log_enabled (CMQ_LOG_DEBUG)) {
        char name[BROKER_NAME_LOG_BYTES];
        cmq_log_debug ("service removed service=%s",
                       broker_name_log (service->name, name));
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
        char name[BROKER_NAME_LOG_BYTES];
        cmq_log_debug ("service evicted for a worker's service service=%s "
                       "queued=%zu",
                       broker_name_log (service->name, name),
                       broker_list_size (&service->queue));
    }
    broker_link_t *link;
    while ((link = broker_list_first (&service->queue))) {
        broker_list_remove (&service->queue, link);
        broker_request_t *request = S_REQUEST (link);
        broker_requests_drop (self, &request, "no_service",
                              &self->counters.dropped_no_service);
    }
    broker_service_release_if_unused (self, service);
    return true;
}

//  The service of that name, made if need be. At --max-services a worker
//  (for_worker) may evict a service that has none; a client may not.
service_t *
broker_service_require (broker_core_t *self, const char *name, bool for_worker)
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
        char escaped[BROKER_NAME_LOG_BYTES];
        cmq_log_debug ("service created service=%s",
                       broker_name_log (name, escaped));
    }
    return service;
}

//  Hands a request to the worker at the front of the ready-queue; the
//  worker goes to the back if it still has credit (§3).
static void
s_worker_take (broker_core_t *self, worker_t *worker, broker_request_t *request,
               int64_t now_us, broker_outbox_t *outbox)
{
    broker_tokens_assign (self->tokens, request);
    request->worker = worker;
    broker_outbox_add_request (outbox, worker->identity, request);
    request->dispatched_us = now_us;
    broker_list_add_end (&worker->inflight, &request->link);
    broker_worker_sent (self, worker, now_us);

    service_t *service = worker->service;
    if (broker_list_size (&worker->inflight) < (size_t) worker->credit)
        broker_list_move_end (&service->ready, &worker->ready_link);
    else
        broker_list_remove (&service->ready, &worker->ready_link);
}

//  Matches queued requests with ready workers, oldest request first. A
//  request past its timeout is dropped, never handed out (§5), even
//  between two ticks.
void
broker_service_dispatch (broker_core_t *self, service_t *service,
                         int64_t now_us, broker_outbox_t *outbox)
{
    broker_link_t *link;
    while (broker_list_size (&service->ready) &&
           (link = broker_list_first (&service->queue))) {
        broker_list_remove (&service->queue, link);
        broker_request_t *request = S_REQUEST (link);
        if (broker_requests_is_expired (self, request, now_us)) {
            broker_requests_drop (self, &request, "expired",
                                  &self->counters.dropped_expired);
            continue;
        }
        worker_t *worker = S_READY_WORKER (broker_list_first (&service->ready));
        s_worker_take (self, worker, request, now_us, outbox);
    }
}
