/* qdot_unpack512.h - the AVX-512 unpacking of 16-row panels (qdot.h),
 * shared by the AVX-512 kernels (qdot_avx512.c) and the AMX ones
 * (qdot_amx.c), so that both take the same values, scales and offsets
 * from the same bytes. Include only from files compiled with AVX-512
 * (F, BW, VL, DQ). */
#ifndef AIRLOCK_KERNELS_QDOT_UNPACK512_H
#define AIRLOCK_KERNELS_QDOT_UNPACK512_H

#include <immintrin.h>
#include <stdint.h>

/* x shifted left by s bits in each 16-bit lane (right by -s when s < 0). */
static inline __attribute__((always_inline)) __m512i unpack512_shift16(__m512i x, const int s) {
    return s >= 0 ? _mm512_slli_epi16(x, s) : _mm512_srli_epi16(x, -s);
}

/* Quad vector x (v = 0..3) of a Q4_0 or Q5_0 panel block as one byte per
 * value: *lo the low nibbles (elements 4v..4v+3 of each row), *hi the high
 * ones (16 + 4v..); with q5, hv is the block's fifth-bit vector, and bit
 * 2v of each byte goes to bit 4 of lo, bit 2v + 1 to bit 4 of hi (0xF8: a
 * | (b & c)). */
static inline __attribute__((always_inline)) void unpack512_x16_quad(__m512i x, __m512i hv, const int v, const int q5, __m512i *lo,
                                                                      __m512i *hi) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);
    *lo = _mm512_and_si512(x, m4);
    *hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
    if (q5) {
        *lo = _mm512_ternarylogic_epi32(*lo, unpack512_shift16(hv, 4 - 2 * v), m10, 0xF8);
        *hi = _mm512_ternarylogic_epi32(*hi, unpack512_shift16(hv, 3 - 2 * v), m10, 0xF8);
    }
}

/* The scales and mins of a QDOT_Q4_K16 super-block at step: sc[j] the 16
 * rows' 6-bit scales of sub-block j as dwords, the even ones shifted left
 * by even_shift; mp[i] dword lane r = (m[r][2i], m[r][2i+1]) as words. */
static inline __attribute__((always_inline)) void unpack512_q4k16_scales(const uint8_t *step, const int even_shift, __m512i sc[8],
                                                                          __m512i mp[4]) {
    const __m128i m3f = _mm_set1_epi8(0x3F), m03 = _mm_set1_epi8(0x03), m3c = _mm_set1_epi8(0x3C);
    for (int i = 0; i < 4; i++) {
        __m128i s0 = _mm_loadu_si128((const __m128i *)(const void *)(step + 64 + 32 * i));
        __m128i s1 = _mm_loadu_si128((const __m128i *)(const void *)(step + 80 + 32 * i));
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(step + 192 + 16 * i));
        sc[2 * i] = _mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(s0, m3f)), even_shift);
        sc[2 * i + 1] = _mm512_cvtepu8_epi32(_mm_and_si128(s1, m3f));
        __m128i mn0 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(s0, 6), m03), _mm_and_si128(_mm_slli_epi16(h, 2), m3c));
        __m128i mn1 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(s1, 6), m03), _mm_and_si128(_mm_srli_epi16(h, 2), m3c));
        mp[i] = _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(mn0, mn1), _mm_unpacklo_epi8(mn0, mn1)));
    }
}

/* The 6-bit values (0..63) of quads u, u + 16, u + 32, u + 48 (u < 16) of
 * a QDOT_Q6_K16 super-block at step into q[0..3]: bytes 4r..4r+3 of q[f]
 * hold quad u + 16 f of row r. */
static inline __attribute__((always_inline)) void unpack512_q6k16_quads(const uint8_t *step, const int u, __m512i q[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512i lA = _mm512_loadu_si512((const void *)(step + 288 + 192 * u));      /* quads u (low), u + 32 (high) */
    __m512i lB = _mm512_loadu_si512((const void *)(step + 288 + 192 * u + 64)); /* quads u + 16, u + 48 */
    __m512i h = _mm512_loadu_si512((const void *)(step + 288 + 192 * u + 128));
    q[0] = _mm512_ternarylogic_epi32(lA, m4, _mm512_and_si512(_mm512_slli_epi16(h, 4), m30), 0xEA);
    q[1] = _mm512_ternarylogic_epi32(lB, m4, _mm512_and_si512(_mm512_slli_epi16(h, 2), m30), 0xEA);
    q[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(lA, 4), m4, _mm512_and_si512(h, m30), 0xEA);
    q[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(lB, 4), m4, _mm512_and_si512(_mm512_srli_epi16(h, 2), m30), 0xEA);
}

/* The signed scales of a QDOT_Q6_K16 super-block at step as word pairs:
 * dword lane r of sp[i] = (sc[r][2i], sc[r][2i+1]) (for the -32 offset). */
static inline __attribute__((always_inline)) void unpack512_q6k16_scale_pairs(const uint8_t *step, __m512i sp[8]) {
    for (int i = 0; i < 8; i++) {
        __m128i s0 = _mm_loadu_si128((const __m128i *)(const void *)(step + 32 + 32 * i));
        __m128i s1 = _mm_loadu_si128((const __m128i *)(const void *)(step + 48 + 32 * i));
        sp[i] = _mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(s0, s1), _mm_unpacklo_epi8(s0, s1)));
    }
}

#endif
