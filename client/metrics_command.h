//  metrics_command.h - `cartmq metrics --listen HOST:PORT` (contract §8)
//
//  Serves /metrics for Prometheus: at each scrape every --connect broker
//  is asked mmi.stats at once (stats_gather.h, one --timeout-ms deadline
//  for all, so a dead broker costs a scrape at most that long) and the
//  answers are written in the text format (prometheus.h), one broker label
//  per endpoint. Runs until SIGINT or SIGTERM, then exits 0. The page has
//  no access control: listen on loopback, or behind what guards the
//  network; a non-loopback address is allowed but warned about.

#ifndef CARTMQ_METRICS_COMMAND_H
#define CARTMQ_METRICS_COMMAND_H

#include "commands.h"

int metrics_command_run (commands_globals_t *globals, int argc, char **argv);

//  `cartmq stats --prometheus`: the same page once, on stdout. Returns the
//  exit code: 0 when every broker answered, 3 when any did not (the page
//  is printed either way, with cartmq_up 0 for the silent ones).
int metrics_command_print_once (commands_globals_t *globals);

#endif
