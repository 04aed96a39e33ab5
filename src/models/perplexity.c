/* perplexity.c - chunked evaluation of a model over a text. */
#include "models/perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ppl_eval_chunk(const llm_model *m, llm_ws *ws, llm_ctx *c, const int32_t *tokens, int n_ctx, int first, float *out,
                   al_err *err) {
    llm_ctx_reset(c);
    int nb = llm_ws_n_batch(ws);
    int n_vocab = m->hp.n_vocab;
    llm_ctx **seq = malloc((size_t)nb * sizeof *seq);
    bool *want = malloc((size_t)nb * sizeof *want);
    int rc = (!seq || !want) ? al_err_set(err, "out of memory") : 0;
    for (int i = 0; !rc && i < nb; i++) seq[i] = c;
    float *dst = out;
    for (int p0 = 0; !rc && p0 < n_ctx; p0 += nb) {
        int n = n_ctx - p0 < nb ? n_ctx - p0 : nb;
        for (int i = 0; i < n; i++) {
            int pos = p0 + i;
            want[i] = pos >= first && pos < n_ctx - 1;
        }
        llm_batch b = {.n = n, .tokens = tokens + p0, .seq = seq, .want_logits = want};
        int got = llm_forward(ws, &b, dst, err);
        if (got < 0) rc = -1;
        else dst += (size_t)got * (size_t)n_vocab;
    }
    free(seq);
    free(want);
    return rc;
}

int ppl_tokenize(const llm_model *m, const char *text, size_t len, int n_ctx, token_vec *out, al_err *err) {
    if (n_ctx < 4) return al_err_set(err, "context of %d tokens is too small to score (at least 4)", n_ctx);
    if (tokenizer_encode(m->tok, text, len, true, false, out, err)) return -1;
    int n_chunks = (int)(out->n / (size_t)n_ctx);
    if (n_chunks < 1)
        return al_err_set(err, "the text has %zu tokens; one chunk needs %d (use a longer text or a smaller --ctx-size)", out->n,
                          n_ctx);
    int32_t bos = tokenizer_bos(m->tok);
    if (tokenizer_add_bos(m->tok) && bos >= 0)
        for (int k = 0; k < n_chunks; k++) out->ids[(size_t)k * (size_t)n_ctx] = bos;
    return n_chunks;
}

double ppl_log_z(const float *logits, int n_vocab) {
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double s = 0;
    for (int i = 0; i < n_vocab; i++) s += exp((double)logits[i] - mx);
    return mx + log(s);
}

double ppl_log_prob(const float *logits, int n_vocab, int tok) { return (double)logits[tok] - ppl_log_z(logits, n_vocab); }

void ppl_stat_add(ppl_stat *s, double x) {
    s->n += 1;
    s->sum += x;
    s->sum2 += x * x;
}

double ppl_stat_mean(const ppl_stat *s) { return s->n > 0 ? s->sum / s->n : 0; }

double ppl_stat_stderr(const ppl_stat *s) {
    if (s->n < 2) return 0;
    double mean = s->sum / s->n, var = (s->sum2 / s->n - mean * mean) * s->n / (s->n - 1);
    return var > 0 ? sqrt(var / s->n) : 0;
}

int ppl_logits_write_header(FILE *f, const ppl_logits_header *h, al_err *err) {
    uint32_t v[5] = {1, h->n_vocab, h->n_ctx, h->first, h->n_chunks};
    if (fwrite("ALLG", 1, 4, f) != 4 || fwrite(v, 4, 5, f) != 5) return al_err_set(err, "write failed");
    return 0;
}

int ppl_logits_read_header(FILE *f, const char *path, ppl_logits_header *h, al_err *err) {
    char magic[4];
    uint32_t v[5];
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "ALLG", 4) != 0) return al_err_set(err, "%s: not a logits file (magic)", path);
    if (fread(v, 4, 5, f) != 5) return al_err_set(err, "%s: truncated header", path);
    if (v[0] != 1) return al_err_set(err, "%s: logits file version %u (this airlock reads 1)", path, v[0]);
    h->n_vocab = v[1];
    h->n_ctx = v[2];
    h->first = v[3];
    h->n_chunks = v[4];
    if (h->n_vocab == 0 || h->n_vocab > (1u << 24) || h->n_ctx < 2 || h->n_ctx > (1u << 20) || h->first >= h->n_ctx - 1 ||
        h->n_chunks == 0)
        return al_err_set(err, "%s: implausible header (vocab %u, ctx %u, first %u, chunks %u)", path, h->n_vocab, h->n_ctx,
                          h->first, h->n_chunks);
    return 0;
}
