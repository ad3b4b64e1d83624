//  redis_sentinel.c - where a Sentinel-managed master is now

#include <assert.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "decimal.h"
#include "redis_sentinel.h"

//  One sentinel's part of the whole timeout: enough to connect on a LAN,
//  short enough that a dead first sentinel costs little.
#define S_MIN_SHARE_MS 50

//  AUTH to a sentinel. A sentinel with no password of its own refuses
//  AUTH ("without any password configured"): the password is for the
//  nodes that ask for it (contract §7), so that refusal is no failure.
static int
s_auth (redisContext *redis, const redis_url_t *url, char *reason,
        size_t reason_size)
{
    const char *argv[3] = { "AUTH" };
    size_t sizes[3] = { 4 };
    int argc = 1;
    if (url->user[0]) {
        argv[argc] = url->user;
        sizes[argc++] = strlen (url->user);
    }
    argv[argc] = url->password;
    sizes[argc++] = strlen (url->password);
    redisReply *answer =
      (redisReply *) redisCommandArgv (redis, argc, argv, sizes);
    if (!answer) {
        snprintf (reason, reason_size, "AUTH: %.100s", redis->errstr);
        return -1;
    }
    int rc = 0;
    if (answer->type == REDIS_REPLY_ERROR &&
        !strstr (answer->str, "without any password configured") &&
        !strstr (answer->str, "no password is set")) {
        snprintf (reason, reason_size, "AUTH: %.100s", answer->str);
        rc = -1;
    }
    freeReplyObject (answer);
    return rc;
}

//  The [host, port] answer of get-master-addr-by-name; 1 when the
//  sentinel does not know the master (a nil answer).
static int
s_read_address (const redisReply *answer, char *host, int *port, char *reason,
                size_t reason_size)
{
    if (answer->type == REDIS_REPLY_NIL)
        return 1;
    if (answer->type == REDIS_REPLY_ERROR) {
        snprintf (reason, reason_size, "%.100s", answer->str);
        return -1;
    }
    int64_t value;
    if (answer->type != REDIS_REPLY_ARRAY || answer->elements != 2 ||
        answer->element[0]->type != REDIS_REPLY_STRING ||
        answer->element[1]->type != REDIS_REPLY_STRING ||
        answer->element[0]->len == 0 ||
        answer->element[0]->len > REDIS_URL_MAX_HOST_BYTES ||
        memchr (answer->element[0]->str, 0, answer->element[0]->len) ||
        decimal_parse (answer->element[1]->str, answer->element[1]->len, 65535,
                       &value) ||
        value == 0) {
        snprintf (reason, reason_size, "malformed master address");
        return -1;
    }
    memcpy (host, answer->element[0]->str, answer->element[0]->len + 1);
    *port = (int) value;
    return 0;
}

//  Asks one sentinel: 0 with the address, 1 if it does not know the
//  master, -1 with reason when it cannot answer.
static int
s_ask (const redis_url_node_t *sentinel, const redis_url_t *url, int share_ms,
       char *host, int *port, char *reason, size_t reason_size)
{
    struct timeval tv = { share_ms / 1000, (share_ms % 1000) * 1000 };
    redisContext *redis =
      redisConnectWithTimeout (sentinel->host, sentinel->port, tv);
    if (!redis || redis->err) {
        snprintf (reason, reason_size, "%.100s",
                  redis ? redis->errstr : "out of memory");
        if (redis)
            redisFree (redis);
        return -1;
    }
    int rc = -1;
    if (redisSetTimeout (redis, tv) != REDIS_OK)
        snprintf (reason, reason_size, "cannot set socket timeout");
    else if (!url->has_password ||
             s_auth (redis, url, reason, reason_size) == 0) {
        const char *argv[] = { "SENTINEL", "get-master-addr-by-name",
                               url->master };
        size_t sizes[] = { 8, 23, strlen (url->master) };
        redisReply *answer =
          (redisReply *) redisCommandArgv (redis, 3, argv, sizes);
        if (!answer)
            snprintf (reason, reason_size, "%.100s", redis->errstr);
        else {
            rc = s_read_address (answer, host, port, reason, reason_size);
            freeReplyObject (answer);
        }
    }
    redisFree (redis);
    return rc;
}

int
redis_sentinel_master (const redis_url_t *url, int timeout_ms, char *host,
                       int *port, char *reason, size_t reason_size)
{
    assert (url && url->kind == REDIS_URL_SENTINEL && url->node_count > 0);
    int share_ms = timeout_ms / (int) url->node_count;
    if (share_ms < S_MIN_SHARE_MS)
        share_ms = S_MIN_SHARE_MS;
    size_t unknown = 0;
    char last[200] = "";
    for (size_t i = 0; i < url->node_count; i++) {
        const redis_url_node_t *sentinel = &url->nodes[i];
        char why[200] = "";
        int rc = s_ask (sentinel, url, share_ms, host, port, why, sizeof (why));
        if (rc == 0)
            return 0;
        if (rc == 1)
            unknown++;
        else
            snprintf (last, sizeof (last), "%.80s:%d: %.60s", sentinel->host,
                      sentinel->port, why);
    }
    if (unknown > 0)
        snprintf (reason, reason_size,
                  "sentinels do not know master '%s' (%zu of %zu asked "
                  "answered unknown)%s%s",
                  url->master, unknown, url->node_count, last[0] ? "; " : "",
                  last);
    else
        snprintf (reason, reason_size,
                  "no sentinel answered for master '%s' (%s)", url->master,
                  last);
    return -1;
}

int
redis_sentinel_check_master (redisContext *redis, const char *host, int port,
                             char *reason, size_t reason_size)
{
    assert (redis && host);
    redisReply *answer = (redisReply *) redisCommand (redis, "ROLE");
    if (!answer) {
        snprintf (reason, reason_size, "ROLE: %.100s", redis->errstr);
        return -1;
    }
    bool is_master = answer->type == REDIS_REPLY_ARRAY &&
                     answer->elements > 0 &&
                     answer->element[0]->type == REDIS_REPLY_STRING &&
                     strcmp (answer->element[0]->str, "master") == 0;
    freeReplyObject (answer);
    if (!is_master)
        snprintf (reason, reason_size,
                  "%.100s:%d named by the sentinels is not a master (ROLE)",
                  host, port);
    return is_master ? 0 : -1;
}
