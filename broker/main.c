//  main.c - cartmq-broker: flags and config, then the shell's loop

#include <czmq.h>

#include "broker_shell.h"
#include "cartmq/common.h"
#include "cartmq/curve.h"
#include "cartmq/log.h"
#include "cartmq/options.h"

int
main (int argc, char **argv)
{
    zlist_t *binds = NULL;
    int64_t heartbeat_ms = 2500, liveness = 3, queue_timeout_ms = 10000;
    int64_t max_queued = 100000, max_services = 10000;
    int64_t max_peer_output = BROKER_SHELL_MAX_PEER_OUTPUT;
    char *curve_secret = NULL, *curve_clients = NULL;
    bool verbose = false, log_syslog = false;
    cmq_option_t table[] = {
        { "bind", CMQ_OPT_ENDPOINT_LIST, "ENDPOINT",
          "bind here (default " CMQ_DEFAULT_ENDPOINT ")", 0, 0, &binds },
        { "heartbeat-ms", CMQ_OPT_INT, "N", "heartbeat interval (2500)", 10,
          3600000, &heartbeat_ms },
        { "liveness", CMQ_OPT_INT, "N",
          "silent intervals before a worker is dead (3)", 1, 1000, &liveness },
        { "queue-timeout-ms", CMQ_OPT_INT, "N",
          "drop a request queued this long (10000)", 1, 86400000,
          &queue_timeout_ms },
        { "max-queued", CMQ_OPT_INT, "N",
          "most requests queued per service (100000)", 1, 100000000,
          &max_queued },
        { "max-services", CMQ_OPT_INT, "N",
          "most distinct services at once (10000)", 1, 1000000, &max_services },
        { "max-peer-output", CMQ_OPT_INT, "N",
          "most messages waiting for one peer; more are dropped (1000)", 1,
          1000000, &max_peer_output },
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
    if ((curve_secret == NULL) != (curve_clients == NULL)) {
        fprintf (stderr, "cartmq-broker: --curve-secret and --curve-clients "
                         "go together\n");
        cmq_options_free (table);
        return 2;
    }
    //  A cert that cannot be used is a bad flag value: exit 2 like one.
    if (curve_secret) {
        char error[256];
        zcert_t *cert =
          cmq_curve_load_secret (curve_secret, error, sizeof (error));
        if (!cert) {
            fprintf (stderr, "cartmq-broker: --curve-secret: %s\n", error);
            cmq_options_free (table);
            return 2;
        }
        zcert_destroy (&cert);
        if (zsys_file_mode (curve_clients) < 0 ||
            !S_ISDIR (zsys_file_mode (curve_clients))) {
            fprintf (stderr,
                     "cartmq-broker: --curve-clients: not a directory: %s\n",
                     curve_clients);
            cmq_options_free (table);
            return 2;
        }
    }
    cmq_log_init ("cartmq-broker", verbose ? CMQ_LOG_DEBUG : CMQ_LOG_INFO,
                  log_syslog);

    broker_shell_config_t config;
    broker_config_defaults (&config.core);
    config.core.heartbeat_ms = (int) heartbeat_ms;
    config.core.liveness = (int) liveness;
    config.core.queue_timeout_ms = (int) queue_timeout_ms;
    config.core.max_queued = (int) max_queued;
    config.core.max_services = (int) max_services;
    zlist_t *defaults = zlist_new ();
    zlist_append (defaults, CMQ_DEFAULT_ENDPOINT);
    config.endpoints = binds && zlist_size (binds) ? binds : defaults;
    config.curve_secret = curve_secret;
    config.curve_clients = curve_clients;
    config.max_peer_output = (int) max_peer_output;

    int rc = 1;
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
