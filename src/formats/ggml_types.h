/* ggml_types.h - the tensor element types a GGUF file can hold.
 *
 * Numbering and block layouts are the GGML ones, so files interoperate with
 * other GGUF runtimes. A type is stored as blocks of `block_size` elements,
 * each `type_size` bytes. */
#ifndef AIRLOCK_FORMATS_GGML_TYPES_H
#define AIRLOCK_FORMATS_GGML_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_COUNT = 39
};

typedef struct ggml_type_info {
    const char *name;   /* "Q4_K"; NULL for ids that name no type */
    uint32_t block_size; /* elements per block */
    uint32_t type_size;  /* bytes per block */
} ggml_type_info;

/* Returns the layout of type id t, or NULL if t is not a known type. */
const ggml_type_info *ggml_type_get(uint32_t t);

/* Returns the type's name ("F16"), or "?" for an unknown id. */
const char *ggml_type_name(uint32_t t);

/* Looks a type up by name, case-insensitively. Returns its id or -1. */
int ggml_type_from_name(const char *name);

/* Bytes taken by a row of n elements of type t; 0 if n is not a whole number
 * of blocks or t is unknown. */
size_t ggml_row_size(uint32_t t, int64_t n);

#endif
