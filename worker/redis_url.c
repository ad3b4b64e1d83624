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

//  [[USER]:PASSWORD@][HOST][:PORT] of a redis:// URL.
static int
s_parse_authority (const char *text, size_t size, redis_url_t *url, char *error,
                   size_t error_size)
{
    const char *at = NULL;
    for (size_t i = 0; i < size; i++)
        if (text[i] == '@')
            at = text + i;  //  the last one: passwords may hold '@'
    if (at) {
        const char *colon = memchr (text, ':', (size_t) (at - text));
        if (!colon)
            return s_fail (error, error_size,
                           "credentials must be [USER]:PASSWORD@");
        if (s_percent_decode (text, (size_t) (colon - text), url->user) ||
            s_percent_decode (colon + 1, (size_t) (at - colon - 1),
                              url->password))
            return s_fail (error, error_size,
                           "bad user or password (escape, NUL or length)");
        url->has_password = true;
        size -= (size_t) (at + 1 - text);
        text = at + 1;
    }
    return s_parse_host_port (text, size, url->host, &url->port, error,
                              error_size);
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
                     "must be redis://HOST:PORT/DB or unix:///PATH");
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

void
redis_url_describe (const redis_url_t *url, char *buffer, size_t buffer_size)
{
    assert (url);
    const char *secret = url->has_password ? ":***@" : "";
    if (url->kind == REDIS_URL_UNIX)
        snprintf (buffer, buffer_size, "unix://%s?db=%d%s", url->path, url->db,
                  url->has_password ? "&password=***" : "");
    else if (strchr (url->host, ':'))
        snprintf (buffer, buffer_size, "redis://%s%s[%s]:%d/%d",
                  url->has_password ? url->user : "", secret, url->host,
                  url->port, url->db);
    else
        snprintf (buffer, buffer_size, "redis://%s%s%s:%d/%d",
                  url->has_password ? url->user : "", secret, url->host,
                  url->port, url->db);
}
