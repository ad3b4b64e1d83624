//  cart_store.c - the cart data in Redis (hiredis, synchronous)

#include <czmq.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <string.h>
#include <sys/time.h>

#include "cart_command.h"
#include "cart_lua.h"
#include "cart_reply.h"
#include "cart_store.h"
#include "cartmq/log.h"
#include "redis_cluster_store.h"
#include "redis_sentinel.h"
#include "redis_wait.h"

//  A batch between its send and its collect (a cluster store sends to every
//  master before it collects from any).
typedef struct {
    const cmq_cart_request_t *const *requests;
    cmq_cart_reply_t *replies;
    size_t count;
    size_t *pending;  //  owned, 3 x count: indexes to send, then
    size_t *retry;    //  those whose script Redis had forgotten,
    size_t *ends;     //  and where each command ends in the output buffer
    size_t retry_count;
    size_t start;         //  output buffer offset where the pipeline began
    size_t written;       //  bytes of it written
    bool has_wait;        //  a WAIT follows the commands
    bool is_sent;         //  collect has answers to read
    const char *failure;  //  why the write failed, or NULL
    int64_t deadline_ms;
} s_batch_t;

struct _cart_store_t {
    redis_url_t url;      //  where Redis is
    int timeout_ms;       //  bound on each connect, write and read
    redisContext *redis;  //  NULL while disconnected
    char sha[CART_COMMAND_SHA_BYTES + 1];  //  cart.lua as SCRIPT LOAD named it
    int64_t next_attempt_ms;               //  no connect attempt before this
    bool is_down;       //  a failure was logged, no success since
    char reason[200];   //  why the last connect failed
    int wait_replicas;  //  WAIT for this many replicas after mutations
    char host[REDIS_URL_MAX_HOST_BYTES + 1];  //  TCP: where we connect
    int port;                                 //  (Sentinel: as named)
    bool is_demoted;  //  a READONLY answer in this batch (Sentinel)
    //  Set by a cluster store for one batch on one of its nodes:
    redis_cluster_error_t *cluster_errors;  //  per request, or NULL
    bool is_asking;                         //  ASKING before each command
    redis_cluster_store_t *cluster;         //  redis-cluster://: all goes there
    s_batch_t batch;  //  the batch between its send and its collect
};

//  -------------------------------------------------------------------------
//  Connection

static struct timeval
s_timeval (int timeout_ms)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return tv;
}

cart_store_t *
cart_store_new (const redis_url_t *url, int timeout_ms)
{
    assert (url);
    assert (timeout_ms > 0);
    cart_store_t *self = (cart_store_t *) zmalloc (sizeof (cart_store_t));
    self->url = *url;
    self->timeout_ms = timeout_ms;
    strcpy (self->host, url->host);
    self->port = url->port;
    if (url->kind == REDIS_URL_CLUSTER)
        self->cluster = redis_cluster_store_new (url, timeout_ms);
    return self;
}

void
cart_store_set_wait (cart_store_t *self, int replicas)
{
    assert (self);
    assert (replicas >= 0);
    self->wait_replicas = replicas;
    if (self->cluster)
        redis_cluster_store_set_wait (self->cluster, replicas);
}

void
cart_store_destroy (cart_store_t **self_p)
{
    assert (self_p);
    cart_store_t *self = *self_p;
    if (self) {
        if (self->redis)
            redisFree (self->redis);
        redis_cluster_store_destroy (&self->cluster);
        //  The password must not outlive the store in freed memory.
        memset (&self->url, 0, sizeof (self->url));
        free (self);
        *self_p = NULL;
    }
}

//  Forgets a connection that failed; logs the first failure of a run.
static void
s_drop (cart_store_t *self, const char *reason)
{
    if (self->redis) {
        redisFree (self->redis);
        self->redis = NULL;
    }
    snprintf (self->reason, sizeof (self->reason), "%s", reason);
    self->next_attempt_ms = zclock_mono () + CART_STORE_RECONNECT_MS;
    //  The reason may quote Redis' own error text: a peer's bytes.
    char escaped[CMQ_LOG_ESCAPED_BYTES (sizeof (self->reason))];
    cmq_log_escape (self->reason, strlen (self->reason), escaped,
                    sizeof (escaped));
    if (!self->is_down) {
        self->is_down = true;
        cmq_log_warning ("redis unavailable reason=\"%s\"", escaped);
    } else
        cmq_log_debug ("redis still unavailable reason=\"%s\"", escaped);
}

//  Runs one command and checks its answer's type; -1 and *reason on
//  failure. The answer is freed unless answer_p takes it.
static int
s_command (redisContext *redis, int argc, const char **argv,
           const size_t *argv_sizes, int expected_type, redisReply **answer_p,
           char *reason, size_t reason_size)
{
    redisReply *answer =
      (redisReply *) redisCommandArgv (redis, argc, argv, argv_sizes);
    if (!answer) {
        snprintf (reason, reason_size, "%s: %s", argv[0],
                  redis->errstr[0] ? redis->errstr : "no answer");
        return -1;
    }
    if (answer->type != expected_type) {
        if (answer->type == REDIS_REPLY_ERROR)
            snprintf (reason, reason_size, "%s: %.120s", argv[0], answer->str);
        else
            snprintf (reason, reason_size, "%s: unexpected answer", argv[0]);
        freeReplyObject (answer);
        return -1;
    }
    if (answer_p)
        *answer_p = answer;
    else
        freeReplyObject (answer);
    return 0;
}

static int
s_load_script (cart_store_t *self, char *reason, size_t reason_size)
{
    const char *argv[] = { "SCRIPT", "LOAD", s_cart_lua };
    size_t sizes[] = { 6, 4, sizeof (s_cart_lua) - 1 };
    redisReply *answer = NULL;
    if (s_command (self->redis, 3, argv, sizes, REDIS_REPLY_STRING, &answer,
                   reason, reason_size))
        return -1;
    int rc = 0;
    if (answer->len == CART_COMMAND_SHA_BYTES)
        memcpy (self->sha, answer->str, CART_COMMAND_SHA_BYTES + 1);
    else {
        snprintf (reason, reason_size, "SCRIPT LOAD: bad SHA");
        rc = -1;
    }
    freeReplyObject (answer);
    return rc;
}

//  AUTH, SELECT, ROLE (Sentinel) and SCRIPT LOAD on a fresh connection.
static int
s_prepare (cart_store_t *self, char *reason, size_t reason_size)
{
    redisContext *redis = self->redis;
    if (redisSetTimeout (redis, s_timeval (self->timeout_ms)) != REDIS_OK) {
        snprintf (reason, reason_size, "cannot set socket timeout");
        return -1;
    }
    if (self->url.has_password) {
        //  AUTH PASSWORD, or AUTH USER PASSWORD for a Redis 6 ACL user.
        const char *argv[3] = { "AUTH" };
        size_t sizes[3] = { 4 };
        int argc = 1;
        if (self->url.user[0]) {
            argv[argc] = self->url.user;
            sizes[argc++] = strlen (self->url.user);
        }
        argv[argc] = self->url.password;
        sizes[argc++] = strlen (self->url.password);
        if (s_command (redis, argc, argv, sizes, REDIS_REPLY_STATUS, NULL,
                       reason, reason_size))
            return -1;
    }
    if (self->url.db > 0) {
        char db[16];
        snprintf (db, sizeof (db), "%d", self->url.db);
        const char *argv[] = { "SELECT", db };
        size_t sizes[] = { 6, strlen (db) };
        if (s_command (redis, 2, argv, sizes, REDIS_REPLY_STATUS, NULL, reason,
                       reason_size))
            return -1;
    }
    if (self->url.kind == REDIS_URL_SENTINEL &&
        redis_sentinel_check_master (redis, self->host, self->port, reason,
                                     reason_size))
        return -1;
    return s_load_script (self, reason, reason_size);
}

//  Nothing arrives unasked on our connection, so a readable socket
//  between calls means Redis closed it (a restart while we were idle).
//  Seeing that first spares the next request a needless 503.
static bool
s_is_closed_by_peer (redisContext *redis)
{
    struct pollfd item = { redis->fd, POLLIN, 0 };
    return poll (&item, 1, 0) > 0 && item.revents != 0;
}

//  A fresh connection to where Redis is now (Sentinel: asks the
//  sentinels first), or NULL with reason.
static redisContext *
s_open (cart_store_t *self, char *reason, size_t reason_size)
{
    struct timeval tv = s_timeval (self->timeout_ms);
    if (self->url.kind == REDIS_URL_SENTINEL &&
        redis_sentinel_master (&self->url, self->timeout_ms, self->host,
                               &self->port, reason, reason_size))
        return NULL;
    redisContext *redis =
      self->url.kind == REDIS_URL_UNIX
        ? redisConnectUnixWithTimeout (self->url.path, tv)
        : redisConnectWithTimeout (self->host, self->port, tv);
    if (!redis)
        snprintf (reason, reason_size, "connect: out of memory");
    return redis;
}

int
cart_store_connect (cart_store_t *self)
{
    assert (self);
    if (self->cluster)
        return redis_cluster_store_connect (self->cluster);
    if (self->redis && s_is_closed_by_peer (self->redis)) {
        cmq_log_info ("redis closed the connection, reconnecting");
        redisFree (self->redis);
        self->redis = NULL;
        self->next_attempt_ms = 0;
    }
    if (self->redis)
        return 0;
    if (zclock_mono () < self->next_attempt_ms)
        return -1;
    char reason[200];
    self->redis = s_open (self, reason, sizeof (reason));
    if (!self->redis)
        ;  //  reason says why
    else if (self->redis->err)
        snprintf (reason, sizeof (reason), "connect %.100s:%d: %.80s",
                  self->host, self->port, self->redis->errstr);
    else if (s_prepare (self, reason, sizeof (reason)) == 0) {
        char where[400];
        redis_url_describe (&self->url, where, sizeof (where));
        if (self->url.kind == REDIS_URL_SENTINEL)
            cmq_log_info ("redis connected url=%s master=%s:%d", where,
                          self->host, self->port);
        else
            cmq_log_info ("redis connected url=%s", where);
        self->is_down = false;
        return 0;
    }
    s_drop (self, reason);
    return -1;
}

bool
cart_store_is_connected (const cart_store_t *self)
{
    assert (self);
    return self->redis != NULL;
}

const char *
cart_store_reason (const cart_store_t *self)
{
    assert (self);
    return self->reason;
}

//  -------------------------------------------------------------------------
//  Pipelined calls

//  Why the last read or write failed, in words for the client: hiredis
//  reports its socket timeout as EAGAIN.
static const char *
s_failure (cart_store_t *self)
{
    if (self->redis->err == REDIS_ERR_IO &&
        (errno == EAGAIN || errno == EWOULDBLOCK)) {
        snprintf (self->reason, sizeof (self->reason), "no answer within %d ms",
                  self->timeout_ms);
        return self->reason;
    }
    return self->redis->errstr[0] ? self->redis->errstr : "connection lost";
}

static bool
s_is_noscript (const redisReply *answer)
{
    return answer->type == REDIS_REPLY_ERROR && answer->len >= 8 &&
           memcmp (answer->str, "NOSCRIPT", 8) == 0;
}

//  Appends the commands for requests[pending[0..count-1]] to the output
//  buffer (each after an ASKING when the cluster store asks for it) and
//  notes in ends[] where each ends there: after a failed write, the
//  commands that begin before the bytes written reached Redis. With
//  --redis-wait a WAIT follows when the batch holds a mutation (*has_wait).
//  On failure (out of memory) answers them all 503 and returns -1.
static int
s_append (cart_store_t *self, const cmq_cart_request_t *const *requests,
          cmq_cart_reply_t *replies, const size_t *pending, size_t count,
          size_t *ends, bool *has_wait)
{
    redisContext *redis = self->redis;
    cart_command_t command;
    bool has_mutation = false;
    int rc = REDIS_OK;
    for (size_t index = 0; index < count && rc == REDIS_OK; index++) {
        const cmq_cart_request_t *request = requests[pending[index]];
        has_mutation |= cmq_cart_method_is_mutation (request->method);
        cart_command_build (&command, request, self->sha);
        if (self->is_asking)
            rc = redisAppendCommand (redis, "ASKING");
        if (rc == REDIS_OK)
            rc = redisAppendCommandArgv (redis, command.argc, command.argv,
                                         command.sizes);
        ends[index] = sdslen (redis->obuf);
    }
    *has_wait = has_mutation && self->wait_replicas > 0;
    if (rc == REDIS_OK && *has_wait)
        //  WAIT blocks at most half our timeout: its answer must still
        //  come back inside the socket timeout.
        rc = redisAppendCommand (redis, "WAIT %d %d", self->wait_replicas,
                                 self->timeout_ms / 2 + 1);
    if (rc == REDIS_OK)
        return 0;
    //  Nothing written yet: the buffer goes with the connection.
    s_drop (self, "out of memory");
    for (size_t index = 0; index < count; index++)
        cart_reply_unavailable (&replies[pending[index]], "out of memory");
    return -1;
}

//  An error answer for requests[index]: a cluster node's redirect or
//  refusal goes to the cluster store; READONLY from a Sentinel master
//  means it was demoted, so the batch ends by dropping it.
static void
s_note_error (cart_store_t *self, const redisReply *answer, size_t index)
{
    if (self->cluster_errors)
        redis_cluster_parse_error (answer->str, answer->len, self->host,
                                   &self->cluster_errors[index]);
    else if (self->url.kind == REDIS_URL_SENTINEL && answer->len >= 8 &&
             memcmp (answer->str, "READONLY", 8) == 0)
        self->is_demoted = true;
}

//  Reads WAIT's answer after a batch: NULL when enough replicas have the
//  batch, else why not (answered mutations then get 504).
static const char *
s_read_wait (cart_store_t *self, const char **failure, char *why,
             size_t why_size)
{
    redisReply *answer = NULL;
    if (redisGetReply (self->redis, (void **) &answer) != REDIS_OK || !answer) {
        *failure = s_failure (self);
        return "no replica count came back";
    }
    const char *verdict =
      redis_wait_verdict (answer, self->wait_replicas, why, why_size);
    freeReplyObject (answer);
    return verdict;
}

//  Reads the answers for requests[pending[0..count-1]]; *done counts them.
//  With is_asking each answer follows ASKING's, which is skipped.
static const char *
s_read_answers (cart_store_t *self, const cmq_cart_request_t *const *requests,
                cmq_cart_reply_t *replies, const size_t *pending, size_t count,
                size_t *retry, size_t *retry_count, int64_t deadline_ms,
                size_t *done)
{
    redisContext *redis = self->redis;
    while (*done < count) {
        redisReply *answer = NULL;
        for (int skip = self->is_asking ? 1 : 0; skip >= 0; skip--) {
            if (answer)
                freeReplyObject (answer);
            answer = NULL;
            if (redisGetReply (redis, (void **) &answer) != REDIS_OK || !answer)
                return s_failure (self);
        }
        size_t index = pending[*done];
        bool is_replayed = false;
        if (answer->type == REDIS_REPLY_ERROR)
            s_note_error (self, answer, index);
        if (retry && s_is_noscript (answer))
            retry[(*retry_count)++] = index;
        else
            cart_reply_from_redis (requests[index], answer, &replies[index],
                                   &is_replayed);
        freeReplyObject (answer);
        if (is_replayed)
            cmq_log_debug ("request_id replayed method=%s",
                           cmq_cart_method_name (requests[index]->method));
        (*done)++;
        if (*done < count && zclock_mono () > deadline_ms)
            return "batch took too long";
    }
    return NULL;
}

//  Sends the commands for requests[pending[0..count-1]] as one pipeline;
//  -1 (each answered 503) when they could not even be buffered. A failed
//  write is left in batch->failure for s_collect_pipeline.
static int
s_send_pipeline (cart_store_t *self, s_batch_t *batch, const size_t *pending,
                 size_t count)
{
    redisContext *redis = self->redis;
    batch->start = sdslen (redis->obuf);
    if (s_append (self, batch->requests, batch->replies, pending, count,
                  batch->ends, &batch->has_wait))
        return -1;
    size_t total = sdslen (redis->obuf);
    batch->failure = NULL;
    int is_written = 0;
    while (!is_written && !batch->failure)
        if (redisBufferWrite (redis, &is_written) != REDIS_OK)
            batch->failure = s_failure (self);
    batch->written = total - sdslen (redis->obuf);
    return 0;
}

//  Parses the answers to a pipeline s_send_pipeline sent. Indexes whose
//  script Redis had forgotten go to batch->retry when with_retry. When
//  Redis fails or the batch outlives its deadline it drops the connection
//  (so no late answer is ever read for another call) and answers the
//  calls left 504 or 503 by whether any of their bytes were written.
static void
s_collect_pipeline (cart_store_t *self, s_batch_t *batch, const size_t *pending,
                    size_t count, bool with_retry)
{
    const cmq_cart_request_t *const *requests = batch->requests;
    cmq_cart_reply_t *replies = batch->replies;
    const char *failure = batch->failure;
    size_t done = 0;
    if (!failure)
        failure =
          s_read_answers (self, requests, replies, pending, count,
                          with_retry ? batch->retry : NULL, &batch->retry_count,
                          batch->deadline_ms, &done);
    const char *short_of = NULL;
    char why[80];
    if (batch->has_wait)
        short_of = failure ? "no replica count came back"
                           : s_read_wait (self, &failure, why, sizeof (why));
    if (short_of)
        redis_wait_unconfirm (requests, replies, pending, done, short_of);
    if (failure) {
        char reason[200];
        snprintf (reason, sizeof (reason), "%s", failure);
        s_drop (self, reason);
        for (; done < count; done++) {
            size_t begins = done == 0 ? batch->start : batch->ends[done - 1];
            cart_reply_unanswered (requests[pending[done]],
                                   begins < batch->written,
                                   &replies[pending[done]], reason);
        }
    }
}

//  Connects if need be and sends a batch; its answers wait for s_collect.
static void
s_send (cart_store_t *self, const cmq_cart_request_t *const *requests,
        cmq_cart_reply_t *replies, size_t count)
{
    s_batch_t *batch = &self->batch;
    memset (batch, 0, sizeof (*batch));
    if (cart_store_connect (self)) {
        for (size_t i = 0; i < count; i++)
            cart_reply_unavailable (&replies[i], self->reason);
        return;
    }
    batch->pending = (size_t *) malloc (3 * count * sizeof (size_t));
    if (!batch->pending) {
        for (size_t i = 0; i < count; i++)
            cart_reply_unavailable (&replies[i], "out of memory");
        return;
    }
    batch->requests = requests;
    batch->replies = replies;
    batch->count = count;
    batch->retry = batch->pending + count;
    batch->ends = batch->retry + count;
    for (size_t i = 0; i < count; i++)
        batch->pending[i] = i;
    batch->deadline_ms = zclock_mono () + self->timeout_ms;
    batch->is_sent = s_send_pipeline (self, batch, batch->pending, count) == 0;
}

//  Reads the answers of the batch s_send sent, if any.
static void
s_collect (cart_store_t *self)
{
    s_batch_t *batch = &self->batch;
    if (batch->is_sent) {
        s_collect_pipeline (self, batch, batch->pending, batch->count, true);
        batch->is_sent = false;
    }
    if (batch->retry_count > 0) {
        //  Redis lost its scripts (SCRIPT FLUSH, restart behind a proxy):
        //  nothing ran, so load the script again and retry those once.
        char reason[200];
        cmq_log_info ("redis forgot the cart script, loading it again");
        batch->deadline_ms += self->timeout_ms;
        if (self->redis && s_load_script (self, reason, sizeof (reason)) == 0) {
            if (s_send_pipeline (self, batch, batch->retry,
                                 batch->retry_count) == 0)
                s_collect_pipeline (self, batch, batch->retry,
                                    batch->retry_count, false);
        } else {
            if (self->redis)
                s_drop (self, reason);
            for (size_t i = 0; i < batch->retry_count; i++)
                cart_reply_unavailable (&batch->replies[batch->retry[i]],
                                        self->reason);
        }
    }
    free (batch->pending);
    memset (batch, 0, sizeof (*batch));
}

void
cart_store_execute (cart_store_t *self,
                    const cmq_cart_request_t *const *requests,
                    cmq_cart_reply_t *replies, size_t count)
{
    assert (self);
    if (count == 0)
        return;
    if (self->cluster) {
        redis_cluster_store_execute (self->cluster, requests, replies, count);
        return;
    }
    s_send (self, requests, replies, count);
    s_collect (self);
    if (self->is_demoted) {
        //  Sentinel demoted our master: never write to it again; the next
        //  batch asks the sentinels where the master is now.
        self->is_demoted = false;
        if (self->redis)
            s_drop (self, "the master answered READONLY: it was demoted");
        self->next_attempt_ms = 0;
    }
}

void
cart_store_send_routed (cart_store_t *self,
                        const cmq_cart_request_t *const *requests,
                        cmq_cart_reply_t *replies, size_t count,
                        redis_cluster_error_t *errors, bool is_asking)
{
    assert (self && errors && count > 0);
    self->cluster_errors = errors;
    self->is_asking = is_asking;
    s_send (self, requests, replies, count);
}

void
cart_store_collect (cart_store_t *self)
{
    assert (self);
    s_collect (self);
    self->cluster_errors = NULL;
    self->is_asking = false;
}
