/* attn.h - causal attention of a tile of query rows (consecutive tokens x
 * a group of query heads) over one key/value head of an F16 KV cache, as
 * one kernel.
 *
 * Row (i, h), token i < n_tok and head h < nh, has query q_ih and sees the
 * first n_keys + i keys k_t and values v_t (f16, hd values each,
 * consecutive):
 *   out_ih = sum_t softmax_t(scale * q_ih . k_t) v_t
 * Keys go by chunks of 256. In each: first the scores of every row that
 * sees a key of the chunk (16 keys at a time, each key converted to float
 * once for the whole tile, and read once for all its tokens), masked
 * causally; then each row's softmax step over the chunk (online: a running
 * maximum and sum, so no buffer grows with the context); then the values,
 * summed for a block of rows at once in registers (each value converted
 * once per block). A row's arithmetic does not depend on the other rows of
 * its tile, so a token gets bit for bit the same output alone (decoding)
 * as in a tile of a prompt. Needs hd % 16 == 0, hd <= ATTN_MAX_HD,
 * 1 <= nh <= ATTN_MAX_HEADS, 1 <= n_tok <= attn_max_tokens(nh, hd),
 * n_keys >= 1. */
#ifndef AIRLOCK_KERNELS_ATTN_H
#define AIRLOCK_KERNELS_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu.h"

#define ATTN_MAX_HD 256
#define ATTN_MAX_HEADS 16
#define ATTN_MAX_ROWS 64      /* query rows (tokens x heads) in one call */
#define ATTN_MAX_FLOATS 8192  /* rows x hd in one call: 64 rows of 128, 32 of 256 */

typedef struct attn_f16_tile {
    const float *q;       /* row (i, h): q[i * q_stride + h * hd + d], d < hd */
    size_t q_stride;      /* floats from one token's queries to the next's */
    float *out;           /* row (i, h): out[i * out_stride + h * hd + d] */
    size_t out_stride;
    const uint16_t *k, *v; /* [keys][hd] f16, at least n_keys + n_tok - 1 keys */
    int n_tok, nh, hd;
    int n_keys; /* keys token 0 sees; token i sees n_keys + i */
    float scale;
} attn_f16_tile;

typedef void (*attn_f16_fn)(const attn_f16_tile *a);

void attn_f16_avx512(const attn_f16_tile *a);

/* The most tokens one call can take for nh heads of size hd (>= 1 within
 * the limits above). */
static inline int attn_max_tokens(int nh, int hd) {
    int rows = ATTN_MAX_FLOATS / hd < ATTN_MAX_ROWS ? ATTN_MAX_FLOATS / hd : ATTN_MAX_ROWS;
    return rows / nh;
}

/* The kernel for `level`, or NULL where there is none (the caller then
 * uses the per-key dot and axpy of kernels/qdot.h). */
static inline attn_f16_fn attn_f16_get(cpu_level level) { return level >= CPU_LEVEL_AVX512 ? attn_f16_avx512 : (attn_f16_fn)0; }

#endif
