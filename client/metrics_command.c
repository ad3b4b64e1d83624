//  metrics_command.c - `cartmq metrics --listen HOST:PORT` (contract §8)

#include "metrics_command.h"

#include "metrics_server.h"
#include "stats_gather.h"

#include <czmq.h>
#include <string.h>

#define S_USAGE "--listen HOST:PORT"

//  The --connect endpoints as an array (the default when none), borrowed
//  from globals; the caller frees the array only.
static const char **
s_endpoints (const commands_globals_t *globals, size_t *count_p)
{
    static const char *fallback = CMQ_DEFAULT_ENDPOINT;
    size_t count = globals->endpoints ? zlist_size (globals->endpoints) : 0;
    const char **endpoints =
      (const char **) zmalloc ((count ? count : 1) * sizeof (char *));
    if (count == 0) {
        endpoints[0] = fallback;
        count = 1;
    } else {
        size_t index = 0;
        for (const char *endpoint =
               (const char *) zlist_first (globals->endpoints);
             endpoint;
             endpoint = (const char *) zlist_next (globals->endpoints))
            endpoints[index++] = endpoint;
    }
    *count_p = count;
    return endpoints;
}

static stats_gather_t *
s_gather_new (const commands_globals_t *globals)
{
    if (!globals->curve_server != !globals->curve_cert) {
        fprintf (stderr,
                 "cartmq: --curve-server and --curve-cert go together\n");
        return NULL;
    }
    size_t count = 0;
    const char **endpoints = s_endpoints (globals, &count);
    stats_gather_config_t config = { endpoints, count,
                                     (int) globals->timeout_ms,
                                     globals->curve_server,
                                     globals->curve_cert };
    char error[CMQ_ERRSTR_SIZE] = "cannot connect";
    stats_gather_t *gather = stats_gather_new (&config, error, sizeof (error));
    if (!gather)
        fprintf (stderr, "cartmq: %s\n", error);
    free (endpoints);
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
    size_t count = 0;
    free (s_endpoints (globals, &count));
    stats_gather_destroy (&gather);
    if (answered < 0)
        return COMMANDS_EXIT_STATUS;
    return (size_t) answered == count ? COMMANDS_EXIT_OK
                                      : COMMANDS_EXIT_NO_REPLY;
}
