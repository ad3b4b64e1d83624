//  broker_shell.c - the broker's sockets, timers and signals

#include "broker_shell.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker_guard.h"
#include "broker_ratelimit.h"
#include "broker_wire.h"
#include "broker_zap.h"
#include "cartmq/curve.h"
#include "cartmq/log.h"
#include "cartmq/mdp.h"

struct _broker_shell_t {
    broker_core_t *core;
    broker_outbox_t *outbox;
    broker_message_t *input;  //  each message read, reused
    zsock_t *router;
    int64_t tick_us;            //  how often timers are checked
    zactor_t *auth;             //  our ZAP handler when CURVE is on, else NULL
    zhashx_t *allowed;          //  Z85 keys allowed now, when CURVE is on
    zactor_t *guard;            //  reads the router's monitor (broker_guard.h)
    bool is_monitored;          //  the router has a monitor to stop
    char *curve_clients;        //  allow-list directory, re-read on SIGHUP
    uint64_t drops_seen;        //  dropped requests at the last tick
    uint64_t drops_trimmed;     //  dropped requests at the last trim
    zlist_t *bound;             //  endpoints as libzmq reports them (char *)
    broker_outbox_sent_t sent;  //  what full peers refused, this send
    uint64_t full_replies;      //  ... summed since the last log line
    uint64_t full_requests;
    uint64_t full_others;
    int64_t full_logged_us;                 //  when that line was last written
    byte full_peer[BROKER_PEER_MAX_BYTES];  //  routing id of the last full peer
    size_t full_peer_size;
    broker_ratelimit_t revoked_limit;  //  messages from revoked keys
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

//  True for an endpoint that others than this host may reach: any
//  transport but ipc and inproc, unless its host is a loopback address or
//  the loopback interface (§6: warn on every such plain bind).
static bool
s_is_public (const char *endpoint)
{
    if (strncmp (endpoint, "ipc://", 6) == 0 ||
        strncmp (endpoint, "inproc://", 9) == 0)
        return false;
    const char *host = strstr (endpoint, "://");
    if (!host)
        return true;
    host += 3;
    //  tcp://source;host:port binds host
    const char *semicolon = strchr (host, ';');
    if (semicolon)
        host = semicolon + 1;
    return strncmp (host, "127.", 4) != 0 &&
           strncmp (host, "localhost:", 10) != 0 &&
           strncmp (host, "[::1]:", 6) != 0 && strncmp (host, "lo:", 3) != 0;
}

//  Hands the allow-list to the ZAP handler and waits until it has it: 0,
//  or -1 if the handler is not working. A signal (SIGHUP) may interrupt
//  the wait; the answer must still be taken, or it would be read as the
//  answer to the next command.
static int
s_zap_set_keys (broker_shell_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "KEYS");
    for (void *item = zhashx_first (self->allowed); item;
         item = zhashx_next (self->allowed))
        zmsg_addstr (msg, (const char *) zhashx_cursor (self->allowed));
    zmsg_send (&msg, self->auth);
    int status;
    while ((status = zsock_wait (self->auth)) == -1 && errno == EINTR &&
           !zsys_interrupted)
        ;
    return status == 0 ? 0 : -1;
}

static bool
s_ends_with (const char *text, const char *suffix)
{
    size_t length = strlen (text), suffix_length = strlen (suffix);
    return length >= suffix_length &&
           streq (text + length - suffix_length, suffix);
}

//  Reads the allow-list: the public keys of the certificates in dirname,
//  and logs what it holds, so a typo in a file or an empty directory does
//  not show only as every peer being refused.
static zhashx_t *
s_load_allowed (const char *dirname)
{
    zhashx_t *allowed = zhashx_new ();
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
        else if ((cert = cmq_curve_load_public (path, error, sizeof (error)))) {
            zhashx_update (allowed, zcert_public_txt (cert), (void *) 1);
            keys++;
        } else
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
    return allowed;
}

static bool
s_is_readable_dir (const char *path)
{
    struct stat info;
    return path && stat (path, &info) == 0 && S_ISDIR (info.st_mode) &&
           access (path, R_OK | X_OK) == 0;
}

//  Watches the router's listeners and handshakes (broker_guard.h): accept
//  failures (out of descriptors) must be acted on at once, from a thread
//  of their own; with CURVE, refused peers reach the log: our ZAP handler
//  logs the keys it turns away, but a peer that does not speak CURVE at
//  all is refused by libzmq before any ZAP request, and only a socket
//  monitor hears of it.
static int
s_start_guard (broker_shell_t *self)
{
    broker_guard_config_t config;
    memset (&config, 0, sizeof (config));
    snprintf (config.monitor, sizeof (config.monitor),
              "inproc://cartmq-monitor-%p", (void *) self);
    for (const char *endpoint = (const char *) zlist_first (self->bound);
         endpoint; endpoint = (const char *) zlist_next (self->bound)) {
        int fd = broker_guard_find_listener (endpoint, config.listeners,
                                             config.listener_count);
        if (fd >= 0 && config.listener_count < BROKER_GUARD_MAX_LISTENERS)
            config.listeners[config.listener_count++] = fd;
        else if (strncmp (endpoint, "inproc://", 9) != 0)
            cmq_log_warning ("cannot find the listening socket of %s: "
                             "running out of descriptors would make "
                             "libzmq spin on it",
                             endpoint);
    }
    int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED;
    if (self->auth)
        events |= ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor (zsock_resolve (self->router), config.monitor,
                            events)) {
        cmq_log_error ("cannot monitor the broker socket: %s",
                       zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->is_monitored = true;
    self->guard = zactor_new (broker_guard_actor, &config);
    return 0;
}

zcert_t *
broker_shell_curve_load (const broker_shell_config_t *config, char *error,
                         size_t error_size)
{
    assert (config && config->curve_secret && error);
    char reason[256];
    zcert_t *cert =
      cmq_curve_load_secret (config->curve_secret, reason, sizeof (reason));
    if (!cert) {
        snprintf (error, error_size, "--curve-secret: %s", reason);
        return NULL;
    }
    if (!s_is_readable_dir (config->curve_clients)) {
        snprintf (error, error_size,
                  "--curve-clients: not a readable directory: %s",
                  config->curve_clients ? config->curve_clients : "");
        zcert_destroy (&cert);
        return NULL;
    }
    return cert;
}

static int
s_setup_curve (broker_shell_t *self, const broker_shell_config_t *config)
{
    char error[BROKER_SHELL_ERROR_BYTES];
    zcert_t *cert = broker_shell_curve_load (config, error, sizeof (error));
    if (!cert) {
        cmq_log_error ("%s", error);
        return -1;
    }
    self->curve_clients = strdup (config->curve_clients);
    self->auth = zactor_new (broker_zap_actor, NULL);
    self->allowed = s_load_allowed (self->curve_clients);
    if (s_zap_set_keys (self)) {
        zcert_destroy (&cert);
        return -1;
    }
    zcert_apply (cert, self->router);
    zsock_set_curve_server (self->router, 1);
    zcert_destroy (&cert);
    return 0;
}

//  SIGHUP: a new allow-list for the ZAP handler (new connections) and for
//  the check of every message (connections already open, §6).
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
    zhashx_destroy (&self->allowed);
    self->allowed = s_load_allowed (self->curve_clients);
    if (s_zap_set_keys (self))
        cmq_log_error ("SIGHUP: the ZAP handler did not take the new "
                       "allow-list; new connections are refused");
}

//  One line a second at most sums up what full peers refused.
static void
s_log_full (broker_shell_t *self, int64_t now_us)
{
    if (!(self->full_replies | self->full_requests | self->full_others) ||
        now_us - self->full_logged_us < 1000000)
        return;
    char peer[CMQ_LOG_ESCAPED_BYTES (32)];
    cmq_log_escape (self->full_peer, self->full_peer_size, peer, sizeof (peer));
    cmq_log_warning (
      "output full: dropped replies=%" PRIu64 " requests=%" PRIu64
      " other=%" PRIu64 " since the last such line; last peer=%s (a peer "
      "that does not read what it is sent)",
      self->full_replies, self->full_requests, self->full_others, peer);
    self->full_logged_us = now_us;
    self->full_replies = self->full_requests = self->full_others = 0;
}

//  Peers that did not read what waits for them: count the replies as
//  dropped (the core counted them delivered), and say so.
static void
s_on_full (broker_shell_t *self)
{
    broker_outbox_sent_t *sent = &self->sent;
    for (size_t index = 0; index < sent->replies_full; index++)
        broker_core_reply_unsent (self->core);
    self->full_replies += sent->replies_full;
    self->full_requests += sent->requests_full;
    self->full_others += sent->others_full;
    memcpy (self->full_peer, sent->last_full_peer, sent->last_full_size);
    self->full_peer_size = sent->last_full_size;
    memset (sent, 0, sizeof (*sent));
    s_log_full (self, s_now_us ());
}

static void
s_flush (broker_shell_t *self)
{
    if (broker_outbox_size (self->outbox)) {
        broker_wire_send (self->outbox, self->router, &self->sent);
        if (self->sent.replies_full | self->sent.requests_full |
            self->sent.others_full)
            s_on_full (self);
    }
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
                     counters->dropped_no_service +
                     counters->dropped_output_full;
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
    broker_core_on_tick (self->core, now_us, self->outbox);
    s_flush (self);
    s_log_full (self, now_us);
    s_trim_after_drops (self);
}

//  A process's soft limit on open files is often 1024 while the hard
//  limit allows far more; every peer costs the broker one descriptor, so
//  take what is allowed.
static void
s_raise_fd_limit (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit)) {
        cmq_log_warning ("cannot read the open files limit: %s",
                         strerror (errno));
        return;
    }
    rlim_t soft = limit.rlim_cur;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit)) {
            cmq_log_warning ("open files limit %llu: cannot raise it to the "
                             "hard limit %llu: %s",
                             (unsigned long long) soft,
                             (unsigned long long) limit.rlim_max,
                             strerror (errno));
            return;
        }
        cmq_log_info ("open files limit raised from %llu to %llu (the hard "
                      "limit)",
                      (unsigned long long) soft,
                      (unsigned long long) limit.rlim_cur);
    } else
        cmq_log_info ("open files limit %llu (the hard limit)",
                      (unsigned long long) soft);
}

//  Binds one endpoint and logs it as libzmq reports it (the real port of
//  :0 or *). A value libzmq refuses is a bad value of the bind key (exit
//  2); a system that refuses (the port in use, say) is not (exit 1).
static int
s_bind (broker_shell_t *self, const char *endpoint, int *exit_code)
{
    if (zmq_bind (zsock_resolve (self->router), endpoint)) {
        int error = zmq_errno ();
        bool is_bad_value = error == EINVAL || error == EPROTONOSUPPORT ||
                            error == ENOCOMPATPROTO || error == ENODEV;
        //  One line on stderr, like every bad value (§2)
        fprintf (stderr, "cartmq-broker: bind: cannot bind %s: %s\n", endpoint,
                 zmq_strerror (error));
        *exit_code = is_bad_value ? 2 : 1;
        return -1;
    }
    char *real = zsock_last_endpoint (self->router);
    const char *shown = real && *real ? real : endpoint;
    zlist_append (self->bound, (void *) shown);
    if (!self->auth && (s_is_public (endpoint) || s_is_public (shown)))
        cmq_log_warning ("bound %s (%s) without CURVE: traffic is plain text",
                         endpoint, shown);
    cmq_log_info ("listening endpoint=%s bind=%s curve=%s", shown, endpoint,
                  self->auth ? "on" : "off");
    zstr_free (&real);
    return 0;
}

static broker_shell_t *
s_shell_new (const broker_shell_config_t *config, int *exit_code)
{
    broker_shell_t *self = (broker_shell_t *) zmalloc (sizeof (*self));
    self->bound = zlist_new ();
    zlist_autofree (self->bound);
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_maxmsgsize (self->router, CMQ_MAX_FRAME_BYTES);
    zsock_set_linger (self->router, 100);
    //  What waits for one peer, each way, is at most this many messages
    //  (§3; docs/protocol.md has the bound in bytes). With ROUTER_MANDATORY
    //  a send to a peer at its cap fails with EAGAIN instead of being
    //  dropped unseen, so the outbox can count it.
    zsock_set_sndhwm (self->router, config->max_peer_output);
    zsock_set_rcvhwm (self->router, config->max_peer_output);
    zsock_set_router_mandatory (self->router, 1);
    //  Fewer connections may wait to be accepted than the guard keeps
    //  descriptors free for (broker_guard.h).
    zsock_set_backlog (self->router, BROKER_GUARD_BACKLOG);
    *exit_code = 1;
    if (config->curve_secret && s_setup_curve (self, config)) {
        broker_shell_destroy (&self);
        return NULL;
    }
    for (const char *endpoint = (const char *) zlist_first (config->endpoints);
         endpoint; endpoint = (const char *) zlist_next (config->endpoints))
        if (s_bind (self, endpoint, exit_code)) {
            broker_shell_destroy (&self);
            return NULL;
        }
    s_raise_fd_limit ();
    if (s_start_guard (self)) {
        broker_shell_destroy (&self);
        return NULL;
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
    *exit_code = 0;
    return self;
}

broker_shell_t *
broker_shell_new (const broker_shell_config_t *config, int *exit_code)
{
    assert (config && config->endpoints && exit_code);
    assert (config->max_peer_output > 0);
    //  SIGHUP must reach only this thread. The ZAP handler's thread, had
    //  it taken one, would see its poll interrupted and end: no new CURVE
    //  peer would be admitted and our next command to it would wait
    //  forever. Threads inherit the mask, so block it while the sockets
    //  and actors (and so their threads) are made, then take it here.
    sigset_t hangup;
    sigemptyset (&hangup);
    sigaddset (&hangup, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &hangup, NULL);
    broker_shell_t *self = s_shell_new (config, exit_code);
    struct sigaction action;
    memset (&action, 0, sizeof (action));
    action.sa_handler = s_on_sighup;
    sigemptyset (&action.sa_mask);
    sigaction (SIGHUP, &action, NULL);
    pthread_sigmask (SIG_UNBLOCK, &hangup, NULL);
    return self;
}

//  A message from a key no longer on the allow-list (revoked by SIGHUP
//  while its connection stays open): dropped, logged at most a few times
//  a second, and the peer forgotten if it was a worker: the core hears a
//  DISCONNECT from it, which re-dispatches its requests (and is ignored
//  for a peer that is not a registered worker).
static void
s_drop_revoked (broker_shell_t *self, const char *key, int64_t now_us)
{
    zmq_msg_t *identity = &self->input->frames[0];
    uint64_t held;
    if (broker_ratelimit_allow (&self->revoked_limit, now_us, &held)) {
        char peer[CMQ_LOG_ESCAPED_BYTES (32)];
        cmq_log_escape (zmq_msg_data (identity), zmq_msg_size (identity), peer,
                        sizeof (peer));
        cmq_log_warning ("dropped message from a key not on the allow-list "
                         "(revoked) client_key=%s peer=%s (%" PRIu64
                         " similar lines held back)",
                         key ? key : "(none)", peer, held);
    }
    zmsg_t *disconnect = zmsg_new ();
    zmsg_addmem (disconnect, zmq_msg_data (identity), zmq_msg_size (identity));
    zmsg_addmem (disconnect, NULL, 0);
    zmsg_addstr (disconnect, CMQ_MDPW_HEADER);
    byte command = CMQ_MDPW_DISCONNECT;
    zmsg_addmem (disconnect, &command, 1);
    broker_core_on_message (self->core, &disconnect, now_us, self->outbox);
}

//  Receives one message, waiting up to wait_ms (0: not at all), and hands
//  it to the core. False on timeout or signal.
static bool
s_receive (broker_shell_t *self, int wait_ms)
{
    zsock_set_rcvtimeo (self->router, wait_ms);
    if (broker_wire_recv (self->input, zsock_resolve (self->router)))
        return false;
    //  With CURVE, libzmq gives each message the User-Id our ZAP handler
    //  answered for its connection: the peer's key. A hash lookup, no
    //  system call. (The routing id frame is made by the ROUTER and
    //  carries no properties; a message always has a frame after it.)
    if (self->allowed) {
        const char *key = self->input->count > 1
                            ? zmq_msg_gets (&self->input->frames[1], "User-Id")
                            : NULL;
        if (!key || !zhashx_lookup (self->allowed, key)) {
            s_drop_revoked (self, key, s_now_us ());
            broker_message_close (self->input);
            return true;
        }
    }
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
    //  Stop the monitor while the guard still reads it: an event sent to a
    //  monitor nobody reads blocks libzmq's I/O thread, which holds the
    //  lock that stopping the monitor needs.
    if (self->is_monitored)
        zmq_socket_monitor (zsock_resolve (self->router), NULL, 0);
    zactor_destroy (&self->guard);
    zsock_destroy (&self->router);
    zactor_destroy (&self->auth);
    zhashx_destroy (&self->allowed);
    zlist_destroy (&self->bound);
    free (self->curve_clients);
    free (self);
    *self_p = NULL;
}
