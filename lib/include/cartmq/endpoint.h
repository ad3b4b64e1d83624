//  endpoint.h - a ZeroMQ endpoint's form, checked before libzmq sees it

#ifndef CARTMQ_ENDPOINT_H
#define CARTMQ_ENDPOINT_H

#include <stddef.h>

//  Checks the form of a ZeroMQ endpoint before libzmq sees it, because
//  libzmq accepts some bad ones quietly (a tcp port over 65535 is taken
//  modulo 65536). TRANSPORT://ADDRESS with a known transport; for tcp, ws,
//  wss and udp the address ends in :PORT (before any /path) where PORT is
//  1..65535, or * or 0 for one the system picks. 0, or -1 with why in
//  reason.
int cmq_endpoint_check (const char *endpoint, char *reason, size_t reason_size);

#endif
