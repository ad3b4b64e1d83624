//  zpl_check.h - ZPL text checked line by line before zconfig reads it
//
//  zconfig_str_load prints syntax errors with printf on stdout, keeps no
//  line numbers, and reads past its buffer after a line over 1024 bytes.
//  cmq_zpl_check applies zconfig_chunk_load's rules first, so a caller can
//  refuse bad text with its own one-line error naming the line, and map
//  each node of the tree zconfig then builds back to its line.

#ifndef CARTMQ_ZPL_CHECK_H
#define CARTMQ_ZPL_CHECK_H

#include <stddef.h>

//  Longest line accepted, in bytes, not counting the newline
#define CMQ_ZPL_MAX_LINE 1024

//  Returns NULL if zconfig_str_load will take text without complaint, or
//  a static reason ("missing closing quote") with the 1-based number of the
//  offending line in *bad_line (0 on success); bad_line may be NULL.
//  If item_lines_p is not NULL, on success *item_lines_p gets a heap array
//  the caller frees, holding the line of each item in document order, which
//  is the pre-order of the tree zconfig builds, and *item_count_p its
//  length; on failure, or with no items, NULL and 0.
const char *cmq_zpl_check (const char *text, int *bad_line, int **item_lines_p,
                           size_t *item_count_p);

#endif
