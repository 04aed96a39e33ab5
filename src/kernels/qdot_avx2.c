/* qdot_avx2.c - AVX2 + FMA + F16C kernels (no VNNI: 8-bit products go
 * through vpmaddubsw, whose first operand is unsigned, so signed weights
 * use the sign trick |w| * sign(a, w)). Compiled with those instruction
 * sets enabled; called only when cpu_level() allows. */
#include "kernels/qdot.h"

#include <immintrin.h>
#include <string.h>

#include "formats/ggml_types.h"
#include "kernels/qdot_tile.h"
#include "kernels/quants.h"

#define AI static inline __attribute__((always_inline))

AI float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI uint16_t rd16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* One block of a 32-block type as 32 signed weights in element order. */
AI __m256i load_block(uint32_t wtype, const uint8_t *b, float *d) {
    *d = _cvtsh_ss(rd16(b));
    if (wtype == GGML_TYPE_Q8_0) return _mm256_loadu_si256((const __m256i *)(const void *)(b + 2));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const uint8_t *qs = b + (wtype == GGML_TYPE_Q4_0 ? 2 : 6);
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m256i z = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m4), _mm_and_si128(x, m4));
    if (wtype == GGML_TYPE_Q4_0) return _mm256_sub_epi8(z, _mm256_set1_epi8(8));
    /* Q5_0: spread the 32 high bits to bytes, then value = (q | h << 4) - 16 */
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit); /* 0xFF where the bit is set */
    __m256i h = _mm256_and_si256(set, _mm256_set1_epi8(16));
    return _mm256_sub_epi8(_mm256_or_si256(z, h), _mm256_set1_epi8(16));
}

AI void tile_q8b(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n,
                 float *out, size_t ldo, const int R, const int T) {
    const size_t bsz = qdot_block_bytes(wtype);
    const int64_t nb = n / 32;
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i c80 = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        __m256i aw[4], wq[4];
        float dw[4];
        for (int r = 0; r < R; r++) {
            wq[r] = load_block(wtype, w + (size_t)r * w_stride + (size_t)b * bsz, &dw[r]);
            aw[r] = _mm256_sign_epi8(wq[r], wq[r]); /* |w| */
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *row = act + (size_t)t * act_stride;
            __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(row + 32 * b)), c80);
            __m256 da = _mm256_loadu_ps((const float *)(const void *)(row + n) + 8 * b);
            for (int r = 0; r < R; r++) {
                __m256i p = _mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(a, wq[r]));
                __m256i s = _mm256_madd_epi16(p, ones);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(_mm256_set1_ps(dw[r]), da), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) out[(size_t)t * ldo + (size_t)r] = hsum256(acc[r][t]);
}

/* A K super-block unpacked for AVX2: the 256 unsigned weights, the scale of
 * every 16-element sub-block, the offsets, and the float factors. */
typedef struct kunpacked {
    __m256i q[8];
    int16_t sc[16];
    __m256i m16;
    float d, dmin;
} kunpacked;

AI void kunpack(uint32_t wtype, const uint8_t *b, kunpacked *k) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (wtype == GGML_TYPE_Q4_K) {
        int16_t mn[16];
        uint8_t s8[8], m8[8];
        k4_scales_unpack(b + 4, s8, m8);
        for (int j = 0; j < 8; j++) {
            k->sc[2 * j] = k->sc[2 * j + 1] = s8[j];
            mn[2 * j] = mn[2 * j + 1] = m8[j];
        }
        k->m16 = _mm256_loadu_si256((const __m256i *)(const void *)mn);
        k->d = _cvtsh_ss(rd16(b));
        k->dmin = _cvtsh_ss(rd16(b + 2));
        for (int p = 0; p < 4; p++) {
            __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16 + 32 * p));
            k->q[2 * p] = _mm256_and_si256(y, m4);
            k->q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4);
        }
        return;
    }
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    for (int j = 0; j < 16; j++) k->sc[j] = sc[j];
    k->m16 = _mm256_loadu_si256((const __m256i *)(const void *)k->sc);
    k->d = _cvtsh_ss(rd16(b + 208));
    k->dmin = 32.0f * k->d;
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        __m256i L0 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 64 * h));
        __m256i L1 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 64 * h + 32));
        __m256i H = _mm256_loadu_si256((const __m256i *)(const void *)(qh + 32 * h));
        k->q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(L0, m4), _mm256_slli_epi16(_mm256_and_si256(H, m3), 4));
        k->q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(L1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m3), 4));
        k->q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L0, 4), m4),
                                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m3), 4));
        k->q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L1, 4), m4),
                                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m3), 4));
    }
}

AI void tile_q8k(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n,
                 float *out, size_t ldo, const int R, const int T) {
    const size_t bsz = qdot_block_bytes(wtype);
    const int64_t nb = n / 256;
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        kunpacked k[4];
        for (int r = 0; r < R; r++) kunpack(wtype, w + (size_t)r * w_stride + (size_t)b * bsz, &k[r]);
        for (int t = 0; t < T; t++) {
            const uint8_t *row = act + (size_t)t * act_stride;
            const uint8_t *q = row + 256 * b;
            float da = ((const float *)(const void *)(row + n))[b];
            __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)(row + n + 4 * (n / 256) + 32 * b));
            for (int r = 0; r < R; r++) {
                __m256i s = _mm256_setzero_si256();
                for (int c = 0; c < 8; c++) {
                    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * c));
                    __m256i scv = _mm256_set_m128i(_mm_set1_epi16(k[r].sc[2 * c + 1]), _mm_set1_epi16(k[r].sc[2 * c]));
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(k[r].q[c], a), scv));
                }
                __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(k[r].d * da));
                __m256i mo = _mm256_madd_epi16(k[r].m16, bs);
                acc[r][t] = _mm256_add_ps(acc[r][t], _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mo), _mm256_set1_ps(k[r].dmin * da), f));
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) out[(size_t)t * ldo + (size_t)r] = hsum256(acc[r][t]);
}

#define TILE_Q4_0(wt, ...) tile_q8b(GGML_TYPE_Q4_0, __VA_ARGS__)
#define TILE_Q5_0(wt, ...) tile_q8b(GGML_TYPE_Q5_0, __VA_ARGS__)
#define TILE_Q8_0(wt, ...) tile_q8b(GGML_TYPE_Q8_0, __VA_ARGS__)
#define TILE_Q4_K(wt, ...) tile_q8k(GGML_TYPE_Q4_K, __VA_ARGS__)
#define TILE_Q6_K(wt, ...) tile_q8k(GGML_TYPE_Q6_K, __VA_ARGS__)
TILE_WALK(gemm_q4_0, TILE_Q4_0, 2, 4)
TILE_WALK(gemm_q5_0, TILE_Q5_0, 2, 4)
TILE_WALK(gemm_q8_0, TILE_Q8_0, 2, 4)
TILE_WALK(gemm_q4_k, TILE_Q4_K, 2, 2)
TILE_WALK(gemm_q6_k, TILE_Q6_K, 2, 2)

/* Prefetches the len bytes ahead of p as cpu_prefetch_mode says (a hint:
 * the addresses may lie past the matrix, computed as integers): under
 * CPU_PREFETCH_L1_L2, AVX2's own tuning, PREFETCH_L2_AHEAD_AVX2 on into L2
 * alone; under CPU_PREFETCH_NTA as prefetch_stream (qdot_tile.h). Zen 3, 1
 * thread, 32768 x 4096, 5 rounds alternating binaries (GB/s, mean): Q4_0X16
 * none 14.5, 4 KB ahead 18.0, 8 KB 17.6; Q8_0X16 14.9 / 14.8 / 14.7 (it is
 * bound by its arithmetic); Q5_0X16 (4 rounds) 11.1 -> 15.1 at 4 KB. The
 * K panels, bound by their arithmetic (25-27 GB/s from L3), gain nothing
 * and go without. The AVX-512 scheme (into L1 2 KB ahead and into L2 18 KB
 * ahead) was slower here: Q4_0X16 10.7-11.8 against 13.6-14.3 without. */
#define PREFETCH_L2_AHEAD_AVX2 4096
AI void prefetch_ahead(const uint8_t *p, size_t len) {
    uintptr_t a = (uintptr_t)p;
    if (cpu_prefetch_mode == CPU_PREFETCH_NTA) prefetch_stream(p, len);
    else if (cpu_prefetch_mode == CPU_PREFETCH_L1_L2)
        for (size_t o = 0; o < len; o += 64) _mm_prefetch((const char *)(a + PREFETCH_L2_AHEAD_AVX2 + o), _MM_HINT_T1);
}

/* ---- 16-row panels (QDOT_Q4_0X16, QDOT_Q5_0X16, QDOT_Q8_0X16; layout in qdot.h) ------
 *
 * A 64-byte vector of a panel step is two 256-bit halves, h = 0 holding
 * rows 0-7 and h = 1 rows 8-15 (lane r: row 8h + r), so the panels the
 * AVX-512 kernels read serve here unchanged. Without VNNI a byte product
 * goes through vpmaddubsw (unsigned x signed, adjacent pairs summed to 16
 * bits, saturating), with the 4 activations of a quad broadcast as the
 * signed operand:
 *   Q4_0: the nibbles (0..15) are the unsigned operand as stored; a
 *   block's 8 products (4 quads x low / high nibbles) are summed in 16 bits
 *   (at most 8 x 2 x 15 x 127 = 30480, no saturation) before one vpmaddwd
 *   widens them; the -8 offset is the seed -8 x the block's activation sum.
 *   Q5_0 (QDOT_Q5_0X16): the same with the fifth bits or-ed in as 16, 4
 *   products per 16-bit sum (at most 4 x 2 x 31 x 127 = 31496), offset -16.
 *   Q8_0: the values (stored + 128) are made signed again and multiplied as
 *   |w| x sign(a, w), each pair within 16 bits (2 x 127 x 127), widened per
 *   quad.
 * Then per block and half one conversion and one fma with the 8 rows'
 * scales times the activation scale. */
/* x shifted left by s bits in each 16-bit lane (right by -s when s < 0). */
AI __m256i shift16(__m256i x, const int s) { return s >= 0 ? _mm256_slli_epi16(x, s) : _mm256_srli_epi16(x, -s); }

enum { X16_Q4_0 = GGML_TYPE_Q4_0, X16_Q8_0 = GGML_TYPE_Q8_0, X16_Q5_0 = GGML_TYPE_Q5_0 }; /* kinds: the file's types */

AI void tile_x16(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int h0,
                 const int NH, const int T, const int kind) {
    const int Q8 = kind == X16_Q8_0, Q5 = kind == X16_Q5_0;
    const size_t step_bytes = qdot_x16_step_bytes((uint32_t)kind), kstride = Q5 ? 320 : 256;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10), ones = _mm256_set1_epi16(1),
                  c80 = _mm256_set1_epi8((char)0x80);
    __m256 acc[2][4];
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++) acc[h][t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < n / 128; g++) {
        const uint8_t *step = w + (size_t)g * step_bytes;
        if (h0 == 0) prefetch_ahead(step, step_bytes); /* the pass over half 1 finds it in cache */
        for (int k = 0; k < 4; k++) {
            const int64_t b = 4 * g + k;
            for (int hh = 0; hh < NH; hh++) {
                const int h = h0 + hh;
                __m256i is[4];
                if (Q8) {
                    for (int t = 0; t < T; t++) is[t] = _mm256_setzero_si256();
                    for (int v = 0; v < 8; v++) {
                        __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(step + 128 + 512 * k + 64 * v + 32 * h)), c80);
                        __m256i ax = _mm256_abs_epi8(x);
                        for (int t = 0; t < T; t++) {
                            int32_t a;
                            memcpy(&a, act + (size_t)t * act_stride + 32 * b + 4 * v, 4);
                            __m256i p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(_mm256_set1_epi32(a), x));
                            is[t] = _mm256_add_epi32(is[t], _mm256_madd_epi16(p, ones));
                        }
                    }
                } else {
                    /* Q5_0: 4 products of 5-bit values per 16-bit sum (at most 4 x 2 x 31 x 127 = 31496) */
                    __m256i s16[4][2];
                    __m256i hv = Q5 ? _mm256_loadu_si256((const __m256i *)(const void *)(step + 128 + 320 * k + 256 + 32 * h)) : m4;
                    for (int v = 0; v < 4; v++) {
                        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(step + 128 + kstride * k + 64 * v + 32 * h));
                        __m256i lo = _mm256_and_si256(x, m4), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
                        if (Q5) { /* the fifth bits, from bits 2v and 2v + 1 of hv, to bit 4 */
                            lo = _mm256_or_si256(lo, _mm256_and_si256(shift16(hv, 4 - 2 * v), m10));
                            hi = _mm256_or_si256(hi, _mm256_and_si256(shift16(hv, 3 - 2 * v), m10));
                        }
                        const int j = Q5 ? v / 2 : 0;
                        for (int t = 0; t < T; t++) {
                            int32_t a0, a1;
                            memcpy(&a0, act + (size_t)t * act_stride + 32 * b + 4 * v, 4);
                            memcpy(&a1, act + (size_t)t * act_stride + 32 * b + 16 + 4 * v, 4);
                            __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(a0)),
                                                         _mm256_maddubs_epi16(hi, _mm256_set1_epi32(a1)));
                            s16[t][j] = v == 0 || (Q5 && v == 2) ? p : _mm256_add_epi16(s16[t][j], p);
                        }
                    }
                    for (int t = 0; t < T; t++) {
                        int32_t bsum = ((const int32_t *)(const void *)(act + (size_t)t * act_stride + n + n / 8))[b];
                        __m256i sum = _mm256_madd_epi16(s16[t][0], ones);
                        if (Q5) sum = _mm256_add_epi32(sum, _mm256_madd_epi16(s16[t][1], ones));
                        is[t] = _mm256_add_epi32(sum, _mm256_set1_epi32((Q5 ? -16 : -8) * bsum));
                    }
                }
                __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(step + 32 * k + 16 * h)));
                for (int t = 0; t < T; t++) {
                    float da = ((const float *)(const void *)(act + (size_t)t * act_stride + n))[b];
                    acc[hh][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[t]), _mm256_mul_ps(d, _mm256_set1_ps(da)), acc[hh][t]);
                }
            }
        }
    }
    for (int hh = 0; hh < NH; hh++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps(out + (size_t)t * ldo + 8 * (size_t)(h0 + hh), acc[hh][t]);
}

#define tile_q4_0x16(...) tile_x16(__VA_ARGS__, X16_Q4_0)
#define tile_q8_0x16(...) tile_x16(__VA_ARGS__, X16_Q8_0)
#define tile_q5_0x16(...) tile_x16(__VA_ARGS__, X16_Q5_0)

/* ---- Q4_K / Q6_K in 16-row panels (QDOT_Q4_K16, QDOT_Q6_K16; layout in qdot.h) -----
 *
 * Halves of 8 rows as for the Q4_0 / Q8_0 panels. A sub-block's byte
 * products are summed in 16 bits (Q4_K: 8 products of nibbles, at most
 * 8 x 2 x 15 x 127 = 30480; Q6_K: 2 products of 6-bit values, at most
 * 2 x 2 x 63 x 127 = 32004), then one vpmaddwd with the 8 rows' scales,
 * each in both 16-bit halves of its row's lane (Q6_K: per pair of quads),
 * widens and scales them at once. The offsets: sum over sub-blocks of
 * min (Q4_K) or 32 x scale (Q6_K) times the activation sum of the
 * sub-block, as vpmaddwd of (even, odd) sub-block pairs. Per super-block
 * and half one conversion and two fmas. */

/* The activation scale of super-block b and the activation sums of its
 * sub-blocks as (even, odd) word pairs: Q4_K (Q4 = 1) pairs of 32-element
 * sums (4 of them), Q6_K pairs of 16-element sums (8). */
AI float k16_act_sums(const uint8_t *row, int64_t n, int64_t b, int32_t pr[8], const int Q4) {
    const uint8_t *bs = row + n + 4 * (n / 256) + 32 * b;
    __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)bs), hi = _mm_loadu_si128((const __m128i *)(const void *)(bs + 16));
    if (Q4) _mm_storeu_si128((__m128i *)(void *)pr, _mm_hadd_epi16(lo, hi));
    else {
        _mm_storeu_si128((__m128i *)(void *)pr, lo);
        _mm_storeu_si128((__m128i *)(void *)(pr + 4), hi);
    }
    return ((const float *)(const void *)(row + n))[b];
}

/* acc += d x da x isum - dmin x da x mo, lane by lane. */
AI __m256 k16_accumulate(__m256 acc, __m256i isum, __m256i mo, __m256 d, __m256 dmin, float da) {
    __m256 vda = _mm256_set1_ps(da);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, vda), acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mo), _mm256_mul_ps(dmin, vda), acc);
}

/* Halves h0 .. h0 + NH - 1 of one QDOT_Q4_K16 panel x T QDOT_ACT_Q8K rows. */
AI void tile_q4_k16(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int h0,
                    const int NH, const int T) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m128i m3f = _mm_set1_epi8(0x3F), m03 = _mm_set1_epi8(0x03), m3c = _mm_set1_epi8(0x3C);
    __m256 acc[2][2];
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++) acc[h][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t *step = w + (size_t)b * 2304;
        float da[2];
        int32_t pr[2][8];
        for (int t = 0; t < T; t++) da[t] = k16_act_sums(act + (size_t)t * act_stride, n, b, pr[t], 1);
        /* the per-row bytes (scales, mins) are read 16 at a time from row
         * 8 h0 on: bytes 0-7 serve half h0, 8-15 half h0 + 1 */
        __m256i isum[2][2], mo[2][2];
        for (int hh = 0; hh < NH; hh++)
            for (int t = 0; t < T; t++) isum[hh][t] = mo[hh][t] = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            __m256i ia[2][2], ib[2][2];
            for (int k = 0; k < 8; k++) {
                __m256i a0[2], a1[2]; /* the quad's activations, shared by the halves */
                for (int t = 0; t < T; t++) {
                    const uint8_t *a = act + (size_t)t * act_stride + 256 * b + 64 * g + 4 * k;
                    int32_t v0, v1;
                    memcpy(&v0, a, 4);
                    memcpy(&v1, a + 32, 4);
                    a0[t] = _mm256_set1_epi32(v0);
                    a1[t] = _mm256_set1_epi32(v1);
                }
                for (int hh = 0; hh < NH; hh++) {
                    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(step + 256 + 512 * g + 64 * k + 32 * (h0 + hh)));
                    __m256i lo = _mm256_and_si256(x, m4), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
                    for (int t = 0; t < T; t++) {
                        __m256i pa = _mm256_maddubs_epi16(lo, a0[t]), pb = _mm256_maddubs_epi16(hi, a1[t]);
                        ia[hh][t] = k ? _mm256_add_epi16(ia[hh][t], pa) : pa;
                        ib[hh][t] = k ? _mm256_add_epi16(ib[hh][t], pb) : pb;
                    }
                }
            }
            /* scales of sub-blocks 2g, 2g + 1, in both 16-bit halves of each row's lane */
            __m128i va = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(step + 64 + 32 * g + 8 * h0)), m3f);
            __m128i vb = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(step + 80 + 32 * g + 8 * h0)), m3f);
            for (int hh = 0; hh < NH; hh++) {
                __m256i sa = _mm256_cvtepu8_epi32(hh ? _mm_srli_si128(va, 8) : va);
                __m256i sb = _mm256_cvtepu8_epi32(hh ? _mm_srli_si128(vb, 8) : vb);
                sa = _mm256_or_si256(sa, _mm256_slli_epi32(sa, 16));
                sb = _mm256_or_si256(sb, _mm256_slli_epi32(sb, 16));
                for (int t = 0; t < T; t++)
                    isum[hh][t] = _mm256_add_epi32(isum[hh][t], _mm256_add_epi32(_mm256_madd_epi16(ia[hh][t], sa), _mm256_madd_epi16(ib[hh][t], sb)));
            }
        }
        for (int i = 0; i < 4; i++) { /* mins of sub-blocks 2i, 2i + 1: lane r = (m[r][2i], m[r][2i+1]) */
            __m128i s0 = _mm_loadu_si128((const __m128i *)(const void *)(step + 64 + 32 * i + 8 * h0));
            __m128i s1 = _mm_loadu_si128((const __m128i *)(const void *)(step + 80 + 32 * i + 8 * h0));
            __m128i hb = _mm_loadu_si128((const __m128i *)(const void *)(step + 192 + 16 * i + 8 * h0));
            __m128i mn0 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(s0, 6), m03), _mm_and_si128(_mm_slli_epi16(hb, 2), m3c));
            __m128i mn1 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(s1, 6), m03), _mm_and_si128(_mm_srli_epi16(hb, 2), m3c));
            for (int hh = 0; hh < NH; hh++) {
                __m256i mp = _mm256_cvtepu8_epi16(hh ? _mm_unpackhi_epi8(mn0, mn1) : _mm_unpacklo_epi8(mn0, mn1));
                for (int t = 0; t < T; t++) mo[hh][t] = _mm256_add_epi32(mo[hh][t], _mm256_madd_epi16(mp, _mm256_set1_epi32(pr[t][i])));
            }
        }
        for (int hh = 0; hh < NH; hh++) {
            __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(step + 16 * (h0 + hh))));
            __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(step + 32 + 16 * (h0 + hh))));
            for (int t = 0; t < T; t++) acc[hh][t] = k16_accumulate(acc[hh][t], isum[hh][t], mo[hh][t], d, dmin, da[t]);
        }
    }
    for (int hh = 0; hh < NH; hh++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps(out + (size_t)t * ldo + 8 * (size_t)(h0 + hh), acc[hh][t]);
}

/* Halves h0 .. h0 + NH - 1 of one QDOT_Q6_K16 panel x T QDOT_ACT_Q8K rows:
 * sub-block j = s4 + 4f is quads u + 16f for u = 4 s4 .. 4 s4 + 3; the
 * three vectors of quad u give the 6-bit values of quads u, u + 16, u + 32
 * and u + 48 (low 4 bits from the nibbles of the vectors of u and u + 16,
 * top 2 bits at bits 2f, 2f + 1 of the high-bit vector of u). */
AI void tile_q6_k16(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int h0,
                    const int NH, const int T) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[2][2];
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++) acc[h][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t *step = w + (size_t)b * 3360;
        float da[2];
        int32_t pr[2][8];
        for (int t = 0; t < T; t++) da[t] = k16_act_sums(act + (size_t)t * act_stride, n, b, pr[t], 0);
        __m256i isum[2][2], mo[2][2];
        for (int hh = 0; hh < NH; hh++)
            for (int t = 0; t < T; t++) isum[hh][t] = mo[hh][t] = _mm256_setzero_si256();
        for (int s4 = 0; s4 < 4; s4++) /* sub-blocks s4 + 4f, f = 0..3 */
            for (int pair = 0; pair < 2; pair++) { /* quads u = 4 s4 + 2 pair, + 1 */
                __m256i s16[2][2][4];
                for (int hh = 0; hh < NH; hh++)
                    for (int t = 0; t < T; t++)
                        for (int f = 0; f < 4; f++) s16[hh][t][f] = _mm256_setzero_si256();
                for (int uu = 0; uu < 2; uu++) {
                    const int u = 4 * s4 + 2 * pair + uu;
                    __m256i a[2][4]; /* quads u + 16 f of each token, shared by the halves */
                    for (int t = 0; t < T; t++)
                        for (int f = 0; f < 4; f++) {
                            int32_t av;
                            memcpy(&av, act + (size_t)t * act_stride + 256 * b + 4 * (u + 16 * f), 4);
                            a[t][f] = _mm256_set1_epi32(av);
                        }
                    for (int hh = 0; hh < NH; hh++) {
                        const int h = h0 + hh;
                        __m256i lA = _mm256_loadu_si256((const __m256i *)(const void *)(step + 288 + 192 * u + 32 * h));
                        __m256i lB = _mm256_loadu_si256((const __m256i *)(const void *)(step + 288 + 192 * u + 64 + 32 * h));
                        __m256i hv = _mm256_loadu_si256((const __m256i *)(const void *)(step + 288 + 192 * u + 128 + 32 * h));
                        __m256i q[4];
                        q[0] = _mm256_or_si256(_mm256_and_si256(lA, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m30));
                        q[1] = _mm256_or_si256(_mm256_and_si256(lB, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m30));
                        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lA, 4), m4), _mm256_and_si256(hv, m30));
                        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lB, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hv, 2), m30));
                        for (int t = 0; t < T; t++)
                            for (int f = 0; f < 4; f++) /* quad u + 16 f */
                                s16[hh][t][f] = _mm256_add_epi16(s16[hh][t][f], _mm256_maddubs_epi16(q[f], a[t][f]));
                    }
                }
                /* two quads summed: widen with the scales of sub-blocks s4 + 4f */
                for (int f = 0; f < 4; f++) {
                    __m128i sv = _mm_loadu_si128((const __m128i *)(const void *)(step + 32 + 16 * (s4 + 4 * f) + 8 * h0));
                    for (int hh = 0; hh < NH; hh++) {
                        __m256i sc = _mm256_cvtepi8_epi16(hh ? _mm_unpackhi_epi8(sv, sv) : _mm_unpacklo_epi8(sv, sv));
                        for (int t = 0; t < T; t++) isum[hh][t] = _mm256_add_epi32(isum[hh][t], _mm256_madd_epi16(s16[hh][t][f], sc));
                    }
                }
            }
        for (int i = 0; i < 8; i++) { /* scales of sub-blocks 2i, 2i + 1: lane r = (sc[r][2i], sc[r][2i+1]) */
            __m128i s0 = _mm_loadu_si128((const __m128i *)(const void *)(step + 32 + 32 * i + 8 * h0));
            __m128i s1 = _mm_loadu_si128((const __m128i *)(const void *)(step + 48 + 32 * i + 8 * h0));
            for (int hh = 0; hh < NH; hh++) {
                __m256i sp = _mm256_cvtepi8_epi16(hh ? _mm_unpackhi_epi8(s0, s1) : _mm_unpacklo_epi8(s0, s1));
                for (int t = 0; t < T; t++) mo[hh][t] = _mm256_add_epi32(mo[hh][t], _mm256_madd_epi16(sp, _mm256_set1_epi32(pr[t][i])));
            }
        }
        for (int hh = 0; hh < NH; hh++) {
            __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(step + 16 * (h0 + hh))));
            for (int t = 0; t < T; t++) acc[hh][t] = k16_accumulate(acc[hh][t], isum[hh][t], mo[hh][t], d, _mm256_mul_ps(d, _mm256_set1_ps(32.0f)), da[t]);
        }
    }
    for (int hh = 0; hh < NH; hh++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps(out + (size_t)t * ldo + 8 * (size_t)(h0 + hh), acc[hh][t]);
}

/* Walks whole 16-row panels: a lone token with both halves in one pass
 * (each weight line read once: generation), more tokens in tiles of one
 * half x up to TT tokens (the other half's bytes of each line come from
 * cache on its own pass). TT: 4 for the Q4_0 / Q5_0 / Q8_0 panels, 2 for
 * the K panels (whose tiles keep more accumulators per token). */
#define PANEL16_WALK(NAME, TILE, TT)                                                                                      \
    static void NAME(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n, \
                     float *out, size_t ldo, int nr, int nt, float *scratch) {                                           \
        (void)wtype;                                                                                                      \
        (void)scratch;                                                                                                    \
        for (int r = 0; r + 16 <= nr; r += 16) {                                                                          \
            const uint8_t *wp = w + (size_t)r * w_stride;                                                                 \
            for (int t = 0; t < nt; t += TT) {                                                                            \
                const uint8_t *ap = act + (size_t)t * act_stride;                                                         \
                float *op = out + (size_t)t * ldo + (size_t)r;                                                            \
                int rem = nt - t < TT ? nt - t : TT;                                                                      \
                if (rem == 1) TILE(wp, ap, act_stride, n, op, ldo, 0, 2, 1);                                              \
                else                                                                                                      \
                    for (int h = 0; h < 2; h++) switch (rem) {                                                            \
                        case 2: TILE(wp, ap, act_stride, n, op, ldo, h, 1, 2); break;                                     \
                        case 3: TILE(wp, ap, act_stride, n, op, ldo, h, 1, TT < 3 ? TT : 3); break;                       \
                        default: TILE(wp, ap, act_stride, n, op, ldo, h, 1, TT); break;                                   \
                        }                                                                                                 \
            }                                                                                                             \
        }                                                                                                                 \
    }
PANEL16_WALK(gemm_q4_0x16, tile_q4_0x16, 4)
PANEL16_WALK(gemm_q8_0x16, tile_q8_0x16, 4)
PANEL16_WALK(gemm_q5_0x16, tile_q5_0x16, 4)
PANEL16_WALK(gemm_q4_k16, tile_q4_k16, 2)
PANEL16_WALK(gemm_q6_k16, tile_q6_k16, 2)

float qdot_dot_f16_avx2(const float *a, const uint16_t *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(b + i))), acc);
    float s = hsum256(acc);
    for (; i < n; i++) s += a[i] * _cvtsh_ss(b[i]);
    return s;
}

void qdot_axpy_f16_avx2(float *y, float s, const uint16_t *x, int n) {
    __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + i))),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += s * _cvtsh_ss(x[i]);
}

float qdot_dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum256(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}


/* ---- activation quantization ---------------------------------------------------- */

AI float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

AI int32_t hsum256_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

AI __m256 abs256(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

/* 8 values x times the inverse scale, rounded to nearest even (as lrintf)
 * and clamped to [-127, 127], as the scalar q8(). */
AI __m256i q8_round(__m256 x, __m256 vid) {
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(x, vid)), _mm256_set1_epi32(-127)),
                            _mm256_set1_epi32(127));
}

/* Quantizes 32 values (amax: their largest magnitude) with the scalar
 * code's scale into 32 bytes in element order; *sum gets their sum.
 * Returns the scale. */
AI float quant32(const float *x, float amax, __m256i *q, int32_t *sum) {
    float id, d = qdot_q8_scale(amax, &id);
    __m256 vid = _mm256_set1_ps(id);
    __m256i a = q8_round(_mm256_loadu_ps(x), vid), b = q8_round(_mm256_loadu_ps(x + 8), vid);
    __m256i c = q8_round(_mm256_loadu_ps(x + 16), vid), e = q8_round(_mm256_loadu_ps(x + 24), vid);
    *sum = hsum256_epi32(_mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, e)));
    /* the packs work within 128-bit lanes: bytes come out as 4-value groups
     * in the order a0 b0 c0 e0 a1 b1 c1 e1; one permute restores it */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, e));
    *q = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return d;
}

AI float absmax32(const float *x) {
    __m256 m = _mm256_max_ps(_mm256_max_ps(abs256(_mm256_loadu_ps(x)), abs256(_mm256_loadu_ps(x + 8))),
                             _mm256_max_ps(abs256(_mm256_loadu_ps(x + 16)), abs256(_mm256_loadu_ps(x + 24))));
    return hmax256(m);
}

/* The QDOT_ACT_Q8B, QDOT_ACT_Q8D and QDOT_ACT_Q8K rows, byte for byte as
 * the scalar code (QDOT_ACT_Q8S, read only by AVX-512 kernels, is left to
 * it). */
void qdot_quantize_act_avx2(qdot_act f, const float *x, uint8_t *dst, int64_t n) {
    if (f == QDOT_ACT_Q8K) {
        float *dl = (float *)(void *)(dst + n);
        int16_t *bsum = (int16_t *)(void *)(dst + n + 4 * (n / 256));
        for (int64_t b = 0; b < n / 256; b++) {
            const float *xb = x + 256 * b;
            float amax = 0.0f;
            for (int g = 0; g < 8; g++) {
                float m = absmax32(xb + 32 * g);
                amax = m > amax ? m : amax;
            }
            for (int g = 0; g < 8; g++) { /* two 16-value sums per 32 */
                __m256i q;
                int32_t sum;
                dl[b] = quant32(xb + 32 * g, amax, &q, &sum);
                _mm256_storeu_si256((__m256i *)(void *)(dst + 256 * b + 32 * g), q);
                /* the first 16 values' sum from the low 128 bits of 4-value sums */
                __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
                __m128i h = _mm256_castsi256_si128(s);
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
                int32_t s0 = _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1)));
                bsum[16 * b + 2 * g] = (int16_t)s0;
                bsum[16 * b + 2 * g + 1] = (int16_t)(sum - s0);
            }
        }
        return;
    }
    if (f != QDOT_ACT_Q8B && f != QDOT_ACT_Q8D) {
        qdot_quantize_act(f, x, dst, n);
        return;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        __m256i q;
        int32_t sum;
        float d = quant32(x + 32 * b, absmax32(x + 32 * b), &q, &sum);
        if (f == QDOT_ACT_Q8D) {
            _mm256_storeu_si256((__m256i *)(void *)(dst + 32 * b), q);
            ((float *)(void *)(dst + n))[b] = d;
            ((int32_t *)(void *)(dst + n + n / 8))[b] = sum;
        } else {
            _mm256_storeu_si256((__m256i *)(void *)(dst + 32 * b), _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
            _mm256_storeu_ps((float *)(void *)(dst + n) + 8 * b, _mm256_set1_ps(d));
        }
    }
}

qdot_gemm_fn qdot_gemm_avx2(uint32_t wtype) {
    switch (wtype) {
    case GGML_TYPE_Q4_0: return gemm_q4_0;
    case GGML_TYPE_Q5_0: return gemm_q5_0;
    case GGML_TYPE_Q8_0: return gemm_q8_0;
    case GGML_TYPE_Q4_K: return gemm_q4_k;
    case GGML_TYPE_Q6_K: return gemm_q6_k;
    case QDOT_Q4_0X16: return gemm_q4_0x16;
    case QDOT_Q8_0X16: return gemm_q8_0x16;
    case QDOT_Q5_0X16: return gemm_q5_0x16;
    case QDOT_Q4_K16: return gemm_q4_k16;
    case QDOT_Q6_K16: return gemm_q6_k16;
    default: return NULL; /* the float path: qdot_gemm_get */
    }
}
