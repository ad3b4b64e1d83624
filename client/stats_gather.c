//  stats_gather.c - mmi.stats of several brokers at once, one deadline

#include "stats_gather.h"

#include "json_print.h"
#include "prometheus.h"

#include "cartmq/client.h"
#include "cartmq/endpoint_list.h"

#include <czmq.h>
#include <errno.h>

#define S_SERVICE "mmi.stats"

//  One broker: its client and the last answer.
typedef struct {
    char *endpoint;
    cmq_client_t *client;  //  one endpoint, used asynchronously
    bool is_waiting;       //  asked, no answer yet
    zmsg_t *reply;         //  the answer's body; unpacked points into it
    msgpack_unpacked unpacked;
    bool is_valid;  //  unpacked holds a map
} s_broker_t;

struct _stats_gather_t {
    s_broker_t *brokers;
    size_t count;
    int timeout_ms;
    char *curve_server;
    char *curve_cert;
    char errstr[CMQ_ERRSTR_SIZE];
};

static cmq_client_t *
s_client_new (stats_gather_t *self, const char *endpoint, char *error,
              size_t error_size)
{
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = endpoint;
    config.timeout_ms = self->timeout_ms;
    config.retries = 0;
    config.curve_server = self->curve_server;
    config.curve_cert = self->curve_cert;
    return cmq_client_new (&config, error, error_size);
}

static void
s_forget_answer (s_broker_t *broker)
{
    msgpack_unpacked_destroy (&broker->unpacked);
    msgpack_unpacked_init (&broker->unpacked);
    zmsg_destroy (&broker->reply);
    broker->is_valid = false;
}

stats_gather_t *
stats_gather_new (const cmq_client_config_t *config, char *error,
                  size_t error_size)
{
    assert (config);
    zlist_t *endpoints =
      cmq_endpoint_list_new (config->endpoint, config->endpoints,
                             config->endpoint_count, error, error_size);
    if (!endpoints)
        return NULL;
    stats_gather_t *self = (stats_gather_t *) zmalloc (sizeof (*self));
    self->timeout_ms =
      config->timeout_ms > 0 ? config->timeout_ms : CMQ_DEFAULT_TIMEOUT_MS;
    self->curve_server =
      config->curve_server ? strdup (config->curve_server) : NULL;
    self->curve_cert = config->curve_cert ? strdup (config->curve_cert) : NULL;
    self->brokers =
      (s_broker_t *) zmalloc (zlist_size (endpoints) * sizeof (s_broker_t));
    for (const char *endpoint = (const char *) zlist_first (endpoints);
         endpoint; endpoint = (const char *) zlist_next (endpoints)) {
        s_broker_t *broker = &self->brokers[self->count++];
        broker->endpoint = strdup (endpoint);
        msgpack_unpacked_init (&broker->unpacked);
        broker->client =
          s_client_new (self, broker->endpoint, error, error_size);
        if (!broker->client) {
            stats_gather_destroy (&self);
            break;
        }
    }
    zlist_destroy (&endpoints);
    return self;
}

size_t
stats_gather_count (stats_gather_t *self)
{
    assert (self);
    return self->count;
}

void
stats_gather_destroy (stats_gather_t **self_p)
{
    assert (self_p);
    stats_gather_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->count; index++) {
        s_broker_t *broker = &self->brokers[index];
        s_forget_answer (broker);
        msgpack_unpacked_destroy (&broker->unpacked);
        cmq_client_destroy (&broker->client);
        free (broker->endpoint);
    }
    free (self->brokers);
    free (self->curve_server);
    free (self->curve_cert);
    free (self);
    *self_p = NULL;
}

//  Takes what broker's socket holds; true once its answer came.
static bool
s_take_answer (s_broker_t *broker)
{
    char *service = NULL;
    zmsg_t *body;
    while ((body = cmq_client_recv (broker->client, 0, &service))) {
        bool is_ours = service && streq (service, S_SERVICE) && !broker->reply;
        free (service);
        service = NULL;
        if (!is_ours) {
            zmsg_destroy (&body);
            continue;
        }
        broker->reply = body;
        zframe_t *frame = zmsg_first (body);
        broker->is_valid =
          zmsg_size (body) == 1 &&
          json_print_unpack (zframe_data (frame), zframe_size (frame),
                             &broker->unpacked) == 0 &&
          broker->unpacked.data.type == MSGPACK_OBJECT_MAP;
        return true;
    }
    return false;
}

//  Waits until every asked broker answered or deadline_ms passed.
static void
s_collect (stats_gather_t *self, int64_t deadline_ms)
{
    zmq_pollitem_t *items =
      (zmq_pollitem_t *) zmalloc (self->count * sizeof (zmq_pollitem_t));
    while (!zsys_interrupted) {
        size_t waiting = 0;
        for (size_t index = 0; index < self->count; index++) {
            s_broker_t *broker = &self->brokers[index];
            //  A client that could not be remade has no socket: poll()
            //  ignores a negative fd.
            items[index].socket =
              broker->client
                ? zsock_resolve (cmq_client_socket (broker->client))
                : NULL;
            items[index].fd = -1;
            items[index].events = broker->is_waiting ? ZMQ_POLLIN : 0;
            waiting += broker->is_waiting;
        }
        int64_t left_ms = deadline_ms - zclock_mono ();
        if (waiting == 0 || left_ms <= 0)
            break;
        if (zmq_poll (items, (int) self->count, (long) left_ms) < 0 &&
            errno != EINTR)
            break;
        for (size_t index = 0; index < self->count; index++)
            if (items[index].revents & ZMQ_POLLIN &&
                s_take_answer (&self->brokers[index]))
                self->brokers[index].is_waiting = false;
    }
    free (items);
}

size_t
stats_gather_run (stats_gather_t *self)
{
    assert (self);
    for (size_t index = 0; index < self->count; index++) {
        s_broker_t *broker = &self->brokers[index];
        s_forget_answer (broker);
        zmsg_t *body = zmsg_new ();
        zmsg_addmem (body, "", 0);
        broker->is_waiting =
          broker->client &&
          cmq_client_send (broker->client, S_SERVICE, &body) == 0;
    }
    s_collect (self, zclock_mono () + self->timeout_ms);
    size_t answered = 0;
    for (size_t index = 0; index < self->count; index++) {
        s_broker_t *broker = &self->brokers[index];
        answered += broker->is_valid;
        if (!broker->is_waiting)
            continue;
        //  Silent: a fresh socket, so its late answer goes nowhere.
        broker->is_waiting = false;
        cmq_client_destroy (&broker->client);
        broker->client = s_client_new (self, broker->endpoint, self->errstr,
                                       sizeof (self->errstr));
    }
    return answered;
}

const msgpack_object *
stats_gather_stats (stats_gather_t *self, size_t index)
{
    assert (self);
    assert (index < self->count);
    s_broker_t *broker = &self->brokers[index];
    return broker->is_valid ? &broker->unpacked.data : NULL;
}

const char *
stats_gather_endpoint (stats_gather_t *self, size_t index)
{
    assert (self);
    assert (index < self->count);
    return self->brokers[index].endpoint;
}

int
stats_gather_write_prometheus (stats_gather_t *self, FILE *out)
{
    assert (self);
    size_t answered = stats_gather_run (self);
    prometheus_source_t *sources = (prometheus_source_t *) zmalloc (
      self->count * sizeof (prometheus_source_t));
    for (size_t index = 0; index < self->count; index++) {
        sources[index].broker = self->brokers[index].endpoint;
        sources[index].stats = stats_gather_stats (self, index);
    }
    int rc = prometheus_write (out, sources, self->count);
    free (sources);
    return rc == 0 ? (int) answered : -1;
}
