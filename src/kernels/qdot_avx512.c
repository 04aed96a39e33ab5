/* qdot_avx512.c - AVX-512 (F, BW, VL, DQ, VNNI) kernels. Compiled with
 * those instruction sets enabled; called only when cpu_level() allows.
 *
 * The integer kernels compute a tile of R weight rows x T activation rows
 * at once: each weight block is unpacked once per tile and each activation
 * block loaded once per tile, so the unpacking cost is shared T ways and
 * the loads R ways. */
#include "kernels/qdot.h"

#include <immintrin.h>
#include <string.h>

#include "formats/ggml_types.h"
#include "kernels/qdot_tile.h"
#include "kernels/qdot_unpack512.h"
#include "kernels/quants.h"

#define AI static inline __attribute__((always_inline))

AI float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

AI uint16_t rd16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* The scales of blocks at p0 and p1 (f16) as 16 floats: lanes 0-7 and 8-15. */
AI __m512 scale_pair(const uint8_t *p0, const uint8_t *p1) {
    __m256i h = _mm256_set_m128i(_mm_set1_epi16((short)rd16(p1)), _mm_set1_epi16((short)rd16(p0)));
    return _mm512_cvtph_ps(h);
}

/* Two consecutive blocks (b, b+1) of a 32-block type, as 64 signed weights
 * in element order; *d gets their scales. */
AI __m512i load_pair(uint32_t wtype, const uint8_t *b, __m512 *d) {
    if (wtype == GGML_TYPE_Q8_0) {
        *d = scale_pair(b, b + 34);
        __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)(b + 2));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(b + 36));
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (wtype == GGML_TYPE_Q4_0) {
        *d = scale_pair(b, b + 18);
        __m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)(b + 2));
        __m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(b + 20));
        __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(a0), a1, 1);
        __m256i lo = _mm256_and_si256(y, m4), hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4);
        __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); /* [b.lo, b1.lo, b.hi, b1.hi] */
        z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));           /* [b.lo, b.hi, b1.lo, b1.hi] */
        return _mm512_sub_epi8(z, _mm512_set1_epi8(8));
    }
    /* Q5_0: {f16 d; u8 qh[4]; u8 qs[16]}, 22 bytes */
    *d = scale_pair(b, b + 22);
    __m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)(b + 6));
    __m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(b + 28));
    __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(a0), a1, 1);
    __m256i lo = _mm256_and_si256(y, m4), hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
    uint32_t h0, h1;
    memcpy(&h0, b + 2, 4);
    memcpy(&h1, b + 24, 4);
    __mmask64 high = (__mmask64)h0 | ((__mmask64)h1 << 32);
    /* value = (q | h << 4) - 16: subtract 16 where the fifth bit is clear */
    return _mm512_mask_sub_epi8(z, ~high, z, _mm512_set1_epi8(16));
}

/* The scalar reference for one block (the odd last block of a row). */
static float block_dot(uint32_t wtype, const uint8_t *b, const uint8_t *q, float da) {
    float wf[32];
    dequantize_row(wtype, b, wf, 32);
    float s = 0.0f;
    for (int i = 0; i < 32; i++) s += wf[i] * (float)((int)q[i] - 128);
    return s * da;
}

/* A tile of R x T for Q4_0 / Q5_0 / Q8_0 weights and QDOT_ACT_Q8B rows. */
#define PREFETCH_ROWS 8 /* row-major tiles: fetch the rows two tiles below, at the current block */

/* Prefetches len bytes at address a into L1, one hint per cache line (a
 * hint never faults, so a may lie past the matrix: callers compute it as
 * an integer, not by pointer arithmetic beyond the object). */
AI void prefetch_span(uintptr_t a, size_t len) {
    for (size_t o = 0; o < len; o += 64) _mm_prefetch((const char *)(a + o), _MM_HINT_T0);
}

AI void tile_q8b(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n,
                 float *out, size_t ldo, const int R, const int T) {
    const size_t bsz = qdot_block_bytes(wtype);
    const int64_t nb = n / 32;
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    for (int64_t b = 0; b + 1 < nb; b += 2) {
        __m512i wq[4], negc[4];
        __m512 dw[4];
        for (int r = 0; r < R; r++) {
            prefetch_span((uintptr_t)(w + (size_t)r * w_stride + (size_t)b * bsz) + PREFETCH_ROWS * w_stride, 2 * bsz);
            wq[r] = load_pair(wtype, w + (size_t)r * w_stride + (size_t)b * bsz, &dw[r]);
            /* activations are stored +128: remove 128 * sum(w) per lane */
            negc[r] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), c80, wq[r]));
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *row = act + (size_t)t * act_stride;
            __m512i a = _mm512_loadu_si512((const void *)(row + 32 * b));
            __m512 da = _mm512_loadu_ps((const float *)(const void *)(row + n) + 8 * b);
            for (int r = 0; r < R; r++) {
                __m512i s = _mm512_dpbusd_epi32(negc[r], a, wq[r]);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], da), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            float s = hsum512(acc[r][t]);
            if (nb & 1) {
                const uint8_t *row = act + (size_t)t * act_stride;
                s += block_dot(wtype, w + (size_t)r * w_stride + (size_t)(nb - 1) * bsz, row + 32 * (nb - 1),
                               ((const float *)(const void *)(row + n))[8 * (nb - 1)]);
            }
            out[(size_t)t * ldo + (size_t)r] = s;
        }
}

/* K types (blocks of 256). A super-block's scales become one vector of
 * 16-bit words, sw; the scale of each pair of products in a 64-element
 * group p, and the offset of each 16-element sub-block, are picked from it
 * with the index tables below.
 *   Q4_K: sw = [sc0..sc7, m0..m7] (the 6-bit scales and mins of the eight
 *         32-element sub-blocks); pair i of group p has scale 2p + i/16,
 *         16-sub-block j offset m at 8 + j/2.
 *   Q6_K: sw = [sc0..sc15] (signed 8-bit, per 16 elements); pair i of group
 *         p has scale 4p + i/8, sub-block j offset sc at j. */
static const uint16_t k4_pair_idx[4][32] = {
#define ROW(p) {2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p,2*p, \
                2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1,2*p+1}
    ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
};
static const uint16_t k6_pair_idx[4][32] = {
#define ROW(p) {4*p,4*p,4*p,4*p,4*p,4*p,4*p,4*p, 4*p+1,4*p+1,4*p+1,4*p+1,4*p+1,4*p+1,4*p+1,4*p+1, \
                4*p+2,4*p+2,4*p+2,4*p+2,4*p+2,4*p+2,4*p+2,4*p+2, 4*p+3,4*p+3,4*p+3,4*p+3,4*p+3,4*p+3,4*p+3,4*p+3}
    ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
};
static const uint16_t k4_min_idx[32] = {8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15};

/* The scale words sw of super-block b (see above) and its two factors:
 * value = d * scale * q - dmin * offset. */
AI __m512i kscales(uint32_t wtype, const uint8_t *b, float *d, float *dmin) {
    if (wtype == GGML_TYPE_Q4_K) {
        uint8_t sm[16];
        k4_scales_unpack(b + 4, sm, sm + 8);
        *d = _cvtsh_ss(rd16(b));
        *dmin = _cvtsh_ss(rd16(b + 2));
        return _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)sm)));
    }
    *d = _cvtsh_ss(rd16(b + 208));
    *dmin = 32.0f * *d;
    return _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 192))));
}

/* The unsigned weights of groups 2h and 2h+1 (elements 128h..128h+127) of
 * super-block b, 64 per vector: 0..15 (Q4_K) or 0..63 (Q6_K). */
AI void kgroup_pair(uint32_t wtype, const uint8_t *b, int h, __m512i g[2]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if (wtype == GGML_TYPE_Q4_K) {
        /* 32 bytes per group: elements 0-31 in the low nibbles, 32-63 in the high */
        for (int k = 0; k < 2; k++) {
            __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16 + 32 * (2 * h + k)));
            g[k] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(y), _mm256_srli_epi16(y, 4), 1), m4);
        }
        return;
    }
    /* Q6_K: 4 low bits from ql (64 bytes per 128 elements: group 2h in the
     * low nibbles, 2h+1 in the high ones), 2 high bits from qh (32 bytes
     * per 128 elements; H01 = [qh, qh >> 2] puts the bits of elements 0-63
     * of group 2h at bits 0-1 and those of group 2h+1 at bits 4-5). The
     * two groups share their loads and H01; (x & 0x0F) | y is one ternary
     * logic instruction. */
    __m512i L = _mm512_loadu_si512((const void *)(b + 64 * h));
    __m256i H = _mm256_loadu_si256((const __m256i *)(const void *)(b + 128 + 32 * h));
    __m512i H01 = _mm512_inserti64x4(_mm512_castsi256_si512(H), _mm256_srli_epi16(H, 2), 1);
    __m512i hi0 = _mm512_slli_epi16(_mm512_and_si512(H01, _mm512_set1_epi8(0x03)), 4);
    __m512i hi1 = _mm512_and_si512(H01, _mm512_set1_epi8(0x30));
    g[0] = _mm512_ternarylogic_epi32(L, m4, hi0, 0xEA);                         /* (L & m4) | hi0 */
    g[1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(L, 4), m4, hi1, 0xEA); /* ((L >> 4) & m4) | hi1 */
}

/* The unsigned weights of group p of super-block b, given g, where the
 * pair-wise layouts keep the pair of the last call (p even loads it). */
AI __m512i kgroup(uint32_t wtype, const uint8_t *b, int p, __m512i g[2]) {
    if (!(p & 1)) kgroup_pair(wtype, b, p / 2, g);
    return g[p & 1];
}

/* acc[t] += the dot products of super-block b of one weight row (at blk)
 * with block b of activation rows t < T. */
AI void kblock_dot(uint32_t wtype, const uint8_t *blk, const uint8_t *act, size_t act_stride, int64_t n, int64_t b,
                   __m512 *acc, const int T) {
    const uint16_t(*pair_idx)[32] = wtype == GGML_TYPE_Q4_K ? k4_pair_idx : k6_pair_idx;
    float d, dmin;
    __m512i sw = kscales(wtype, blk, &d, &dmin);
    __m512i isum[4];
    for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
    __m512i g[2];
    for (int p = 0; p < 4; p++) {
        __m512i q = kgroup(wtype, blk, p, g);
        __m512i sp = _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)pair_idx[p]), sw);
        for (int t = 0; t < T; t++) {
            __m512i a = _mm512_loadu_si512((const void *)(act + (size_t)t * act_stride + 256 * b + 64 * p));
            isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(q, a), sp);
        }
    }
    __m256i m16 = wtype == GGML_TYPE_Q4_K
                      ? _mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)k4_min_idx), sw))
                      : _mm512_castsi512_si256(sw);
    for (int t = 0; t < T; t++) {
        const uint8_t *row = act + (size_t)t * act_stride;
        float da = ((const float *)(const void *)(row + n))[b];
        __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)(row + n + 4 * (n / 256) + 32 * b));
        __m512i mo = _mm512_zextsi256_si512(_mm256_madd_epi16(m16, bs));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * da), acc[t]);
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mo), _mm512_set1_ps(dmin * da), acc[t]);
    }
}

/* The eight scales and eight mins of a Q4_K super-block as bytes
 * [sc0..sc7, m0..m7], from its first 16 bytes hdr (f16 d, f16 dmin, the 12
 * packed 6-bit scale bytes q[0..11] at 4..15): sc[j] = q[j] & 63,
 * m[j] = q[j+4] & 63 for j < 4; sc[j] = (q[j+4] & 15) | (q[j-4] >> 6) << 4,
 * m[j] = (q[j+4] >> 4) | (q[j] >> 6) << 4 for j >= 4 (as k4_scales_unpack,
 * in six vector instructions instead of a round trip through memory). */
AI __m128i k4_scales_decode(__m128i hdr) {
    /* dwords: q0-3, q8-11, q4-7, q8-11 (the low bits of each group of four) */
    __m128i a = _mm_shuffle_epi8(hdr, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
    /* dwords: -, q0-3, -, q4-7 (whose top two bits are the high bits of sc4-7, m4-7) */
    __m128i b = _mm_shuffle_epi8(hdr, _mm_setr_epi8(-128, -128, -128, -128, 4, 5, 6, 7, -128, -128, -128, -128, 8, 9, 10, 11));
    a = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)), _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    return _mm_ternarylogic_epi32(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030), a, 0xEA); /* (b & m) | a */
}

/* out[r] = the dot products of R consecutive Q4_K weight rows with one
 * QDOT_ACT_Q8K row (generation), one row after the other so the rows are
 * one sequential stream. Per super-block: the scales decoded in vector
 * registers and the offsets m[j] x (sum of the 32 activations of sub-block
 * j) as one 16-bit multiply-add of [m0, m0, m1, m1, ...] with the
 * 16-element sums. The float steps are kblock_dot's, in the same order,
 * so a token's result does not depend on whether it came alone or in a
 * batch (tests/models/test_batch.c). */
AI void q4k_rows_dot(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, int64_t n, float *out, const int R) {
    const int64_t nb = n / 256;
    const float *da = (const float *)(const void *)(act + n);
    const uint8_t *bsum = act + n + 4 * nb;
    const __m128i dup = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (int r = 0; r < R; r++) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * 144;
            prefetch_stream(blk, 144);
            __m128i hdr = _mm_loadu_si128((const __m128i *)(const void *)blk);
            __m128i sm = k4_scales_decode(hdr);
            __m512i sw = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sm));
            __m256i m16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm, dup));
            __m512i isum = _mm512_setzero_si512(), g[2];
            for (int p = 0; p < 4; p++) {
                __m512i q = kgroup(wtype, blk, p, g);
                __m512i sp = _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)k4_pair_idx[p]), sw);
                __m512i a = _mm512_loadu_si512((const void *)(act + 256 * b + 64 * p));
                isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q, a), sp);
            }
            __m512i mo = _mm512_zextsi256_si512(_mm256_madd_epi16(m16, _mm256_loadu_si256((const __m256i *)(const void *)(bsum + 32 * b))));
            __m128 dd = _mm_mul_ps(_mm_cvtph_ps(hdr), _mm_set1_ps(da[b])); /* d x da, dmin x da */
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_broadcastss_ps(dd), acc);
            acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mo), _mm512_permutexvar_ps(_mm512_set1_epi32(1), _mm512_castps128_ps512(dd)), acc);
        }
        out[r] = hsum512(acc);
    }
}

/* A tile of R x T for Q4_K / Q6_K weights and QDOT_ACT_Q8K rows. One token
 * (generation): one row after the other, so consecutive rows are one
 * sequential stream (prefetch_stream) and the
 * accumulator stays in a register. Several tokens: block by block across
 * the R rows, the activation blocks staying in L1 (measured faster for
 * prompts: 4096^2 x 512, 98 against 75-87 GMAC/s). */
AI void tile_q8k(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n,
                 float *out, size_t ldo, const int R, const int T) {
    const size_t bsz = qdot_block_bytes(wtype);
    const int64_t nb = n / 256;
    if (T == 1 && wtype == GGML_TYPE_Q4_K) {
        q4k_rows_dot(wtype, w, w_stride, act, n, out, R);
        return;
    }
    if (T == 1) {
        for (int r = 0; r < R; r++) {
            __m512 acc = _mm512_setzero_ps();
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * bsz;
                prefetch_stream(blk, bsz);
                kblock_dot(wtype, blk, act, act_stride, n, b, &acc, 1);
            }
            out[r] = hsum512(acc);
        }
        return;
    }
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + (size_t)b * bsz;
            prefetch_span((uintptr_t)blk + PREFETCH_ROWS * w_stride, bsz);
            kblock_dot(wtype, blk, act, act_stride, n, b, acc[r], T);
        }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) out[(size_t)t * ldo + (size_t)r] = hsum512(acc[r][t]);
}

/* ---- Q4_K in 16-row panels (QDOT_Q4_K16, see qdot.h) ------------------------------- */

/* The end of a 16-row panel super-block for one token: acc += d x da x
 * isum - dmin x da x mo, lane by lane (the float steps every token count
 * shares). */
AI __m512 k16_accumulate(__m512 acc, __m512i isum, __m512i mo, __m512 d, __m512 dmin, float da) {
    __m512 vda = _mm512_set1_ps(da);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, vda), acc);
    return _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mo), _mm512_mul_ps(dmin, vda), acc);
}

/* out[t * ldo + r] for the 16 rows of one panel and T <= 4 activation rows
 * (QDOT_ACT_Q8K). Lane r of every vector is row r: per 4 elements of a
 * sub-block one dpbusd of 16 rows' weights with the 4 activations
 * broadcast; per sub-block one multiply by the 16 rows' scales; the
 * offsets sum m x (activation sums of 32) as four 16-bit multiply-adds of
 * (m[2i], m[2i+1]) pairs per super-block. The high nibbles are used in
 * place (x & 0xF0, 16 x the value: no shift, which AVX-512 runs on one
 * port only on Intel cores), so the even sub-blocks' scales are taken x 16
 * and d / 16: the sums are 16 x the true ones (at most 2^29), and scaling
 * by a power of two leaves every rounding as it was. bench/kernels, one
 * thread, this host's Xeon: 37.0 -> 39.6 GB/s in L2 at 256 x 2048, 64
 * tokens 157.6 -> 163.7 GMAC/s (streaming from memory unchanged). The
 * same steps for every T, so a token's result does not depend on the
 * batch it came in. */
AI void tile_q4_k16(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int T) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const int64_t nb = n / 256;
    __m512 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *step = w + (size_t)b * 2304;
        if (T == 1) prefetch_stream_paced(step, 256); /* the scales' lines; the weights' lines one by one below */
        else prefetch_stream(step, 2304);               /* a batch re-reads the panel from cache */
        /* scales (dwords, per sub-block; the even ones x16: see above) and min pairs (words, per pair of sub-blocks) */
        __m512i sc[8], mp[4];
        unpack512_q4k16_scales(step, 4, sc, mp);
        __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)step)), _mm512_set1_ps(1.0f / 16));
        __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(step + 32)));
        __m512i isum[4];
        for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
        for (int g = 0; g < 4; g++) {
            __m512i ia[4], ib[4];
            for (int t = 0; t < T; t++) ia[t] = ib[t] = _mm512_setzero_si512();
            for (int k = 0; k < 8; k++) {
                if (T == 1) prefetch_stream_paced(step + 256 + 512 * g + 64 * k, 64);
                __m512i x = _mm512_loadu_si512((const void *)(step + 256 + 512 * g + 64 * k));
                __m512i lo = _mm512_and_si512(x, m4), hi = _mm512_andnot_si512(m4, x);
                for (int t = 0; t < T; t++) {
                    const uint8_t *a = act + (size_t)t * act_stride + 256 * b + 64 * g + 4 * k;
                    int32_t a0, a1;
                    memcpy(&a0, a, 4);
                    memcpy(&a1, a + 32, 4);
                    ia[t] = _mm512_dpbusd_epi32(ia[t], lo, _mm512_set1_epi32(a0));
                    ib[t] = _mm512_dpbusd_epi32(ib[t], hi, _mm512_set1_epi32(a1));
                }
            }
            for (int t = 0; t < T; t++)
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(ia[t], sc[2 * g]), _mm512_mullo_epi32(ib[t], sc[2 * g + 1])));
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *row = act + (size_t)t * act_stride;
            float da = ((const float *)(const void *)(row + n))[b];
            /* activation sums of the 8 sub-blocks of 32, as 4 (even, odd) word pairs */
            const uint8_t *bs = row + n + 4 * nb + 32 * b;
            __m128i s32 = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(const void *)bs), _mm_loadu_si128((const __m128i *)(const void *)(bs + 16)));
            int32_t pr[4];
            _mm_storeu_si128((__m128i *)(void *)pr, s32);
            __m512i mo = _mm512_setzero_si512();
            for (int i = 0; i < 4; i++) mo = _mm512_dpwssd_epi32(mo, mp[i], _mm512_set1_epi32(pr[i]));
            acc[t] = k16_accumulate(acc[t], isum[t], mo, d, dmin, da);
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ldo, acc[t]);
}

/* As tile_q4_k16 for QDOT_Q6_K16: the 6-bit values of quads u, u + 16,
 * u + 32, u + 48 from two low-bit vectors and one high-bit vector (one
 * ternary-logic merge each), one dpbusd per quad and token into the
 * accumulator of its 16-element sub-block; per sub-block one multiply by
 * the 16 rows' signed scales; the -32 offset as 32 d x sum_j sc_j x
 * (activation sum of sub-block j), eight 16-bit multiply-adds of
 * (sc[2i], sc[2i+1]) pairs. */
AI void tile_q6_k16(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int T) {
    const int64_t nb = n / 256;
    __m512 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *step = w + (size_t)b * 3360;
        if (T == 1) prefetch_stream_paced(step, 288); /* the scales' lines; each quad's three lines below */
        else prefetch_stream(step, 3360);               /* a batch re-reads the panel from cache */
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)step));
        __m512i isum[4];
        for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
        for (int s4 = 0; s4 < 4; s4++) { /* quads u = 4 s4 .. 4 s4 + 3: sub-blocks s4, s4 + 4, s4 + 8, s4 + 12 */
            __m512i sa[4][4];
            for (int t = 0; t < T; t++)
                for (int f = 0; f < 4; f++) sa[t][f] = _mm512_setzero_si512();
            for (int uu = 0; uu < 4; uu++) {
                const int u = 4 * s4 + uu;
                __m512i q[4];
                if (T == 1) prefetch_stream_paced(step + 288 + 192 * u, 192);
                unpack512_q6k16_quads(step, u, q);
                for (int t = 0; t < T; t++) {
                    const uint8_t *a = act + (size_t)t * act_stride + 256 * b;
                    for (int f = 0; f < 4; f++) { /* quad u + 16 f: elements 4u + 64 f .. +3 */
                        int32_t av;
                        memcpy(&av, a + 4 * u + 64 * f, 4);
                        sa[t][f] = _mm512_dpbusd_epi32(sa[t][f], q[f], _mm512_set1_epi32(av));
                    }
                }
            }
            for (int f = 0; f < 4; f++) {
                __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(step + 32 + 16 * (s4 + 4 * f))));
                for (int t = 0; t < T; t++) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(sa[t][f], sc));
            }
        }
        __m512i sp[8]; /* offsets: the scales as word pairs */
        unpack512_q6k16_scale_pairs(step, sp);
        __m512 dmin = _mm512_mul_ps(d, _mm512_set1_ps(32.0f));
        for (int t = 0; t < T; t++) {
            const uint8_t *row = act + (size_t)t * act_stride;
            const int32_t *bs = (const int32_t *)(const void *)(row + n + 4 * nb + 32 * b); /* (bsum[2i], bsum[2i+1]) */
            __m512i mo = _mm512_setzero_si512();
            for (int i = 0; i < 8; i++) mo = _mm512_dpwssd_epi32(mo, sp[i], _mm512_set1_epi32(bs[i]));
            acc[t] = k16_accumulate(acc[t], isum[t], mo, d, dmin, ((const float *)(const void *)(row + n))[b]);
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ldo, acc[t]);
}

/* out[t * ldo + r] for the 16 rows of a QDOT_Q4_0X16, QDOT_Q5_0X16 or
 * QDOT_Q8_0X16 panel and T <= 4 QDOT_ACT_Q8D rows. Lane r of every vector
 * is row r: per 4 elements one dpbusd of the 16 rows' unsigned weights with
 * the 4 activations broadcast; per block the accumulator is seeded with
 * -offset x the block's activation sum (8 for Q4_0 nibbles, 16 for Q5_0
 * values, 128 for Q8_0 values stored + 128), then one conversion and one
 * fma with the 16 rows' scales. Q5_0 ors each quad's fifth bits (bits 2v
 * and 2v + 1 of the block's fifth-bit vector, same byte) in as 16. The
 * same steps for every T. */
enum { X16_Q4_0 = GGML_TYPE_Q4_0, X16_Q8_0 = GGML_TYPE_Q8_0, X16_Q5_0 = GGML_TYPE_Q5_0 }; /* kinds: the file's types */
/* Steps g0..g1-1 of one panel (step g0 at w, the rest following it) into
 * acc[t]. */
AI void x16_steps(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, int64_t g0, int64_t g1, __m512 acc[4],
                  const int T, const int kind) {
    const int Q8 = kind == X16_Q8_0, Q5 = kind == X16_Q5_0;
    const size_t step_bytes = qdot_x16_step_bytes((uint32_t)kind), kstride = Q5 ? 320 : 256;
    const int32_t offset = Q8 ? 128 : Q5 ? 16 : 8;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *step = w + (size_t)(g - g0) * step_bytes;
        if (T == 1) prefetch_stream_paced(step, step_bytes);
        else prefetch_stream(step, step_bytes); /* a batch re-reads the panel from cache */
        for (int k = 0; k < 4; k++) {
            const int64_t b = 4 * g + k;
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(step + 32 * k)));
            __m512i is[4], js[4]; /* two chains per token: dpbusd's latency, not its throughput, bounds one */
            for (int t = 0; t < T; t++) {
                is[t] = _mm512_set1_epi32(-offset * ((const int32_t *)(const void *)(act + (size_t)t * act_stride + n + n / 8))[b]);
                js[t] = _mm512_setzero_si512();
            }
            if (Q8) {
                for (int v = 0; v < 8; v++) {
                    __m512i x = _mm512_loadu_si512((const void *)(step + 128 + 512 * k + 64 * v));
                    for (int t = 0; t < T; t++) {
                        int32_t a;
                        memcpy(&a, act + (size_t)t * act_stride + 32 * b + 4 * v, 4);
                        if (v & 1) js[t] = _mm512_dpbusd_epi32(js[t], x, _mm512_set1_epi32(a));
                        else is[t] = _mm512_dpbusd_epi32(is[t], x, _mm512_set1_epi32(a));
                    }
                }
            } else {
                const __m512i hv = Q5 ? _mm512_loadu_si512((const void *)(step + 128 + 320 * k + 256)) : m4;
                for (int v = 0; v < 4; v++) {
                    __m512i lo, hi;
                    unpack512_x16_quad(_mm512_loadu_si512((const void *)(step + 128 + kstride * k + 64 * v)), hv, v, Q5, &lo, &hi);
                    for (int t = 0; t < T; t++) {
                        int32_t a0, a1;
                        memcpy(&a0, act + (size_t)t * act_stride + 32 * b + 4 * v, 4);
                        memcpy(&a1, act + (size_t)t * act_stride + 32 * b + 16 + 4 * v, 4);
                        is[t] = _mm512_dpbusd_epi32(is[t], lo, _mm512_set1_epi32(a0));
                        js[t] = _mm512_dpbusd_epi32(js[t], hi, _mm512_set1_epi32(a1));
                    }
                }
            }
            for (int t = 0; t < T; t++) {
                float da = ((const float *)(const void *)(act + (size_t)t * act_stride + n))[b];
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(is[t], js[t])), _mm512_mul_ps(d, _mm512_set1_ps(da)), acc[t]);
            }
        }
    }
}

AI void tile_x16(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int T,
                 const int kind) {
    __m512 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    x16_steps(w, act, act_stride, n, 0, n / 128, acc, T, kind);
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ldo, acc[t]);
}

/* out[t * ldo + r] for the 64 rows of a QDOT_Q4_0X64, QDOT_Q5_0X64 or
 * QDOT_Q8_0X64 group (kind X16_Q4_0, X16_Q5_0 or X16_Q8_0) and T <= 4 rows: block by block, each
 * block's steps of the four panels in turn (the order they lie in), so the
 * block's activations stay in L1. */
AI void tile_x64(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int T,
                 const int kind) {
    const int64_t ns = n / 128;
    const size_t step_bytes = qdot_x16_step_bytes((uint32_t)kind);
    __m512 acc[4][4];
    for (int p = 0; p < 4; p++)
        for (int t = 0; t < T; t++) acc[p][t] = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < ns; c0 += QDOT_X64_BLOCK) {
        int64_t c1 = c0 + QDOT_X64_BLOCK < ns ? c0 + QDOT_X64_BLOCK : ns;
        for (int p = 0; p < 4; p++)
            x16_steps(w + step_bytes * (size_t)qdot_x64_step_at(p, c0, ns), act, act_stride, n, c0, c1, acc[p], T, kind);
    }
    for (int p = 0; p < 4; p++)
        for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ldo + 16 * p, acc[p][t]);
}
#define tile_q4_0x16(...) tile_x16(__VA_ARGS__, X16_Q4_0)
#define tile_q4_0x64(...) tile_x64(__VA_ARGS__, X16_Q4_0)
#define tile_q8_0x64(...) tile_x64(__VA_ARGS__, X16_Q8_0)
#define tile_q8_0x16(...) tile_x16(__VA_ARGS__, X16_Q8_0)
#define tile_q5_0x16(...) tile_x16(__VA_ARGS__, X16_Q5_0)
#define tile_q5_0x64(...) tile_x64(__VA_ARGS__, X16_Q5_0)

/* Walks whole panels of ROWS rows in tiles of up to 4 tokens. One-token
 * tiles are a function of their own: inlined beside the batched ones,
 * their paced prefetch loop cost a 512-token Q8_0 product 13-16%. */
#define PANEL_WALK_ROWS(NAME, TILE, ROWS)                                                                                 \
    static __attribute__((noinline)) void NAME##_one(const uint8_t *wp, const uint8_t *ap, size_t act_stride, int64_t n,  \
                                                     float *op, size_t ldo) {                                             \
        TILE(wp, ap, act_stride, n, op, ldo, 1);                                                                          \
    }                                                                                                                     \
    static void NAME(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n, \
                     float *out, size_t ldo, int nr, int nt, float *scratch) {                                           \
        (void)wtype;                                                                                                      \
        (void)scratch;                                                                                                    \
        for (int r = 0; r + (ROWS) <= nr; r += (ROWS))                                                                    \
            for (int t = 0; t < nt; t += 4) {                                                                             \
                const uint8_t *wp = w + (size_t)r * w_stride, *ap = act + (size_t)t * act_stride;                        \
                float *op = out + (size_t)t * ldo + (size_t)r;                                                            \
                switch (nt - t < 4 ? nt - t : 4) {                                                                        \
                case 1: NAME##_one(wp, ap, act_stride, n, op, ldo); break;                                                \
                case 2: TILE(wp, ap, act_stride, n, op, ldo, 2); break;                                                   \
                case 3: TILE(wp, ap, act_stride, n, op, ldo, 3); break;                                                   \
                default: TILE(wp, ap, act_stride, n, op, ldo, 4); break;                                                  \
                }                                                                                                         \
            }                                                                                                             \
    }
PANEL_WALK_ROWS(gemm_q4_k16, tile_q4_k16, 16)
PANEL_WALK_ROWS(gemm_q6_k16, tile_q6_k16, 16)
PANEL_WALK_ROWS(gemm_q8_0x16, tile_q8_0x16, 16)
PANEL_WALK_ROWS(gemm_q4_0x16, tile_q4_0x16, 16)
PANEL_WALK_ROWS(gemm_q5_0x16, tile_q5_0x16, 16)
PANEL_WALK_ROWS(gemm_q4_0x64, tile_q4_0x64, 64) /* 64-row groups */
PANEL_WALK_ROWS(gemm_q8_0x64, tile_q8_0x64, 64)
PANEL_WALK_ROWS(gemm_q5_0x64, tile_q5_0x64, 64)

/* ---- repacked Q4_0 / Q8_0 (see qdot.h) ---------------------------------------------- */

/* k_quad_idx[r][i] = 4r + i/4: lane i of panel row r takes the scale of
 * block i/4 of the step, found at 4r + i/4 among the step's 16 scales. */
static const int32_t k_quad_idx[4][16] = {
#define ROW(r) {4*r,4*r,4*r,4*r, 4*r+1,4*r+1,4*r+1,4*r+1, 4*r+2,4*r+2,4*r+2,4*r+2, 4*r+3,4*r+3,4*r+3,4*r+3}
    ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
};


/* A tile of one 4-row panel x T activation rows, repacked Q4_0 (Q5 = 0:
 * 288-byte steps) or Q5_0 (Q5 = 1: 352-byte steps, the fifth bits as two
 * byte masks per row added in as 16). Per step and (row, token): two
 * dpbusd into one accumulator seeded with the offset term (-8 or -16 x the
 * activation lane sums), one conversion, one scale product, one fma. */
AI void tile_q4_5r(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int T,
                   const int Q5) {
    const size_t step_bytes = Q5 ? 352 : 288;
    const __m512i m4 = _mm512_set1_epi8(0x0F), c16 = _mm512_set1_epi8(16);
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < n / 128; g++) { /* 128 elements: blocks 4g..4g+3 of each row */
        const uint8_t *step = w + (size_t)g * step_bytes;
        prefetch_stream(step, step_bytes);
        __m512 s16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(step + step_bytes - 32)));
        __m512i lo[4], hi[4];
        __m512 d[4];
        for (int r = 0; r < 4; r++) {
            __m512i x = _mm512_loadu_si512((const void *)(step + 64 * r));
            lo[r] = _mm512_and_si512(x, m4);
            hi[r] = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
            if (Q5) {
                uint64_t ka, kb;
                memcpy(&ka, step + 256 + 16 * r, 8);
                memcpy(&kb, step + 256 + 16 * r + 8, 8);
                lo[r] = _mm512_mask_add_epi8(lo[r], (__mmask64)ka, lo[r], c16);
                hi[r] = _mm512_mask_add_epi8(hi[r], (__mmask64)kb, hi[r], c16);
            }
            d[r] = _mm512_permutexvar_ps(_mm512_loadu_si512((const void *)k_quad_idx[r]), s16);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *row = act + (size_t)t * act_stride;
            __m512i a0 = _mm512_loadu_si512((const void *)(row + 128 * g)), a1 = _mm512_loadu_si512((const void *)(row + 128 * g + 64));
            __m512i c = _mm512_loadu_si512((const void *)(row + n + 64 * g));
            if (Q5) c = _mm512_add_epi32(c, c);
            __m512 da = _mm512_loadu_ps((const float *)(const void *)(row + n + n / 2) + 16 * g);
            for (int r = 0; r < 4; r++) {
                __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c, lo[r], a0), hi[r], a1);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d[r], da), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) out[(size_t)t * ldo + (size_t)r] = hsum512(acc[r][t]);
}
#define tile_q4_0r(...) tile_q4_5r(__VA_ARGS__, 0)
#define tile_q5_0r(...) tile_q4_5r(__VA_ARGS__, 1)

/* A tile of one 4-row panel x T activation rows, repacked Q8_0. dpbusd
 * multiplies unsigned by signed bytes: the activations are made unsigned
 * (+128) and 128 x the weights' lane sums, computed once per step and row,
 * seed the accumulators. */
AI void tile_q8_0r(const uint8_t *w, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo, const int T) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512(), c80 = _mm512_set1_epi8((char)0x80);
    for (int64_t g = 0; g < n / 128; g++) { /* 128 elements: blocks 4g..4g+3 of each row */
        const uint8_t *step = w + (size_t)g * 544;
        prefetch_stream(step, 544);
        __m512 s16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(step + 512)));
        __m512i wa[4], wb[4], negc[4];
        __m512 d[4];
        for (int r = 0; r < 4; r++) {
            wa[r] = _mm512_loadu_si512((const void *)(step + 128 * r));
            wb[r] = _mm512_loadu_si512((const void *)(step + 128 * r + 64));
            negc[r] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, c80, wa[r]), c80, wb[r]));
            d[r] = _mm512_permutexvar_ps(_mm512_loadu_si512((const void *)k_quad_idx[r]), s16);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *row = act + (size_t)t * act_stride;
            __m512i a0 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(row + 128 * g)), c80);
            __m512i a1 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(row + 128 * g + 64)), c80);
            __m512 da = _mm512_loadu_ps((const float *)(const void *)(row + n + n / 2) + 16 * g);
            for (int r = 0; r < 4; r++) {
                __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(negc[r], a0, wa[r]), a1, wb[r]);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d[r], da), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) out[(size_t)t * ldo + (size_t)r] = hsum512(acc[r][t]);
}

/* Walks whole panels (nr is a multiple of 4) in tiles of up to TT tokens. */
#define PANEL_WALK(NAME, TILE, TT)                                                                                        \
    static void NAME(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n, \
                     float *out, size_t ldo, int nr, int nt, float *scratch) {                                           \
        (void)wtype;                                                                                                      \
        (void)scratch;                                                                                                    \
        for (int r = 0; r + 4 <= nr; r += 4)                                                                              \
            for (int t = 0; t < nt; t += TT) {                                                                            \
                const uint8_t *wp = w + (size_t)r * w_stride, *ap = act + (size_t)t * act_stride;                        \
                float *op = out + (size_t)t * ldo + (size_t)r;                                                            \
                switch (nt - t < TT ? nt - t : TT) {                                                                      \
                case 1: TILE(wp, ap, act_stride, n, op, ldo, 1); break;                                                   \
                case 2: TILE(wp, ap, act_stride, n, op, ldo, 2); break;                                                   \
                case 3: TILE(wp, ap, act_stride, n, op, ldo, 3); break;                                                   \
                default: TILE(wp, ap, act_stride, n, op, ldo, 4); break;                                                  \
                }                                                                                                         \
            }                                                                                                             \
    }
PANEL_WALK(gemm_q4_0r, tile_q4_0r, 4)
PANEL_WALK(gemm_q5_0r, tile_q5_0r, 4)
PANEL_WALK(gemm_q8_0r, tile_q8_0r, 3)

/* Separate instantiations per weight type so each inlines its own unpacking. */
#define TILE_Q4_0(wt, ...) tile_q8b(GGML_TYPE_Q4_0, __VA_ARGS__)
#define TILE_Q5_0(wt, ...) tile_q8b(GGML_TYPE_Q5_0, __VA_ARGS__)
#define TILE_Q8_0(wt, ...) tile_q8b(GGML_TYPE_Q8_0, __VA_ARGS__)
TILE_WALK(gemm_q4_0, TILE_Q4_0, 4, 4)
TILE_WALK(gemm_q5_0, TILE_Q5_0, 4, 4)
TILE_WALK(gemm_q8_0, TILE_Q8_0, 4, 4)
#define TILE_Q4_K(wt, ...) tile_q8k(GGML_TYPE_Q4_K, __VA_ARGS__)
#define TILE_Q6_K(wt, ...) tile_q8k(GGML_TYPE_Q6_K, __VA_ARGS__)
TILE_WALK(gemm_q4_k, TILE_Q4_K, 4, 4)
TILE_WALK(gemm_q6_k, TILE_Q6_K, 4, 4)


float qdot_dot_f16_avx512(const float *a, const uint16_t *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(b + i))), acc);
    float s = hsum512(acc);
    for (; i < n; i++) s += a[i] * _cvtsh_ss(b[i]);
    return s;
}

void qdot_axpy_f16_avx512(float *y, float s, const uint16_t *x, int n) {
    __m512 vs = _mm512_set1_ps(s);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(x + i))),
                                                _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += s * _cvtsh_ss(x[i]);
}

float qdot_dot_f32_avx512(const float *a, const float *b, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    float s = hsum512(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* 16 values x times the inverse scale, rounded to nearest even (as lrintf)
 * and clamped to [-127, 127], as the scalar q8(). */
AI __m512i q8_round(__m512 x, __m512 vid) {
    return _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x, vid)), _mm512_set1_epi32(-127)),
                            _mm512_set1_epi32(127));
}

/* Quantizes 32 floats like the scalar code. Returns the scale. */
AI float quant32(const float *x, __m512i *q0, __m512i *q1) {
    __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    float id, d = qdot_q8_scale(_mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b))), &id);
    __m512 vid = _mm512_set1_ps(id);
    *q0 = q8_round(a, vid);
    *q1 = q8_round(b, vid);
    return d;
}

/* A QDOT_ACT_Q8K row (blocks of 256: one scale, 16-element sums), byte
 * for byte as the scalar code. */
static void quantize_q8k(const float *x, uint8_t *dst, int64_t n) {
    float *dl = (float *)(void *)(dst + n);
    int16_t *bsum = (int16_t *)(void *)(dst + n + 4 * (n / 256));
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + 256 * b;
        __m512 m = _mm512_setzero_ps();
        for (int g = 0; g < 16; g++) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xb + 16 * g)));
        float id;
        dl[b] = qdot_q8_scale(_mm512_reduce_max_ps(m), &id);
        __m512 vid = _mm512_set1_ps(id);
        for (int g = 0; g < 16; g++) {
            __m512i q = q8_round(_mm512_loadu_ps(xb + 16 * g), vid);
            _mm_storeu_si128((__m128i *)(void *)(dst + 256 * b + 16 * g), _mm512_cvtepi32_epi8(q));
            bsum[16 * b + g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
    }
}

/* The QDOT_ACT_Q8S, QDOT_ACT_Q8B, QDOT_ACT_Q8D and QDOT_ACT_Q8K rows, byte for byte as
 * the scalar code. */
void qdot_quantize_act_avx512(qdot_act f, const float *x, uint8_t *dst, int64_t n) {
    if (f == QDOT_ACT_Q8K) {
        quantize_q8k(x, dst, n);
        return;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        __m512i q0, q1;
        float d = quant32(x + 32 * b, &q0, &q1);
        __m128i p0 = _mm512_cvtepi32_epi8(q0), p1 = _mm512_cvtepi32_epi8(q1);
        __m256i q = _mm256_set_m128i(p1, p0);
        __m256 dv = _mm256_set1_ps(d);
        if (f == QDOT_ACT_Q8D) {
            _mm256_storeu_si256((__m256i *)(void *)(dst + 32 * b), q);
            ((float *)(void *)(dst + n))[b] = d;
            ((int32_t *)(void *)(dst + n + n / 8))[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            continue;
        }
        if (f == QDOT_ACT_Q8B) {
            _mm256_storeu_si256((__m256i *)(void *)(dst + 32 * b), _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
            _mm256_storeu_ps((float *)(void *)(dst + n) + 8 * b, dv);
            continue;
        }
        /* Q8S: values 0-15 to half A, 16-31 to half B of the block's step */
        uint8_t *stepq = dst + 128 * (b / 4) + 16 * (b % 4);
        _mm_storeu_si128((__m128i *)(void *)stepq, p0);
        _mm_storeu_si128((__m128i *)(void *)(stepq + 64), p1);
        /* lane l sums values 4l..4l+3 of both halves */
        __m256i s = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q); /* pairs */
        s = _mm256_madd_epi16(s, _mm256_set1_epi16(1));            /* quads: 0-3 from A, 4-7 from B */
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        _mm_storeu_si128((__m128i *)(void *)((int32_t *)(void *)(dst + n) + 4 * b), _mm_mullo_epi32(s4, _mm_set1_epi32(-8)));
        _mm_storeu_ps((float *)(void *)(dst + n + n / 2) + 4 * b, _mm256_castps256_ps128(dv));
    }
}

qdot_gemm_fn qdot_gemm_avx512(uint32_t wtype) {
    switch (wtype) {
    case GGML_TYPE_Q4_0: return gemm_q4_0;
    case GGML_TYPE_Q5_0: return gemm_q5_0;
    case GGML_TYPE_Q8_0: return gemm_q8_0;
    case GGML_TYPE_Q4_K: return gemm_q4_k;
    case GGML_TYPE_Q6_K: return gemm_q6_k;
    case QDOT_Q4_0R: return gemm_q4_0r;
    case QDOT_Q5_0R: return gemm_q5_0r;
    case QDOT_Q8_0R: return gemm_q8_0r;
    case QDOT_Q4_K16: return gemm_q4_k16;
    case QDOT_Q6_K16: return gemm_q6_k16;
    case QDOT_Q8_0X16: return gemm_q8_0x16;
    case QDOT_Q4_0X16: return gemm_q4_0x16;
    case QDOT_Q4_0X64: return gemm_q4_0x64;
    case QDOT_Q8_0X64: return gemm_q8_0x64;
    case QDOT_Q5_0X64: return gemm_q5_0x64;
    case QDOT_Q5_0X16: return gemm_q5_0x16;
    default: return NULL; /* the float path: qdot_gemm_get */
    }
}
