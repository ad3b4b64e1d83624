//  metrics_server.h - the HTTP side of `cartmq metrics`, on libmicrohttpd
//
//  Serves GET /metrics (and HEAD) with a page a callback makes at each
//  scrape, in the Prometheus text format's content type; / answers a line
//  pointing there; anything else is 404, other methods 405. The HTTP work
//  is libmicrohttpd's (Debian's libmicrohttpd), not hand-written: one
//  internal thread polls every connection and calls the page callback, so
//  the callback always runs on that one thread and may keep ZeroMQ sockets
//  between scrapes without locks.

#ifndef CARTMQ_METRICS_SERVER_H
#define CARTMQ_METRICS_SERVER_H

#include <stddef.h>

typedef struct _metrics_server_t metrics_server_t;

//  Makes the page: a heap buffer (the server frees it) and its size, or
//  NULL for a 500.
typedef char *(metrics_page_fn) (void *arg, size_t *size_p);

//  Listens on address, "HOST:PORT" ("127.0.0.1:9100", "[::1]:9100",
//  "0.0.0.0:9100"). NULL with the reason in error when it cannot.
metrics_server_t *metrics_server_new (const char *address,
                                      metrics_page_fn *page, void *page_arg,
                                      char *error, size_t error_size);

//  Stops listening; waits for a scrape in progress to end.
void metrics_server_destroy (metrics_server_t **self_p);

//  The port it listens on (the one chosen when PORT was 0).
int metrics_server_port (metrics_server_t *self);

#endif
