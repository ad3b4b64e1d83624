//  batch.h - `cartmq batch`: cart commands from stdin on one client
//
//  Each line holds the words of a cart command as on the command line
//  (`get U`, `add U I --name N --quantity Q --price P --request-id R`,
//  `remove`, `update`, `clear`), split at blanks with no quoting; blank
//  lines and lines starting with '#' are skipped. Every command runs on
//  ONE client made once from the global flags, so broker health and
//  sockets carry over from line to line (contract §7). Each command gives
//  exactly one JSON line on stdout, flushed at once: the reply map, or
//  {"error":"..."} when the line was bad or no reply came.
//
//  Exit status: the worst line's: 3 if any got no reply, else 2 if any
//  was bad, else 1 if any reply was not 200, else 0.

#ifndef CARTMQ_BATCH_H
#define CARTMQ_BATCH_H

#include "commands.h"

//  Runs `cartmq batch` on the arguments after the command name (argv[0]
//  is "batch"); reads stdin to its end or until a signal.
int batch_main (commands_globals_t *globals, int argc, char **argv);

#endif
