/* sampler.h - choosing the next token from logits.
 *
 * Order: repetition / frequency / presence penalties over the recent tokens,
 * then (unless greedy) top-k, top-p, min-p, temperature, and a draw from a
 * seeded generator, so the same seed gives the same text. Nothing sorts
 * the whole vocabulary: top-k keeps a heap of the best k, top-p sorts only
 * the range of weights where its cut falls, and without top-k the weights
 * of the whole vocabulary come from one vector pass (op_exp_weights) and
 * the draw walks it in order (a sort of 151936 logits cost 21-40 ms a
 * token, more than a forward pass of a 0.5B model; bench/sampler). */
#ifndef AIRLOCK_MODELS_SAMPLER_H
#define AIRLOCK_MODELS_SAMPLER_H

#include <stdint.h>

typedef struct sampler_params {
    float temperature;       /* <= 0: greedy (argmax) */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off; divides positive logits of recent tokens */
    float frequency_penalty; /* subtracted count * this */
    float presence_penalty;  /* subtracted once if present */
    int penalty_last_n;      /* how many recent tokens the penalties see */
    uint64_t seed;
} sampler_params;

typedef struct sampler sampler;

/* Defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, last 64. */
sampler_params sampler_default_params(void);

sampler *sampler_init(const sampler_params *p, int n_vocab);
void sampler_free(sampler *s);
/* Picks a token from logits[n_vocab] (not modified). */
int32_t sampler_sample(sampler *s, const float *logits);
/* Records a token the model saw or produced (for the penalties). */
void sampler_accept(sampler *s, int32_t token);

#endif
