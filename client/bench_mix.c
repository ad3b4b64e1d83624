//  bench_mix.c - the cart method mix of `cartmq bench`

#include "bench.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_WEIGHT 1000000

static const char *const s_mix_names[CMQ_CART_CLEAR + 1] = {
    NULL, "get", "add", "remove", "update", "clear"
};

static int
s_mix_fail (char *error, size_t error_size, const char *reason,
            const char *item, size_t item_size)
{
    snprintf (error, error_size, "--mix: %s: '%.*s'", reason,
              (int) (item_size > 40 ? 40 : item_size), item);
    return -1;
}

//  Parses one "name=weight" of item_size bytes into mix.
static int
s_mix_item (const char *item, size_t item_size, bench_mix_t *mix, char *error,
            size_t error_size, bool *is_given)
{
    const char *equals = memchr (item, '=', item_size);
    if (!equals)
        return s_mix_fail (error, error_size, "expected name=weight", item,
                           item_size);
    size_t name_size = (size_t) (equals - item);
    int method = 0;
    for (int index = CMQ_CART_GET; index <= CMQ_CART_CLEAR; index++)
        if (strlen (s_mix_names[index]) == name_size &&
            memcmp (s_mix_names[index], item, name_size) == 0)
            method = index;
    if (!method)
        return s_mix_fail (error, error_size,
                           "unknown method (add, get, remove, update, clear)",
                           item, item_size);
    if (is_given[method])
        return s_mix_fail (error, error_size, "method given twice", item,
                           item_size);
    const char *digits = equals + 1;
    size_t digit_count = item_size - name_size - 1;
    uint64_t weight = 0;
    if (digit_count == 0 || digit_count > 7)
        return s_mix_fail (error, error_size, "weight must be 0..1000000", item,
                           item_size);
    for (size_t index = 0; index < digit_count; index++) {
        if (digits[index] < '0' || digits[index] > '9')
            return s_mix_fail (error, error_size, "weight must be 0..1000000",
                               item, item_size);
        weight = weight * 10 + (uint64_t) (digits[index] - '0');
    }
    if (weight > S_MAX_WEIGHT)
        return s_mix_fail (error, error_size, "weight must be 0..1000000", item,
                           item_size);
    is_given[method] = true;
    mix->weights[method] = (uint32_t) weight;
    mix->total += (uint32_t) weight;
    return 0;
}

int
bench_mix_parse (const char *text, bench_mix_t *mix, char *error,
                 size_t error_size)
{
    assert (text);
    assert (mix);
    assert (error && error_size > 0);
    memset (mix, 0, sizeof (*mix));
    bool is_given[CMQ_CART_CLEAR + 1] = { false };
    const char *cursor = text;
    while (true) {
        const char *comma = strchr (cursor, ',');
        size_t item_size = comma ? (size_t) (comma - cursor) : strlen (cursor);
        if (s_mix_item (cursor, item_size, mix, error, error_size, is_given) !=
            0)
            return -1;
        if (!comma)
            break;
        cursor = comma + 1;
    }
    if (mix->total == 0) {
        snprintf (error, error_size, "--mix: every weight is 0");
        return -1;
    }
    return 0;
}

cmq_cart_method_t
bench_mix_pick (const bench_mix_t *mix, uint32_t random)
{
    assert (mix && mix->total > 0);
    uint32_t point = random % mix->total;
    for (int method = CMQ_CART_GET; method <= CMQ_CART_CLEAR; method++) {
        if (point < mix->weights[method])
            return (cmq_cart_method_t) method;
        point -= mix->weights[method];
    }
    assert (false);  //  the weights add up to total
    return CMQ_CART_GET;
}
