/* quants.h - dequantization of GGML tensor types (the reference definition
 * every optimised kernel is tested against). */
#ifndef AIRLOCK_KERNELS_QUANTS_H
#define AIRLOCK_KERNELS_QUANTS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "formats/ggml_types.h"

/* True if dequantize_row handles type. */
bool quant_can_dequantize(uint32_t type);

/* Expands n elements (a whole number of blocks) of src into floats. */
void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Q4_K/Q5_K: scale and min of sub-block j (0..7) from the 12 packed bytes. */
void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m);

/* All eight 6-bit scales and mins of a Q4_K/Q5_K block's 12 scale bytes q at
 * once (the same values as k4_scale_min for j = 0..7), with 32-bit word
 * arithmetic: inlined into the kernels, where a call per sub-block cost a
 * quarter of decode time. */
static inline void k4_scales_unpack(const uint8_t *q, uint8_t sc[8], uint8_t m[8]) {
    uint32_t u[3], w[4];
    memcpy(u, q, sizeof u);
    w[0] = u[0] & 0x3f3f3f3fu;                                      /* sc[0..3]: q[j] & 63 */
    w[2] = u[1] & 0x3f3f3f3fu;                                      /* m[0..3]: q[j+4] & 63 */
    w[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4); /* sc[4..7] */
    w[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4); /* m[4..7] */
    memcpy(sc, w, 8);
    memcpy(m, w + 2, 8);
}
/* Q3_K: the 16 signed scales from the 12 packed bytes. */
void q3k_unpack_scales(const uint8_t *packed, int8_t out[16]);

#endif
