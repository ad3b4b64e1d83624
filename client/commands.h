//  commands.h - the cartmq command line: global flags, then one command
//
//  commands.c parses the global flags and dispatches to one command:
//  cart_commands.c (get, add, remove, update, clear), mmi_commands.c
//  (services, stats), bench.c, or keygen here. The helpers below are what
//  every command shares: flag parsing with the global flags after the
//  command too, connecting, and the one way peer bytes reach a terminal.
//
//  Exit codes (contract §2): 0 on status 200 (or a command that worked),
//  1 on any other status or a reply the command cannot read, 2 on bad
//  usage, 3 when no reply came after all attempts. SIGINT or SIGTERM
//  during a call or a --watch stops the program with 0.

#ifndef CARTMQ_COMMANDS_H
#define CARTMQ_COMMANDS_H

#include "cartmq/client.h"
#include "cartmq/options.h"

#include <czmq.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define COMMANDS_EXIT_OK       0
#define COMMANDS_EXIT_STATUS   1
#define COMMANDS_EXIT_USAGE    2
#define COMMANDS_EXIT_NO_REPLY 3

//  Returned by helpers to say "carry on"; any other value is an exit code.
#define COMMANDS_GO (-1)

//  The global flags, shared by every command.
typedef struct {
    zlist_t *endpoints;  //  --connect, repeated or comma lists (strings);
                         //  NULL or empty: the default
    bool is_verbose;     //  --verbose: one line per call on stderr
    int64_t timeout_ms;  //  --timeout-ms, per attempt
    int64_t retries;     //  --retries, resends after the first
    char *curve_server;  //  --curve-server PUBLIC_CERTFILE
    char *curve_cert;    //  --curve-cert CERTFILE (NAME_secret)
} commands_globals_t;

//  Runs the program on its argv; returns the exit code.
int commands_main (int argc, char **argv);

//  Parses a command's own flags (table, at most 8, NULL-terminated) and
//  the global ones, and exactly `wanted` positionals. Returns COMMANDS_GO,
//  or the exit code when help was shown or the usage was wrong. The
//  command's table owns its strings; the global strings stay owned by the
//  global table.
int commands_parse (commands_globals_t *globals, const char *command,
                    const char *usage, const cmq_option_t *table, int argc,
                    char **argv, const char **positional, int wanted);

//  The same for least..most positionals; *count_p says how many came.
int commands_parse_some (commands_globals_t *globals, const char *command,
                         const char *usage, const cmq_option_t *table, int argc,
                         char **argv, const char **positional, int least,
                         int most, int *count_p);

//  COMMANDS_GO if is_given, else says "--flag is required": usage error.
int commands_require (const char *command, const char *flag, bool is_given);

//  Connects with the global flags, to every --connect endpoint (one
//  client, contract §7). Returns NULL, the reason printed, when an
//  endpoint (or one given twice) or the certificates are unusable.
cmq_client_t *commands_client_new (const commands_globals_t *globals);

//  The client config the global flags give, its endpoints borrowed from
//  list (room for CMQ_CLIENT_MAX_ENDPOINTS; more is left to cmq_client_new
//  to refuse), for a command that makes its own clients.
void commands_client_config (const commands_globals_t *globals,
                             cmq_client_config_t *config, const char **list);

//  commands_client_new when *rc is COMMANDS_GO, else NULL; a client that
//  cannot be made turns *rc into the usage exit code.
cmq_client_t *commands_client_when_go (const commands_globals_t *globals,
                                       int *rc);

//  The same for one broker only: the index-th endpoint of client.
cmq_client_t *commands_client_one (const commands_globals_t *globals,
                                   cmq_client_t *client, size_t index);

//  With --verbose, after a sync call that began at started_ms
//  (zclock_mono): "cartmq: call attempts=N brokers=EP1,EP2 ms=T" on
//  stderr, one endpoint per attempt, escaped. Nothing otherwise.
void commands_report_call (const commands_globals_t *globals,
                           cmq_client_t *client, int64_t started_ms);

//  Prints {"error":"TEXT"} and a newline on out, TEXT as a JSON string.
void commands_print_json_error (FILE *out, const char *text);

//  Prints data as a JSON string (quoted, escaped as json_print does).
void commands_print_json_string (FILE *out, const char *data, size_t size);

//  After a call that got no reply: the exit code, 0 if interrupted, else
//  3 with the reason on stderr. A mutation's request_id, if given, is
//  named: the outcome is unknown, and running it again with it is safe.
int commands_no_reply (cmq_client_t *client, const char *request_id);

//  Writes peer bytes for a terminal as the logs do (cmq_log_escape):
//  every byte outside printable ASCII, and '\\' and '"', as \xHH, so no
//  reply can break a line, move the cursor or send the terminal a command
//  (C1 controls and bytes that are not UTF-8 included). A very long
//  string is cut and ends in "...".
void commands_print_safe (FILE *stream, const char *data, size_t size);

//  Columns commands_print_safe takes for these bytes.
int commands_safe_width (const char *data, size_t size);

#endif
