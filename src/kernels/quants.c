/* quants.c - reference (scalar) dequantization of every supported GGML type.
 *
 * Block layouts (little-endian, packed):
 *   Q4_0  {f16 d; u8 qs[16]}                    x = (q - 8) * d
 *   Q4_1  {f16 d; f16 m; u8 qs[16]}             x = q * d + m
 *   Q5_0  {f16 d; u8 qh[4]; u8 qs[16]}          x = (q | h << 4) - 16) * d
 *   Q5_1  {f16 d; f16 m; u8 qh[4]; u8 qs[16]}   x = (q | h << 4) * d + m
 *   Q8_0  {f16 d; i8 qs[32]}                    x = q * d
 *   Q2_K  {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}            256 per block
 *   Q3_K  {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}
 *   Q4_K  {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}
 *   Q5_K  {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
 *   Q6_K  {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}
 *   Q8_K  {f32 d; i8 qs[256]; i16 bsums[16]}
 * In 4-bit types the low nibbles of qs hold elements 0..15 of a 32-run and
 * the high nibbles elements 16..31. */
#include "kernels/quants.h"

#include <assert.h>
#include <string.h>

#include "kernels/fp16.h"

static inline float rd_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

static void deq_q4_0(const uint8_t *b, float *y) {
    float d = rd_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static void deq_q4_1(const uint8_t *b, float *y) {
    float d = rd_f16(b), m = rd_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0F) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static void deq_q5_0(const uint8_t *b, float *y) {
    float d = rd_f16(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = (float)(((qs[j] & 0x0F) | h0) - 16) * d;
        y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
    }
}

static void deq_q5_1(const uint8_t *b, float *y) {
    float d = rd_f16(b), m = rd_f16(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = (float)((qs[j] & 0x0F) | h0) * d + m;
        y[j + 16] = (float)((qs[j] >> 4) | h1) * d + m;
    }
}

static void deq_q8_0(const uint8_t *b, float *y) {
    float d = rd_f16(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

static void deq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *q = b + 16;
    float d = rd_f16(b + 80), dmin = rd_f16(b + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; j++) {
            uint8_t sc = scales[is++];
            float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
            for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l] >> shift) & 3) - ml;
            sc = scales[is++];
            dl = d * (float)(sc & 0x0F);
            ml = dmin * (float)(sc >> 4);
            for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16] >> shift) & 3) - ml;
            shift += 2;
        }
        q += 32;
    }
}

/* The 16 six-bit signed scales of a Q3_K block, unpacked from 12 bytes. */
void q3k_unpack_scales(const uint8_t *packed, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (packed[j] & 0x0F) : (packed[j - 8] >> 4);
        int hi = (packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static void deq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *q = b + 32;
    int8_t scales[16];
    q3k_unpack_scales(b + 96, scales);
    float d = rd_f16(b + 108);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; j++) {
            float dl = d * (float)scales[is++];
            for (int l = 0; l < 16; l++) *y++ = dl * (float)((int)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            dl = d * (float)scales[is++];
            for (int l = 0; l < 16; l++) *y++ = dl * (float)((int)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
            shift += 2;
            m <<= 1;
        }
        q += 32;
    }
}

void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void deq_q4_k(const uint8_t *b, float *y) {
    float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    int is = 0;
    for (int j = 0; j < 256; j += 64) {
        uint8_t sc, m;
        k4_scale_min(is, scales, &sc, &m);
        float d1 = d * sc, m1 = dmin * m;
        k4_scale_min(is + 1, scales, &sc, &m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0F) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

static void deq_q5_k(const uint8_t *b, float *y) {
    float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    int is = 0;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 256; j += 64) {
        uint8_t sc, m;
        k4_scale_min(is, scales, &sc, &m);
        float d1 = d * sc, m1 = dmin * m;
        k4_scale_min(is + 1, scales, &sc, &m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = rd_f16(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

static void deq_q8_k(const uint8_t *b, float *y) {
    float d;
    memcpy(&d, b, 4);
    const int8_t *qs = (const int8_t *)(b + 4);
    for (int j = 0; j < 256; j++) y[j] = d * (float)qs[j];
}

bool quant_can_dequantize(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
    case GGML_TYPE_Q8_K:
        return true;
    default:
        return false;
    }
}

void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    const ggml_type_info *ti = ggml_type_get(type);
    assert(ti && n % ti->block_size == 0);
    int64_t nb = n / ti->block_size;
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case GGML_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = rd_f16(p + 2 * i);
        return;
    case GGML_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = bf16_to_fp32(h);
        }
        return;
    default: break;
    }
    void (*f)(const uint8_t *, float *) = NULL;
    switch (type) {
    case GGML_TYPE_Q4_0: f = deq_q4_0; break;
    case GGML_TYPE_Q4_1: f = deq_q4_1; break;
    case GGML_TYPE_Q5_0: f = deq_q5_0; break;
    case GGML_TYPE_Q5_1: f = deq_q5_1; break;
    case GGML_TYPE_Q8_0: f = deq_q8_0; break;
    case GGML_TYPE_Q2_K: f = deq_q2_k; break;
    case GGML_TYPE_Q3_K: f = deq_q3_k; break;
    case GGML_TYPE_Q4_K: f = deq_q4_k; break;
    case GGML_TYPE_Q5_K: f = deq_q5_k; break;
    case GGML_TYPE_Q6_K: f = deq_q6_k; break;
    case GGML_TYPE_Q8_K: f = deq_q8_k; break;
    default: assert(!"type cannot be dequantized"); return;
    }
    for (int64_t i = 0; i < nb; i++) f(p + i * ti->type_size, dst + i * ti->block_size);
}
