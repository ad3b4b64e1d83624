//  metrics_command.c - `cartmq metrics --listen HOST:PORT` (contract §8)

#include "metrics_command.h"

#include "metrics_server.h"
#include "stats_gather.h"

#include <czmq.h>
#include <string.h>

#define S_USAGE "--listen HOST:PORT"

static stats_gather_t *
s_gather_new (const commands_globals_t *globals)
{
    const char *list[CMQ_CLIENT_MAX_ENDPOINTS];
    cmq_client_config_t config;
    commands_client_config (globals, &config, list);
    char error[CMQ_ERRSTR_SIZE] = "cannot connect";
    stats_gather_t *gather = stats_gather_new (&config, error, sizeof (error));
    if (!gather)
        fprintf (stderr, "cartmq: %s\n", error);
    return gather;
}

//  The page callback: runs on the HTTP server's one thread.
static char *
s_page (void *arg, size_t *size_p)
{
    stats_gather_t *gather = (stats_gather_t *) arg;
    char *page = NULL;
    FILE *out = open_memstream (&page, size_p);
    if (!out)
        return NULL;
    int rc = stats_gather_write_prometheus (gather, out);
    if (fclose (out) != 0 || rc < 0) {
        free (page);
        return NULL;
    }
    return page;
}

//  True for an address only this host can reach.
static bool
s_is_loopback (const char *address)
{
    return strncmp (address, "127.", 4) == 0 ||
           strncmp (address, "localhost:", 10) == 0 ||
           strncmp (address, "[::1]:", 6) == 0;
}

int
metrics_command_run (commands_globals_t *globals, int argc, char **argv)
{
    char *listen = NULL;
    cmq_option_t table[] = { { "listen", CMQ_OPT_STRING, "HOST:PORT",
                               "where /metrics is served (e.g. 127.0.0.1:9464)",
                               0, 0, &listen },
                             { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = commands_parse (globals, "metrics", S_USAGE, table, argc, argv,
                             positional, 0);
    if (rc == COMMANDS_GO)
        rc = commands_require ("metrics", "listen", listen != NULL);
    stats_gather_t *gather = rc == COMMANDS_GO ? s_gather_new (globals) : NULL;
    if (rc == COMMANDS_GO && !gather)
        rc = COMMANDS_EXIT_USAGE;
    metrics_server_t *server = NULL;
    if (rc == COMMANDS_GO) {
        char error[512] = "";
        //  The gather's sockets move to the server's thread here; this
        //  thread does not touch them again until the server stopped.
        server =
          metrics_server_new (listen, s_page, gather, error, sizeof (error));
        if (!server) {
            fprintf (stderr, "cartmq metrics: --listen %s\n", error);
            rc = COMMANDS_EXIT_USAGE;
        }
    }
    if (rc == COMMANDS_GO) {
        if (!s_is_loopback (listen))
            fprintf (stderr,
                     "cartmq metrics: warning: %s is not loopback and "
                     "/metrics has no access control\n",
                     listen);
        fprintf (stderr,
                 "cartmq metrics: serving http://%s/metrics (port %d)\n",
                 listen, metrics_server_port (server));
        while (!zsys_interrupted)
            zclock_sleep (100);
        rc = COMMANDS_EXIT_OK;
    }
    metrics_server_destroy (&server);
    stats_gather_destroy (&gather);
    cmq_options_free (table);
    return rc;
}

int
metrics_command_print_once (commands_globals_t *globals)
{
    stats_gather_t *gather = s_gather_new (globals);
    if (!gather)
        return COMMANDS_EXIT_USAGE;
    int answered = stats_gather_write_prometheus (gather, stdout);
    fflush (stdout);
    size_t count = stats_gather_count (gather);
    stats_gather_destroy (&gather);
    if (answered < 0)
        return COMMANDS_EXIT_STATUS;
    return (size_t) answered == count ? COMMANDS_EXIT_OK
                                      : COMMANDS_EXIT_NO_REPLY;
}
