/* quantize.h - float32 -> GGML quantized types (reference, scalar). */
#ifndef AIRLOCK_KERNELS_QUANTIZE_H
#define AIRLOCK_KERNELS_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/quants.h"

/* True if quantize_row handles type. */
bool quant_can_quantize(uint32_t type);

/* Quantizes n floats (a whole number of blocks) into dst
 * (ggml_row_size(type, n) bytes). No value is clipped: every element's
 * error is at most quant_max_error() of its block. */
void quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* The error bound of element e (0..block_size-1) of a quantized block: half
 * its step. INFINITY for types the bound does not apply to (F16, BF16). */
float quant_max_error(uint32_t type, const void *block, int e);

#endif
