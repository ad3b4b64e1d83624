//  client.c - the Majordomo client library users link
//
//  One DEALER socket per client. A synchronous call that hears nothing
//  within its timeout throws the socket away and resends on a fresh one:
//  the broker sees a new routing id, so a late reply to an old attempt is
//  routed to a socket that no longer exists and can never be taken for the
//  answer to the new one.

#include "cartmq/client.h"
#include "cartmq/mdp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dealer.h"

struct _cmq_client_t {
    char *endpoint;      //  where the broker listens
    int timeout_ms;      //  per attempt
    int retries;         //  resends after the first attempt
    char *curve_server;  //  broker's public cert file, or NULL
    char *curve_cert;    //  our secret cert file, or NULL
    zsock_t *dealer;     //  current socket; replaced on each retry
    bool is_stale;       //  a sync call gave up: a late reply may come
    char errstr[CMQ_ERRSTR_SIZE];  //  why the last call failed
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

//  Opens a new DEALER, the reason in error (self->errstr or the caller's
//  buffer) when it cannot.
static zsock_t *
s_socket_new (cmq_client_t *self, char *error, size_t error_size)
{
    cmq_dealer_config_t dealer = { 0 };
    dealer.endpoint = self->endpoint;
    dealer.curve_server = self->curve_server;
    dealer.curve_cert = self->curve_cert;
    dealer.send_timeout_ms = self->timeout_ms;
    return cmq_dealer_new (&dealer, error, error_size);
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
    self->endpoint =
      strdup (config->endpoint ? config->endpoint : CMQ_DEFAULT_ENDPOINT);
    self->timeout_ms =
      config->timeout_ms > 0 ? config->timeout_ms : CMQ_DEFAULT_TIMEOUT_MS;
    self->retries =
      config->retries >= 0 ? config->retries : CMQ_DEFAULT_RETRIES;
    if (config->curve_server) {
        self->curve_server = strdup (config->curve_server);
        self->curve_cert = strdup (config->curve_cert);
    }
    self->dealer = s_socket_new (self, error, error_size);
    if (!self->dealer)
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
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    free (self->curve_server);
    free (self->curve_cert);
    free (self);
    *self_p = NULL;
}

//  The socket changes when a sync call retries or gives up; callers that
//  poll it use the async calls only, which keep it.
zsock_t *
cmq_client_socket (cmq_client_t *self)
{
    assert (self);
    return self->dealer;
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

//  Waits until deadline_ms (zclock_mono; -1: forever) for one valid reply
//  and drops anything else that arrives meanwhile.
static s_wait_t
s_wait (cmq_client_t *self, int64_t deadline_ms, const char *expected_service,
        zmsg_t **body_p, char **service_p)
{
    zmq_pollitem_t item = { zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0 };
    while (true) {
        if (zsys_interrupted)
            return S_WAIT_INTERRUPTED;
        long wait_ms = -1;
        if (deadline_ms >= 0) {
            int64_t remaining_ms = deadline_ms - zclock_mono ();
            wait_ms = remaining_ms > 0 ? (long) remaining_ms : 0;
        }
        int rc = zmq_poll (&item, 1, wait_ms);
        if (rc < 0) {
            if (errno == EINTR || errno == ETERM)
                return S_WAIT_INTERRUPTED;
            s_set_error (self, "poll failed: %s", zmq_strerror (errno));
            return S_WAIT_FAILED;
        }
        if (rc == 0) {
            if (deadline_ms >= 0 && zclock_mono () >= deadline_ms)
                return S_WAIT_TIMEOUT;
            continue;
        }
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg)
            return S_WAIT_INTERRUPTED;
        zmsg_t *body = s_take_body (&msg, expected_service, service_p);
        if (body) {
            *body_p = body;
            return S_WAIT_REPLY;
        }
    }
}

//  Replaces the socket, so the broker sees a new peer for the next attempt.
static int
s_reconnect (cmq_client_t *self)
{
    zsock_destroy (&self->dealer);
    self->dealer = s_socket_new (self, self->errstr, sizeof (self->errstr));
    return self->dealer ? 0 : -1;
}

//  A call that gave up leaves a socket a late reply may still reach; the
//  next call must not take that reply for its own, so it starts afresh.
static int
s_ensure_socket (cmq_client_t *self)
{
    if (self->dealer && !self->is_stale)
        return 0;
    self->is_stale = false;
    return s_reconnect (self);
}

//  Sends request on the current socket; takes *request_p.
static int
s_send (cmq_client_t *self, zmsg_t **request_p)
{
    if (zmsg_send (request_p, self->dealer) != 0) {
        zmsg_destroy (request_p);
        if (errno == EINTR || errno == ETERM || zsys_interrupted)
            s_set_error (self, "interrupted");
        else
            s_set_error (self, "cannot send request: %s", zmq_strerror (errno));
        return -1;
    }
    return 0;
}

//  Sends a copy of request, kept for the next attempt.
static int
s_send_copy (cmq_client_t *self, zmsg_t *request)
{
    zmsg_t *copy = zmsg_dup (request);
    return s_send (self, &copy);
}

//  Checks the service name and makes sure there is a fresh socket, then
//  frames the request. Takes *body_p; NULL with the reason set on failure.
static zmsg_t *
s_request_new (cmq_client_t *self, const char *service, zmsg_t **body_p)
{
    if (!s_service_ok (service)) {
        zmsg_destroy (body_p);
        s_set_error (self, "service name empty or longer than %d bytes",
                     CMQ_MAX_SERVICE_NAME_BYTES);
        return NULL;
    }
    if (s_ensure_socket (self) != 0) {
        zmsg_destroy (body_p);
        return NULL;
    }
    return cmq_mdp_client_request (service, body_p);
}

int
cmq_client_call (cmq_client_t *self, const char *service, zmsg_t **body_p,
                 zmsg_t **reply_p)
{
    assert (self);
    assert (body_p);
    assert (reply_p);
    *reply_p = NULL;
    zmsg_t *request = s_request_new (self, service, body_p);
    if (!request)
        return -1;
    int attempts = self->retries + 1;
    int rc = -1;
    for (int attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0 && s_reconnect (self) != 0)
            break;
        if (s_send_copy (self, request) != 0)
            break;
        s_wait_t result = s_wait (self, zclock_mono () + self->timeout_ms,
                                  service, reply_p, NULL);
        if (result == S_WAIT_REPLY) {
            rc = 0;
            break;
        }
        if (result == S_WAIT_INTERRUPTED) {
            s_set_error (self, "interrupted");
            break;
        }
        if (result == S_WAIT_FAILED)
            break;
        s_set_error (
          self, "no reply from '%s' at %s after %d attempt%s of %d ms", service,
          self->endpoint, attempt + 1, attempt ? "s" : "", self->timeout_ms);
    }
    zmsg_destroy (&request);
    if (rc != 0)
        self->is_stale = true;
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
    zframe_t *frame = zmsg_first (reply);
    size_t size = zframe_size (frame);
    //  One spare byte, so an empty body is still a real allocation.
    void *copy = malloc (size + 1);
    if (!copy) {
        zmsg_destroy (&reply);
        s_set_error (self, "out of memory for a %zu byte reply", size);
        return -1;
    }
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
    return request ? s_send (self, &request) : -1;
}

zmsg_t *
cmq_client_recv (cmq_client_t *self, int timeout_ms, char **service_p)
{
    assert (self);
    if (service_p)
        *service_p = NULL;
    if (!self->dealer) {
        s_set_error (self, "no socket: the last reconnect failed");
        return NULL;
    }
    int64_t deadline_ms = timeout_ms < 0 ? -1 : zclock_mono () + timeout_ms;
    zmsg_t *body = NULL;
    s_wait_t result = s_wait (self, deadline_ms, NULL, &body, service_p);
    if (result == S_WAIT_TIMEOUT)
        s_set_error (self, "no reply within %d ms", timeout_ms);
    else if (result == S_WAIT_INTERRUPTED)
        s_set_error (self, "interrupted");
    return body;
}
