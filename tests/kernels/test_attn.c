/* test_attn.c - the attention kernel (kernels/attn.h) against a
 * double-precision softmax-weighted sum computed here from the same f16
 * keys and values, for head sizes from 16 to 256 (each has its own
 * instance of the kernel), 1 to 16 query heads (blocks of heads share
 * the value pass) and key counts around the kernel's 16-key steps and
 * 256-key chunks (1, 15, 16, 17, 255, 256, 257, 600). Scores are
 * spread wide enough (scale 4) that a wrong maximum or a lost rescale
 * between steps moves the result far past the tolerance. Skipped where the
 * CPU has no AVX-512 (the kernel is never called there). */
#include <math.h>
#include <stdlib.h>

#include "kernels/attn.h"
#include "kernels/fp16.h"
#include "test_util.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g_rng >> 40) / 16777216.0f * 2.0f - 1.0f;
}

static void check(attn_f16_fn fn, int nh, int n_keys, int hd) {
    float *q = malloc(sizeof(float) * (size_t)nh * (size_t)hd), *out = malloc(sizeof(float) * (size_t)nh * (size_t)hd);
    uint16_t *k = malloc(sizeof(uint16_t) * (size_t)n_keys * (size_t)hd), *v = malloc(sizeof(uint16_t) * (size_t)n_keys * (size_t)hd);
    double *s = malloc(sizeof(double) * (size_t)n_keys);
    assert_true(q && out && k && v && s);
    for (int i = 0; i < nh * hd; i++) q[i] = frand();
    for (int i = 0; i < n_keys * hd; i++) {
        k[i] = fp32_to_fp16(frand());
        v[i] = fp32_to_fp16(frand());
    }
    const float scale = 16.0f / sqrtf((float)hd); /* scores spread over about +-5 */
    fn(q, nh, k, v, n_keys, hd, scale, out);
    for (int h = 0; h < nh; h++) {
        double mx = -INFINITY, sum = 0.0;
        for (int t = 0; t < n_keys; t++) {
            double d = 0.0;
            for (int i = 0; i < hd; i++) d += (double)q[h * hd + i] * fp16_to_fp32(k[t * hd + i]);
            s[t] = d * scale;
            mx = s[t] > mx ? s[t] : mx;
        }
        for (int t = 0; t < n_keys; t++) sum += (s[t] = exp(s[t] - mx));
        for (int i = 0; i < hd; i++) {
            double e = 0.0;
            for (int t = 0; t < n_keys; t++) e += s[t] * fp16_to_fp32(v[t * hd + i]);
            e /= sum;
            if (fabs(out[h * hd + i] - e) > 1e-4 + 1e-4 * fabs(e))
                fail_msg("nh %d keys %d hd %d: out[%d][%d] = %.7g, expected %.7g", nh, n_keys, hd, h, i, out[h * hd + i], e);
        }
    }
    free(q);
    free(out);
    free(k);
    free(v);
    free(s);
}

static void test_attn_matches_reference(void **state) {
    (void)state;
    attn_f16_fn fn = attn_f16_get(cpu_level_get());
    if (!fn) skip();
    const int keys[] = {1, 15, 16, 17, 255, 256, 257, 600}, heads[] = {1, 4, 7, 9, 16}, hds[] = {16, 48, 64, 80, 128, 256};
    for (size_t a = 0; a < sizeof keys / sizeof *keys; a++)
        for (size_t b = 0; b < sizeof heads / sizeof *heads; b++)
            for (size_t c = 0; c < sizeof hds / sizeof *hds; c++) check(fn, heads[b], keys[a], hds[c]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attn_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
