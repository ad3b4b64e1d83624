//  worker.c - the Majordomo worker library: one service, one or more brokers
//
//  One worker_link per broker does the protocol; this file checks the
//  config, polls every link's socket at once and hands requests out in
//  turn. No log lines here: failed calls keep their reason in
//  self->errstr, and what happens inside recv and tick goes to the
//  caller's notify hook.

#include "cartmq/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cartmq/mdp.h"
#include "cartmq/endpoint_list.h"
#include "error.h"
#include "worker_link.h"

#define S_DEFAULT_RECONNECT_MIN_MS 100
#define S_DEFAULT_RECONNECT_MAX_MS 1000
//  A recv past its deadline still drains what is already queued, up to
//  this many messages, so a flood cannot hold it forever.
#define S_MAX_DRAIN_AFTER_DEADLINE 100

struct _cmq_worker_t {
    char *service;                        //  service we serve
    char *curve_server;                   //  broker's public cert, or NULL
    char *curve_cert;                     //  our secret cert file, or NULL
    cmq_worker_link_settings_t settings;  //  what every link shares
    cmq_worker_link_t **links;            //  one per broker, config order
    size_t link_count;
    zmq_pollitem_t *items;  //  the last poll's items, link_count at most
    size_t *item_links;     //  the link each item polls
    size_t item_count;      //  items in the last poll
    size_t next_link;       //  where the next turn starts (fairness)
    //  Per link: a read may find a message without polling first (the
    //  last poll said readable, or the last read found one), and the recv
    //  call in which a read last found nothing.
    bool *has_input;
    uint64_t *empty_in_call;
    uint64_t call;                 //  cmq_worker_recv calls so far
    char errstr[CMQ_ERRSTR_SIZE];  //  why the last call failed
};

const char *
cmq_worker_errstr (cmq_worker_t *self)
{
    assert (self);
    return self->errstr[0] ? self->errstr : "no error";
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

//  Checks the settings every broker shares; -1 with the reason in error.
static int
s_check_config (const cmq_worker_config_t *config, char *error,
                size_t error_size)
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
    if (!config->curve_server != !config->curve_cert) {
        cmq_error_set (error, error_size,
                       "curve: a server public cert and our secret cert "
                       "go together");
        return -1;
    }
    return 0;
}

//  Fills the settings the links share from a checked config.
static void
s_apply_config (cmq_worker_t *self, const cmq_worker_config_t *config)
{
    self->service = strdup (config->service);
    if (config->curve_server) {
        self->curve_server = strdup (config->curve_server);
        self->curve_cert = strdup (config->curve_cert);
    }
    cmq_worker_link_settings_t *settings = &self->settings;
    settings->service = self->service;
    settings->curve_server = self->curve_server;
    settings->curve_cert = self->curve_cert;
    settings->credit = s_or_default (config->credit, 1);
    settings->heartbeat_ms =
      s_or_default (config->heartbeat_ms, CMQ_DEFAULT_HEARTBEAT_MS);
    settings->liveness = s_or_default (config->liveness, CMQ_DEFAULT_LIVENESS);
    settings->reconnect_min_ms =
      s_or_default (config->reconnect_min_ms, S_DEFAULT_RECONNECT_MIN_MS);
    settings->reconnect_max_ms =
      s_or_default (config->reconnect_max_ms, S_DEFAULT_RECONNECT_MAX_MS);
    settings->notify = config->notify;
    settings->notify_arg = config->notify_arg;
}

//  Opens one link per endpoint; -1 with the reason if any would not open.
static int
s_open_links (cmq_worker_t *self, zlist_t *endpoints, char *error,
              size_t error_size)
{
    size_t count = zlist_size (endpoints);
    self->links =
      (cmq_worker_link_t **) zmalloc (count * sizeof (cmq_worker_link_t *));
    self->items = (zmq_pollitem_t *) zmalloc (count * sizeof (zmq_pollitem_t));
    self->item_links = (size_t *) zmalloc (count * sizeof (size_t));
    self->has_input = (bool *) zmalloc (count * sizeof (bool));
    self->empty_in_call = (uint64_t *) zmalloc (count * sizeof (uint64_t));
    for (const char *endpoint = (const char *) zlist_first (endpoints);
         endpoint; endpoint = (const char *) zlist_next (endpoints)) {
        cmq_worker_link_t *link =
          cmq_worker_link_new (&self->settings, endpoint, error, error_size);
        if (!link)
            return -1;
        self->links[self->link_count++] = link;
    }
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
    if (s_check_config (config, error, error_size))
        return NULL;
    zlist_t *endpoints =
      cmq_endpoint_list_new (config->endpoint, config->endpoints,
                             config->endpoint_count, error, error_size);
    if (!endpoints)
        return NULL;
    cmq_worker_t *self = (cmq_worker_t *) zmalloc (sizeof (cmq_worker_t));
    s_apply_config (self, config);
    if (s_open_links (self, endpoints, error, error_size))
        cmq_worker_destroy (&self);
    zlist_destroy (&endpoints);
    return self;
}

void
cmq_worker_destroy (cmq_worker_t **self_p)
{
    assert (self_p);
    cmq_worker_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->link_count; index++)
        cmq_worker_link_destroy (&self->links[index]);
    free (self->links);
    free (self->items);
    free (self->item_links);
    free (self->has_input);
    free (self->empty_in_call);
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
    for (size_t index = 0; index < self->link_count; index++)
        cmq_worker_link_tick (self->links[index]);
}

//  Poll timeout: the sooner of the caller's deadline and any link's next
//  event, in zmq_poll's units.
static long
s_poll_timeout (cmq_worker_t *self, int64_t now_ms, int64_t deadline_ms)
{
    int64_t wait_ms = INT_MAX;
    for (size_t index = 0; index < self->link_count; index++) {
        int64_t link_ms = cmq_worker_link_wait_ms (self->links[index], now_ms);
        if (link_ms < wait_ms)
            wait_ms = link_ms;
    }
    if (deadline_ms >= 0 && deadline_ms - now_ms < wait_ms)
        wait_ms = deadline_ms - now_ms;
    return wait_ms < 0 ? 0 : (long) wait_ms;
}

//  Waits up to timeout_ms for any link's socket to be readable, or, before
//  its READY went out, for its connection to come up; marks the readable
//  ones. 1 if one is readable, 0 if none, -1 if interrupted or the
//  context is gone.
static int
s_wait_readable (cmq_worker_t *self, long timeout_ms)
{
    self->item_count = 0;
    for (size_t index = 0; index < self->link_count; index++)
        if (cmq_worker_link_poll_item (self->links[index],
                                       &self->items[self->item_count]))
            self->item_links[self->item_count++] = index;
    if (self->item_count == 0) {
        //  Every broker is in its reconnect backoff.
        zclock_sleep ((int) timeout_ms);
        return zsys_interrupted ? -1 : 0;
    }
    int rc = zmq_poll (self->items, (int) self->item_count, timeout_ms);
    if (rc < 0)
        return errno == EINTR && !zsys_interrupted ? 0 : -1;
    int readable = 0;
    for (size_t item = 0; item < self->item_count; item++)
        if (self->items[item].revents & ZMQ_POLLIN) {
            self->has_input[self->item_links[item]] = true;
            readable = 1;
        }
    return readable;
}

//  Reads link index (waiting up to wait_ms) and keeps its input state.
static zmsg_t *
s_read_link (cmq_worker_t *self, size_t index, int wait_ms,
             cmq_worker_ticket_t *ticket)
{
    bool is_empty = false;
    zmsg_t *body =
      cmq_worker_link_recv (self->links[index], ticket, wait_ms, &is_empty);
    self->has_input[index] = !is_empty;
    if (is_empty)
        self->empty_in_call[index] = self->call;
    if (body)
        ticket->broker = index;
    return body;
}

//  Reads one message from each link that may have input, in turn,
//  starting after the link last taken from, until one is a request: a
//  broker with a backlog gets one turn in each round, like every other.
//  No poll: a read that finds a message costs no system call.
static zmsg_t *
s_take_in_turn (cmq_worker_t *self, cmq_worker_ticket_t *ticket)
{
    for (size_t step = 0; step < self->link_count; step++) {
        size_t index = (self->next_link + step) % self->link_count;
        if (!self->has_input[index])
            continue;
        zmsg_t *body = s_read_link (self, index, 0, ticket);
        if (body) {
            self->next_link = (index + 1) % self->link_count;
            return body;
        }
    }
    return NULL;
}

//  True if some link may still have input, or if not every link with a
//  socket was found empty by a read in this call: a read that finds
//  nothing has just taken in libzmq's pending commands, so it answers
//  "nothing now" as surely as a zero-timeout poll would.
static bool
s_worth_looking (cmq_worker_t *self)
{
    for (size_t index = 0; index < self->link_count; index++) {
        if (self->has_input[index])
            return true;
        if (cmq_worker_link_socket (self->links[index]) &&
            self->empty_in_call[index] != self->call)
            return true;
    }
    return false;
}

//  Waits for input up to wait_ms. One broker that can block is read
//  directly (no poll at all); otherwise every link is polled. A body if
//  the direct read got a request; NULL otherwise, with *rc -1 if the
//  wait was interrupted.
static zmsg_t *
s_wait (cmq_worker_t *self, long wait_ms, cmq_worker_ticket_t *ticket, int *rc)
{
    *rc = 0;
    if (self->link_count == 1 && wait_ms > 0 &&
        cmq_worker_link_can_block (self->links[0])) {
        zmsg_t *body = s_read_link (self, 0, (int) wait_ms, ticket);
        //  A message that was not a request: there may be more behind it.
        *rc = self->has_input[0] ? 1 : 0;
        if (!body && zsys_interrupted)
            *rc = -1;
        return body;
    }
    *rc = s_wait_readable (self, wait_ms);
    return NULL;
}

zmsg_t *
cmq_worker_recv (cmq_worker_t *self, int timeout_ms,
                 cmq_worker_ticket_t *ticket)
{
    assert (self);
    assert (ticket);
    ticket->address = NULL;
    ticket->generation = 0;
    ticket->broker = 0;
    self->call++;
    int64_t deadline_ms = timeout_ms < 0 ? -1 : zclock_mono () + timeout_ms;
    int drained_late = 0;
    while (!zsys_interrupted) {
        cmq_worker_tick (self);
        int64_t now_ms = zclock_mono ();
        bool is_late = deadline_ms >= 0 && now_ms >= deadline_ms;
        if (is_late && drained_late++ >= S_MAX_DRAIN_AFTER_DEADLINE)
            return NULL;
        zmsg_t *body = s_take_in_turn (self, ticket);
        if (body)
            return body;
        long wait_ms = s_poll_timeout (self, now_ms, deadline_ms);
        //  Past the deadline, a call that has just read every broker dry
        //  is done; before it, the wait below still runs (a link that
        //  wants its tick now yields a zero wait, not an early NULL).
        if (is_late && !s_worth_looking (self))
            return NULL;
        int rc = 0;
        body = s_wait (self, wait_ms, ticket, &rc);
        if (body)
            return body;
        if (rc < 0)
            return NULL;
        if (rc == 0 && is_late)
            return NULL;
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
    if (ticket->broker >= self->link_count) {
        snprintf (self->errstr, sizeof (self->errstr),
                  "dropped reply for unknown broker index=%zu brokers=%zu",
                  ticket->broker, self->link_count);
        zframe_destroy (&ticket->address);
        zmsg_destroy (body_p);
        return -1;
    }
    return cmq_worker_link_reply (self->links[ticket->broker], ticket, body_p,
                                  self->errstr, sizeof (self->errstr));
}

size_t
cmq_worker_brokers (cmq_worker_t *self)
{
    assert (self);
    return self->link_count;
}

const char *
cmq_worker_broker_endpoint (cmq_worker_t *self, size_t index)
{
    assert (self);
    assert (index < self->link_count);
    return cmq_worker_link_endpoint (self->links[index]);
}

zsock_t *
cmq_worker_broker_socket (cmq_worker_t *self, size_t index)
{
    assert (self);
    assert (index < self->link_count);
    return cmq_worker_link_socket (self->links[index]);
}

uint64_t
cmq_worker_generation (cmq_worker_t *self, size_t index)
{
    assert (self);
    assert (index < self->link_count);
    return cmq_worker_link_generation (self->links[index]);
}
