//  redis_cluster.c - the pure part of speaking to a Redis Cluster

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "decimal.h"
#include "redis_cluster.h"

uint16_t
redis_cluster_crc16 (const void *data, size_t size)
{
    const unsigned char *bytes = (const unsigned char *) data;
    uint16_t crc = 0;
    for (size_t i = 0; i < size; i++) {
        crc ^= (uint16_t) (bytes[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
    }
    return crc;
}

int
redis_cluster_key_slot (const void *key, size_t size)
{
    const char *text = (const char *) key;
    const char *open = (const char *) memchr (text, '{', size);
    if (open) {
        size_t after = (size_t) (open - text) + 1;
        const char *close = (const char *) memchr (open + 1, '}', size - after);
        //  An empty tag ("{}") is no tag: the whole key is hashed.
        if (close && close > open + 1)
            return redis_cluster_crc16 (open + 1, (size_t) (close - open - 1)) &
                   (REDIS_CLUSTER_SLOTS - 1);
    }
    return redis_cluster_crc16 (text, size) & (REDIS_CLUSTER_SLOTS - 1);
}

void
redis_cluster_map_reset (redis_cluster_map_t *map)
{
    assert (map);
    for (int slot = 0; slot < REDIS_CLUSTER_SLOTS; slot++)
        map->owner[slot] = -1;
    map->node_count = 0;
}

int
redis_cluster_map_node (redis_cluster_map_t *map, const char *host, int port)
{
    assert (map && host);
    for (size_t i = 0; i < map->node_count; i++)
        if (map->nodes[i].port == port &&
            strcmp (map->nodes[i].host, host) == 0)
            return (int) i;
    if (map->node_count == REDIS_CLUSTER_MAX_NODES ||
        strlen (host) > REDIS_URL_MAX_HOST_BYTES || port < 1 || port > 65535)
        return -1;
    redis_url_node_t *node = &map->nodes[map->node_count];
    strcpy (node->host, host);
    node->port = port;
    return (int) map->node_count++;
}

//  One [start, end, [host, port, ...], replicas...] entry: its master's
//  node index in *node, its range in *start and *end.
static int
s_parse_range (redis_cluster_map_t *map, const redisReply *range,
               const char *answered_host, int *node, long long *start,
               long long *end)
{
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
        range->element[0]->type != REDIS_REPLY_INTEGER ||
        range->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    *start = range->element[0]->integer;
    *end = range->element[1]->integer;
    if (*start < 0 || *end < *start || *end >= REDIS_CLUSTER_SLOTS)
        return -1;
    const redisReply *master = range->element[2];
    if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
        master->element[0]->type != REDIS_REPLY_STRING ||
        master->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    const redisReply *host = master->element[0];
    if (host->len > REDIS_URL_MAX_HOST_BYTES ||
        memchr (host->str, 0, host->len))
        return -1;
    bool is_unknown = host->len == 0 || (host->len == 1 && host->str[0] == '?');
    *node = redis_cluster_map_node (map, is_unknown ? answered_host : host->str,
                                    (int) master->element[1]->integer);
    return *node < 0 ? -1 : 0;
}

int
redis_cluster_map_update (redis_cluster_map_t *map, const redisReply *answer,
                          const char *answered_host, char *error,
                          size_t error_size)
{
    assert (map && answer && answered_host && error && error_size > 0);
    if (answer->type == REDIS_REPLY_ERROR) {
        snprintf (error, error_size, "CLUSTER SLOTS: %.120s%s", answer->str,
                  answer->len > 120 ? "..." : "");
        return -1;
    }
    if (answer->type != REDIS_REPLY_ARRAY) {
        snprintf (error, error_size, "CLUSTER SLOTS: not a slot list");
        return -1;
    }
    //  Parse everything before changing anything: a bad answer leaves the
    //  map as it was (new nodes aside, which are harmless).
    for (size_t i = 0; i < answer->elements; i++) {
        int node;
        long long start, end;
        if (s_parse_range (map, answer->element[i], answered_host, &node,
                           &start, &end)) {
            snprintf (error, error_size, "CLUSTER SLOTS: malformed entry %zu",
                      i);
            return -1;
        }
    }
    int covered = 0;
    for (size_t i = 0; i < answer->elements; i++) {
        int node;
        long long start, end;
        s_parse_range (map, answer->element[i], answered_host, &node, &start,
                       &end);
        for (long long slot = start; slot <= end; slot++)
            map->owner[slot] = (int16_t) node;
        covered += (int) (end - start + 1);
    }
    return covered;
}

static bool
s_starts_with (const char *text, size_t size, const char *prefix)
{
    size_t length = strlen (prefix);
    return size >= length && memcmp (text, prefix, length) == 0;
}

//  "SLOT HOST:PORT" after MOVED or ASK; the port follows the last colon
//  (an IPv6 host holds colons of its own).
static int
s_parse_redirect (const char *text, size_t size, const char *answered_host,
                  redis_cluster_error_t *error)
{
    const char *space = (const char *) memchr (text, ' ', size);
    if (!space)
        return -1;
    int64_t slot;
    if (decimal_parse (text, (size_t) (space - text), REDIS_CLUSTER_SLOTS - 1,
                       &slot))
        return -1;
    const char *address = space + 1;
    size_t address_size = size - (size_t) (address - text);
    const char *colon = NULL;
    for (size_t i = 0; i < address_size; i++)
        if (address[i] == ':')
            colon = address + i;
    if (!colon)
        return -1;
    size_t host_size = (size_t) (colon - address);
    int64_t port;
    if (host_size > REDIS_URL_MAX_HOST_BYTES ||
        memchr (address, 0, host_size) ||
        decimal_parse (colon + 1, address_size - host_size - 1, 65535, &port) ||
        port == 0)
        return -1;
    if (host_size == 0)
        snprintf (error->host, sizeof (error->host), "%s", answered_host);
    else {
        memcpy (error->host, address, host_size);
        error->host[host_size] = 0;
    }
    error->slot = (int) slot;
    error->port = (int) port;
    return 0;
}

void
redis_cluster_parse_error (const char *text, size_t size,
                           const char *answered_host,
                           redis_cluster_error_t *error)
{
    assert (text && answered_host && error);
    memset (error, 0, sizeof (*error));
    error->kind = REDIS_CLUSTER_OTHER;
    if (s_starts_with (text, size, "MOVED ")) {
        if (s_parse_redirect (text + 6, size - 6, answered_host, error) == 0)
            error->kind = REDIS_CLUSTER_MOVED;
    } else if (s_starts_with (text, size, "ASK ")) {
        if (s_parse_redirect (text + 4, size - 4, answered_host, error) == 0)
            error->kind = REDIS_CLUSTER_ASK;
    } else if (s_starts_with (text, size, "TRYAGAIN"))
        error->kind = REDIS_CLUSTER_TRYAGAIN;
    else if (s_starts_with (text, size, "CLUSTERDOWN"))
        error->kind = REDIS_CLUSTER_CLUSTERDOWN;
    else if (s_starts_with (text, size, "READONLY"))
        error->kind = REDIS_CLUSTER_READONLY;
    if (error->kind == REDIS_CLUSTER_OTHER)
        memset (error, 0, sizeof (*error));
}
