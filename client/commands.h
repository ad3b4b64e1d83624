//  commands.h - the cartmq command line: global flags, then one command
//
//  Exit codes (contract §2): 0 on status 200 (or a command that worked),
//  1 on any other status or a reply the command cannot read, 2 on bad
//  usage, 3 when no reply came after all attempts. SIGINT or SIGTERM
//  during a call or a --watch stops the program with 0.

#ifndef CARTMQ_COMMANDS_H
#define CARTMQ_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

#define COMMANDS_EXIT_OK       0
#define COMMANDS_EXIT_STATUS   1
#define COMMANDS_EXIT_USAGE    2
#define COMMANDS_EXIT_NO_REPLY 3

//  Runs the program on its argv; returns the exit code.
int commands_main (int argc, char **argv);

//  Prints a cart reply body as one JSON line on out; when its status is
//  not 200, also "cartmq: STATUS: ERROR" on err, ERROR escaped as
//  cmq_log_escape does (no reply can write control bytes to a terminal). Returns 0 on status 200,
//  1 otherwise (also when the body is not a msgpack map: error on err).
int commands_print_reply (const void *data, size_t size, FILE *out, FILE *err);

#endif
