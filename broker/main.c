//  main.c - cartmq-broker: flags and config, then the shell's loop
//
//  Defaults are broker_config_defaults' (and the shell's); the CURVE
//  files are checked by the shell's own loader, here only so that a bad
//  one exits 2 on stderr like any bad flag value, before logging starts.

#include <czmq.h>

#include "broker_shell.h"
#include "cartmq/common.h"
#include "cartmq/curve.h"
#include "cartmq/log.h"
#include "cartmq/options.h"

//  A number as --help text: "(2500)".
#define S_SHOWN(value)  "(" S_STRING (value) ")"
#define S_STRING(value) #value

//  0, or 2 after saying on stderr why the CURVE flags cannot be used.
static int
s_check_curve (const broker_shell_config_t *config)
{
    if ((config->curve_secret == NULL) != (config->curve_clients == NULL)) {
        fprintf (stderr, "cartmq-broker: --curve-secret and --curve-clients "
                         "go together\n");
        return 2;
    }
    if (!config->curve_secret)
        return 0;
    char error[BROKER_SHELL_ERROR_BYTES];
    zcert_t *cert = broker_shell_curve_load (config, error, sizeof (error));
    if (!cert) {
        fprintf (stderr, "cartmq-broker: %s\n", error);
        return 2;
    }
    zcert_destroy (&cert);
    return 0;
}

int
main (int argc, char **argv)
{
    broker_config_t core;
    broker_config_defaults (&core);
    zlist_t *binds = NULL;
    int64_t heartbeat_ms = core.heartbeat_ms, liveness = core.liveness;
    int64_t queue_timeout_ms = core.queue_timeout_ms;
    int64_t max_queued = core.max_queued, max_services = core.max_services;
    int64_t max_peer_output = BROKER_SHELL_MAX_PEER_OUTPUT;
    char *curve_secret = NULL, *curve_clients = NULL;
    bool verbose = false, log_syslog = false;
    cmq_option_t table[] = {
        { "bind", CMQ_OPT_ENDPOINT_LIST, "ENDPOINT",
          "bind here (default " CMQ_DEFAULT_ENDPOINT ")", 0, 0, &binds },
        { "heartbeat-ms", CMQ_OPT_INT, "N",
          "heartbeat interval " S_SHOWN (BROKER_DEFAULT_HEARTBEAT_MS), 10,
          3600000, &heartbeat_ms },
        { "liveness", CMQ_OPT_INT, "N",
          "silent intervals before a worker is dead " S_SHOWN (
            BROKER_DEFAULT_LIVENESS),
          1, 1000, &liveness },
        { "queue-timeout-ms", CMQ_OPT_INT, "N",
          "drop a request queued this long " S_SHOWN (
            BROKER_DEFAULT_QUEUE_TIMEOUT_MS),
          1, 86400000, &queue_timeout_ms },
        { "max-queued", CMQ_OPT_INT, "N",
          "most requests queued per service " S_SHOWN (
            BROKER_DEFAULT_MAX_QUEUED),
          1, 100000000, &max_queued },
        { "max-services", CMQ_OPT_INT, "N",
          "most distinct services at once " S_SHOWN (
            BROKER_DEFAULT_MAX_SERVICES),
          1, 1000000, &max_services },
        { "max-peer-output", CMQ_OPT_INT, "N",
          "most messages waiting for one peer; more are dropped " S_SHOWN (
            BROKER_SHELL_MAX_PEER_OUTPUT),
          1, 1000000, &max_peer_output },
        { "curve-secret", CMQ_OPT_STRING, "CERTFILE",
          "be a CURVE server with this secret cert", 0, 0, &curve_secret },
        { "curve-clients", CMQ_OPT_STRING, "DIR",
          "public certs of allowed clients and workers", 0, 0, &curve_clients },
        { "verbose", CMQ_OPT_FLAG, NULL, "log every message", 0, 0, &verbose },
        { "log-syslog", CMQ_OPT_FLAG, NULL, "log to syslog", 0, 0,
          &log_syslog },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    cmq_options_spec_t spec = { "cartmq-broker", "[OPTIONS]", "broker", false };
    int next_arg = 0, positionals = 0;
    cmq_options_result_t result = cmq_options_parse (
      &spec, table, argc, argv, NULL, 0, &positionals, &next_arg);
    if (result != CMQ_OPTIONS_OK) {
        cmq_options_free (table);
        return result == CMQ_OPTIONS_EXIT ? 0 : 2;
    }
    broker_shell_config_t config;
    config.core = core;
    config.core.heartbeat_ms = (int) heartbeat_ms;
    config.core.liveness = (int) liveness;
    config.core.queue_timeout_ms = (int) queue_timeout_ms;
    config.core.max_queued = (int) max_queued;
    config.core.max_services = (int) max_services;
    config.curve_secret = curve_secret;
    config.curve_clients = curve_clients;
    config.max_peer_output = (int) max_peer_output;
    int rc = s_check_curve (&config);
    if (rc) {
        cmq_options_free (table);
        return rc;
    }
    cmq_log_init ("cartmq-broker", verbose ? CMQ_LOG_DEBUG : CMQ_LOG_INFO,
                  log_syslog);
    zlist_t *defaults = zlist_new ();
    zlist_append (defaults, CMQ_DEFAULT_ENDPOINT);
    config.endpoints = binds && zlist_size (binds) ? binds : defaults;

    rc = 1;
    broker_shell_t *shell = broker_shell_new (&config, &rc);
    if (shell) {
        rc = broker_shell_run (shell);
        broker_shell_destroy (&shell);
        cmq_log_info ("stopped");
    }
    zlist_destroy (&defaults);
    cmq_options_free (table);
    return rc;
}
