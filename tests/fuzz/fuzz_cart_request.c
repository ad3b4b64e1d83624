//  fuzz_cart_request.c - libFuzzer target: the cart request decoder and,
//  for what it accepts, an encode/decode round trip

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cartmq/cart_codec.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Client side: any bytes as a reply to any method.
static void
s_fuzz_reply (const uint8_t *data, size_t size)
{
    cmq_cart_reply_t reply;
    memset (&reply, 0, sizeof (reply));
    cmq_cart_method_t method = (cmq_cart_method_t) (size % 5 + 1);
    cmq_cart_reply_decode (data, size, method, &reply);
    cmq_cart_reply_reset (&reply);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_fuzz_reply (data, size);
    cmq_cart_request_t request;
    char error[256];
    int status =
      cmq_cart_request_decode (data, size, &request, error, sizeof (error));
    assert (status == 200 || status == 400);
    if (status == 400) {
        assert (strlen (error) > 0);
        return 0;
    }
    //  An accepted request survives a round trip unchanged.
    size_t encoded_size = 0;
    void *encoded = cmq_cart_request_encode (&request, &encoded_size);
    assert (encoded);
    cmq_cart_request_t again;
    status = cmq_cart_request_decode (encoded, encoded_size, &again, error,
                                      sizeof (error));
    assert (status == 200);
    assert (again.method == request.method);
    assert (again.user_id.size == request.user_id.size);
    assert (memcmp (again.user_id.data, request.user_id.data,
                    request.user_id.size) == 0);
    free (encoded);
    return 0;
}
