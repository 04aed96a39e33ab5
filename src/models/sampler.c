/* sampler.c - penalties, truncation and seeded sampling. */
#include "models/sampler.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct sampler {
    sampler_params p;
    int n_vocab;
    cand *c;          /* [n_vocab] candidates being ranked */
    float *w;         /* [n_vocab] logits after the penalties, then weights */
    int32_t *recent;  /* ring of the last penalty_last_n tokens */
    int n_recent, head;
    uint64_t rng;
};

sampler_params sampler_default_params(void) {
    return (sampler_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                            .frequency_penalty = 0.0f, .presence_penalty = 0.0f, .penalty_last_n = 64, .seed = 0};
}

/* xorshift64* */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static float rng_float(uint64_t *s) { return (float)(rng_next(s) >> 40) / 16777216.0f; }

sampler *sampler_init(const sampler_params *p, int n_vocab) {
    sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    if (s->p.penalty_last_n < 0) s->p.penalty_last_n = 0;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    s->w = malloc((size_t)n_vocab * sizeof *s->w);
    s->recent = malloc((size_t)(s->p.penalty_last_n ? s->p.penalty_last_n : 1) * sizeof *s->recent);
    if (!s->c || !s->w || !s->recent) {
        sampler_free(s);
        return NULL;
    }
    s->rng = p->seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    if (!s->rng) s->rng = 1;
    return s;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->w);
    free(s->recent);
    free(s);
}

void sampler_accept(sampler *s, int32_t token) {
    if (s->p.penalty_last_n == 0) return;
    s->recent[s->head] = token;
    s->head = (s->head + 1) % s->p.penalty_last_n;
    if (s->n_recent < s->p.penalty_last_n) s->n_recent++;
}

/* True if a ranks before b: the higher logit first, the lower id on ties
 * (logits are never NaN here: sampler_sample makes those -inf). A strict
 * total order, so choosing the best k and sorting everything agree on the
 * first k. */
static bool cand_before(const cand *a, const cand *b) {
    if (a->logit != b->logit) return a->logit > b->logit;
    return a->id < b->id;
}

static int cmp_desc(const void *a, const void *b) { return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0; }

/* Restores the heap order below h[i] in a heap of n whose root ranks last. */
static void sift_down(cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, last = i;
        if (l < n && cand_before(&h[last], &h[l])) last = l;
        if (r < n && cand_before(&h[last], &h[r])) last = r;
        if (last == i) return;
        cand t = h[i];
        h[i] = h[last];
        h[last] = t;
        i = last;
    }
}

/* Permutes c[0..n) so that c[0..k) holds its k best candidates, best
 * first: c[0..k) becomes a heap whose root is the worst of those kept, so a
 * candidate that does not belong costs one comparison; then the k are
 * sorted. Linear in n for logits in no particular order (a sort of the
 * 151936 logits of a Qwen vocabulary took 21-40 ms a token: bench/sampler). */
static void select_top_k(cand *c, int n, int k) {
    assert(k >= 1 && k <= n);
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++)
        if (cand_before(&c[i], &c[0])) {
            cand t = c[0];
            c[0] = c[i];
            c[i] = t;
            sift_down(c, k, 0);
        }
    qsort(c, (size_t)k, sizeof *c, cmp_desc);
}

/* top-p over c[0..k) sorted best first: how many of the first reach a
 * total weight of target. */
static int top_p_sorted(const cand *c, int k, double target) {
    double cum = 0.0;
    int keep = 0;
    while (keep < k) {
        cum += c[keep++].logit;
        if (cum >= target) break;
    }
    return keep;
}

/* The exponent field of a weight in [0, 1]: weights of a higher field are
 * all larger. */
static int weight_exponent(float w) {
    uint32_t b;
    memcpy(&b, &w, sizeof b);
    return (int)((b >> 23) & 0xFF);
}

/* top-p over the weights w[0..n) of the whole vocabulary, without sorting
 * it: the weights' sums per exponent (a factor of 2 apart) find the one
 * range where the running total crosses target; the tokens above it are
 * kept whole, and only that range is sorted to find the cut. Writes the
 * kept tokens to c[0..keep) and returns keep: the set a sort of everything
 * would keep. */
static int top_p_weights(const float *w, int n, cand *c, double target) {
    double bsum[256] = {0};
    for (int i = 0; i < n; i++) bsum[weight_exponent(w[i])] += w[i];
    double cum = 0.0;
    int b = 255;
    while (b >= 0 && cum + bsum[b] < target) cum += bsum[b--];
    if (b < 0) b = 0; /* the total fell short of target by rounding: keep all */
    int hi = 0;
    for (int i = 0; i < n; i++)
        if (weight_exponent(w[i]) > b) c[hi++] = (cand){i, w[i]};
    int mid = hi;
    for (int i = 0; i < n; i++)
        if (weight_exponent(w[i]) == b) c[mid++] = (cand){i, w[i]};
    qsort(c + hi, (size_t)(mid - hi), sizeof *c, cmp_desc);
    return hi + top_p_sorted(c + hi, mid - hi, target - cum);
}

/* A draw in proportion to the weights of candidates c[0..n) or, with c
 * NULL, of tokens 0..n-1 weighted w[i]; a weight of 0 is never drawn. */
static int32_t draw(sampler *s, const cand *c, const float *w, int n) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += c ? c[i].logit : w[i];
    double r = rng_float(&s->rng) * total;
    int last = 0;
    for (int i = 0; i < n; i++) {
        float wi = c ? c[i].logit : w[i];
        if (wi <= 0.0f) continue;
        r -= wi;
        last = i;
        if (r <= 0.0) break;
    }
    return c ? c[last].id : last;
}

/* True when a penalty would change a logit. */
static bool penalties_on(const sampler *s) {
    const sampler_params *p = &s->p;
    return s->n_recent && (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

/* Applies the penalties to w[token] for the recent tokens: each distinct
 * token once, with its count. */
static void apply_penalties(const sampler *s, float *w) {
    const sampler_params *p = &s->p;
    for (int i = 0; i < s->n_recent; i++) {
        int32_t t = s->recent[i];
        if (t < 0 || t >= s->n_vocab) continue;
        int count = 0, first = 1;
        for (int j = 0; j < s->n_recent; j++) {
            if (s->recent[j] == t) {
                count++;
                if (j < i) first = 0;
            }
        }
        if (!first) continue;
        float *l = &w[t];
        if (p->repeat_penalty != 1.0f) *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= (float)count * p->frequency_penalty + p->presence_penalty;
    }
}

int32_t sampler_sample(sampler *s, const float *logits) {
    const sampler_params *p = &s->p;
    const int n = s->n_vocab;
    float *w = s->w;
    for (int i = 0; i < n; i++) w[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    if (penalties_on(s)) apply_penalties(s, w);
    if (p->temperature <= 0.0f) return op_argmax(w, n);
    cand *c = s->c;
    if (p->top_k > 0 && p->top_k < n) {
        /* top-k: the k best as sorted candidates, weighted among themselves */
        int k = p->top_k;
        for (int i = 0; i < n; i++) c[i] = (cand){i, w[i]};
        select_top_k(c, n, k);
        const float mx = c[0].logit;
        if (mx == -INFINITY) return c[0].id; /* nothing has any weight */
        double sum = 0.0;
        for (int i = 0; i < k; i++) {
            c[i].logit = c[i].logit == mx ? 1.0f : expf((c[i].logit - mx) / p->temperature); /* (mx may be +inf) */
            sum += c[i].logit;
        }
        if (p->min_p > 0.0f) { /* what has at least min_p of the top probability (order kept) */
            int keep = 0;
            for (int i = 0; i < k; i++)
                if (c[i].logit >= p->min_p) c[keep++] = c[i];
            k = keep;
        }
        if (p->top_p < 1.0f) k = top_p_sorted(c, k, p->top_p * sum);
        return draw(s, c, NULL, k);
    }
    /* the whole vocabulary: weights in one vector pass, in vocabulary order */
    const int best = op_argmax(w, n);
    if (w[best] == -INFINITY) return best; /* nothing has any weight */
    const double sum = op_exp_weights(w, n, w[best], 1.0f / p->temperature);
    if (p->min_p > 0.0f)
        for (int i = 0; i < n; i++)
            if (w[i] < p->min_p) w[i] = 0.0f;
    if (p->top_p < 1.0f) return draw(s, c, NULL, top_p_weights(w, n, c, p->top_p * sum));
    return draw(s, NULL, w, n);
}
