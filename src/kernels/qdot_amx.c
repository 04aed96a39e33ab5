/* qdot_amx.c - batched products of the Q8_0, Q4_0, Q5_0, Q4_K and Q6_K
 * 16-row panels (and 64-row groups) on Intel AMX tiles (AMX-TILE and AMX-INT8,
 * with the AVX-512 of CPU_LEVEL_AVX512). Compiled with those instruction
 * sets enabled; called only at CPU_LEVEL_AMX.
 *
 * A QDOT_Q8_0X16 block of 16 rows (qdot.h) is already the operand layout
 * the tile multiply wants for its second matrix: 8 lines of 64 bytes, line
 * v holding elements 4v..4v+3 of each of the 16 rows. So per block and per
 * 16 activation rows one TDPBSUD (signed activations x unsigned weights)
 * computes the 16 x 16 integer block dot products that the AVX-512 kernel
 * builds from 128 VNNI instructions: the activation tile is 16 rows of the
 * block's 32 bytes, read in place at the rows' stride; the weights are
 * read in place too (Q8_0, stored + 128) or unpacked to one byte per value
 * a step ahead (Q4_0 and Q5_0 nibbles, Q4_K's sub-blocks of 32, Q6_K's of
 * 16, whose tiles are configured for 16-value blocks). The
 * scales still differ per row and per activation row, so each block's 16 x
 * 16 sums are stored and taken into 16 accumulators (one per activation
 * row, lane r = weight row r) as the AVX-512 kernel takes its own: the
 * same operations in the same order, so the two give the same bits
 * (tests/kernels/test_qdot.c).
 *
 * Activation rows that do not fill a 16-row tile, and products of fewer
 * than 16 rows (a generated token), go to the AVX-512 kernels. */
#include "kernels/qdot.h"

#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "formats/ggml_types.h"
#include "kernels/qdot_unpack512.h"

#define AI static inline __attribute__((always_inline))

enum { AMX_ROWS = 16 }; /* activation rows per tile, and weight rows per panel */

/* The 64-byte operand of LDTILECFG (palette 1). */
typedef struct amx_tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16]; /* bytes per row of tile i */
    uint8_t rows[16];
} amx_tile_config;

/* Tiles for blocks of `len` values (32, or Q6_K's 16): 0 and 1 weights
 * (len / 4 x 64 bytes), 2 and 3 activations (16 x len), 4 to 7 sums (16 x
 * 16 i32): four blocks in a row use sums tiles 4 to 7 in turn, so two
 * blocks' multiplies run while the sums of the two before them are
 * converted. */
static void amx_configure(int len) {
    amx_tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 2; i++) {
        c.rows[i] = (uint8_t)(len / 4), c.colsb[i] = 64;
        c.rows[2 + i] = AMX_ROWS, c.colsb[2 + i] = (uint16_t)len;
    }
    for (int i = 4; i < 8; i++) c.rows[i] = AMX_ROWS, c.colsb[i] = 64;
    _tile_loadconfig(&c);
}

/* The tile intrinsics take tile numbers as literal digits: these pass
 * their arguments through one macro expansion first. */
#define TILE_LOAD(t, p, s) _tile_loadd(t, p, s)
#define TILE_STORE(t, p, s) _tile_stored(t, p, s)
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_DPBSUD(c, a, b) _tile_dpbsud(c, a, b)

/* The 16 x 16 block dot products of a block (weights of the panel at q,
 * one unsigned byte per value + offset, 64 bytes per 4 values) with the 16
 * activation rows whose block starts at a into sums, through tiles TW
 * (weights), TA (activations) and TC (sums): signed activations times
 * unsigned weights, so offset x the activation block's sum is still to be
 * taken off. */
#define AMX_BLOCK_DOTS(TW, TA, TC, q, a, act_stride, sums)                                                             \
    do {                                                                                                               \
        TILE_LOAD(TW, q, 64);                                                                                          \
        TILE_LOAD(TA, a, (long)(act_stride));                                                                          \
        TILE_ZERO(TC);                                                                                                 \
        TILE_DPBSUD(TC, TA, TW);                                                                                       \
        TILE_STORE(TC, sums, 64);                                                                                      \
    } while (0)

/* The activation side of every block for one tile of 16 activation rows,
 * gathered once so that converting a block's sums reads one line pair:
 * for block b, tab[32 b + t] = d_a of row t (f32) and tab[32 b + 16 + t] =
 * -offset x s_a of row t (i32; s_a the block's sum of activations, offset
 * what the weights are stored above their values). n / 32 blocks x 128
 * bytes = 4n bytes: the gemm's scratch. */
static void amx_gather_act(const uint8_t *act, size_t act_stride, int64_t n, uint32_t offset, uint32_t *tab) {
    for (int t = 0; t < AMX_ROWS; t++) {
        const uint8_t *row = act + (size_t)t * act_stride;
        for (int64_t b = 0; b < n / 32; b++) {
            int32_t sa;
            memcpy(&tab[32 * b + t], row + n + 4 * b, 4);
            memcpy(&sa, row + n + n / 8 + 4 * b, 4);
            tab[32 * b + 16 + t] = (uint32_t)sa * (0u - offset); /* -offset s_a, in wrapping arithmetic (no overflow: |s_a| <= 4064) */
        }
    }
}

/* acc[t] += cvt(sums[t] - offset s_a[t]) x (d x d_a[t]) for the 16 activation
 * rows of block b, tab the block's 32 entries of amx_gather_act. */
#define AMX_BLOCK_SCALE(sums, d, tab)                                                                                  \
    do {                                                                                                               \
        const __m512 d_ = (d);                                                                                         \
        AMX_ROW_SCALE(sums, d_, tab, 0), AMX_ROW_SCALE(sums, d_, tab, 1), AMX_ROW_SCALE(sums, d_, tab, 2);             \
        AMX_ROW_SCALE(sums, d_, tab, 3), AMX_ROW_SCALE(sums, d_, tab, 4), AMX_ROW_SCALE(sums, d_, tab, 5);             \
        AMX_ROW_SCALE(sums, d_, tab, 6), AMX_ROW_SCALE(sums, d_, tab, 7), AMX_ROW_SCALE(sums, d_, tab, 8);             \
        AMX_ROW_SCALE(sums, d_, tab, 9), AMX_ROW_SCALE(sums, d_, tab, 10), AMX_ROW_SCALE(sums, d_, tab, 11);           \
        AMX_ROW_SCALE(sums, d_, tab, 12), AMX_ROW_SCALE(sums, d_, tab, 13), AMX_ROW_SCALE(sums, d_, tab, 14);          \
        AMX_ROW_SCALE(sums, d_, tab, 15);                                                                              \
    } while (0)
#define AMX_ROW_SCALE(sums, d, tab, t)                                                                                 \
    (acc##t = _mm512_fmadd_ps(                                                                                         \
         _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_load_si512((const void *)((sums) + 16 * (t))),                     \
                                             _mm512_set1_epi32((int32_t)(tab)[16 + (t)]))),                            \
         _mm512_mul_ps(d, _mm512_set1_ps(tab_f32((tab) + (t)))), acc##t))

/* The f32 stored in the table entry at p. */
AI float tab_f32(const uint32_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* The four blocks of a Q4_0 or Q5_0 panel step (qdot.h) as Q8_0's
 * operand layout, one byte per value (value + 8 or + 16) into dst[4][512]:
 * line v of block k holds elements 4v..4v+3 of the 16 rows (the low
 * nibbles of quad vector v for v < 4, the high ones of v - 4 after), Q5_0's
 * fifth bits merged in as the AVX-512 kernel merges them. */
AI void amx_unpack_step(const uint8_t *step, uint8_t *dst, const int kind) {
    const int Q5 = kind == GGML_TYPE_Q5_0;
    for (int k = 0; k < 4; k++) {
        const uint8_t *q = step + 128 + (Q5 ? 320 : 256) * k;
        const __m512i hv = Q5 ? _mm512_loadu_si512((const void *)(q + 256)) : _mm512_setzero_si512();
        for (int v = 0; v < 4; v++) {
            __m512i lo, hi;
            unpack512_x16_quad(_mm512_loadu_si512((const void *)(q + 64 * v)), hv, v, Q5, &lo, &hi);
            _mm512_store_si512((void *)(dst + 512 * k + 64 * v), lo);
            _mm512_store_si512((void *)(dst + 512 * k + 256 + 64 * v), hi);
        }
    }
}

/* out[t * ldo + r] for the 16 rows of one panel of `kind` (the file's type:
 * Q8_0, Q4_0 or Q5_0) and 16 QDOT_ACT_Q8D rows (tab: their amx_gather_act
 * table). Step g of the panel lies at w + step_at(g) (qdot_x64_step_at for
 * a row of a 64-row group, else g) x its step bytes. Q8_0 blocks are
 * multiplied where they lie; Q4_0 and Q5_0 steps are unpacked one step
 * ahead of their multiplies, into a buffer the multiplies of the step
 * before have done reading: a tile load of bytes vector stores have only
 * just written waits for them (first version of the Q8_0 kernel). The
 * accumulators are 16 named variables: an array of them, written around
 * the tile stores (which clobber memory), stayed in memory. */
AI void amx_tile(const uint8_t *w, int p, int grouped, const uint8_t *act, size_t act_stride, int64_t n, const uint32_t *tab, float *out,
                 size_t ldo, const int kind) {
    const int Q8 = kind == GGML_TYPE_Q8_0;
    const size_t step_bytes = qdot_x16_step_bytes((uint32_t)kind);
    _Alignas(64) int32_t sums[4][AMX_ROWS * 16]; /* blocks 4g + k of step g in sums[k] */
    _Alignas(64) uint8_t unpacked[2][2048]; /* steps g and g + 1, by parity (Q4_0, Q5_0) */
    const int64_t ns = n / 128;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0, acc4 = acc0, acc5 = acc0, acc6 = acc0, acc7 = acc0;
    __m512 acc8 = acc0, acc9 = acc0, acc10 = acc0, acc11 = acc0, acc12 = acc0, acc13 = acc0, acc14 = acc0, acc15 = acc0;
#define STEP_AT(g) (w + step_bytes * (size_t)(grouped ? qdot_x64_step_at(p, g, ns) : (g)))
#define SCALE(k, step, b) AMX_BLOCK_SCALE(sums[k], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)((step) + 32 * (k)))), tab + 32 * (b))
#define BLOCK(k) (Q8 ? step + 128 + 512 * (k) : unpacked[g & 1] + 512 * (k))
    if (!Q8 && ns > 0) amx_unpack_step(STEP_AT(0), unpacked[0], kind);
    /* software pipelined: the multiplies of blocks 0 and 1 of a step are
     * issued before the sums of blocks 2 and 3 of the step before are
     * converted, and those of 2 and 3 before the sums of 0 and 1 are */
    const uint8_t *prev = NULL;
    for (int64_t g = 0; g < ns; g++) {
        const uint8_t *step = STEP_AT(g);
        const int64_t b = 4 * g;
        __asm__ volatile("" ::: "memory"); /* the unpacked step is in memory before the tile loads read it */
        AMX_BLOCK_DOTS(0, 2, 4, BLOCK(0), act + 32 * (b), act_stride, sums[0]);
        AMX_BLOCK_DOTS(1, 3, 5, BLOCK(1), act + 32 * (b + 1), act_stride, sums[1]);
        if (prev) {
            SCALE(2, prev, b - 2);
            SCALE(3, prev, b - 1);
        }
        AMX_BLOCK_DOTS(0, 2, 6, BLOCK(2), act + 32 * (b + 2), act_stride, sums[2]);
        AMX_BLOCK_DOTS(1, 3, 7, BLOCK(3), act + 32 * (b + 3), act_stride, sums[3]);
        if (!Q8 && g + 1 < ns) amx_unpack_step(STEP_AT(g + 1), unpacked[(g + 1) & 1], kind);
        SCALE(0, step, b);
        SCALE(1, step, b + 1);
        prev = step;
    }
    if (prev) {
        SCALE(2, prev, 4 * ns - 2);
        SCALE(3, prev, 4 * ns - 1);
    }
#undef BLOCK
#undef SCALE
#undef STEP_AT
    const __m512 accs[AMX_ROWS] = {acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15};
    for (int t = 0; t < AMX_ROWS; t++) _mm512_storeu_ps(out + (size_t)t * ldo, accs[t]);
}

static void amx_tile_q8_0(const uint8_t *w, int p, int grouped, const uint8_t *act, size_t act_stride, int64_t n, const uint32_t *tab,
                          float *out, size_t ldo) {
    amx_tile(w, p, grouped, act, act_stride, n, tab, out, ldo, GGML_TYPE_Q8_0);
}
static void amx_tile_q4_0(const uint8_t *w, int p, int grouped, const uint8_t *act, size_t act_stride, int64_t n, const uint32_t *tab,
                          float *out, size_t ldo) {
    amx_tile(w, p, grouped, act, act_stride, n, tab, out, ldo, GGML_TYPE_Q4_0);
}
static void amx_tile_q5_0(const uint8_t *w, int p, int grouped, const uint8_t *act, size_t act_stride, int64_t n, const uint32_t *tab,
                          float *out, size_t ldo) {
    amx_tile(w, p, grouped, act, act_stride, n, tab, out, ldo, GGML_TYPE_Q5_0);
}

/* One 16-row panel's tile of 16 activation rows: weights of the panel (p
 * of a 64-row group when grouped) at w, activations at act, their gathered
 * table tab; out[t * ldo + r]. */
typedef void (*amx_panel_fn)(const uint8_t *w, int p, int grouped, const uint8_t *act, size_t act_stride, int64_t n, const uint32_t *tab,
                             float *out, size_t ldo);
/* Gathers the table of 16 activation rows (amx_gather_act: arg the
 * weights' offset; amx_gather_act_k: arg the word pairs per super-block). */
typedef void (*amx_gather_fn)(const uint8_t *act, size_t act_stride, int64_t n, uint32_t arg, uint32_t *tab);

/* A qdot_gemm_fn's walk: whole 16-activation-row tiles by `panel`, tiles
 * configured for blocks of `len` values, the activation table gathered
 * once per tile into the gemm's scratch (4n bytes); the activation rows
 * left over by the AVX-512 kernel. */
static void amx_gemm_walk(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n, float *out,
                          size_t ldo, int nr, int nt, float *scratch, int len, amx_gather_fn gather, uint32_t arg, amx_panel_fn panel) {
    const int grouped = (wtype & QDOT_LAYOUT_MASK) == QDOT_GROUPS64, rows = grouped ? 64 : 16;
    const int nt16 = nt / AMX_ROWS * AMX_ROWS;
    assert(nr % rows == 0 && scratch != NULL); /* whole panels (qdot_panel_rows), and 4n bytes for the table */
    if (nt16 > 0) {
        amx_configure(len);
        uint32_t *tab = (uint32_t *)(void *)scratch;
        for (int t = 0; t < nt16; t += AMX_ROWS) {
            gather(act + (size_t)t * act_stride, act_stride, n, arg, tab);
            for (int r = 0; r + rows <= nr; r += rows)
                for (int p = 0; p < rows / 16; p++)
                    panel(w + (size_t)r * w_stride, p, grouped, act + (size_t)t * act_stride, act_stride, n, tab,
                          out + (size_t)t * ldo + (size_t)r + 16 * (size_t)p, ldo);
        }
        _tile_release();
    }
    if (nt16 < nt)
        qdot_gemm_avx512(wtype)(wtype, w, w_stride, act + (size_t)nt16 * act_stride, act_stride, n, out + (size_t)nt16 * ldo, ldo, nr,
                                nt - nt16, scratch);
}

/* The qdot_gemm_fn of the Q8_0, Q4_0 and Q5_0 16-row panels and 64-row
 * groups. */
static void gemm_x16_amx(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n, float *out,
                         size_t ldo, int nr, int nt, float *scratch) {
    const uint32_t type = wtype & QDOT_TYPE_MASK, offset = type == GGML_TYPE_Q8_0 ? 128 : type == GGML_TYPE_Q5_0 ? 16 : 8;
    amx_gemm_walk(wtype, w, w_stride, act, act_stride, n, out, ldo, nr, nt, scratch, 32, amx_gather_act, offset,
                  type == GGML_TYPE_Q8_0 ? amx_tile_q8_0 : type == GGML_TYPE_Q5_0 ? amx_tile_q5_0 : amx_tile_q4_0);
}

/* ---- Q4_K in 16-row panels (QDOT_Q4_K16) --------------------------------------------- */

/* The activation side of every super-block for one tile of 16 activation
 * rows (QDOT_ACT_Q8K), for a K-quant whose super-block end takes np word
 * pairs of activation sums (Q4_K 4: sums of 32 values; Q6_K 8: of 16):
 * for super-block b, 16 + 16 np words from tab + (16 + 16 np) b: d_a of
 * row t at t (f32), then for i < np at 16 + 16 i + t the pair of sums 2i
 * and 2i + 1 (low, high 16 bits), as the AVX-512 kernels take them. At
 * most 2.25n bytes: the gemm's scratch holds 4n. */
static void amx_gather_act_k(const uint8_t *act, size_t act_stride, int64_t n, uint32_t np, uint32_t *tab) {
    const int64_t nb = n / 256, per = 16 + 16 * (int64_t)np;
    const int k = 8 / (int)np; /* 16-value sums per sum */
    for (int t = 0; t < AMX_ROWS; t++) {
        const uint8_t *row = act + (size_t)t * act_stride;
        for (int64_t b = 0; b < nb; b++) {
            int16_t s16[16];
            memcpy(&tab[per * b + t], row + n + 4 * b, 4);
            memcpy(s16, row + n + 4 * nb + 32 * b, sizeof s16);
            for (uint32_t i = 0; i < np; i++) {
                uint16_t w[2] = {0, 0};
                for (int h = 0; h < 2; h++)
                    for (int m = 0; m < k; m++) w[h] = (uint16_t)(w[h] + (uint16_t)s16[k * (2 * i + h) + m]);
                tab[per * b + 16 + 16 * i + t] = w[0] | (uint32_t)w[1] << 16;
            }
        }
    }
}

/* The 8 sub-blocks of 32 of a Q4_K16 super-block (qdot.h) as the tile
 * multiply's operand layout, one byte per value (0..15), into dst[8][512]:
 * sub-block 2g from the low nibbles of group g's 8 quad vectors, 2g + 1
 * from the high ones. */
AI void amx_unpack_q4_k16(const uint8_t *step, uint8_t *dst) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int g = 0; g < 4; g++)
        for (int k = 0; k < 8; k++) {
            __m512i x = _mm512_loadu_si512((const void *)(step + 256 + 512 * g + 64 * k));
            _mm512_store_si512((void *)(dst + 1024 * g + 64 * k), _mm512_and_si512(x, m4));
            _mm512_store_si512((void *)(dst + 1024 * g + 512 + 64 * k), _mm512_and_si512(_mm512_srli_epi16(x, 4), m4));
        }
}

/* isum[t] += sums[t] x sc (16 rows' scales of one sub-block) for the 16
 * activation rows. */
#define AMX_SUB_SCALE(sums, sc)                                                                                        \
    do {                                                                                                               \
        const __m512i sc_ = (sc);                                                                                      \
        AMX_ISUM(sums, sc_, 0), AMX_ISUM(sums, sc_, 1), AMX_ISUM(sums, sc_, 2), AMX_ISUM(sums, sc_, 3);                \
        AMX_ISUM(sums, sc_, 4), AMX_ISUM(sums, sc_, 5), AMX_ISUM(sums, sc_, 6), AMX_ISUM(sums, sc_, 7);                \
        AMX_ISUM(sums, sc_, 8), AMX_ISUM(sums, sc_, 9), AMX_ISUM(sums, sc_, 10), AMX_ISUM(sums, sc_, 11);              \
        AMX_ISUM(sums, sc_, 12), AMX_ISUM(sums, sc_, 13), AMX_ISUM(sums, sc_, 14), AMX_ISUM(sums, sc_, 15);            \
    } while (0)
#define AMX_ISUM(sums, sc, t) (isum##t = _mm512_add_epi32(isum##t, _mm512_mullo_epi32(_mm512_load_si512((const void *)((sums) + 16 * (t))), sc)))

/* The end of a K-quant super-block for the 16 activation rows, in the
 * AVX-512 kernel's order: acc[t] += cvt(isum[t]) x (d x d_a) - cvt(mo) x
 * (dmin x d_a), mo the sum over i < np of the rows' word pairs[i] times
 * the activation sums' word pair i of row t. tb: the super-block's table
 * (d_a of row t at t, pair i of row t at 16 + 16 i + t). */
AI void amx_k_end(__m512 acc[AMX_ROWS], const __m512i isum[AMX_ROWS], const __m512i *pairs, const int np, const uint32_t *tb, __m512 d,
                  __m512 dmin) {
    for (int t = 0; t < AMX_ROWS; t++) {
        __m512i mo = _mm512_setzero_si512();
        for (int i = 0; i < np; i++) mo = _mm512_dpwssd_epi32(mo, pairs[i], _mm512_set1_epi32((int32_t)tb[16 + 16 * i + t]));
        const __m512 vda = _mm512_set1_ps(tab_f32(tb + t));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, vda), acc[t]);
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mo), _mm512_mul_ps(dmin, vda), acc[t]);
    }
}

/* out[t * ldo + r] for the 16 rows of one Q4_K16 panel and 16 QDOT_ACT_Q8K
 * rows (tab: their amx_gather_act_k table). Per sub-block of 32 one tile
 * multiply of the unpacked nibbles gives the 16 x 16 integer sums, which
 * the rows' 6-bit scales multiply into per-super-block integer sums; per
 * super-block the mins and the float steps as the AVX-512 kernel takes
 * them (which keeps its even scales and its d at 16 and 1/16 times these:
 * powers of two, so the products and their roundings are the same). The
 * next super-block is unpacked while the last sums are still in flight. */
static void amx_tile_q4_k16(const uint8_t *w, int p, int grouped, const uint8_t *act, size_t act_stride, int64_t n, const uint32_t *tab,
                            float *out, size_t ldo) {
    (void)p, (void)grouped; /* 16-row panels only */
    _Alignas(64) int32_t sums[4][AMX_ROWS * 16];
    _Alignas(64) uint8_t unpacked[2][4096]; /* super-blocks b and b + 1, by parity */
    __m512 acc[AMX_ROWS];
    const int64_t nb = n / 256;
    for (int t = 0; t < AMX_ROWS; t++) acc[t] = _mm512_setzero_ps();
    if (nb > 0) amx_unpack_q4_k16(w, unpacked[0]);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *step = w + (size_t)b * 2304, *u = unpacked[b & 1];
        const int64_t j = 8 * b; /* first sub-block */
        __m512i sc[8], mp[4];
        unpack512_q4k16_scales(step, 0, sc, mp);
        __m512i isum0 = _mm512_setzero_si512(), isum1 = isum0, isum2 = isum0, isum3 = isum0, isum4 = isum0, isum5 = isum0, isum6 = isum0,
                isum7 = isum0, isum8 = isum0, isum9 = isum0, isum10 = isum0, isum11 = isum0, isum12 = isum0, isum13 = isum0, isum14 = isum0,
                isum15 = isum0;
        __asm__ volatile("" ::: "memory"); /* the unpacked super-block is in memory before the tile loads read it */
        AMX_BLOCK_DOTS(0, 2, 4, u, act + 32 * (j), act_stride, sums[0]);
        AMX_BLOCK_DOTS(1, 3, 5, u + 512, act + 32 * (j + 1), act_stride, sums[1]);
        AMX_BLOCK_DOTS(0, 2, 6, u + 1024, act + 32 * (j + 2), act_stride, sums[2]);
        AMX_BLOCK_DOTS(1, 3, 7, u + 1536, act + 32 * (j + 3), act_stride, sums[3]);
        AMX_SUB_SCALE(sums[0], sc[0]);
        AMX_SUB_SCALE(sums[1], sc[1]);
        AMX_BLOCK_DOTS(0, 2, 4, u + 2048, act + 32 * (j + 4), act_stride, sums[0]);
        AMX_BLOCK_DOTS(1, 3, 5, u + 2560, act + 32 * (j + 5), act_stride, sums[1]);
        AMX_SUB_SCALE(sums[2], sc[2]);
        AMX_SUB_SCALE(sums[3], sc[3]);
        AMX_BLOCK_DOTS(0, 2, 6, u + 3072, act + 32 * (j + 6), act_stride, sums[2]);
        AMX_BLOCK_DOTS(1, 3, 7, u + 3584, act + 32 * (j + 7), act_stride, sums[3]);
        if (b + 1 < nb) amx_unpack_q4_k16(step + 2304, unpacked[(b + 1) & 1]);
        AMX_SUB_SCALE(sums[0], sc[4]);
        AMX_SUB_SCALE(sums[1], sc[5]);
        AMX_SUB_SCALE(sums[2], sc[6]);
        AMX_SUB_SCALE(sums[3], sc[7]);
        const __m512i isums[AMX_ROWS] = {isum0, isum1, isum2,  isum3,  isum4,  isum5,  isum6,  isum7,
                                         isum8, isum9, isum10, isum11, isum12, isum13, isum14, isum15};
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)step));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(step + 32)));
        amx_k_end(acc, isums, mp, 4, tab + 80 * b, d, dmin);
    }
    for (int t = 0; t < AMX_ROWS; t++) _mm512_storeu_ps(out + (size_t)t * ldo, acc[t]);
}

/* The qdot_gemm_fn of QDOT_Q4_K16. */
static void gemm_q4_k16_amx(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n,
                            float *out, size_t ldo, int nr, int nt, float *scratch) {
    amx_gemm_walk(wtype, w, w_stride, act, act_stride, n, out, ldo, nr, nt, scratch, 32, amx_gather_act_k, 4, amx_tile_q4_k16);
}

/* ---- Q6_K in 16-row panels (QDOT_Q6_K16) --------------------------------------------- */

/* The 64 quads of a Q6_K16 super-block (qdot.h) as the tile multiply's
 * operand layout, one byte per value (0..63), into dst[64][64]: quad c (of
 * all 16 rows) at 64 c, so sub-block j's 4 lines are at 256 j; the bits
 * merged as the AVX-512 kernel merges them. */
AI void amx_unpack_q6_k16(const uint8_t *step, uint8_t *dst) {
    for (int u = 0; u < 16; u++) {
        __m512i q[4];
        unpack512_q6k16_quads(step, u, q);
        for (int f = 0; f < 4; f++) _mm512_store_si512((void *)(dst + 64 * (u + 16 * f)), q[f]);
    }
}

/* The 16 rows' signed scales of sub-block j of the super-block at step. */
AI __m512i q6k_scales(const uint8_t *step, int j) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(step + 32 + 16 * j)));
}

/* out[t * ldo + r] for the 16 rows of one Q6_K16 panel and 16 QDOT_ACT_Q8K
 * rows (tab: their amx_gather_act_k table, 8 pairs): one tile multiply per
 * 16-value sub-block (tiles configured for 16), the rows' scales into
 * per-super-block integer sums, then the -32 offset and the float steps
 * of the AVX-512 kernel, in its order. */
static void amx_tile_q6_k16(const uint8_t *w, int p, int grouped, const uint8_t *act, size_t act_stride, int64_t n, const uint32_t *tab,
                            float *out, size_t ldo) {
    (void)p, (void)grouped; /* 16-row panels only */
    _Alignas(64) int32_t sums[4][AMX_ROWS * 16];
    _Alignas(64) uint8_t unpacked[2][4096]; /* super-blocks b and b + 1, by parity */
    __m512 acc[AMX_ROWS];
    const int64_t nb = n / 256;
    for (int t = 0; t < AMX_ROWS; t++) acc[t] = _mm512_setzero_ps();
    if (nb > 0) amx_unpack_q6_k16(w, unpacked[0]);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *step = w + (size_t)b * 3360, *u = unpacked[b & 1];
        const uint8_t *a = act + 256 * b; /* sub-block j of the activations at a + 16 j */
        __m512i isum0 = _mm512_setzero_si512(), isum1 = isum0, isum2 = isum0, isum3 = isum0, isum4 = isum0, isum5 = isum0, isum6 = isum0,
                isum7 = isum0, isum8 = isum0, isum9 = isum0, isum10 = isum0, isum11 = isum0, isum12 = isum0, isum13 = isum0, isum14 = isum0,
                isum15 = isum0;
        __asm__ volatile("" ::: "memory"); /* the unpacked super-block is in memory before the tile loads read it */
        for (int j = 0; j < 16; j += 4) { /* multiplies two sub-blocks ahead of the scaling, as amx_tile */
            AMX_BLOCK_DOTS(0, 2, 4, u + 256 * j, a + 16 * j, act_stride, sums[0]);
            AMX_BLOCK_DOTS(1, 3, 5, u + 256 * (j + 1), a + 16 * (j + 1), act_stride, sums[1]);
            if (j > 0) {
                AMX_SUB_SCALE(sums[2], q6k_scales(step, j - 2));
                AMX_SUB_SCALE(sums[3], q6k_scales(step, j - 1));
            }
            AMX_BLOCK_DOTS(0, 2, 6, u + 256 * (j + 2), a + 16 * (j + 2), act_stride, sums[2]);
            AMX_BLOCK_DOTS(1, 3, 7, u + 256 * (j + 3), a + 16 * (j + 3), act_stride, sums[3]);
            if (j == 12 && b + 1 < nb) amx_unpack_q6_k16(step + 3360, unpacked[(b + 1) & 1]);
            AMX_SUB_SCALE(sums[0], q6k_scales(step, j));
            AMX_SUB_SCALE(sums[1], q6k_scales(step, j + 1));
        }
        AMX_SUB_SCALE(sums[2], q6k_scales(step, 14));
        AMX_SUB_SCALE(sums[3], q6k_scales(step, 15));
        const __m512i isums[AMX_ROWS] = {isum0, isum1, isum2,  isum3,  isum4,  isum5,  isum6,  isum7,
                                         isum8, isum9, isum10, isum11, isum12, isum13, isum14, isum15};
        __m512i sp[8]; /* offsets: the scales as word pairs */
        unpack512_q6k16_scale_pairs(step, sp);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)step));
        const __m512 dmin = _mm512_mul_ps(d, _mm512_set1_ps(32.0f));
        amx_k_end(acc, isums, sp, 8, tab + 144 * b, d, dmin);
    }
    for (int t = 0; t < AMX_ROWS; t++) _mm512_storeu_ps(out + (size_t)t * ldo, acc[t]);
}

/* The qdot_gemm_fn of QDOT_Q6_K16. */
static void gemm_q6_k16_amx(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n,
                            float *out, size_t ldo, int nr, int nt, float *scratch) {
    amx_gemm_walk(wtype, w, w_stride, act, act_stride, n, out, ldo, nr, nt, scratch, 16, amx_gather_act_k, 8, amx_tile_q6_k16);
}

qdot_gemm_fn qdot_gemm_amx(uint32_t wtype) {
    switch (wtype) {
    case QDOT_Q8_0X16:
    case QDOT_Q8_0X64:
    case QDOT_Q4_0X16:
    case QDOT_Q4_0X64:
    case QDOT_Q5_0X16:
    case QDOT_Q5_0X64: return gemm_x16_amx;
    case QDOT_Q4_K16: return gemm_q4_k16_amx;
    case QDOT_Q6_K16: return gemm_q6_k16_amx;
    default: return NULL;
    }
}
