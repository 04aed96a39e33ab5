/* test_qdot.c - the integer dot-product kernels.
 *
 * The expectation is computed independently of the kernels: weights are
 * expanded with the reference dequantizer, activations are decoded from
 * the documented byte layout, and their dot product is summed in double.
 * The scalar kernels must match it to float rounding; every SIMD level this
 * CPU has must match it too, on random inputs with tile-edge sizes. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ggml_types.h"
#include "kernels/cpu.h"
#include "kernels/fp16.h"
#include "kernels/qdot.h"
#include "kernels/quantize.h"
#include "test_util.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g_rng >> 40) / 16777216.0f * 2.0f - 1.0f;
}

/* Where element i sits in a QDOT_ACT_Q8S row: per 128 elements, half A
 * (bytes 0-63) holds values 0-15 of each of the 4 blocks, half B values
 * 16-31 (kernels/qdot.h). Written out here rather than taken from the
 * header, so the test checks the documented layout. */
static int64_t q8s_pos(int64_t i) {
    int64_t step = i / 128, blk = (i % 128) / 32, v = i % 32;
    return 128 * step + (v < 16 ? 0 : 64) + 16 * blk + v % 16;
}

/* Decodes element i of an activation row (the documented layout). */
static double act_value(qdot_act f, const uint8_t *row, int64_t n, int64_t i) {
    if (f == QDOT_ACT_F32) return ((const float *)(const void *)row)[i];
    if (f == QDOT_ACT_Q8B) return ((int)row[i] - 128) * (double)((const float *)(const void *)(row + n))[i / 4];
    if (f == QDOT_ACT_Q8S) return (int8_t)row[q8s_pos(i)] * (double)((const float *)(const void *)(row + n + n / 2))[i / 8];
    if (f == QDOT_ACT_Q8D) return (int8_t)row[i] * (double)((const float *)(const void *)(row + n))[i / 32];
    return (int8_t)row[i] * (double)((const float *)(const void *)(row + n))[i / 256];
}

enum { NR_MAX = 64, NT = 35 }; /* weight rows at most (a whole QDOT_Q4_0X64 / QDOT_Q8_0X64 group), activation rows */
/* Activation row counts tried: every tile of up to 4 rows and its edges,
 * and whole 16-row AMX tiles with and without rows left over. */
static const int k_nts[] = {1, 2, 3, 4, 5, 6, 16, 17, 32, 35};
/* Weight rows of the matrix under test: a whole 16-row panel, or 64 rows
 * while test_repacked checks the 64-row groups. */
static int NR = 16;

/* Set by test_extremes: activations of full magnitude (+-127 after
 * quantization, signs in pairs) and the weight bytes overwritten with
 * their largest magnitudes (Q4_0 nibbles 15 or 0, Q8_0 bytes -128 or 127,
 * Q4_K values 15, Q6_K values 63): the largest sums 16-bit intermediate
 * products can meet. */
static bool g_extreme;

static void set_extreme_weights(uint32_t type, uint8_t *wq, size_t wrow, int64_t n) {
    if (type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K) { /* every value 15 (Q4_K) or 63 (Q6_K) */
        for (int r = 0; r < NR; r++)
            for (int64_t b = 0; b < n / 256; b++) {
                uint8_t *blk = wq + (size_t)r * wrow + (size_t)b * (type == GGML_TYPE_Q4_K ? 144 : 210);
                if (type == GGML_TYPE_Q4_K) memset(blk + 16, 0xFF, 128);
                else memset(blk, 0xFF, 192); /* ql, qh */
            }
        return;
    }
    size_t bsz = type == GGML_TYPE_Q8_0 ? 34 : type == GGML_TYPE_Q5_0 ? 22 : 18;
    for (int r = 0; r < NR; r++)
        for (int64_t b = 0; b < n / 32; b++) {
            uint8_t *blk = wq + (size_t)r * wrow + (size_t)b * bsz;
            uint8_t v = type == GGML_TYPE_Q8_0 ? (r % 2 ? 0x80 : 0x7F) : (r % 2 ? 0xFF : 0x00);
            memset(blk + 2, v, bsz - 2);
        }
}

/* Checks the kernels of `type` (or of its repacked layout when repack is
 * set, repacked `group` rows at a time: the expectation still comes from
 * the original blocks). */
static void check_rows(uint32_t type, int64_t n, bool repack, int group) {
    float *w = malloc(sizeof(float) * (size_t)n * NR), *x = malloc(sizeof(float) * (size_t)n * NT);
    float *wd = malloc(sizeof(float) * (size_t)n), *scratch = malloc(sizeof(float) * (size_t)n);
    size_t wrow = ggml_row_size(type, n);
    uint8_t *wq = malloc(wrow * NR);
    uint32_t ktype = repack ? qdot_repack_type(type, group, n) : type;
    if (repack) assert_true(ktype != 0);
    qdot_act f = qdot_act_for(ktype, n);
    size_t arow = qdot_act_row_bytes(f, n);
    uint8_t *aq = aligned_alloc(64, arow * NT);
    assert_non_null(w);
    assert_non_null(x);
    assert_non_null(wq);
    assert_non_null(aq);
    for (int64_t i = 0; i < n * NR; i++) w[i] = frand() * 0.05f;
    for (int64_t i = 0; i < n * NT; i++) x[i] = (i % 97 == 0) ? frand() * 40.0f : frand(); /* a few outliers */
    if (g_extreme)
        for (int64_t i = 0; i < n * NT; i++) x[i] = (i / 2 + i / n) % 2 ? 1.0f : -1.0f;
    for (int r = 0; r < NR; r++) {
        if (type == GGML_TYPE_F32) memcpy(wq + r * wrow, w + r * n, wrow);
        else quantize_row(type, w + r * n, wq + r * wrow, n);
    }
    if (g_extreme) set_extreme_weights(type, wq, wrow, n);
    for (int t = 0; t < NT; t++) qdot_quantize_act(f, x + t * n, aq + t * arow, n);

    /* the activation format keeps every value within half a step */
    for (int t = 0; t < NT; t++)
        for (int64_t i = 0; i < n; i++) {
            double v = act_value(f, aq + t * arow, n, i), step = 0;
            if (f == QDOT_ACT_Q8B) step = ((const float *)(const void *)(aq + t * arow + n))[i / 4];
            if (f == QDOT_ACT_Q8K) step = ((const float *)(const void *)(aq + t * arow + n))[i / 256];
            if (f == QDOT_ACT_Q8D) {
                step = ((const float *)(const void *)(aq + t * arow + n))[i / 32];
                if (i % 32 == 0) { /* the block's sum of values */
                    int sum = 0;
                    for (int k = 0; k < 32; k++) sum += (int8_t)aq[t * arow + i + k];
                    assert_int_equal(((const int32_t *)(const void *)(aq + t * arow + n + n / 8))[i / 32], sum);
                }
            }
            if (f == QDOT_ACT_Q8S) {
                step = ((const float *)(const void *)(aq + t * arow + n + n / 2))[i / 8];
                /* the offset term of lane l of a step: -8 x the sum of the
                 * values at positions 4l..4l+3 (half A) and 64+4l.. (half B) */
                if (i % 128 < 64 && i % 4 == 0) {
                    int64_t base = i - i % 128, l = (i % 128) / 4;
                    int sum = 0;
                    for (int k = 0; k < 4; k++)
                        sum += (int8_t)aq[t * arow + base + 4 * l + k] + (int8_t)aq[t * arow + base + 64 + 4 * l + k];
                    assert_int_equal(((const int32_t *)(const void *)(aq + t * arow + n))[base / 8 + l], -8 * sum);
                }
            }
            assert_true(fabs(v - x[t * n + i]) <= step * 0.5 * 1.0001 + 1e-6);
        }

    double expect[NT][NR_MAX], scale[NT][NR_MAX];
    for (int r = 0; r < NR; r++) {
        if (type == GGML_TYPE_F32) memcpy(wd, w + r * n, sizeof(float) * (size_t)n);
        else dequantize_row(type, wq + r * wrow, wd, n);
        for (int t = 0; t < NT; t++) {
            double s = 0, a = 0;
            for (int64_t i = 0; i < n; i++) {
                double p = wd[i] * act_value(f, aq + t * arow, n, i);
                s += p;
                a += fabs(p);
            }
            expect[t][r] = s;
            scale[t][r] = a;
        }
    }
    uint8_t *wk = wq;
    if (repack) {
        wk = malloc(wrow * NR);
        assert_non_null(wk);
        for (int r = 0; r < NR; r += group) qdot_repack_as(ktype, type, wq + (size_t)r * wrow, wk + (size_t)r * wrow, group, n);
    }
    /* every level, and every prefetch policy (a hint: it must not change a result) */
    const cpu_prefetch pf_in_use = cpu_prefetch_get();
    const int n_pf = CPU_PREFETCH_NONE + 1;
    for (int lp = 0; lp < n_pf * ((int)cpu_level_max() + 1); lp++) {
        int lvl = lp / n_pf;
        cpu_prefetch_set((cpu_prefetch)(lp % n_pf));
        qdot_gemm_fn g = qdot_gemm_get(ktype, (cpu_level)lvl);
        assert_non_null(g);
        /* every sub-range, so tile edges of all sizes are exercised */
        for (int nr = qdot_panel_rows(ktype); nr <= NR; nr += repack ? qdot_panel_rows(ktype) : 3) /* whole panels */
            for (size_t ni = 0; ni < sizeof k_nts / sizeof *k_nts; ni++) {
                const int nt = k_nts[ni];
                float out[NT][NR_MAX];
                memset(out, 0xff, sizeof out);
                g(ktype, wk, wrow, aq, arow, n, &out[0][0], NR_MAX, nr, nt, scratch);
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < nr; r++) {
                        double err = fabs(out[t][r] - expect[t][r]), tol = 2e-6 * scale[t][r] + 1e-6;
                        if (!(err <= tol))
                            fail_msg("%s%s n=%lld level %s prefetch %s: out[%d][%d] = %.9g, expected %.9g (tol %.3g)", ggml_type_name(type),
                                     repack ? " repacked" : "", (long long)n, cpu_level_name((cpu_level)lvl),
                                     cpu_prefetch_name(cpu_prefetch_mode), t, r, out[t][r], expect[t][r], tol);
                    }
            }
    }
    cpu_prefetch_set(pf_in_use);
    if (wk != wq) free(wk);
    free(w);
    free(x);
    free(wd);
    free(scratch);
    free(wq);
    free(aq);
}

/* Repacked (when repack is set) as one matrix of all NR rows. */
static void check(uint32_t type, int64_t n, bool repack) { check_rows(type, n, repack, NR); }

static void check_type(uint32_t type, int64_t n) { check(type, n, false); }

static void test_repacked(void **state) {
    (void)state;
    check(GGML_TYPE_Q4_0, 1024, true); /* 16-row panels */
    check(GGML_TYPE_Q4_0, 128 * 7, true);
    check_rows(GGML_TYPE_Q4_0, 1024, true, 8); /* 4-row panels */
    check_rows(GGML_TYPE_Q4_0, 128 * 7, true, 4); /* scales not a multiple of 16 */
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q4_0, 16, 1024), QDOT_Q4_0X16);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q4_0, 8, 1024), QDOT_Q4_0R);
    check(GGML_TYPE_Q5_0, 1024, true); /* 16-row panels */
    check(GGML_TYPE_Q5_0, 128 * 7, true);
    check_rows(GGML_TYPE_Q5_0, 1024, true, 8); /* 4-row panels (rows not a multiple of 16) */
    check_rows(GGML_TYPE_Q5_0, 128 * 7, true, 4);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q5_0, 16, 1024), QDOT_Q5_0X16);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q5_0, 8, 1024), QDOT_Q5_0R);
    if (cpu_level_max() >= CPU_LEVEL_AVX2) {
        assert_int_equal(qdot_repack_type_at(GGML_TYPE_Q5_0, 16, 1024, CPU_LEVEL_AVX2), QDOT_Q5_0X16);
        assert_int_equal(qdot_repack_type_at(GGML_TYPE_Q5_0, 8, 1024, CPU_LEVEL_AVX2), 0); /* no 4-row panels on AVX2 */
        assert_int_equal(qdot_repack_type_at(GGML_TYPE_Q4_0, 16, 1024, CPU_LEVEL_AVX2), QDOT_Q4_0X16);
    }
    assert_int_equal(qdot_repack_type_at(GGML_TYPE_Q4_0, 16, 1024, CPU_LEVEL_SCALAR), 0);
    check(GGML_TYPE_Q8_0, 1024, true); /* 16-row panels */
    check(GGML_TYPE_Q8_0, 128 * 7, true);
    check_rows(GGML_TYPE_Q8_0, 1024, true, 8); /* 4-row panels */
    check_rows(GGML_TYPE_Q8_0, 128 * 5, true, 8);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q8_0, 16, 128 * 7), QDOT_Q8_0X16);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q8_0, 16, 32 * 7), 0);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q4_0, 8, 96), 0);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q8_0, 8, 64 * 5), 0);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q8_0, 12, 32 * 9), 0);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q5_0, 12, 32 * 9), 0);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q4_0, 6, 1024), 0);
    /* 64-row groups, of short rows and long: whole blocks, and a last block of 1, 2 or 3 steps */
    NR = 64;
    const uint32_t grouped[][3] = {{GGML_TYPE_Q4_0, QDOT_Q4_0X64, QDOT_Q4_0X16}, {GGML_TYPE_Q5_0, QDOT_Q5_0X64, QDOT_Q5_0X16},
                                   {GGML_TYPE_Q8_0, QDOT_Q8_0X64, QDOT_Q8_0X16}}; /* type, 64-row groups, 16-row panels */
    const int64_t group_cols[] = {128, 128 * 7, 2048, 2048 + 128, 2048 + 256, 4096 + 384, 4864};
    for (size_t t = 0; t < sizeof grouped / sizeof *grouped; t++) {
        for (size_t i = 0; i < sizeof group_cols / sizeof *group_cols; i++) {
            bool short_q4 = grouped[t][0] == GGML_TYPE_Q4_0 && group_cols[i] < QDOT_X64_MIN_COLS_Q4;
            assert_int_equal(qdot_repack_type(grouped[t][0], 64, group_cols[i]), short_q4 ? grouped[t][2] : grouped[t][1]);
            check(grouped[t][0], group_cols[i], true);
        }
        check_rows(grouped[t][0], 2048, true, 16); /* the same rows as 16-row panels */
        assert_int_equal(qdot_panel_rows(grouped[t][1]), 64);
        assert_int_equal(qdot_repack_type(grouped[t][0], 48, 2048), grouped[t][2]);
        if (cpu_level_max() >= CPU_LEVEL_AVX2) /* AVX2 has kernels for whole panels only */
            assert_int_equal(qdot_repack_type_at(grouped[t][0], 64, 4096, CPU_LEVEL_AVX2), grouped[t][2]);
    }
    NR = 16;
    check(GGML_TYPE_Q4_K, 1024, true); /* 16-row panels */
    check(GGML_TYPE_Q4_K, 256 * 3, true);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q4_K, 16, 1024), QDOT_Q4_K16);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q4_K, 8, 1024), 0); /* left in the file's layout */
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q4_K, 8, 128 * 3), 0);
    check(GGML_TYPE_Q6_K, 1024, true); /* 16-row panels */
    check(GGML_TYPE_Q6_K, 256 * 3, true);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q6_K, 8, 1024), 0);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q6_K, 16, 1024), QDOT_Q6_K16);
    assert_int_equal(qdot_repack_type(GGML_TYPE_Q6_K, 8, 128 * 3), 0);
}

/* Extreme weights and activations through every kernel of the integer
 * types, in the file's layout and in the panel layouts. */
static void test_extremes(void **state) {
    (void)state;
    g_extreme = true;
    uint32_t types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K, GGML_TYPE_Q5_0};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        check_type(types[i], 1024);
        check(types[i], 1024, true);
        if (types[i] == GGML_TYPE_Q4_0 || types[i] == GGML_TYPE_Q8_0 || types[i] == GGML_TYPE_Q5_0)
            check_rows(types[i], 1024, true, 8);
    }
    NR = 64; /* 64-row groups */
    check(GGML_TYPE_Q4_0, 4096 + 256, true);
    NR = 16;
    g_extreme = false;
}

static void test_block32_types(void **state) {
    (void)state;
    uint32_t types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        check_type(types[i], 1024);
        check_type(types[i], 32 * 7); /* an odd number of blocks */
        check_type(types[i], 32);
    }
}

static void test_k_types(void **state) {
    (void)state;
    check_type(GGML_TYPE_Q4_K, 1024);
    check_type(GGML_TYPE_Q4_K, 256);
    check_type(GGML_TYPE_Q6_K, 768);
    check_type(GGML_TYPE_Q6_K, 256);
}

static void test_float_path_types(void **state) {
    (void)state;
    uint32_t types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q4_1, GGML_TYPE_Q5_1,
                        GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q5_K};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) check_type(types[i], 512);
    check_type(GGML_TYPE_F32, 37); /* not a multiple of any vector width */
}

/* The prefetch policies' names parse back to themselves; unknown names are
 * refused; the processor's default is one of them. */
static void test_prefetch_names(void **state) {
    (void)state;
    for (int p = 0; p <= CPU_PREFETCH_NONE; p++) assert_int_equal(cpu_prefetch_parse(cpu_prefetch_name((cpu_prefetch)p)), p);
    assert_int_equal(cpu_prefetch_parse("l2"), -1);
    assert_int_equal(cpu_prefetch_parse(NULL), -1);
    assert_true(cpu_prefetch_default() <= CPU_PREFETCH_NONE);
    print_message("prefetch policy for this processor: %s\n", cpu_prefetch_name(cpu_prefetch_default()));
}

/* Every level quantizes activations to the same bytes as the scalar code. */
static void test_quantize_levels(void **state) {
    (void)state;
    enum { N = 1024 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = (i % 97 == 0) ? frand() * 40.0f : frand();
    for (int i = 64; i < 96; i++) x[i] = 0.0f; /* an all-zero block */
    x[200] = 0.5f / 127.0f * 3.0f;             /* values on rounding ties */
    qdot_act fmts[] = {QDOT_ACT_Q8B, QDOT_ACT_Q8K, QDOT_ACT_Q8S, QDOT_ACT_Q8D, QDOT_ACT_F32};
    for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++) {
        size_t nbytes = qdot_act_row_bytes(fmts[f], N);
        uint8_t *ref = calloc(1, nbytes), *got = calloc(1, nbytes);
        assert_non_null(ref);
        assert_non_null(got);
        qdot_quantize_act(fmts[f], x, ref, N);
        for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
            memset(got, 0, nbytes);
            qdot_quantize_act_level(fmts[f], x, got, N, (cpu_level)lvl);
            assert_memory_equal(ref, got, nbytes);
        }
        free(ref);
        free(got);
    }
}

/* The AMX kernel gives the AVX-512 kernel's bits for batched Q8_0, Q4_0,
 * Q5_0, Q4_K and Q6_K panels (the same integer sums, then the same float steps
 * in the same order):
 * 16-row panels and 64-row groups, whole 16-row activation tiles and rows
 * left over for AVX-512. Skipped where the processor (or the OS) has no
 * AMX. */
static void test_amx_same_bits(void **state) {
    (void)state;
    assert_int_equal(cpu_level_parse(cpu_level_name(CPU_LEVEL_AMX)), CPU_LEVEL_AMX);
    if (cpu_level_max() < CPU_LEVEL_AMX) {
        print_message("no AMX here: skipped\n");
        skip();
    }
    const int64_t shapes[][2] = {{48, 896}, {64, 896}, {64, 4864}, {16, 128}, {16, 256}, {48, 2048}}; /* rows, cols */
    const uint32_t types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    for (size_t k = 0; k < 5 * sizeof shapes / sizeof *shapes; k++) {
        const int64_t rows = shapes[k / 5][0], n = shapes[k / 5][1];
        const uint32_t type = types[k % 5];
        if (n % ggml_type_get(type)->block_size) continue;
        const int nt = 35;
        size_t wrow = ggml_row_size(type, n);
        uint32_t rt = qdot_repack_type(type, rows, n);
        assert_true((rt & QDOT_TYPE_MASK) == type && ((rt & QDOT_LAYOUT_MASK) == QDOT_PANELS16 || (rt & QDOT_LAYOUT_MASK) == QDOT_GROUPS64));
        size_t arow = qdot_act_row_bytes(QDOT_ACT_Q8D, n);
        float *src = malloc(sizeof(float) * (size_t)n), *scratch = malloc(sizeof(float) * (size_t)n);
        float *o1 = malloc(sizeof(float) * (size_t)(rows * nt)), *o2 = malloc(sizeof(float) * (size_t)(rows * nt));
        uint8_t *wq = malloc(wrow * (size_t)rows), *wr = malloc(wrow * (size_t)rows), *aq = aligned_alloc(64, arow * (size_t)nt);
        assert_true(src && scratch && o1 && o2 && wq && wr && aq);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < n; i++) src[i] = frand() * 0.05f;
            quantize_row(type, src, wq + (size_t)r * wrow, n);
        }
        qdot_repack_as(rt, type, wq, wr, rows, n);
        for (int t = 0; t < nt; t++) {
            for (int64_t i = 0; i < n; i++) src[i] = (i % 97 == 0) ? frand() * 40.0f : frand();
            qdot_quantize_act(QDOT_ACT_Q8D, src, aq + (size_t)t * arow, n);
        }
        qdot_gemm_get(rt, CPU_LEVEL_AVX512)(rt, wr, wrow, aq, arow, n, o1, (size_t)rows, (int)rows, nt, scratch);
        qdot_gemm_get(rt, CPU_LEVEL_AMX)(rt, wr, wrow, aq, arow, n, o2, (size_t)rows, (int)rows, nt, scratch);
        assert_memory_equal(o1, o2, sizeof(float) * (size_t)(rows * nt));
        free(src);
        free(scratch);
        free(o1);
        free(o2);
        free(wq);
        free(wr);
        free(aq);
    }
}

static void test_f16_attention_helpers(void **state) {
    (void)state;
    float a[77], y[77], ref[77];
    uint16_t b[77];
    for (int i = 0; i < 77; i++) {
        a[i] = frand();
        b[i] = fp32_to_fp16(frand());
        y[i] = ref[i] = frand();
    }
    double expect = 0;
    for (int i = 0; i < 77; i++) {
        expect += a[i] * (double)fp16_to_fp32(b[i]);
        ref[i] += 0.5f * fp16_to_fp32(b[i]);
    }
    for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
        assert_true(fabs(qdot_dot_f16_get((cpu_level)lvl)(a, b, 77) - expect) < 1e-4);
        float yy[77];
        memcpy(yy, y, sizeof yy);
        qdot_axpy_f16_get((cpu_level)lvl)(yy, 0.5f, b, 77);
        for (int i = 0; i < 77; i++) assert_true(fabsf(yy[i] - ref[i]) < 1e-5f);
    }
}

int main(void) {
    print_message("CPU kernel levels on this machine: up to %s\n", cpu_level_name(cpu_level_max()));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block32_types),
        cmocka_unit_test(test_k_types),
        cmocka_unit_test(test_repacked),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_quantize_levels),
        cmocka_unit_test(test_prefetch_names),
        cmocka_unit_test(test_float_path_types),
        cmocka_unit_test(test_f16_attention_helpers),
        cmocka_unit_test(test_amx_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
