//  redis_cluster_store.c - the cart data on a Redis Cluster

#include <czmq.h>
#include <hiredis/hiredis.h>
#include <string.h>

#include "cart_record.h"
#include "cart_reply.h"
#include "cart_store.h"
#include "cartmq/log.h"
#include "redis_cluster.h"
#include "redis_cluster_store.h"

//  One call of a batch on its way: which master, and whether after ASKING.
typedef struct {
    int slot;
    int node;
    bool is_asking;
} s_route_t;

struct _redis_cluster_store_t {
    redis_url_t url;           //  seeds and the password
    int timeout_ms;            //  bound on each connect, write and read
    int wait_replicas;         //  --redis-wait, passed to every master's store
    redis_cluster_map_t *map;  //  slot -> master
    cart_store_t *nodes[REDIS_CLUSTER_MAX_NODES];  //  by map node index
    bool has_map;           //  a CLUSTER SLOTS answer was read
    bool is_stale;          //  fetch the map again before the next batch
    int64_t next_fetch_ms;  //  no fetch before this
    bool is_down;           //  a failure was logged, no map since
    char reason[240];       //  why there is no map
    //  Per-batch scratch, kept to spare an allocation per batch: grown
    //  to the largest batch seen.
    size_t capacity;
    s_route_t *routes;                    //  per call of the batch
    redis_cluster_error_t *errors;        //  per call: its error answer
    redis_cluster_error_t *group_errors;  //  one pipeline's error answers
    size_t *todo;                         //  calls to send this round
    size_t *group;                        //  batch indexes of one pipeline
    const cmq_cart_request_t **requests;  //  one pipeline's calls
    cmq_cart_reply_t *replies;            //  and their replies
    bool *is_taken;                       //  per call: grouped this round
};

redis_cluster_store_t *
redis_cluster_store_new (const redis_url_t *url, int timeout_ms)
{
    assert (url && url->kind == REDIS_URL_CLUSTER && url->node_count > 0);
    redis_cluster_store_t *self =
      (redis_cluster_store_t *) zmalloc (sizeof (*self));
    self->url = *url;
    self->timeout_ms = timeout_ms;
    self->map = (redis_cluster_map_t *) zmalloc (sizeof (redis_cluster_map_t));
    redis_cluster_map_reset (self->map);
    snprintf (self->reason, sizeof (self->reason), "no slot map yet");
    return self;
}

static void
s_free_scratch (redis_cluster_store_t *self)
{
    free (self->routes);
    free (self->errors);
    free (self->group_errors);
    free (self->todo);
    free (self->group);
    free (self->requests);
    free (self->replies);
    free (self->is_taken);
}

void
redis_cluster_store_destroy (redis_cluster_store_t **self_p)
{
    assert (self_p);
    redis_cluster_store_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < REDIS_CLUSTER_MAX_NODES; i++)
            cart_store_destroy (&self->nodes[i]);
        free (self->map);
        s_free_scratch (self);
        memset (&self->url, 0, sizeof (self->url));
        free (self);
        *self_p = NULL;
    }
}

void
redis_cluster_store_set_wait (redis_cluster_store_t *self, int replicas)
{
    assert (self);
    self->wait_replicas = replicas;
    for (size_t i = 0; i < REDIS_CLUSTER_MAX_NODES; i++)
        if (self->nodes[i])
            cart_store_set_wait (self->nodes[i], replicas);
}

//  -------------------------------------------------------------------------
//  The slot map

//  Asks one node for CLUSTER SLOTS and updates the map; -1 with reason.
static int
s_fetch_from (redis_cluster_store_t *self, const redis_url_node_t *node,
              char *reason, size_t reason_size)
{
    struct timeval tv = { self->timeout_ms / 1000,
                          (self->timeout_ms % 1000) * 1000 };
    redisContext *redis = redisConnectWithTimeout (node->host, node->port, tv);
    int rc = -1;
    redisReply *answer = NULL;
    if (!redis || redis->err)
        snprintf (reason, reason_size, "%.100s:%d: %.100s", node->host,
                  node->port, redis ? redis->errstr : "out of memory");
    else if (redisSetTimeout (redis, tv) != REDIS_OK)
        snprintf (reason, reason_size, "cannot set socket timeout");
    else {
        if (self->url.has_password) {
            answer = (redisReply *) (self->url.user[0]
                                       ? redisCommand (redis, "AUTH %s %s",
                                                       self->url.user,
                                                       self->url.password)
                                       : redisCommand (redis, "AUTH %s",
                                                       self->url.password));
            if (answer)
                freeReplyObject (answer);
        }
        answer = (redisReply *) redisCommand (redis, "CLUSTER SLOTS");
        char why[200] = "no answer";
        if (answer && redis_cluster_map_update (self->map, answer, node->host,
                                                why, sizeof (why)) > 0)
            rc = 0;
        else if (answer && answer->type == REDIS_REPLY_ERROR &&
                 strstr (answer->str, "cluster support disabled"))
            snprintf (reason, reason_size,
                      "seed %.100s:%d is not in cluster mode (%.100s)",
                      node->host, node->port, why);
        else
            snprintf (reason, reason_size, "%.100s:%d: %.100s", node->host,
                      node->port, answer ? why : redis->errstr);
    }
    if (answer)
        freeReplyObject (answer);
    if (redis)
        redisFree (redis);
    return rc;
}

//  Fetches the map from the masters we know, then the seeds.
static int
s_fetch_map (redis_cluster_store_t *self)
{
    self->next_fetch_ms = zclock_mono () + CART_STORE_RECONNECT_MS;
    char reason[240] = "no node to ask";
    size_t known = self->map->node_count;
    for (size_t i = 0; i < known + self->url.node_count; i++) {
        redis_url_node_t node =
          i < known ? self->map->nodes[i] : self->url.nodes[i - known];
        if (s_fetch_from (self, &node, reason, sizeof (reason)) == 0) {
            if (!self->has_map || self->is_down)
                cmq_log_info ("redis cluster slot map from %s:%d masters=%zu",
                              node.host, node.port, self->map->node_count);
            else
                cmq_log_debug ("redis cluster slot map refreshed from %s:%d",
                               node.host, node.port);
            self->has_map = true;
            self->is_stale = false;
            self->is_down = false;
            return 0;
        }
    }
    snprintf (self->reason, sizeof (self->reason), "%s", reason);
    char escaped[CMQ_LOG_ESCAPED_BYTES (sizeof (self->reason))];
    cmq_log_escape (self->reason, strlen (self->reason), escaped,
                    sizeof (escaped));
    if (!self->is_down)
        cmq_log_warning ("redis cluster unavailable reason=\"%s\"", escaped);
    self->is_down = true;
    return -1;
}

int
redis_cluster_store_connect (redis_cluster_store_t *self)
{
    assert (self);
    if ((!self->has_map || self->is_stale) &&
        zclock_mono () >= self->next_fetch_ms)
        s_fetch_map (self);
    return self->has_map ? 0 : -1;
}

//  The store of master index node, made on first use.
static cart_store_t *
s_node_store (redis_cluster_store_t *self, int node)
{
    if (!self->nodes[node]) {
        redis_url_t url = self->url;
        url.kind = REDIS_URL_TCP;
        snprintf (url.host, sizeof (url.host), "%s",
                  self->map->nodes[node].host);
        url.port = self->map->nodes[node].port;
        url.node_count = 0;
        self->nodes[node] = cart_store_new (&url, self->timeout_ms);
        cart_store_set_wait (self->nodes[node], self->wait_replicas);
        memset (&url, 0, sizeof (url));
    }
    return self->nodes[node];
}

//  -------------------------------------------------------------------------
//  Batches

//  Room for count calls in the scratch arrays; -1 when out of memory.
static int
s_reserve (redis_cluster_store_t *self, size_t count)
{
    if (count <= self->capacity)
        return 0;
    s_free_scratch (self);
    self->routes = (s_route_t *) malloc (count * sizeof (s_route_t));
    self->errors =
      (redis_cluster_error_t *) malloc (count * sizeof (redis_cluster_error_t));
    self->group_errors =
      (redis_cluster_error_t *) malloc (count * sizeof (redis_cluster_error_t));
    self->todo = (size_t *) malloc (count * sizeof (size_t));
    self->group = (size_t *) malloc (count * sizeof (size_t));
    self->requests = (const cmq_cart_request_t **) malloc (
      count * sizeof (cmq_cart_request_t *));
    self->replies =
      (cmq_cart_reply_t *) malloc (count * sizeof (cmq_cart_reply_t));
    self->is_taken = (bool *) malloc (count * sizeof (bool));
    bool is_ok = self->routes && self->errors && self->group_errors &&
                 self->todo && self->group && self->requests && self->replies &&
                 self->is_taken;
    self->capacity = is_ok ? count : 0;
    return is_ok ? 0 : -1;
}

//  One pipeline of a wave: calls self->group[start..start+size-1] (and the
//  same places of the other scratch arrays) to one master.
typedef struct {
    size_t start;
    size_t size;
    cart_store_t *store;
} s_pipe_t;

//  Gathers the calls of todo[first..count-1] that go where todo[first]
//  goes (same master, same ASKING) into the scratch arrays from offset
//  start, and sends them. Returns how many.
static size_t
s_send_group (redis_cluster_store_t *self,
              const cmq_cart_request_t *const *requests, size_t count,
              size_t first, size_t start, s_pipe_t *pipe)
{
    const s_route_t *route = &self->routes[self->todo[first]];
    size_t size = 0;
    for (size_t i = first; i < count; i++) {
        const s_route_t *other = &self->routes[self->todo[i]];
        if (!self->is_taken[i] && other->node == route->node &&
            other->is_asking == route->is_asking) {
            self->is_taken[i] = true;
            size_t at = start + size++;
            self->group[at] = self->todo[i];
            self->requests[at] = requests[self->todo[i]];
        }
    }
    memset (&self->replies[start], 0, size * sizeof (cmq_cart_reply_t));
    memset (&self->group_errors[start], 0,
            size * sizeof (redis_cluster_error_t));
    pipe->start = start;
    pipe->size = size;
    pipe->store = s_node_store (self, route->node);
    cart_store_send_routed (pipe->store, &self->requests[start],
                            &self->replies[start], size,
                            &self->group_errors[start], route->is_asking);
    return size;
}

//  Collects one pipeline's answers and moves replies and error answers to
//  their calls.
static void
s_collect_group (redis_cluster_store_t *self, cmq_cart_reply_t *replies,
                 const s_pipe_t *pipe)
{
    cart_store_collect (pipe->store);
    for (size_t at = pipe->start; at < pipe->start + pipe->size; at++) {
        //  A reply owns its items: moved, not shared.
        replies[self->group[at]] = self->replies[at];
        self->errors[self->group[at]] = self->group_errors[at];
    }
    if (!cart_store_is_connected (pipe->store))
        self->is_stale = true;  //  a master failed: who serves now?
}

//  Runs the calls self->todo[0..count-1], one pipeline per master (and per
//  ASKING or not): a wave sends to every master it can before reading any
//  answer, so the masters work at once. A master holds one pipeline at a
//  time; a second one for it (ASKING and not) waits for the next wave.
static void
s_run (redis_cluster_store_t *self, const cmq_cart_request_t *const *requests,
       cmq_cart_reply_t *replies, size_t count)
{
    for (size_t i = 0; i < count; i++)
        self->is_taken[i] = false;
    size_t left = count;
    while (left > 0) {
        bool is_busy[REDIS_CLUSTER_MAX_NODES] = { false };
        s_pipe_t pipes[REDIS_CLUSTER_MAX_NODES];
        size_t pipe_count = 0, used = 0;
        for (size_t first = 0; first < count; first++) {
            int node = self->routes[self->todo[first]].node;
            if (self->is_taken[first] || is_busy[node])
                continue;
            is_busy[node] = true;
            used += s_send_group (self, requests, count, first, used,
                                  &pipes[pipe_count++]);
        }
        for (size_t i = 0; i < pipe_count; i++)
            s_collect_group (self, replies, &pipes[i]);
        left -= used;
    }
}

//  Where each call goes: its user's slot's master. A call whose slot has
//  no master in the map is answered 503 at once. Returns how many calls
//  are in self->todo.
static size_t
s_route (redis_cluster_store_t *self, const cmq_cart_request_t *const *requests,
         cmq_cart_reply_t *replies, size_t count)
{
    size_t todo = 0;
    char key[CART_RECORD_MAX_KEY_BYTES];
    for (size_t i = 0; i < count; i++) {
        size_t size = cart_record_cart_key (&requests[i]->user_id, key);
        s_route_t *route = &self->routes[i];
        route->slot = redis_cluster_key_slot (key, size);
        route->node = self->map->owner[route->slot];
        route->is_asking = false;
        if (route->node >= 0)
            self->todo[todo++] = i;
        else {
            char reason[80];
            snprintf (reason, sizeof (reason),
                      "slot %d has no master in the cluster's map",
                      route->slot);
            cart_reply_unavailable (&replies[i], reason);
            self->is_stale = true;
        }
    }
    return todo;
}

//  After a round: the calls redirected by MOVED (the map learns the new
//  owner) or ASK go to self->todo for one more round, their 503 undone.
//  Returns how many.
static size_t
s_redirect (redis_cluster_store_t *self, cmq_cart_reply_t *replies,
            size_t count)
{
    size_t again = 0;
    for (size_t i = 0; i < count; i++) {
        size_t index = self->todo[i];
        const redis_cluster_error_t *error = &self->errors[index];
        s_route_t *route = &self->routes[index];
        if (error->kind == REDIS_CLUSTER_READONLY)
            self->is_stale = true;  //  a master turned replica
        if (error->kind != REDIS_CLUSTER_MOVED &&
            error->kind != REDIS_CLUSTER_ASK)
            continue;
        int node = redis_cluster_map_node (self->map, error->host, error->port);
        if (node < 0)
            continue;  //  the map is full: the 503 stands
        if (error->kind == REDIS_CLUSTER_MOVED) {
            self->map->owner[error->slot] = (int16_t) node;
            self->is_stale = true;  //  more slots may have moved with it
        }
        route->node = node;
        route->is_asking = error->kind == REDIS_CLUSTER_ASK;
        memset (&replies[index], 0, sizeof (cmq_cart_reply_t));
        self->todo[again++] = index;
    }
    return again;
}

void
redis_cluster_store_execute (redis_cluster_store_t *self,
                             const cmq_cart_request_t *const *requests,
                             cmq_cart_reply_t *replies, size_t count)
{
    assert (self);
    if (count == 0)
        return;
    if (redis_cluster_store_connect (self) || s_reserve (self, count)) {
        const char *reason = self->has_map ? "out of memory" : self->reason;
        for (size_t i = 0; i < count; i++)
            cart_reply_unavailable (&replies[i], reason);
        return;
    }
    size_t todo = s_route (self, requests, replies, count);
    s_run (self, requests, replies, todo);
    //  One redirect per call, as the cluster specification advises: a
    //  second MOVED or ASK stays a 503 and the map is fetched anew.
    todo = s_redirect (self, replies, todo);
    if (todo > 0) {
        cmq_log_debug ("redis cluster redirected calls=%zu", todo);
        s_run (self, requests, replies, todo);
        for (size_t i = 0; i < todo; i++) {
            redis_cluster_error_kind_t kind = self->errors[self->todo[i]].kind;
            if (kind == REDIS_CLUSTER_MOVED || kind == REDIS_CLUSTER_READONLY)
                self->is_stale = true;
        }
    }
}
