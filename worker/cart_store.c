//  cart_store.c - the cart data in Redis (hiredis, synchronous)

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <poll.h>
#include <string.h>
#include <sys/time.h>

#include "cart_lua.h"
#include "cart_store.h"
#include "cartmq/log.h"

//  Why the script refused a mutation; cart.lua's reason codes.
#define S_REASON_TOO_MANY_ITEMS 1
#define S_REASON_QUANTITY_LIMIT 2
#define S_REASON_NOT_IN_CART    3
#define S_REASON_BAD_METHOD     4

#define S_SHA_BYTES 40

struct _cart_store_t {
    cart_store_url_t url;       //  where Redis is
    int timeout_ms;             //  bound on each connect, write and read
    redisContext *redis;        //  NULL while disconnected
    char sha[S_SHA_BYTES + 1];  //  cart.lua as SCRIPT LOAD named it
    int64_t next_attempt_ms;    //  no connect attempt before this
    bool is_down;               //  a failure was logged, no success since
    char reason[200];           //  why the last connect failed
};

//  -------------------------------------------------------------------------
//  URL parsing

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

//  Parses size bytes of decimal digits (no sign, at most 10) into *value
//  if it is at most max.
static int
s_parse_decimal (const char *text, size_t size, int64_t max, int64_t *value)
{
    if (size == 0 || size > 10)
        return -1;
    int64_t result = 0;
    for (size_t i = 0; i < size; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        result = result * 10 + (text[i] - '0');
    }
    if (result > max)
        return -1;
    *value = result;
    return 0;
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

//  Copies size bytes into target (capacity CART_STORE_MAX_SECRET_BYTES + 1)
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
        if (length == CART_STORE_MAX_SECRET_BYTES)
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

//  [[USER]:PASSWORD@][HOST][:PORT] of a redis:// URL.
static int
s_parse_authority (const char *text, size_t size, cart_store_url_t *url,
                   char *error, size_t error_size)
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
    if (host_size > CART_STORE_MAX_HOST_BYTES)
        return s_fail (error, error_size, "host name too long");
    for (size_t i = 0; i < host_size; i++)
        if (!s_is_host_char (text[host_start + i], is_bracketed))
            return s_fail (error, error_size, "bad character in host");
    if (host_size > 0) {
        memcpy (url->host, text + host_start, host_size);
        url->host[host_size] = 0;
    }
    if (rest < size) {
        int64_t port;
        if (text[rest] != ':' ||
            s_parse_decimal (text + rest + 1, size - rest - 1, 65535, &port) ||
            port == 0)
            return s_fail (error, error_size, "port must be 1..65535");
        url->port = (int) port;
    }
    return 0;
}

static int
s_parse_redis (const char *text, cart_store_url_t *url, char *error,
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
        if (s_parse_decimal (slash + 1, strlen (slash + 1), CART_STORE_MAX_DB,
                             &db))
            return s_fail (error, error_size, "database must be 0..%d",
                           CART_STORE_MAX_DB);
        url->db = (int) db;
    }
    return 0;
}

//  One name=value of a unix:// query.
static int
s_parse_unix_param (const char *text, size_t size, cart_store_url_t *url,
                    char *error, size_t error_size)
{
    int64_t db;
    if (size >= 3 && memcmp (text, "db=", 3) == 0) {
        if (s_parse_decimal (text + 3, size - 3, CART_STORE_MAX_DB, &db))
            return s_fail (error, error_size, "db must be 0..%d",
                           CART_STORE_MAX_DB);
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
s_parse_unix (const char *text, cart_store_url_t *url, char *error,
              size_t error_size)
{
    if (text[0] != '/')
        return s_fail (error, error_size,
                       "unix:// needs an absolute path: unix:///PATH");
    const char *query = strchr (text, '?');
    size_t path_size = query ? (size_t) (query - text) : strlen (text);
    if (path_size > CART_STORE_MAX_PATH_BYTES)
        return s_fail (error, error_size, "socket path longer than %d bytes",
                       CART_STORE_MAX_PATH_BYTES);
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

int
cart_store_url_parse (const char *text, cart_store_url_t *url, char *error,
                      size_t error_size)
{
    assert (url);
    memset (url, 0, sizeof (*url));
    strcpy (url->host, "127.0.0.1");
    url->port = 6379;
    if (!text)
        return s_fail (error, error_size, "no Redis URL");
    int rc;
    if (strncmp (text, "redis://", 8) == 0)
        rc = s_parse_redis (text + 8, url, error, error_size);
    else if (strncmp (text, "unix://", 7) == 0) {
        url->is_unix = true;
        rc = s_parse_unix (text + 7, url, error, error_size);
    } else if (strncmp (text, "rediss://", 9) == 0)
        rc = s_fail (error, error_size, "TLS (rediss://) is not supported");
    else
        rc = s_fail (error, error_size,
                     "must be redis://HOST:PORT/DB or unix:///PATH");
    if (rc)
        memset (url, 0, sizeof (*url));  //  no half-parsed secrets
    return rc;
}

void
cart_store_url_describe (const cart_store_url_t *url, char *buffer,
                         size_t buffer_size)
{
    assert (url);
    const char *secret = url->has_password ? ":***@" : "";
    if (url->is_unix)
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

//  -------------------------------------------------------------------------
//  Keys and values

size_t
cart_store_cart_key (const cmq_cart_str_t *user_id, char *key)
{
    assert (user_id && user_id->size <= CMQ_CART_MAX_ID_BYTES);
    memcpy (key, "cart:{", 6);
    memcpy (key + 6, user_id->data, user_id->size);
    key[6 + user_id->size] = '}';
    return 6 + user_id->size + 1;
}

//  The request id goes in as hex: the key's bytes after the user id then
//  hold no '}', so no (user, request id) pair can spell another's key.
size_t
cart_store_request_key (const cmq_cart_str_t *user_id,
                        const cmq_cart_str_t *request_id, char *key)
{
    assert (request_id && request_id->size <= CMQ_CART_MAX_REQUEST_ID_BYTES);
    static const char digits[] = "0123456789abcdef";
    size_t size = cart_store_cart_key (user_id, key);
    memcpy (key + size, ":rid:", 5);
    size += 5;
    for (size_t i = 0; i < request_id->size; i++) {
        unsigned char byte = (unsigned char) request_id->data[i];
        key[size++] = digits[byte >> 4];
        key[size++] = digits[byte & 15];
    }
    return size;
}

int
cart_store_parse_item (const char *value, size_t size, cmq_cart_item_t *item)
{
    assert (item);
    const char *first = memchr (value, ':', size);
    if (!first)
        return -1;
    size_t rest = size - (size_t) (first + 1 - value);
    const char *second = memchr (first + 1, ':', rest);
    if (!second)
        return -1;
    int64_t quantity, price;
    if (s_parse_decimal (value, (size_t) (first - value), CMQ_CART_MAX_QUANTITY,
                         &quantity) ||
        quantity < 1 ||
        s_parse_decimal (first + 1, (size_t) (second - first - 1),
                         CMQ_CART_MAX_PRICE, &price))
        return -1;
    size_t name_size = size - (size_t) (second + 1 - value);
    if (name_size < 1 || name_size > CMQ_CART_MAX_NAME_BYTES)
        return -1;
    item->quantity = quantity;
    item->price = price;
    memcpy (item->name.data, second + 1, name_size);
    item->name.data[name_size] = 0;
    item->name.size = name_size;
    return 0;
}

static int
s_compare_items (const void *a, const void *b)
{
    const cmq_cart_item_t *left = (const cmq_cart_item_t *) a;
    const cmq_cart_item_t *right = (const cmq_cart_item_t *) b;
    size_t common =
      left->id.size < right->id.size ? left->id.size : right->id.size;
    int order = memcmp (left->id.data, right->id.data, common);
    if (order)
        return order;
    return (left->id.size > right->id.size) - (left->id.size < right->id.size);
}

void
cart_store_sort_items (cmq_cart_item_t *items, size_t count)
{
    if (count > 1)
        qsort (items, count, sizeof (cmq_cart_item_t), s_compare_items);
}

//  -------------------------------------------------------------------------
//  Results

static void s_set_error (cmq_cart_reply_t *reply, int status,
                         const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

static void
s_set_error (cmq_cart_reply_t *reply, int status, const char *format, ...)
{
    reply->status = status;
    va_list args;
    va_start (args, format);
    vsnprintf (reply->error, sizeof (reply->error), format, args);
    va_end (args);
}

//  HGETALL's flat array of id, value pairs: the items sorted, the total
//  summed in 64 bits (each product is under 2^51, a cart of 1000 under
//  2^61, so it cannot overflow).
static void
s_parse_cart (const redisReply *result, cmq_cart_reply_t *reply)
{
    if (result->type != REDIS_REPLY_ARRAY || result->elements % 2) {
        s_set_error (reply, CMQ_CART_UNAVAILABLE,
                     "storage: unexpected answer to HGETALL");
        return;
    }
    size_t count = result->elements / 2;
    if (count > CMQ_CART_MAX_ITEMS) {
        s_set_error (reply, CMQ_CART_UNAVAILABLE,
                     "storage: cart holds more than %d items",
                     CMQ_CART_MAX_ITEMS);
        return;
    }
    cmq_cart_item_t *items = NULL;
    if (count) {
        items = (cmq_cart_item_t *) calloc (count, sizeof (cmq_cart_item_t));
        if (!items) {
            s_set_error (reply, CMQ_CART_UNAVAILABLE, "out of memory");
            return;
        }
    }
    int64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const redisReply *id = result->element[2 * i];
        const redisReply *value = result->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || id->len < 1 ||
            id->len > CMQ_CART_MAX_ID_BYTES ||
            value->type != REDIS_REPLY_STRING ||
            cart_store_parse_item (value->str, value->len, &items[i])) {
            free (items);
            s_set_error (reply, CMQ_CART_UNAVAILABLE,
                         "storage: cart holds a malformed item");
            return;
        }
        memcpy (items[i].id.data, id->str, id->len);
        items[i].id.data[id->len] = 0;
        items[i].id.size = id->len;
        total += items[i].quantity * items[i].price;
    }
    cart_store_sort_items (items, count);
    reply->status = CMQ_CART_OK;
    reply->items = items;
    reply->item_count = count;
    reply->total = total;
}

//  "METHOD:QUANTITY:ITEM_ID" as cart.lua writes it; the reply built from
//  it is the same whether it was just made or replayed.
static int
s_parse_record (const char *record, size_t size, cmq_cart_reply_t *reply)
{
    if (size < 4 || record[0] < '2' || record[0] > '5' || record[1] != ':')
        return -1;
    const char *colon = memchr (record + 2, ':', size - 2);
    if (!colon)
        return -1;
    int64_t quantity;
    if (s_parse_decimal (record + 2, (size_t) (colon - record - 2),
                         CMQ_CART_MAX_QUANTITY, &quantity))
        return -1;
    size_t id_size = size - (size_t) (colon + 1 - record);
    if (id_size > CMQ_CART_MAX_ID_BYTES)
        return -1;
    cmq_cart_method_t method = (cmq_cart_method_t) (record[0] - '0');
    reply->method = method;
    if (method == CMQ_CART_ADD || method == CMQ_CART_UPDATE) {
        if (id_size == 0 || (method == CMQ_CART_ADD && quantity == 0))
            return -1;
        memcpy (reply->item_id.data, colon + 1, id_size);
        reply->item_id.data[id_size] = 0;
        reply->item_id.size = id_size;
        reply->quantity = quantity;
    } else
        snprintf (reply->message, sizeof (reply->message), "%s",
                  method == CMQ_CART_REMOVE ? "Item removed" : "Cart cleared");
    reply->status = CMQ_CART_OK;
    return 0;
}

static void
s_parse_mutation (const redisReply *result, cmq_cart_reply_t *reply,
                  bool *is_replayed)
{
    if (result->type != REDIS_REPLY_ARRAY || result->elements < 2 ||
        result->element[0]->type != REDIS_REPLY_INTEGER) {
        s_set_error (reply, CMQ_CART_UNAVAILABLE,
                     "storage: unexpected answer from the cart script");
        return;
    }
    long long status = result->element[0]->integer;
    const redisReply *detail = result->element[1];
    if (status == CMQ_CART_OK) {
        if (result->elements != 3 || detail->type != REDIS_REPLY_STRING ||
            result->element[2]->type != REDIS_REPLY_INTEGER ||
            s_parse_record (detail->str, detail->len, reply)) {
            s_set_error (reply, CMQ_CART_UNAVAILABLE,
                         "storage: malformed result record");
            return;
        }
        *is_replayed = result->element[2]->integer == 1;
        return;
    }
    long long reason =
      detail->type == REDIS_REPLY_INTEGER ? detail->integer : 0;
    if (status == CMQ_CART_CONFLICT && reason == S_REASON_TOO_MANY_ITEMS)
        s_set_error (reply, CMQ_CART_CONFLICT,
                     "cart would exceed %d distinct items", CMQ_CART_MAX_ITEMS);
    else if (status == CMQ_CART_CONFLICT && reason == S_REASON_QUANTITY_LIMIT)
        s_set_error (reply, CMQ_CART_CONFLICT,
                     "item quantity in cart would exceed %d",
                     CMQ_CART_MAX_QUANTITY);
    else if (status == CMQ_CART_NOT_FOUND && reason == S_REASON_NOT_IN_CART)
        s_set_error (reply, CMQ_CART_NOT_FOUND, "item not in cart");
    else if (status == CMQ_CART_BAD_REQUEST && reason == S_REASON_BAD_METHOD)
        s_set_error (reply, CMQ_CART_BAD_REQUEST, "unknown method");
    else
        s_set_error (reply, CMQ_CART_UNAVAILABLE,
                     "storage: unexpected status from the cart script");
}

void
cart_store_parse_result (const cmq_cart_request_t *request,
                         const redisReply *result, cmq_cart_reply_t *reply,
                         bool *is_replayed)
{
    assert (request && result && reply && is_replayed);
    *is_replayed = false;
    reply->method = request->method;
    if (result->type == REDIS_REPLY_ERROR) {
        //  Redis's own words (OOM, BUSY, READONLY, a script error) help
        //  whoever reads the client's error.
        int size = result->len > 160 ? 160 : (int) result->len;
        s_set_error (reply, CMQ_CART_UNAVAILABLE, "storage error: %.*s", size,
                     result->str);
    } else if (request->method == CMQ_CART_GET)
        s_parse_cart (result, reply);
    else
        s_parse_mutation (result, reply, is_replayed);
}

//  -------------------------------------------------------------------------
//  Connection

static struct timeval
s_timeval (int timeout_ms)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return tv;
}

cart_store_t *
cart_store_new (const cart_store_url_t *url, int timeout_ms)
{
    assert (url);
    assert (timeout_ms > 0);
    cart_store_t *self = (cart_store_t *) zmalloc (sizeof (cart_store_t));
    self->url = *url;
    self->timeout_ms = timeout_ms;
    return self;
}

void
cart_store_destroy (cart_store_t **self_p)
{
    assert (self_p);
    cart_store_t *self = *self_p;
    if (self) {
        if (self->redis)
            redisFree (self->redis);
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
    if (!answer)
        return s_fail (reason, reason_size, "%s: %s", argv[0],
                       redis->errstr[0] ? redis->errstr : "no answer");
    if (answer->type != expected_type) {
        if (answer->type == REDIS_REPLY_ERROR)
            s_fail (reason, reason_size, "%s: %.120s", argv[0], answer->str);
        else
            s_fail (reason, reason_size, "%s: unexpected answer", argv[0]);
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
    if (answer->len == S_SHA_BYTES)
        memcpy (self->sha, answer->str, S_SHA_BYTES + 1);
    else
        rc = s_fail (reason, reason_size, "SCRIPT LOAD: bad SHA");
    freeReplyObject (answer);
    return rc;
}

//  AUTH, SELECT and SCRIPT LOAD on a fresh connection.
static int
s_prepare (cart_store_t *self, char *reason, size_t reason_size)
{
    redisContext *redis = self->redis;
    if (redisSetTimeout (redis, s_timeval (self->timeout_ms)) != REDIS_OK)
        return s_fail (reason, reason_size, "cannot set socket timeout");
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

int
cart_store_connect (cart_store_t *self)
{
    assert (self);
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
    struct timeval tv = s_timeval (self->timeout_ms);
    self->redis =
      self->url.is_unix
        ? redisConnectUnixWithTimeout (self->url.path, tv)
        : redisConnectWithTimeout (self->url.host, self->url.port, tv);
    char reason[200];
    if (!self->redis)
        snprintf (reason, sizeof (reason), "connect: out of memory");
    else if (self->redis->err)
        snprintf (reason, sizeof (reason), "connect: %s", self->redis->errstr);
    else if (s_prepare (self, reason, sizeof (reason)) == 0) {
        char where[400];
        cart_store_url_describe (&self->url, where, sizeof (where));
        cmq_log_info ("redis connected url=%s", where);
        self->is_down = false;
        return 0;
    }
    s_drop (self, reason);
    return -1;
}

bool
cart_store_is_connected (cart_store_t *self)
{
    assert (self);
    return self->redis != NULL;
}

//  -------------------------------------------------------------------------
//  Pipelined calls

//  One request's command, its argument bytes kept here until appended.
typedef struct {
    const char *argv[13];
    size_t sizes[13];
    int argc;
    char cart_key[CART_STORE_MAX_KEY_BYTES];
    char request_key[CART_STORE_MAX_KEY_BYTES];
    char method[4];
    char quantity[24];
    char price[24];
    char max_quantity[24];
    char max_items[24];
    char ttl[24];
} s_command_t;

static void
s_push (s_command_t *command, const char *bytes, size_t size)
{
    assert (command->argc < 13);
    command->argv[command->argc] = bytes;
    command->sizes[command->argc] = size;
    command->argc++;
}

static void
s_push_string (s_command_t *command, const char *string)
{
    s_push (command, string, strlen (string));
}

//  GET is one HGETALL; each mutation one EVALSHA of cart.lua.
static void
s_build_command (cart_store_t *self, const cmq_cart_request_t *request,
                 s_command_t *command)
{
    command->argc = 0;
    size_t cart_key_size =
      cart_store_cart_key (&request->user_id, command->cart_key);
    if (request->method == CMQ_CART_GET) {
        s_push_string (command, "HGETALL");
        s_push (command, command->cart_key, cart_key_size);
        return;
    }
    s_push_string (command, "EVALSHA");
    s_push (command, self->sha, S_SHA_BYTES);
    s_push_string (command, request->has_request_id ? "2" : "1");
    s_push (command, command->cart_key, cart_key_size);
    if (request->has_request_id)
        s_push (command, command->request_key,
                cart_store_request_key (&request->user_id, &request->request_id,
                                        command->request_key));
    bool has_item = request->method != CMQ_CART_CLEAR;
    bool has_price = request->method == CMQ_CART_ADD;
    snprintf (command->method, sizeof (command->method), "%d",
              (int) request->method);
    snprintf (command->quantity, sizeof (command->quantity), "%" PRId64,
              request->method == CMQ_CART_ADD ||
                  request->method == CMQ_CART_UPDATE
                ? request->item.quantity
                : 0);
    snprintf (command->price, sizeof (command->price), "%" PRId64,
              has_price ? request->item.price : 0);
    snprintf (command->max_quantity, sizeof (command->max_quantity), "%d",
              CMQ_CART_MAX_QUANTITY);
    snprintf (command->max_items, sizeof (command->max_items), "%d",
              CMQ_CART_MAX_ITEMS);
    snprintf (command->ttl, sizeof (command->ttl), "%d",
              CART_STORE_REQUEST_ID_TTL_S);
    s_push_string (command, command->method);
    s_push (command, request->item.id.data,
            has_item ? request->item.id.size : 0);
    s_push_string (command, command->quantity);
    s_push_string (command, command->price);
    s_push (command, request->item.name.data,
            has_price ? request->item.name.size : 0);
    s_push_string (command, command->max_quantity);
    s_push_string (command, command->max_items);
    s_push_string (command, command->ttl);
}

static void
s_unavailable (cmq_cart_reply_t *reply, const char *reason)
{
    s_set_error (reply, CMQ_CART_UNAVAILABLE, "storage unavailable: %s",
                 reason);
}

int
cart_store_unanswered_status (cmq_cart_method_t method, bool is_sent)
{
    //  A read changes nothing whatever happened to it; a mutation that
    //  never left us cannot have run. Only a mutation Redis may hold in
    //  its socket buffer, or may have run without our hearing the answer,
    //  is unknown.
    return is_sent && cmq_cart_method_is_mutation (method)
             ? CMQ_CART_OUTCOME_UNKNOWN
             : CMQ_CART_UNAVAILABLE;
}

//  The reply to a call whose answer did not come, for the reason given.
static void
s_unanswered (const cmq_cart_request_t *request, bool is_sent,
              cmq_cart_reply_t *reply, const char *reason)
{
    reply->method = request->method;
    if (cart_store_unanswered_status (request->method, is_sent) ==
        CMQ_CART_OUTCOME_UNKNOWN)
        s_set_error (reply, CMQ_CART_OUTCOME_UNKNOWN,
                     "outcome unknown: sent to storage, %s; it may or may not "
                     "be applied, retry with the same request_id",
                     reason);
    else
        s_unavailable (reply, reason);
}

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

//  Sends the commands for requests[pending[0..count-1]] as one pipeline and
//  parses each answer. Indexes whose script Redis had forgotten go to
//  retry[] (counted in *retry_count) when retry is not NULL. When Redis
//  fails or the batch outlives deadline_ms it drops the connection (so no
//  late answer is ever read for another call) and answers the calls left
//  504 or 503 by whether any of their bytes were written. ends has room for
//  count offsets.
static void
s_pipeline (cart_store_t *self, const cmq_cart_request_t *const *requests,
            cmq_cart_reply_t *replies, const size_t *pending, size_t count,
            size_t *retry, size_t *retry_count, int64_t deadline_ms,
            size_t *ends)
{
    redisContext *redis = self->redis;
    //  Where each command ends in the output buffer: after a failed write,
    //  the commands that begin before the bytes written reached Redis.
    size_t start = sdslen (redis->obuf);
    s_command_t command;
    for (size_t index = 0; index < count; index++) {
        s_build_command (self, requests[pending[index]], &command);
        if (redisAppendCommandArgv (redis, command.argc, command.argv,
                                    command.sizes) != REDIS_OK) {
            //  Nothing written yet: the buffer goes with the connection.
            s_drop (self, "out of memory");
            for (index = 0; index < count; index++)
                s_unavailable (&replies[pending[index]], "out of memory");
            return;
        }
        ends[index] = sdslen (redis->obuf);
    }
    const char *failure = NULL;
    int is_written = 0;
    while (!is_written && !failure)
        if (redisBufferWrite (redis, &is_written) != REDIS_OK)
            failure = s_failure (self);
    size_t written = ends[count - 1] - sdslen (redis->obuf);
    size_t done = 0;
    while (done < count && !failure) {
        redisReply *answer = NULL;
        if (redisGetReply (redis, (void **) &answer) != REDIS_OK || !answer) {
            failure = s_failure (self);
            break;
        }
        size_t index = pending[done];
        bool is_replayed = false;
        if (retry && s_is_noscript (answer))
            retry[(*retry_count)++] = index;
        else
            cart_store_parse_result (requests[index], answer, &replies[index],
                                     &is_replayed);
        freeReplyObject (answer);
        if (is_replayed)
            cmq_log_debug ("request_id replayed method=%s",
                           cmq_cart_method_name (requests[index]->method));
        done++;
        if (done < count && zclock_mono () > deadline_ms)
            failure = "batch took too long";
    }
    if (failure) {
        char reason[200];
        snprintf (reason, sizeof (reason), "%s", failure);
        s_drop (self, reason);
        for (; done < count; done++) {
            size_t begins = done == 0 ? start : ends[done - 1];
            s_unanswered (requests[pending[done]], begins < written,
                          &replies[pending[done]], reason);
        }
    }
}

void
cart_store_execute (cart_store_t *self,
                    const cmq_cart_request_t *const *requests,
                    cmq_cart_reply_t *replies, size_t count)
{
    assert (self);
    if (count == 0)
        return;
    if (cart_store_connect (self)) {
        for (size_t i = 0; i < count; i++)
            s_unavailable (&replies[i], self->reason);
        return;
    }
    size_t *pending = (size_t *) malloc (3 * count * sizeof (size_t));
    if (!pending) {
        for (size_t i = 0; i < count; i++)
            s_unavailable (&replies[i], "out of memory");
        return;
    }
    size_t *retry = pending + count;
    size_t *ends = retry + count;
    size_t retry_count = 0;
    for (size_t i = 0; i < count; i++)
        pending[i] = i;
    int64_t deadline_ms = zclock_mono () + self->timeout_ms;
    s_pipeline (self, requests, replies, pending, count, retry, &retry_count,
                deadline_ms, ends);
    if (retry_count > 0) {
        //  Redis lost its scripts (SCRIPT FLUSH, restart behind a proxy):
        //  nothing ran, so load the script again and retry those once.
        char reason[200];
        cmq_log_info ("redis forgot the cart script, loading it again");
        if (self->redis && s_load_script (self, reason, sizeof (reason)) == 0)
            s_pipeline (self, requests, replies, retry, retry_count, NULL, NULL,
                        deadline_ms + self->timeout_ms, ends);
        else {
            if (self->redis)
                s_drop (self, reason);
            for (size_t i = 0; i < retry_count; i++)
                s_unavailable (&replies[retry[i]], self->reason);
        }
    }
    free (pending);
}
