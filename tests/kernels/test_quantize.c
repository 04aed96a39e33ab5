/* test_quantize.c - every quantizer round-trips within the bound its format
 * implies (half a step of the element's block), on several distributions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/quantize.h"
#include "test_util.h"

static uint64_t g_rng = 0x1234567;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g_rng >> 40) / 16777216.0f;
}

static void fill(float *x, int n, int kind) {
    for (int i = 0; i < n; i++) {
        float u = frand() * 2.0f - 1.0f;
        switch (kind) {
        case 0: x[i] = u * 0.02f; break;                      /* typical weights */
        case 1: x[i] = u; break;                              /* unit uniform */
        case 2: x[i] = fabsf(u) + 0.5f; break;                /* all positive, offset */
        case 3: x[i] = -fabsf(u) * 3.0f; break;               /* all negative */
        case 4: x[i] = (i % 37 == 0) ? u * 50.0f : u * 0.1f; break; /* outliers */
        case 5: x[i] = 0.0f; break;                           /* zeros */
        default: x[i] = (i % 2 ? 1.0f : -1.0f) * 1e-3f; break;
        }
    }
}

static void check_type(uint32_t type) {
    const ggml_type_info *ti = ggml_type_get(type);
    int n = 4096;
    float x[4096], y[4096];
    uint8_t q[4096 * 4];
    double worst = 0;
    for (int kind = 0; kind < 7; kind++) {
        fill(x, n, kind);
        quantize_row(type, x, q, n);
        dequantize_row(type, q, y, n);
        for (int i = 0; i < n; i++) {
            const uint8_t *blk = q + (size_t)(i / (int)ti->block_size) * ti->type_size;
            float bound = quant_max_error(type, blk, i % (int)ti->block_size);
            float err = fabsf(x[i] - y[i]);
            if (type == GGML_TYPE_F16) bound = fabsf(x[i]) * ldexpf(1.0f, -11) + ldexpf(1.0f, -25);
            if (type == GGML_TYPE_BF16) bound = fabsf(x[i]) * ldexpf(1.0f, -8);
            /* float arithmetic slack: a few ulps of the value */
            bound = bound * 1.0001f + fabsf(x[i]) * 1e-6f + 1e-12f;
            if (!(err <= bound))
                fail_msg("%s kind %d element %d: x %.9g -> %.9g, error %.3g > bound %.3g", ti->name, kind, i, x[i], y[i], err, bound);
            double rel = bound > 0 ? err / bound : 0;
            worst = rel > worst ? rel : worst;
        }
        if (kind == 5)
            for (int i = 0; i < n; i++) assert_true(y[i] == 0.0f);
    }
    print_message("%-5s worst error / bound = %.3f\n", ti->name, worst);
}

static void test_all_types(void **state) {
    (void)state;
    uint32_t types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,
                        GGML_TYPE_Q5_1, GGML_TYPE_Q8_0, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                        GGML_TYPE_Q6_K, GGML_TYPE_Q8_K};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        assert_true(quant_can_quantize(types[i]));
        if (types[i] != GGML_TYPE_Q8_K) check_type(types[i]);
    }
    assert_false(quant_can_quantize(GGML_TYPE_IQ2_XXS));
}

/* The bounds are tight enough to mean something: 4-bit types on unit-uniform
 * data have RMS error near step/sqrt(12) of a ~2/15 step. */
static void test_rms_sizes(void **state) {
    (void)state;
    float x[4096], y[4096];
    uint8_t q[4096 * 4];
    struct { uint32_t t; double max_rms; } cases[] = {
        {GGML_TYPE_Q8_0, 0.005}, {GGML_TYPE_Q6_K, 0.02}, {GGML_TYPE_Q5_0, 0.04}, {GGML_TYPE_Q5_K, 0.04},
        {GGML_TYPE_Q4_0, 0.08}, {GGML_TYPE_Q4_K, 0.08}, {GGML_TYPE_Q3_K, 0.16}, {GGML_TYPE_Q2_K, 0.3}};
    fill(x, 4096, 1);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        quantize_row(cases[c].t, x, q, 4096);
        dequantize_row(cases[c].t, q, y, 4096);
        double se = 0;
        for (int i = 0; i < 4096; i++) se += (double)(x[i] - y[i]) * (x[i] - y[i]);
        double rms = sqrt(se / 4096);
        print_message("%-5s RMS error on U(-1,1): %.4f\n", ggml_type_name(cases[c].t), rms);
        assert_true(rms < cases[c].max_rms);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_all_types), cmocka_unit_test(test_rms_sizes)};
    return cmocka_run_group_tests_name("quantize", tests, NULL, NULL);
}
