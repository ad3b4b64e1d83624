//  broker_guard.h - the broker's socket monitor, and what to do when the
//  process runs out of file descriptors
//
//  An actor that reads the ROUTER's monitor: it logs refused handshakes
//  (CURVE) and keeps the broker from running out of file descriptors.
//
//  Out of descriptors (EMFILE, ENFILE), libzmq 4.3.4's listener cannot
//  accept the connection waiting in its backlog, and its poller reports
//  the listening socket ready again at once: the I/O thread spins a full
//  core until a descriptor frees up. Unbinding would stop the spin but
//  also close every connection accepted through the endpoint (libzmq's
//  listener owns their sessions), and a spare descriptor freed to accept
//  and close the waiting peer is raced for by that same spinning thread.
//  So the guard stops connections before they are made: libzmq reports
//  each accepted descriptor, descriptors are handed out lowest first, and
//  once one comes within BROKER_GUARD_RESERVE of the open files limit (a
//  quarter of the limit if that is less) the guard attaches a drop-all
//  socket filter to every listening socket. The kernel then drops new
//  SYNs, so nothing waits in the backlog and nothing spins; peers already
//  connected are served as before; new peers' kernels retry the SYN. The
//  guard counts open descriptors each second while paused and detaches
//  the filter when twice the reserve is free. An accept that fails anyway
//  (descriptors used elsewhere) pauses too, and the connections waiting
//  are accepted and closed with a spare descriptor. Every step is logged,
//  accept failures at most a few lines a second. TCP only (tcp, ws, wss):
//  a socket filter does not see unix-domain connects (ipc).

#ifndef BROKER_GUARD_H
#define BROKER_GUARD_H

#include <czmq.h>

#define BROKER_GUARD_MAX_LISTENERS 64

//  Descriptors kept free below the open files limit: room for the
//  connections already in the listen backlog, and for whatever else the
//  process opens.
#define BROKER_GUARD_RESERVE 128

//  The ROUTER's ZMQ_BACKLOG (libzmq's default is 100): at most this many
//  connections wait to be accepted, fewer than the smallest reserve (a
//  quarter of a 256 limit).
#define BROKER_GUARD_BACKLOG 32

typedef struct {
    char monitor[64];  //  inproc endpoint of the ROUTER's monitor
    int listeners[BROKER_GUARD_MAX_LISTENERS];  //  listening descriptors
    size_t listener_count;
} broker_guard_config_t;

//  zactor_fn: zactor_new (broker_guard_actor, &config); config is copied
//  before zactor_new returns. Signals 0 once connected to the monitor.
void broker_guard_actor (zsock_t *pipe, void *args);

//  The listening descriptor libzmq made for an endpoint it reports bound
//  (tcp, ws, wss: by port and family; ipc: by path), not one of the count
//  in known; -1 if none is found.
int broker_guard_find_listener (const char *endpoint, const int *known,
                                size_t count);

#endif
