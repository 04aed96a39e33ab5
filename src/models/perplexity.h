/* perplexity.h - scoring a model on a text: perplexity and KL-divergence.
 *
 * The text is tokenized once (with BOS where the model adds one) and cut
 * into chunks of n_ctx tokens; each chunk is evaluated from an empty cache
 * with its first token replaced by BOS, and the second half of its positions
 * is scored (each sees at least n_ctx/2 tokens of context). This is
 * llama.cpp's `llama-perplexity` procedure, so numbers compare.
 *
 * A logits file keeps a reference model's scored logits so another model
 * can be compared with it later, or so logits computed elsewhere (a PyTorch
 * forward pass) can be compared with airlock's:
 *   "ALLG" u32 version=1, u32 n_vocab, u32 n_ctx, u32 first, u32 n_chunks,
 *   then per chunk: i32 tokens[n_ctx], f32 logits[n_ctx - 1 - first][n_vocab]
 *   (logits of positions first .. n_ctx-2, each predicting the next token). */
#ifndef AIRLOCK_MODELS_PERPLEXITY_H
#define AIRLOCK_MODELS_PERPLEXITY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "models/llm.h"

/* Evaluates one chunk of n_ctx tokens on a fresh sequence and writes the
 * logits of positions [first, n_ctx-1) to out ([n_ctx-1-first][n_vocab]).
 * Returns 0, or -1 with err set. */
int ppl_eval_chunk(const llm_model *m, llm_ws *ws, llm_ctx *c, const int32_t *tokens, int n_ctx, int first, float *out,
                   al_err *err);

/* Tokenizes text for scoring and returns the number of whole chunks of
 * n_ctx tokens (each with BOS first when the model uses one), or -1 with
 * err set (too short for one chunk). */
int ppl_tokenize(const llm_model *m, const char *text, size_t len, int n_ctx, token_vec *out, al_err *err);

/* log(sum(exp(logits))), computed stably: log softmax(logits)[i] is
 * logits[i] minus this. */
double ppl_log_z(const float *logits, int n_vocab);
/* log softmax(logits)[tok]. */
double ppl_log_prob(const float *logits, int n_vocab, int tok);

/* Running statistics of a series (mean, standard error). */
typedef struct ppl_stat {
    double n, sum, sum2;
} ppl_stat;
void ppl_stat_add(ppl_stat *s, double x);
double ppl_stat_mean(const ppl_stat *s);
/* Standard error of the mean (0 with fewer than two samples). */
double ppl_stat_stderr(const ppl_stat *s);

/* ---- logits files ---- */
typedef struct ppl_logits_header {
    uint32_t n_vocab, n_ctx, first, n_chunks;
} ppl_logits_header;

int ppl_logits_write_header(FILE *f, const ppl_logits_header *h, al_err *err);
/* Reads and checks the header. Returns 0 or -1 with err naming the file. */
int ppl_logits_read_header(FILE *f, const char *path, ppl_logits_header *h, al_err *err);

#endif
