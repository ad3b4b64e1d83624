//  prometheus.c - brokers' mmi.stats maps in the Prometheus text format
//
//  A table names every family: where its value sits in the stats map, its
//  type and help. Writing goes family by family over all brokers, because
//  the format wants a family's samples together under its one TYPE line.

#include "prometheus.h"

#include "cartmq/msgpack_scan.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

//  Where a family's samples come from.
typedef enum {
    S_FROM_UP,       //  1 if the broker answered, else 0
    S_FROM_TOTAL,    //  one number at the top of the map
    S_FROM_REASONS,  //  the "dropped" map: one sample per reason
    S_FROM_SERVICE   //  one number in each "services" entry
} s_from_t;

typedef struct {
    const char *name;  //  the family's name
    const char *type;  //  counter or gauge
    s_from_t from;
    const char *key;  //  the map key, for TOTAL and SERVICE
    double scale;     //  value x scale: 1e-6 turns microseconds to seconds
    const char *help;
} s_family_t;

static const s_family_t s_families[] = {
    { "cartmq_up", "gauge", S_FROM_UP, NULL, 1,
      "1 if the broker answered mmi.stats, 0 if not" },
    { "cartmq_uptime_seconds", "gauge", S_FROM_TOTAL, "uptime_s", 1,
      "Seconds since the broker started" },
    { "cartmq_requests_total", "counter", S_FROM_TOTAL, "requests", 1,
      "Client requests read for a service, those dropped on arrival "
      "included" },
    { "cartmq_replies_total", "counter", S_FROM_TOTAL, "replies", 1,
      "Replies delivered to clients" },
    { "cartmq_redispatched_total", "counter", S_FROM_TOTAL, "redispatched", 1,
      "Requests handed to another worker after theirs died" },
    { "cartmq_dropped_total", "counter", S_FROM_REASONS, "dropped", 1,
      "Requests dropped, by reason" },
    { "cartmq_invalid_total", "counter", S_FROM_TOTAL, "invalid", 1,
      "Peer messages refused as invalid" },
    { "cartmq_workers", "gauge", S_FROM_TOTAL, "workers", 1,
      "Workers connected, all services" },
    { "cartmq_queued_requests", "gauge", S_FROM_TOTAL, "queued", 1,
      "Requests waiting for a worker, all services" },
    { "cartmq_in_flight_requests", "gauge", S_FROM_TOTAL, "in_flight", 1,
      "Requests handed to workers and not answered yet" },
    { "cartmq_service_workers", "gauge", S_FROM_SERVICE, "workers", 1,
      "Workers of the service" },
    { "cartmq_service_idle_workers", "gauge", S_FROM_SERVICE, "idle", 1,
      "Workers of the service with free credit" },
    { "cartmq_service_queued_requests", "gauge", S_FROM_SERVICE, "queued", 1,
      "Requests waiting for a worker of the service" },
    { "cartmq_service_requests_total", "counter", S_FROM_SERVICE, "requests", 1,
      "Requests accepted for the service since it appeared" },
    { "cartmq_service_time_mean_seconds", "gauge", S_FROM_SERVICE, "mean_us",
      1e-6,
      "Mean time from handing a request to a worker to its reply, "
      "last minute" },
    { "cartmq_service_time_p99_seconds", "gauge", S_FROM_SERVICE, "p99_us",
      1e-6, "99th percentile of that time, last minute" },
};

#define S_FAMILY_COUNT (sizeof (s_families) / sizeof (s_families[0]))

void
prometheus_write_label (FILE *out, const char *value, size_t size)
{
    for (size_t index = 0; index < size; index++) {
        unsigned char byte = (unsigned char) value[index];
        if (byte == '\\' || byte == '"')
            fprintf (out, "\\%c", byte);
        else if (byte >= 0x20 && byte < 0x7f)
            fputc (byte, out);
        else
            fprintf (out, "\\\\x%02x", byte);
    }
}

//  A number of the map as a double; false when it is not a number.
static bool
s_number (const msgpack_object *object, double *value)
{
    if (!object)
        return false;
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *value = (double) object->via.u64;
    else if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *value = (double) object->via.i64;
    else if (object->type == MSGPACK_OBJECT_FLOAT32 ||
             object->type == MSGPACK_OBJECT_FLOAT64)
        *value = object->via.f64;
    else
        return false;
    return true;
}

//  One sample line: name{broker="...",[label="..."]} value. label_name
//  NULL: no second label.
static void
s_sample (FILE *out, const s_family_t *family, const char *broker,
          const char *label_name, const msgpack_object *label, double value)
{
    fprintf (out, "%s{broker=\"", family->name);
    prometheus_write_label (out, broker, strlen (broker));
    if (label_name) {
        fprintf (out, "\",%s=\"", label_name);
        if (label->type == MSGPACK_OBJECT_STR)
            prometheus_write_label (out, label->via.str.ptr,
                                    label->via.str.size);
    }
    fprintf (out, "\"} %.15g\n", value * family->scale);
}

static void
s_reasons (FILE *out, const s_family_t *family, const char *broker,
           const msgpack_object *stats)
{
    const msgpack_object *dropped = cmq_msgpack_map_get (stats, family->key);
    if (!dropped || dropped->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t index = 0; index < dropped->via.map.size; index++) {
        const msgpack_object_kv *pair = &dropped->via.map.ptr[index];
        double value;
        if (pair->key.type == MSGPACK_OBJECT_STR &&
            s_number (&pair->val, &value))
            s_sample (out, family, broker, "reason", &pair->key, value);
    }
}

static void
s_services (FILE *out, const s_family_t *family, const char *broker,
            const msgpack_object *stats)
{
    const msgpack_object *services = cmq_msgpack_map_get (stats, "services");
    if (!services || services->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t index = 0; index < services->via.array.size; index++) {
        const msgpack_object *entry = &services->via.array.ptr[index];
        const msgpack_object *name = cmq_msgpack_map_get (entry, "name");
        double value;
        if (name && name->type == MSGPACK_OBJECT_STR &&
            s_number (cmq_msgpack_map_get (entry, family->key), &value))
            s_sample (out, family, broker, "service", name, value);
    }
}

static void
s_family (FILE *out, const s_family_t *family,
          const prometheus_source_t *sources, size_t count)
{
    fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", family->name, family->help,
             family->name, family->type);
    for (size_t index = 0; index < count; index++) {
        const prometheus_source_t *source = &sources[index];
        const msgpack_object *stats = source->stats;
        double value;
        if (family->from == S_FROM_UP)
            s_sample (out, family, source->broker, NULL, NULL, stats ? 1 : 0);
        else if (!stats || stats->type != MSGPACK_OBJECT_MAP)
            continue;
        else if (family->from == S_FROM_TOTAL) {
            if (s_number (cmq_msgpack_map_get (stats, family->key), &value))
                s_sample (out, family, source->broker, NULL, NULL, value);
        } else if (family->from == S_FROM_REASONS)
            s_reasons (out, family, source->broker, stats);
        else
            s_services (out, family, source->broker, stats);
    }
}

int
prometheus_write (FILE *out, const prometheus_source_t *sources, size_t count)
{
    assert (out);
    assert (sources || count == 0);
    for (size_t index = 0; index < S_FAMILY_COUNT; index++)
        s_family (out, &s_families[index], sources, count);
    return ferror (out) ? -1 : 0;
}
