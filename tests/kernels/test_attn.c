/* test_attn.c - the attention kernel (kernels/attn.h) against a
 * double-precision softmax-weighted sum computed here from the same f16
 * keys and values, for head sizes from 16 to 256 (each has its own
 * instance of the kernel), 1 to 16 query heads (blocks of rows share the
 * value pass), key counts around the kernel's 16-key steps and 256-key
 * chunks, and tiles of several tokens of a prompt (causal: token i sees
 * i more keys than token 0), checked both against the reference and bit
 * for bit against each token computed alone, as decoding computes it.
 * Scores are spread wide enough (scale 4) that a wrong maximum or a lost
 * rescale between steps moves the result far past the tolerance. Skipped
 * where the CPU has no AVX-512 (the kernel is never called there). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attn.h"
#include "kernels/fp16.h"
#include "test_util.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g_rng >> 40) / 16777216.0f * 2.0f - 1.0f;
}

/* One call of fn over n_tok tokens x nh heads, token i seeing n_keys + i
 * keys, checked row by row against the double-precision reference; then
 * each token alone (n_tok = 1) must give bit for bit its row of the tile. */
static void check(attn_f16_fn fn, int n_tok, int nh, int n_keys, int hd) {
    const int total = n_keys + n_tok - 1, rows = n_tok * nh;
    float *q = malloc(sizeof(float) * (size_t)rows * (size_t)hd), *out = malloc(sizeof(float) * (size_t)rows * (size_t)hd);
    float *one = malloc(sizeof(float) * (size_t)nh * (size_t)hd);
    uint16_t *k = malloc(sizeof(uint16_t) * (size_t)total * (size_t)hd), *v = malloc(sizeof(uint16_t) * (size_t)total * (size_t)hd);
    double *s = malloc(sizeof(double) * (size_t)total);
    assert_true(q && out && one && k && v && s);
    for (int i = 0; i < rows * hd; i++) q[i] = frand();
    for (int i = 0; i < total * hd; i++) {
        k[i] = fp32_to_fp16(frand());
        v[i] = fp32_to_fp16(frand());
    }
    const float scale = 16.0f / sqrtf((float)hd); /* scores spread over about +-5 */
    const size_t stride = (size_t)nh * (size_t)hd;
    attn_f16_tile a = {.q = q, .q_stride = stride, .out = out, .out_stride = stride, .k = k, .v = v,
                       .n_tok = n_tok, .nh = nh, .hd = hd, .n_keys = n_keys, .scale = scale};
    fn(&a);
    for (int r = 0; r < rows; r++) {
        const int seen = n_keys + r / nh;
        const float *qr = q + (size_t)r * (size_t)hd, *o = out + (size_t)r * (size_t)hd;
        double mx = -INFINITY, sum = 0.0;
        for (int t = 0; t < seen; t++) {
            double d = 0.0;
            for (int i = 0; i < hd; i++) d += (double)qr[i] * fp16_to_fp32(k[t * hd + i]);
            s[t] = d * scale;
            mx = s[t] > mx ? s[t] : mx;
        }
        for (int t = 0; t < seen; t++) sum += (s[t] = exp(s[t] - mx));
        for (int i = 0; i < hd; i++) {
            double e = 0.0;
            for (int t = 0; t < seen; t++) e += s[t] * fp16_to_fp32(v[t * hd + i]);
            e /= sum;
            if (fabs(o[i] - e) > 1e-4 + 1e-4 * fabs(e))
                fail_msg("tokens %d heads %d keys %d hd %d: out[%d][%d] = %.7g, expected %.7g", n_tok, nh, n_keys, hd, r, i, o[i], e);
        }
    }
    for (int i = 0; i < n_tok; i++) {
        attn_f16_tile alone = a;
        alone.q = q + (size_t)i * stride;
        alone.out = one;
        alone.n_tok = 1;
        alone.n_keys = n_keys + i;
        fn(&alone);
        if (memcmp(one, out + (size_t)i * stride, sizeof(float) * stride))
            fail_msg("tokens %d heads %d keys %d hd %d: token %d alone differs from its rows of the tile", n_tok, nh, n_keys, hd, i);
    }
    free(q);
    free(out);
    free(one);
    free(k);
    free(v);
    free(s);
}

/* One token (decoding) over key counts around the kernel's 16-key steps
 * and 256-key chunks, every head size it has an instance for. */
static void test_attn_one_token_matches_reference(void **state) {
    (void)state;
    attn_f16_fn fn = attn_f16_get(cpu_level_get());
    if (!fn) skip();
    const int keys[] = {1, 15, 16, 17, 31, 32, 33, 255, 256, 257, 600}, heads[] = {1, 4, 7, 9, 16}, hds[] = {16, 48, 64, 80, 128, 256};
    for (size_t a = 0; a < sizeof keys / sizeof *keys; a++)
        for (size_t b = 0; b < sizeof heads / sizeof *heads; b++)
            for (size_t c = 0; c < sizeof hds / sizeof *hds; c++) check(fn, 1, heads[b], keys[a], hds[c]);
}

/* Tiles of a prompt: several tokens, causal, with the tile's last keys
 * straddling a step or chunk boundary (so some rows see keys of a chunk
 * that others do not), up to the most tokens a call takes. */
static void test_attn_tile_matches_reference_and_one_token(void **state) {
    (void)state;
    attn_f16_fn fn = attn_f16_get(cpu_level_get());
    if (!fn) skip();
    const int keys[] = {1, 2, 20, 250, 256, 500}, heads[] = {1, 4, 7, 8}, hds[] = {16, 64, 80, 128, 256};
    for (size_t a = 0; a < sizeof keys / sizeof *keys; a++)
        for (size_t b = 0; b < sizeof heads / sizeof *heads; b++)
            for (size_t c = 0; c < sizeof hds / sizeof *hds; c++) {
                const int most = attn_max_tokens(heads[b], hds[c]);
                check(fn, 2, heads[b], keys[a], hds[c]);
                check(fn, most, heads[b], keys[a], hds[c]);
            }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attn_one_token_matches_reference),
        cmocka_unit_test(test_attn_tile_matches_reference_and_one_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
