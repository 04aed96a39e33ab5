/* quants.h - dequantization of GGML tensor types (the reference definition
 * every optimised kernel is tested against). */
#ifndef AIRLOCK_KERNELS_QUANTS_H
#define AIRLOCK_KERNELS_QUANTS_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/ggml_types.h"

/* True if dequantize_row handles type. */
bool quant_can_dequantize(uint32_t type);

/* Expands n elements (a whole number of blocks) of src into floats. */
void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Q4_K/Q5_K: scale and min of sub-block j (0..7) from the 12 packed bytes. */
void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m);
/* Q3_K: the 16 signed scales from the 12 packed bytes. */
void q3k_unpack_scales(const uint8_t *packed, int8_t out[16]);

#endif
