//  cart_commands.h - get, add, remove, update, clear: one cart call each
//
//  Each runs on the arguments after the command name (argv[0] is the
//  command) and returns the exit code (commands.h).

#ifndef CARTMQ_CART_COMMANDS_H
#define CARTMQ_CART_COMMANDS_H

#include "commands.h"

//  Runs one cart command (argv[0] is get, add, remove, update or clear)
//  on client, which stays the caller's, or on a client of its own made
//  from the global flags when client is NULL. *is_printed_p (if given)
//  says whether the reply went to stdout as a JSON line. Returns the exit
//  code, or -1 when argv[0] is no cart command.
int cart_commands_run (commands_globals_t *globals, cmq_client_t *client,
                       int argc, char **argv, bool *is_printed_p);

//  cart_commands_run on a client of its own: the program's entry for a
//  cart command.
int cart_commands_main (commands_globals_t *globals, int argc, char **argv);

//  Prints a cart reply body as one JSON line on out; when its status is
//  not 200, also "cartmq: STATUS: ERROR" on err, ERROR escaped as
//  cmq_log_escape does (no reply can write control bytes to a terminal).
//  Returns 0 on status 200, 1 otherwise (also when the body is not a
//  msgpack map: error on err).
int cart_commands_print_reply (const void *data, size_t size, FILE *out,
                               FILE *err);

#endif
