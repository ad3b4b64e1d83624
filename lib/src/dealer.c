//  dealer.c - the DEALER socket the client and the worker both talk over

#include "dealer.h"

#include <errno.h>

#include "cartmq/curve.h"

zsock_t *
cmq_dealer_new (const cmq_dealer_config_t *config, char *error,
                size_t error_size)
{
    assert (config && config->endpoint);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        cmq_error_set (error, error_size, "cannot create a socket: %s",
                       zmq_strerror (errno));
        return NULL;
    }
    zsock_set_linger (dealer, 0);
    //  Sends only block when the outgoing queue is full; bound that wait.
    zsock_set_sndtimeo (dealer, config->send_timeout_ms);
    if (config->is_immediate)
        zsock_set_immediate (dealer, 1);
    if (config->reconnect_ivl_ms > 0)
        zsock_set_reconnect_ivl (dealer, config->reconnect_ivl_ms);
    char reason[200] = "";
    if (config->curve_server &&
        cmq_curve_setup_client (dealer, config->curve_server,
                                config->curve_cert, reason, sizeof (reason))) {
        cmq_error_set (error, error_size, "curve: %s",
                       reason[0] ? reason : "setup failed");
        zsock_destroy (&dealer);
        return NULL;
    }
    if (zsock_connect (dealer, "%s", config->endpoint) != 0) {
        cmq_error_set (error, error_size, "cannot connect to '%s': %s",
                       config->endpoint, zmq_strerror (errno));
        zsock_destroy (&dealer);
        return NULL;
    }
    return dealer;
}
