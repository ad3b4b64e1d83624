//  broker_shell.c - the broker's sockets, timers and signals

#include "broker_shell.h"

#include <signal.h>
#include <time.h>

#include "cartmq/curve.h"
#include "cartmq/log.h"
#include "cartmq/mdp.h"

//  Messages handled per wake-up before the outbox is flushed and timers
//  get a chance: large enough to amortise the flush, small enough that a
//  flood cannot starve heartbeats.
#define S_BATCH 256

struct _broker_shell_t {
    broker_core_t *core;
    broker_outbox_t *outbox;
    zsock_t *router;
    zloop_t *loop;
    zactor_t *auth;       //  zauth when CURVE is on, else NULL
    char *curve_clients;  //  allow-list directory, re-read on SIGHUP
};

static volatile sig_atomic_t s_reload_requested = 0;

static void
s_on_sighup (int signum)
{
    (void) signum;
    s_reload_requested = 1;
}

static int64_t
s_now_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

//  True for tcp:// endpoints whose host is not a loopback address.
static bool
s_is_public (const char *endpoint)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    return strncmp (host, "127.", 4) != 0 && strncmp (host, "localhost:", 10) &&
           strncmp (host, "[::1]:", 6) != 0;
}

static int
s_setup_curve (broker_shell_t *self, const broker_shell_config_t *config)
{
    char error[256];
    zcert_t *cert =
      cmq_curve_load_secret (config->curve_secret, error, sizeof (error));
    if (!cert) {
        cmq_log_error ("--curve-secret: %s", error);
        return -1;
    }
    if (!config->curve_clients || !zsys_file_exists (config->curve_clients)) {
        cmq_log_error ("--curve-clients: not a readable directory: %s",
                       config->curve_clients ? config->curve_clients : "");
        zcert_destroy (&cert);
        return -1;
    }
    self->curve_clients = strdup (config->curve_clients);
    self->auth = zactor_new (zauth, NULL);
    //  Verbose zauth logs each ZAP decision with the peer's address, which
    //  is how refusals reach the log.
    zstr_sendx (self->auth, "VERBOSE", NULL);
    zsock_wait (self->auth);
    zstr_sendx (self->auth, "CURVE", self->curve_clients, NULL);
    zsock_wait (self->auth);
    zcert_apply (cert, self->router);
    zsock_set_curve_server (self->router, 1);
    zcert_destroy (&cert);
    return 0;
}

static void
s_flush (broker_shell_t *self)
{
    if (broker_outbox_size (self->outbox))
        broker_outbox_send (self->outbox, self->router);
}

static int
s_on_router (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    broker_shell_t *self = (broker_shell_t *) arg;
    for (int count = 0; count < S_BATCH; count++) {
        if (count && !(zsock_events (router) & ZMQ_POLLIN))
            break;
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            return zsys_interrupted ? -1 : 0;
        broker_core_on_message (self->core, &msg, s_now_us (), self->outbox);
    }
    s_flush (self);
    return 0;
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    broker_shell_t *self = (broker_shell_t *) arg;
    if (s_reload_requested) {
        s_reload_requested = 0;
        if (self->auth) {
            cmq_log_info ("SIGHUP: re-reading allowed keys dir=%s",
                          self->curve_clients);
            zstr_sendx (self->auth, "CURVE", self->curve_clients, NULL);
            zsock_wait (self->auth);
        }
    }
    broker_core_on_tick (self->core, s_now_us (), self->outbox);
    s_flush (self);
    return 0;
}

broker_shell_t *
broker_shell_new (const broker_shell_config_t *config)
{
    assert (config && config->endpoints);
    broker_shell_t *self = (broker_shell_t *) zmalloc (sizeof (*self));
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_maxmsgsize (self->router, CMQ_MAX_FRAME_BYTES);
    zsock_set_linger (self->router, 100);
    //  Replies to a slow client wait rather than being dropped at 1000.
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    if (config->curve_secret && s_setup_curve (self, config)) {
        broker_shell_destroy (&self);
        return NULL;
    }
    for (const char *endpoint = (const char *) zlist_first (config->endpoints);
         endpoint; endpoint = (const char *) zlist_next (config->endpoints)) {
        if (zsock_bind (self->router, "%s", endpoint) < 0) {
            cmq_log_error ("cannot bind %s: %s", endpoint,
                           zmq_strerror (zmq_errno ()));
            broker_shell_destroy (&self);
            return NULL;
        }
        if (!self->auth && s_is_public (endpoint))
            cmq_log_warning ("bound %s without CURVE: traffic is plain text",
                             endpoint);
        cmq_log_info ("listening endpoint=%s curve=%s", endpoint,
                      self->auth ? "on" : "off");
    }
    self->core = broker_core_new (&config->core, s_now_us ());
    self->outbox = broker_outbox_new ();
    self->loop = zloop_new ();
    zloop_reader (self->loop, self->router, s_on_router, self);
    //  Ticks often enough for heartbeats and queue timeouts to be on time
    //  within a tenth of an interval, never more than every 10 ms.
    int tick_ms = config->core.heartbeat_ms / 10;
    if (tick_ms > 100)
        tick_ms = 100;
    if (tick_ms < 10)
        tick_ms = 10;
    zloop_timer (self->loop, (size_t) tick_ms, 0, s_on_tick, self);

    struct sigaction action;
    memset (&action, 0, sizeof (action));
    action.sa_handler = s_on_sighup;
    sigemptyset (&action.sa_mask);
    sigaction (SIGHUP, &action, NULL);
    return self;
}

int
broker_shell_run (broker_shell_t *self)
{
    assert (self);
    zloop_start (self->loop);
    //  Tell workers at once, so they look for the next broker now rather
    //  than after liveness intervals.
    broker_core_disconnect_all (self->core, self->outbox);
    s_flush (self);
    return 0;
}

void
broker_shell_destroy (broker_shell_t **self_p)
{
    assert (self_p);
    broker_shell_t *self = *self_p;
    if (!self)
        return;
    zloop_destroy (&self->loop);
    broker_outbox_destroy (&self->outbox);
    broker_core_destroy (&self->core);
    zsock_destroy (&self->router);
    zactor_destroy (&self->auth);
    free (self->curve_clients);
    free (self);
    *self_p = NULL;
}
