/* test_ops.c - matrix products through the thread pool (kernels/ops.h).
 *
 * op_matmul_fused computes several matrices of one input in one parallel
 * pass. Each output is checked against its own expectation, the double
 * precision product of the dequantized weights and the float input, within
 * the error that quantizing the input to 8 bits allows: a row written to
 * the wrong place, a part that reads another's activations or a missed
 * token block is off by far more. Thread counts 1-3; one token (the ranges
 * hand-out) and 70 tokens (two token blocks, the shared counter). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ggml_types.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "test_util.h"

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g_rng >> 40) / 16777216.0f * 2.0f - 1.0f;
}

enum { N_COLS = 512, N_PARTS = 3, MAX_NT = 70 };

static void test_fused_parts(void **state) {
    (void)state;
    /* different types (so different activation formats) and row counts
     * that are not multiples of the tiles */
    const uint32_t types[N_PARTS] = {GGML_TYPE_Q4_0, GGML_TYPE_Q6_K, GGML_TYPE_Q8_0};
    const int64_t rows[N_PARTS] = {100, 36, 260};
    weight w[N_PARTS];
    float *wd[N_PARTS], *out[N_PARTS];
    float *x = malloc(sizeof(float) * N_COLS * MAX_NT);
    assert_non_null(x);
    for (int i = 0; i < N_COLS * MAX_NT; i++) x[i] = frand();
    for (int k = 0; k < N_PARTS; k++) {
        size_t rb = ggml_row_size(types[k], N_COLS);
        uint8_t *q = malloc(rb * (size_t)rows[k]);
        float *f = malloc(sizeof(float) * N_COLS);
        wd[k] = malloc(sizeof(float) * N_COLS * (size_t)rows[k]);
        out[k] = malloc(sizeof(float) * (size_t)rows[k] * MAX_NT);
        assert_true(q && f && wd[k] && out[k]);
        for (int64_t r = 0; r < rows[k]; r++) {
            for (int i = 0; i < N_COLS; i++) f[i] = frand() * 0.1f;
            quantize_row(types[k], f, q + (size_t)r * rb, N_COLS);
            dequantize_row(types[k], q + (size_t)r * rb, wd[k] + (size_t)r * N_COLS, N_COLS);
        }
        free(f);
        w[k] = (weight){.type = types[k], .n_cols = N_COLS, .n_rows = rows[k], .row_bytes = rb, .data = q};
    }
    op_matmul_out outs[N_PARTS];
    for (int k = 0; k < N_PARTS; k++) outs[k] = (op_matmul_out){out[k], &w[k]};
    const int nts[] = {1, 3, MAX_NT};
    for (int threads = 1; threads <= 3; threads++) {
        assert_int_equal(ops_set_threads(threads), 0);
        for (size_t c = 0; c < sizeof nts / sizeof *nts; c++) {
            int nt = nts[c];
            for (int k = 0; k < N_PARTS; k++) memset(out[k], 0xff, sizeof(float) * (size_t)rows[k] * MAX_NT); /* NaN */
            assert_int_equal(op_matmul_fused(outs, N_PARTS, x, nt), 0);
            for (int k = 0; k < N_PARTS; k++)
                for (int t = 0; t < nt; t++)
                    for (int64_t r = 0; r < rows[k]; r++) {
                        double s = 0, a = 0;
                        for (int i = 0; i < N_COLS; i++) {
                            double p = (double)wd[k][r * N_COLS + i] * x[t * N_COLS + i];
                            s += p;
                            a += fabs(p);
                        }
                        /* 8-bit input: each product off by at most 1/254 of the block's largest |x| */
                        double got = out[k][(size_t)t * (size_t)rows[k] + (size_t)r], tol = 0.01 * a + 1e-5;
                        if (!(fabs(got - s) <= tol))
                            fail_msg("threads %d nt %d part %d (%s) out[%d][%lld] = %g, expected %g", threads, nt, k,
                                     ggml_type_name(types[k]), t, (long long)r, got, s);
                    }
        }
    }
    ops_set_threads(1);
    for (int k = 0; k < N_PARTS; k++) {
        free((void *)w[k].data);
        free(wd[k]);
        free(out[k]);
    }
    free(x);
}

/* op_swiglu (the AVX-512 version on such machines, with its own e^x)
 * against double precision over gates in [-40, 40] and a length that
 * leaves a partial vector, in place as llm.c calls it. */
static void test_swiglu(void **state) {
    (void)state;
    enum { N = 1000 + 37 };
    float *g = malloc(sizeof(float) * N), *u = malloc(sizeof(float) * N);
    double *want = malloc(sizeof(double) * N);
    assert_true(g && u && want);
    for (int i = 0; i < N; i++) {
        g[i] = 40.0f * frand();
        u[i] = frand();
        want[i] = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    }
    op_swiglu(g, g, u, N);
    for (int i = 0; i < N; i++)
        if (fabs(g[i] - want[i]) > 2e-6 * fabs(want[i]) + 1e-30)
            fail_msg("swiglu[%d] = %.9g, expected %.9g", i, g[i], want[i]);
    free(g);
    free(u);
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fused_parts), cmocka_unit_test(test_swiglu)};
    return cmocka_run_group_tests_name("ops", tests, NULL, NULL);
}
