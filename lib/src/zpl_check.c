//  zpl_check.c - ZPL text checked line by line before zconfig reads it
//
//  The rules are zconfig_chunk_load's (CZMQ 4.2): names of "$-_@.&+/" and
//  alphanumerics, not starting or ending with '/'; indent in steps of 4
//  spaces, at most one level below the item before; "name = value" where a
//  quoted value must close on its line; '#' starts a comment.

#include "cartmq/zpl_check.h"

#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool
s_is_blank_or_comment (const char *scan)
{
    while (isspace ((unsigned char) *scan))
        scan++;
    return *scan == '\0' || *scan == '#';
}

static bool
s_is_namechar (char thischar)
{
    return isalnum ((unsigned char) thischar) ||
           (thischar && strchr ("$-_@.&+/", thischar));
}

//  Checks one line, trailing blanks removed. path_depth is how deep the
//  last item went (the deepest level that may be a parent). Returns NULL
//  if fine (is_item says whether it made a tree node), or why not.
static const char *
s_check_line (const char *line, int *path_depth, bool *is_item)
{
    *is_item = false;
    const char *scan = line;
    while (*scan == ' ')
        scan++;
    size_t indent = (size_t) (scan - line);
    if (indent % 4)
        return "indent by 4 spaces at a time";
    int level = (int) (indent / 4);
    const char *name = scan;
    while (*scan && s_is_namechar (*scan))
        scan++;
    size_t name_len = (size_t) (scan - name);
    if (name_len == 0)
        return s_is_blank_or_comment (scan) ? NULL : "invalid syntax";
    if (name[0] == '/' || name[name_len - 1] == '/')
        return "'/' not valid at the start or end of a name";
    while (isspace ((unsigned char) *scan))
        scan++;
    if (*scan == '=') {
        scan++;
        while (isspace ((unsigned char) *scan))
            scan++;
        if (*scan == '"' || *scan == '\'') {
            const char *endquote = strchr (scan + 1, *scan);
            if (!endquote)
                return "missing closing quote";
            if (!s_is_blank_or_comment (endquote + 1))
                return "invalid syntax after the quoted value";
        }
    } else if (!s_is_blank_or_comment (scan))
        return "invalid syntax";
    if (level > *path_depth)
        return "indented deeper than its parent";
    *path_depth = level + 1;
    *is_item = true;
    return NULL;
}

//  Appends lineno to the growing array at *lines_p
static void
s_record (int **lines_p, size_t *count, size_t *capacity, int lineno)
{
    if (*count == *capacity) {
        *capacity = *capacity ? *capacity * 2 : 32;
        *lines_p = (int *) realloc (*lines_p, *capacity * sizeof (int));
        assert (*lines_p);
    }
    (*lines_p)[(*count)++] = lineno;
}

const char *
cmq_zpl_check (const char *text, int *bad_line, int **item_lines_p,
               size_t *item_count_p)
{
    assert (text);
    assert (!item_lines_p || item_count_p);
    int *lines = NULL;
    size_t count = 0;
    size_t capacity = 0;
    const char *reason = NULL;
    int path_depth = 0;
    int lineno = 0;
    const char *scan = text;
    char line[CMQ_ZPL_MAX_LINE + 1];
    while (*scan && !reason) {
        const char *eoln = strchr (scan, '\n');
        size_t length = eoln ? (size_t) (eoln - scan) : strlen (scan);
        lineno++;
        if (length > CMQ_ZPL_MAX_LINE) {
            reason = "line longer than 1024 bytes";
            break;
        }
        memcpy (line, scan, length);
        line[length] = '\0';
        scan = eoln ? eoln + 1 : scan + length;
        while (length && isspace ((unsigned char) line[length - 1]))
            line[--length] = '\0';

        bool is_item;
        reason = s_check_line (line, &path_depth, &is_item);
        if (!reason && is_item && item_lines_p)
            s_record (&lines, &count, &capacity, lineno);
    }
    if (reason) {
        free (lines);
        lines = NULL;
        count = 0;
    }
    if (bad_line)
        *bad_line = reason ? lineno : 0;
    if (item_lines_p) {
        *item_lines_p = lines;
        *item_count_p = count;
    }
    return reason;
}
