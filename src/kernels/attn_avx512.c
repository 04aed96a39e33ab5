/* attn_avx512.c - the AVX-512 attention kernel (kernels/attn.h). Compiled
 * with AVX-512 enabled; called only when cpu_level() allows. */
#include "kernels/attn.h"

#include <assert.h>
#include <immintrin.h>
#include <math.h>

#include "kernels/exp512.h"
#include "kernels/mask512.h"

#define AI static inline __attribute__((always_inline))
#define KEYS 16        /* keys per step: one score per lane */
#define ATTN_CHUNK 256 /* keys scored before their values are summed */
#define PV_REGS 24     /* registers for the value sums of a block of heads */
#define PV_HEADS 6     /* most heads in one such block */

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

/* Scores of a chunk: s[h][t] = scale * q_h . k_t for the nt <= ATTN_CHUNK
 * keys at k, 16 keys at a time: their NV vectors each converted once into
 * kf and shared by the nh heads; -inf past the last key (to a multiple of
 * 16). */
AI void chunk_scores(const float *q, int nh, const uint16_t *k, int nt, float scale, float (*s)[ATTN_CHUNK], const int NV) {
    float kf[KEYS][ATTN_MAX_HD];
    for (int t0 = 0; t0 < nt; t0 += KEYS) {
        const int n16 = nt - t0 < KEYS ? nt - t0 : KEYS;
        for (int t = 0; t < KEYS; t++)
            for (int j = 0; j < NV; j++) {
                __m512 kk = _mm512_setzero_ps(); /* past the last key: zeros */
                if (t < n16) kk = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(k + (size_t)(t0 + t) * 16 * NV + 16 * j)));
                _mm512_storeu_ps(kf[t] + 16 * j, kk);
            }
        const __mmask16 live = tail16(nt, t0);
        for (int h = 0; h < nh; h++) {
            const float *qh = q + (size_t)h * 16 * NV;
            __m512 p[KEYS];
            for (int t = 0; t < KEYS; t++) {
                p[t] = _mm512_mul_ps(_mm512_loadu_ps(qh), _mm512_loadu_ps(kf[t]));
                for (int j = 1; j < NV; j++) p[t] = _mm512_fmadd_ps(_mm512_loadu_ps(qh + 16 * j), _mm512_loadu_ps(kf[t] + 16 * j), p[t]);
            }
            _mm512_storeu_ps(s[h] + t0, _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), live, hsum16(p), _mm512_set1_ps(scale)));
        }
    }
}

/* The online softmax step of one head over a chunk's scores (s, nt of them,
 * -inf padded to a multiple of 16): the new running maximum *mx, the
 * weights s[t] <- e^(s[t] - max) (0 past nt), the running sum *sum
 * rescaled and increased. Returns the factor e^(old max - new max) by which
 * what was summed before must be scaled (0 on the first chunk). */
AI float chunk_softmax(float *s, int nt, float *mx, float *sum) {
    __m512 m = _mm512_set1_ps(*mx);
    for (int t = 0; t < nt; t += KEYS) m = _mm512_max_ps(m, _mm512_loadu_ps(s + t));
    const float mnew = _mm512_reduce_max_ps(m), corr = expf(*mx - mnew);
    const __m512 mv = _mm512_set1_ps(mnew);
    __m512 acc = _mm512_setzero_ps();
    for (int t = 0; t < nt; t += KEYS) {
        const __mmask16 live = tail16(nt, t);
        __m512 e = _mm512_maskz_mov_ps(live, exp512(_mm512_sub_ps(_mm512_loadu_ps(s + t), mv)));
        _mm512_storeu_ps(s + t, e);
        acc = _mm512_add_ps(acc, e);
    }
    *sum = *sum * corr + _mm512_reduce_add_ps(acc);
    *mx = mnew;
    return corr;
}

/* out_h = out_h * corr_h + sum_t e[h][t] v_t for HB heads (out and e start
 * at the block's first head): the HB x NV sums stay in registers while the
 * chunk's values stream past, each value vector converted once for all HB
 * heads. */
AI void chunk_values(float *out, const float (*e)[ATTN_CHUNK], const float *corr, const uint16_t *v, int nt, const int NV, const int HB) {
    __m512 acc[PV_REGS];
    for (int h = 0; h < HB; h++)
        for (int j = 0; j < NV; j++)
            acc[h * NV + j] = _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)(h * NV + j) * 16), _mm512_set1_ps(corr[h]));
    for (int t = 0; t < nt; t++) {
        __m512 vv[ATTN_MAX_HD / 16];
        for (int j = 0; j < NV; j++) vv[j] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + (size_t)t * 16 * NV + 16 * j)));
        for (int h = 0; h < HB; h++) {
            const __m512 w = _mm512_set1_ps(e[h][t]);
            for (int j = 0; j < NV; j++) acc[h * NV + j] = _mm512_fmadd_ps(w, vv[j], acc[h * NV + j]);
        }
    }
    for (int h = 0; h < HB; h++)
        for (int j = 0; j < NV; j++) _mm512_storeu_ps(out + (size_t)(h * NV + j) * 16, acc[h * NV + j]);
}

/* The kernel for a head size of 16 * NV (NV constant where it is called,
 * so every loop over a head's vectors unrolls): chunk by chunk, the scores
 * of all nh heads, their softmax step, then the values summed by blocks
 * of heads whose sums fit in PV_REGS registers. */
AI void attn_nv(const float *q, int nh, const uint16_t *k, const uint16_t *v, int n_keys, float scale, float *out, const int NV) {
    const int hd = 16 * NV, hb_max = PV_REGS / NV < PV_HEADS ? PV_REGS / NV : PV_HEADS;
    float s[ATTN_MAX_HEADS][ATTN_CHUNK], mx[ATTN_MAX_HEADS], sum[ATTN_MAX_HEADS], corr[ATTN_MAX_HEADS];
    for (int h = 0; h < nh; h++) {
        mx[h] = -INFINITY;
        sum[h] = 0.0f;
        for (int j = 0; j < NV; j++) _mm512_storeu_ps(out + (size_t)h * (size_t)hd + 16 * j, _mm512_setzero_ps());
    }
    /* heads per value block: as even as hb_max allows (7 heads of 64: 4 + 3, not 6 + 1) */
    const int n_blocks = (nh + hb_max - 1) / hb_max, per_block = (nh + n_blocks - 1) / n_blocks;
    for (int t0 = 0; t0 < n_keys; t0 += ATTN_CHUNK) {
        const int nt = n_keys - t0 < ATTN_CHUNK ? n_keys - t0 : ATTN_CHUNK;
        chunk_scores(q, nh, k + (size_t)t0 * (size_t)hd, nt, scale, s, NV);
        for (int h = 0; h < nh; h++) corr[h] = chunk_softmax(s[h], nt, &mx[h], &sum[h]);
        const uint16_t *vc = v + (size_t)t0 * (size_t)hd;
        for (int h0 = 0; h0 < nh; h0 += per_block) {
            const int hb = nh - h0 < per_block ? nh - h0 : per_block;
            float *o = out + (size_t)h0 * (size_t)hd;
            /* HB constant in each call, so the sums stay in registers;
             * hb * NV <= PV_REGS always holds, and the conditions (constant
             * too) keep the larger blocks from being compiled for large NV */
            switch (hb) {
            case 1: chunk_values(o, s + h0, corr + h0, vc, nt, NV, 1); break;
            case 2: if (2 * NV <= PV_REGS) chunk_values(o, s + h0, corr + h0, vc, nt, NV, 2); break;
            case 3: if (3 * NV <= PV_REGS) chunk_values(o, s + h0, corr + h0, vc, nt, NV, 3); break;
            case 4: if (4 * NV <= PV_REGS) chunk_values(o, s + h0, corr + h0, vc, nt, NV, 4); break;
            case 5: if (5 * NV <= PV_REGS) chunk_values(o, s + h0, corr + h0, vc, nt, NV, 5); break;
            default: if (6 * NV <= PV_REGS) chunk_values(o, s + h0, corr + h0, vc, nt, NV, 6); break;
            }
        }
    }
    for (int h = 0; h < nh; h++) {
        __m512 inv = _mm512_set1_ps(1.0f / sum[h]);
        for (int j = 0; j < NV; j++)
            _mm512_storeu_ps(out + (size_t)h * (size_t)hd + 16 * j, _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)h * (size_t)hd + 16 * j), inv));
    }
}

void attn_f16_avx512(const float *q, int nh, const uint16_t *k, const uint16_t *v, int n_keys, int hd, float scale, float *out) {
    assert(hd % 16 == 0 && hd <= ATTN_MAX_HD && nh >= 1 && nh <= ATTN_MAX_HEADS && n_keys >= 1);
#define NV_CASE(n) \
    case n: attn_nv(q, nh, k, v, n_keys, scale, out, n); break;
    switch (hd / 16) { /* one instance per head size (64 and 128 the common ones) */
        NV_CASE(1) NV_CASE(2) NV_CASE(3) NV_CASE(4) NV_CASE(5) NV_CASE(6) NV_CASE(7) NV_CASE(8)
        NV_CASE(9) NV_CASE(10) NV_CASE(11) NV_CASE(12) NV_CASE(13) NV_CASE(14) NV_CASE(15) NV_CASE(16)
    }
#undef NV_CASE
}
