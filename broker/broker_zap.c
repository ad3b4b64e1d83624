//  broker_zap.c - the broker's ZAP handler: CURVE keys in, key as User-Id

#include "broker_zap.h"

#include <errno.h>

#include <inttypes.h>

#include "broker_ratelimit.h"
#include "cartmq/log.h"

typedef struct {
    zsock_t *pipe;
    zsock_t *handler;  //  REP on the ZAP endpoint
    zhashx_t *keys;    //  allowed Z85 public keys (values unused)
    broker_ratelimit_t limit;
} s_zap_t;

static int64_t
s_now_us (void)
{
    return zclock_usecs ();
}

static void
s_set_keys (s_zap_t *self, zmsg_t *msg)
{
    zhashx_purge (self->keys);
    char *key;
    while ((key = zmsg_popstr (msg))) {
        zhashx_update (self->keys, key, (void *) 1);
        free (key);
    }
}

//  Pipe commands; false on $TERM
static bool
s_on_pipe (s_zap_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr (msg);
    bool is_running = command && !streq (command, "$TERM");
    if (command && streq (command, "KEYS")) {
        s_set_keys (self, msg);
        zsock_signal (self->pipe, 0);
    }
    free (command);
    zmsg_destroy (&msg);
    return is_running;
}

//  A ZAP request is [version][sequence][domain][address][routing id]
//  [mechanism][credentials...]; for CURVE one credential, the client's
//  32-byte public key. The reply is [version][sequence][status code]
//  [status text][user id][metadata].
static void
s_on_request (s_zap_t *self)
{
    zmsg_t *request = zmsg_recv (self->handler);
    if (!request)
        return;
    zframe_t *version = zmsg_pop (request);
    zframe_t *sequence = zmsg_pop (request);
    zframe_t *domain = zmsg_pop (request);
    zframe_t *address = zmsg_pop (request);
    zframe_t *routing_id = zmsg_pop (request);
    zframe_t *mechanism = zmsg_pop (request);
    zframe_t *key = zmsg_pop (request);
    char key_text[41] = "";
    bool is_allowed = false;
    if (version && zframe_streq (version, "1.0") && mechanism &&
        zframe_streq (mechanism, "CURVE") && key && zframe_size (key) == 32) {
        zmq_z85_encode (key_text, zframe_data (key), 32);
        is_allowed = zhashx_lookup (self->keys, key_text) != NULL;
    }
    char peer[CMQ_LOG_ESCAPED_BYTES (64)] = "";
    if (address)
        cmq_log_escape (zframe_data (address), zframe_size (address), peer,
                        sizeof (peer));
    uint64_t held;
    if (broker_ratelimit_allow (&self->limit, s_now_us (), &held)) {
        if (is_allowed)
            cmq_log_info ("ZAP request mechanism=CURVE ipaddress=%s: allowed "
                          "(CURVE) client_key=%s",
                          peer, key_text);
        else
            cmq_log_warning ("ZAP request mechanism=CURVE ipaddress=%s: "
                             "denied (CURVE) client_key=%s reason=\"key not "
                             "allowed\"",
                             peer, *key_text ? key_text : "(none)");
        if (held)
            cmq_log_info ("ZAP: %" PRIu64 " earlier lines held back (at "
                          "most %d a second)",
                          held, BROKER_RATELIMIT_LINES);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (sequence)
        zmsg_append (reply, &sequence);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, is_allowed ? "200" : "400");
    zmsg_addstr (reply, is_allowed ? "OK" : "No access");
    zmsg_addstr (reply, is_allowed ? key_text : "");
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, self->handler);
    zframe_destroy (&version);
    zframe_destroy (&sequence);
    zframe_destroy (&domain);
    zframe_destroy (&address);
    zframe_destroy (&routing_id);
    zframe_destroy (&mechanism);
    zframe_destroy (&key);
    zmsg_destroy (&request);
}

void
broker_zap_actor (zsock_t *pipe, void *args)
{
    (void) args;
    s_zap_t self = { pipe, zsock_new (ZMQ_REP), zhashx_new (), { 0, 0, 0 } };
    if (!self.handler || zsock_bind (self.handler, BROKER_ZAP_ENDPOINT)) {
        //  Without a handler libzmq would admit every CURVE peer: answer
        //  every command with failure, so the broker refuses to start.
        cmq_log_error ("cannot bind the ZAP handler: %s",
                       zmq_strerror (zmq_errno ()));
        zsock_destroy (&self.handler);
        zhashx_destroy (&self.keys);
        zsock_signal (pipe, 1);
        zmsg_t *msg;
        while ((msg = zmsg_recv (pipe))) {
            char *command = zmsg_popstr (msg);
            bool is_term = !command || streq (command, "$TERM");
            if (!is_term)
                zsock_signal (pipe, 1);
            free (command);
            zmsg_destroy (&msg);
            if (is_term)
                break;
        }
        return;
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, self.handler, NULL);
    //  Only $TERM ends the handler: peers may still handshake while the
    //  broker shuts down, and each needs an answer.
    zpoller_set_nonstop (poller, true);
    while (true) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (!which && errno == EINTR)
            continue;  //  a signal, not $TERM
        if (which == self.handler)
            s_on_request (&self);
        else if (which != pipe || !s_on_pipe (&self))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&self.handler);
    zhashx_destroy (&self.keys);
}
