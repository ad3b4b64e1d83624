//  prometheus.h - brokers' mmi.stats maps in the Prometheus text format
//
//  One page for any number of brokers: each metric family is written once
//  (HELP and TYPE lines, then its samples), with one sample per broker and,
//  for the per-service and per-reason families, per service or reason.
//  Every sample carries the label broker="ENDPOINT". Names follow the
//  Prometheus conventions (contract §8): counters end in _total, times are
//  in seconds. A broker that did not answer has cartmq_up 0 and no other
//  samples, so a dashboard tells "down" from "idle".
//
//  The mapping is generic where the map is: a drop reason or a service the
//  broker names is written whatever it is called. Label values are peer
//  bytes: printable ASCII passes, `\` and `"` are escaped as the format
//  wants, and any other byte becomes the four characters \xHH (the
//  backslash escaped), so no service name can break or forge a line.

#ifndef CARTMQ_PROMETHEUS_H
#define CARTMQ_PROMETHEUS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *broker;           //  the endpoint, the broker label's value
    const msgpack_object *stats;  //  its mmi.stats map; NULL: no answer
} prometheus_source_t;

//  Writes the page for count sources to out. Returns 0, or -1 when out
//  reports a write error.
int prometheus_write (FILE *out, const prometheus_source_t *sources,
                      size_t count);

//  Writes value as a label value with the escaping above, no quotes.
void prometheus_write_label (FILE *out, const char *value, size_t size);

#endif
