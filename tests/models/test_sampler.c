/* test_sampler.c - the sampler (models/sampler.h) against distributions
 * computed here in double precision from the definitions: top-k keeps the
 * k highest logits (the lower id on ties), the weights are
 * softmax(logit / temperature) over those, min-p drops what has less than
 * min_p of the top probability, top-p keeps the shortest run of the best
 * whose probability reaches top_p, and the draw is proportional to what is
 * left. Frequencies over many seeded draws must lie within 5 standard
 * deviations of the expected probabilities (tokens expected fewer than 20
 * times pooled), and nothing outside the kept set may ever be drawn. Vocabularies of 6 and of 151936 (Qwen's: the
 * selection and partial sorting paths). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/sampler.h"
#include "test_util.h"

static uint64_t g_rng = 0x51ed270b27ad4a35ull;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g_rng >> 40) / 16777216.0f;
}

typedef struct ref_cand {
    int id;
    double logit;
} ref_cand;

static int ref_cmp(const void *a, const void *b) {
    const ref_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}

/* prob[n]: the probability of each token under the definitions above
 * (NaN logits never chosen); returns how many tokens have a nonzero one. */
static int expected_probs(const float *logits, int n, const sampler_params *p, double *prob) {
    ref_cand *c = malloc(sizeof *c * (size_t)n);
    assert_non_null(c);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(logits[i])) c[m++] = (ref_cand){i, logits[i]};
    qsort(c, (size_t)m, sizeof *c, ref_cmp);
    int k = p->top_k > 0 && p->top_k < m ? p->top_k : m;
    double sum = 0;
    for (int i = 0; i < k; i++) sum += exp((c[i].logit - c[0].logit) / p->temperature);
    double *q = malloc(sizeof *q * (size_t)k);
    assert_non_null(q);
    for (int i = 0; i < k; i++) q[i] = exp((c[i].logit - c[0].logit) / p->temperature) / sum;
    int keep = k;
    if (p->min_p > 0)
        for (keep = 0; keep < k && q[keep] >= p->min_p * q[0]; keep++) {}
    if (p->top_p < 1) {
        double cum = 0;
        int t = 0;
        while (t < keep) {
            cum += q[t++];
            if (cum >= p->top_p) break;
        }
        keep = t;
    }
    double total = 0;
    for (int i = 0; i < keep; i++) total += q[i];
    for (int i = 0; i < n; i++) prob[i] = 0;
    for (int i = 0; i < keep; i++) prob[c[i].id] = q[i] / total;
    free(q);
    free(c);
    return keep;
}

/* Draws `draws` tokens and compares the counts with expected_probs. */
static void check_draws(const float *logits, int n, const sampler_params *p, int draws, const char *what) {
    double *prob = malloc(sizeof *prob * (size_t)n);
    int *count = calloc((size_t)n, sizeof *count);
    assert_true(prob && count);
    expected_probs(logits, n, p, prob);
    sampler *s = sampler_init(p, n);
    assert_non_null(s);
    for (int d = 0; d < draws; d++) {
        int32_t t = sampler_sample(s, logits);
        assert_true(t >= 0 && t < n);
        if (prob[t] == 0) fail_msg("%s: drew token %d, which the definitions exclude", what, t);
        count[t]++;
    }
    /* tokens expected 20 times or more one by one, the rest as one pool */
    double pool_p = 0;
    long pool_count = 0;
    for (int i = 0; i < n; i++) {
        double e = prob[i] * draws, sd = sqrt(draws * prob[i] * (1 - prob[i]));
        if (e < 20) {
            pool_p += prob[i];
            pool_count += count[i];
        } else if (fabs(count[i] - e) > 5 * sd + 1) {
            fail_msg("%s: token %d drawn %d times in %d, expected %.1f (sd %.1f)", what, i, count[i], draws, e, sd);
        }
    }
    double pool_e = pool_p * draws, pool_sd = sqrt(draws * pool_p * (1 - pool_p));
    if (fabs((double)pool_count - pool_e) > 5 * pool_sd + 1)
        fail_msg("%s: the rarely drawn tokens drawn %ld times in %d, expected %.1f (sd %.1f)", what, pool_count, draws, pool_e, pool_sd);
    sampler_free(s);
    free(prob);
    free(count);
}

static sampler_params plain(float temperature) {
    sampler_params p = sampler_default_params();
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    return p;
}

static void test_small_vocab_distributions(void **state) {
    (void)state;
    const float logits[6] = {1.0f, 2.0f, 0.5f, NAN, -1.0f, 0.0f};
    sampler_params p = plain(0.7f);
    check_draws(logits, 6, &p, 100000, "temperature only");
    p.top_k = 2;
    check_draws(logits, 6, &p, 100000, "top-k 2");
    p = plain(1.3f);
    p.min_p = 0.3f;
    check_draws(logits, 6, &p, 100000, "min-p 0.3");
    p = plain(1.0f);
    p.top_p = 0.8f;
    check_draws(logits, 6, &p, 100000, "top-p 0.8");
    p = plain(1.0f);
    p.top_k = 4;
    p.min_p = 0.1f;
    p.top_p = 0.9f;
    check_draws(logits, 6, &p, 100000, "top-k 4, min-p 0.1, top-p 0.9");
}

/* A Qwen-sized vocabulary: logits on a coarse grid (many ties, so the
 * lower-id rule decides who is at the edge of the top k), a block of 300
 * near the top so that top-p's cut lies past the first 64 candidates it
 * sorts. */
static void test_large_vocab(void **state) {
    (void)state;
    enum { N = 151936 };
    float *logits = malloc(sizeof(float) * N);
    assert_non_null(logits);
    for (int i = 0; i < N; i++) logits[i] = floorf(frand() * 40.0f) * 0.25f - 10.0f;
    for (int i = 0; i < 300; i++) logits[(i * 7919) % N] = 8.0f + 0.01f * (float)(i % 50);
    sampler_params p = plain(1.0f);
    p.top_k = 40;
    check_draws(logits, N, &p, 10000, "vocab 151936, top-k 40");
    p = plain(1.0f);
    p.top_p = 0.9f;
    check_draws(logits, N, &p, 10000, "vocab 151936, top-p 0.9");
    p = plain(0.8f);
    p.min_p = 0.05f;
    check_draws(logits, N, &p, 10000, "vocab 151936, min-p 0.05");
    p = plain(3.0f);
    check_draws(logits, N, &p, 5000, "vocab 151936, no truncation");
    free(logits);
}

/* Temperature 0: the highest logit, the lowest id on ties, NaN never; a
 * repetition penalty on the recent tokens can move the choice. */
static void test_greedy(void **state) {
    (void)state;
    float logits[8] = {0.5f, NAN, 3.0f, 1.0f, 3.0f, -2.0f, 2.5f, 0.0f};
    sampler_params p = plain(0.0f);
    sampler *s = sampler_init(&p, 8);
    assert_int_equal(sampler_sample(s, logits), 2);
    sampler_free(s);
    p.repeat_penalty = 2.0f; /* 3.0 -> 1.5 for the recent tokens 2 and 4 */
    s = sampler_init(&p, 8);
    sampler_accept(s, 2);
    sampler_accept(s, 4);
    assert_int_equal(sampler_sample(s, logits), 6);
    sampler_free(s);
    for (int i = 0; i < 8; i++) logits[i] = NAN;
    s = sampler_init(&p, 8);
    int32_t t = sampler_sample(s, logits);
    assert_true(t >= 0 && t < 8);
    sampler_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_small_vocab_distributions), cmocka_unit_test(test_large_vocab),
                                       cmocka_unit_test(test_greedy)};
    return cmocka_run_group_tests_name("sampler", tests, NULL, NULL);
}
