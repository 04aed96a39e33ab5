/* mask512.h - the lane mask of a partial last vector, for the AVX-512
 * kernel files (which alone are compiled with AVX-512 enabled; include it
 * nowhere else). */
#ifndef AIRLOCK_KERNELS_MASK512_H
#define AIRLOCK_KERNELS_MASK512_H

#include <immintrin.h>

/* The mask of the first n - i lanes, at most 16 (all 16 when n - i >= 16;
 * n - i > 0). */
static inline __mmask16 tail16(int n, int i) { return n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1); }

#endif
