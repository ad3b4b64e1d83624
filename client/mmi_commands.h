//  mmi_commands.h - services and stats: the broker's MMI answers shown
//
//  Each runs on the arguments after the command name (argv[0] is the
//  command) and returns the exit code (commands.h).

#ifndef CARTMQ_MMI_COMMANDS_H
#define CARTMQ_MMI_COMMANDS_H

#include "commands.h"

//  mmi.services as a table, or --json.
int mmi_commands_services (commands_globals_t *globals, int argc, char **argv);

//  mmi.stats as totals and a service table, or --json; --watch SECONDS
//  refreshes until a signal.
int mmi_commands_stats (commands_globals_t *globals, int argc, char **argv);

#endif
