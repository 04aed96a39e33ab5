/* fp16.h - IEEE half and bfloat16 conversions. */
#ifndef AIRLOCK_KERNELS_FP16_H
#define AIRLOCK_KERNELS_FP16_H

#include <stdint.h>
#include <string.h>

/* Half -> float, exact for every input (subnormals, inf, NaN). */
static inline float fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Float -> half, round to nearest even; overflow gives inf, NaN stays NaN. */
static inline uint16_t fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7FFFFFFF;
    if (abs > 0x7F800000) return (uint16_t)(sign | 0x7E00);      /* NaN */
    if (abs >= 0x477FF000) return (uint16_t)(sign | 0x7C00);     /* overflow -> inf (incl. rounding up) */
    if (abs < 0x38800000) {                                      /* subnormal or zero in half */
        if (abs < 0x33000000) return (uint16_t)sign;             /* < half of smallest subnormal */
        uint32_t e = abs >> 23, m = (abs & 0x7FFFFF) | 0x800000;
        /* value = m * 2^(e-150); in units of the half subnormal 2^-24 it is m >> (126 - e) */
        uint32_t sh = 126 - e; /* 14..24 */
        uint32_t r = m >> sh, rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = abs - 0x38000000; /* rebias exponent: 127 -> 15 */
    uint32_t mant = r >> 13, rem = r & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (mant & 1))) mant++;
    return (uint16_t)(sign | mant);
}

static inline float bf16_to_fp32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Float -> bfloat16, round to nearest even; NaN stays NaN. */
static inline uint16_t fp32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7FFF + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
