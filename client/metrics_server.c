//  metrics_server.c - the HTTP side of `cartmq metrics`, on libmicrohttpd

#include "metrics_server.h"

#include <microhttpd.h>

#include <czmq.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#define S_CONTENT_TYPE         "text/plain; version=0.0.4; charset=utf-8"
#define S_CONNECTION_LIMIT     64
#define S_CONNECTION_TIMEOUT_S 30

struct _metrics_server_t {
    struct MHD_Daemon *daemon;
    metrics_page_fn *page;
    void *page_arg;
};

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned int status,
           const char *content_type, void *body, size_t size,
           enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *response =
      MHD_create_response_from_buffer (size, body, mode);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
                             content_type);
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static enum MHD_Result
s_text (struct MHD_Connection *connection, unsigned int status,
        const char *text)
{
    return s_respond (connection, status, "text/plain; charset=utf-8",
                      (void *) text, strlen (text), MHD_RESPMEM_PERSISTENT);
}

//  libmicrohttpd's request callback. A request with a body is answered
//  once its head is read; the body, if any, is never looked at.
static enum MHD_Result
s_on_request (void *arg, struct MHD_Connection *connection, const char *url,
              const char *method, const char *version, const char *upload,
              size_t *upload_size, void **state)
{
    (void) version;
    (void) upload;
    metrics_server_t *self = (metrics_server_t *) arg;
    if (*state == NULL) {  //  first call: the head only
        *state = self;
        return MHD_YES;
    }
    *upload_size = 0;
    bool is_get = streq (method, MHD_HTTP_METHOD_GET) ||
                  streq (method, MHD_HTTP_METHOD_HEAD);
    if (!is_get)
        return s_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                       "only GET and HEAD\n");
    if (streq (url, "/"))
        return s_text (connection, MHD_HTTP_OK,
                       "cartmq metrics: see /metrics\n");
    if (!streq (url, "/metrics"))
        return s_text (connection, MHD_HTTP_NOT_FOUND, "not found\n");
    size_t size = 0;
    char *page = self->page (self->page_arg, &size);
    if (!page)
        return s_text (connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
                       "cannot make the page\n");
    return s_respond (connection, MHD_HTTP_OK, S_CONTENT_TYPE, page, size,
                      MHD_RESPMEM_MUST_FREE);
}

//  Splits "HOST:PORT" or "[HOST]:PORT" and resolves it for listening.
static struct addrinfo *
s_resolve (const char *address, char *error, size_t error_size)
{
    char host[256];
    const char *colon = strrchr (address, ':');
    size_t host_size = colon ? (size_t) (colon - address) : 0;
    if (!colon || host_size == 0 || host_size >= sizeof (host) || !colon[1]) {
        snprintf (error, error_size, "%s: not HOST:PORT", address);
        return NULL;
    }
    memcpy (host, address, host_size);
    host[host_size] = '\0';
    if (host[0] == '[' && host[host_size - 1] == ']') {
        memmove (host, host + 1, host_size - 2);
        host[host_size - 2] = '\0';
    }
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf (error, error_size, "%s: bad port", address);
        return NULL;
    }
    struct addrinfo hints = { 0 };
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (host, colon + 1, &hints, &found);
    if (rc != 0) {
        snprintf (error, error_size, "%s: %s", address, gai_strerror (rc));
        return NULL;
    }
    return found;
}

metrics_server_t *
metrics_server_new (const char *address, metrics_page_fn *page, void *page_arg,
                    char *error, size_t error_size)
{
    assert (address);
    assert (page);
    struct addrinfo *found = s_resolve (address, error, error_size);
    if (!found)
        return NULL;
    metrics_server_t *self = (metrics_server_t *) zmalloc (sizeof (*self));
    self->page = page;
    self->page_arg = page_arg;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (found->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (
      flags, 0, NULL, NULL, s_on_request, self, MHD_OPTION_SOCK_ADDR,
      found->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned int) S_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned int) S_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    freeaddrinfo (found);
    if (!self->daemon) {
        snprintf (error, error_size, "cannot listen on %s: %s", address,
                  errno ? strerror (errno) : "libmicrohttpd refused");
        free (self);
        return NULL;
    }
    return self;
}

void
metrics_server_destroy (metrics_server_t **self_p)
{
    assert (self_p);
    metrics_server_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}

int
metrics_server_port (metrics_server_t *self)
{
    assert (self);
    const union MHD_DaemonInfo *info =
      MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? (int) info->port : -1;
}
