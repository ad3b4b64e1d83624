//  worker.c - the Majordomo worker library: one service, one broker
//
//  No log lines here: failed calls keep their reason in self->errstr, and
//  what happens inside recv and tick goes to the caller's notify hook.

#include "cartmq/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cartmq/mdp.h"
#include "cartmq/worker_fsm.h"
#include "dealer.h"

#define S_DEFAULT_RECONNECT_MIN_MS 100
#define S_DEFAULT_RECONNECT_MAX_MS 1000
//  libzmq retries a lost TCP connection this often on its own.
#define S_TCP_RECONNECT_IVL_MS 100
//  How long a last REPLY or DISCONNECT may take to leave a closed socket.
//  Only a connected socket has anything queued (ZMQ_IMMEDIATE), so this
//  never lets a closed socket deliver to a broker that comes back later.
#define S_CLOSE_LINGER_MS 100
//  A recv past its deadline still drains what is already queued, up to
//  this many messages, so a flood cannot hold it forever.
#define S_MAX_DRAIN_AFTER_DEADLINE 100

struct _cmq_worker_t {
    char *endpoint;         //  broker endpoint
    char *service;          //  service we serve
    char *curve_server;     //  broker's public cert file, or NULL
    char *curve_cert;       //  our secret cert file, or NULL
    int credit;             //  requests we take at once
    cmq_worker_fsm_t *fsm;  //  heartbeat and reconnect timing
    zsock_t *socket;        //  DEALER; NULL while waiting to reconnect
    bool is_ready_sent;     //  READY went out on this socket's connection
    uint64_t generation;    //  successful connects so far
    cmq_worker_notify_fn *notify;  //  the caller's hook, or NULL
    void *notify_arg;
    char errstr[CMQ_ERRSTR_SIZE];  //  why the last call failed
};

const char *
cmq_worker_errstr (cmq_worker_t *self)
{
    assert (self);
    return self->errstr[0] ? self->errstr : "no error";
}

static void s_notify (cmq_worker_t *self, cmq_worker_notice_t level,
                      const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

//  Tells the caller what the worker did on its own. Formatting costs
//  nothing when there is no hook.
static void
s_notify (cmq_worker_t *self, cmq_worker_notice_t level, const char *format,
          ...)
{
    if (!self->notify)
        return;
    char text[512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    self->notify (self->notify_arg, level, text);
}

void
cmq_worker_config_defaults (cmq_worker_config_t *config)
{
    assert (config);
    memset (config, 0, sizeof (*config));
    config->endpoint = CMQ_DEFAULT_ENDPOINT;
    config->heartbeat_ms = CMQ_DEFAULT_HEARTBEAT_MS;
    config->liveness = CMQ_DEFAULT_LIVENESS;
    config->credit = 1;
    config->reconnect_min_ms = S_DEFAULT_RECONNECT_MIN_MS;
    config->reconnect_max_ms = S_DEFAULT_RECONNECT_MAX_MS;
}

//  <= 0 takes the default, as in the client (cartmq/common.h).
static int
s_or_default (int value, int fallback)
{
    return value > 0 ? value : fallback;
}

//  Checks config and fills self's settings; -1 with the reason in error.
static int
s_apply_config (cmq_worker_t *self, const cmq_worker_config_t *config,
                char *error, size_t error_size)
{
    if (!config->service || !*config->service) {
        cmq_error_set (error, error_size, "a service name is required");
        return -1;
    }
    if (strlen (config->service) > CMQ_MAX_SERVICE_NAME_BYTES) {
        cmq_error_set (error, error_size, "service name is over %d bytes",
                       CMQ_MAX_SERVICE_NAME_BYTES);
        return -1;
    }
    if (config->credit > CMQ_MAX_CREDIT) {
        cmq_error_set (error, error_size, "credit must be 1..%d, not %d",
                       CMQ_MAX_CREDIT, config->credit);
        return -1;
    }
    if (config->endpoint && !*config->endpoint) {
        cmq_error_set (error, error_size, "endpoint is empty");
        return -1;
    }
    if (!config->curve_server != !config->curve_cert) {
        cmq_error_set (error, error_size,
                       "curve: a server public cert and our secret cert "
                       "go together");
        return -1;
    }
    self->credit = s_or_default (config->credit, 1);
    self->endpoint =
      strdup (config->endpoint ? config->endpoint : CMQ_DEFAULT_ENDPOINT);
    self->service = strdup (config->service);
    if (config->curve_server) {
        self->curve_server = strdup (config->curve_server);
        self->curve_cert = strdup (config->curve_cert);
    }
    self->notify = config->notify;
    self->notify_arg = config->notify_arg;
    self->fsm = cmq_worker_fsm_new (
      s_or_default (config->heartbeat_ms, CMQ_DEFAULT_HEARTBEAT_MS),
      s_or_default (config->liveness, CMQ_DEFAULT_LIVENESS),
      s_or_default (config->reconnect_min_ms, S_DEFAULT_RECONNECT_MIN_MS),
      s_or_default (config->reconnect_max_ms, S_DEFAULT_RECONNECT_MAX_MS));
    return 0;
}

//  Sends without ever blocking: a broker that stopped reading must not
//  stall the worker. Returns 0, or -1 if the message was dropped.
static int
s_send (cmq_worker_t *self, zmsg_t **msg_p)
{
    if (!self->socket || !(zsock_events (self->socket) & ZMQ_POLLOUT)) {
        zmsg_destroy (msg_p);
        return -1;
    }
    int rc = zmsg_send (msg_p, self->socket);
    zmsg_destroy (msg_p);  //  zmsg_send leaves it on failure
    if (rc == 0)
        cmq_worker_fsm_on_send (self->fsm, zclock_mono ());
    return rc;
}

static zsock_t *
s_new_socket (cmq_worker_t *self, char *error, size_t error_size)
{
    cmq_dealer_config_t dealer = { 0 };
    dealer.endpoint = self->endpoint;
    dealer.curve_server = self->curve_server;
    dealer.curve_cert = self->curve_cert;
    dealer.send_timeout_ms = 0;
    //  Nothing is queued before the connection is up: READY is sent when
    //  it is (s_send_ready), so no READY can wait in a socket and register
    //  later, after we gave up on that socket (§5).
    dealer.is_immediate = true;
    dealer.reconnect_ivl_ms = S_TCP_RECONNECT_IVL_MS;
    return cmq_dealer_new (&dealer, error, error_size);
}

//  Closes the socket. Unless the broker has already forgotten us, a
//  registered socket says DISCONNECT first: a broker that is only frozen
//  (SIGSTOP, a long pause) reads it when it resumes and does not keep
//  listing a worker no socket serves.
static void
s_close (cmq_worker_t *self, bool is_forgotten)
{
    if (!self->socket)
        return;
    if (self->is_ready_sent && !is_forgotten) {
        zmsg_t *bye = cmq_mdp_worker_signal (CMQ_MDPW_DISCONNECT);
        if (s_send (self, &bye) == 0)
            zsock_set_linger (self->socket, S_CLOSE_LINGER_MS);
    }
    zsock_destroy (&self->socket);
    self->is_ready_sent = false;
}

//  Says READY once the socket's connection is up. Until then nothing was
//  queued, so a broker hears READY only on a connection we still hold.
static void
s_send_ready (cmq_worker_t *self)
{
    if (!self->socket || self->is_ready_sent ||
        !(zsock_events (self->socket) & ZMQ_POLLOUT))
        return;
    zmsg_t *ready = cmq_mdp_worker_ready (self->service, self->credit);
    if (s_send (self, &ready) == 0) {
        self->is_ready_sent = true;
        //  The broker gets a full liveness window from READY on.
        cmq_worker_fsm_on_connect (self->fsm, zclock_mono ());
        s_notify (self, CMQ_WORKER_NOTICE_DEBUG,
                  "READY sent endpoint=%s service=%s", self->endpoint,
                  self->service);
    }
}

//  Closes the current socket (the broker is dead or has forgotten us) and
//  opens a fresh one, which says READY when connected, so the broker sees
//  a new worker, once. -1 with the reason in error if no socket opened.
static int
s_connect (cmq_worker_t *self, char *error, size_t error_size)
{
    s_close (self, false);
    self->socket = s_new_socket (self, error, error_size);
    int64_t now_ms = zclock_mono ();
    cmq_worker_fsm_on_connect (self->fsm, now_ms);
    if (!self->socket) {
        //  Retry after the backoff, as if the broker had refused us.
        cmq_worker_fsm_on_receive (self->fsm, now_ms,
                                   CMQ_WORKER_HEARD_DISCONNECT);
        return -1;
    }
    self->generation++;
    s_send_ready (self);
    return 0;
}

cmq_worker_t *
cmq_worker_new (const cmq_worker_config_t *config, char *error,
                size_t error_size)
{
    cmq_worker_config_t defaults;
    if (!config) {
        cmq_worker_config_defaults (&defaults);
        config = &defaults;
    }
    cmq_worker_t *self = (cmq_worker_t *) zmalloc (sizeof (cmq_worker_t));
    if (s_apply_config (self, config, error, error_size) ||
        s_connect (self, error, error_size)) {
        cmq_worker_destroy (&self);
        return NULL;
    }
    return self;
}

void
cmq_worker_destroy (cmq_worker_t **self_p)
{
    assert (self_p);
    cmq_worker_t *self = *self_p;
    if (!self)
        return;
    if (self->socket) {
        //  Lets the broker re-dispatch our requests now rather than after
        //  expiry, and gives a last reply a moment to leave.
        zsock_set_linger (self->socket, S_CLOSE_LINGER_MS);
        s_close (self, false);
    }
    cmq_worker_fsm_destroy (&self->fsm);
    free (self->endpoint);
    free (self->service);
    free (self->curve_server);
    free (self->curve_cert);
    free (self);
    *self_p = NULL;
}

void
cmq_worker_tick (cmq_worker_t *self)
{
    assert (self);
    cmq_worker_action_t action =
      cmq_worker_fsm_on_tick (self->fsm, zclock_mono ());
    if (action == CMQ_WORKER_DO_RECONNECT) {
        s_notify (self, CMQ_WORKER_NOTICE_INFO,
                  "reconnecting to broker endpoint=%s service=%s",
                  self->endpoint, self->service);
        if (s_connect (self, self->errstr, sizeof (self->errstr)))
            s_notify (self, CMQ_WORKER_NOTICE_WARNING, "reconnect failed: %s",
                      self->errstr);
        return;
    }
    if (self->socket && cmq_worker_fsm_is_waiting (self->fsm)) {
        //  Silent for liveness intervals: close now, reconnect after the
        //  backoff, with no socket in between.
        s_notify (self, CMQ_WORKER_NOTICE_INFO,
                  "broker silent, closing socket endpoint=%s", self->endpoint);
        s_close (self, false);
    }
    //  Before any HEARTBEAT, so none goes out ahead of READY on a
    //  connection that just came up (the broker would not know us).
    s_send_ready (self);
    if (action == CMQ_WORKER_DO_HEARTBEAT) {
        if (self->is_ready_sent) {
            zmsg_t *heartbeat = cmq_mdp_worker_signal (CMQ_MDPW_HEARTBEAT);
            s_send (self, &heartbeat);
        }
        //  Counted as sent even if it could not go (no connection, or the
        //  broker not reading): retrying every poll would spin.
        cmq_worker_fsm_on_send (self->fsm, zclock_mono ());
    }
}

//  Strips a REQUEST down to its body, in place: the frames move, nothing
//  is copied. Fills the ticket with the client address.
static zmsg_t *
s_take_request (cmq_worker_t *self, zmsg_t **msg_p, cmq_worker_ticket_t *ticket)
{
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    for (int index = 0; index < 3; index++) {  //  "", MDPW01, command
        zframe_t *frame = zmsg_pop (msg);
        zframe_destroy (&frame);
    }
    ticket->address = zmsg_pop (msg);
    ticket->generation = self->generation;
    zframe_t *delimiter = zmsg_pop (msg);
    zframe_destroy (&delimiter);
    return msg;
}

//  Acts on one message from the broker. Returns a request body, or NULL
//  when the message was something else (handled or dropped).
static zmsg_t *
s_handle_message (cmq_worker_t *self, zmsg_t **msg_p,
                  cmq_worker_ticket_t *ticket)
{
    int64_t now_ms = zclock_mono ();
    cmq_mdp_message_t parsed;
    cmq_mdp_status_t status = cmq_mdp_parse (*msg_p, &parsed);
    if (status == CMQ_MDP_OK && parsed.kind == CMQ_MDP_FROM_WORKER) {
        switch (parsed.command) {
            case CMQ_MDPW_REQUEST:
                cmq_worker_fsm_on_receive (self->fsm, now_ms,
                                           CMQ_WORKER_HEARD_WORK);
                return s_take_request (self, msg_p, ticket);
            case CMQ_MDPW_HEARTBEAT:
                cmq_worker_fsm_on_receive (self->fsm, now_ms,
                                           CMQ_WORKER_HEARD_WORK);
                zmsg_destroy (msg_p);
                return NULL;
            case CMQ_MDPW_DISCONNECT:
                s_notify (self, CMQ_WORKER_NOTICE_INFO,
                          "broker said DISCONNECT endpoint=%s", self->endpoint);
                cmq_worker_fsm_on_receive (self->fsm, now_ms,
                                           CMQ_WORKER_HEARD_DISCONNECT);
                zmsg_destroy (msg_p);
                //  The broker has forgotten this socket: close it now, so
                //  nothing more goes out on it during the backoff.
                s_close (self, true);
                return NULL;
            default:
                status = CMQ_MDP_UNKNOWN_COMMAND;  //  READY, REPLY
                break;
        }
    } else if (status == CMQ_MDP_OK)
        status = CMQ_MDP_UNKNOWN_HEADER;  //  MDPC01 to a worker
    //  Still a sign of life from the broker, just not one we can use.
    cmq_worker_fsm_on_receive (self->fsm, now_ms, CMQ_WORKER_HEARD_OTHER);
    s_notify (self, CMQ_WORKER_NOTICE_WARNING,
              "dropped message from broker endpoint=%s frames=%zu: %s",
              self->endpoint, zmsg_size (*msg_p), cmq_mdp_status_str (status));
    zmsg_destroy (msg_p);
    return NULL;
}

//  Poll timeout: the sooner of the caller's deadline and the fsm's next
//  event, in zmq_poll's units.
static long
s_poll_timeout (cmq_worker_t *self, int64_t now_ms, int64_t deadline_ms)
{
    int64_t wait_ms = cmq_worker_fsm_wait_ms (self->fsm, now_ms);
    if (deadline_ms >= 0 && deadline_ms - now_ms < wait_ms)
        wait_ms = deadline_ms - now_ms;
    if (wait_ms < 0)
        wait_ms = 0;
    return wait_ms > INT_MAX ? INT_MAX : (long) wait_ms;
}

//  Waits up to timeout_ms for the socket to be readable, or, before READY
//  went out, for its connection to come up. 1 if readable, 0 if not, -1
//  if interrupted or the context is gone.
static int
s_wait_readable (cmq_worker_t *self, long timeout_ms)
{
    if (!self->socket) {
        zclock_sleep ((int) timeout_ms);
        return zsys_interrupted ? -1 : 0;
    }
    short events = ZMQ_POLLIN | (self->is_ready_sent ? 0 : ZMQ_POLLOUT);
    zmq_pollitem_t item = { zsock_resolve (self->socket), 0, events, 0 };
    int rc = zmq_poll (&item, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR && !zsys_interrupted ? 0 : -1;
    return (item.revents & ZMQ_POLLIN) ? 1 : 0;
}

zmsg_t *
cmq_worker_recv (cmq_worker_t *self, int timeout_ms,
                 cmq_worker_ticket_t *ticket)
{
    assert (self);
    assert (ticket);
    ticket->address = NULL;
    ticket->generation = 0;
    int64_t deadline_ms = timeout_ms < 0 ? -1 : zclock_mono () + timeout_ms;
    int drained_late = 0;
    while (!zsys_interrupted) {
        cmq_worker_tick (self);
        int64_t now_ms = zclock_mono ();
        bool is_late = deadline_ms >= 0 && now_ms >= deadline_ms;
        if (is_late && drained_late++ >= S_MAX_DRAIN_AFTER_DEADLINE)
            return NULL;
        int readable =
          s_wait_readable (self, s_poll_timeout (self, now_ms, deadline_ms));
        if (readable < 0)
            return NULL;
        if (readable == 0) {
            if (is_late)
                return NULL;
            continue;
        }
        zmsg_t *msg = zmsg_recv (self->socket);
        if (!msg)
            return NULL;  //  interrupted
        zmsg_t *body = s_handle_message (self, &msg, ticket);
        if (body)
            return body;
    }
    return NULL;
}

int
cmq_worker_reply (cmq_worker_t *self, cmq_worker_ticket_t *ticket,
                  zmsg_t **body_p)
{
    assert (self);
    assert (ticket);
    assert (body_p);
    if (!ticket->address || ticket->generation != self->generation ||
        !self->socket) {
        //  The broker forgot the socket this came in on and has given the
        //  request to another worker; a reply now would be a forgery.
        snprintf (self->errstr, sizeof (self->errstr),
                  "dropped stale reply generation=%" PRIu64 " current=%" PRIu64,
                  ticket->generation, self->generation);
        s_notify (self, CMQ_WORKER_NOTICE_DEBUG, "%s", self->errstr);
        zframe_destroy (&ticket->address);
        zmsg_destroy (body_p);
        return -1;
    }
    if (!*body_p)
        *body_p = zmsg_new ();
    if (zmsg_size (*body_p) == 0)
        zmsg_addmem (*body_p, NULL, 0);  //  MDP needs a body frame
    zmsg_t *msg = cmq_mdp_worker_reply (&ticket->address, body_p);
    if (s_send (self, &msg)) {
        snprintf (self->errstr, sizeof (self->errstr),
                  "reply dropped: broker not reading endpoint=%s",
                  self->endpoint);
        s_notify (self, CMQ_WORKER_NOTICE_WARNING, "%s", self->errstr);
        return -1;
    }
    return 0;
}

zsock_t *
cmq_worker_socket (cmq_worker_t *self)
{
    assert (self);
    return self->socket;
}

uint64_t
cmq_worker_generation (cmq_worker_t *self)
{
    assert (self);
    return self->generation;
}
