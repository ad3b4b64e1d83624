//  client.c - the Majordomo client library users link
//
//  One DEALER socket per broker. A synchronous attempt that hears nothing
//  within its timeout throws that broker's socket away: the broker sees a
//  new routing id next time, so a late reply to an old attempt is routed
//  to a socket that no longer exists and can never be taken for the
//  answer to a new one. Which broker each call and attempt goes to is
//  broker_pick's decision; with one broker every step of it is trivial,
//  so the one-endpoint path costs what it did.

#include "cartmq/client.h"
#include "cartmq/broker_pick.h"
#include "cartmq/endpoint_list.h"
#include "cartmq/mdp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dealer.h"

typedef struct {
    char *endpoint;   //  where this broker listens
    zsock_t *dealer;  //  NULL until (re)opened: closed after silence
} s_broker_t;

struct _cmq_client_t {
    s_broker_t *brokers;    //  in the order given
    size_t broker_count;    //  at least one
    cmq_pick_t *pick;       //  health and round-robin
    int timeout_ms;         //  per attempt
    int retries;            //  resends after the first attempt
    char *curve_server;     //  broker's public cert file, or NULL
    char *curve_cert;       //  our secret cert file, or NULL
    zmq_pollitem_t *items;  //  the open sockets, for cmq_client_recv
    size_t *item_broker;    //  which broker each item is
    size_t item_count;      //  items in use
    bool is_items_stale;    //  a socket opened or closed since built
    cmq_client_counters_t counters;
    size_t last_attempts;  //  of the last sync call
    size_t
      last_brokers[CMQ_CLIENT_LAST_MAX];  //  broker of each of its attempts
    char errstr[CMQ_ERRSTR_SIZE];         //  why the last call failed
};

typedef enum {
    S_WAIT_REPLY = 0,        //  a valid reply arrived
    S_WAIT_TIMEOUT = 1,      //  nothing valid before the deadline
    S_WAIT_INTERRUPTED = 2,  //  signal or context shutdown
    S_WAIT_FAILED = 3        //  the socket itself failed
} s_wait_t;

static void s_set_error (cmq_client_t *self, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

static void
s_set_error (cmq_client_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->errstr, sizeof (self->errstr), format, args);
    va_end (args);
}

const char *
cmq_client_errstr (cmq_client_t *self)
{
    assert (self);
    return self->errstr[0] ? self->errstr : "no error";
}

void
cmq_client_config_defaults (cmq_client_config_t *config)
{
    assert (config);
    memset (config, 0, sizeof (*config));
    config->endpoint = CMQ_DEFAULT_ENDPOINT;
    config->timeout_ms = CMQ_DEFAULT_TIMEOUT_MS;
    config->retries = CMQ_DEFAULT_RETRIES;
}

//  Opens broker's DEALER, the reason in error (self->errstr or the
//  caller's buffer) when it cannot.
static int
s_open (cmq_client_t *self, s_broker_t *broker, char *error, size_t error_size)
{
    cmq_dealer_config_t dealer = { 0 };
    dealer.endpoint = broker->endpoint;
    dealer.curve_server = self->curve_server;
    dealer.curve_cert = self->curve_cert;
    dealer.send_timeout_ms = self->timeout_ms;
    broker->dealer = cmq_dealer_new (&dealer, error, error_size);
    self->is_items_stale = true;
    return broker->dealer ? 0 : -1;
}

//  Closes a broker's socket, so that no late reply can reach us on it.
static void
s_close (cmq_client_t *self, size_t index)
{
    zsock_destroy (&self->brokers[index].dealer);
    self->is_items_stale = true;
}

//  The brokers of a config (endpoint_list.h: the worker's rule too).
static int
s_brokers_new (cmq_client_t *self, const cmq_client_config_t *config,
               char *error, size_t error_size)
{
    zlist_t *endpoints =
      cmq_endpoint_list_new (config->endpoint, config->endpoints,
                             config->endpoint_count, error, error_size);
    if (!endpoints)
        return -1;
    self->brokers =
      (s_broker_t *) zmalloc (zlist_size (endpoints) * sizeof (s_broker_t));
    for (const char *endpoint = (const char *) zlist_first (endpoints);
         endpoint; endpoint = (const char *) zlist_next (endpoints))
        self->brokers[self->broker_count++].endpoint = strdup (endpoint);
    zlist_destroy (&endpoints);
    return 0;
}

//  Opens every broker's socket and sets up the round-robin and polling.
static int
s_connect_all (cmq_client_t *self, char *error, size_t error_size)
{
    for (size_t index = 0; index < self->broker_count; index++)
        if (s_open (self, &self->brokers[index], error, error_size))
            return -1;
    int64_t backoff_min_ms = self->timeout_ms > CMQ_CLIENT_BACKOFF_MIN_MS
                               ? self->timeout_ms
                               : CMQ_CLIENT_BACKOFF_MIN_MS;
    int64_t backoff_max_ms = backoff_min_ms > CMQ_CLIENT_BACKOFF_MAX_MS
                               ? backoff_min_ms
                               : CMQ_CLIENT_BACKOFF_MAX_MS;
    self->pick =
      cmq_pick_new (self->broker_count, backoff_min_ms, backoff_max_ms);
    self->items =
      (zmq_pollitem_t *) zmalloc (self->broker_count * sizeof (zmq_pollitem_t));
    self->item_broker =
      (size_t *) zmalloc (self->broker_count * sizeof (size_t));
    return 0;
}

cmq_client_t *
cmq_client_new (const cmq_client_config_t *config, char *error,
                size_t error_size)
{
    cmq_client_config_t defaults;
    if (!config) {
        cmq_client_config_defaults (&defaults);
        config = &defaults;
    }
    if (!config->curve_server != !config->curve_cert) {
        cmq_error_set (error, error_size,
                       "curve: a server public cert and our secret cert "
                       "go together");
        return NULL;
    }
    cmq_client_t *self = (cmq_client_t *) zmalloc (sizeof (cmq_client_t));
    self->timeout_ms =
      config->timeout_ms > 0 ? config->timeout_ms : CMQ_DEFAULT_TIMEOUT_MS;
    self->retries =
      config->retries >= 0 ? config->retries : CMQ_DEFAULT_RETRIES;
    if (config->curve_server) {
        self->curve_server = strdup (config->curve_server);
        self->curve_cert = strdup (config->curve_cert);
    }
    if (s_brokers_new (self, config, error, error_size) ||
        s_connect_all (self, error, error_size))
        cmq_client_destroy (&self);
    return self;
}

void
cmq_client_destroy (cmq_client_t **self_p)
{
    assert (self_p);
    cmq_client_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->broker_count; index++) {
        zsock_destroy (&self->brokers[index].dealer);
        free (self->brokers[index].endpoint);
    }
    free (self->brokers);
    cmq_pick_destroy (&self->pick);
    free (self->items);
    free (self->item_broker);
    free (self->curve_server);
    free (self->curve_cert);
    free (self);
    *self_p = NULL;
}

zsock_t *
cmq_client_socket (cmq_client_t *self)
{
    assert (self);
    return self->broker_count == 1 ? self->brokers[0].dealer : NULL;
}

size_t
cmq_client_endpoint_count (cmq_client_t *self)
{
    assert (self);
    return self->broker_count;
}

const char *
cmq_client_endpoint (cmq_client_t *self, size_t index)
{
    assert (self);
    assert (index < self->broker_count);
    return self->brokers[index].endpoint;
}

void
cmq_client_counters (cmq_client_t *self, cmq_client_counters_t *counters)
{
    assert (self);
    assert (counters);
    *counters = self->counters;
}

size_t
cmq_client_last_call (cmq_client_t *self, size_t *brokers, size_t max)
{
    assert (self);
    assert (brokers || max == 0);
    for (size_t index = 0; index < max && index < self->last_attempts &&
                           index < CMQ_CLIENT_LAST_MAX;
         index++)
        brokers[index] = self->last_brokers[index];
    return self->last_attempts;
}

static bool
s_service_ok (const char *service)
{
    size_t size = service ? strlen (service) : 0;
    return size > 0 && size <= CMQ_MAX_SERVICE_NAME_BYTES;
}

//  Takes a message as the DEALER read it and returns its body, or NULL
//  (message destroyed) if it is not a well-formed client reply, or not
//  from expected_service when that is given. *service_p gets a copy of
//  the replying service when asked for.
static zmsg_t *
s_take_body (zmsg_t **msg_p, const char *expected_service, char **service_p)
{
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    cmq_mdp_message_t parsed;
    if (cmq_mdp_parse (msg, &parsed) != CMQ_MDP_OK ||
        parsed.kind != CMQ_MDP_FROM_CLIENT ||
        (expected_service &&
         !zframe_streq (parsed.service, expected_service))) {
        zmsg_destroy (&msg);
        return NULL;
    }
    if (service_p)
        *service_p = zframe_strdup (parsed.service);
    //  Delimiter, header and service go; what is left is the body.
    for (int index = 0; index < 3; index++) {
        zframe_t *frame = zmsg_pop (msg);
        zframe_destroy (&frame);
    }
    return msg;
}

//  Reads the next message on any of items within wait_ms (-1: forever):
//  *item_p gets its item. NULL with *rc 0 when the time is up, -1 on a
//  signal or error (errno says which). With one socket there is nothing
//  to poll between: a read with a timeout costs no system call when a
//  reply is already there and one wait when none is, where zmq_poll
//  first polls with no timeout and asks ZMQ_EVENTS before and after.
static zmsg_t *
s_read_any (zmq_pollitem_t *items, size_t item_count, long wait_ms,
            size_t *item_p, int *rc)
{
    *rc = 0;
    if (item_count == 1) {
        int timeout = (int) wait_ms;
        zmq_setsockopt (items[0].socket, ZMQ_RCVTIMEO, &timeout,
                        sizeof (timeout));
        *item_p = 0;
        zmsg_t *msg = zmsg_recv (items[0].socket);
        if (!msg && errno != EAGAIN)
            *rc = -1;
        return msg;
    }
    int ready = zmq_poll (items, (int) item_count, wait_ms);
    if (ready < 0)
        *rc = -1;
    for (size_t index = 0; ready > 0 && index < item_count; index++)
        if (items[index].revents & ZMQ_POLLIN) {
            //  One message per poll: the others stay readable for the
            //  next, so no broker waits behind another's backlog.
            *item_p = index;
            zmsg_t *msg = zmsg_recv (items[index].socket);
            if (!msg)
                *rc = -1;
            return msg;
        }
    return NULL;
}

//  Waits until deadline_ms (zclock_mono; -1: forever) for one valid reply
//  on any of items and drops anything else that arrives meanwhile.
//  *item_p gets the index of the item the reply came on.
static s_wait_t
s_wait (cmq_client_t *self, zmq_pollitem_t *items, size_t item_count,
        int64_t deadline_ms, const char *expected_service, zmsg_t **body_p,
        char **service_p, size_t *item_p)
{
    while (true) {
        if (zsys_interrupted)
            return S_WAIT_INTERRUPTED;
        long wait_ms = -1;
        if (deadline_ms >= 0) {
            int64_t remaining_ms = deadline_ms - zclock_mono ();
            wait_ms = remaining_ms > 0 ? (long) remaining_ms : 0;
        }
        int rc = 0;
        size_t index = 0;
        zmsg_t *msg = s_read_any (items, item_count, wait_ms, &index, &rc);
        if (rc < 0) {
            if (errno == EINTR || errno == ETERM || zsys_interrupted)
                return S_WAIT_INTERRUPTED;
            s_set_error (self, "poll failed: %s", zmq_strerror (errno));
            return S_WAIT_FAILED;
        }
        if (!msg) {
            if (deadline_ms >= 0 && zclock_mono () >= deadline_ms)
                return S_WAIT_TIMEOUT;
            continue;
        }
        zmsg_t *body = s_take_body (&msg, expected_service, service_p);
        if (body) {
            *body_p = body;
            *item_p = index;
            return S_WAIT_REPLY;
        }
    }
}

//  Opens a broker's socket if an earlier silence closed it.
static int
s_ensure_socket (cmq_client_t *self, size_t index)
{
    s_broker_t *broker = &self->brokers[index];
    if (broker->dealer)
        return 0;
    return s_open (self, broker, self->errstr, sizeof (self->errstr));
}

//  Sends request on a broker's socket; takes *request_p.
static int
s_send (cmq_client_t *self, size_t index, zmsg_t **request_p)
{
    if (zmsg_send (request_p, self->brokers[index].dealer) != 0) {
        zmsg_destroy (request_p);
        if (errno == EINTR || errno == ETERM || zsys_interrupted)
            s_set_error (self, "interrupted");
        else
            s_set_error (self, "cannot send request: %s", zmq_strerror (errno));
        return -1;
    }
    return 0;
}

//  Checks the service name and frames the request. Takes *body_p; NULL
//  with the reason set on failure.
static zmsg_t *
s_request_new (cmq_client_t *self, const char *service, zmsg_t **body_p)
{
    if (!s_service_ok (service)) {
        zmsg_destroy (body_p);
        s_set_error (self, "service name empty or longer than %d bytes",
                     CMQ_MAX_SERVICE_NAME_BYTES);
        return NULL;
    }
    return cmq_mdp_client_request (service, body_p);
}

//  Writes the "no reply" reason: the attempts, and the brokers tried in
//  the order first tried.
static void
s_no_reply (cmq_client_t *self, const char *service, size_t attempts)
{
    if (self->broker_count == 1) {
        s_set_error (self,
                     "no reply from '%s' at %s after %zu attempt%s of %d ms",
                     service, self->brokers[0].endpoint, attempts,
                     attempts > 1 ? "s" : "", self->timeout_ms);
        return;
    }
    char tried[CMQ_ERRSTR_SIZE] = "";
    bool is_named[CMQ_CLIENT_MAX_ENDPOINTS] = { false };
    size_t size = 0;
    for (size_t attempt = 0;
         attempt < attempts && attempt < CMQ_CLIENT_LAST_MAX; attempt++) {
        size_t index = self->last_brokers[attempt];
        if (is_named[index] || size >= sizeof (tried))
            continue;
        is_named[index] = true;
        size +=
          (size_t) snprintf (tried + size, sizeof (tried) - size, "%s%s",
                             size ? ", " : "", self->brokers[index].endpoint);
    }
    s_set_error (self, "no reply from '%s' after %zu attempt%s of %d ms at %s",
                 service, attempts, attempts > 1 ? "s" : "", self->timeout_ms,
                 tried);
}

//  One attempt of a sync call at broker index: sends a copy of request
//  and waits for the reply. An unanswered attempt closes the socket and
//  marks the broker down.
static s_wait_t
s_attempt (cmq_client_t *self, size_t index, zmsg_t *request,
           const char *service, zmsg_t **reply_p)
{
    if (s_ensure_socket (self, index) != 0)
        return S_WAIT_FAILED;
    zmsg_t *copy = zmsg_dup (request);
    if (s_send (self, index, &copy) != 0) {
        s_close (self, index);
        return S_WAIT_FAILED;
    }
    zmq_pollitem_t item = { zsock_resolve (self->brokers[index].dealer), 0,
                            ZMQ_POLLIN, 0 };
    size_t unused;
    int64_t now_ms = zclock_mono ();
    s_wait_t result = s_wait (self, &item, 1, now_ms + self->timeout_ms,
                              service, reply_p, NULL, &unused);
    if (result == S_WAIT_REPLY) {
        self->counters.replies++;
        cmq_pick_answered (self->pick, index, zclock_mono ());
        return result;
    }
    //  Whatever stopped us, a reply may still come to this socket.
    s_close (self, index);
    if (result == S_WAIT_TIMEOUT) {
        self->counters.timeouts++;
        cmq_pick_failed (self->pick, index, zclock_mono ());
    } else if (result == S_WAIT_INTERRUPTED)
        s_set_error (self, "interrupted");
    return result;
}

int
cmq_client_call (cmq_client_t *self, const char *service, zmsg_t **body_p,
                 zmsg_t **reply_p)
{
    assert (self);
    assert (body_p);
    assert (reply_p);
    *reply_p = NULL;
    self->last_attempts = 0;
    zmsg_t *request = s_request_new (self, service, body_p);
    if (!request)
        return -1;
    self->counters.calls++;
    size_t attempts = (size_t) self->retries + 1;
    size_t index = cmq_pick_next (self->pick, zclock_mono ());
    int rc = -1;
    for (size_t attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0) {
            size_t next = cmq_pick_retry (self->pick, index, zclock_mono ());
            if (next != index)
                self->counters.switches++;
            index = next;
        }
        if (attempt < CMQ_CLIENT_LAST_MAX)
            self->last_brokers[attempt] = index;
        self->last_attempts = attempt + 1;
        self->counters.attempts++;
        s_wait_t result = s_attempt (self, index, request, service, reply_p);
        if (result == S_WAIT_REPLY)
            rc = 0;
        if (result != S_WAIT_TIMEOUT)
            break;
        s_no_reply (self, service, attempt + 1);
    }
    zmsg_destroy (&request);
    return rc;
}

int
cmq_client_call_bytes (cmq_client_t *self, const char *service,
                       const void *request, size_t request_size, void **reply_p,
                       size_t *reply_size_p)
{
    assert (self);
    assert (request || request_size == 0);
    assert (reply_p);
    assert (reply_size_p);
    *reply_p = NULL;
    *reply_size_p = 0;
    zmsg_t *body = zmsg_new ();
    zmsg_addmem (body, request, request_size);
    zmsg_t *reply = NULL;
    if (cmq_client_call (self, service, &body, &reply) != 0)
        return -1;
    //  A reply always has a body frame (cmq_mdp_parse checks); the guard
    //  keeps that rule from being this function's to remember.
    zframe_t *frame = zmsg_first (reply);
    size_t size = frame ? zframe_size (frame) : 0;
    //  One spare byte, so an empty body is still a real allocation.
    void *copy = malloc (size + 1);
    if (!copy) {
        zmsg_destroy (&reply);
        s_set_error (self, "out of memory for a %zu byte reply", size);
        return -1;
    }
    if (size)
        memcpy (copy, zframe_data (frame), size);
    ((char *) copy)[size] = 0;
    zmsg_destroy (&reply);
    *reply_p = copy;
    *reply_size_p = size;
    return 0;
}

int
cmq_client_send (cmq_client_t *self, const char *service, zmsg_t **body_p)
{
    assert (self);
    assert (body_p);
    zmsg_t *request = s_request_new (self, service, body_p);
    if (!request)
        return -1;
    size_t index = 0;
    if (self->broker_count > 1) {
        //  Silent brokers go down first, so this send avoids them.
        int64_t now_ms = zclock_mono ();
        self->counters.timeouts +=
          cmq_pick_expire (self->pick, now_ms, self->timeout_ms);
        index = cmq_pick_next (self->pick, now_ms);
        cmq_pick_sent (self->pick, index, now_ms);
    }
    if (s_ensure_socket (self, index) != 0) {
        zmsg_destroy (&request);
        return -1;
    }
    if (s_send (self, index, &request) != 0)
        return -1;
    self->counters.sends++;
    return 0;
}

//  Rebuilds the poll items from the open sockets when one changed.
static void
s_items_refresh (cmq_client_t *self)
{
    if (!self->is_items_stale)
        return;
    self->item_count = 0;
    for (size_t index = 0; index < self->broker_count; index++) {
        if (!self->brokers[index].dealer)
            continue;
        zmq_pollitem_t item = { zsock_resolve (self->brokers[index].dealer), 0,
                                ZMQ_POLLIN, 0 };
        self->items[self->item_count] = item;
        self->item_broker[self->item_count++] = index;
    }
    self->is_items_stale = false;
}

zmsg_t *
cmq_client_recv (cmq_client_t *self, int timeout_ms, char **service_p)
{
    assert (self);
    if (service_p)
        *service_p = NULL;
    s_items_refresh (self);
    if (self->item_count == 0) {
        s_set_error (self, "no socket open: send a request first");
        return NULL;
    }
    int64_t deadline_ms = timeout_ms < 0 ? -1 : zclock_mono () + timeout_ms;
    zmsg_t *body = NULL;
    size_t item = 0;
    s_wait_t result = s_wait (self, self->items, self->item_count, deadline_ms,
                              NULL, &body, service_p, &item);
    if (result == S_WAIT_REPLY) {
        self->counters.replies++;
        if (self->broker_count > 1)
            cmq_pick_answered (self->pick, self->item_broker[item],
                               zclock_mono ());
    } else if (result == S_WAIT_TIMEOUT)
        s_set_error (self, "no reply within %d ms", timeout_ms);
    else if (result == S_WAIT_INTERRUPTED)
        s_set_error (self, "interrupted");
    return body;
}
