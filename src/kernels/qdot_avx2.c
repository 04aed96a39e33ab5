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


qdot_gemm_fn qdot_gemm_avx2(uint32_t wtype) {
    switch (wtype) {
    case GGML_TYPE_Q4_0: return gemm_q4_0;
    case GGML_TYPE_Q5_0: return gemm_q5_0;
    case GGML_TYPE_Q8_0: return gemm_q8_0;
    case GGML_TYPE_Q4_K: return gemm_q4_k;
    case GGML_TYPE_Q6_K: return gemm_q6_k;
    default: return NULL; /* the float path: qdot_gemm_get */
    }
}
