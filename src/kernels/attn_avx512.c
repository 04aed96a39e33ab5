/* attn_avx512.c - the AVX-512 attention kernel (kernels/attn.h). Compiled
 * with AVX-512 enabled; called only when cpu_level() allows. */
#include "kernels/attn.h"

#include <assert.h>
#include <immintrin.h>
#include <math.h>

#include "kernels/exp512.h"

#define AI static inline __attribute__((always_inline))
#define KEYS 16 /* keys per step: one score per lane */

/* r[t] = the sum of the 16 lanes of p[t], t < 16: a tree of in-lane and
 * cross-lane shuffles (45 instructions for 16 sums, where 16 separate
 * horizontal sums take about 130). */
AI __m512 hsum16(const __m512 p[16]) {
    __m512 u[8], w[4];
    for (int i = 0; i < 8; i++) /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        u[i] = _mm512_add_ps(_mm512_unpacklo_ps(p[2 * i], p[2 * i + 1]), _mm512_unpackhi_ps(p[2 * i], p[2 * i + 1]));
    for (int i = 0; i < 4; i++) /* per 128-bit lane: the lane's sums of p[4i..4i+3] */
        w[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* sum the four 128-bit lanes of each w[i] into lane i */
    __m512 x0 = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x44), _mm512_shuffle_f32x4(w[0], w[1], 0xEE));
    __m512 x1 = _mm512_add_ps(_mm512_shuffle_f32x4(w[2], w[3], 0x44), _mm512_shuffle_f32x4(w[2], w[3], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, 0x88), _mm512_shuffle_f32x4(x0, x1, 0xDD));
}

void attn_f16_avx512(const float *q, int nh, const uint16_t *k, const uint16_t *v, int n_keys, int hd, float scale, float *out) {
    assert(hd % 16 == 0 && hd <= ATTN_MAX_HD && nh >= 1 && nh <= ATTN_MAX_HEADS && n_keys >= 1);
    const int nv = hd / 16; /* vectors per head */
    float kf[KEYS][ATTN_MAX_HD], vf[KEYS][ATTN_MAX_HD]; /* this step's keys and values as floats */
    float mx[ATTN_MAX_HEADS], sum[ATTN_MAX_HEADS];
    for (int h = 0; h < nh; h++) {
        mx[h] = -INFINITY;
        sum[h] = 0.0f;
        for (int j = 0; j < nv; j++) _mm512_storeu_ps(out + (size_t)h * (size_t)hd + 16 * j, _mm512_setzero_ps());
    }
    for (int t0 = 0; t0 < n_keys; t0 += KEYS) {
        const int nt = n_keys - t0 < KEYS ? n_keys - t0 : KEYS;
        for (int t = 0; t < KEYS; t++)
            for (int j = 0; j < nv; j++) {
                __m512 kk = _mm512_setzero_ps(), vv = _mm512_setzero_ps(); /* past the last key: zeros */
                if (t < nt) {
                    size_t at = (size_t)(t0 + t) * (size_t)hd + 16 * (size_t)j;
                    kk = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(k + at)));
                    vv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + at)));
                }
                _mm512_storeu_ps(kf[t] + 16 * j, kk);
                _mm512_storeu_ps(vf[t] + 16 * j, vv);
            }
        const __mmask16 live = (__mmask16)((1u << nt) - 1);
        for (int h = 0; h < nh; h++) {
            const float *qh = q + (size_t)h * (size_t)hd;
            float *oh = out + (size_t)h * (size_t)hd;
            /* s[t] = scale * q_h . k_t; -inf past the last key */
            __m512 p[KEYS];
            for (int t = 0; t < KEYS; t++) {
                p[t] = _mm512_mul_ps(_mm512_loadu_ps(qh), _mm512_loadu_ps(kf[t]));
                for (int j = 1; j < nv; j++) p[t] = _mm512_fmadd_ps(_mm512_loadu_ps(qh + 16 * j), _mm512_loadu_ps(kf[t] + 16 * j), p[t]);
            }
            __m512 s = _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), live, hsum16(p), _mm512_set1_ps(scale));
            /* online softmax: new maximum, weights exp(s - max), rescale what was summed */
            float m = fmaxf(mx[h], _mm512_reduce_max_ps(s));
            float e[KEYS];
            __m512 ev = _mm512_maskz_mov_ps(live, exp512(_mm512_sub_ps(s, _mm512_set1_ps(m))));
            _mm512_storeu_ps(e, ev);
            float es = _mm512_reduce_add_ps(ev);
            float corr = expf(mx[h] - m); /* 0 on the first step (mx = -inf) */
            sum[h] = sum[h] * corr + es;
            mx[h] = m;
            /* out_h = out_h * corr + sum_t e[t] v_t */
            for (int j = 0; j < nv; j++) {
                __m512 a = _mm512_mul_ps(_mm512_loadu_ps(oh + 16 * j), _mm512_set1_ps(corr));
                for (int t = 0; t < nt; t++) a = _mm512_fmadd_ps(_mm512_set1_ps(e[t]), _mm512_loadu_ps(vf[t] + 16 * j), a);
                _mm512_storeu_ps(oh + 16 * j, a);
            }
        }
    }
    for (int h = 0; h < nh; h++) {
        __m512 inv = _mm512_set1_ps(1.0f / sum[h]);
        for (int j = 0; j < nv; j++)
            _mm512_storeu_ps(out + (size_t)h * (size_t)hd + 16 * j, _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)h * (size_t)hd + 16 * j), inv));
    }
}
