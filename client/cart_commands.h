//  cart_commands.h - get, add, remove, update, clear: one cart call each
//
//  Each runs on the arguments after the command name (argv[0] is the
//  command) and returns the exit code (commands.h).

#ifndef CARTMQ_CART_COMMANDS_H
#define CARTMQ_CART_COMMANDS_H

#include "commands.h"

int cart_commands_get (commands_globals_t *globals, int argc, char **argv);

int cart_commands_add (commands_globals_t *globals, int argc, char **argv);

int cart_commands_remove (commands_globals_t *globals, int argc, char **argv);

int cart_commands_update (commands_globals_t *globals, int argc, char **argv);

int cart_commands_clear (commands_globals_t *globals, int argc, char **argv);

//  Prints a cart reply body as one JSON line on out; when its status is
//  not 200, also "cartmq: STATUS: ERROR" on err, ERROR escaped as
//  cmq_log_escape does (no reply can write control bytes to a terminal).
//  Returns 0 on status 200, 1 otherwise (also when the body is not a
//  msgpack map: error on err).
int cart_commands_print_reply (const void *data, size_t size, FILE *out,
                               FILE *err);

#endif
