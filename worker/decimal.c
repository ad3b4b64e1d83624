//  decimal.c - strict unsigned decimal numbers in the worker's text formats

#include "decimal.h"

int
decimal_parse (const char *text, size_t size, int64_t max, int64_t *value)
{
    //  Ten digits stay far below 2^63, so the sum cannot overflow.
    if (size == 0 || size > 10)
        return -1;
    int64_t result = 0;
    for (size_t i = 0; i < size; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        result = result * 10 + (text[i] - '0');
    }
    if (result > max)
        return -1;
    *value = result;
    return 0;
}
