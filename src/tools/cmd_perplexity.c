/* cmd_perplexity.c - `airlock perplexity` and `airlock kl-divergence`. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mapped_file.h"
#include "models/perplexity.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

/* Options both commands take. */
typedef struct score_opts {
    const char *model, *text, *base_model, *base_logits, *save_logits;
    long n_ctx, n_chunks, n_batch, threads;
    kv_type kv;
    bool json;
} score_opts;

enum { O_CHUNKS = 300, O_KV, O_SAVE, O_BASE, O_BASE_LOGITS, O_JSON };

static const struct option k_opts[] = {
    {"model", required_argument, 0, 'm'},       {"file", required_argument, 0, 'f'},
    {"ctx-size", required_argument, 0, 'c'},    {"batch-size", required_argument, 0, 'b'},
    {"threads", required_argument, 0, 't'},     {"chunks", required_argument, 0, O_CHUNKS},
    {"kv-type", required_argument, 0, O_KV},    {"save-logits", required_argument, 0, O_SAVE},
    {"base", required_argument, 0, O_BASE},     {"base-logits", required_argument, 0, O_BASE_LOGITS},
    {"json", no_argument, 0, O_JSON},           {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static const char k_common_help[] =
    "  -c, --ctx-size N      tokens per chunk (default 512); the second half of each is scored\n"
    "  --chunks N            score at most N chunks (default: all whole chunks of the text)\n"
    "  -b, --batch-size N    tokens per forward pass (default 512)\n"
    "  -t, --threads N       threads (default 2)\n"
    "  --kv-type f16|f32     KV cache precision (default f16)\n"
    "  --json                print the result as one JSON object\n";

/* Parses argv into o. Returns 0, 1 after --help, or 2 on a usage error. */
static int parse_opts(const char *cmd, int argc, char **argv, void (*help)(void), score_opts *o) {
    *o = (score_opts){.n_ctx = 512, .n_batch = 512, .threads = 2, .kv = KV_F16};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:f:c:b:t:h", k_opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'f': o->text = optarg; break;
        case 'c': if (cli_parse_int(cmd, optarg, "--ctx-size", 4, 1 << 20, &o->n_ctx)) return 2; break;
        case 'b': if (cli_parse_int(cmd, optarg, "--batch-size", 1, 1 << 16, &o->n_batch)) return 2; break;
        case 't': if (cli_parse_int(cmd, optarg, "--threads", 1, 1024, &o->threads)) return 2; break;
        case O_CHUNKS: if (cli_parse_int(cmd, optarg, "--chunks", 1, 1 << 30, &o->n_chunks)) return 2; break;
        case O_KV: if (cli_parse_kv(cmd, optarg, &o->kv)) return 2; break;
        case O_SAVE: o->save_logits = optarg; break;
        case O_BASE: o->base_model = optarg; break;
        case O_BASE_LOGITS: o->base_logits = optarg; break;
        case O_JSON: o->json = true; break;
        case 'h': help(); return 1;
        default: return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "airlock %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    return 0;
}

/* A model with one sequence and a workspace. */
typedef struct scorer {
    llm_model *m;
    llm_ctx *c;
    llm_ws *ws;
} scorer;

static void scorer_free(scorer *s) {
    llm_ws_free(s->ws);
    llm_ctx_free(s->c);
    llm_free(s->m);
}

static int scorer_init(scorer *s, const char *path, const score_opts *o, al_err *err) {
    memset(s, 0, sizeof *s);
    if (!(s->m = llm_load(path, err))) return -1;
    int nb = o->n_batch < o->n_ctx ? (int)o->n_batch : (int)o->n_ctx;
    if (!(s->c = llm_ctx_init_batch(s->m, (int)o->n_ctx, o->kv, 0, err)) || !(s->ws = llm_ws_init(s->m, nb, err))) {
        scorer_free(s);
        return -1;
    }
    return 0;
}

/* Reads the text file and tokenizes it into whole chunks; returns the chunk
 * count (capped by --chunks) or -1. */
static int load_chunks(const scorer *s, const score_opts *o, token_vec *toks, al_err *err) {
    size_t len;
    char *text = file_read_all(o->text, &len, err);
    if (!text) return -1;
    int n = ppl_tokenize(s->m, text, len, (int)o->n_ctx, toks, err);
    free(text);
    if (n < 0) return al_err_prefix(err, "%s", o->text);
    if (o->n_chunks > 0 && n > o->n_chunks) n = (int)o->n_chunks;
    return n;
}

static void help_ppl(void) {
    printf("usage: airlock perplexity -m MODEL.gguf -f TEXT [options]\n\n"
           "Perplexity of the model over a text file, chunked as llama.cpp's\n"
           "llama-perplexity does (so the numbers compare): the text is cut into\n"
           "chunks of --ctx-size tokens, each evaluated from an empty cache with BOS\n"
           "first, and the second half of each chunk is scored.\n\n"
           "%s"
           "  --save-logits FILE    keep the scored logits, for kl-divergence --base-logits\n",
           k_common_help);
}

int cmd_perplexity(int argc, char **argv) {
    score_opts o;
    int prc = parse_opts("perplexity", argc, argv, help_ppl, &o);
    if (prc) return prc == 1 ? 0 : 2;
    if (!o.model || !o.text || o.base_model || o.base_logits) {
        fprintf(stderr, "airlock perplexity: need -m MODEL and -f TEXT (see --help)\n");
        return 2;
    }
    al_err err;
    if (ops_set_threads((int)o.threads)) {
        fprintf(stderr, "airlock perplexity: cannot start %ld threads\n", o.threads);
        return 1;
    }
    scorer s;
    token_vec toks = {0};
    float *logits = NULL;
    FILE *save = NULL;
    char save_tmp[4096] = "";
    int rc = 1, n_chunks = -1;
    if (scorer_init(&s, o.model, &o, &err)) goto fail;
    if ((n_chunks = load_chunks(&s, &o, &toks, &err)) < 0) goto fail_s;
    int V = s.m->hp.n_vocab, n_ctx = (int)o.n_ctx, first = n_ctx / 2, rows = n_ctx - 1 - first;
    logits = malloc((size_t)rows * (size_t)V * sizeof *logits);
    if (!logits) { al_err_set(&err, "out of memory"); goto fail_s; }
    if (o.save_logits) {
        cli_remove_tmp_on_signal(o.save_logits);
        snprintf(save_tmp, sizeof save_tmp, "%s.tmp", o.save_logits);
        ppl_logits_header h = {(uint32_t)V, (uint32_t)n_ctx, (uint32_t)first, (uint32_t)n_chunks};
        if (!(save = fopen(save_tmp, "wb"))) { al_err_set(&err, "%s: cannot create", save_tmp); goto fail_s; }
        if (ppl_logits_write_header(save, &h, &err)) goto fail_s;
    }
    if (!o.json)
        fprintf(stderr, "perplexity: %zu tokens, %d chunks of %d, scoring %d positions each\n", toks.n, n_chunks, n_ctx, rows);
    ppl_stat nll = {0};
    for (int k = 0; k < n_chunks; k++) {
        const int32_t *ck = toks.ids + (size_t)k * (size_t)n_ctx;
        if (ppl_eval_chunk(s.m, s.ws, s.c, ck, n_ctx, first, logits, &err)) goto fail_s;
        for (int j = 0; j < rows; j++) ppl_stat_add(&nll, -ppl_log_prob(logits + (size_t)j * (size_t)V, V, ck[first + j + 1]));
        if (save && (fwrite(ck, sizeof *ck, (size_t)n_ctx, save) != (size_t)n_ctx ||
                     fwrite(logits, sizeof *logits, (size_t)rows * (size_t)V, save) != (size_t)rows * (size_t)V)) {
            al_err_set(&err, "%s: write failed", o.save_logits);
            goto fail_s;
        }
        if (!o.json) {
            printf("[%d]%.4f,", k + 1, exp(ppl_stat_mean(&nll)));
            fflush(stdout);
        }
    }
    if (save) {
        int bad = fclose(save) != 0;
        save = NULL;
        if (bad || rename(save_tmp, o.save_logits) != 0) { al_err_set(&err, "%s: cannot write", o.save_logits); goto fail_s; }
    }
    double ppl = exp(ppl_stat_mean(&nll)), pe = ppl * ppl_stat_stderr(&nll);
    if (o.json)
        printf("{\"model\":\"%s\",\"n_ctx\":%d,\"chunks\":%d,\"tokens_scored\":%.0f,\"ppl\":%.6f,\"ppl_stderr\":%.6f}\n", o.model, n_ctx,
               n_chunks, nll.n, ppl, pe);
    else
        printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, pe);
    rc = 0;
fail_s:
    scorer_free(&s);
fail:
    if (save) fclose(save);
    if (rc && save_tmp[0]) unlink(save_tmp); /* no partial logits file left behind */
    if (rc) fprintf(stderr, "\nairlock perplexity: %s\n", err.msg);
    free(logits);
    token_vec_free(&toks);
    ops_set_threads(1);
    return rc;
}

/* ---- kl-divergence ---------------------------------------------------------------- */

static void help_kld(void) {
    printf("usage: airlock kl-divergence -m MODEL.gguf (--base BASE.gguf -f TEXT | --base-logits FILE) [options]\n\n"
           "How far a model's next-token distributions are from a reference's: the\n"
           "same text chunks (as perplexity) are scored by both, and for every scored\n"
           "position KL(base || model) is computed over the whole vocabulary. Use it\n"
           "to see what a quantization costs: --base is the F16 (or BF16/F32) source.\n"
           "--base-logits reads a file written by `perplexity --save-logits` (the\n"
           "tokens come from it, so -f is not needed).\n\n"
           "%s",
           k_common_help);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Statistics of one scored position: base logits a, model logits b. */
typedef struct kld_acc {
    ppl_stat kld, nll_base, nll_model, top1, dp;
    double max_dlogit;
    double *klds;
    size_t n_klds, cap;
} kld_acc;

static int kld_add(kld_acc *a, const float *base, const float *model, int V, int tok) {
    double lzb = ppl_log_z(base, V), lzm = ppl_log_z(model, V), kl = 0;
    int ab = 0, am = 0;
    for (int i = 0; i < V; i++) {
        if (base[i] > base[ab]) ab = i;
        if (model[i] > model[am]) am = i;
        double d = fabs((double)base[i] - (double)model[i]);
        if (d > a->max_dlogit) a->max_dlogit = d;
    }
    for (int i = 0; i < V; i++) {
        double lpb = base[i] - lzb, lpm = model[i] - lzm;
        kl += exp(lpb) * (lpb - lpm);
    }
    if (kl < 0) kl = 0; /* rounding */
    ppl_stat_add(&a->kld, kl);
    ppl_stat_add(&a->nll_base, -(base[tok] - lzb));
    ppl_stat_add(&a->nll_model, -(model[tok] - lzm));
    ppl_stat_add(&a->top1, ab == am ? 1.0 : 0.0);
    double dp = exp(model[tok] - lzm) - exp(base[tok] - lzb);
    ppl_stat_add(&a->dp, dp);
    if (a->n_klds == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        double *k = realloc(a->klds, cap * sizeof *k);
        if (!k) return -1;
        a->klds = k;
        a->cap = cap;
    }
    a->klds[a->n_klds++] = kl;
    return 0;
}

int cmd_kl_divergence(int argc, char **argv) {
    score_opts o;
    int prc = parse_opts("kl-divergence", argc, argv, help_kld, &o);
    if (prc) return prc == 1 ? 0 : 2;
    if (!o.model || (!o.base_model == !o.base_logits) || (o.base_model && !o.text) || o.save_logits) {
        fprintf(stderr, "airlock kl-divergence: need -m MODEL and either --base BASE -f TEXT or --base-logits FILE (see --help)\n");
        return 2;
    }
    al_err err;
    if (ops_set_threads((int)o.threads)) {
        fprintf(stderr, "airlock kl-divergence: cannot start %ld threads\n", o.threads);
        return 1;
    }
    scorer s = {0}, b = {0};
    token_vec toks = {0};
    float *lm = NULL, *lb = NULL;
    FILE *bf = NULL;
    kld_acc acc = {0};
    int rc = 1, n_chunks, n_ctx, first;
    ppl_logits_header h = {0};
    if (o.base_logits) {
        if (!(bf = fopen(o.base_logits, "rb"))) { al_err_set(&err, "%s: cannot open", o.base_logits); goto out; }
        if (ppl_logits_read_header(bf, o.base_logits, &h, &err)) goto out;
        o.n_ctx = h.n_ctx;
    }
    if (scorer_init(&s, o.model, &o, &err)) goto out;
    int V = s.m->hp.n_vocab;
    if (o.base_logits) {
        if ((int)h.n_vocab != V) {
            al_err_set(&err, "%s has logits over %u tokens, %s has a vocabulary of %d", o.base_logits, h.n_vocab, o.model, V);
            goto out;
        }
        n_ctx = (int)h.n_ctx;
        first = (int)h.first;
        n_chunks = (int)h.n_chunks;
        if (o.n_chunks > 0 && n_chunks > o.n_chunks) n_chunks = (int)o.n_chunks;
        if (!(toks.ids = malloc((size_t)n_ctx * sizeof *toks.ids))) { al_err_set(&err, "out of memory"); goto out; }
    } else {
        if (scorer_init(&b, o.base_model, &o, &err)) goto out;
        if (b.m->hp.n_vocab != V) {
            al_err_set(&err, "%s has a vocabulary of %d tokens, %s of %d", o.base_model, b.m->hp.n_vocab, o.model, V);
            goto out;
        }
        if ((n_chunks = load_chunks(&b, &o, &toks, &err)) < 0) goto out;
        n_ctx = (int)o.n_ctx;
        first = n_ctx / 2;
    }
    int rows = n_ctx - 1 - first;
    lm = malloc((size_t)rows * (size_t)V * sizeof *lm);
    lb = malloc((size_t)rows * (size_t)V * sizeof *lb);
    if (!lm || !lb) { al_err_set(&err, "out of memory"); goto out; }
    for (int k = 0; k < n_chunks; k++) {
        const int32_t *ck;
        if (bf) {
            if (fread(toks.ids, sizeof *toks.ids, (size_t)n_ctx, bf) != (size_t)n_ctx ||
                fread(lb, sizeof *lb, (size_t)rows * (size_t)V, bf) != (size_t)rows * (size_t)V) {
                al_err_set(&err, "%s: truncated in chunk %d", o.base_logits, k + 1);
                goto out;
            }
            for (int i = 0; i < n_ctx; i++)
                if (toks.ids[i] < 0 || toks.ids[i] >= V) {
                    al_err_set(&err, "%s: chunk %d holds token id %d, outside the vocabulary", o.base_logits, k + 1, toks.ids[i]);
                    goto out;
                }
            ck = toks.ids;
        } else {
            ck = toks.ids + (size_t)k * (size_t)n_ctx;
            if (ppl_eval_chunk(b.m, b.ws, b.c, ck, n_ctx, first, lb, &err)) goto out;
        }
        if (ppl_eval_chunk(s.m, s.ws, s.c, ck, n_ctx, first, lm, &err)) goto out;
        for (int j = 0; j < rows; j++)
            if (kld_add(&acc, lb + (size_t)j * (size_t)V, lm + (size_t)j * (size_t)V, V, ck[first + j + 1])) {
                al_err_set(&err, "out of memory");
                goto out;
            }
        if (!o.json) {
            fprintf(stderr, "\rkl-divergence: chunk %d/%d, mean KLD %.6f", k + 1, n_chunks, ppl_stat_mean(&acc.kld));
            if (k + 1 == n_chunks) fputc('\n', stderr);
        }
    }
    qsort(acc.klds, acc.n_klds, sizeof *acc.klds, cmp_double);
    double median = acc.klds[acc.n_klds / 2], p99 = acc.klds[(size_t)((double)(acc.n_klds - 1) * 0.99)],
           kmax = acc.klds[acc.n_klds - 1];
    double ppl_m = exp(ppl_stat_mean(&acc.nll_model)), ppl_b = exp(ppl_stat_mean(&acc.nll_base));
    double rms_dp = sqrt(acc.dp.sum2 / acc.dp.n);
    if (o.json) {
        printf("{\"model\":\"%s\",\"chunks\":%d,\"n_ctx\":%d,\"positions\":%zu,\"ppl\":%.6f,\"ppl_base\":%.6f,"
               "\"ln_ppl_ratio\":%.6f,\"kld_mean\":%.8f,\"kld_stderr\":%.8f,\"kld_median\":%.8f,\"kld_p99\":%.8f,"
               "\"kld_max\":%.8f,\"same_top\":%.6f,\"rms_dp\":%.8f,\"max_abs_dlogit\":%.8f}\n",
               o.model, n_chunks, n_ctx, acc.n_klds, ppl_m, ppl_b, log(ppl_m / ppl_b), ppl_stat_mean(&acc.kld),
               ppl_stat_stderr(&acc.kld), median, p99, kmax, ppl_stat_mean(&acc.top1), rms_dp, acc.max_dlogit);
    } else {
        printf("positions scored:        %zu (%d chunks of %d)\n", acc.n_klds, n_chunks, n_ctx);
        printf("PPL(model):              %.4f\n", ppl_m);
        printf("PPL(base):               %.4f\n", ppl_b);
        printf("ln(PPL(model)/PPL(base)): %.6f\n", log(ppl_m / ppl_b));
        printf("mean KLD:                %.6f +/- %.6f\n", ppl_stat_mean(&acc.kld), ppl_stat_stderr(&acc.kld));
        printf("median KLD:              %.6f\n", median);
        printf("99th percentile KLD:     %.6f\n", p99);
        printf("maximum KLD:             %.6f\n", kmax);
        printf("same top token:          %.2f +/- %.2f %%\n", 100 * ppl_stat_mean(&acc.top1), 100 * ppl_stat_stderr(&acc.top1));
        printf("RMS dp (correct token):  %.4f %%\n", 100 * rms_dp);
        printf("max |d logit|:           %.6f\n", acc.max_dlogit);
    }
    rc = 0;
out:
    if (rc) fprintf(stderr, "\nairlock kl-divergence: %s\n", err.msg);
    if (bf) fclose(bf);
    scorer_free(&s);
    scorer_free(&b);
    free(lm);
    free(lb);
    free(acc.klds);
    token_vec_free(&toks);
    ops_set_threads(1);
    return rc;
}
