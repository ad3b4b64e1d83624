//  batch.c - `cartmq batch`: cart commands from stdin on one client
//
//  The lines go through the very code of the single commands
//  (cart_commands_run), on one long-lived client instead of one each.

#include "batch.h"
#include "cart_commands.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Words one line may hold: the longest command has a dozen.
#define S_MAX_WORDS 32

#define S_BLANKS " \t\r\n\v\f"

//  Splits line in place at blanks into words[]. Returns the count, or -1
//  when there are more than S_MAX_WORDS.
static int
s_split (char *line, char **words)
{
    int count = 0;
    char *scan = line + strspn (line, S_BLANKS);
    while (*scan) {
        if (count == S_MAX_WORDS)
            return -1;
        words[count++] = scan;
        scan += strcspn (scan, S_BLANKS);
        if (*scan)
            *scan++ = '\0';
        scan += strspn (scan, S_BLANKS);
    }
    return count;
}

//  Ranks exit codes for "the worst line": no reply, usage, status, ok.
static int
s_rank (int rc)
{
    return rc == COMMANDS_EXIT_NO_REPLY ? 3
           : rc == COMMANDS_EXIT_USAGE  ? 2
           : rc == COMMANDS_EXIT_STATUS ? 1
                                        : 0;
}

//  Runs one line's words on client and makes sure one JSON line went out.
//  Returns its exit code.
static int
s_run_line (commands_globals_t *globals, cmq_client_t *client, int argc,
            char **argv, size_t line_number)
{
    char error[CMQ_ERRSTR_SIZE + 64];
    bool is_printed = false;
    int rc = argc < 0
               ? -1
               : cart_commands_run (globals, client, argc, argv, &is_printed);
    if (is_printed || zsys_interrupted)
        return rc < 0 ? COMMANDS_EXIT_USAGE : rc;
    if (argc < 0)
        snprintf (error, sizeof (error), "line %zu: more than %d words",
                  line_number, S_MAX_WORDS);
    else if (rc < 0)
        snprintf (error, sizeof (error), "line %zu: not a cart command",
                  line_number);
    else if (rc == COMMANDS_EXIT_NO_REPLY)
        snprintf (error, sizeof (error), "no reply: %s",
                  cmq_client_errstr (client));
    else if (rc == COMMANDS_EXIT_STATUS)
        snprintf (error, sizeof (error), "line %zu: reply unreadable",
                  line_number);
    else
        snprintf (error, sizeof (error), "line %zu: bad usage", line_number);
    if (rc < 0) {
        fprintf (stderr, "cartmq batch: line %zu: not a cart command\n",
                 line_number);
        rc = COMMANDS_EXIT_USAGE;
    }
    commands_print_json_error (stdout, error);
    return rc;
}

//  Reads and runs lines until stdin ends or a signal. Returns the worst
//  exit code.
static int
s_run_lines (commands_globals_t *globals, cmq_client_t *client)
{
    int worst = COMMANDS_EXIT_OK;
    char *line = NULL;
    size_t line_size = 0;
    size_t line_number = 0;
    while (!zsys_interrupted && getline (&line, &line_size, stdin) >= 0) {
        line_number++;
        if (line[strspn (line, S_BLANKS)] == '#')
            continue;
        char *words[S_MAX_WORDS];
        int count = s_split (line, words);
        if (count == 0)
            continue;
        int rc = s_run_line (globals, client, count, words, line_number);
        if (s_rank (rc) > s_rank (worst))
            worst = rc;
    }
    free (line);
    return worst;
}

int
batch_main (commands_globals_t *globals, int argc, char **argv)
{
    cmq_option_t table[] = { { NULL, 0, NULL, NULL, 0, 0, NULL } };
    const char *positional[1];
    int rc = commands_parse (globals, "batch", "< COMMAND LINES", table, argc,
                             argv, positional, 0);
    if (rc != COMMANDS_GO)
        return rc;
    cmq_client_t *client = commands_client_new (globals);
    if (!client)
        return COMMANDS_EXIT_USAGE;
    rc = s_run_lines (globals, client);
    cmq_client_destroy (&client);
    return rc;
}
