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
#define PV_REGS 24     /* registers for the value sums of a block of rows */
#define PV_ROWS 6      /* most rows in one such block */

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

/* Scores of a chunk for nr rows (queries at q, 16 * NV floats each):
 * s[r][t] = scale * q_r . k_t for the nt <= ATTN_CHUNK keys at k (first
 * key number chunk0), 16 keys at a time: their NV vectors each converted
 * once into kf and shared by all rows; -inf where row r does not see the
 * key (key number >= lim[r]) and past nt (to a multiple of 16). */
AI void chunk_scores(const float *q, int nr, const int *lim, const uint16_t *k, int chunk0, int nt, float scale, float (*s)[ATTN_CHUNK],
                     const int NV) {
    float kf[KEYS][ATTN_MAX_HD];
    for (int t0 = 0; t0 < nt; t0 += KEYS) {
        const int n16 = nt - t0 < KEYS ? nt - t0 : KEYS;
        for (int t = 0; t < KEYS; t++)
            for (int j = 0; j < NV; j++) {
                __m512 kk = _mm512_setzero_ps(); /* past the last key: zeros */
                if (t < n16) kk = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(k + (size_t)(t0 + t) * 16 * NV + 16 * j)));
                _mm512_storeu_ps(kf[t] + 16 * j, kk);
            }
        for (int r = 0; r < nr; r++) {
            const int seen = lim[r] - chunk0; /* keys of the chunk the row sees */
            const __mmask16 live = seen > t0 ? tail16(seen, t0) : (__mmask16)0;
            const float *qr = q + (size_t)r * 16 * NV;
            __m512 p[KEYS];
            for (int t = 0; t < KEYS; t++) {
                p[t] = _mm512_mul_ps(_mm512_loadu_ps(qr), _mm512_loadu_ps(kf[t]));
                for (int j = 1; j < NV; j++) p[t] = _mm512_fmadd_ps(_mm512_loadu_ps(qr + 16 * j), _mm512_loadu_ps(kf[t] + 16 * j), p[t]);
            }
            _mm512_storeu_ps(s[r] + t0, _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), live, hsum16(p), _mm512_set1_ps(scale)));
        }
    }
}

/* The online softmax step of one row over a chunk's scores (s, nt of them,
 * -inf padded to a multiple of 16): the new running maximum *mx, the
 * weights s[t] <- e^(s[t] - max) (0 past nt and where the score is -inf),
 * the running sum *sum rescaled and increased. Returns the factor
 * e^(old max - new max) by which what was summed before must be scaled (0
 * on the first chunk). */
AI float chunk_softmax(float *s, int nt, float *mx, float *sum) {
    __m512 m = _mm512_set1_ps(*mx);
    for (int t = 0; t < nt; t += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + t));
    const float mnew = _mm512_reduce_max_ps(m), corr = expf(*mx - mnew);
    const __m512 mv = _mm512_set1_ps(mnew);
    __m512 acc = _mm512_setzero_ps();
    for (int t = 0; t < nt; t += 16) {
        const __m512 st = _mm512_loadu_ps(s + t); /* exp512 clamps -inf to e^-87: mask it */
        const __mmask16 live = tail16(nt, t) & _mm512_cmp_ps_mask(st, _mm512_set1_ps(-INFINITY), _CMP_GT_OQ);
        __m512 e = _mm512_maskz_mov_ps(live, exp512(_mm512_sub_ps(st, mv)));
        _mm512_storeu_ps(s + t, e);
        acc = _mm512_add_ps(acc, e);
    }
    *sum = *sum * corr + _mm512_reduce_add_ps(acc);
    *mx = mnew;
    return corr;
}

/* o_r = o_r * corr_r + sum_t e[r][t] v_t for HB rows (o, e and corr start
 * at the block's first row; o's rows 16 * NV floats each, consecutive):
 * the HB x NV sums stay in registers while the chunk's values stream
 * past, each value vector converted once for all HB rows. */
AI void chunk_values(float *o, const float (*e)[ATTN_CHUNK], const float *corr, const uint16_t *v, int nt, const int NV, const int HB) {
    __m512 acc[PV_REGS];
    for (int h = 0; h < HB; h++)
        for (int j = 0; j < NV; j++) acc[h * NV + j] = _mm512_mul_ps(_mm512_load_ps(o + (size_t)(h * NV + j) * 16), _mm512_set1_ps(corr[h]));
    for (int t = 0; t < nt; t++) {
        __m512 vv[ATTN_MAX_HD / 16];
        for (int j = 0; j < NV; j++) vv[j] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + (size_t)t * 16 * NV + 16 * j)));
        for (int h = 0; h < HB; h++) {
            const __m512 w = _mm512_set1_ps(e[h][t]);
            for (int j = 0; j < NV; j++) acc[h * NV + j] = _mm512_fmadd_ps(w, vv[j], acc[h * NV + j]);
        }
    }
    for (int h = 0; h < HB; h++)
        for (int j = 0; j < NV; j++) _mm512_store_ps(o + (size_t)(h * NV + j) * 16, acc[h * NV + j]);
}

/* The kernel for a head size of 16 * NV (NV constant where it is called,
 * so every loop over a row's vectors unrolls). Rows are ordered token by
 * token (row r = token r / nh, head r % nh), so the rows that see no key
 * of a chunk are the first few; each chunk works on the others only:
 * their scores, their softmax step, then their values summed by blocks of
 * rows whose sums fit in PV_REGS registers (as even as the limit allows:
 * 7 rows of 64 go 4 + 3, not 6 + 1). A row ends up with exactly the
 * chunks, scores, weights and sums it would have had alone. */
AI void attn_nv(const attn_f16_tile *a, const int NV) {
    const int hd = 16 * NV, nh = a->nh, nr = a->n_tok * nh, n_keys_max = a->n_keys + a->n_tok - 1;
    const int hb_max = PV_REGS / NV < PV_ROWS ? PV_REGS / NV : PV_ROWS;
    _Alignas(64) float qr[ATTN_MAX_FLOATS], o[ATTN_MAX_FLOATS];
    float s[ATTN_MAX_ROWS][ATTN_CHUNK], mx[ATTN_MAX_ROWS], sum[ATTN_MAX_ROWS], corr[ATTN_MAX_ROWS];
    int lim[ATTN_MAX_ROWS];
    for (int r = 0; r < nr; r++) {
        const float *q = a->q + (size_t)(r / nh) * a->q_stride + (size_t)(r % nh) * (size_t)hd;
        for (int j = 0; j < NV; j++) {
            _mm512_store_ps(qr + (size_t)r * (size_t)hd + 16 * j, _mm512_loadu_ps(q + 16 * j));
            _mm512_store_ps(o + (size_t)r * (size_t)hd + 16 * j, _mm512_setzero_ps());
        }
        lim[r] = a->n_keys + r / nh;
        mx[r] = -INFINITY;
        sum[r] = 0.0f;
    }
    for (int t0 = 0; t0 < n_keys_max; t0 += ATTN_CHUNK) {
        const int nt = n_keys_max - t0 < ATTN_CHUNK ? n_keys_max - t0 : ATTN_CHUNK;
        /* the first row whose token sees a key of this chunk (lim > t0) */
        const int first_tok = t0 - a->n_keys + 1 > 0 ? t0 - a->n_keys + 1 : 0, r0 = first_tok * nh, n_live = nr - r0;
        chunk_scores(qr + (size_t)r0 * (size_t)hd, n_live, lim + r0, a->k + (size_t)t0 * (size_t)hd, t0, nt, a->scale, s + r0, NV);
        for (int r = r0; r < nr; r++) corr[r] = chunk_softmax(s[r], nt, &mx[r], &sum[r]);
        const uint16_t *vc = a->v + (size_t)t0 * (size_t)hd;
        const int n_blocks = (n_live + hb_max - 1) / hb_max, per_block = (n_live + n_blocks - 1) / n_blocks;
        for (int r = r0; r < nr; r += per_block) {
            float *orow = o + (size_t)r * (size_t)hd;
            /* HB constant in each call, so the sums stay in registers;
             * hb * NV <= PV_REGS always holds, and the conditions (constant
             * too) keep the larger blocks from being compiled for large NV */
            switch (nr - r < per_block ? nr - r : per_block) {
            case 1: chunk_values(orow, s + r, corr + r, vc, nt, NV, 1); break;
            case 2: if (2 * NV <= PV_REGS) chunk_values(orow, s + r, corr + r, vc, nt, NV, 2); break;
            case 3: if (3 * NV <= PV_REGS) chunk_values(orow, s + r, corr + r, vc, nt, NV, 3); break;
            case 4: if (4 * NV <= PV_REGS) chunk_values(orow, s + r, corr + r, vc, nt, NV, 4); break;
            case 5: if (5 * NV <= PV_REGS) chunk_values(orow, s + r, corr + r, vc, nt, NV, 5); break;
            default: if (6 * NV <= PV_REGS) chunk_values(orow, s + r, corr + r, vc, nt, NV, 6); break;
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        const __m512 inv = _mm512_set1_ps(1.0f / sum[r]);
        float *out = a->out + (size_t)(r / nh) * a->out_stride + (size_t)(r % nh) * (size_t)hd;
        for (int j = 0; j < NV; j++) _mm512_storeu_ps(out + 16 * j, _mm512_mul_ps(_mm512_load_ps(o + (size_t)r * (size_t)hd + 16 * j), inv));
    }
}

void attn_f16_avx512(const attn_f16_tile *a) {
    assert(a->hd % 16 == 0 && a->hd <= ATTN_MAX_HD && a->nh >= 1 && a->nh <= ATTN_MAX_HEADS && a->n_tok >= 1 &&
           a->n_tok <= attn_max_tokens(a->nh, a->hd) && a->n_keys >= 1);
#define NV_CASE(n) \
    case n: attn_nv(a, n); break;
    switch (a->hd / 16) { /* one instance per head size (64 and 128 the common ones) */
        NV_CASE(1) NV_CASE(2) NV_CASE(3) NV_CASE(4) NV_CASE(5) NV_CASE(6) NV_CASE(7) NV_CASE(8)
        NV_CASE(9) NV_CASE(10) NV_CASE(11) NV_CASE(12) NV_CASE(13) NV_CASE(14) NV_CASE(15) NV_CASE(16)
    }
#undef NV_CASE
}
