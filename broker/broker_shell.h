//  broker_shell.h - the broker's sockets, timers and signals
//
//  Owns the ROUTER socket (bound to every endpoint), the CURVE
//  authenticator when asked for, and a receive loop that feeds broker_core
//  with messages and ticks and sends what it answers. No routing logic
//  here.

#ifndef BROKER_SHELL_H
#define BROKER_SHELL_H

#include <czmq.h>

#include "broker_core.h"

typedef struct {
    broker_config_t core;
    zlist_t *endpoints;         //  char *, borrowed; at least one
    const char *curve_secret;   //  our secret cert file, or NULL
    const char *curve_clients;  //  directory of allowed public certs
    int max_peer_output;  //  messages that may wait for one peer, each way
} broker_shell_config_t;

//  --max-peer-output default: libzmq's own default high-water mark, and
//  the most requests a worker may hold at once (credit 1000, §3), so a
//  worker that reads is never refused a REQUEST.
#define BROKER_SHELL_MAX_PEER_OUTPUT 1000

typedef struct _broker_shell_t broker_shell_t;

//  Room for a reason broker_shell_curve_load gives, with its NUL.
#define BROKER_SHELL_ERROR_BYTES 512

//  The CURVE server cert (config->curve_secret) and a check that the
//  allow-list (config->curve_clients) is a readable directory: what
//  broker_shell_new does first, so that main can refuse bad flag values
//  before logging starts. The cert, or NULL with the reason (naming the
//  flag) in error.
zcert_t *broker_shell_curve_load (const broker_shell_config_t *config,
                                  char *error, size_t error_size);

//  Binds every endpoint. NULL on failure, after logging why, with the
//  exit status in *exit_code: 2 for a bind value libzmq refuses, else 1.
broker_shell_t *broker_shell_new (const broker_shell_config_t *config,
                                  int *exit_code);

void broker_shell_destroy (broker_shell_t **self_p);

//  Runs until SIGINT or SIGTERM. Returns 0.
int broker_shell_run (broker_shell_t *self);

#endif
