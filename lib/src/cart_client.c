//  cart_client.c - typed calls to the cart service over cmq_client_t
//
//  Each call fills a cmq_cart_request_t, encodes it, sends it with
//  cmq_client_call_bytes and decodes the reply strictly. A mutation always
//  goes out with a request_id, the caller's or a random one made here once
//  per call, so the client's retries resend the very same bytes. The
//  request borrows the caller's strings, so anything goes out and the
//  service judges it, as it would any client's; the C-string calls only
//  answer locally, with the service's own 400, a string longer than any
//  field may ever be (CMQ_CART_MAX_NAME_BYTES), sparing the round trip.

#include "cartmq/cart_client.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

//  Fills buffer with size random bytes from the kernel. getrandom blocks
//  only until the pool is first seeded at boot; /dev/urandom is there for
//  kernels without the call.
static int
s_random_bytes (unsigned char *buffer, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t rc = getrandom (buffer + done, size - done, 0);
        if (rc > 0)
            done += (size_t) rc;
        else if (rc < 0 && errno == EINTR)
            continue;
        else
            break;
    }
    if (done == size)
        return 0;
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    done = 0;
    while (done < size) {
        ssize_t rc = read (fd, buffer + done, size - done);
        if (rc > 0)
            done += (size_t) rc;
        else if (rc < 0 && errno == EINTR)
            continue;
        else
            break;
    }
    int saved = errno;
    close (fd);
    errno = saved;
    return done == size ? 0 : -1;
}

int
cmq_cart_request_id_new (char *buffer, size_t buffer_size)
{
    assert (buffer);
    static const char digits[] = "0123456789abcdef";
    unsigned char bits[CMQ_CART_REQUEST_ID_HEX_BYTES / 2];
    if (buffer_size <= CMQ_CART_REQUEST_ID_HEX_BYTES) {
        if (buffer_size > 0)
            buffer[0] = '\0';
        errno = EINVAL;
        return -1;
    }
    buffer[0] = '\0';
    if (s_random_bytes (bits, sizeof (bits)) != 0)
        return -1;
    for (size_t index = 0; index < sizeof (bits); index++) {
        buffer[2 * index] = digits[bits[index] >> 4];
        buffer[2 * index + 1] = digits[bits[index] & 0x0f];
    }
    buffer[CMQ_CART_REQUEST_ID_HEX_BYTES] = '\0';
    return 0;
}

//  Points str at value; if no field could be that long, writes into reply
//  the 400 the service would send (naming the field and its limit).
static int
s_set (cmq_cart_str_t *str, const char *value, const char *label,
       size_t limit_bytes, cmq_cart_reply_t *reply)
{
    *str = cmq_cart_str (value);
    if (str->size <= CMQ_CART_MAX_NAME_BYTES)
        return 0;
    reply->status = CMQ_CART_BAD_REQUEST;
    snprintf (reply->error, sizeof (reply->error), "%s: longer than %zu bytes",
              label, limit_bytes);
    return -1;
}

//  Starts a request and a clean reply; returns -1 with the local 400 in
//  reply if user_id or request_id cannot be carried.
static int
s_prepare (cmq_cart_request_t *request, cmq_cart_method_t method,
           const char *user_id, const char *request_id, cmq_cart_reply_t *reply)
{
    assert (user_id);
    assert (reply);
    memset (request, 0, sizeof (*request));
    memset (reply, 0, sizeof (*reply));
    request->method = method;
    reply->method = method;
    if (s_set (&request->user_id, user_id, "user_id", CMQ_CART_MAX_ID_BYTES,
               reply))
        return -1;
    if (request_id) {
        if (s_set (&request->request_id, request_id, "request_id",
                   CMQ_CART_MAX_REQUEST_ID_BYTES, reply))
            return -1;
        request->has_request_id = true;
    }
    return 0;
}

int
cmq_cart_request_give_id (cmq_cart_request_t *request, char *buffer,
                          size_t buffer_size)
{
    assert (request);
    if (!cmq_cart_method_is_mutation (request->method) ||
        request->has_request_id)
        return 0;
    if (cmq_cart_request_id_new (buffer, buffer_size) != 0)
        return -1;
    request->request_id = cmq_cart_str (buffer);
    request->has_request_id = true;
    return 0;
}

int
cmq_cart_call_body (cmq_client_t *client, const cmq_cart_request_t *request,
                    void **reply_p, size_t *reply_size_p)
{
    assert (client);
    assert (request);
    //  Encoded once: every attempt of cmq_client_call_bytes resends these
    //  very bytes, request_id included.
    size_t body_size = 0;
    void *body = cmq_cart_request_encode (request, &body_size);
    if (!body)
        return -2;
    int rc = cmq_client_call_bytes (client, CMQ_CART_SERVICE, body, body_size,
                                    reply_p, reply_size_p);
    free (body);
    return rc;
}

int
cmq_cart_call (cmq_client_t *client, const cmq_cart_request_t *request,
               cmq_cart_reply_t *reply)
{
    assert (client);
    assert (request);
    assert (reply);
    memset (reply, 0, sizeof (*reply));
    reply->method = request->method;

    //  The id is fixed here, before the one encoding every attempt resends:
    //  retries cannot multiply it.
    cmq_cart_request_t with_id = *request;
    char request_id[CMQ_CART_REQUEST_ID_HEX_BYTES + 1];
    if (cmq_cart_request_give_id (&with_id, request_id, sizeof (request_id))) {
        snprintf (reply->error, sizeof (reply->error),
                  "cannot make a request_id: %s", strerror (errno));
        return -1;
    }
    void *answer = NULL;
    size_t answer_size = 0;
    int rc = cmq_cart_call_body (client, &with_id, &answer, &answer_size);
    if (rc != 0) {
        const char *why = rc == -2 ? "out of memory encoding the request"
                                   : cmq_client_errstr (client);
        snprintf (reply->error, sizeof (reply->error), "no reply: %s", why);
        return -1;
    }
    //  On failure the decoder leaves its reason in reply->error.
    rc = cmq_cart_reply_decode (answer, answer_size, request->method, reply);
    free (answer);
    return rc;
}

int
cmq_cart_get (cmq_client_t *client, const char *user_id,
              cmq_cart_reply_t *reply)
{
    assert (client);
    cmq_cart_request_t request;
    if (s_prepare (&request, CMQ_CART_GET, user_id, NULL, reply))
        return 0;
    return cmq_cart_call (client, &request, reply);
}

int
cmq_cart_add (cmq_client_t *client, const char *user_id,
              const cmq_cart_request_item_t *item, const char *request_id,
              cmq_cart_reply_t *reply)
{
    assert (client);
    assert (item);
    cmq_cart_request_t request;
    if (s_prepare (&request, CMQ_CART_ADD, user_id, request_id, reply))
        return 0;
    request.item = *item;
    return cmq_cart_call (client, &request, reply);
}

//  Remove and update: a call naming one item.
static int
s_call_item (cmq_client_t *client, cmq_cart_method_t method,
             const char *user_id, const char *item_id, int64_t quantity,
             const char *request_id, cmq_cart_reply_t *reply)
{
    assert (client);
    assert (item_id);
    cmq_cart_request_t request;
    if (s_prepare (&request, method, user_id, request_id, reply) ||
        s_set (&request.item.id, item_id, "item_id", CMQ_CART_MAX_ID_BYTES,
               reply))
        return 0;
    request.item.quantity = quantity;
    return cmq_cart_call (client, &request, reply);
}

int
cmq_cart_remove (cmq_client_t *client, const char *user_id, const char *item_id,
                 const char *request_id, cmq_cart_reply_t *reply)
{
    return s_call_item (client, CMQ_CART_REMOVE, user_id, item_id, 0,
                        request_id, reply);
}

int
cmq_cart_update (cmq_client_t *client, const char *user_id, const char *item_id,
                 int64_t quantity, const char *request_id,
                 cmq_cart_reply_t *reply)
{
    return s_call_item (client, CMQ_CART_UPDATE, user_id, item_id, quantity,
                        request_id, reply);
}

int
cmq_cart_clear (cmq_client_t *client, const char *user_id,
                const char *request_id, cmq_cart_reply_t *reply)
{
    assert (client);
    cmq_cart_request_t request;
    if (s_prepare (&request, CMQ_CART_CLEAR, user_id, request_id, reply))
        return 0;
    return cmq_cart_call (client, &request, reply);
}
