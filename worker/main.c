//  main.c - cartmq-worker: serves the cart service from Redis over MDP
//
//  Reads flags and the "worker" section of --config, then either runs the
//  worker loop or (--processes N > 1) supervises N copies of itself, each
//  given the same flags. With several --connect brokers every process
//  registers with each of them (§7). The loop takes one request, drains up
//  to --concurrency more that are already waiting (from any broker),
//  answers them all with one Redis pipeline, and goes round again;
//  every wait is bounded so SIGINT/SIGTERM stop it promptly. SIGHUP stops
//  nothing (§2): it is logged, and a supervisor passes it on.

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "cart_service.h"
#include "cart_store.h"
#include "cartmq/log.h"
#include "cartmq/options.h"
#include "cartmq/worker.h"
#include "cartmq/endpoint_list.h"
#include "supervisor.h"

#define S_PROGRAM        "cartmq-worker"
#define S_WAIT_MS        250   //  longest wait before checking interrupts
#define S_MAX_TIMEOUT_MS 1000  //  longest Redis call

typedef struct {
    zlist_t *connects;  //  --connect values; NULL: the default broker
    char *redis;
    char *service;
    int64_t heartbeat_ms;
    int64_t liveness;
    int64_t concurrency;
    int64_t processes;
    int64_t redis_wait;
    char *curve_server;
    char *curve_cert;
    bool is_verbose;
    bool is_echo;
    bool use_syslog;
} s_settings_t;

static cmq_options_result_t
s_parse (int argc, char **argv, s_settings_t *settings, cmq_option_t *table)
{
    cmq_options_spec_t spec = {
        S_PROGRAM,
        "[--connect ENDPOINT]... [--redis URL] [--service NAME] "
        "[--heartbeat-ms N] [--liveness N] [--concurrency N] "
        "[--processes N] [--redis-wait N] [--config FILE] "
        "[--curve-server PUBLIC_CERTFILE --curve-cert CERTFILE] [--echo] "
        "[--log-syslog] [--verbose]",
        "worker", false
    };
    int positional_count = 0;
    int next_arg = 0;
    cmq_options_result_t result = cmq_options_parse (
      &spec, table, argc, argv, NULL, 0, &positional_count, &next_arg);
    if (result != CMQ_OPTIONS_OK)
        return result;
    if (!settings->curve_server != !settings->curve_cert) {
        fprintf (stderr, "%s: --curve-server and --curve-cert go together\n",
                 S_PROGRAM);
        return CMQ_OPTIONS_ERROR;
    }
    return CMQ_OPTIONS_OK;
}

//  SIGHUP's default action would kill us, and with us a supervisor's
//  children (a closing terminal sends it, an admin's reload too). It stays
//  blocked in every thread and is collected here, between requests: no
//  handler interrupts a Redis call or a poll halfway.
#define S_HANGUP_CHECK_MS 100

static sigset_t s_hangup_only;

//  Blocks SIGHUP; call before any thread starts, so all inherit the mask.
static void
s_block_sighup (void)
{
    sigemptyset (&s_hangup_only);
    sigaddset (&s_hangup_only, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &s_hangup_only, NULL);
}

//  Takes a pending SIGHUP, if any, and logs it; true if one came. Looks at
//  most every S_HANGUP_CHECK_MS, so it costs no syscall per request.
static bool
s_sighup_seen (void)
{
    static int64_t next_check_ms;
    int64_t now_ms = zclock_mono ();
    if (now_ms < next_check_ms)
        return false;
    next_check_ms = now_ms + S_HANGUP_CHECK_MS;
    struct timespec no_wait = { 0, 0 };
    if (sigtimedwait (&s_hangup_only, NULL, &no_wait) != SIGHUP)
        return false;
    cmq_log_info ("SIGHUP received: nothing to reload, carrying on");
    return true;
}

//  Every Redis call must end well inside the broker's patience with us.
static int
s_redis_timeout_ms (const s_settings_t *settings)
{
    int64_t third = settings->heartbeat_ms * settings->liveness / 3;
    if (third > S_MAX_TIMEOUT_MS)
        third = S_MAX_TIMEOUT_MS;
    return third < 10 ? 10 : (int) third;
}

//  Sends each reply, or drops the ticket of a request left unanswered.
static void
s_send_replies (cmq_worker_t *worker, cmq_worker_ticket_t *tickets,
                zmsg_t **replies, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (replies[i])
            cmq_worker_reply (worker, &tickets[i], &replies[i]);
        else
            cmq_log_error ("no reply built, request dropped");
        zmsg_destroy (&replies[i]);
        zframe_destroy (&tickets[i].address);
    }
}

//  The serving loop, until interrupted. service is NULL with --echo.
static void
s_serve (cmq_worker_t *worker, cart_service_t *service, size_t concurrency)
{
    zmsg_t **bodies = (zmsg_t **) zmalloc (concurrency * sizeof (zmsg_t *));
    zmsg_t **replies = (zmsg_t **) zmalloc (concurrency * sizeof (zmsg_t *));
    cmq_worker_ticket_t *tickets = (cmq_worker_ticket_t *) zmalloc (
      concurrency * sizeof (cmq_worker_ticket_t));
    while (!zsys_interrupted) {
        size_t count = 0;
        s_sighup_seen ();
        bodies[0] = cmq_worker_recv (worker, S_WAIT_MS, &tickets[0]);
        if (!bodies[0])
            continue;  //  quiet, or interrupted
        //  The broker may have sent more (credit > 1): take what is here.
        for (count = 1; count < concurrency; count++) {
            bodies[count] = cmq_worker_recv (worker, 0, &tickets[count]);
            if (!bodies[count])
                break;
        }
        if (count > 1)
            cmq_log_debug ("batch requests=%zu", count);
        if (service) {
            cart_service_handle (service, bodies, replies, count);
            for (size_t i = 0; i < count; i++)
                zmsg_destroy (&bodies[i]);
        } else
            for (size_t i = 0; i < count; i++) {
                replies[i] = bodies[i];
                bodies[i] = NULL;
            }
        s_send_replies (worker, tickets, replies, count);
        cmq_worker_tick (worker);
    }
    free (bodies);
    free (replies);
    free (tickets);
}

//  The worker library logs nothing itself; its notices go to our log.
static void
s_log_notice (void *arg, cmq_worker_notice_t level, const char *text)
{
    (void) arg;
    if (level == CMQ_WORKER_NOTICE_WARNING)
        cmq_log_warning ("%s", text);
    else if (level == CMQ_WORKER_NOTICE_INFO)
        cmq_log_info ("%s", text);
    else
        cmq_log_debug ("%s", text);
}

//  The strings of list (NULL: none) as an array; the strings are borrowed,
//  the caller frees the array.
static const char **
s_as_array (zlist_t *list, size_t *count)
{
    *count = list ? zlist_size (list) : 0;
    const char **values =
      (const char **) zmalloc ((*count + 1) * sizeof (char *));
    size_t index = 0;
    for (const char *value = list ? (const char *) zlist_first (list) : NULL;
         value; value = (const char *) zlist_next (list))
        values[index++] = value;
    return values;
}

//  The brokers to serve, in order, checked as cmq_worker_new will check
//  them (no endpoint twice), so a bad list stops even a supervisor before
//  it starts anything. NULL after a one-line error.
static zlist_t *
s_brokers (zlist_t *connects)
{
    size_t count = 0;
    const char **values = s_as_array (connects, &count);
    char error[CMQ_ERRSTR_SIZE] = "bad endpoint";
    zlist_t *brokers =
      cmq_endpoint_list_new (NULL, values, count, error, sizeof (error));
    if (!brokers)
        fprintf (stderr, "%s: connect: %s\n", S_PROGRAM, error);
    free (values);
    return brokers;
}

//  The brokers as one comma-separated string for the start line (escaped:
//  it goes to the log). Caller frees.
static char *
s_brokers_text (zlist_t *brokers)
{
    size_t size = 1;
    for (const char *endpoint = (const char *) zlist_first (brokers); endpoint;
         endpoint = (const char *) zlist_next (brokers))
        size += CMQ_LOG_ESCAPED_BYTES (strlen (endpoint));
    char *text = (char *) zmalloc (size);
    size_t used = 0;
    for (const char *endpoint = (const char *) zlist_first (brokers); endpoint;
         endpoint = (const char *) zlist_next (brokers)) {
        if (used)
            text[used++] = ',';
        cmq_log_escape (endpoint, strlen (endpoint), text + used, size - used);
        used += strlen (text + used);
    }
    return text;
}

static int
s_run_worker (const s_settings_t *settings, const redis_url_t *url,
              zlist_t *brokers)
{
    //  hiredis writes with write(2): a closed Redis socket must be an
    //  error to handle, not a SIGPIPE that kills us.
    signal (SIGPIPE, SIG_IGN);
    cmq_worker_config_t config;
    cmq_worker_config_defaults (&config);
    const char **endpoints = s_as_array (brokers, &config.endpoint_count);
    config.endpoints = endpoints;
    config.service = settings->service;
    config.heartbeat_ms = (int) settings->heartbeat_ms;
    config.liveness = (int) settings->liveness;
    config.credit = (int) settings->concurrency;
    config.curve_server = settings->curve_server;
    config.curve_cert = settings->curve_cert;
    config.notify = s_log_notice;
    char error[CMQ_ERRSTR_SIZE] = "cannot start";
    cmq_worker_t *worker = cmq_worker_new (&config, error, sizeof (error));
    free (endpoints);  //  the worker keeps its own copies
    if (!worker) {
        fprintf (stderr, "%s: %s\n", S_PROGRAM, error);
        return 2;
    }
    cart_store_t *store = NULL;
    cart_service_t *service = NULL;
    char where[400] = "none";
    if (!settings->is_echo) {
        redis_url_describe (url, where, sizeof (where));
        store = cart_store_new (url, s_redis_timeout_ms (settings));
        cart_store_set_wait (store, (int) settings->redis_wait);
        service = cart_service_new (store, (size_t) settings->concurrency);
        cart_store_connect (store);  //  a failure is logged; we retry later
    }
    char *connect = s_brokers_text (brokers);
    cmq_log_info ("worker started service=%s connect=%s redis=%s "
                  "concurrency=%d echo=%s pid=%d",
                  settings->service, connect, where,
                  (int) settings->concurrency, settings->is_echo ? "yes" : "no",
                  (int) getpid ());
    free (connect);
    s_serve (worker, service, (size_t) settings->concurrency);
    cmq_log_info ("worker stopping");
    cart_service_destroy (&service);
    cart_store_destroy (&store);
    cmq_worker_destroy (&worker);
    return 0;
}

int
main (int argc, char **argv)
{
    s_block_sighup ();
    s_settings_t settings = { 0 };
    settings.heartbeat_ms = CMQ_DEFAULT_HEARTBEAT_MS;
    settings.liveness = CMQ_DEFAULT_LIVENESS;
    settings.concurrency = 1;
    settings.processes = 1;
    cmq_option_t table[] = {
        { "connect", CMQ_OPT_ENDPOINT_LIST, "ENDPOINT",
          "a broker to serve, or a comma list of brokers "
          "(default " CMQ_DEFAULT_ENDPOINT ")",
          0, 0, &settings.connects },
        { "redis", CMQ_OPT_STRING, "URL",
          "redis://[[USER]:PASS@]HOST:PORT/DB, unix:///PATH[?db=N], "
          "redis-sentinel://HOST:PORT[,...]/DB#MASTER or "
          "redis-cluster://HOST:PORT[,...] (default " REDIS_URL_DEFAULT ")",
          0, 0, &settings.redis },
        { "redis-wait", CMQ_OPT_INT, "N",
          "answer a mutation 200 only once N replicas have it (WAIT; "
          "default 0, off)",
          0, 100, &settings.redis_wait },
        { "service", CMQ_OPT_STRING, "NAME", "service name (default cart)", 0,
          0, &settings.service },
        { "heartbeat-ms", CMQ_OPT_INT, "N", "heartbeat interval (default 2500)",
          10, 3600000, &settings.heartbeat_ms },
        { "liveness", CMQ_OPT_INT, "N",
          "silent intervals before the broker is dead (default 3)", 1, 1000,
          &settings.liveness },
        { "concurrency", CMQ_OPT_INT, "N",
          "requests served at once, one Redis pipeline (default 1)", 1, 1000,
          &settings.concurrency },
        { "processes", CMQ_OPT_INT, "N",
          "worker processes under one supervisor (default 1)", 1, 1000,
          &settings.processes },
        { "curve-server", CMQ_OPT_STRING, "PUBLIC_CERTFILE",
          "broker's public certificate (CURVE)", 0, 0, &settings.curve_server },
        { "curve-cert", CMQ_OPT_STRING, "CERTFILE",
          "our secret certificate (CURVE)", 0, 0, &settings.curve_cert },
        { "echo", CMQ_OPT_FLAG, NULL,
          "reply with each request body unchanged, no Redis", 0, 0,
          &settings.is_echo },
        { "log-syslog", CMQ_OPT_FLAG, NULL, "log to syslog, not stderr", 0, 0,
          &settings.use_syslog },
        { "verbose", CMQ_OPT_FLAG, NULL, "log debug lines", 0, 0,
          &settings.is_verbose },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    cmq_options_result_t parsed = s_parse (argc, argv, &settings, table);
    if (parsed != CMQ_OPTIONS_OK) {
        cmq_options_free (table);
        return parsed == CMQ_OPTIONS_EXIT ? 0 : 2;
    }
    zlist_t *brokers = s_brokers (settings.connects);
    if (!brokers) {
        cmq_options_free (table);
        return 2;
    }
    if (!settings.service)
        settings.service = strdup ("cart");
    redis_url_t url;
    char error[200];
    if (redis_url_parse (settings.redis ? settings.redis : REDIS_URL_DEFAULT,
                         &url, error, sizeof (error))) {
        fprintf (stderr, "%s: --redis: %s\n", S_PROGRAM, error);
        cmq_options_free (table);
        zlist_destroy (&brokers);
        return 2;
    }
    cmq_log_init ("cartmq-worker",
                  settings.is_verbose ? CMQ_LOG_DEBUG : CMQ_LOG_INFO,
                  settings.use_syslog);
    zsys_init ();  //  installs the SIGINT/SIGTERM handlers
    int rc =
      settings.processes > 1
        ? supervisor_run (argc, argv, (int) settings.processes, s_sighup_seen)
        : s_run_worker (&settings, &url, brokers);
    zlist_destroy (&brokers);
    memset (&url, 0, sizeof (url));
    cmq_options_free (table);
    return rc;
}
