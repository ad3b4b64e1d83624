//  broker_shell.c - the broker's sockets, timers and signals

#include "broker_shell.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cartmq/curve.h"
#include "cartmq/log.h"
#include "cartmq/mdp.h"

static void s_drain_monitor (broker_shell_t *self);

struct _broker_shell_t {
    broker_core_t *core;
    broker_outbox_t *outbox;
    broker_message_t *input;  //  each message read, reused
    zsock_t *router;
    int64_t tick_us;         //  how often timers are checked
    zactor_t *auth;          //  zauth when CURVE is on, else NULL
    zsock_t *monitor;        //  router's handshake failures, when CURVE is on
    char *curve_clients;     //  allow-list directory, re-read on SIGHUP
    uint64_t drops_seen;     //  dropped requests at the last tick
    uint64_t drops_trimmed;  //  dropped requests at the last trim
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

//  Sends a command to zauth and waits for its answer. A signal (SIGHUP)
//  may interrupt the wait; the answer must still be taken, or it would be
//  read as the answer to the next command.
static void
s_auth_command (broker_shell_t *self, const char *command, const char *arg)
{
    zstr_sendx (self->auth, command, arg, NULL);
    while (zsock_wait (self->auth) == -1 && errno == EINTR && !zsys_interrupted)
        ;
}

static bool
s_ends_with (const char *text, const char *suffix)
{
    size_t length = strlen (text), suffix_length = strlen (suffix);
    return length >= suffix_length &&
           streq (text + length - suffix_length, suffix);
}

//  Logs what the allow-list holds. zauth reads the directory itself and
//  says nothing about it, so a typo in a file or an empty directory would
//  otherwise show only as every peer being refused.
static void
s_describe_allowed (const char *dirname)
{
    size_t keys = 0;
    zdir_t *dir = zdir_new (dirname, NULL);
    zfile_t **files = dir ? zdir_flatten (dir) : NULL;
    for (size_t index = 0; files && files[index]; index++) {
        const char *path = zfile_filename (files[index], NULL);
        char error[256];
        zcert_t *cert = NULL;
        if (!zfile_is_regular (files[index]))
            continue;
        if (s_ends_with (path, "_secret"))
            //  zauth skips these; a secret key has no business here
            cmq_log_warning ("allow-list holds a secret certificate, which "
                             "is ignored; keep only public ones there "
                             "file=%s",
                             path);
        else if ((cert = cmq_curve_load_public (path, error, sizeof (error))))
            keys++;
        else
            cmq_log_warning ("allow-list: %s", error);
        zcert_destroy (&cert);
    }
    zdir_flatten_free (&files);
    zdir_destroy (&dir);
    if (keys)
        cmq_log_info ("CURVE allow-list dir=%s keys=%zu", dirname, keys);
    else
        cmq_log_warning ("CURVE allow-list dir=%s holds no public "
                         "certificate: every client and worker is refused",
                         dirname);
}

static bool
s_is_readable_dir (const char *path)
{
    struct stat info;
    return path && stat (path, &info) == 0 && S_ISDIR (info.st_mode) &&
           access (path, R_OK | X_OK) == 0;
}

//  Watches the router's handshakes, so refused peers reach the log:
//  zauth logs the keys it turns away (with the peer's address), but a
//  peer that does not speak CURVE at all is refused by libzmq before any
//  ZAP request, and only a socket monitor hears of it.
static int
s_start_monitor (broker_shell_t *self)
{
    char endpoint[64];
    snprintf (endpoint, sizeof (endpoint), "inproc://cartmq-monitor-%p",
              (void *) self);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor (zsock_resolve (self->router), endpoint, events)) {
        cmq_log_error ("cannot monitor the broker socket: %s",
                       zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->monitor = zsock_new (ZMQ_PAIR);
    zsock_set_linger (self->monitor, 0);
    zsock_set_rcvtimeo (self->monitor, 0);
    if (zsock_connect (self->monitor, "%s", endpoint)) {
        cmq_log_error ("cannot connect the socket monitor: %s",
                       zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

static void
s_log_refusal (uint16_t event, uint32_t value, const char *endpoint)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        cmq_log_warning ("refused connection endpoint=%s reason=\"key not "
                         "allowed\" zap_status=%u (zauth's lines above give "
                         "its ipaddress and client_key)",
                         endpoint, (unsigned) value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
             value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        cmq_log_warning ("refused connection endpoint=%s reason=\"peer does "
                         "not use CURVE (plain text?)\"",
                         endpoint);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
             value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        cmq_log_warning ("refused connection endpoint=%s reason=\"CURVE "
                         "handshake failed (peer has the wrong server "
                         "key?)\"",
                         endpoint);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        cmq_log_warning ("refused connection endpoint=%s reason=\"handshake "
                         "protocol error 0x%08x\"",
                         endpoint, (unsigned) value);
    else
        //  Usually a peer that connected and left, such as a port probe
        cmq_log_info ("handshake not completed endpoint=%s reason=\"%s\"",
                      endpoint, strerror ((int) value));
}

//  A monitor event is [uint16 event, uint32 value][endpoint], in host
//  byte order (zmq_socket_monitor(3)). Read without waiting, each tick.
static void
s_drain_monitor (broker_shell_t *self)
{
    zmsg_t *msg;
    while (self->monitor && (msg = zmsg_recv (self->monitor))) {
        zframe_t *header = zmsg_first (msg);
        zframe_t *address = zmsg_next (msg);
        if (header && zframe_size (header) == 6 && address &&
            zframe_size (address) < 256) {
            uint16_t event;
            uint32_t value;
            memcpy (&event, zframe_data (header), sizeof (event));
            memcpy (&value, zframe_data (header) + 2, sizeof (value));
            char *endpoint = zframe_strdup (address);
            s_log_refusal (event, value, endpoint);
            free (endpoint);
        }
        zmsg_destroy (&msg);
    }
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
    if (!s_is_readable_dir (config->curve_clients)) {
        cmq_log_error ("--curve-clients: not a readable directory: %s",
                       config->curve_clients ? config->curve_clients : "");
        zcert_destroy (&cert);
        return -1;
    }
    self->curve_clients = strdup (config->curve_clients);
    self->auth = zactor_new (zauth, NULL);
    //  Verbose zauth logs each ZAP decision with the peer's address, which
    //  is how refusals of unknown keys reach the log.
    s_auth_command (self, "VERBOSE", NULL);
    s_auth_command (self, "CURVE", self->curve_clients);
    s_describe_allowed (self->curve_clients);
    zcert_apply (cert, self->router);
    zsock_set_curve_server (self->router, 1);
    zcert_destroy (&cert);
    return s_start_monitor (self);
}

//  SIGHUP: zauth builds a new certificate store from the directory on
//  every "CURVE" command, so revoked keys are refused from the next
//  connection on. Connections already made stay up.
static void
s_reload (broker_shell_t *self)
{
    s_reload_requested = 0;
    if (!self->auth) {
        cmq_log_info ("SIGHUP: nothing to reload (CURVE is off)");
        return;
    }
    cmq_log_info ("SIGHUP: re-reading allowed keys dir=%s",
                  self->curve_clients);
    s_auth_command (self, "CURVE", self->curve_clients);
    s_describe_allowed (self->curve_clients);
}

static void
s_flush (broker_shell_t *self)
{
    if (broker_outbox_size (self->outbox))
        broker_outbox_send (self->outbox, self->router);
}

//  After a burst of dropped requests (clients gone, queues expired) the
//  heap is mostly free but glibc keeps it; give it back once the burst is
//  over so RSS returns to where it was. A rare, bounded cost.
#define S_TRIM_AFTER_DROPS 1000

static void
s_trim_after_drops (broker_shell_t *self)
{
    const broker_counters_t *counters = broker_core_counters (self->core);
    uint64_t drops = counters->dropped_expired + counters->dropped_queue_full +
                     counters->dropped_redispatch_limit +
                     counters->dropped_no_service;
    bool burst_over = drops == self->drops_seen;
    self->drops_seen = drops;
    if (burst_over && drops - self->drops_trimmed >= S_TRIM_AFTER_DROPS) {
        malloc_trim (0);
        self->drops_trimmed = drops;
    }
}

static void
s_on_tick (broker_shell_t *self, int64_t now_us)
{
    if (s_reload_requested)
        s_reload (self);
    s_drain_monitor (self);
    broker_core_on_tick (self->core, now_us, self->outbox);
    s_flush (self);
    s_trim_after_drops (self);
}

static broker_shell_t *
s_shell_new (const broker_shell_config_t *config)
{
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
    self->input = broker_message_new ();
    //  Ticks often enough for heartbeats and queue timeouts to be on time
    //  within a tenth of an interval, never more than every 10 ms.
    int tick_ms = config->core.heartbeat_ms / 10;
    if (tick_ms > 100)
        tick_ms = 100;
    if (tick_ms < 10)
        tick_ms = 10;
    self->tick_us = (int64_t) tick_ms * 1000;
    return self;
}

broker_shell_t *
broker_shell_new (const broker_shell_config_t *config)
{
    assert (config && config->endpoints);
    //  SIGHUP must reach only this thread. zauth's thread, had it taken
    //  one, would see its poll interrupted and end (seen with CZMQ 4.2.1):
    //  no new CURVE peer would be admitted and our next command to it would
    //  wait forever. Threads inherit the mask, so block it while the
    //  sockets and actors (and so their threads) are made, then take it
    //  here.
    sigset_t hangup;
    sigemptyset (&hangup);
    sigaddset (&hangup, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &hangup, NULL);
    broker_shell_t *self = s_shell_new (config);
    struct sigaction action;
    memset (&action, 0, sizeof (action));
    action.sa_handler = s_on_sighup;
    sigemptyset (&action.sa_mask);
    sigaction (SIGHUP, &action, NULL);
    pthread_sigmask (SIG_UNBLOCK, &hangup, NULL);
    return self;
}

//  Receives one message, waiting up to wait_ms (0: not at all), and hands
//  it to the core. False on timeout or signal.
static bool
s_receive (broker_shell_t *self, int wait_ms)
{
    zsock_set_rcvtimeo (self->router, wait_ms);
    if (broker_message_recv (self->input, zsock_resolve (self->router)))
        return false;
    broker_core_on_frames (self->core, self->input, s_now_us (), self->outbox);
    //  Now, not at the next read: a held frame can pin libzmq's receive
    //  buffer while the loop waits.
    broker_message_close (self->input);
    return true;
}

//  The loop is a blocking receive that wakes for the next tick, and a send
//  of what the message produced. No poller: when messages are queued,
//  libzmq hands them over without a system call, where a poll and an
//  events check per message cost several (they were a third of the
//  broker's time under load). Nor a non-blocking "anything else?" after
//  each message: its failing check is a system call too, and the next
//  blocking receive answers the same question for free when the answer is
//  yes. Sends to a peer whose pipe is already active cost no system call,
//  so sending after each message loses nothing to batching.
int
broker_shell_run (broker_shell_t *self)
{
    assert (self);
    int64_t next_tick_us = s_now_us () + self->tick_us;
    while (!zsys_interrupted) {
        int64_t now_us = s_now_us ();
        if (now_us >= next_tick_us || s_reload_requested) {
            s_on_tick (self, now_us);
            next_tick_us = now_us + self->tick_us;
        }
        int wait_ms = (int) ((next_tick_us - now_us + 999) / 1000);
        if (s_receive (self, wait_ms))
            s_flush (self);
    }
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
    broker_outbox_destroy (&self->outbox);
    broker_message_destroy (&self->input);
    broker_core_destroy (&self->core);
    if (self->monitor)
        zmq_socket_monitor (zsock_resolve (self->router), NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->router);
    zactor_destroy (&self->auth);
    free (self->curve_clients);
    free (self);
    *self_p = NULL;
}
