//  options.c - command-line flags and ZPL config files from one table
//
//  Parsing runs in three steps so that flags override the file whatever
//  their order: read argv into a list of uses (syntax only, --help and
//  --version act at once), apply the --config file, then apply the uses.
//
//  ZPL text goes through cmq_zpl_check (zpl_check.h) before zconfig sees
//  it: zconfig reports syntax errors with printf on stdout (not our
//  one-line stderr error) and keeps no line numbers. The check gives the
//  line of every item in document order, which is also the pre-order of
//  the tree zconfig builds, so each tree node can be mapped back to its
//  line.

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartmq/options.h"
#include "cartmq/zpl_check.h"

#define S_MAX_CONFIG_BYTES (1024 * 1024)
//  A ZPL file holds one value per line, so a list may also be written as
//  several words in one value: bind = "tcp://a:1, tcp://b:2"
#define S_LIST_SEPARATORS ", \t\r\n\v\f"

//  One flag found on the command line, applied after the config file
typedef struct {
    cmq_option_t *option;  //  entry in the caller's table
    const char *value;     //  NULL for CMQ_OPT_FLAG
} s_use_t;

//  Line number of each ZPL item, in document order
typedef struct {
    int *lines;
    size_t count;
} s_item_lines_t;

static void s_error (const cmq_options_spec_t *spec, const char *format, ...)
  __attribute__ ((format (printf, 2, 3)));

static void
s_error (const cmq_options_spec_t *spec, const char *format, ...)
{
    char message[512];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    fprintf (stderr, "%s: %s\n", spec->program, message);
}

static size_t
s_table_size (const cmq_option_t *table)
{
    size_t size = 0;
    while (table && table[size].name)
        size++;
    return size;
}

static cmq_option_t *
s_find (cmq_option_t *table, const char *name, size_t name_len)
{
    for (size_t index = 0; table && table[index].name; index++)
        if (strlen (table[index].name) == name_len &&
            memcmp (table[index].name, name, name_len) == 0)
            return &table[index];
    return NULL;
}

//  Whole-string decimal number within min..max; on failure, reason says why
static int
s_parse_int (const char *text, int64_t min, int64_t max, int64_t *result,
             char *reason, size_t reason_size)
{
    //  strtoll skips leading blanks and takes "": we want digits only
    if (*text == '\0' || isspace ((unsigned char) *text)) {
        snprintf (reason, reason_size, "not a number");
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long long number = strtoll (text, &end, 10);
    if (*end != '\0') {
        snprintf (reason, reason_size, "not a number");
        return -1;
    }
    if (errno == ERANGE || number < min || number > max) {
        snprintf (reason, reason_size,
                  "out of range (%" PRId64 "..%" PRId64 ")", min, max);
        return -1;
    }
    *result = (int64_t) number;
    return 0;
}

static int
s_parse_bool (const char *text, bool *result)
{
    static const char *yes[] = { "1", "true", "yes" };
    static const char *no[] = { "0", "false", "no" };
    for (size_t index = 0; index < 3; index++) {
        if (strcasecmp (text, yes[index]) == 0) {
            *result = true;
            return 0;
        }
        if (strcasecmp (text, no[index]) == 0) {
            *result = false;
            return 0;
        }
    }
    return -1;
}

//  The first use of a list in each source (file, command line) empties it,
//  so a source replaces what came before it and repeats within it append.
static zlist_t *
s_list_for_use (cmq_option_t *option, bool *is_touched)
{
    zlist_t **list_p = (zlist_t **) option->target;
    if (!*list_p) {
        *list_p = zlist_new ();
        zlist_autofree (*list_p);
    }
    if (!*is_touched)
        zlist_purge (*list_p);
    *is_touched = true;
    return *list_p;
}

//  Appends each comma- or blank-separated word of text
static void
s_append_words (zlist_t *list, const char *text)
{
    const char *scan = text + strspn (text, S_LIST_SEPARATORS);
    while (*scan) {
        size_t length = strcspn (scan, S_LIST_SEPARATORS);
        char *word = strndup (scan, length);
        zlist_append (list, word);  //  autofree list copies it
        free (word);
        scan += length;
        scan += strspn (scan, S_LIST_SEPARATORS);
    }
}

//  Checks the endpoints appended to list after its first `before` items.
static int
s_check_new_endpoints (zlist_t *list, size_t before, char *reason,
                       size_t reason_size)
{
    size_t index = 0;
    for (const char *endpoint = (const char *) zlist_first (list); endpoint;
         endpoint = (const char *) zlist_next (list), index++)
        if (index >= before &&
            cmq_endpoint_check (endpoint, reason, reason_size))
            return -1;
    return 0;
}

//  Stores one value in the option's target. from_file selects the file's
//  rules: FLAG takes a yes/no word and a list takes several words.
static int
s_apply (cmq_option_t *option, const char *value, bool from_file,
         bool *is_touched, char *reason, size_t reason_size)
{
    if (from_file && *value == '\0') {
        snprintf (reason, reason_size, "empty value");
        return -1;
    }
    switch (option->type) {
        case CMQ_OPT_FLAG:
            if (!from_file)
                *(bool *) option->target = true;
            else if (s_parse_bool (value, (bool *) option->target)) {
                snprintf (reason, reason_size,
                          "not a boolean (1/0/true/false/yes/no)");
                return -1;
            }
            return 0;
        case CMQ_OPT_INT:
            return s_parse_int (value, option->min, option->max,
                                (int64_t *) option->target, reason,
                                reason_size);
        case CMQ_OPT_STRING: {
            char **string_p = (char **) option->target;
            free (*string_p);
            *string_p = strdup (value);
            return 0;
        }
        case CMQ_OPT_STRING_LIST:
        case CMQ_OPT_ENDPOINT_LIST: {
            //  An endpoint never holds a comma or a blank, so an endpoint
            //  list splits on them on the command line too: "--connect
            //  tcp://a:1,tcp://b:2" is two endpoints.
            bool is_split = from_file || option->type == CMQ_OPT_ENDPOINT_LIST;
            if (is_split && !value[strspn (value, S_LIST_SEPARATORS)]) {
                snprintf (reason, reason_size, "empty value");
                return -1;
            }
            zlist_t *list = s_list_for_use (option, is_touched);
            size_t before = zlist_size (list);
            if (is_split)
                s_append_words (list, value);
            else
                zlist_append (list, (void *) value);
            if (option->type == CMQ_OPT_ENDPOINT_LIST)
                return s_check_new_endpoints (list, before, reason,
                                              reason_size);
            return 0;
        }
    }
    snprintf (reason, reason_size, "unsupported option type");
    return -1;
}

//  Reads a whole config file as text; NULL with *reason on failure
static char *
s_read_text (const char *path, const char **reason)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        *reason = strerror (errno);
        return NULL;
    }
    char *text = (char *) malloc (S_MAX_CONFIG_BYTES + 1);
    assert (text);
    size_t size = fread (text, 1, S_MAX_CONFIG_BYTES + 1, file);
    int read_errno = ferror (file) ? errno : 0;
    fclose (file);
    *reason = NULL;
    if (read_errno)
        *reason = strerror (read_errno);
    else if (size > S_MAX_CONFIG_BYTES)
        *reason = "larger than 1 MiB";
    else if (memchr (text, '\0', size))
        *reason = "not a text file";
    if (*reason) {
        free (text);
        return NULL;
    }
    text[size] = '\0';
    return text;
}

//  Number of nodes in the subtree at node, itself included
static size_t
s_subtree_size (zconfig_t *node)
{
    size_t size = 1;
    for (zconfig_t *child = zconfig_child (node); child;
         child = zconfig_next (child))
        size += s_subtree_size (child);
    return size;
}

typedef struct {
    const cmq_options_spec_t *spec;
    cmq_option_t *table;
    const char *path;
    const s_item_lines_t *items;
    bool *touched;  //  per table entry: list emptied for this source
} s_config_t;

static void
s_config_error (s_config_t *self, size_t item, const char *key,
                const char *reason)
{
    if (item < self->items->count)
        s_error (self->spec, "%s:%d: %s: %s", self->path,
                 self->items->lines[item], key, reason);
    else
        s_error (self->spec, "%s: %s: %s", self->path, key, reason);
}

//  Applies the keys of one section; item is the section's pre-order index
static int
s_apply_section (s_config_t *self, zconfig_t *section, size_t item)
{
    item++;  //  first child
    for (zconfig_t *key = zconfig_child (section); key;
         item += s_subtree_size (key), key = zconfig_next (key)) {
        const char *name = zconfig_name (key);
        zconfig_t *nested = zconfig_child (key);
        if (nested) {
            char qualified[256];
            snprintf (qualified, sizeof (qualified), "%s/%s", name,
                      zconfig_name (nested));
            s_config_error (self, item + 1, qualified,
                            "unknown key (no subsections here)");
            return -1;
        }
        if (streq (name, "config")) {
            s_config_error (self, item, name, "not allowed in a config file");
            return -1;
        }
        cmq_option_t *option = s_find (self->table, name, strlen (name));
        if (!option) {
            s_config_error (self, item, name, "unknown key");
            return -1;
        }
        const char *value = zconfig_value (key);
        char reason[256];
        if (s_apply (option, value ? value : "", true,
                     &self->touched[option - self->table], reason,
                     sizeof (reason))) {
            s_config_error (self, item, name, reason);
            return -1;
        }
    }
    return 0;
}

static int
s_load_config (const cmq_options_spec_t *spec, cmq_option_t *table,
               const char *path, bool *touched)
{
    const char *reason = NULL;
    char *text = s_read_text (path, &reason);
    if (!text) {
        s_error (spec, "%s: %s", path, reason);
        return -1;
    }
    s_item_lines_t items = { NULL, 0 };
    int bad_line = 0;
    int rc = -1;
    zconfig_t *root = NULL;
    reason = cmq_zpl_check (text, &bad_line, &items.lines, &items.count);
    if (reason)
        s_error (spec, "%s:%d: %s", path, bad_line, reason);
    else if (!(root = zconfig_str_load (text)))
        s_error (spec, "%s: not a ZPL file", path);
    else {
        s_config_t config = { spec, table, path, &items, touched };
        rc = 0;
        size_t item = 0;
        for (zconfig_t *section = zconfig_child (root); section && rc == 0;
             item += s_subtree_size (section), section = zconfig_next (section))
            if (streq (zconfig_name (section), spec->section))
                rc = s_apply_section (&config, section, item);
    }
    zconfig_destroy (&root);
    free (items.lines);
    free (text);
    return rc;
}

typedef enum { S_SCAN_OK, S_SCAN_EXIT, S_SCAN_ERROR } s_scan_t;

//  Handles one "--name[=value]" at argv[*index]: a built-in acts at once,
//  a table flag is recorded in uses. May consume the next argument.
static s_scan_t
s_scan_flag (const cmq_options_spec_t *spec, cmq_option_t *table, int argc,
             char **argv, int *index, s_use_t *uses, size_t *use_count,
             const char **config_path)
{
    const char *name = argv[*index] + 2;
    const char *equals = strchr (name, '=');
    int name_len = equals ? (int) (equals - name) : (int) strlen (name);
    const char *value = equals ? equals + 1 : NULL;

    bool is_help = name_len == 4 && memcmp (name, "help", 4) == 0;
    bool is_version = name_len == 7 && memcmp (name, "version", 7) == 0;
    bool is_config =
      spec->section && name_len == 6 && memcmp (name, "config", 6) == 0;
    cmq_option_t *option = NULL;
    if (!is_help && !is_version && !is_config) {
        option = s_find (table, name, (size_t) name_len);
        if (!option) {
            s_error (spec, "unknown option --%.*s", name_len, name);
            return S_SCAN_ERROR;
        }
    }
    bool wants_value = is_config || (option && option->type != CMQ_OPT_FLAG);
    if (!wants_value && value) {
        s_error (spec, "--%.*s: takes no value", name_len, name);
        return S_SCAN_ERROR;
    }
    if (wants_value && !value) {
        //  "--bind --verbose" is a forgotten value, not a bind to
        //  "--verbose"; "--name=--x" still allows such a value.
        if (*index + 1 >= argc || strncmp (argv[*index + 1], "--", 2) == 0) {
            s_error (spec, "--%.*s: needs a value", name_len, name);
            return S_SCAN_ERROR;
        }
        value = argv[++*index];
    }
    if (is_help) {
        cmq_options_print_help (spec, table);
        return S_SCAN_EXIT;
    }
    if (is_version) {
        printf ("%s %s\n", spec->program, CMQ_VERSION_STRING);
        return S_SCAN_EXIT;
    }
    if (is_config) {
        if (*value == '\0') {
            s_error (spec, "--config: needs a value");
            return S_SCAN_ERROR;
        }
        *config_path = value;
        return S_SCAN_OK;
    }
    uses[*use_count].option = option;
    uses[*use_count].value = value;
    (*use_count)++;
    return S_SCAN_OK;
}

//  "-" and "-5" are ordinary arguments; "-x" is a flag we do not have
static bool
s_is_flag (const char *arg)
{
    return arg[0] == '-' && arg[1] && !isdigit ((unsigned char) arg[1]);
}

//  Applies the flags scan recorded, after the config file, so they win.
static s_scan_t
s_apply_uses (const cmq_options_spec_t *spec, cmq_option_t *table,
              const s_use_t *uses, size_t use_count, bool *touched)
{
    for (size_t index = 0; index < use_count; index++) {
        cmq_option_t *option = uses[index].option;
        char reason[256];
        if (s_apply (option, uses[index].value, false, &touched[option - table],
                     reason, sizeof (reason))) {
            s_error (spec, "--%s: %s", option->name, reason);
            return S_SCAN_ERROR;
        }
    }
    return S_SCAN_OK;
}

cmq_options_result_t
cmq_options_parse (const cmq_options_spec_t *spec, cmq_option_t *table,
                   int argc, char **argv, const char **positional,
                   int max_positional, int *positional_count, int *next_arg)
{
    assert (spec);
    assert (spec->program);
    assert (positional || max_positional == 0);
    int count = 0;
    int stopped_at = argc;
    const char *config_path = NULL;
    size_t use_count = 0;
    s_use_t *uses =
      (s_use_t *) calloc ((size_t) (argc > 0 ? argc : 1), sizeof (s_use_t));
    size_t table_size = s_table_size (table);
    bool *touched = (bool *) calloc (table_size + 1, sizeof (bool));
    assert (uses && touched);
    s_scan_t scan = S_SCAN_OK;

    bool is_after_dashes = false;
    for (int index = 1; index < argc && scan == S_SCAN_OK; index++) {
        const char *arg = argv[index];
        if (!is_after_dashes && streq (arg, "--")) {
            is_after_dashes = true;
            if (spec->stop_at_positional) {
                stopped_at = index + 1;
                break;
            }
        } else if (!is_after_dashes && strncmp (arg, "--", 2) == 0)
            scan = s_scan_flag (spec, table, argc, argv, &index, uses,
                                &use_count, &config_path);
        else if (!is_after_dashes && s_is_flag (arg)) {
            s_error (spec, "unknown option %s", arg);
            scan = S_SCAN_ERROR;
        } else if (spec->stop_at_positional) {
            stopped_at = index;
            break;
        } else if (count >= max_positional) {
            s_error (spec, "unexpected argument %s", arg);
            scan = S_SCAN_ERROR;
        } else
            positional[count++] = arg;
    }
    if (scan == S_SCAN_OK && config_path &&
        s_load_config (spec, table, config_path, touched))
        scan = S_SCAN_ERROR;

    memset (touched, 0, (table_size + 1) * sizeof (bool));
    if (scan == S_SCAN_OK)
        scan = s_apply_uses (spec, table, uses, use_count, touched);
    free (touched);
    free (uses);
    if (positional_count)
        *positional_count = count;
    if (next_arg)
        *next_arg = stopped_at;
    return scan == S_SCAN_OK     ? CMQ_OPTIONS_OK
           : scan == S_SCAN_EXIT ? CMQ_OPTIONS_EXIT
                                 : CMQ_OPTIONS_ERROR;
}

void
cmq_options_free (cmq_option_t *table)
{
    for (size_t index = 0; table && table[index].name; index++) {
        cmq_option_t *option = &table[index];
        if (option->type == CMQ_OPT_STRING) {
            char **string_p = (char **) option->target;
            free (*string_p);
            *string_p = NULL;
        } else if (option->type == CMQ_OPT_STRING_LIST ||
                   option->type == CMQ_OPT_ENDPOINT_LIST)
            zlist_destroy ((zlist_t **) option->target);
    }
}

static void
s_help_line (const char *left, const char *help, int width)
{
    printf ("  %-*s  %s\n", width, left, help ? help : "");
}

void
cmq_options_print_help (const cmq_options_spec_t *spec,
                        const cmq_option_t *table)
{
    assert (spec);
    printf ("Usage: %s %s\n\nOptions:\n", spec->program,
            spec->usage ? spec->usage : "[OPTIONS]");
    //  Left column: "--name METAVAR", as wide as the widest, within reason
    int width = (int) strlen ("--version");
    if (spec->section)
        width = (int) strlen ("--config FILE");
    for (size_t index = 0; table && table[index].name; index++) {
        const cmq_option_t *option = &table[index];
        size_t length = 2 + strlen (option->name);
        if (option->type != CMQ_OPT_FLAG)
            length += 1 + strlen (option->metavar ? option->metavar : "VALUE");
        if ((int) length > width)
            width = length > 30 ? 30 : (int) length;
    }
    for (size_t index = 0; table && table[index].name; index++) {
        const cmq_option_t *option = &table[index];
        char left[128];
        if (option->type == CMQ_OPT_FLAG)
            snprintf (left, sizeof (left), "--%s", option->name);
        else
            snprintf (left, sizeof (left), "--%s %s", option->name,
                      option->metavar ? option->metavar : "VALUE");
        if (option->type == CMQ_OPT_STRING_LIST ||
            option->type == CMQ_OPT_ENDPOINT_LIST) {
            char help[256];
            snprintf (help, sizeof (help), "%s (may be repeated)",
                      option->help ? option->help : "");
            s_help_line (left, help, width);
        } else
            s_help_line (left, option->help, width);
    }
    if (spec->section) {
        char help[128];
        snprintf (help, sizeof (help),
                  "read settings from section \"%s\" of ZPL file FILE",
                  spec->section);
        s_help_line ("--config FILE", help, width);
    }
    s_help_line ("--help", "print this help and exit", width);
    s_help_line ("--version", "print the version and exit", width);
}
