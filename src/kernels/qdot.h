/* qdot.h - dot products of quantized weight rows with many activation rows.
 *
 * The fast engines never expand quantized weights to floats: activations are
 * quantized on the fly to 8-bit integers in a layout made for the weight
 * type, and weights and activations meet in integer multiply-adds, with the
 * block scales applied once per block. One activation format per family:
 *
 *   QDOT_ACT_Q8B  for Q4_0, Q5_0, Q8_0 (blocks of 32): u8 q[n] (value + 128),
 *                 then f32 dl[n/4]: the block scale, repeated for each group
 *                 of 4 elements (what a 32-bit SIMD lane covers).
 *   QDOT_ACT_Q8K  for Q4_K, Q6_K (blocks of 256): i8 q[n], f32 d[n/256],
 *                 i16 bsum[n/16] (sum of each 16 values).
 *   QDOT_ACT_Q8D  for the 16-row Q4_0 and Q8_0 panels (blocks of 32): i8
 *                 q[n], then f32 d[n/32], then i32 s[n/32] (the sum of each
 *                 block's 32 values: the weights' offset times it is
 *                 subtracted once per block for all 16 rows).
 *   QDOT_ACT_F32  every other type: the floats themselves; weight rows are
 *                 expanded to floats one at a time.
 *
 * The byte layout of an activation row is the same at every CPU level, so
 * any level's kernel can read it; tests check every level against the
 * scalar kernels. */
#ifndef AIRLOCK_KERNELS_QDOT_H
#define AIRLOCK_KERNELS_QDOT_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ggml_types.h"
#include "kernels/cpu.h"

typedef enum qdot_act { QDOT_ACT_F32, QDOT_ACT_Q8B, QDOT_ACT_Q8K, QDOT_ACT_Q8S, QDOT_ACT_Q8D } qdot_act;

/* Repacked weights. At load, Q4_0, Q5_0, Q8_0, Q4_K and Q6_K matrices whose shape allows it
 * are rearranged (same bytes per block, so the same memory traffic) into
 * panels of rows that the AVX-512 kernels read as one sequential stream,
 * without shuffles: 16-row panels (below) where the rows are a multiple
 * of 16 and the type has one, else 4-row panels. Panel p holds rows 4p..4p+3 (row_bytes each, so a
 * panel starts where its first row would), in steps of 128 elements
 * (blocks 4g..4g+3 of each row). Within a step an element's "position" is
 * 64 h + 16 k + i for element i + 16 h of block k (h = 0, 1: the halves of
 * a block): 64-byte half A holds the first 16 values of each of the 4
 * blocks, half B the last 16, so a 32-bit lane of A and the same lane of B
 * belong to one block and their products can be summed in one integer
 * accumulator before the block's scale is applied.
 *
 *   QDOT_Q4_0R  per step, for each of the 4 rows 64 bytes: byte j holds the
 *               value at position j (A) in its low nibble and at 64 + j (B)
 *               in its high one (value = nibble - 8): the 16 quant bytes of
 *               blocks 4g..4g+3 as they are in the file; then the 16 block
 *               scales (f16), row by row. 288 bytes per step.
 *   QDOT_Q5_0R  as QDOT_Q4_0R for the low 4 bits (256 bytes); then per
 *               row two 64-bit words: bit j of the first is the fifth bit
 *               of the value at position j (A), bit j of the second that
 *               of position 64 + j (B) (value = (nibble | bit << 4) - 16);
 *               then the 16 block scales (f16), row by row. 352 bytes per
 *               step.
 *   QDOT_Q8_0R  per step, for each of the 4 rows its 128 i8 values by
 *               position; then the 16 block scales (f16), row by row. 544
 *               bytes per step.
 *
 * QDOT_Q4_K16 is a Q4_K matrix in panels of 16 rows (n_rows % 16 == 0,
 * n % 256 == 0), read 16 rows at a time so that each 32-bit lane of a
 * vector is one row: no horizontal sums, and the per-sub-block scales are
 * one vector multiply for all 16 rows. Panel p holds rows 16p..16p+15
 * (starting where its first row would), super-block b of all 16 rows in
 * the 2304 bytes from 2304 b (the same bytes as 16 Q4_K blocks):
 *   0     f16 d[16], one per row
 *   32    f16 dmin[16]
 *   64    for sub-block j = 0..7, 16 bytes: byte r = sc[r][j] | (m[r][j] & 3) << 6
 *   192   for j = 2i, 2i+1 (i = 0..3), 16 bytes: byte r = m[r][2i] >> 2 | (m[r][2i+1] >> 2) << 4
 *   256   for group g = 0..3 and quad k = 0..7, 64 bytes: bytes 4r..4r+3 hold
 *         elements 64g + 4k + i (i < 4) of row r in their low nibbles and
 *         elements 64g + 32 + 4k + i in their high ones
 *
 * QDOT_Q6_K16 is a Q6_K matrix in the same kind of 16-row panels (lane r:
 * row r), super-block b of the 16 rows in the 3360 bytes from 3360 b, with
 * quad c = elements 4c..4c+3 (c < 64):
 *   0     f16 d[16], one per row
 *   32    for sub-block j = 0..15 (16 elements), 16 bytes: the i8 scale of row r
 *   288   for u = 0..15, 192 bytes at 288 + 192u, the three vectors
 *         that give quads u, u + 16, u + 32, u + 48 (one sequential stream):
 *         +0    bytes 4r..4r+3: the low 4 bits of quad u of row r in their
 *               low nibbles, of quad u + 32 in their high ones
 *         +64   the same for quads u + 16 and u + 48
 *         +128  bits 2f, 2f+1 of bytes 4r..4r+3: the top 2 bits of quad
 *               u + 16f of row r (f = 0..3)
 *
 * QDOT_Q4_0X16 and QDOT_Q8_0X16 are Q4_0 and Q8_0 matrices in 16-row
 * panels of the same kind (n_rows % 16 == 0, n % 128 == 0; QDOT_ACT_Q8D
 * activations, broadcast as the signed operand). Steps of 128 elements
 * (blocks 4g..4g+3 of each row, k = 0..3 below), from g x 1152 (Q4_0) or
 * g x 2176 (Q8_0) bytes:
 *   0     for block k, 32 bytes: f16 d of row r at 32k + 2r
 *   128   Q4_0: for block k and quad v = 0..3, 64 bytes at 128 + 256k + 64v:
 *         bytes 4r..4r+3 are bytes 4v..4v+3 of the block's 16 quant bytes
 *         in row r (elements 4v+i in the low nibbles, 16+4v+i in the high
 *         ones: value = nibble - 8)
 *         Q8_0: for block k and quad v = 0..7, 64 bytes at 128 + 512k + 64v:
 *         bytes 4r..4r+3 hold elements 4v..4v+3 of row r as value + 128
 *         (so the weights are the unsigned operand)
 * QDOT_Q5_0X16 (Q5_0 in 16-row panels; QDOT_Q5_0R where rows are not a
 * multiple of 16) is QDOT_Q4_0X16 with each block's fifth bits after its
 * quads: 1408-byte steps, block k's 4 quad vectors at 128 + 320k + 64v (low 4 bits, as
 * Q4_0X16), then at 128 + 320k + 256 one vector whose byte 4r + i holds
 * at bits 2v and 2v + 1 the fifth bits of elements 4v + i and 16 + 4v + i
 * of row r (v = 0..3; value = (nibble | bit << 4) - 16).
 * Every load of a step is a whole, aligned cache line.
 *
 * QDOT_Q4_0X64, QDOT_Q5_0X64 and QDOT_Q8_0X64 are QDOT_Q4_0X16,
 * QDOT_Q5_0X16 and QDOT_Q8_0X16 where n_rows % 64 == 0, and for Q4_0
 * n >= QDOT_X64_MIN_COLS_Q4 (the 16-row layouts are left for other
 * matrices and for AVX2): the same steps, four 16-row panels (64 rows, a
 * group) interleaved in blocks of QDOT_X64_BLOCK steps: block c holds
 * steps 4c..4c+3 (fewer in a last, short block) of panel 0, then the same
 * steps of panels 1, 2 and 3 (qdot_x64_step_at). A kernel walking a group
 * block by block reads one sequential stream, uses each 512 activation
 * values four times while they are in L1 and keeps four panels' sums in
 * flight. With whole-row panels a row of thousands of values leaves L1
 * before the next panel comes back to it, which cost 10-25% of a
 * one-token product's speed for Q4_0 (bench/RESULTS.md, sessions 15 and
 * 16). Q8_0 and Q5_0, whose steps take more arithmetic, also stream short
 * rows faster in groups (session 17: a one-thread token of qwen2.5-0.5b
 * Q8_0, 896-column matrices, 0.886 -> 0.982 of the read); Q4_0's short
 * rows measured level, so they keep 16-row panels.
 *
 * The 4-row panel types need n % 128 == 0 and use QDOT_ACT_Q8S activations: per 128 elements
 * i8 q[128] by position, then (after all n values) i32 c[n/8]: for each lane
 * -8 x the sum of the 8 values lanes A and B hold (the Q4_0 offset, folded
 * into the integer sum), then f32 dl[n/8]: the lane's block scale. Kernels
 * for them take tiles of whole panels. */
/* A repacked type is a layout family (the high bits) | the file's type
 * (QDOT_TYPE_MASK). */
enum { QDOT_PANELS4 = 0x1000, QDOT_PANELS16 = 0x2000, QDOT_GROUPS64 = 0x3000, QDOT_LAYOUT_MASK = 0xF000, QDOT_TYPE_MASK = 0xFF };
enum { QDOT_Q4_0R = QDOT_PANELS4 | 2, QDOT_Q5_0R = QDOT_PANELS4 | 6, QDOT_Q8_0R = QDOT_PANELS4 | 8, QDOT_Q4_K16 = QDOT_PANELS16 | 12,
       QDOT_Q6_K16 = QDOT_PANELS16 | 14, QDOT_Q8_0X16 = QDOT_PANELS16 | 8, QDOT_Q4_0X16 = QDOT_PANELS16 | 2,
       QDOT_Q5_0X16 = QDOT_PANELS16 | 6, QDOT_Q4_0X64 = QDOT_GROUPS64 | 2, QDOT_Q5_0X64 = QDOT_GROUPS64 | 6,
       QDOT_Q8_0X64 = QDOT_GROUPS64 | 8 };

enum { QDOT_X64_BLOCK = 4, QDOT_X64_MIN_COLS_Q4 = 4096 };

/* Bytes of one 128-element step of a 16-row panel (or 64-row group) of
 * Q4_0, Q5_0 or Q8_0: `type` is the file's type or the repacked one. */
static inline size_t qdot_x16_step_bytes(uint32_t type) {
    type &= QDOT_TYPE_MASK;
    return type == GGML_TYPE_Q8_0 ? 2176 : type == GGML_TYPE_Q5_0 ? 1408 : 1152;
}

/* Where step g (128 elements) of panel p (0..3) lies in a QDOT_Q4_0X64,
 * QDOT_Q5_0X64 or QDOT_Q8_0X64 group whose rows have ns steps, in units of steps. */
static inline int64_t qdot_x64_step_at(int p, int64_t g, int64_t ns) {
    int64_t c0 = g - g % QDOT_X64_BLOCK, len = ns - c0 < QDOT_X64_BLOCK ? ns - c0 : QDOT_X64_BLOCK;
    return 4 * c0 + p * len + (g - c0);
}

/* The byte of a QDOT_ACT_Q8S row (or of a QDOT_Q8_0R panel row) that holds
 * element e: its position within its 128-element step (see above). */
static inline int64_t qdot_q8s_pos(int64_t e) {
    int64_t o = e % 128;
    return e - o + 64 * ((o % 32) / 16) + 16 * (o / 32) + o % 16;
}

/* The repacked type for an n_rows x n matrix of `type`, or 0 if none. */
uint32_t qdot_repack_type(uint32_t type, int64_t n_rows, int64_t n);
/* The repacked type the kernels of `level` read for such a matrix, or 0
 * (keep the file's layout): AVX-512 what qdot_repack_type picks; AVX2
 * only 16-row panels (it has kernels for those alone); scalar none. */
uint32_t qdot_repack_type_at(uint32_t type, int64_t n_rows, int64_t n, cpu_level level);
/* Repacks n_rows rows of n elements of `type` from src into dst (the same
 * size) as repacked type rt (qdot_repack_type or qdot_repack_type_at). */
void qdot_repack_as(uint32_t rt, uint32_t type, const void *src, void *dst, int64_t n_rows, int64_t n);
/* Rows per panel of a weight type: a kernel for it takes whole panels. */
int qdot_panel_rows(uint32_t type);
/* Repacks n_rows rows of n elements from src into dst (the same size). */
void qdot_repack(uint32_t type, const void *src, void *dst, int64_t n_rows, int64_t n);

/* The activation format weights of `wtype` with rows of n elements use. */
qdot_act qdot_act_for(uint32_t wtype, int64_t n);
/* Bytes of one activation row (a multiple of 64). */
size_t qdot_act_row_bytes(qdot_act f, int64_t n);
/* Writes x[n] as one activation row of format f into dst (bytes as above). */
void qdot_quantize_act(qdot_act f, const float *x, uint8_t *dst, int64_t n);
/* The same bytes at a given level (the scalar code where a level has none). */
void qdot_quantize_act_level(qdot_act f, const float *x, uint8_t *dst, int64_t n, cpu_level level);
void qdot_quantize_act_avx512(qdot_act f, const float *x, uint8_t *dst, int64_t n);
void qdot_quantize_act_avx2(qdot_act f, const float *x, uint8_t *dst, int64_t n);

/* out[t * ldo + r] = dot(weight row r, activation row t) for r < nr and
 * t < nt. Weight row r starts at w + r * w_stride; activation row t at
 * act + t * act_stride. scratch holds n floats (rows expanded for
 * QDOT_ACT_F32). */
typedef void (*qdot_gemm_fn)(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride,
                             int64_t n, float *out, size_t ldo, int nr, int nt, float *scratch);

/* The kernel for wtype at `level`, falling back to the best lower level that
 * has one. Never NULL for a type dequantize_row handles. */
qdot_gemm_fn qdot_gemm_get(uint32_t wtype, cpu_level level);

/* Per-level tables of the integer kernels (NULL: none for the type at that
 * level). The float path (QDOT_ACT_F32) is one kernel for every level,
 * differing only in its float dot product. */
qdot_gemm_fn qdot_gemm_scalar(uint32_t wtype);
qdot_gemm_fn qdot_gemm_avx2(uint32_t wtype);
qdot_gemm_fn qdot_gemm_avx512(uint32_t wtype);
qdot_gemm_fn qdot_gemm_amx(uint32_t wtype);

/* Float dot products of the float path, per level. */
float qdot_dot_f32_avx2(const float *a, const float *b, int64_t n);
float qdot_dot_f32_avx512(const float *a, const float *b, int64_t n);

/* Float dot products used by attention, per level: dot of a[n] with f16
 * b[n], and y[n] += s * f16 x[n]. */
typedef float (*qdot_dot_f16_fn)(const float *a, const uint16_t *b, int n);
typedef void (*qdot_axpy_f16_fn)(float *y, float s, const uint16_t *x, int n);
qdot_dot_f16_fn qdot_dot_f16_get(cpu_level level);
qdot_axpy_f16_fn qdot_axpy_f16_get(cpu_level level);
float qdot_dot_f16_avx2(const float *a, const uint16_t *b, int n);
void qdot_axpy_f16_avx2(float *y, float s, const uint16_t *x, int n);
float qdot_dot_f16_avx512(const float *a, const uint16_t *b, int n);
void qdot_axpy_f16_avx512(float *y, float s, const uint16_t *x, int n);

#endif
