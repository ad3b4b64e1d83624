//  endpoint.c - a ZeroMQ endpoint's form, checked before libzmq sees it

#include "cartmq/endpoint.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cartmq/common.h"

static const char *s_transports[] = { "tcp",  "ipc",  "inproc", "ws",
                                      "wss",  "udp",  "pgm",    "epgm",
                                      "tipc", "vmci", "norm",   NULL };

//  Transports whose address is HOST:PORT
static bool
s_has_port (const char *transport, size_t length)
{
    static const char *ported[] = { "tcp", "ws", "wss", "udp" };
    for (size_t index = 0; index < sizeof (ported) / sizeof (ported[0]);
         index++)
        if (strlen (ported[index]) == length &&
            memcmp (ported[index], transport, length) == 0)
            return true;
    return false;
}

int
cmq_endpoint_check (const char *endpoint, char *reason, size_t reason_size)
{
    assert (endpoint && reason);
    const char *separator = strstr (endpoint, "://");
    size_t length = separator ? (size_t) (separator - endpoint) : 0;
    bool is_known = false;
    for (size_t index = 0; separator && s_transports[index]; index++)
        if (strlen (s_transports[index]) == length &&
            memcmp (s_transports[index], endpoint, length) == 0)
            is_known = true;
    if (!is_known) {
        snprintf (
          reason, reason_size,
          "not an endpoint (TRANSPORT://ADDRESS, such as " CMQ_DEFAULT_ENDPOINT
          "): %s",
          endpoint);
        return -1;
    }
    const char *address = separator + 3;
    if (!*address) {
        snprintf (reason, reason_size, "no address: %s", endpoint);
        return -1;
    }
    if (!s_has_port (endpoint, length))
        return 0;
    //  HOST:PORT, then for ws and wss an optional /path
    size_t hostport = strcspn (address, "/");
    const char *colon = NULL;
    for (const char *scan = address; scan < address + hostport; scan++)
        if (*scan == ':')
            colon = scan;
    if (!colon || colon == address) {
        snprintf (reason, reason_size, "no HOST:PORT in %s", endpoint);
        return -1;
    }
    const char *port = colon + 1;
    size_t port_length = (size_t) (address + hostport - port);
    if (port_length == 1 && *port == '*')
        return 0;
    unsigned long value = 0;
    bool is_number = port_length > 0 && port_length <= 5;
    for (size_t index = 0; is_number && index < port_length; index++) {
        if (port[index] < '0' || port[index] > '9')
            is_number = false;
        else
            value = value * 10 + (unsigned long) (port[index] - '0');
    }
    if (!is_number || value > 65535) {
        snprintf (reason, reason_size,
                  "port out of range (1-65535, or * or 0 for any): %s",
                  endpoint);
        return -1;
    }
    return 0;
}
