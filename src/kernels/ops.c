/* ops.c - reference transformer operations. */
#include "kernels/ops.h"

#include <assert.h>
#include <math.h>

#include "kernels/quants.h"

float op_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void op_get_row(const weight *w, int64_t r, float *out) {
    assert(r >= 0 && r < w->n_rows);
    dequantize_row(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out, w->n_cols);
}

void op_matvec(float *out, const weight *w, const float *x, float *scratch) {
    int n = (int)w->n_cols;
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
