//  options.h - command-line flags and ZPL config files from one table
//
//  A program describes its flags once, as an array of cmq_option_t ended by
//  a zeroed entry. cmq_options_parse reads --config FILE (when the program
//  has a config section), applies the file's keys, then the command line,
//  so flags override the file. Config keys are the long flag names without
//  dashes, under a top-level section named after the program ("broker",
//  "worker"); other top-level sections are ignored, so one file may hold
//  both.
//
//  Errors are one line on stderr, naming the flag, or the file, line and
//  key: "cartmq-broker: --liveness: not a number",
//  "cartmq-broker: cartmq.cfg:3: heartbeat: unknown key".

#ifndef CARTMQ_OPTIONS_H
#define CARTMQ_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cartmq/endpoint.h"  //  ENDPOINT_LIST values pass cmq_endpoint_check

typedef enum {
    CMQ_OPT_FLAG,          //  bool *target: present means true
    CMQ_OPT_INT,           //  int64_t *target, checked against min..max
    CMQ_OPT_STRING,        //  char **target: heap copy, freed by
                           //  cmq_options_free; replaces an earlier value
    CMQ_OPT_STRING_LIST,   //  zlist_t **target of heap strings (autofree);
                           //  each use appends. Values from the command
                           //  line replace values from the file, not add
                           //  to them.
    CMQ_OPT_ENDPOINT_LIST  //  a STRING_LIST whose every value must pass
                           //  cmq_endpoint_check; on the command line a
                           //  value is split at commas too
                           //  (--connect tcp://a:1,tcp://b:2)
} cmq_opt_type_t;
//  In a config file, a FLAG key takes 1/0/true/false/yes/no and a
//  STRING_LIST key may hold several values split by commas or blanks
//  (bind = "tcp://a:1, tcp://b:2") as well as being repeated. Each source
//  (file, then command line) replaces a list's earlier contents, defaults
//  included; a STRING target must be NULL or heap-allocated beforehand.

typedef struct {
    const char *name;  //  long name without dashes: "heartbeat-ms"
    cmq_opt_type_t type;
    const char *metavar;  //  shown in --help: "N", "ENDPOINT"
    const char *help;     //  one line for --help
    int64_t min;          //  CMQ_OPT_INT only
    int64_t max;
    void *target;
} cmq_option_t;

typedef struct {
    const char *program;  //  "cartmq-broker", used in messages and --help
    const char *usage;    //  text after the program name in --help
    const char *section;  //  config section ("broker"), or NULL: no --config
    bool stop_at_positional;  //  stop at the first non-flag (a COMMAND)
} cmq_options_spec_t;

typedef enum {
    CMQ_OPTIONS_OK = 0,    //  go on: *next_arg is the first positional
    CMQ_OPTIONS_EXIT = 1,  //  --help or --version printed: exit 0
    CMQ_OPTIONS_ERROR = 2  //  error printed on stderr: exit 2
} cmq_options_result_t;

//  Parses argv[1..argc-1] against the table. --help and --version are
//  built in; --config FILE too when spec->section is set. Positionals are
//  gathered in order into positional[] (at most max_positional; more is an
//  error) and counted in *positional_count; with stop_at_positional, the
//  first positional and everything after it are left unparsed and
//  *next_arg is its index (argc if none).
cmq_options_result_t cmq_options_parse (const cmq_options_spec_t *spec,
                                        cmq_option_t *table, int argc,
                                        char **argv, const char **positional,
                                        int max_positional,
                                        int *positional_count, int *next_arg);

//  Frees the strings and lists the table's targets hold and NULLs them.
void cmq_options_free (cmq_option_t *table);

//  Prints --help text for the table on stdout.
void cmq_options_print_help (const cmq_options_spec_t *spec,
                             const cmq_option_t *table);

#endif
