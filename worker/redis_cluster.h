//  redis_cluster.h - the pure part of speaking to a Redis Cluster
//
//  No sockets, no logging: the slot of a key (CRC16 of its hash tag, as
//  the Redis Cluster specification defines it), the slot map built from a
//  CLUSTER SLOTS answer, and the cluster's redirect and refusal errors
//  (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY) read into a struct. The
//  I/O that uses them is redis_cluster_store.c.

#ifndef REDIS_CLUSTER_H
#define REDIS_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_url.h"

#define REDIS_CLUSTER_SLOTS     16384
#define REDIS_CLUSTER_MAX_NODES 128  //  masters a map may name

//  CRC16-CCITT as XMODEM (polynomial 0x1021, initial 0, no reflection).
uint16_t redis_cluster_crc16 (const void *data, size_t size);

//  The slot of a key: CRC16 of its hash tag (the bytes between the first
//  '{' and the first '}' after it, when there are any) or of the whole
//  key, modulo 16384.
int redis_cluster_key_slot (const void *key, size_t size);

//  Which master serves each slot. Nodes are kept by address, in the
//  order first seen; a node's index stays valid while the map lives, so
//  a caller may keep one connection per index.
typedef struct {
    int16_t owner[REDIS_CLUSTER_SLOTS];  //  node index, -1 while unknown
    redis_url_node_t nodes[REDIS_CLUSTER_MAX_NODES];
    size_t node_count;
} redis_cluster_map_t;

//  Empties the map: every slot unknown, no nodes.
void redis_cluster_map_reset (redis_cluster_map_t *map);

//  The index of node host:port, added if new; -1 when the map is full or
//  host is too long.
int redis_cluster_map_node (redis_cluster_map_t *map, const char *host,
                            int port);

//  Sets the owners of slots from a CLUSTER SLOTS answer, keeping the
//  nodes already known. A master with an empty or "?" host is the node
//  that answered (answered_host). Returns the number of slots covered, or
//  -1 with a one-line reason when the answer is not a slot list (a seed
//  that is not in cluster mode answers an error).
int redis_cluster_map_update (redis_cluster_map_t *map,
                              const redisReply *answer,
                              const char *answered_host, char *error,
                              size_t error_size);

typedef enum {
    REDIS_CLUSTER_OTHER,        //  not an error of the cluster's
    REDIS_CLUSTER_MOVED,        //  the slot lives elsewhere for good
    REDIS_CLUSTER_ASK,          //  ask that node once, after ASKING
    REDIS_CLUSTER_TRYAGAIN,     //  a slot mid-migration: later
    REDIS_CLUSTER_CLUSTERDOWN,  //  the cluster cannot serve
    REDIS_CLUSTER_READONLY,     //  a replica (a demoted master)
} redis_cluster_error_kind_t;

typedef struct {
    redis_cluster_error_kind_t kind;
    int slot;                                 //  MOVED and ASK
    char host[REDIS_URL_MAX_HOST_BYTES + 1];  //  MOVED and ASK
    int port;                                 //  MOVED and ASK
} redis_cluster_error_t;

//  Reads an error answer's text: "MOVED 3999 127.0.0.1:6381" and the
//  others. A MOVED or ASK with an empty host means the node that answered
//  (answered_host). A malformed redirect is REDIS_CLUSTER_OTHER.
void redis_cluster_parse_error (const char *text, size_t size,
                                const char *answered_host,
                                redis_cluster_error_t *error);

#endif
