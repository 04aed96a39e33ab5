/* test_quants.c - dequantization of crafted blocks, each expected value
 * computed from the GGUF block layout written out independently here (index
 * arithmetic and encoders rather than the decoder's loops), plus fp16/bf16
 * conversions on known values. */
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/quants.h"
#include "test_util.h"

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void expect_row(uint32_t type, const uint8_t *block, int n, const float *want) {
    float got[256];
    dequantize_row(type, block, got, n);
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("%s element %d: got %.9g want %.9g", ggml_type_name(type), i, got[i], want[i]);
}

static void test_fp16_bf16(void **state) {
    (void)state;
    assert_true(fp16_to_fp32(0x3C00) == 1.0f);
    assert_true(fp16_to_fp32(0xC000) == -2.0f);
    assert_true(fp16_to_fp32(0x7BFF) == 65504.0f);
    assert_true(fp16_to_fp32(0x0001) == ldexpf(1.0f, -24));
    assert_true(fp16_to_fp32(0x03FF) == ldexpf(1023.0f, -24));
    assert_true(isinf(fp16_to_fp32(0x7C00)));
    assert_true(isnan(fp16_to_fp32(0x7E00)));
    assert_int_equal(fp32_to_fp16(1.0f), 0x3C00);
    assert_int_equal(fp32_to_fp16(-2.0f), 0xC000);
    assert_int_equal(fp32_to_fp16(65504.0f), 0x7BFF);
    assert_int_equal(fp32_to_fp16(65520.0f), 0x7C00);         /* rounds up to inf */
    assert_int_equal(fp32_to_fp16(ldexpf(1.0f, -24)), 0x0001);
    assert_int_equal(fp32_to_fp16(ldexpf(1.0f, -25)), 0x0000); /* tie to even */
    assert_int_equal(fp32_to_fp16(ldexpf(3.0f, -25)), 0x0002); /* 1.5 units: tie to even = 2 */
    assert_int_equal(fp32_to_fp16(1.0f + ldexpf(1.0f, -11)), 0x3C00); /* tie to even */
    assert_int_equal(fp32_to_fp16(1.0f + ldexpf(3.0f, -11)), 0x3C02);
    /* every half survives a round trip */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_fp32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(fp32_to_fp16(f), h);
    }
    assert_true(bf16_to_fp32(0x3F80) == 1.0f);
    assert_true(bf16_to_fp32(0xC040) == -3.0f);
    assert_int_equal(fp32_to_bf16(1.0f), 0x3F80);
    assert_int_equal(fp32_to_bf16(1.00390625f), 0x3F80);  /* halfway 1 + 2^-8: to even */
    assert_int_equal(fp32_to_bf16(1.01171875f), 0x3F82);  /* 1 + 3*2^-8: halfway, to even (up) */
}

static void test_legacy_quants(void **state) {
    (void)state;
    uint8_t b[40];
    float want[32];
    /* Q4_0: d = 0.5; low nibble j, high nibble 15-j */
    memset(b, 0, sizeof b);
    put16(b, 0x3800);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    for (int j = 0; j < 16; j++) want[j] = (float)(j - 8) * 0.5f, want[j + 16] = (float)(7 - j) * 0.5f;
    expect_row(GGML_TYPE_Q4_0, b, 32, want);
    /* Q4_1: d = 0.25, m = -1 */
    put16(b, 0x3400);
    put16(b + 2, 0xBC00);
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(j | (j << 4));
    for (int j = 0; j < 16; j++) want[j] = want[j + 16] = (float)j * 0.25f - 1.0f;
    expect_row(GGML_TYPE_Q4_1, b, 32, want);
    /* Q5_0: d = 1; high bits set for elements 16..31 only */
    put16(b, 0x3C00);
    uint32_t qh = 0xFFFF0000u;
    memcpy(b + 2, &qh, 4);
    for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(j | (j << 4));
    for (int j = 0; j < 16; j++) want[j] = (float)(j - 16), want[j + 16] = (float)j;
    expect_row(GGML_TYPE_Q5_0, b, 32, want);
    /* Q5_1: d = 2, m = 0.5; high bits for elements 0..15 */
    put16(b, 0x4000);
    put16(b + 2, 0x3800);
    qh = 0x0000FFFFu;
    memcpy(b + 4, &qh, 4);
    for (int j = 0; j < 16; j++) b[8 + j] = (uint8_t)((15 - j) | (j << 4));
    for (int j = 0; j < 16; j++) want[j] = (float)(31 - j) * 2.0f + 0.5f, want[j + 16] = (float)j * 2.0f + 0.5f;
    expect_row(GGML_TYPE_Q5_1, b, 32, want);
    /* Q8_0: d = 0.125, q = 8j - 128 */
    put16(b, 0x3000);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(8 * j - 128);
    for (int j = 0; j < 32; j++) want[j] = (float)j - 16.0f;
    expect_row(GGML_TYPE_Q8_0, b, 32, want);
}

static void test_q2_k(void **state) {
    (void)state;
    uint8_t b[84];
    float want[256];
    /* scales[i]: scale i (low nibble), min 1 (high nibble); every qs byte 0xE4
     * holds 0,1,2,3 at shifts 0,2,4,6; d = 1, dmin = 0.5 */
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)(i | (1 << 4));
    memset(b + 16, 0xE4, 64);
    put16(b + 80, 0x3C00);
    put16(b + 82, 0x3800);
    for (int e = 0; e < 256; e++) {
        int half = e / 128, j = (e % 128) / 32, sub = (e % 32) / 16;
        int is = half * 8 + j * 2 + sub;
        want[e] = 1.0f * (float)is * (float)j - 0.5f * 1.0f;
    }
    expect_row(GGML_TYPE_Q2_K, b, 256, want);
}

/* Q3_K scales: sixteen 6-bit values v, meaning v - 32, packed in 12 bytes. */
static void pack_q3k_scales(const int sc[16], uint8_t out[12]) {
    memset(out, 0, 12);
    for (int i = 0; i < 16; i++) {
        int v = sc[i] + 32;
        if (i < 8) out[i] |= (uint8_t)(v & 15);
        else out[i - 8] |= (uint8_t)((v & 15) << 4);
        out[8 + (i % 4)] |= (uint8_t)((v >> 4) << (2 * (i / 4)));
    }
}

static void test_q3_k(void **state) {
    (void)state;
    uint8_t b[110];
    float want[256];
    int sc[16];
    for (int i = 0; i < 16; i++) sc[i] = i - 8;
    for (int l = 0; l < 32; l++) b[l] = (l % 2) ? 0x00 : 0xFF; /* hmask: odd positions get -4 */
    memset(b + 32, 0xE4, 64);
    pack_q3k_scales(sc, b + 96);
    put16(b + 108, 0x3800); /* d = 0.5 */
    int8_t unpacked[16];
    q3k_unpack_scales(b + 96, unpacked);
    for (int i = 0; i < 16; i++) assert_int_equal(unpacked[i], sc[i]);
    for (int e = 0; e < 256; e++) {
        int half = e / 128, j = (e % 128) / 32, sub = (e % 32) / 16;
        int is = half * 8 + j * 2 + sub;
        int q = j - ((e % 32) % 2 ? 4 : 0);
        want[e] = 0.5f * (float)sc[is] * (float)q;
    }
    expect_row(GGML_TYPE_Q3_K, b, 256, want);
}

/* Q4_K/Q5_K scales: eight 6-bit scales and mins in 12 bytes. */
static void pack_k4_scales(const int sc[8], const int mn[8], uint8_t q[12]) {
    memset(q, 0, 12);
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

static void test_q4_k_q5_k(void **state) {
    (void)state;
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) sc[j] = 10 + 7 * j, mn[j] = 3 + 8 * j;
    uint8_t b[176];
    float want[256];
    /* Q4_K: d = 1, dmin = 0.5 */
    put16(b, 0x3C00);
    put16(b + 2, 0x3800);
    pack_k4_scales(sc, mn, b + 4);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        k4_scale_min(j, b + 4, &s, &m);
        assert_int_equal(s, sc[j]);
        assert_int_equal(m, mn[j]);
    }
    for (int l = 0; l < 128; l++) b[16 + l] = (uint8_t)((l % 16) | ((15 - l % 16) << 4));
    for (int e = 0; e < 256; e++) {
        int g = e / 64, w = e % 64, j = 2 * g + (w >= 32);
        int q = w < 32 ? w % 16 : 15 - (w - 32) % 16;
        want[e] = 1.0f * (float)sc[j] * (float)q - 0.5f * (float)mn[j];
    }
    expect_row(GGML_TYPE_Q4_K, b, 256, want);
    /* Q5_K: same scales; qh[l] = 0x55 for even l (first halves), 0xAA for odd */
    put16(b, 0x3C00);
    put16(b + 2, 0x3800);
    pack_k4_scales(sc, mn, b + 4);
    for (int l = 0; l < 32; l++) b[16 + l] = (l % 2) ? 0xAA : 0x55;
    for (int l = 0; l < 128; l++) b[48 + l] = (uint8_t)((l % 16) | ((15 - l % 16) << 4));
    for (int e = 0; e < 256; e++) {
        int g = e / 64, w = e % 64, j = 2 * g + (w >= 32), l = w % 32;
        int q = w < 32 ? w % 16 : 15 - (w - 32) % 16;
        int high = w < 32 ? (l % 2 == 0) : (l % 2 == 1);
        want[e] = 1.0f * (float)sc[j] * (float)(q + 16 * high) - 0.5f * (float)mn[j];
    }
    expect_row(GGML_TYPE_Q5_K, b, 256, want);
}

static void test_q6_k(void **state) {
    (void)state;
    uint8_t b[210];
    float want[256];
    for (int i = 0; i < 128; i++) b[i] = (uint8_t)(i * 37);
    for (int i = 0; i < 64; i++) b[128 + i] = (uint8_t)(i * 91);
    for (int i = 0; i < 16; i++) b[192 + i] = (uint8_t)(int8_t)(i - 8);
    put16(b + 208, 0x3400); /* d = 0.25 */
    for (int e = 0; e < 256; e++) {
        int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
        uint8_t lo_byte = b[64 * h + l + (k % 2 ? 32 : 0)];
        int lo = k < 2 ? (lo_byte & 15) : (lo_byte >> 4);
        int hi = (b[128 + 32 * h + l] >> (2 * k)) & 3;
        int scale = (int8_t)b[192 + 8 * h + l / 16 + 2 * k];
        want[e] = 0.25f * (float)scale * (float)((lo | (hi << 4)) - 32);
    }
    expect_row(GGML_TYPE_Q6_K, b, 256, want);
}

static void test_multi_block_rows(void **state) {
    (void)state;
    /* a row of 3 Q8_0 blocks: block i has d = 1 and all q = i + 1 */
    uint8_t row[3 * 34];
    for (int i = 0; i < 3; i++) {
        put16(row + 34 * i, 0x3C00);
        memset(row + 34 * i + 2, i + 1, 32);
    }
    float got[96];
    dequantize_row(GGML_TYPE_Q8_0, row, got, 96);
    for (int e = 0; e < 96; e++) assert_true(got[e] == (float)(e / 32 + 1));
    assert_true(quant_can_dequantize(GGML_TYPE_Q6_K));
    assert_false(quant_can_dequantize(GGML_TYPE_IQ2_XXS));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_bf16),   cmocka_unit_test(test_legacy_quants), cmocka_unit_test(test_q2_k),
        cmocka_unit_test(test_q3_k),        cmocka_unit_test(test_q4_k_q5_k),     cmocka_unit_test(test_q6_k),
        cmocka_unit_test(test_multi_block_rows),
    };
    return cmocka_run_group_tests_name("quants", tests, NULL, NULL);
}
