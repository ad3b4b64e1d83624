//  redis_url.c - where Redis is, from the worker's --redis URL

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "decimal.h"
#include "redis_url.h"

static int s_fail (char *error, size_t error_size, const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

static int
s_fail (char *error, size_t error_size, const char *format, ...)
{
    if (error && error_size > 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (error, error_size, format, args);
        va_end (args);
    }
    return -1;
}

static int
s_hex_value (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Copies size bytes into target (capacity REDIS_URL_MAX_SECRET_BYTES + 1)
//  undoing %XX escapes. A NUL byte, a broken escape or too many bytes fail.
static int
s_percent_decode (const char *text, size_t size, char *target)
{
    size_t length = 0;
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= size)
                return -1;
            int high = s_hex_value (text[i + 1]);
            int low = s_hex_value (text[i + 2]);
            if (high < 0 || low < 0 || (high == 0 && low == 0))
                return -1;
            c = (char) (high * 16 + low);
            i += 2;
        }
        if (length == REDIS_URL_MAX_SECRET_BYTES)
            return -1;
        target[length++] = c;
    }
    target[length] = 0;
    return 0;
}

static bool
s_is_host_char (char c, bool is_bracketed)
{
    if (is_bracketed)
        return isxdigit ((unsigned char) c) || c == ':' || c == '.';
    return isalnum ((unsigned char) c) || c == '.' || c == '-' || c == '_';
}

//  [HOST][:PORT] into host (REDIS_URL_MAX_HOST_BYTES + 1) and *port, each
//  left alone when absent. Alone so that a form with several addresses
//  (Sentinel, Cluster) can parse each the same way.
static int
s_parse_host_port (const char *text, size_t size, char *host, int *port,
                   char *error, size_t error_size)
{
    size_t host_start = 0, host_size = 0, rest = 0;
    bool is_bracketed = size > 0 && text[0] == '[';
    if (is_bracketed) {
        const char *close = memchr (text, ']', size);
        if (!close)
            return s_fail (error, error_size, "missing ']' after IPv6 host");
        host_start = 1;
        host_size = (size_t) (close - text) - 1;
        rest = (size_t) (close - text) + 1;
        if (host_size == 0)
            return s_fail (error, error_size, "empty IPv6 host");
    } else {
        while (host_size < size && text[host_size] != ':')
            host_size++;
        rest = host_size;
    }
    if (host_size > REDIS_URL_MAX_HOST_BYTES)
        return s_fail (error, error_size, "host name too long");
    for (size_t i = 0; i < host_size; i++)
        if (!s_is_host_char (text[host_start + i], is_bracketed))
            return s_fail (error, error_size, "bad character in host");
    if (host_size > 0) {
        memcpy (host, text + host_start, host_size);
        host[host_size] = 0;
    }
    if (rest < size) {
        int64_t value;
        if (text[rest] != ':' ||
            decimal_parse (text + rest + 1, size - rest - 1, 65535, &value) ||
            value == 0)
            return s_fail (error, error_size, "port must be 1..65535");
        *port = (int) value;
    }
    return 0;
}

//  [[USER]:PASSWORD@] at the start of text (size bytes); *used is how
//  many bytes it took (0 without credentials).
static int
s_parse_credentials (const char *text, size_t size, redis_url_t *url,
                     size_t *used, char *error, size_t error_size)
{
    const char *at = NULL;
    for (size_t i = 0; i < size; i++)
        if (text[i] == '@')
            at = text + i;  //  the last one: passwords may hold '@'
    *used = 0;
    if (!at)
        return 0;
    const char *colon = memchr (text, ':', (size_t) (at - text));
    if (!colon)
        return s_fail (error, error_size,
                       "credentials must be [USER]:PASSWORD@");
    if (s_percent_decode (text, (size_t) (colon - text), url->user) ||
        s_percent_decode (colon + 1, (size_t) (at - colon - 1), url->password))
        return s_fail (error, error_size,
                       "bad user or password (escape, NUL or length)");
    url->has_password = true;
    *used = (size_t) (at + 1 - text);
    return 0;
}

//  [[USER]:PASSWORD@][HOST][:PORT] of a redis:// URL.
static int
s_parse_authority (const char *text, size_t size, redis_url_t *url, char *error,
                   size_t error_size)
{
    size_t used;
    if (s_parse_credentials (text, size, url, &used, error, error_size))
        return -1;
    return s_parse_host_port (text + used, size - used, url->host, &url->port,
                              error, error_size);
}

static int
s_parse_redis (const char *text, redis_url_t *url, char *error,
               size_t error_size)
{
    if (strpbrk (text, "?#"))
        return s_fail (error, error_size,
                       "redis:// takes no query or fragment");
    const char *slash = strchr (text, '/');
    size_t authority_size = slash ? (size_t) (slash - text) : strlen (text);
    if (s_parse_authority (text, authority_size, url, error, error_size))
        return -1;
    if (slash && slash[1]) {
        int64_t db;
        if (decimal_parse (slash + 1, strlen (slash + 1), REDIS_URL_MAX_DB,
                           &db))
            return s_fail (error, error_size, "database must be 0..%d",
                           REDIS_URL_MAX_DB);
        url->db = (int) db;
    }
    return 0;
}

//  One name=value of a unix:// query.
static int
s_parse_unix_param (const char *text, size_t size, redis_url_t *url,
                    char *error, size_t error_size)
{
    int64_t db;
    if (size >= 3 && memcmp (text, "db=", 3) == 0) {
        if (decimal_parse (text + 3, size - 3, REDIS_URL_MAX_DB, &db))
            return s_fail (error, error_size, "db must be 0..%d",
                           REDIS_URL_MAX_DB);
        url->db = (int) db;
        return 0;
    }
    if (size >= 9 && memcmp (text, "password=", 9) == 0) {
        if (s_percent_decode (text + 9, size - 9, url->password))
            return s_fail (error, error_size,
                           "bad password (escape, NUL or length)");
        url->has_password = true;
        return 0;
    }
    return s_fail (error, error_size,
                   "unknown parameter (only db= and password=)");
}

static int
s_parse_unix (const char *text, redis_url_t *url, char *error,
              size_t error_size)
{
    if (text[0] != '/')
        return s_fail (error, error_size,
                       "unix:// needs an absolute path: unix:///PATH");
    const char *query = strchr (text, '?');
    size_t path_size = query ? (size_t) (query - text) : strlen (text);
    if (path_size > REDIS_URL_MAX_PATH_BYTES)
        return s_fail (error, error_size, "socket path longer than %d bytes",
                       REDIS_URL_MAX_PATH_BYTES);
    if (path_size < 2)
        return s_fail (error, error_size, "empty socket path");
    memcpy (url->path, text, path_size);
    url->path[path_size] = 0;
    if (!query)
        return 0;
    const char *param = query + 1;
    if (*param == 0)
        return s_fail (error, error_size, "empty query after '?'");
    while (true) {
        const char *end = strchr (param, '&');
        size_t size = end ? (size_t) (end - param) : strlen (param);
        if (s_parse_unix_param (param, size, url, error, error_size))
            return -1;
        if (!end)
            return 0;
        param = end + 1;
    }
}

//  HOST:PORT[,HOST:PORT...] into url->nodes: each node needs both.
static int
s_parse_nodes (const char *text, size_t size, redis_url_t *url, char *error,
               size_t error_size)
{
    if (size == 0)
        return s_fail (error, error_size, "no hosts: need HOST:PORT[,...]");
    size_t start = 0;
    while (start <= size) {
        const char *comma = memchr (text + start, ',', size - start);
        size_t end = comma ? (size_t) (comma - text) : size;
        if (url->node_count == REDIS_URL_MAX_NODES)
            return s_fail (error, error_size, "too many hosts (at most %d)",
                           REDIS_URL_MAX_NODES);
        redis_url_node_t *node = &url->nodes[url->node_count];
        if (end == start)
            return s_fail (error, error_size, "empty host in the host list");
        if (s_parse_host_port (text + start, end - start, node->host,
                               &node->port, error, error_size))
            return -1;
        if (node->host[0] == 0 || node->port == 0)
            return s_fail (error, error_size,
                           "host %zu of the list needs HOST:PORT",
                           url->node_count + 1);
        url->node_count++;
        start = end + 1;
    }
    return 0;
}

//  [[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] up to the first '/' or '#'.
static int
s_parse_list_authority (const char *text, size_t size, redis_url_t *url,
                        char *error, size_t error_size)
{
    size_t used;
    if (s_parse_credentials (text, size, url, &used, error, error_size))
        return -1;
    return s_parse_nodes (text + used, size - used, url, error, error_size);
}

static int
s_parse_sentinel (const char *text, redis_url_t *url, char *error,
                  size_t error_size)
{
    const char *hash = strchr (text, '#');
    if (!hash || !hash[1])
        return s_fail (error, error_size,
                       "redis-sentinel:// needs the master name: ...#MASTER");
    size_t name_size = strlen (hash + 1);
    if (name_size > REDIS_URL_MAX_NAME_BYTES)
        return s_fail (error, error_size, "master name longer than %d bytes",
                       REDIS_URL_MAX_NAME_BYTES);
    for (size_t i = 0; i < name_size; i++)
        if (!isgraph ((unsigned char) hash[1 + i]))
            return s_fail (error, error_size, "bad character in master name");
    memcpy (url->master, hash + 1, name_size + 1);
    if (memchr (text, '?', (size_t) (hash - text)))
        return s_fail (error, error_size, "redis-sentinel:// takes no query");
    //  The password may hold '/': the path starts after the last '@'.
    const char *at = NULL;
    for (const char *c = text; c < hash; c++)
        if (*c == '@')
            at = c;
    const char *from = at ? at : text;
    const char *slash = memchr (from, '/', (size_t) (hash - from));
    size_t authority_size = (size_t) ((slash ? slash : hash) - text);
    if (s_parse_list_authority (text, authority_size, url, error, error_size))
        return -1;
    if (slash && slash + 1 < hash) {
        int64_t db;
        if (decimal_parse (slash + 1, (size_t) (hash - slash - 1),
                           REDIS_URL_MAX_DB, &db))
            return s_fail (error, error_size, "database must be 0..%d",
                           REDIS_URL_MAX_DB);
        url->db = (int) db;
    }
    return 0;
}

static int
s_parse_cluster (const char *text, redis_url_t *url, char *error,
                 size_t error_size)
{
    size_t size = strlen (text);
    const char *at = NULL;
    for (size_t i = 0; i < size; i++)
        if (text[i] == '@')
            at = text + i;
    const char *from = at ? at : text;
    if (strpbrk (from, "?#"))
        return s_fail (error, error_size,
                       "redis-cluster:// takes no query or fragment");
    const char *slash = strchr (from, '/');
    if (slash && slash[1])
        return s_fail (error, error_size,
                       "redis-cluster:// takes no database (a cluster has "
                       "only db 0)");
    size_t authority_size = slash ? (size_t) (slash - text) : size;
    return s_parse_list_authority (text, authority_size, url, error,
                                   error_size);
}

typedef int (s_scheme_parse_fn) (const char *text, redis_url_t *url,
                                 char *error, size_t error_size);

//  The forms we take, by scheme. A row without a parser is a scheme we
//  recognise only to refuse it with a reason better than "unknown".
static const struct {
    const char *prefix;
    redis_url_kind_t kind;
    s_scheme_parse_fn *parse;
    const char *refusal;
} s_schemes[] = {
    { "redis://", REDIS_URL_TCP, s_parse_redis, NULL },
    { "unix://", REDIS_URL_UNIX, s_parse_unix, NULL },
    { "redis-sentinel://", REDIS_URL_SENTINEL, s_parse_sentinel, NULL },
    { "redis-cluster://", REDIS_URL_CLUSTER, s_parse_cluster, NULL },
    { "rediss://", REDIS_URL_TCP, NULL, "TLS (rediss://) is not supported" },
};

int
redis_url_parse (const char *text, redis_url_t *url, char *error,
                 size_t error_size)
{
    assert (url);
    memset (url, 0, sizeof (*url));
    strcpy (url->host, REDIS_URL_DEFAULT_HOST);
    url->port = REDIS_URL_DEFAULT_PORT;
    if (!text)
        return s_fail (error, error_size, "no Redis URL");
    size_t index = 0;
    size_t prefix_size = 0;
    for (; index < sizeof (s_schemes) / sizeof (s_schemes[0]); index++) {
        prefix_size = strlen (s_schemes[index].prefix);
        if (strncmp (text, s_schemes[index].prefix, prefix_size) == 0)
            break;
    }
    int rc;
    if (index == sizeof (s_schemes) / sizeof (s_schemes[0]))
        rc = s_fail (error, error_size,
                     "must be redis://HOST:PORT/DB, unix:///PATH, "
                     "redis-sentinel://HOST:PORT,.../DB#MASTER or "
                     "redis-cluster://HOST:PORT,...");
    else if (!s_schemes[index].parse)
        rc = s_fail (error, error_size, "%s", s_schemes[index].refusal);
    else {
        url->kind = s_schemes[index].kind;
        rc =
          s_schemes[index].parse (text + prefix_size, url, error, error_size);
    }
    if (rc)
        memset (url, 0, sizeof (*url));  //  no half-parsed secrets
    return rc;
}

//  HOST:PORT,HOST:PORT... of a list form.
static void
s_describe_nodes (const redis_url_t *url, char *buffer, size_t buffer_size)
{
    size_t used = 0;
    buffer[0] = 0;
    for (size_t i = 0; i < url->node_count && used < buffer_size; i++) {
        const redis_url_node_t *node = &url->nodes[i];
        bool is_ipv6 = strchr (node->host, ':') != NULL;
        int size = snprintf (buffer + used, buffer_size - used, "%s%s%s%s:%d",
                             i ? "," : "", is_ipv6 ? "[" : "", node->host,
                             is_ipv6 ? "]" : "", node->port);
        if (size < 0)
            return;
        used += (size_t) size;
    }
}

void
redis_url_describe (const redis_url_t *url, char *buffer, size_t buffer_size)
{
    assert (url);
    const char *secret = url->has_password ? ":***@" : "";
    const char *user = url->has_password ? url->user : "";
    char nodes[REDIS_URL_MAX_NODES * (REDIS_URL_MAX_HOST_BYTES + 9)];
    if (url->kind == REDIS_URL_SENTINEL || url->kind == REDIS_URL_CLUSTER)
        s_describe_nodes (url, nodes, sizeof (nodes));
    if (url->kind == REDIS_URL_UNIX)
        snprintf (buffer, buffer_size, "unix://%s?db=%d%s", url->path, url->db,
                  url->has_password ? "&password=***" : "");
    else if (url->kind == REDIS_URL_SENTINEL)
        snprintf (buffer, buffer_size, "redis-sentinel://%s%s%s/%d#%s", user,
                  secret, nodes, url->db, url->master);
    else if (url->kind == REDIS_URL_CLUSTER)
        snprintf (buffer, buffer_size, "redis-cluster://%s%s%s", user, secret,
                  nodes);
    else if (strchr (url->host, ':'))
        snprintf (buffer, buffer_size, "redis://%s%s[%s]:%d/%d", user, secret,
                  url->host, url->port, url->db);
    else
        snprintf (buffer, buffer_size, "redis://%s%s%s:%d/%d", user, secret,
                  url->host, url->port, url->db);
}
