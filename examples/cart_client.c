//  cart_client.c - add an item to a cart and list the cart (cartmq-cart)
//
//    cc cart_client.c $(pkg-config --cflags --libs cartmq-cart) -o cart_client
//    ./cart_client tcp://127.0.0.1:5555,tcp://127.0.0.1:5556 alice

#include <cartmq/cart_client.h>
#include <inttypes.h>
#include <stdio.h>

int
main (int argc, char **argv)
{
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = argc > 1 ? argv[1] : CMQ_DEFAULT_ENDPOINT;  //  a list
    const char *user = argc > 2 ? argv[2] : "alice";
    char error[CMQ_ERRSTR_SIZE];
    cmq_client_t *client = cmq_client_new (&config, error, sizeof (error));
    if (!client)
        return fprintf (stderr, "cart_client: %s\n", error), 2;
    cmq_cart_request_item_t item = { cmq_cart_str ("sku-1"),
                                     cmq_cart_str ("Coffee beans"), 1, 1250 };
    cmq_cart_reply_t reply = { 0 };
    //  NULL request_id: the library makes one, the same on every retry.
    int rc = cmq_cart_add (client, user, &item, NULL, &reply);
    if (rc == 0 && reply.status == 200) {
        cmq_cart_reply_reset (&reply);
        rc = cmq_cart_get (client, user, &reply);
    }
    if (rc != 0)
        fprintf (stderr, "cart_client: %s\n", cmq_client_errstr (client));
    else
        for (size_t index = 0; index < reply.item_count; index++)
            printf ("%s x%" PRId64 "\n", reply.items[index].id.data,
                    reply.items[index].quantity);
    int status = rc == 0 ? reply.status : 0;
    cmq_cart_reply_reset (&reply);
    cmq_client_destroy (&client);
    return rc != 0 ? 3 : status == 200 ? 0 : 1;
}
