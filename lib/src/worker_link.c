//  worker_link.c - a worker's connection to one broker
//
//  No log lines here: what happens goes to the settings' notify hook, each
//  notice naming the broker (broker=ENDPOINT, escaped).

#include "worker_link.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cartmq/log.h"
#include "cartmq/mdp.h"
#include "cartmq/worker_fsm.h"
#include "dealer.h"

//  libzmq retries a lost TCP connection this often on its own.
#define S_TCP_RECONNECT_IVL_MS 100
//  How long a last REPLY or DISCONNECT may take to leave a closed socket.
//  Only a connected socket has anything queued (ZMQ_IMMEDIATE), so this
//  never lets a closed socket deliver to a broker that comes back later.
#define S_CLOSE_LINGER_MS 100
//  Room for the endpoint as notices show it (longer ones end in "...").
#define S_NAME_BYTES 256

struct _cmq_worker_link_t {
    const cmq_worker_link_settings_t *settings;  //  shared, borrowed
    char *endpoint;                              //  broker endpoint
    char name[S_NAME_BYTES];  //  endpoint escaped, for notices
    cmq_worker_fsm_t *fsm;    //  heartbeat and reconnect timing
    zsock_t *socket;          //  DEALER; NULL while waiting to reconnect
    bool is_ready_sent;       //  READY went out on this socket's connection
    uint64_t generation;      //  successful connects so far
};

static void s_notify (cmq_worker_link_t *self, cmq_worker_notice_t level,
                      const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

//  Tells the caller what the link did on its own. Formatting costs
//  nothing when there is no hook.
static void
s_notify (cmq_worker_link_t *self, cmq_worker_notice_t level,
          const char *format, ...)
{
    if (!self->settings->notify)
        return;
    char text[512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    self->settings->notify (self->settings->notify_arg, level, text);
}

//  Sends without ever blocking: a broker that stopped reading must not
//  stall the worker. Returns 0, or -1 if the message was dropped.
//  The socket's send timeout is 0, so a full pipe or no connection fails
//  the first frame at once (libzmq checks the high-water mark per message,
//  never mid-message); asking ZMQ_EVENTS first would only cost two more
//  system calls per reply.
static int
s_send (cmq_worker_link_t *self, zmsg_t **msg_p)
{
    if (!self->socket) {
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
s_new_socket (cmq_worker_link_t *self, char *error, size_t error_size)
{
    cmq_dealer_config_t dealer = { 0 };
    dealer.endpoint = self->endpoint;
    dealer.curve_server = self->settings->curve_server;
    dealer.curve_cert = self->settings->curve_cert;
    dealer.send_timeout_ms = 0;
    //  Nothing is queued before the connection is up: READY is sent when
    //  it is (s_send_ready), so no READY can wait in a socket and register
    //  later, after we gave up on that socket (§5).
    dealer.is_immediate = true;
    dealer.reconnect_ivl_ms = S_TCP_RECONNECT_IVL_MS;
    zsock_t *socket = cmq_dealer_new (&dealer, error, error_size);
    if (socket)
        //  Read only when polled readable, but never wait even so: one
        //  broker must not hold up the others.
        zsock_set_rcvtimeo (socket, 0);
    return socket;
}

//  Closes the socket. Unless the broker has already forgotten us, a
//  registered socket says DISCONNECT first: a broker that is only frozen
//  (SIGSTOP, a long pause) reads it when it resumes and does not keep
//  listing a worker no socket serves.
static void
s_close (cmq_worker_link_t *self, bool is_forgotten)
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
s_send_ready (cmq_worker_link_t *self)
{
    if (!self->socket || self->is_ready_sent ||
        !(zsock_events (self->socket) & ZMQ_POLLOUT))
        return;
    zmsg_t *ready =
      cmq_mdp_worker_ready (self->settings->service, self->settings->credit);
    if (s_send (self, &ready) == 0) {
        self->is_ready_sent = true;
        //  The broker gets a full liveness window from READY on.
        cmq_worker_fsm_on_connect (self->fsm, zclock_mono ());
        s_notify (self, CMQ_WORKER_NOTICE_DEBUG,
                  "READY sent broker=%s service=%s credit=%d", self->name,
                  self->settings->service, self->settings->credit);
    }
}

//  Closes the current socket (the broker is dead or has forgotten us) and
//  opens a fresh one, which says READY when connected, so the broker sees
//  a new worker, once. -1 with the reason in error if no socket opened.
static int
s_connect (cmq_worker_link_t *self, char *error, size_t error_size)
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

cmq_worker_link_t *
cmq_worker_link_new (const cmq_worker_link_settings_t *settings,
                     const char *endpoint, char *error, size_t error_size)
{
    assert (settings);
    assert (endpoint);
    cmq_worker_link_t *self =
      (cmq_worker_link_t *) zmalloc (sizeof (cmq_worker_link_t));
    self->settings = settings;
    self->endpoint = strdup (endpoint);
    cmq_log_escape (endpoint, strlen (endpoint), self->name,
                    sizeof (self->name));
    self->fsm = cmq_worker_fsm_new (settings->heartbeat_ms, settings->liveness,
                                    settings->reconnect_min_ms,
                                    settings->reconnect_max_ms);
    if (s_connect (self, error, error_size))
        cmq_worker_link_destroy (&self);
    return self;
}

void
cmq_worker_link_destroy (cmq_worker_link_t **self_p)
{
    assert (self_p);
    cmq_worker_link_t *self = *self_p;
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
    free (self);
    *self_p = NULL;
}

void
cmq_worker_link_tick (cmq_worker_link_t *self)
{
    assert (self);
    cmq_worker_action_t action =
      cmq_worker_fsm_on_tick (self->fsm, zclock_mono ());
    if (action == CMQ_WORKER_DO_RECONNECT) {
        s_notify (self, CMQ_WORKER_NOTICE_INFO,
                  "reconnecting to broker=%s service=%s", self->name,
                  self->settings->service);
        char error[CMQ_ERRSTR_SIZE] = "";
        if (s_connect (self, error, sizeof (error)))
            s_notify (self, CMQ_WORKER_NOTICE_WARNING,
                      "reconnect failed broker=%s: %s", self->name, error);
        return;
    }
    if (self->socket && cmq_worker_fsm_is_waiting (self->fsm)) {
        //  Silent for liveness intervals: close now, reconnect after the
        //  backoff, with no socket in between.
        s_notify (self, CMQ_WORKER_NOTICE_INFO,
                  "broker silent, closing socket broker=%s", self->name);
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

int64_t
cmq_worker_link_wait_ms (cmq_worker_link_t *self, int64_t now_ms)
{
    assert (self);
    return cmq_worker_fsm_wait_ms (self->fsm, now_ms);
}

bool
cmq_worker_link_poll_item (cmq_worker_link_t *self, zmq_pollitem_t *item)
{
    assert (self);
    assert (item);
    if (!self->socket)
        return false;
    item->socket = zsock_resolve (self->socket);
    item->fd = 0;
    item->events = ZMQ_POLLIN | (self->is_ready_sent ? 0 : ZMQ_POLLOUT);
    item->revents = 0;
    return true;
}

//  Strips a REQUEST down to its body, in place: the frames move, nothing
//  is copied. Fills the ticket with the client address.
static zmsg_t *
s_take_request (cmq_worker_link_t *self, zmsg_t **msg_p,
                cmq_worker_ticket_t *ticket)
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

//  Acts on a message that is not a REQUEST; destroys it.
static void
s_handle_other (cmq_worker_link_t *self, zmsg_t **msg_p,
                const cmq_mdp_message_t *parsed, cmq_mdp_status_t status)
{
    int64_t now_ms = zclock_mono ();
    if (status == CMQ_MDP_OK && parsed->command == CMQ_MDPW_HEARTBEAT) {
        cmq_worker_fsm_on_receive (self->fsm, now_ms, CMQ_WORKER_HEARD_WORK);
        zmsg_destroy (msg_p);
        return;
    }
    if (status == CMQ_MDP_OK && parsed->command == CMQ_MDPW_DISCONNECT) {
        s_notify (self, CMQ_WORKER_NOTICE_INFO,
                  "broker said DISCONNECT broker=%s", self->name);
        cmq_worker_fsm_on_receive (self->fsm, now_ms,
                                   CMQ_WORKER_HEARD_DISCONNECT);
        zmsg_destroy (msg_p);
        //  The broker has forgotten this socket: close it now, so nothing
        //  more goes out on it during the backoff.
        s_close (self, true);
        return;
    }
    if (status == CMQ_MDP_OK)
        status = CMQ_MDP_UNKNOWN_COMMAND;  //  READY, REPLY
    //  Still a sign of life from the broker, just not one we can use.
    cmq_worker_fsm_on_receive (self->fsm, now_ms, CMQ_WORKER_HEARD_OTHER);
    s_notify (self, CMQ_WORKER_NOTICE_WARNING,
              "dropped message from broker=%s frames=%zu: %s", self->name,
              zmsg_size (*msg_p), cmq_mdp_status_str (status));
    zmsg_destroy (msg_p);
}

bool
cmq_worker_link_can_block (cmq_worker_link_t *self)
{
    assert (self);
    return self->socket && self->is_ready_sent;
}

//  A read with a timeout costs no system call when a message is already
//  there, and one wait when none is, where zmq_poll first polls with no
//  timeout and asks ZMQ_EVENTS before and after (five or six calls).
static zmsg_t *
s_read (zsock_t *socket, int wait_ms)
{
    if (wait_ms == 0)
        return zmsg_recv (socket);
    zsock_set_rcvtimeo (socket, wait_ms);
    zmsg_t *msg = zmsg_recv (socket);
    zsock_set_rcvtimeo (socket, 0);
    return msg;
}

zmsg_t *
cmq_worker_link_recv (cmq_worker_link_t *self, cmq_worker_ticket_t *ticket,
                      int wait_ms, bool *is_empty)
{
    assert (self);
    assert (ticket);
    assert (is_empty);
    *is_empty = true;
    if (!self->socket)
        return NULL;
    zmsg_t *msg = s_read (self->socket, wait_ms);
    if (!msg)
        return NULL;  //  nothing there, or interrupted
    *is_empty = false;
    cmq_mdp_message_t parsed;
    cmq_mdp_status_t status = cmq_mdp_parse (msg, &parsed);
    if (status == CMQ_MDP_OK && parsed.kind != CMQ_MDP_FROM_WORKER)
        status = CMQ_MDP_UNKNOWN_HEADER;  //  MDPC01 to a worker
    if (status == CMQ_MDP_OK && parsed.command == CMQ_MDPW_REQUEST) {
        cmq_worker_fsm_on_receive (self->fsm, zclock_mono (),
                                   CMQ_WORKER_HEARD_WORK);
        return s_take_request (self, &msg, ticket);
    }
    s_handle_other (self, &msg, &parsed, status);
    return NULL;
}

int
cmq_worker_link_reply (cmq_worker_link_t *self, cmq_worker_ticket_t *ticket,
                       zmsg_t **body_p, char *errstr, size_t errstr_size)
{
    assert (self);
    assert (ticket);
    assert (body_p);
    if (!ticket->address || ticket->generation != self->generation ||
        !self->socket) {
        //  The broker forgot the socket this came in on and has given the
        //  request to another worker; a reply now would be a forgery.
        snprintf (errstr, errstr_size,
                  "dropped stale reply broker=%s generation=%" PRIu64
                  " current=%" PRIu64,
                  self->name, ticket->generation, self->generation);
        s_notify (self, CMQ_WORKER_NOTICE_DEBUG, "%s", errstr);
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
        snprintf (errstr, errstr_size,
                  "reply dropped: broker not reading broker=%s", self->name);
        s_notify (self, CMQ_WORKER_NOTICE_WARNING, "%s", errstr);
        return -1;
    }
    return 0;
}

zsock_t *
cmq_worker_link_socket (cmq_worker_link_t *self)
{
    assert (self);
    return self->socket;
}

uint64_t
cmq_worker_link_generation (cmq_worker_link_t *self)
{
    assert (self);
    return self->generation;
}

const char *
cmq_worker_link_endpoint (cmq_worker_link_t *self)
{
    assert (self);
    return self->endpoint;
}
