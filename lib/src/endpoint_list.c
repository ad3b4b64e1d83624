//  endpoint_list.c - the brokers a worker or client config names, no sockets

#include "cartmq/endpoint_list.h"

#include <string.h>

#include "cartmq/log.h"
#include "error.h"

//  What separates endpoints in one value (none holds either).
#define S_SEPARATORS ", \t\r\n"

//  Appends one endpoint unless it is already there; -1 with the reason.
static int
s_add (zlist_t *list, const char *start, size_t size, char *error,
       size_t error_size)
{
    char *endpoint = (char *) zmalloc (size + 1);
    memcpy (endpoint, start, size);
    for (const char *seen = (const char *) zlist_first (list); seen;
         seen = (const char *) zlist_next (list))
        if (streq (seen, endpoint)) {
            char shown[CMQ_LOG_ESCAPED_BYTES (64)];
            cmq_log_escape (endpoint, size, shown, sizeof (shown));
            cmq_error_set (error, error_size,
                           "duplicate endpoint %s: one connection per broker",
                           shown);
            free (endpoint);
            return -1;
        }
    if (zlist_size (list) >= CMQ_MAX_BROKERS) {
        cmq_error_set (error, error_size, "more than %d broker endpoints",
                       CMQ_MAX_BROKERS);
        free (endpoint);
        return -1;
    }
    zlist_append (list, endpoint);
    free (endpoint);  //  the list keeps its own copy (autofree)
    return 0;
}

//  Splits one value at separators and adds each endpoint in it.
static int
s_add_value (zlist_t *list, const char *value, char *error, size_t error_size)
{
    const char *cursor = value;
    while (true) {
        cursor += strspn (cursor, S_SEPARATORS);
        size_t size = strcspn (cursor, S_SEPARATORS);
        if (size == 0)
            return 0;
        if (s_add (list, cursor, size, error, error_size))
            return -1;
        cursor += size;
    }
}

zlist_t *
cmq_endpoint_list_new (const char *endpoint, const char *const *endpoints,
                       size_t count, char *error, size_t error_size)
{
    zlist_t *list = zlist_new ();
    zlist_autofree (list);
    int rc = 0;
    if (count > 0) {
        assert (endpoints);
        for (size_t index = 0; index < count && rc == 0; index++)
            rc = endpoints[index]
                   ? s_add_value (list, endpoints[index], error, error_size)
                   : 0;
    } else
        rc = s_add_value (list, endpoint ? endpoint : CMQ_DEFAULT_ENDPOINT,
                          error, error_size);
    if (rc == 0 && zlist_size (list) == 0) {
        cmq_error_set (error, error_size, "empty endpoint list");
        rc = -1;
    }
    if (rc)
        zlist_destroy (&list);
    return list;
}
