/* qdot.c - activation quantization, the scalar (reference) kernels and the
 * choice of kernel per CPU level. */
#include "kernels/qdot.h"

#include <assert.h>
#include <stdbool.h>
#include <math.h>
#include <string.h>

#include "formats/ggml_types.h"
#include "kernels/fp16.h"
#include "kernels/qdot_tile.h"
#include "kernels/quants.h"

/* True for the 16-row panel layouts of 128-element steps: QDOT_Q4_0X16,
 * QDOT_Q5_0X16, QDOT_Q8_0X16 and their 64-row groups. */
static bool x16_kind(uint32_t rtype) {
    return (rtype & QDOT_LAYOUT_MASK) == QDOT_GROUPS64 || rtype == QDOT_Q8_0X16 || rtype == QDOT_Q4_0X16 || rtype == QDOT_Q5_0X16;
}

/* True for the 64-row groups (QDOT_Q4_0X64, QDOT_Q5_0X64, QDOT_Q8_0X64). */
static bool x16_grouped(uint32_t rtype) { return (rtype & QDOT_LAYOUT_MASK) == QDOT_GROUPS64; }

qdot_act qdot_act_for(uint32_t wtype, int64_t n) {
    if (x16_kind(wtype)) return QDOT_ACT_Q8D;
    switch (wtype) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_Q8_0: return n % 32 == 0 ? QDOT_ACT_Q8B : QDOT_ACT_F32;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q6_K: return n % 256 == 0 ? QDOT_ACT_Q8K : QDOT_ACT_F32;
    case QDOT_Q4_K16: case QDOT_Q6_K16: return QDOT_ACT_Q8K;
    case QDOT_Q4_0R: case QDOT_Q5_0R: case QDOT_Q8_0R: return QDOT_ACT_Q8S;
    default: return QDOT_ACT_F32;
    }
}

static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

size_t qdot_act_row_bytes(qdot_act f, int64_t n) {
    size_t un = (size_t)n;
    switch (f) {
    case QDOT_ACT_Q8B: return round64(un + un);
    case QDOT_ACT_Q8K: return round64(un + 4 * (un / 256) + 2 * (un / 16));
    case QDOT_ACT_Q8S: return round64(2 * un);
    case QDOT_ACT_Q8D: return round64(un + un / 4);
    case QDOT_ACT_F32: break;
    }
    return round64(4 * un);
}

/* Rounds x * id to the nearest integer in [-127, 127]. */
static inline int q8(float x, float id) {
    int v = (int)lrintf(x * id);
    return v > 127 ? 127 : v < -127 ? -127 : v;
}

static float absmax(const float *x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

void qdot_quantize_act(qdot_act f, const float *x, uint8_t *dst, int64_t n) {
    if (f == QDOT_ACT_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
        return;
    }
    if (f == QDOT_ACT_Q8B) {
        assert(n % 32 == 0);
        float *dl = (float *)(void *)(dst + n);
        for (int64_t b = 0; b < n / 32; b++) {
            const float *xb = x + 32 * b;
            float id, d = qdot_q8_scale(absmax(xb, 32), &id);
            for (int i = 0; i < 32; i++) dst[32 * b + i] = (uint8_t)(q8(xb[i], id) + 128);
            for (int i = 0; i < 8; i++) dl[8 * b + i] = d;
        }
        return;
    }
    if (f == QDOT_ACT_Q8D) {
        assert(n % 32 == 0);
        float *dl = (float *)(void *)(dst + n);
        int32_t *bs = (int32_t *)(void *)(dst + n + n / 8);
        for (int64_t b = 0; b < n / 32; b++) {
            const float *xb = x + 32 * b;
            float id, d = qdot_q8_scale(absmax(xb, 32), &id);
            int sum = 0;
            for (int i = 0; i < 32; i++) {
                int v = q8(xb[i], id);
                dst[32 * b + i] = (uint8_t)(int8_t)v;
                sum += v;
            }
            dl[b] = d;
            bs[b] = sum;
        }
        return;
    }
    if (f == QDOT_ACT_Q8S) {
        assert(n % 128 == 0);
        int32_t *c = (int32_t *)(void *)(dst + n);
        float *dl = (float *)(void *)(dst + n + n / 2);
        for (int64_t b = 0; b < n / 32; b++) {
            const float *xb = x + 32 * b;
            float id, d = qdot_q8_scale(absmax(xb, 32), &id);
            for (int l = 0; l < 4; l++) { /* lane 4k + l of the step: values 4l..4l+3 of each half */
                int sum = 0;
                for (int h = 0; h < 2; h++)
                    for (int i = 0; i < 4; i++) {
                        int64_t e = 32 * b + 16 * h + 4 * l + i;
                        int v = q8(x[e], id);
                        dst[qdot_q8s_pos(e)] = (uint8_t)(int8_t)v;
                        sum += v;
                    }
                c[4 * b + l] = -8 * sum;
                dl[4 * b + l] = d;
            }
        }
        return;
    }
    assert(n % 256 == 0);
    int8_t *q = (int8_t *)dst;
    float *d = (float *)(void *)(dst + n);
    int16_t *bsum = (int16_t *)(void *)(dst + n + 4 * (n / 256));
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + 256 * b;
        float id, s = qdot_q8_scale(absmax(xb, 256), &id);
        d[b] = s;
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) {
                int v = q8(xb[16 * g + i], id);
                q[256 * b + 16 * g + i] = (int8_t)v;
                sum += v;
            }
            bsum[16 * b + g] = (int16_t)sum;
        }
    }
}

void qdot_quantize_act_level(qdot_act f, const float *x, uint8_t *dst, int64_t n, cpu_level level) {
    if (level >= CPU_LEVEL_AVX512 && f != QDOT_ACT_F32) qdot_quantize_act_avx512(f, x, dst, n);
    else if (level >= CPU_LEVEL_AVX2 && f != QDOT_ACT_F32) qdot_quantize_act_avx2(f, x, dst, n);
    else qdot_quantize_act(f, x, dst, n);
}

/* ---- scalar kernels -------------------------------------------------------------- */

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

/* The 32 signed weights of one Q4_0 / Q5_0 / Q8_0 block, and its scale. */
static float block32_weights(uint32_t wtype, const uint8_t *b, int w[32]) {
    if (wtype == GGML_TYPE_Q8_0) {
        for (int i = 0; i < 32; i++) w[i] = (int8_t)b[2 + i];
    } else if (wtype == GGML_TYPE_Q4_0) {
        for (int i = 0; i < 16; i++) {
            w[i] = (b[2 + i] & 0x0F) - 8;
            w[i + 16] = (b[2 + i] >> 4) - 8;
        }
    } else {
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        for (int i = 0; i < 16; i++) {
            w[i] = ((b[6 + i] & 0x0F) | (int)((qh >> i) & 1) << 4) - 16;
            w[i + 16] = ((b[6 + i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4) - 16;
        }
    }
    return f16_at(b);
}

static void gemm_q8b_scalar(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride,
                            int64_t n, float *out, size_t ldo, int nr, int nt, float *scratch) {
    (void)scratch;
    size_t bsz = qdot_block_bytes(wtype);
    int64_t nb = n / 32;
    for (int r = 0; r < nr; r++) {
        const uint8_t *wr = w + (size_t)r * w_stride;
        for (int t = 0; t < nt; t++) {
            const uint8_t *q = act + (size_t)t * act_stride;
            const float *dl = (const float *)(const void *)(q + n);
            float sum = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int wv[32];
                float d = block32_weights(wtype, wr + (size_t)b * bsz, wv);
                int isum = 0;
                for (int i = 0; i < 32; i++) isum += wv[i] * ((int)q[32 * b + i] - 128);
                sum += d * dl[8 * b] * (float)isum;
            }
            out[(size_t)t * ldo + (size_t)r] = sum;
        }
    }
}

/* One Q4_K or Q6_K super-block: its 256 unsigned weights q (0..15 or
 * 0..63), the per-16 scale of each element's sub-block (as 16 entries),
 * and the offsets: value = d * sc * q - dmin * m (Q4_K; m per 16 as well)
 * or d * sc * (q - 32) (Q6_K). */
typedef struct kblock {
    uint8_t q[256];
    int sc[16], m[16];
    float d, dmin;
} kblock;

static void kblock_unpack(uint32_t wtype, const uint8_t *b, kblock *k) {
    if (wtype == GGML_TYPE_Q4_K) {
        k->d = f16_at(b);
        k->dmin = f16_at(b + 2);
        const uint8_t *qs = b + 16;
        uint8_t sc[8], m[8];
        k4_scales_unpack(b + 4, sc, m);
        for (int j = 0; j < 8; j++) {
            k->sc[2 * j] = k->sc[2 * j + 1] = sc[j];
            k->m[2 * j] = k->m[2 * j + 1] = m[j];
        }
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++) {
                k->q[64 * p + l] = qs[32 * p + l] & 0x0F;
                k->q[64 * p + 32 + l] = qs[32 * p + l] >> 4;
            }
        return;
    }
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    k->d = f16_at(b + 208);
    k->dmin = 32.0f * k->d;
    for (int j = 0; j < 16; j++) {
        k->sc[j] = sc[j];
        k->m[j] = sc[j];
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *L = ql + 64 * h, *H = qh + 32 * h;
        uint8_t *q = k->q + 128 * h;
        for (int l = 0; l < 32; l++) {
            q[l] = (uint8_t)((L[l] & 0x0F) | ((H[l] >> 0) & 3) << 4);
            q[l + 32] = (uint8_t)((L[l + 32] & 0x0F) | ((H[l] >> 2) & 3) << 4);
            q[l + 64] = (uint8_t)((L[l] >> 4) | ((H[l] >> 4) & 3) << 4);
            q[l + 96] = (uint8_t)((L[l + 32] >> 4) | ((H[l] >> 6) & 3) << 4);
        }
    }
}

/* The dot product of one unpacked super-block with block b of activation
 * row `row` (QDOT_ACT_Q8K, n elements). */
static float kblock_dot_scalar(const kblock *k, const uint8_t *row, int64_t n, int64_t b) {
    const int8_t *q = (const int8_t *)row + 256 * b;
    float da = ((const float *)(const void *)(row + n))[b];
    const int16_t *bsum = (const int16_t *)(const void *)(row + n + 4 * (n / 256)) + 16 * b;
    int main = 0, off = 0;
    for (int j = 0; j < 16; j++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += (int)k->q[16 * j + i] * q[16 * j + i];
        main += k->sc[j] * s;
        off += k->m[j] * bsum[j];
    }
    return k->d * da * (float)main - k->dmin * da * (float)off;
}

static void gemm_q8k_scalar(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride,
                            int64_t n, float *out, size_t ldo, int nr, int nt, float *scratch) {
    (void)scratch;
    size_t bsz = qdot_block_bytes(wtype);
    int64_t nb = n / 256;
    for (int r = 0; r < nr; r++) {
        const uint8_t *wr = w + (size_t)r * w_stride;
        for (int t = 0; t < nt; t++) out[(size_t)t * ldo + (size_t)r] = 0.0f;
        for (int64_t b = 0; b < nb; b++) {
            kblock k;
            kblock_unpack(wtype, wr + (size_t)b * bsz, &k);
            for (int t = 0; t < nt; t++) out[(size_t)t * ldo + (size_t)r] += kblock_dot_scalar(&k, act + (size_t)t * act_stride, n, b);
        }
    }
}

/* Row r (0..15) of a QDOT_Q4_K16 super-block step (layout in qdot.h). */
static void kblock_from_q4_k16(const uint8_t *step, int r, kblock *k) {
    k->d = f16_at(step + 2 * r);
    k->dmin = f16_at(step + 32 + 2 * r);
    for (int j = 0; j < 8; j++) {
        uint8_t lo = step[64 + 16 * j + r], hi = step[192 + 16 * (j / 2) + r];
        k->sc[2 * j] = k->sc[2 * j + 1] = lo & 63;
        k->m[2 * j] = k->m[2 * j + 1] = lo >> 6 | ((hi >> (4 * (j & 1))) & 15) << 2;
    }
    for (int g = 0; g < 4; g++)
        for (int kq = 0; kq < 8; kq++)
            for (int i = 0; i < 4; i++) {
                uint8_t v = step[256 + 512 * g + 64 * kq + 4 * r + i];
                k->q[64 * g + 4 * kq + i] = v & 15;
                k->q[64 * g + 32 + 4 * kq + i] = v >> 4;
            }
}

/* Where the vectors of quad c (0..63) start in a QDOT_Q6_K16 step: its low
 * 4 bits in that of quad c % 32 (high nibbles for c >= 32), at 288 + 192u
 * for quads u < 16, + 64 for u + 16; its top 2 bits in the high-bit vector
 * of quad c % 16, at 288 + 192u + 128. */
static size_t q6_k16_low_at(int c) { return 288 + 192 * (size_t)(c % 16) + 64 * (size_t)((c % 32) / 16); }
static size_t q6_k16_high_at(int c) { return 288 + 192 * (size_t)(c % 16) + 128; }

/* Row r (0..15) of a QDOT_Q6_K16 super-block step (layout in qdot.h). */
static void kblock_from_q6_k16(const uint8_t *step, int r, kblock *k) {
    k->d = f16_at(step + 2 * r);
    k->dmin = 32.0f * k->d;
    for (int j = 0; j < 16; j++) k->sc[j] = k->m[j] = (int8_t)step[32 + 16 * j + r];
    for (int c = 0; c < 64; c++)
        for (int i = 0; i < 4; i++) {
            uint8_t lo = step[q6_k16_low_at(c) + 4 * r + i], hi = step[q6_k16_high_at(c) + 4 * r + i];
            k->q[4 * c + i] = (uint8_t)((c < 32 ? lo & 15 : lo >> 4) | ((hi >> (2 * (c / 16))) & 3) << 4);
        }
}

/* The scalar kernel of the 16-row panel types. */
static void gemm_k16_scalar(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride,
                            int64_t n, float *out, size_t ldo, int nr, int nt, float *scratch) {
    (void)scratch;
    assert(nr % 16 == 0);
    size_t step_bytes = wtype == QDOT_Q4_K16 ? 2304 : 3360;
    for (int r = 0; r < nr; r++) {
        const uint8_t *panel = w + (size_t)(r / 16) * 16 * w_stride;
        for (int t = 0; t < nt; t++) out[(size_t)t * ldo + (size_t)r] = 0.0f;
        for (int64_t b = 0; b < n / 256; b++) {
            kblock k;
            if (wtype == QDOT_Q4_K16) kblock_from_q4_k16(panel + (size_t)b * step_bytes, r % 16, &k);
            else kblock_from_q6_k16(panel + (size_t)b * step_bytes, r % 16, &k);
            for (int t = 0; t < nt; t++) out[(size_t)t * ldo + (size_t)r] += kblock_dot_scalar(&k, act + (size_t)t * act_stride, n, b);
        }
    }
}

/* True for the Q8_0 and Q5_0 layouts of 16-row panels (and their groups). */
static bool x16_is_q8(uint32_t rtype) { return x16_kind(rtype) && (rtype & QDOT_TYPE_MASK) == GGML_TYPE_Q8_0; }
static bool x16_is_q5(uint32_t rtype) { return x16_kind(rtype) && (rtype & QDOT_TYPE_MASK) == GGML_TYPE_Q5_0; }

/* Step g of 16-row panel p (counted from w) of a 16-row panel type whose
 * rows have n elements and `row` bytes: panels one after another, or for
 * the 64-row groups interleaved by fours (qdot.h). */
static const uint8_t *x16_step(uint32_t rtype, const uint8_t *w, size_t row, int64_t n, int64_t p, int64_t g) {
    if (x16_grouped(rtype))
        return w + (size_t)(p / 4) * 64 * row + qdot_x16_step_bytes(rtype) * (size_t)qdot_x64_step_at((int)(p % 4), g, n / 128);
    return w + (size_t)p * 16 * row + qdot_x16_step_bytes(rtype) * (size_t)g;
}

/* Weight e (0..31) of block k of row r in a step of a 16-row panel layout
 * (qdot.h), as a signed value. */
static int x16_weight(uint32_t rtype, const uint8_t *step, int k, int r, int e) {
    if (x16_is_q8(rtype)) return (int)step[128 + 512 * k + 64 * (e / 4) + 4 * r + e % 4] - 128;
    if (x16_is_q5(rtype)) {
        int v = (e % 16) / 4, i = e % 4;
        uint8_t byte = step[128 + 320 * k + 64 * v + 4 * r + i], hb = step[128 + 320 * k + 256 + 4 * r + i];
        int nib = e < 16 ? byte & 0x0F : byte >> 4, fifth = (hb >> (2 * v + (e < 16 ? 0 : 1))) & 1;
        return (nib | fifth << 4) - 16;
    }
    uint8_t byte = step[128 + 256 * k + 64 * ((e % 16) / 4) + 4 * r + e % 4];
    return (e < 16 ? byte & 0x0F : byte >> 4) - 8;
}

/* The scalar kernel of the 16-row panel layouts and their 64-row groups:
 * each row's blocks read back from its panel, dotted with QDOT_ACT_Q8D
 * rows. */
static void gemm_x16_scalar(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride,
                            int64_t n, float *out, size_t ldo, int nr, int nt, float *scratch) {
    (void)scratch;
    assert(nr % qdot_panel_rows(wtype) == 0);
    for (int r = 0; r < nr; r++) {
        for (int t = 0; t < nt; t++) {
            const int8_t *q = (const int8_t *)(act + (size_t)t * act_stride);
            const float *dl = (const float *)(const void *)(act + (size_t)t * act_stride + n);
            float sum = 0.0f;
            for (int64_t b = 0; b < n / 32; b++) {
                const uint8_t *step = x16_step(wtype, w, w_stride, n, r / 16, b / 4);
                int k = (int)(b % 4), isum = 0;
                for (int e = 0; e < 32; e++) isum += x16_weight(wtype, step, k, r % 16, e) * q[32 * b + e];
                sum += f16_at(step + 32 * k + 2 * (r % 16)) * dl[b] * (float)isum;
            }
            out[(size_t)t * ldo + (size_t)r] = sum;
        }
    }
}

/* ---- repacked layouts ------------------------------------------------------------- */

uint32_t qdot_repack_type(uint32_t type, int64_t n_rows, int64_t n) {
    if (type == GGML_TYPE_Q4_K) return n % 256 || n_rows % 16 ? 0 : QDOT_Q4_K16;
    if (type == GGML_TYPE_Q6_K) return n % 256 || n_rows % 16 ? 0 : QDOT_Q6_K16;
    if (n % 128) return 0;
    if (type == GGML_TYPE_Q4_0 && n_rows % 64 == 0 && n >= QDOT_X64_MIN_COLS_Q4) return QDOT_Q4_0X64;
    if (type == GGML_TYPE_Q8_0 && n_rows % 64 == 0) return QDOT_Q8_0X64;
    if (type == GGML_TYPE_Q5_0 && n_rows % 64 == 0) return QDOT_Q5_0X64;
    if (type == GGML_TYPE_Q4_0 && n_rows % 16 == 0) return QDOT_Q4_0X16;
    if (type == GGML_TYPE_Q8_0 && n_rows % 16 == 0) return QDOT_Q8_0X16;
    if (type == GGML_TYPE_Q5_0 && n_rows % 16 == 0) return QDOT_Q5_0X16;
    if (n_rows % 4) return 0;
    if (type == GGML_TYPE_Q4_0) return QDOT_Q4_0R;
    if (type == GGML_TYPE_Q5_0) return QDOT_Q5_0R;
    if (type == GGML_TYPE_Q8_0) return QDOT_Q8_0R;
    return 0;
}

uint32_t qdot_repack_type_at(uint32_t type, int64_t n_rows, int64_t n, cpu_level level) {
    uint32_t rt = level >= CPU_LEVEL_AVX2 ? qdot_repack_type(type, n_rows, n) : 0;
    if (level == CPU_LEVEL_AVX2 && x16_grouped(rt)) rt = QDOT_PANELS16 | (rt & QDOT_TYPE_MASK); /* AVX2 walks whole 16-row panels */
    if (level == CPU_LEVEL_AVX2 && qdot_gemm_avx2(rt) == NULL) rt = 0;
    return rt;
}

/* Bytes of one 128-element step of a 4-row panel (16 blocks of the type). */
static size_t panel_step_bytes(uint32_t rtype) { return rtype == QDOT_Q4_0R ? 288 : rtype == QDOT_Q5_0R ? 352 : 544; }
/* Where the step's 16 block scales start. */
static size_t panel_scales_at(uint32_t rtype) { return panel_step_bytes(rtype) - 32; }

/* Element e of panel row r (0..3) of a repacked panel, and its block scale. */
static int panel_value(uint32_t rtype, const uint8_t *panel, int r, int64_t e, float *d) {
    const uint8_t *step = panel + (size_t)(e / 128) * panel_step_bytes(rtype);
    int k = (int)(e % 128) / 32, i = (int)(e % 32);
    *d = f16_at(step + panel_scales_at(rtype) + 2 * (size_t)(4 * r + k));
    if (rtype == QDOT_Q8_0R) return (int8_t)step[128 * r + qdot_q8s_pos(e % 128)];
    uint8_t b = step[64 * r + 16 * k + i % 16];
    int v = i < 16 ? b & 0x0F : b >> 4;
    if (rtype == QDOT_Q4_0R) return v - 8;
    /* Q5_0R: bit 16k + i % 16 of the row's word for half A (i < 16) or B */
    const uint8_t *h = step + 256 + 16 * r + (i < 16 ? 0 : 8);
    int j = 16 * k + i % 16;
    return (v | ((h[j / 8] >> (j % 8)) & 1) << 4) - 16;
}

/* Repacks 16 rows (row bytes apart) of n / 256 Q4_K super-blocks from src
 * into one QDOT_Q4_K16 panel at dst. */
static void repack_q4_k16(const uint8_t *src, size_t row, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *step = dst + 2304 * b;
        memset(step + 192, 0, 64);
        for (int r = 0; r < 16; r++) {
            const uint8_t *blk = src + (size_t)r * row + 144 * (size_t)b;
            kblock k;
            kblock_unpack(GGML_TYPE_Q4_K, blk, &k);
            memcpy(step + 2 * r, blk, 2);
            memcpy(step + 32 + 2 * r, blk + 2, 2);
            for (int j = 0; j < 8; j++) {
                step[64 + 16 * j + r] = (uint8_t)(k.sc[2 * j] | (k.m[2 * j] & 3) << 6);
                step[192 + 16 * (j / 2) + r] |= (uint8_t)((k.m[2 * j] >> 2) << (4 * (j & 1)));
            }
            for (int g = 0; g < 4; g++)
                for (int kq = 0; kq < 8; kq++)
                    for (int i = 0; i < 4; i++)
                        step[256 + 512 * g + 64 * kq + 4 * r + i] = (uint8_t)(k.q[64 * g + 4 * kq + i] | k.q[64 * g + 32 + 4 * kq + i] << 4);
        }
    }
}

/* Repacks 16 rows (row bytes apart) of n / 256 Q6_K super-blocks from src
 * into one QDOT_Q6_K16 panel at dst. */
static void repack_q6_k16(const uint8_t *src, size_t row, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *step = dst + 3360 * b;
        memset(step + 288, 0, 3360 - 288);
        for (int r = 0; r < 16; r++) {
            const uint8_t *blk = src + (size_t)r * row + 210 * (size_t)b;
            kblock k;
            kblock_unpack(GGML_TYPE_Q6_K, blk, &k);
            memcpy(step + 2 * r, blk + 208, 2);
            for (int j = 0; j < 16; j++) step[32 + 16 * j + r] = blk[192 + j];
            for (int c = 0; c < 64; c++)
                for (int i = 0; i < 4; i++) {
                    int q = k.q[4 * c + i];
                    step[q6_k16_low_at(c) + 4 * r + i] |= (uint8_t)((q & 15) << (c < 32 ? 0 : 4));
                    step[q6_k16_high_at(c) + 4 * r + i] |= (uint8_t)((q >> 4) << (2 * (c / 16)));
                }
        }
    }
}

int qdot_panel_rows(uint32_t type) {
    if (x16_grouped(type)) return 64;
    if (x16_kind(type)) return 16;
    switch (type) {
    case QDOT_Q4_0R: case QDOT_Q5_0R: case QDOT_Q8_0R: return 4;
    case QDOT_Q4_K16: case QDOT_Q6_K16: return 16;
    default: return 1;
    }
}

void qdot_repack(uint32_t type, const void *src, void *dst, int64_t n_rows, int64_t n) {
    qdot_repack_as(qdot_repack_type(type, n_rows, n), type, src, dst, n_rows, n);
}

void qdot_repack_as(uint32_t rt, uint32_t type, const void *src, void *dst, int64_t n_rows, int64_t n) {
    assert(rt && (rt & QDOT_TYPE_MASK) == type);
    if (x16_kind(rt)) {
        size_t bsz = qdot_block_bytes(type), row = (size_t)(n / 32) * bsz;
        for (int64_t p = 0; p < n_rows / 16; p++)
            for (int64_t b = 0; b < n / 32; b++) {
                uint8_t *step = (uint8_t *)x16_step(rt, (const uint8_t *)dst, row, n, p, b / 4);
                int k = (int)(b % 4);
                for (int r = 0; r < 16; r++) {
                    const uint8_t *blk = (const uint8_t *)src + (size_t)(16 * p + r) * row + bsz * (size_t)b;
                    memcpy(step + 32 * k + 2 * r, blk, 2);
                    if ((rt & QDOT_TYPE_MASK) == GGML_TYPE_Q4_0) {
                        for (int v = 0; v < 4; v++) memcpy(step + 128 + 256 * k + 64 * v + 4 * r, blk + 2 + 4 * v, 4);
                    } else if (x16_is_q5(rt)) {
                        /* Q5_0 block: f16 d, u32 qh (bit e: fifth bit of element e), u8 qs[16] */
                        uint32_t qh;
                        memcpy(&qh, blk + 2, 4);
                        for (int v = 0; v < 4; v++) memcpy(step + 128 + 320 * k + 64 * v + 4 * r, blk + 6 + 4 * v, 4);
                        for (int i = 0; i < 4; i++) {
                            uint8_t hb = 0;
                            for (int v = 0; v < 4; v++)
                                hb |= (uint8_t)(((qh >> (4 * v + i)) & 1) << (2 * v) | ((qh >> (16 + 4 * v + i)) & 1) << (2 * v + 1));
                            step[128 + 320 * k + 256 + 4 * r + i] = hb;
                        }
                    } else {
                        for (int v = 0; v < 8; v++)
                            for (int i = 0; i < 4; i++) step[128 + 512 * k + 64 * v + 4 * r + i] = (uint8_t)(blk[2 + 4 * v + i] ^ 0x80);
                    }
                }
            }
        return;
    }
    if (rt == QDOT_Q4_K16 || rt == QDOT_Q6_K16) {
        size_t row = (size_t)(n / 256) * (rt == QDOT_Q4_K16 ? 144 : 210);
        for (int64_t p = 0; p < n_rows / 16; p++) {
            const uint8_t *s = (const uint8_t *)src + (size_t)p * 16 * row;
            uint8_t *d = (uint8_t *)dst + (size_t)p * 16 * row;
            if (rt == QDOT_Q4_K16) repack_q4_k16(s, row, d, n / 256);
            else repack_q6_k16(s, row, d, n / 256);
        }
        return;
    }
    size_t bsz = qdot_block_bytes(type), row = (size_t)(n / 32) * bsz;
    for (int64_t p = 0; p < n_rows / 4; p++) {
        uint8_t *panel = (uint8_t *)dst + (size_t)p * 4 * row;
        for (int64_t g = 0; g < n / 128; g++) {
            uint8_t *step = panel + (size_t)g * panel_step_bytes(rt);
            for (int r = 0; r < 4; r++)
                for (int k = 0; k < 4; k++) {
                    const uint8_t *b = (const uint8_t *)src + (size_t)(4 * p + r) * row + (size_t)(4 * g + k) * bsz;
                    memcpy(step + panel_scales_at(rt) + 2 * (4 * r + k), b, 2);
                    if (rt == QDOT_Q4_0R) {
                        memcpy(step + 64 * r + 16 * k, b + 2, 16);
                    } else if (rt == QDOT_Q5_0R) {
                        /* Q5_0 block: f16 d, u32 qh (bit i: fifth bit of element i), u8 qs[16] */
                        memcpy(step + 64 * r + 16 * k, b + 6, 16);
                        /* bits 0-15 of qh go to bits 16k.. of the row's word A, bits 16-31 to word B
                         * (little-endian words, as the kernels load them) */
                        uint8_t *h = step + 256 + 16 * r;
                        memcpy(h + 2 * k, b + 2, 2);
                        memcpy(h + 8 + 2 * k, b + 4, 2);
                    } else {
                        /* elements 0-15 to half A, 16-31 to half B (qdot_q8s_pos) */
                        memcpy(step + 128 * r + 16 * k, b + 2, 16);
                        memcpy(step + 128 * r + 64 + 16 * k, b + 18, 16);
                    }
                }
        }
    }
}

static void gemm_repacked_scalar(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride,
                                 int64_t n, float *out, size_t ldo, int nr, int nt, float *scratch) {
    (void)scratch;
    assert(nr % 4 == 0);
    for (int r = 0; r < nr; r++) {
        const uint8_t *panel = w + (size_t)(r / 4) * 4 * w_stride;
        for (int t = 0; t < nt; t++) {
            const int8_t *q = (const int8_t *)(act + (size_t)t * act_stride);
            const float *dl = (const float *)(const void *)(act + (size_t)t * act_stride + n + n / 2);
            float sum = 0.0f;
            for (int64_t b = 0; b < n / 32; b++) {
                int isum = 0;
                float d = 0.0f;
                for (int64_t e = 32 * b; e < 32 * b + 32; e++) isum += panel_value(wtype, panel, r % 4, e, &d) * q[qdot_q8s_pos(e)];
                sum += d * dl[4 * b] * (float)isum;
            }
            out[(size_t)t * ldo + (size_t)r] = sum;
        }
    }
}

/* The float path: each weight row expanded (or read directly for F32) once,
 * then dotted with every activation row by the level's dot product. */
static inline void gemm_f32_with(float (*dot)(const float *, const float *, int64_t), uint32_t wtype, const uint8_t *w,
                                 size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n, float *out, size_t ldo,
                                 int nr, int nt, float *scratch) {
    for (int r = 0; r < nr; r++) {
        const float *row = scratch;
        if (wtype == GGML_TYPE_F32) row = (const float *)(const void *)(w + (size_t)r * w_stride);
        else dequantize_row(wtype, w + (size_t)r * w_stride, scratch, n);
        for (int t = 0; t < nt; t++)
            out[(size_t)t * ldo + (size_t)r] = dot(row, (const float *)(const void *)(act + (size_t)t * act_stride), n);
    }
}

static float dot_f32_scalar(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

#define GEMM_F32(NAME, DOT)                                                                                                   \
    static void NAME(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n,     \
                     float *out, size_t ldo, int nr, int nt, float *scratch) {                                               \
        gemm_f32_with(DOT, wtype, w, w_stride, act, act_stride, n, out, ldo, nr, nt, scratch);                                \
    }
GEMM_F32(gemm_f32_scalar, dot_f32_scalar)
GEMM_F32(gemm_f32_avx2, qdot_dot_f32_avx2)
GEMM_F32(gemm_f32_avx512, qdot_dot_f32_avx512)


qdot_gemm_fn qdot_gemm_scalar(uint32_t wtype) {
    if (x16_kind(wtype)) return gemm_x16_scalar;
    switch (wtype) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_Q8_0: return gemm_q8b_scalar;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q6_K: return gemm_q8k_scalar;
    case QDOT_Q4_K16: case QDOT_Q6_K16: return gemm_k16_scalar;
    case QDOT_Q4_0R: case QDOT_Q5_0R: case QDOT_Q8_0R: return gemm_repacked_scalar;
    default: return NULL; /* the float path: qdot_gemm_get */
    }
}

qdot_gemm_fn qdot_gemm_get(uint32_t wtype, cpu_level level) {
    if (qdot_act_for(wtype, 0) == QDOT_ACT_F32) {
        if (!quant_can_dequantize(wtype)) return NULL;
        return level >= CPU_LEVEL_AVX512 ? gemm_f32_avx512 : level >= CPU_LEVEL_AVX2 ? gemm_f32_avx2 : gemm_f32_scalar;
    }
    qdot_gemm_fn f = NULL;
    if (level >= CPU_LEVEL_AMX) f = qdot_gemm_amx(wtype);
    if (!f && level >= CPU_LEVEL_AVX512) f = qdot_gemm_avx512(wtype);
    if (!f && level >= CPU_LEVEL_AVX2) f = qdot_gemm_avx2(wtype);
    if (!f) f = qdot_gemm_scalar(wtype);
    return f;
}

static float dot_f16_scalar(const float *a, const uint16_t *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * fp16_to_fp32(b[i]);
    return s;
}

static void axpy_f16_scalar(float *y, float s, const uint16_t *x, int n) {
    for (int i = 0; i < n; i++) y[i] += s * fp16_to_fp32(x[i]);
}

qdot_dot_f16_fn qdot_dot_f16_get(cpu_level level) {
    return level >= CPU_LEVEL_AVX512 ? qdot_dot_f16_avx512 : level >= CPU_LEVEL_AVX2 ? qdot_dot_f16_avx2 : dot_f16_scalar;
}

qdot_axpy_f16_fn qdot_axpy_f16_get(cpu_level level) {
    return level >= CPU_LEVEL_AVX512 ? qdot_axpy_f16_avx512 : level >= CPU_LEVEL_AVX2 ? qdot_axpy_f16_avx2 : axpy_f16_scalar;
}
