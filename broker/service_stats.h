//  service_stats.h - a service's request times over the last minute
//
//  Six ten-second slots in a ring, each a log-linear cmq_histogram_t
//  (eight steps per power of two, so p99 is within about 12%) with its
//  count and sum. Reading merges the slots younger than a minute. Memory
//  is fixed (about 16 KiB), and a service only gets one when it serves
//  its first request.

#ifndef SERVICE_STATS_H
#define SERVICE_STATS_H

#include <stdint.h>

typedef struct _service_stats_t service_stats_t;

service_stats_t *service_stats_new (void);

void service_stats_destroy (service_stats_t **self_p);

//  Records one request that took elapsed_us, finished at now_us.
void service_stats_record (service_stats_t *self, int64_t now_us,
                           int64_t elapsed_us);

//  Requests, mean and p99 over the last minute as of now_us; zeros when
//  there were none.
void service_stats_read (service_stats_t *self, int64_t now_us,
                         uint64_t *count_p, int64_t *mean_us_p,
                         int64_t *p99_us_p);

#endif
