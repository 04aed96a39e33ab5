/* sampler.c - penalties, truncation and seeded sampling. */
#include "models/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct sampler {
    sampler_params p;
    int n_vocab;
    cand *c;          /* [n_vocab] */
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
    s->recent = malloc((size_t)(s->p.penalty_last_n ? s->p.penalty_last_n : 1) * sizeof *s->recent);
    if (!s->c || !s->recent) {
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
    free(s->recent);
    free(s);
}

void sampler_accept(sampler *s, int32_t token) {
    if (s->p.penalty_last_n == 0) return;
    s->recent[s->head] = token;
    s->head = (s->head + 1) % s->p.penalty_last_n;
    if (s->n_recent < s->p.penalty_last_n) s->n_recent++;
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    if (x != y) return x > y ? -1 : 1;
    return ((const cand *)a)->id - ((const cand *)b)->id;
}

int32_t sampler_sample(sampler *s, const float *logits) {
    const sampler_params *p = &s->p;
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) s->c[i] = (cand){i, logits[i]};
    if (s->n_recent && (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f)) {
        /* count occurrences; each distinct token penalised once */
        for (int i = 0; i < s->n_recent; i++) {
            int32_t t = s->recent[i];
            if (t < 0 || t >= n) continue;
            int count = 0, first = 1;
            for (int j = 0; j < s->n_recent; j++) {
                if (s->recent[j] == t) {
                    count++;
                    if (j < i) first = 0;
                }
            }
            if (!first) continue;
            float *l = &s->c[t].logit;
            if (p->repeat_penalty != 1.0f) *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
            *l -= (float)count * p->frequency_penalty + p->presence_penalty;
        }
    }
    if (p->temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (s->c[i].logit > s->c[best].logit) best = i;
        return s->c[best].id;
    }
    int k = n;
    if (p->top_k > 0 && p->top_k < n) k = p->top_k;
    qsort(s->c, (size_t)n, sizeof *s->c, cmp_desc);
    /* softmax over the top k at temperature */
    float mx = s->c[0].logit, sum = 0.0f;
    for (int i = 0; i < k; i++) {
        s->c[i].logit = expf((s->c[i].logit - mx) / p->temperature);
        sum += s->c[i].logit;
    }
    for (int i = 0; i < k; i++) s->c[i].logit /= sum;
    if (p->min_p > 0.0f) {
        float floor = s->c[0].logit * p->min_p;
        int keep = 1;
        while (keep < k && s->c[keep].logit >= floor) keep++;
        k = keep;
    }
    if (p->top_p < 1.0f) {
        float cum = 0.0f;
        int keep = 0;
        while (keep < k) {
            cum += s->c[keep++].logit;
            if (cum >= p->top_p) break;
        }
        k = keep;
    }
    float total = 0.0f;
    for (int i = 0; i < k; i++) total += s->c[i].logit;
    float r = rng_float(&s->rng) * total;
    for (int i = 0; i < k; i++) {
        r -= s->c[i].logit;
        if (r <= 0.0f) return s->c[i].id;
    }
    return s->c[k - 1].id;
}
