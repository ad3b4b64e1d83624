//  decimal.h - strict unsigned decimal numbers in the worker's text formats
//
//  The Redis URL's port and database and the stored item and result
//  records all hold plain decimal digits. One parser for them all, so each
//  format refuses the same things: a sign, spaces, an empty number, more
//  than ten digits or a value over the format's limit.

#ifndef DECIMAL_H
#define DECIMAL_H

#include <stddef.h>
#include <stdint.h>

//  Parses size bytes of decimal digits (no sign, 1 to 10 of them) into
//  *value if the number is at most max. Returns 0, or -1 and leaves *value
//  alone.
int decimal_parse (const char *text, size_t size, int64_t max, int64_t *value);

#endif
