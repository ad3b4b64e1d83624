//  cart_service.c - cart request bodies in, reply bodies out (§4)

#include "cart_service.h"
#include "cartmq/log.h"

struct _cart_service_t {
    cart_store_t *store;               //  borrowed
    size_t max_batch;                  //  capacity of the arrays below
    cmq_cart_request_t *requests;      //  decoded, one per body
    const cmq_cart_request_t **valid;  //  the ones the store answers
    cmq_cart_reply_t *replies;         //  parallel to valid
    size_t *valid_body;                //  valid[i] came from this body
};

cart_service_t *
cart_service_new (cart_store_t *store, size_t max_batch)
{
    assert (store);
    assert (max_batch > 0);
    cart_service_t *self = (cart_service_t *) zmalloc (sizeof (*self));
    self->store = store;
    self->max_batch = max_batch;
    self->requests =
      (cmq_cart_request_t *) zmalloc (max_batch * sizeof (cmq_cart_request_t));
    self->valid = (const cmq_cart_request_t **) zmalloc (
      max_batch * sizeof (cmq_cart_request_t *));
    self->replies =
      (cmq_cart_reply_t *) zmalloc (max_batch * sizeof (cmq_cart_reply_t));
    self->valid_body = (size_t *) zmalloc (max_batch * sizeof (size_t));
    return self;
}

void
cart_service_destroy (cart_service_t **self_p)
{
    assert (self_p);
    cart_service_t *self = *self_p;
    if (self) {
        free (self->requests);
        free (self->valid);
        free (self->replies);
        free (self->valid_body);
        free (self);
        *self_p = NULL;
    }
}

//  Wraps an encoded buffer (taken) as a one-frame message.
static zmsg_t *
s_message (void *data, size_t size)
{
    if (!data)
        return NULL;
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, data, size);
    free (data);
    return msg;
}

static zmsg_t *
s_error_reply (int status, const char *error)
{
    size_t size = 0;
    void *data = cmq_cart_error_encode (status, error, &size);
    return s_message (data, size);
}

//  Decodes body i; a valid request joins the store's batch, anything else
//  gets its 400 now.
static void
s_accept (cart_service_t *self, zmsg_t *body, size_t index, zmsg_t **reply_p,
          size_t *valid_count)
{
    char error[256] = "";
    zframe_t *frame = zmsg_first (body);
    if (zmsg_size (body) != 1) {
        cmq_log_debug ("request refused frames=%zu", zmsg_size (body));
        *reply_p =
          s_error_reply (CMQ_CART_BAD_REQUEST, "request must be one frame");
        return;
    }
    cmq_cart_request_t *request = &self->requests[index];
    memset (request, 0, sizeof (*request));
    int status = cmq_cart_request_decode (
      zframe_data (frame), zframe_size (frame), request, error, sizeof (error));
    if (status != CMQ_CART_OK) {
        if (cmq_log_enabled (CMQ_LOG_DEBUG)) {
            //  The reason may quote what the peer sent.
            char escaped[CMQ_LOG_ESCAPED_BYTES (sizeof (error))];
            cmq_log_debug ("request refused bytes=%zu error=\"%s\"",
                           zframe_size (frame),
                           cmq_log_escape (error, strlen (error), escaped,
                                           sizeof (escaped)));
        }
        *reply_p = s_error_reply (CMQ_CART_BAD_REQUEST,
                                  error[0] ? error : "malformed request");
        return;
    }
    self->valid[*valid_count] = request;
    self->valid_body[*valid_count] = index;
    (*valid_count)++;
}

void
cart_service_handle (cart_service_t *self, zmsg_t **bodies, zmsg_t **replies,
                     size_t count)
{
    assert (self);
    assert (count <= self->max_batch);
    size_t valid_count = 0;
    for (size_t i = 0; i < count; i++) {
        replies[i] = NULL;
        s_accept (self, bodies[i], i, &replies[i], &valid_count);
    }
    memset (self->replies, 0, valid_count * sizeof (cmq_cart_reply_t));
    cart_store_execute (self->store, self->valid, self->replies, valid_count);
    for (size_t i = 0; i < valid_count; i++) {
        cmq_cart_reply_t *reply = &self->replies[i];
        size_t size = 0;
        void *data = cmq_cart_reply_encode (reply, &size);
        cmq_log_debug ("request method=%s status=%d reply_bytes=%zu",
                       cmq_cart_method_name (self->valid[i]->method),
                       reply->status, size);
        replies[self->valid_body[i]] =
          data
            ? s_message (data, size)
            : s_error_reply (CMQ_CART_UNAVAILABLE, "cannot encode the reply");
        cmq_cart_reply_reset (reply);
    }
}
