//  redis_url.h - where Redis is, from the worker's --redis URL
//
//  Pure text in, a redis_url_t out: no sockets, no logging. Each accepted
//  form is one scheme with its own parser and a kind that tells the store
//  how to connect: redis:// and unix:// name one Redis, redis-sentinel://
//  a list of sentinels and a master name, redis-cluster:// a list of seed
//  nodes of a Redis Cluster (contract §7).

#ifndef REDIS_URL_H
#define REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define REDIS_URL_DEFAULT          "redis://127.0.0.1:6379/0"
#define REDIS_URL_DEFAULT_HOST     "127.0.0.1"
#define REDIS_URL_DEFAULT_PORT     6379
#define REDIS_URL_MAX_HOST_BYTES   255
#define REDIS_URL_MAX_PATH_BYTES   107  //  sun_path less its NUL
#define REDIS_URL_MAX_SECRET_BYTES 255  //  user name or password
#define REDIS_URL_MAX_DB           1000000
#define REDIS_URL_MAX_NODES        16   //  sentinels or cluster seeds
#define REDIS_URL_MAX_NAME_BYTES   128  //  a Sentinel master name

//  How to reach Redis.
typedef enum {
    REDIS_URL_TCP,       //  redis://: host and port
    REDIS_URL_UNIX,      //  unix://: a socket path
    REDIS_URL_SENTINEL,  //  redis-sentinel://: sentinels, master, db
    REDIS_URL_CLUSTER,   //  redis-cluster://: seed nodes
} redis_url_kind_t;

//  One HOST:PORT of a Sentinel or Cluster URL.
typedef struct {
    char host[REDIS_URL_MAX_HOST_BYTES + 1];
    int port;
} redis_url_node_t;

typedef struct {
    redis_url_kind_t kind;
    char host[REDIS_URL_MAX_HOST_BYTES + 1];    //  TCP only
    int port;                                   //  TCP only
    char path[REDIS_URL_MAX_PATH_BYTES + 1];    //  unix only
    char user[REDIS_URL_MAX_SECRET_BYTES + 1];  //  ACL user, or ""
    char password[REDIS_URL_MAX_SECRET_BYTES + 1];
    bool has_password;                            //  send AUTH
    int db;                                       //  SELECT when > 0
    redis_url_node_t nodes[REDIS_URL_MAX_NODES];  //  Sentinel and Cluster
    size_t node_count;
    char master[REDIS_URL_MAX_NAME_BYTES + 1];  //  Sentinel only
} redis_url_t;

//  Parses a Redis URL strictly:
//      redis://[[USER]:PASSWORD@][HOST][:PORT][/DB]
//      unix:///PATH[?db=N][&password=PASSWORD]
//      redis-sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/DB]#MASTER
//      redis-cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]
//  In the list forms every node needs its PORT, at most REDIS_URL_MAX_NODES
//  of them; a cluster has no DB. In redis:// HOST defaults to 127.0.0.1 (an IPv6 address goes in brackets), PORT to
//  6379, DB to 0; USER and PASSWORD may use %XX escapes. Returns 0, or -1
//  with a one-line reason in error and *url zeroed (no half-parsed secret
//  is left behind). Never logs.
int redis_url_parse (const char *text, redis_url_t *url, char *error,
                     size_t error_size);

//  Writes the URL for logs into buffer, the password masked.
void redis_url_describe (const redis_url_t *url, char *buffer,
                         size_t buffer_size);

#endif
