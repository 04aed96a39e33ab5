/* readbw.c - the streaming read loops behind the bandwidth bound (see
 * readbw.h). */
#include "readbw.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

const readbw_ahead readbw_aheads[READBW_N_AHEAD] = {{0, 0, 0},     {2048, 0, 0}, {4096, 0, 0},
                                                    {8192, 0, 0},  {16384, 0, 0}, {2048, 1, 0},
                                                    {4096, 1, 0},  {8192, 1, 0},  {2048, 0, 18432}};

#if defined(__x86_64__)
static volatile int g_pace = 1; /* read before each pair of hints: see readbw.h */

/* Asks for the 256 bytes `ahead` bytes on from p: non-temporal (nta) or
 * into L1, and with far > 0 also into L2 from far bytes on, paced (see
 * readbw.h). The address is computed as an integer: it may lie past the
 * buffer (a hint never faults). */
static inline void prefetch256(const uint8_t *p, size_t ahead, int nta, size_t far) {
    uintptr_t a = (uintptr_t)p + ahead, f = (uintptr_t)p + far;
    for (size_t o = 0; o < 256; o += 64) {
        if (far) {
            if (g_pace) {
                _mm_prefetch((const char *)(a + o), _MM_HINT_T0);
                _mm_prefetch((const char *)(f + o), _MM_HINT_T1);
            }
        } else if (nta) _mm_prefetch((const char *)(a + o), _MM_HINT_NTA);
        else _mm_prefetch((const char *)(a + o), _MM_HINT_T0);
    }
}

/* With ahead > 0, also asks for the line `ahead` bytes on before each load
 * (a single core keeps more lines in flight that way than the hardware
 * prefetcher alone asks for: the kernels do the same). */
__attribute__((target("avx512f"))) static double sum512(const uint8_t *p, size_t n, size_t ahead, int nta, size_t far) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        if (ahead) prefetch256(p + i, ahead, nta, far);
        a0 = _mm512_add_ps(a0, _mm512_load_ps((const float *)(const void *)(p + i)));
        a1 = _mm512_add_ps(a1, _mm512_load_ps((const float *)(const void *)(p + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_load_ps((const float *)(const void *)(p + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_load_ps((const float *)(const void *)(p + i + 192)));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* As sum512 with 256-bit loads, for AVX2 machines (the width their
 * kernels load with). */
__attribute__((target("avx2"))) static double sum256(const uint8_t *p, size_t n, size_t ahead, int nta, size_t far) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        if (ahead) prefetch256(p + i, ahead, nta, far);
        for (size_t o = 0; o < 256; o += 128) {
            a0 = _mm256_add_ps(a0, _mm256_load_ps((const float *)(const void *)(p + i + o)));
            a1 = _mm256_add_ps(a1, _mm256_load_ps((const float *)(const void *)(p + i + o + 32)));
            a2 = _mm256_add_ps(a2, _mm256_load_ps((const float *)(const void *)(p + i + o + 64)));
            a3 = _mm256_add_ps(a3, _mm256_load_ps((const float *)(const void *)(p + i + o + 96)));
        }
    }
    __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float f[8];
    _mm256_storeu_ps(f, a);
    return (double)f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

static double sum_portable(const uint8_t *p, size_t n) {
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a += x;
        b ^= y;
    }
    return (double)(a ^ b);
}

double readbw_sum(const uint8_t *p, size_t n, size_t ahead, int nta, size_t far) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return sum512(p, n, ahead, nta, far);
    if (__builtin_cpu_supports("avx2")) return sum256(p, n, ahead, nta, far);
#endif
    (void)ahead;
    (void)nta;
    (void)far;
    return sum_portable(p, n);
}

/* qsort order of doubles, ascending */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double readbw_median(double *v, size_t n) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
