//  supervisor.h - runs N worker processes and keeps them running
//
//  Each child is this very program (/proc/self/exe) run with the same
//  arguments and --processes 1, so it builds its own CZMQ context, broker
//  socket and Redis connection from scratch. A child that dies is started
//  again after a backoff (SUPERVISOR_BACKOFF_MIN_MS doubling up to
//  SUPERVISOR_BACKOFF_MAX_MS; back to the minimum once a child has run
//  SUPERVISOR_STABLE_MS). On SIGINT or SIGTERM (zsys_interrupted) every
//  child gets SIGTERM, and SIGKILL if still alive SUPERVISOR_GRACE_MS later.
//  SIGHUP stops nothing: it is passed on to the children.
//
//  A child that exits 2 refused its settings. If it was the first child of
//  its slot, the settings were bad when the supervisor started: it stops
//  the others and exits 2 too, rather than restart it forever. A restarted
//  child that exits 2 (a config file or certificate rewritten badly since,
//  say mid-rotation) is retried with the same capped backoff, logged each
//  time, while the healthy children keep serving (§2): exit 2 would make
//  systemd's RestartPreventExitStatus=2 keep the whole host down.

#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUPERVISOR_BACKOFF_MIN_MS 100
#define SUPERVISOR_BACKOFF_MAX_MS 5000
#define SUPERVISOR_STABLE_MS      10000
#define SUPERVISOR_GRACE_MS       1500

//  Runs processes children until interrupted. argv is the program's own
//  (argv[argc] NULL). is_hangup (may be NULL) is asked every poll whether
//  a SIGHUP came; if so it is sent on to every child. Returns the exit
//  code: 0 after a clean stop, 2 if it could not start or a first child
//  refused its settings.
int supervisor_run (int argc, char **argv, int processes,
                    bool (*is_hangup) (void));

//  True if a child that ended with wait status, the starts-th start of its
//  slot (1 for the first), means the settings were bad from the start:
//  it exited 2 and was the first. Anything else is restarted.
bool supervisor_gives_up (int status, int starts);

//  The children's argv: argv without any --processes N or --processes=N,
//  then "--processes" "1", NULL-terminated. The array is heap-owned (free
//  it); its strings are borrowed from argv. NULL if memory ran out.
char **supervisor_child_argv (int argc, char **argv);

//  The delay before restarting a child that ran ran_ms after the previous
//  delay was backoff_ms (0 for none yet).
int supervisor_next_backoff (int backoff_ms, int64_t ran_ms);

#endif
