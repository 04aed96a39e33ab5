/* ops.c - reference transformer operations. */
#include "kernels/ops.h"

#include <assert.h>
#include <math.h>

#include <stdlib.h>
#include <unistd.h>

#include "core/threadpool.h"
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

#define MATVEC_CHUNK 16 /* rows per task */

typedef struct matvec_job {
    float *out;
    const weight *w;
    const float *x;
} matvec_job;

/* Rows [i * MATVEC_CHUNK, ...) of one matvec. */
static void matvec_chunk(void *arg, int64_t i) {
    const matvec_job *j = arg;
    const weight *w = j->w;
    int n = (int)w->n_cols;
    int64_t r0 = i * MATVEC_CHUNK, r1 = r0 + MATVEC_CHUNK < w->n_rows ? r0 + MATVEC_CHUNK : w->n_rows;
    if (w->type == GGML_TYPE_F32) {
        for (int64_t r = r0; r < r1; r++)
            j->out[r] = op_dot((const float *)((const uint8_t *)w->data + (size_t)r * w->row_bytes), j->x, n);
        return;
    }
    float *row = malloc((size_t)n * sizeof *row);
    if (!row) abort(); /* a few KiB: out of memory here is not recoverable mid-layer */
    for (int64_t r = r0; r < r1; r++) {
        op_get_row(w, r, row);
        j->out[r] = op_dot(row, j->x, n);
    }
    free(row);
}

void op_matvec(float *out, const weight *w, const float *x, float *scratch) {
    int n = (int)w->n_cols;
    if (threadpool_size(g_pool) > 1 && w->n_rows >= 4 * MATVEC_CHUNK) {
        matvec_job j = {out, w, x};
        threadpool_run(g_pool, matvec_chunk, &j, (w->n_rows + MATVEC_CHUNK - 1) / MATVEC_CHUNK);
        return;
    }
    if (w->type == GGML_TYPE_F32) {
        for (int64_t r = 0; r < w->n_rows; r++)
            out[r] = op_dot((const float *)((const uint8_t *)w->data + (size_t)r * w->row_bytes), x, n);
        return;
    }
    for (int64_t r = 0; r < w->n_rows; r++) {
        op_get_row(w, r, scratch);
        out[r] = op_dot(scratch, x, n);
    }
}

void op_rmsnorm(float *out, const float *x, const float *g, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * g[i];
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
    for (int i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void op_rope(float *v, int rot_dim, int pos, float base, float freq_scale, const float *freq_factors, int neox) {
    int half = rot_dim / 2;
    for (int i = 0; i < half; i++) {
        float freq = powf(base, -2.0f * (float)i / (float)rot_dim) * freq_scale;
        if (freq_factors) freq /= freq_factors[i];
        float theta = (float)pos * freq;
        float c = cosf(theta), s = sinf(theta);
        int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}
