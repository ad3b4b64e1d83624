//  dealer.h - the DEALER socket the client and the worker both talk over
//
//  Internal to libcartmq. One place sets the socket options, CURVE and the
//  connect.

#ifndef CARTMQ_DEALER_H
#define CARTMQ_DEALER_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct {
    const char *endpoint;      //  required
    const char *curve_server;  //  broker's public cert file, or NULL
    const char *curve_cert;    //  our secret cert file; with curve_server
    int send_timeout_ms;       //  ZMQ_SNDTIMEO: 0 never blocks
    //  ZMQ_IMMEDIATE: queue nothing until the connection is up, and retry
    //  a lost TCP connection every reconnect_ivl_ms (> 0) on our own.
    bool is_immediate;
    int reconnect_ivl_ms;
} cmq_dealer_config_t;

//  Opens, secures and connects a DEALER with linger 0 (a peer that gives
//  up must not hang on exit over unsent messages). Returns NULL with the
//  reason in error when the socket, the certificates or the endpoint are
//  unusable.
zsock_t *cmq_dealer_new (const cmq_dealer_config_t *config, char *error,
                         size_t error_size);

#endif
