//  fuzz_input.h - reads a fuzzer's bytes as a stream of small choices
//
//  Running out of input yields zeros, so every byte string is a valid
//  (if short) program for the targets.

#ifndef FUZZ_INPUT_H
#define FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *data;
    size_t size;
} fuzz_input_t;

static inline uint8_t
fuzz_byte (fuzz_input_t *input)
{
    if (input->size == 0)
        return 0;
    input->size--;
    return *input->data++;
}

//  Up to max bytes, borrowed from the input; *size_p says how many.
static inline const uint8_t *
fuzz_bytes (fuzz_input_t *input, size_t max, size_t *size_p)
{
    size_t size = fuzz_byte (input);
    if (size > max)
        size = max;
    if (size > input->size)
        size = input->size;
    const uint8_t *bytes = input->data;
    input->data += size;
    input->size -= size;
    *size_p = size;
    return bytes;
}

#endif
