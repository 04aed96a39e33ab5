/* ops.h - the numeric operations of a transformer forward pass.
 *
 * Matrix products go through the integer kernels of kernels/qdot.h (SIMD
 * variants chosen at run time); the element-wise operations are plain C
 * in float32. */
#ifndef AIRLOCK_KERNELS_OPS_H
#define AIRLOCK_KERNELS_OPS_H

#include <stdint.h>

#include "formats/ggml_types.h"

/* A weight matrix as stored in a model file: n_rows rows of n_cols elements
 * of `type`, row-major, row i at data + i * row_bytes. */
typedef struct weight {
    uint32_t type;
    int64_t n_cols;  /* ne[0]: input size */
    int64_t n_rows;  /* ne[1]: output size */
    size_t row_bytes;
    const void *data;
} weight;

/* Sets the threads op_matmul spreads work over (1: single-threaded; 0: all
 * cores). Call between computations, not during one. Returns 0 or -1. */
int ops_set_threads(int n);
int ops_get_threads(void);

/* out[t][r] = dot(row r of W, x[t]) for r < W->n_rows, t < nt: x is
 * [nt][W->n_cols], out [nt][W->n_rows]. Activations are quantized to the
 * weight type's integer format (kernels/qdot.h) and the work is spread over
 * the thread pool, using the kernels of cpu_level_get(). Uses buffers
 * shared by all calls: one computation at a time. Returns 0, or -1 when out
 * of memory. */
int op_matmul(float *out, const weight *w, const float *x, int nt);

/* Several products of the same input in one parallel pass (q, k and v of
 * attention; gate and up of a feed-forward): out_k[t][r] = dot(row r of
 * W_k, x[t]). All W_k have the same n_cols. One hand-off to the threads
 * instead of one per matrix, and with few tokens the threads walk the rows
 * of all the matrices as one sequence. Returns 0, or -1 when out of memory. */
#define OP_MATMUL_MAX_PARTS 4
typedef struct op_matmul_out {
    float *out;        /* [nt][w->n_rows] */
    const weight *w;
} op_matmul_out;
int op_matmul_fused(const op_matmul_out *outs, int n_parts, const float *x, int nt);

/* Calls fn(arg, i) for i < n on the thread pool ops_set_threads sized. */
void ops_parallel_for(void (*fn)(void *arg, int64_t i), void *arg, int64_t n);

/* Dequantizes row r of W into out[W->n_cols]. */
void op_get_row(const weight *w, int64_t r, float *out);

/* out = x / rms(x) * g (elementwise), n elements; out may alias x. */
void op_rmsnorm(float *out, const float *x, const float *g, int n, float eps);
void op_rmsnorm_avx512(float *out, const float *x, const float *g, int n, float eps);
void op_rmsnorm_avx2(float *out, const float *x, const float *g, int n, float eps);

/* The index of the largest of x[0..n), n >= 1: the first one when several
 * hold it; NaNs are never chosen (0 when all are NaN). Greedy picking of a
 * token from the logits. */
int op_argmax(const float *x, int n);
int op_argmax_avx512(const float *x, int n);
int op_argmax_avx2(const float *x, int n);

/* Sampling weights: x[i] = e^((x[i] - mx) * inv_t), exactly 1 where x[i]
 * == mx (mx may be +inf) and exactly 0 where x[i] is -inf; mx >= every
 * x[i]. Returns their sum, accumulated in double. On AVX-512 and AVX2
 * through exp512 / its 8-lane twin (within 2 ulp of expf; arguments below
 * -87 give e^-87 there rather than 0). */
double op_exp_weights(float *x, int n, float mx, float inv_t);
double op_exp_weights_avx512(float *x, int n, float mx, float inv_t);
double op_exp_weights_avx2(float *x, int n, float mx, float inv_t);

/* dst[i] = x[i] as IEEE half, i < n: fp32_to_fp16 (kernels/fp16.h) of each
 * element, bit for bit. The KV cache's stores. */
void op_f32_to_f16(uint16_t *dst, const float *x, int n);
void op_f32_to_f16_avx512(uint16_t *dst, const float *x, int n);

/* In-place softmax of x[0..n). */
void op_softmax(float *x, int n);

/* out[i] = silu(gate[i]) * up[i] (on AVX-512 and AVX2 machines
 * op_swiglu_avx512 / op_swiglu_avx2, whose e^x is within 2 ulp of
 * expf's). out may be gate or up. */
void op_swiglu(float *out, const float *gate, const float *up, int n);
void op_swiglu_avx512(float *out, const float *gate, const float *up, int n);
void op_swiglu_avx2(float *out, const float *gate, const float *up, int n);

/* Rotary position embedding, in three steps: theta[rot_dim/2] the per-pair
 * angle per position (once per model; freq_factors, rot_dim/2 entries or
 * NULL, divide the frequencies: Llama 3.1 long-context scaling); cs[rot_dim]
 * the cos and sin of each pair at position pos; then the rotation of one
 * head vector's first rot_dim dimensions. neox selects the pairing:
 * (i, i + rot/2) when true, (2i, 2i+1) when false. */
void op_rope_theta(float *theta, int rot_dim, float base, float freq_scale, const float *freq_factors);
void op_rope_angles(float *cs, int rot_dim, int pos, const float *theta);
void op_rope_apply(float *v, int rot_dim, const float *cs, int neox);
/* Llama 3.1's long-context frequency factors (the rope_freqs tensor,
 * rot_dim/2 entries): 1 for wavelengths shorter than orig_ctx/high_freq,
 * `factor` for those longer than orig_ctx/low_freq, interpolated between. */
void op_rope_llama3_factors(float *out, int rot_dim, float base, float factor, float low_freq, float high_freq, float orig_ctx);

float op_dot(const float *a, const float *b, int n);

#endif
