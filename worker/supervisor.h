//  supervisor.h - runs N worker processes and keeps them running
//
//  Each child is this very program (/proc/self/exe) run with the same
//  arguments and --processes 1, so it builds its own CZMQ context, broker
//  socket and Redis connection from scratch. A child that dies is started
//  again after a backoff (SUPERVISOR_BACKOFF_MIN_MS doubling up to
//  SUPERVISOR_BACKOFF_MAX_MS; back to the minimum once a child has run
//  SUPERVISOR_STABLE_MS). On SIGINT or SIGTERM (zsys_interrupted) every
//  child gets SIGTERM, and SIGKILL if still alive SUPERVISOR_GRACE_MS later.
//  A child that exits 2 refused its settings; the supervisor then stops the
//  others and exits 2 too, rather than restart it forever.

#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#define SUPERVISOR_BACKOFF_MIN_MS 100
#define SUPERVISOR_BACKOFF_MAX_MS 5000
#define SUPERVISOR_STABLE_MS      10000
#define SUPERVISOR_GRACE_MS       1500

//  Runs processes children until interrupted. argv is the program's own
//  (argv[argc] NULL). Returns the exit code: 0 after a clean stop, 2 if it
//  could not start or a child refused its settings.
int supervisor_run (int argc, char **argv, int processes);

//  The children's argv: argv without any --processes N or --processes=N,
//  then "--processes" "1", NULL-terminated. The array is heap-owned (free
//  it); its strings are borrowed from argv. NULL if memory ran out.
char **supervisor_child_argv (int argc, char **argv);

//  The delay before restarting a child that ran ran_ms after the previous
//  delay was backoff_ms (0 for none yet).
int supervisor_next_backoff (int backoff_ms, int64_t ran_ms);

#endif
