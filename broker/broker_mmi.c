//  broker_mmi.c - MMI answers (RFC 8), made by the routing core
//
//  mmi.service answers "200" or "404", mmi.services and mmi.stats a
//  msgpack document (contract §3 lists their fields), any other mmi.* name
//  "501". Listings are sorted by name so that they are stable.

#include <msgpack.h>

#include "broker_core_state.h"

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
s_pack_service (msgpack_packer *packer, service_t *service, bool with_times,
                int64_t now_us)
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
        s_pack_service (packer,
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

//  "200" if a service of that name has a worker, else "404". The whole
//  frame counts, byte for byte (§3): a NUL inside ("cart\0x") names no
//  service, since no service name holds one.
static const char *
s_service_status (broker_core_t *self, zmq_msg_t *body)
{
    size_t size = zmq_msg_size (body);
    const byte *data = (const byte *) zmq_msg_data (body);
    service_t *known = NULL;
    if (size > 0 && size <= CMQ_MAX_SERVICE_NAME_BYTES &&
        !memchr (data, 0, size)) {
        char name[CMQ_MAX_SERVICE_NAME_BYTES + 1];
        broker_frame_to_name (body, name);
        known = (service_t *) zhashx_lookup (self->services, name);
    }
    return known && known->workers ? "200" : "404";
}

void
broker_mmi_answer (broker_core_t *self, const char *service, zmq_msg_t *body,
                   broker_peer_t client, int64_t now_us,
                   broker_outbox_t *outbox)
{
    if (streq (service, "mmi.service")) {
        broker_outbox_add_reply_bytes (outbox, client, service,
                                       s_service_status (self, body), 3);
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
