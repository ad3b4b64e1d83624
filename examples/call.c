//  call.c - one request to a cartmq service; the reply goes to stdout
//
//    cc call.c $(pkg-config --cflags --libs cartmq) -o call
//    ./call tcp://127.0.0.1:5555 cart < request.msgpack > reply.msgpack

#include <cartmq/client.h>
#include <stdio.h>
#include <stdlib.h>

int
main (int argc, char **argv)
{
    cmq_client_config_t config;
    cmq_client_config_defaults (&config);
    config.endpoint = argc > 1 ? argv[1] : CMQ_DEFAULT_ENDPOINT;
    const char *service = argc > 2 ? argv[2] : "cart";
    static char request[65536];
    size_t size = fread (request, 1, sizeof (request), stdin);
    char error[CMQ_ERRSTR_SIZE];
    cmq_client_t *client = cmq_client_new (&config, error, sizeof (error));
    if (!client) {
        fprintf (stderr, "call: %s\n", error);
        return 2;
    }
    void *reply = NULL;
    size_t reply_size = 0;
    int rc = cmq_client_call_bytes (client, service, request, size, &reply,
                                    &reply_size);
    if (rc == 0)
        fwrite (reply, 1, reply_size, stdout);
    else
        fprintf (stderr, "call: %s\n", cmq_client_errstr (client));
    free (reply);
    cmq_client_destroy (&client);
    return rc == 0 ? 0 : 3;
}
