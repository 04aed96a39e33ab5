/* ops.c - reference transformer operations. */
#include "kernels/ops.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#endif

#include "core/threadpool.h"
#include "kernels/cpu.h"
#include "kernels/fp16.h"
#include "kernels/qdot.h"
#include "kernels/quants.h"

static threadpool *g_pool;

int ops_set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (threadpool_size(g_pool) == n && (g_pool || n == 1)) return 0;
    threadpool_free(g_pool);
    g_pool = NULL;
    if (n == 1) return 0;
    g_pool = threadpool_init(n);
    return g_pool ? 0 : -1;
}

int ops_get_threads(void) { return threadpool_size(g_pool); }

float op_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void op_get_row(const weight *w, int64_t r, float *out) {
    assert(r >= 0 && r < w->n_rows);
    dequantize_row(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out, w->n_cols);
}

/* ---- matrix products ---------------------------------------------------------------- */

/* Buffers reused across calls: quantized activations, the caller's staging
 * row for them, and per-thread rows. */
static uint8_t *g_act;
static size_t g_act_cap;
static uint8_t *g_stage;
static size_t g_stage_cap;
static float *g_scratch;
static size_t g_scratch_cap;

static int grow(void **p, size_t *cap, size_t want) {
    if (want <= *cap) return 0;
    void *q = NULL;
    if (posix_memalign(&q, 64, want)) return -1;
    free(*p);
    *p = q;
    *cap = want;
    return 0;
}

#define MM_TOK_BLOCK 64 /* activation rows a task keeps in cache */

/* One matrix of a fused product and how its rows are cut into tasks. */
typedef struct matmul_part {
    float *out;           /* [nt][w->n_rows] */
    const weight *w;
    qdot_act fmt;
    size_t act_off;       /* its quantized activations in g_act: [nt][act_row] */
    size_t act_row;
    qdot_gemm_fn gemm;
    int64_t row_chunk;    /* rows per task, a multiple of 16 (the largest panel) */
    int64_t n_row_chunks;
    int64_t first_task;   /* tasks [first_task, first_task + n_row_chunks * token blocks) */
} matmul_part;

typedef struct matmul_job {
    matmul_part part[OP_MATMUL_MAX_PARTS];
    int n_parts;
    const float *x;       /* [nt][n_cols] */
    int nt;
    cpu_level level;
    bool stream;          /* one row, shared with other threads: quantize_task streams it */
} matmul_job;

/* Copies n bytes, rounded up to 16, from src to dst (both 16-byte aligned)
 * with non-temporal stores where the processor has them: the lines go to
 * memory without this core first taking them over from the cores that read
 * them last. */
static void copy_streaming(uint8_t *dst, const uint8_t *src, size_t n) {
    assert((uintptr_t)dst % 16 == 0 && (uintptr_t)src % 16 == 0);
#if defined(__x86_64__) || defined(__i386__)
    for (size_t o = 0; o < n; o += 16) _mm_stream_si128((__m128i *)(void *)(dst + o), _mm_load_si128((const __m128i *)(const void *)(src + o)));
    _mm_sfence(); /* the stores are visible before the hand-off that follows */
#else
    memcpy(dst, src, (n + 15) & ~(size_t)15);
#endif
}

/* Quantizes activation row t for every part whose format is new. With one
 * row and other threads to read it (a generated token), the row is
 * quantized into g_stage and streamed into g_act: stored in place, each
 * line of g_act would first have to be taken back from the core that read
 * it in the previous product, and where the two cores sit on different
 * chiplets that stalls the caller for microseconds a product while the
 * other threads wait (bench/RESULTS.md, session 16). */
static void quantize_task(void *arg, int64_t t) {
    const matmul_job *j = arg;
    for (int k = 0; k < j->n_parts; k++) {
        const matmul_part *p = &j->part[k];
        if (k > 0 && p->act_off == j->part[k - 1].act_off) continue; /* shares the previous part's rows */
        const float *x = j->x + (size_t)t * (size_t)p->w->n_cols;
        uint8_t *dst = g_act + p->act_off + (size_t)t * p->act_row;
        if (j->stream) {
            qdot_quantize_act_level(p->fmt, x, g_stage, p->w->n_cols, j->level);
            memset(g_stage + p->act_row, 0, ((p->act_row + 15) & ~(size_t)15) - p->act_row); /* the copy's rounding */
            copy_streaming(dst, g_stage, p->act_row);
        } else {
            qdot_quantize_act_level(p->fmt, x, dst, p->w->n_cols, j->level);
        }
    }
}

/* Task i of the part that holds it: row chunk i % n_row_chunks of token
 * block i / n_row_chunks, so consecutive tasks reuse the same activations
 * while weights stream by, and with one token block consecutive tasks are
 * consecutive rows (one stream through the matrix, then the next part). */
static void gemm_task(void *arg, int64_t i) {
    const matmul_job *j = arg;
    const matmul_part *p = &j->part[0];
    while (p + 1 < j->part + j->n_parts && i >= p[1].first_task) p++;
    i -= p->first_task;
    const weight *w = p->w;
    int64_t r0 = (i % p->n_row_chunks) * p->row_chunk, t0 = (i / p->n_row_chunks) * MM_TOK_BLOCK;
    int64_t nr = w->n_rows - r0 < p->row_chunk ? w->n_rows - r0 : p->row_chunk;
    int64_t nt = j->nt - t0 < MM_TOK_BLOCK ? j->nt - t0 : MM_TOK_BLOCK;
    float *scratch = g_scratch + (size_t)threadpool_thread_index() * (size_t)w->n_cols;
    p->gemm(w->type, (const uint8_t *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes,
            g_act + p->act_off + (size_t)t0 * p->act_row, p->act_row, w->n_cols,
            p->out + (size_t)t0 * (size_t)w->n_rows + (size_t)r0, (size_t)w->n_rows, (int)nr, (int)nt, scratch);
}

int op_matmul_fused(const op_matmul_out *outs, int n_parts, const float *x, int nt) {
    assert(n_parts >= 1 && n_parts <= OP_MATMUL_MAX_PARTS);
    int threads = threadpool_size(g_pool);
    int64_t n_cols = outs[0].w->n_cols, tok_blocks = (nt + MM_TOK_BLOCK - 1) / MM_TOK_BLOCK, tasks = 0;
    matmul_job j = {.n_parts = n_parts, .x = x, .nt = nt, .level = cpu_level_get()};
    (void)cpu_prefetch_get(); /* decides cpu_prefetch_mode before the kernels read it */
    size_t act_bytes = 0, act_stage = 0;
    for (int k = 0; k < n_parts; k++) {
        matmul_part *p = &j.part[k];
        p->out = outs[k].out;
        p->w = outs[k].w;
        assert(p->w->n_cols == n_cols);
        p->fmt = qdot_act_for(p->w->type, n_cols);
        p->act_row = qdot_act_row_bytes(p->fmt, n_cols);
        p->gemm = qdot_gemm_get(p->w->type, j.level);
        if (!p->gemm) return -1;
        if (k > 0 && p->fmt == j.part[k - 1].fmt) p->act_off = j.part[k - 1].act_off;
        else {
            p->act_off = act_bytes; /* each part's rows start on a line of their own */
            act_bytes += (p->act_row * (size_t)nt + 63) & ~(size_t)63;
            if (p->act_row > act_stage) act_stage = p->act_row;
        }
        /* enough row chunks that every thread gets several (load balance), each
         * a whole number of panels (qdot_panel_rows) */
        int64_t chunk = p->w->n_rows / ((int64_t)threads * (nt > 4 ? 4 : 16));
        int64_t panel = qdot_panel_rows(p->w->type);
        if (panel < 16) panel = 16; /* whole panels of every layout */
        p->row_chunk = chunk < panel ? panel : (chunk + panel - 1) / panel * panel;
        p->n_row_chunks = (p->w->n_rows + p->row_chunk - 1) / p->row_chunk;
        p->first_task = tasks;
        tasks += p->n_row_chunks * tok_blocks;
    }
    j.stream = nt == 1 && threads > 1;
    if (grow((void **)&g_act, &g_act_cap, act_bytes) || (j.stream && grow((void **)&g_stage, &g_stage_cap, (act_stage + 63) & ~(size_t)63)) ||
        grow((void **)&g_scratch, &g_scratch_cap, (size_t)threads * (size_t)n_cols * sizeof(float)))
        return -1;
    if (nt > 1) threadpool_run(g_pool, quantize_task, &j, nt);
    else quantize_task(&j, 0);
    /* one token block: each thread walks its own contiguous run of rows */
    if (tok_blocks == 1) threadpool_run_ranges(g_pool, gemm_task, &j, tasks);
    else threadpool_run(g_pool, gemm_task, &j, tasks);
    return 0;
}

int op_matmul(float *out, const weight *w, const float *x, int nt) {
    op_matmul_out o = {out, w};
    return op_matmul_fused(&o, 1, x, nt);
}

void ops_parallel_for(void (*fn)(void *arg, int64_t i), void *arg, int64_t n) { threadpool_run(g_pool, fn, arg, n); }

void op_rmsnorm(float *out, const float *x, const float *g, int n, float eps) {
    if (cpu_level_get() >= CPU_LEVEL_AVX512) {
        op_rmsnorm_avx512(out, x, g, n, eps);
        return;
    }
    if (cpu_level_get() == CPU_LEVEL_AVX2) {
        op_rmsnorm_avx2(out, x, g, n, eps);
        return;
    }
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * g[i];
}

int op_argmax(const float *x, int n) {
    assert(n >= 1);
    if (cpu_level_get() >= CPU_LEVEL_AVX512) return op_argmax_avx512(x, n);
    if (cpu_level_get() == CPU_LEVEL_AVX2) return op_argmax_avx2(x, n);
    float m = -INFINITY; /* x[i] > m is false for a NaN */
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int i = 0; i < n; i++)
        if (x[i] == m) return i;
    return 0;
}

double op_exp_weights(float *x, int n, float mx, float inv_t) {
    if (cpu_level_get() >= CPU_LEVEL_AVX512) return op_exp_weights_avx512(x, n, mx, inv_t);
    if (cpu_level_get() == CPU_LEVEL_AVX2) return op_exp_weights_avx2(x, n, mx, inv_t);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = x[i] == mx ? 1.0f : expf((x[i] - mx) * inv_t);
        sum += x[i];
    }
    return sum;
}

void op_f32_to_f16(uint16_t *dst, const float *x, int n) {
    if (cpu_level_get() >= CPU_LEVEL_AVX512) {
        op_f32_to_f16_avx512(dst, x, n);
        return;
    }
    for (int i = 0; i < n; i++) dst[i] = fp32_to_fp16(x[i]);
}

void op_softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}

void op_swiglu(float *out, const float *gate, const float *up, int n) {
    if (cpu_level_get() >= CPU_LEVEL_AVX512) {
        op_swiglu_avx512(out, gate, up, n);
        return;
    }
    if (cpu_level_get() == CPU_LEVEL_AVX2) {
        op_swiglu_avx2(out, gate, up, n);
        return;
    }
    for (int i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void op_rope_llama3_factors(float *out, int rot_dim, float base, float factor, float low_freq, float high_freq, float orig_ctx) {
    float low_wl = orig_ctx / low_freq, high_wl = orig_ctx / high_freq;
    for (int i = 0; i < rot_dim / 2; i++) {
        float freq = powf(base, -2.0f * (float)i / (float)rot_dim);
        float wl = 2.0f * (float)M_PI / freq;
        if (wl < high_wl) out[i] = 1.0f;
        else if (wl > low_wl) out[i] = factor;
        else {
            float smooth = (orig_ctx / wl - low_freq) / (high_freq - low_freq);
            out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}

void op_rope_theta(float *theta, int rot_dim, float base, float freq_scale, const float *freq_factors) {
    for (int i = 0; i < rot_dim / 2; i++) {
        theta[i] = powf(base, -2.0f * (float)i / (float)rot_dim) * freq_scale;
        if (freq_factors) theta[i] /= freq_factors[i];
    }
}

void op_rope_angles(float *cs, int rot_dim, int pos, const float *theta) {
    for (int i = 0; i < rot_dim / 2; i++) {
        float a = (float)pos * theta[i];
        cs[2 * i] = cosf(a);
        cs[2 * i + 1] = sinf(a);
    }
}

void op_rope_apply(float *v, int rot_dim, const float *cs, int neox) {
    int half = rot_dim / 2;
    for (int i = 0; i < half; i++) {
        int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float c = cs[2 * i], s = cs[2 * i + 1], x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}
