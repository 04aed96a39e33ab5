/* quantize.c - float rows to every supported GGML type.
 *
 * Every quantizer here chooses its scales so that the whole range of each
 * (sub-)block is representable: no value is clipped, so each element's error
 * is at most half of its block's step (scale), which the tests check. Scales
 * stored as fp16 are rounded up, never down, to keep that guarantee. The
 * resulting blocks follow the layouts documented in quants.c exactly, so any
 * GGUF runtime dequantizes them the same way. */
#include "kernels/quantize.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"

/* Smallest fp16 >= x (x >= 0). */
static uint16_t f16_up(float x) {
    uint16_t h = fp32_to_fp16(x);
    if (fp16_to_fp32(h) < x) h++;
    return h;
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void minmax(const float *x, int n, float *mn, float *mx) {
    float a = x[0], b = x[0];
    for (int i = 1; i < n; i++) {
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *mn = a;
    *mx = b;
}

/* Symmetric step for levels [lo, hi] (lo < 0 < hi) covering x[0..n). */
static float sym_step(const float *x, int n, int lo, int hi) {
    float mn, mx;
    minmax(x, n, &mn, &mx);
    float a = mn < 0 ? mn / (float)lo : 0.0f, b = mx > 0 ? mx / (float)hi : 0.0f;
    return a > b ? a : b;
}

/* ---- 32-element blocks -------------------------------------------------------- */

static void q8_0_block(const float *x, uint8_t *b) {
    float step = sym_step(x, 32, -127, 127);
    uint16_t dh = f16_up(step);
    float d = fp16_to_fp32(dh), id = d > 0 ? 1.0f / d : 0.0f;
    put16(b, dh);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)clampi((int)lrintf(x[j] * id), -127, 127);
}

static void q4_0_block(const float *x, uint8_t *b) {
    uint16_t dh = f16_up(sym_step(x, 32, -8, 7));
    float d = fp16_to_fp32(dh), id = d > 0 ? 1.0f / d : 0.0f;
    put16(b, dh);
    for (int j = 0; j < 16; j++) {
        int lo = clampi((int)lrintf(x[j] * id) + 8, 0, 15), hi = clampi((int)lrintf(x[j + 16] * id) + 8, 0, 15);
        b[2 + j] = (uint8_t)(lo | (hi << 4));
    }
}

static void q5_0_block(const float *x, uint8_t *b) {
    uint16_t dh = f16_up(sym_step(x, 32, -16, 15));
    float d = fp16_to_fp32(dh), id = d > 0 ? 1.0f / d : 0.0f;
    put16(b, dh);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int lo = clampi((int)lrintf(x[j] * id) + 16, 0, 31), hi = clampi((int)lrintf(x[j + 16] * id) + 16, 0, 31);
        b[6 + j] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
        qh |= (uint32_t)(lo >> 4) << j;
        qh |= (uint32_t)(hi >> 4) << (j + 16);
    }
    memcpy(b + 2, &qh, 4);
}

/* Affine blocks: x = q * d + m with q in [0, levels]; m rounded down. */
static void affine_dm(const float *x, int n, int levels, uint16_t *dh, uint16_t *mh, float *d, float *m) {
    float mn, mx;
    minmax(x, n, &mn, &mx);
    uint16_t h = fp32_to_fp16(mn);
    if (fp16_to_fp32(h) > mn) h = (uint16_t)(mn < 0 ? h + 1 : h - 1); /* one ulp toward -inf */
    *mh = h;
    *m = fp16_to_fp32(h);
    *dh = f16_up((mx - *m) / (float)levels);
    *d = fp16_to_fp32(*dh);
}

static void q4_1_block(const float *x, uint8_t *b) {
    uint16_t dh, mh;
    float d, m;
    affine_dm(x, 32, 15, &dh, &mh, &d, &m);
    float id = d > 0 ? 1.0f / d : 0.0f;
    put16(b, dh);
    put16(b + 2, mh);
    for (int j = 0; j < 16; j++) {
        int lo = clampi((int)lrintf((x[j] - m) * id), 0, 15), hi = clampi((int)lrintf((x[j + 16] - m) * id), 0, 15);
        b[4 + j] = (uint8_t)(lo | (hi << 4));
    }
}

static void q5_1_block(const float *x, uint8_t *b) {
    uint16_t dh, mh;
    float d, m;
    affine_dm(x, 32, 31, &dh, &mh, &d, &m);
    float id = d > 0 ? 1.0f / d : 0.0f;
    put16(b, dh);
    put16(b + 2, mh);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int lo = clampi((int)lrintf((x[j] - m) * id), 0, 31), hi = clampi((int)lrintf((x[j + 16] - m) * id), 0, 31);
        b[8 + j] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
        qh |= (uint32_t)(lo >> 4) << j;
        qh |= (uint32_t)(hi >> 4) << (j + 16);
    }
    memcpy(b + 4, &qh, 4);
}

/* ---- K-quants (256-element super-blocks) ------------------------------------------- */

/* Scales for n_sub sub-blocks of `sub` elements with x = d*sc*q - dmin*mi,
 * q in [0, levels], sc and mi in [0, smax]. Fills sc[], mi[], step[], off[]. */
static void kq_affine(const float *x, int n_sub, int sub, int levels, int smax, uint16_t *dh, uint16_t *dminh, int *sc,
                      int *mi, float *step, float *off) {
    float ml[16], need[16], max_ml = 0, max_need = 0;
    for (int s = 0; s < n_sub; s++) {
        float mn, mx;
        minmax(x + s * sub, sub, &mn, &mx);
        ml[s] = mn < 0 ? -mn : 0;
        max_ml = ml[s] > max_ml ? ml[s] : max_ml;
    }
    *dminh = f16_up(max_ml / (float)smax);
    float dmin = fp16_to_fp32(*dminh);
    for (int s = 0; s < n_sub; s++) {
        mi[s] = dmin > 0 ? clampi((int)ceilf(ml[s] / dmin), 0, smax) : 0;
        off[s] = -dmin * (float)mi[s];
        float mn, mx;
        minmax(x + s * sub, sub, &mn, &mx);
        need[s] = (mx - off[s]) / (float)levels;
        if (need[s] < 0) need[s] = 0;
        max_need = need[s] > max_need ? need[s] : max_need;
    }
    *dh = f16_up(max_need / (float)smax);
    float d = fp16_to_fp32(*dh);
    for (int s = 0; s < n_sub; s++) {
        sc[s] = d > 0 ? clampi((int)ceilf(need[s] / d), 0, smax) : 0;
        step[s] = d * (float)sc[s];
    }
}

static int kq_level(float x, float step, float off, int levels) {
    return step > 0 ? clampi((int)lrintf((x - off) / step), 0, levels) : 0;
}

static void q2_k_block(const float *x, uint8_t *b) {
    uint16_t dh, dminh;
    int sc[16], mi[16];
    float step[16], off[16];
    kq_affine(x, 16, 16, 3, 15, &dh, &dminh, sc, mi, step, off);
    memset(b, 0, 84);
    for (int s = 0; s < 16; s++) b[s] = (uint8_t)(sc[s] | (mi[s] << 4));
    for (int e = 0; e < 256; e++) {
        int s = e / 16, half = e / 128, j = (e % 128) / 32, sub = (e % 32) / 16, l = e % 16;
        b[16 + half * 32 + sub * 16 + l] |= (uint8_t)(kq_level(x[e], step[s], off[s], 3) << (2 * j));
    }
    put16(b + 80, dh);
    put16(b + 82, dminh);
}

static void pack_k4(const int *sc, const int *mn, uint8_t *q) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

static void q4_k_block(const float *x, uint8_t *b) {
    uint16_t dh, dminh;
    int sc[8], mi[8];
    float step[8], off[8];
    kq_affine(x, 8, 32, 15, 63, &dh, &dminh, sc, mi, step, off);
    memset(b, 0, 144);
    put16(b, dh);
    put16(b + 2, dminh);
    pack_k4(sc, mi, b + 4);
    for (int e = 0; e < 256; e++) {
        int s = e / 32, g = e / 64, w = e % 64;
        int q = kq_level(x[e], step[s], off[s], 15);
        b[16 + g * 32 + w % 32] |= (uint8_t)(w < 32 ? q : q << 4);
    }
}

static void q5_k_block(const float *x, uint8_t *b) {
    uint16_t dh, dminh;
    int sc[8], mi[8];
    float step[8], off[8];
    kq_affine(x, 8, 32, 31, 63, &dh, &dminh, sc, mi, step, off);
    memset(b, 0, 176);
    put16(b, dh);
    put16(b + 2, dminh);
    pack_k4(sc, mi, b + 4);
    for (int e = 0; e < 256; e++) {
        int s = e / 32, g = e / 64, w = e % 64, l = w % 32;
        int q = kq_level(x[e], step[s], off[s], 31);
        b[48 + g * 32 + l] |= (uint8_t)(w < 32 ? (q & 15) : (q & 15) << 4);
        if (q & 16) b[16 + l] |= (uint8_t)(1 << (2 * g + (w >= 32)));
    }
}

/* Symmetric K-quant scales: x = d * sc * q, q in [lo, hi], sc in [0, smax]. */
static void kq_sym(const float *x, int n_sub, int sub, int lo, int hi, int smax, uint16_t *dh, int *sc, float *step) {
    float need[16], max_need = 0;
    for (int s = 0; s < n_sub; s++) {
        need[s] = sym_step(x + s * sub, sub, lo, hi);
        max_need = need[s] > max_need ? need[s] : max_need;
    }
    *dh = f16_up(max_need / (float)smax);
    float d = fp16_to_fp32(*dh);
    for (int s = 0; s < n_sub; s++) {
        sc[s] = d > 0 ? clampi((int)ceilf(need[s] / d), 0, smax) : 0;
        step[s] = d * (float)sc[s];
    }
}

static int sym_level(float x, float step, int lo, int hi) { return step > 0 ? clampi((int)lrintf(x / step), lo, hi) : 0; }

static void q3_k_block(const float *x, uint8_t *b) {
    uint16_t dh;
    int sc[16];
    float step[16];
    kq_sym(x, 16, 16, -4, 3, 31, &dh, sc, step);
    memset(b, 0, 110);
    for (int e = 0; e < 256; e++) {
        int s = e / 16, half = e / 128, j = (e % 128) / 32, sub = (e % 32) / 16, l = e % 16;
        int q = sym_level(x[e], step[s], -4, 3) + 4; /* 0..7 */
        b[32 + half * 32 + sub * 16 + l] |= (uint8_t)((q & 3) << (2 * j));
        if (q & 4) b[e % 32] |= (uint8_t)(1 << (half * 4 + j));
    }
    for (int i = 0; i < 16; i++) {
        int v = sc[i] + 32;
        if (i < 8) b[96 + i] |= (uint8_t)(v & 15);
        else b[96 + i - 8] |= (uint8_t)((v & 15) << 4);
        b[96 + 8 + (i % 4)] |= (uint8_t)((v >> 4) << (2 * (i / 4)));
    }
    put16(b + 108, dh);
}

static void q6_k_block(const float *x, uint8_t *b) {
    uint16_t dh;
    int sc[16];
    float step[16];
    kq_sym(x, 16, 16, -32, 31, 127, &dh, sc, step);
    memset(b, 0, 210);
    for (int e = 0; e < 256; e++) {
        int s = e / 16, h = e / 128, r = e % 128, k = r / 32, l = r % 32;
        int q = sym_level(x[e], step[s], -32, 31) + 32; /* 0..63 */
        int lo = q & 15, hi = q >> 4;
        b[64 * h + l + (k % 2 ? 32 : 0)] |= (uint8_t)(k < 2 ? lo : lo << 4);
        b[128 + 32 * h + l] |= (uint8_t)(hi << (2 * k));
    }
    for (int s = 0; s < 16; s++) b[192 + s] = (uint8_t)(int8_t)sc[s];
    put16(b + 208, dh);
}

static void q8_k_block(const float *x, uint8_t *b) {
    float step = sym_step(x, 256, -127, 127), id = step > 0 ? 1.0f / step : 0.0f;
    memcpy(b, &step, 4);
    int8_t *qs = (int8_t *)(b + 4);
    for (int j = 0; j < 256; j++) qs[j] = (int8_t)clampi((int)lrintf(x[j] * id), -127, 127);
    for (int g = 0; g < 16; g++) {
        int16_t sum = 0;
        for (int l = 0; l < 16; l++) sum = (int16_t)(sum + qs[g * 16 + l]);
        memcpy(b + 260 + 2 * g, &sum, 2);
    }
}

bool quant_can_quantize(uint32_t type) {
    return quant_can_dequantize(type); /* every type we read, we can also write */
}

void quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    const ggml_type_info *ti = ggml_type_get(type);
    assert(ti && n % ti->block_size == 0);
    uint8_t *p = dst;
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case GGML_TYPE_F16:
        for (int64_t i = 0; i < n; i++) put16(p + 2 * i, fp32_to_fp16(src[i]));
        return;
    case GGML_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) put16(p + 2 * i, fp32_to_bf16(src[i]));
        return;
    default: break;
    }
    void (*f)(const float *, uint8_t *) = NULL;
    switch (type) {
    case GGML_TYPE_Q4_0: f = q4_0_block; break;
    case GGML_TYPE_Q4_1: f = q4_1_block; break;
    case GGML_TYPE_Q5_0: f = q5_0_block; break;
    case GGML_TYPE_Q5_1: f = q5_1_block; break;
    case GGML_TYPE_Q8_0: f = q8_0_block; break;
    case GGML_TYPE_Q2_K: f = q2_k_block; break;
    case GGML_TYPE_Q3_K: f = q3_k_block; break;
    case GGML_TYPE_Q4_K: f = q4_k_block; break;
    case GGML_TYPE_Q5_K: f = q5_k_block; break;
    case GGML_TYPE_Q6_K: f = q6_k_block; break;
    case GGML_TYPE_Q8_K: f = q8_k_block; break;
    default: assert(!"type cannot be quantized"); return;
    }
    for (int64_t i = 0, nb = n / ti->block_size; i < nb; i++) f(src + i * ti->block_size, p + i * ti->type_size);
}

float quant_max_error(uint32_t type, const void *block, int e) {
    const uint8_t *b = block;
    uint16_t h;
    switch (type) {
    case GGML_TYPE_F32: return 0.0f;
    case GGML_TYPE_F16: case GGML_TYPE_BF16: return INFINITY; /* relative, not checked here */
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1:
        memcpy(&h, b, 2);
        return 0.5f * fp16_to_fp32(h);
    case GGML_TYPE_Q2_K: {
        memcpy(&h, b + 80, 2);
        return 0.5f * fp16_to_fp32(h) * (float)(b[e / 16] & 15);
    }
    case GGML_TYPE_Q3_K: {
        int8_t sc[16];
        q3k_unpack_scales(b + 96, sc);
        memcpy(&h, b + 108, 2);
        return 0.5f * fp16_to_fp32(h) * fabsf((float)sc[e / 16]);
    }
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
        uint8_t sc, m;
        k4_scale_min(e / 32, b + 4, &sc, &m);
        memcpy(&h, b, 2);
        return 0.5f * fp16_to_fp32(h) * (float)sc;
    }
    case GGML_TYPE_Q6_K:
        memcpy(&h, b + 208, 2);
        return 0.5f * fp16_to_fp32(h) * fabsf((float)(int8_t)b[192 + e / 16]);
    default: return INFINITY;
    }
}
