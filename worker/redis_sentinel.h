//  redis_sentinel.h - where a Sentinel-managed master is now
//
//  Asks the sentinels of a redis-sentinel:// URL, in order, for the
//  master's address (SENTINEL get-master-addr-by-name), skipping the ones
//  that cannot be reached or do not know the master. Synchronous and
//  bounded: each sentinel gets a short share of the timeout. The store
//  (cart_store.c) asks again whenever it has to reconnect: after a
//  connection error, a timeout or a READONLY answer.

#ifndef REDIS_SENTINEL_H
#define REDIS_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "redis_url.h"

//  Sets host (REDIS_URL_MAX_HOST_BYTES + 1) and *port to the master's
//  address and returns 0; or returns -1 with a one-line reason naming the
//  problem (no sentinel reachable, the master unknown to them, a bad
//  answer). Sends AUTH to a sentinel when the URL holds a password and the
//  sentinel wants one.
int redis_sentinel_master (const redis_url_t *url, int timeout_ms, char *host,
                           int *port, char *reason, size_t reason_size);

//  A master the sentinels named may be one no longer (their news lags a
//  failover): 0 when ROLE on redis says master, else -1 with reason.
int redis_sentinel_check_master (redisContext *redis, const char *host,
                                 int port, char *reason, size_t reason_size);

#endif
