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
#include "kernels/cpu.h"
#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "kernels/qdot.h"
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

/* One matrix of `type` in the loader's layout for this processor (64-row
 * groups of x64, QDOT_Q4_0X64, QDOT_Q5_0X64 or QDOT_Q8_0X64, on AVX-512):
 * the rows are cut into tasks of whole groups at every thread
 * count, for one token and for several. */
static void grouped_rows(uint32_t type, int64_t cols, uint32_t x64) {
    enum { ROWS = 192 };
    size_t rb = ggml_row_size(type, cols);
    uint8_t *q = malloc(rb * ROWS), *packed = malloc(rb * ROWS);
    float *wd = malloc(sizeof(float) * ROWS * cols), *x = malloc(sizeof(float) * cols * MAX_NT);
    float *out = malloc(sizeof(float) * ROWS * MAX_NT);
    assert_true(q && packed && wd && x && out);
    for (int64_t r = 0; r < ROWS; r++) {
        for (int i = 0; i < cols; i++) wd[r * cols + i] = frand() * 0.1f;
        quantize_row(type, wd + r * cols, q + (size_t)r * rb, cols);
        dequantize_row(type, q + (size_t)r * rb, wd + r * cols, cols);
    }
    for (int i = 0; i < cols * MAX_NT; i++) x[i] = frand();
    uint32_t rt = qdot_repack_type_at(type, ROWS, cols, cpu_level_get());
    if (rt) qdot_repack_as(rt, type, q, packed, ROWS, cols);
    else memcpy(packed, q, rb * ROWS);
    if (cpu_level_get() >= CPU_LEVEL_AVX512) assert_int_equal(rt, x64);
    weight w = {.type = rt ? rt : type, .n_cols = cols, .n_rows = ROWS, .row_bytes = rb, .data = packed};
    const int nts[] = {1, 3, MAX_NT};
    for (int threads = 1; threads <= 3; threads++) {
        assert_int_equal(ops_set_threads(threads), 0);
        for (size_t c = 0; c < sizeof nts / sizeof *nts; c++) {
            int nt = nts[c];
            memset(out, 0xff, sizeof(float) * ROWS * MAX_NT); /* NaN */
            assert_int_equal(op_matmul(out, &w, x, nt), 0);
            for (int t = 0; t < nt; t++)
                for (int64_t r = 0; r < ROWS; r++) {
                    double s = 0, a = 0;
                    for (int i = 0; i < cols; i++) {
                        double p = (double)wd[r * cols + i] * x[t * cols + i];
                        s += p;
                        a += fabs(p);
                    }
                    double got = out[(size_t)t * ROWS + (size_t)r], tol = 0.01 * a + 1e-5;
                    if (!(fabs(got - s) <= tol))
                        fail_msg("threads %d nt %d out[%d][%lld] = %g, expected %g", threads, nt, t, (long long)r, got, s);
                }
        }
    }
    ops_set_threads(1);
    free(q);
    free(packed);
    free(wd);
    free(x);
    free(out);
}

static void test_grouped_rows(void **state) {
    (void)state;
    grouped_rows(GGML_TYPE_Q4_0, 4096 + 128, QDOT_Q4_0X64);
    grouped_rows(GGML_TYPE_Q8_0, 2048 + 128, QDOT_Q8_0X64);
    grouped_rows(GGML_TYPE_Q8_0, 128 * 7, QDOT_Q8_0X64);
    grouped_rows(GGML_TYPE_Q5_0, 128 * 7, QDOT_Q5_0X64);
    grouped_rows(GGML_TYPE_Q5_0, 4864, QDOT_Q5_0X64);
}

/* op_swiglu at every SIMD level (AVX-512 and AVX2 with their own e^x)
 * against double precision over gates in [-40, 40] and a length that
 * leaves a partial vector, in place as llm.c calls it. */
static void test_swiglu(void **state) {
    (void)state;
    enum { N = 1000 + 37 };
    float *g = malloc(sizeof(float) * N), *g0 = malloc(sizeof(float) * N), *u = malloc(sizeof(float) * N);
    double *want = malloc(sizeof(double) * N);
    assert_true(g && g0 && u && want);
    for (int i = 0; i < N; i++) {
        g0[i] = 40.0f * frand();
        u[i] = frand();
        want[i] = (double)g0[i] / (1.0 + exp(-(double)g0[i])) * u[i];
    }
    cpu_level saved = cpu_level_get();
    for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
        cpu_level_set((cpu_level)lvl);
        memcpy(g, g0, sizeof(float) * N);
        op_swiglu(g, g, u, N);
        for (int i = 0; i < N; i++)
            if (fabs(g[i] - want[i]) > 2e-6 * fabs(want[i]) + 1e-30)
                fail_msg("level %s: swiglu[%d] = %.9g, expected %.9g", cpu_level_name((cpu_level)lvl), i, g[i], want[i]);
    }
    cpu_level_set(saved);
    free(g);
    free(g0);
    free(u);
    free(want);
}

/* op_argmax at every SIMD level: the first index of the largest value,
 * with lengths around the vector widths, ties, NaNs (never chosen) and
 * infinities, against the definition written out here. */
static int argmax_expected(const float *x, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i]) && (best < 0 || x[i] > x[best])) best = i;
    return best < 0 ? 0 : best;
}

static void test_argmax(void **state) {
    (void)state;
    enum { MAXN = 151936 };
    float *x = malloc(sizeof(float) * MAXN);
    assert_non_null(x);
    const int lens[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1037, MAXN};
    cpu_level saved = cpu_level_get();
    for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
        cpu_level_set((cpu_level)lvl);
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            int n = lens[li];
            for (int trial = 0; trial < 8; trial++) {
                for (int i = 0; i < n; i++) x[i] = frand() * 10.0f;
                int at = (int)((g_rng >> 20) % (uint64_t)n);
                if (trial == 1) x[at] = 20.0f, x[n - 1] = 20.0f;     /* a tie: the first wins */
                if (trial == 2) x[0] = NAN, x[at] = NAN;             /* NaNs are skipped */
                if (trial == 3) x[at] = INFINITY;
                if (trial == 4)
                    for (int i = 0; i < n; i++) x[i] = -INFINITY;    /* all equal: index 0 */
                if (trial == 5)
                    for (int i = 0; i < n; i++) x[i] = NAN;          /* nothing to choose: 0 */
                if (trial == 6) x[n - 1] = 11.0f;                    /* in the tail */
                if (trial == 7)
                    for (int i = 0; i < n; i++) x[i] = -1.0f - (float)i; /* the first element */
                int got = op_argmax(x, n), want = argmax_expected(x, n);
                if (got != want) fail_msg("level %s n %d trial %d: argmax %d, expected %d", cpu_level_name((cpu_level)lvl), n, trial, got, want);
            }
        }
    }
    cpu_level_set(saved);
    free(x);
}

/* op_rmsnorm at every level against double precision, for the model
 * widths and head sizes it runs at and lengths with partial vectors, in
 * place as the per-head norms call it. */
static void test_rmsnorm(void **state) {
    (void)state;
    const int lens[] = {1, 37, 64, 128, 896, 2048, 4096 + 13};
    cpu_level saved = cpu_level_get();
    for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
        cpu_level_set((cpu_level)lvl);
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            int n = lens[li];
            float *x = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
            double *want = malloc(sizeof(double) * (size_t)n);
            assert_true(x && g && want);
            double ss = 0;
            for (int i = 0; i < n; i++) {
                x[i] = frand() * 3.0f;
                g[i] = frand();
                ss += (double)x[i] * x[i];
            }
            double scale = 1.0 / sqrt(ss / n + 1e-6);
            for (int i = 0; i < n; i++) want[i] = x[i] * scale * g[i];
            op_rmsnorm(x, x, g, n, 1e-6f);
            for (int i = 0; i < n; i++)
                if (fabs(x[i] - want[i]) > 1e-5 * fabs(want[i]) + 1e-7)
                    fail_msg("level %s n %d: rmsnorm[%d] = %.9g, expected %.9g", cpu_level_name((cpu_level)lvl), n, i, x[i], want[i]);
            free(x);
            free(g);
            free(want);
        }
    }
    cpu_level_set(saved);
}

/* op_f32_to_f16 at every level gives fp32_to_fp16's bits for every input:
 * random bit patterns (NaNs, infinities, subnormals of both formats
 * included), the rounding boundaries around half's range, and lengths that
 * end in partial vectors. */
static void test_f32_to_f16(void **state) {
    (void)state;
    enum { N = 200000 + 11 };
    float *x = malloc(sizeof(float) * N);
    uint16_t *h = malloc(sizeof(uint16_t) * N);
    assert_true(x && h);
    const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFF800001u, 0x477FEFFFu,
                              0x477FF000u, 0x38800000u, 0x387FFFFFu, 0x33000000u, 0x33000001u, 0x32FFFFFFu, 0x3F801000u,
                              0x3F803000u, 0x3F800FFFu, 0x00000001u};
    for (int i = 0; i < N; i++) {
        uint32_t b;
        g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
        if (i < (int)(sizeof edges / sizeof *edges)) b = edges[i];
        else if (i % 2) b = (uint32_t)(g_rng >> 32); /* any pattern */
        else b = (uint32_t)(0x30000000u + (g_rng >> 32) % 0x18000000u) | (uint32_t)(g_rng & 0x80000000u); /* near half's range */
        memcpy(&x[i], &b, 4);
    }
    cpu_level saved = cpu_level_get();
    for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
        cpu_level_set((cpu_level)lvl);
        const int lens[] = {N, 5, 16, 31};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            memset(h, 0xAB, sizeof(uint16_t) * N);
            op_f32_to_f16(h, x, lens[li]);
            for (int i = 0; i < lens[li]; i++) {
                uint16_t want = fp32_to_fp16(x[i]);
                uint32_t b;
                memcpy(&b, &x[i], 4);
                if (h[i] != want) fail_msg("level %s: f16 of 0x%08x = 0x%04x, expected 0x%04x", cpu_level_name((cpu_level)lvl), b, h[i], want);
            }
            if (lens[li] < N && h[lens[li]] != 0xABAB) fail_msg("level %s: wrote past %d elements", cpu_level_name((cpu_level)lvl), lens[li]);
        }
    }
    cpu_level_set(saved);
    free(x);
    free(h);
}

/* op_exp_weights at every level: each weight within 2 ulp of e^((x - mx)
 * / T) computed in double, plus what rounding the argument to float moves
 * (below e^-87 the AVX-512 version clamps, so an absolute 2e-38 there), 1 exactly at the maximum (also when it is +inf)
 * and 0 exactly at -inf; the returned sum is that of the weights written. */
static void test_exp_weights(void **state) {
    (void)state;
    enum { N = 1000 + 13 };
    float *x = malloc(sizeof(float) * N), *w = malloc(sizeof(float) * N);
    assert_true(x && w);
    for (int i = 0; i < N; i++) x[i] = -30.0f * fabsf(frand() * frand()) - 1.0f; /* 2 to 32 below the maximum */
    x[7] = 1.0f;                                                          /* the maximum */
    x[100] = 1.0f;
    x[3] = -INFINITY;
    x[N - 1] = -INFINITY;
    x[500] = -200.0f; /* e^-201 / T: clamped on AVX-512 */
    cpu_level saved = cpu_level_get();
    for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
        cpu_level_set((cpu_level)lvl);
        for (int pass = 0; pass < 2; pass++) {
            const float t = pass ? 0.7f : 1.3f;
            memcpy(w, x, sizeof(float) * N);
            double got_sum = op_exp_weights(w, N, 1.0f, 1.0f / t), sum = 0;
            for (int i = 0; i < N; i++) {
                double arg = ((double)x[i] - 1.0) * (double)(1.0f / t), want = x[i] == -INFINITY ? 0.0 : exp(arg);
                if (x[i] == 1.0f && w[i] != 1.0f) fail_msg("level %s: weight of the maximum %.9g", cpu_level_name((cpu_level)lvl), w[i]);
                if (x[i] == -INFINITY && w[i] != 0.0f) fail_msg("level %s: weight of -inf %.9g", cpu_level_name((cpu_level)lvl), w[i]);
                /* 2 ulp, plus the float rounding of the argument (x - mx) * inv_t */
                if (fabs(w[i] - want) > (2.4e-7 + 2.4e-7 * fabs(arg)) * want + 2e-38)
                    fail_msg("level %s T %g: weight[%d] of %.9g = %.9g, expected %.9g", cpu_level_name((cpu_level)lvl), t, i, x[i], w[i], want);
                sum += w[i];
            }
            if (fabs(got_sum - sum) > 1e-12 * sum) fail_msg("level %s: sum %.17g, expected %.17g", cpu_level_name((cpu_level)lvl), got_sum, sum);
        }
        float inf2[3] = {INFINITY, 2.0f, -INFINITY};
        op_exp_weights(inf2, 3, INFINITY, 1.0f);
        if (inf2[0] != 1.0f || inf2[2] != 0.0f || !(inf2[1] <= 2e-38f))
            fail_msg("level %s: +inf maximum gives %g %g %g", cpu_level_name((cpu_level)lvl), inf2[0], inf2[1], inf2[2]);
    }
    cpu_level_set(saved);
    free(x);
    free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fused_parts), cmocka_unit_test(test_grouped_rows), cmocka_unit_test(test_swiglu), cmocka_unit_test(test_argmax),
                                       cmocka_unit_test(test_rmsnorm), cmocka_unit_test(test_f32_to_f16),
                                       cmocka_unit_test(test_exp_weights)};
    return cmocka_run_group_tests_name("ops", tests, NULL, NULL);
}
