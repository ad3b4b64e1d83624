//  endpoint_list.h - the brokers a worker or client config names, no sockets
//
//  Internal to the tree (not installed): cmq_worker_new, cmq_client_new
//  and the programs read a config's brokers through it, so both sides
//  follow one rule and a program can refuse a bad list before it starts
//  (or supervises) anything.
//
//  Rules: endpoints[0..count) when count > 0, else endpoint (NULL:
//  CMQ_DEFAULT_ENDPOINT). Every value is split at commas and blanks (an
//  endpoint holds neither), in order. An empty list, more than
//  CMQ_MAX_BROKERS, or the same endpoint twice is an error: two
//  connections to one broker would register a worker twice (§5) and give
//  a client's retry the broker that just failed it.

#ifndef CARTMQ_ENDPOINT_LIST_H
#define CARTMQ_ENDPOINT_LIST_H

#include <czmq.h>

#include "cartmq/common.h"

//  Returns the endpoints in order as a list of heap strings (autofree;
//  caller destroys), or NULL with the reason in error (which names the
//  offending endpoint, escaped).
zlist_t *cmq_endpoint_list_new (const char *endpoint,
                                const char *const *endpoints, size_t count,
                                char *error, size_t error_size);

#endif
