//  main.c - cartmq, the command-line client; the work is in commands.c

#include "commands.h"

int
main (int argc, char **argv)
{
    return commands_main (argc, argv);
}
