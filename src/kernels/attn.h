/* attn.h - attention of a group of query heads over one key/value head of
 * an F16 KV cache, as one kernel.
 *
 * For query head h (q + h * hd), with keys k_t and values v_t
 * (t < n_keys, f16, hd values each, consecutive):
 *   out_h = sum_t softmax_t(scale * q_h . k_t) v_t
 * Keys go by chunks of 256: first the scores of every head (16 keys at a
 * time, each key converted to float once for the whole group), then each
 * head's softmax step over the chunk (online: a running maximum and sum,
 * so no buffer grows with the context), then the values, summed for a
 * block of heads at once in registers (each value converted once per
 * block). Needs hd % 16 == 0, hd <= ATTN_MAX_HD, 1 <= nh <= ATTN_MAX_HEADS
 * and n_keys >= 1. */
#ifndef AIRLOCK_KERNELS_ATTN_H
#define AIRLOCK_KERNELS_ATTN_H

#include <stdint.h>

#include "kernels/cpu.h"

#define ATTN_MAX_HD 256
#define ATTN_MAX_HEADS 16

typedef void (*attn_f16_fn)(const float *q, int nh, const uint16_t *k, const uint16_t *v, int n_keys, int hd, float scale,
                            float *out);

void attn_f16_avx512(const float *q, int nh, const uint16_t *k, const uint16_t *v, int n_keys, int hd, float scale, float *out);

/* The kernel for `level`, or NULL where there is none (the caller then
 * uses the per-key dot and axpy of kernels/qdot.h). */
static inline attn_f16_fn attn_f16_get(cpu_level level) { return level >= CPU_LEVEL_AVX512 ? attn_f16_avx512 : (attn_f16_fn)0; }

#endif
