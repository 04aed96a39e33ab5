/* cmd_run.c - `airlock run -m MODEL -p PROMPT`: stream a continuation. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "models/llm.h"
#include "models/sampler.h"
#include "tools/commands.h"

#define MAX_STOPS 16

static void help(void) {
    printf("usage: airlock run -m MODEL.gguf [-p PROMPT] [options]\n\n"
           "Streams the model's continuation of PROMPT to stdout.\n\n"
           "  -m, --model FILE          GGUF model (llama, qwen2, qwen3 architectures)\n"
           "  -p, --prompt TEXT         prompt (default: empty, generation starts from BOS)\n"
           "  -f, --file FILE           read the prompt from FILE\n"
           "  -n, --n-predict N         tokens to generate (default 128; -1: until end or context full)\n"
           "  -c, --ctx-size N          context length (default: the model's)\n"
           "  -s, --seed N              random seed (default 42)\n"
           "      --temp T              temperature (default 0.8; 0 = greedy)\n"
           "      --top-k N             keep the N most likely tokens (default 40; 0 = off)\n"
           "      --top-p P             nucleus sampling (default 0.95; 1 = off)\n"
           "      --min-p P             drop tokens below P x the best (default 0.05; 0 = off)\n"
           "      --repeat-penalty F    penalise recent tokens (default 1.0 = off)\n"
           "      --repeat-last-n N     how many recent tokens the penalties see (default 64)\n"
           "      --frequency-penalty F subtract F x count of recent occurrences\n"
           "      --presence-penalty F  subtract F once if recently present\n"
           "      --stop TEXT           stop when TEXT is generated (repeatable, not printed)\n"
           "  -t, --threads N           worker threads (default: all cores)\n"
           "      --kv-type f16|f32     KV cache precision (default f16)\n"
           "      --no-echo             do not print the prompt\n"
           "      --special             print control tokens' text\n"
           "  -v, --verbose             model facts, memory and speed on stderr\n");
}

static long peak_rss_kib(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_int(const char *s, const char *name, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "airlock run: %s must be an integer in [%ld, %ld], got '%s'\n", name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *s, const char *name, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "airlock run: %s must be a number in [%g, %g], got '%s'\n", name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Output with stop strings: text that might begin a stop string is held back
 * until it is known not to. Returns 1 once a stop string is complete. */
typedef struct out_stream {
    char *buf;
    size_t n, cap;
    const char *stops[MAX_STOPS];
    int n_stops;
} out_stream;

static int out_put(out_stream *o, const char *s, size_t n) {
    if (o->n + n + 1 > o->cap) {
        size_t nc = (o->n + n + 1) * 2;
        char *nb = realloc(o->buf, nc);
        if (!nb) return -1;
        o->buf = nb;
        o->cap = nc;
    }
    memcpy(o->buf + o->n, s, n);
    o->n += n;
    for (int i = 0; i < o->n_stops; i++) {
        size_t sl = strlen(o->stops[i]);
        for (size_t at = 0; sl && at + sl <= o->n; at++) {
            if (memcmp(o->buf + at, o->stops[i], sl) == 0) {
                fwrite(o->buf, 1, at, stdout);
                o->n = 0;
                return 1;
            }
        }
    }
    /* emit everything that cannot be the start of a stop string */
    size_t keep = 0;
    for (int i = 0; i < o->n_stops; i++) {
        size_t sl = strlen(o->stops[i]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > keep; k--) {
            if (k <= o->n && memcmp(o->buf + o->n - k, o->stops[i], k) == 0) {
                keep = k;
                break;
            }
        }
    }
    fwrite(o->buf, 1, o->n - keep, stdout);
    memmove(o->buf, o->buf + o->n - keep, keep);
    o->n = keep;
    fflush(stdout);
    return 0;
}

int cmd_run(int argc, char **argv) {
    enum { O_TEMP = 256, O_TOPK, O_TOPP, O_MINP, O_REP, O_REPN, O_FREQ, O_PRES, O_STOP, O_KV, O_NOECHO, O_SPECIAL };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'}, {"file", required_argument, 0, 'f'},
        {"n-predict", required_argument, 0, 'n'}, {"ctx-size", required_argument, 0, 'c'}, {"seed", required_argument, 0, 's'},
        {"temp", required_argument, 0, O_TEMP}, {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"min-p", required_argument, 0, O_MINP}, {"repeat-penalty", required_argument, 0, O_REP},
        {"repeat-last-n", required_argument, 0, O_REPN}, {"frequency-penalty", required_argument, 0, O_FREQ},
        {"presence-penalty", required_argument, 0, O_PRES}, {"stop", required_argument, 0, O_STOP},
        {"threads", required_argument, 0, 't'}, {"kv-type", required_argument, 0, O_KV}, {"no-echo", no_argument, 0, O_NOECHO},
        {"special", no_argument, 0, O_SPECIAL}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model_path = NULL, *prompt = "", *prompt_file = NULL;
    long n_predict = 128, n_ctx = 0, threads = 0, seed = 42, tmp;
    sampler_params sp = sampler_default_params();
    out_stream os = {0};
    kv_type kv = KV_F16;
    bool verbose = false, echo = true, special = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:f:n:c:s:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'f': prompt_file = optarg; break;
        case 'n': if (parse_int(optarg, "--n-predict", -1, 1 << 24, &n_predict)) return 2; break;
        case 'c': if (parse_int(optarg, "--ctx-size", 0, 1 << 24, &n_ctx)) return 2; break;
        case 's': if (parse_int(optarg, "--seed", 0, 0x7fffffffL, &seed)) return 2; break;
        case 't': if (parse_int(optarg, "--threads", 0, 1024, &threads)) return 2; break;
        case O_TEMP: if (parse_float(optarg, "--temp", 0, 100, &sp.temperature)) return 2; break;
        case O_TOPK: if (parse_int(optarg, "--top-k", 0, 1 << 24, &tmp)) return 2; sp.top_k = (int)tmp; break;
        case O_TOPP: if (parse_float(optarg, "--top-p", 0, 1, &sp.top_p)) return 2; break;
        case O_MINP: if (parse_float(optarg, "--min-p", 0, 1, &sp.min_p)) return 2; break;
        case O_REP: if (parse_float(optarg, "--repeat-penalty", 0.01f, 100, &sp.repeat_penalty)) return 2; break;
        case O_REPN: if (parse_int(optarg, "--repeat-last-n", 0, 1 << 20, &tmp)) return 2; sp.penalty_last_n = (int)tmp; break;
        case O_FREQ: if (parse_float(optarg, "--frequency-penalty", -2, 2, &sp.frequency_penalty)) return 2; break;
        case O_PRES: if (parse_float(optarg, "--presence-penalty", -2, 2, &sp.presence_penalty)) return 2; break;
        case O_STOP:
            if (os.n_stops == MAX_STOPS) {
                fprintf(stderr, "airlock run: at most %d --stop strings\n", MAX_STOPS);
                return 2;
            }
            os.stops[os.n_stops++] = optarg;
            break;
        case O_KV:
            if (strcmp(optarg, "f16") == 0) kv = KV_F16;
            else if (strcmp(optarg, "f32") == 0) kv = KV_F32;
            else {
                fprintf(stderr, "airlock run: --kv-type must be f16 or f32\n");
                return 2;
            }
            break;
        case O_NOECHO: echo = false; break;
        case O_SPECIAL: special = true; break;
        case 'v': verbose = true; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    (void)threads;
    if (!model_path || optind != argc) {
        fprintf(stderr, "airlock run: need -m MODEL (see --help)\n");
        return 2;
    }
    sp.seed = (uint64_t)seed;
    al_err err;
    char *prompt_buf = NULL;
    if (prompt_file) {
        prompt_buf = file_read_all(prompt_file, NULL, &err);
        if (!prompt_buf) {
            fprintf(stderr, "airlock run: %s\n", err.msg);
            return 1;
        }
        prompt = prompt_buf;
    }
    double t0 = now_s();
    llm_model *m = llm_load(model_path, &err);
    if (!m) {
        fprintf(stderr, "airlock run: %s\n", err.msg);
        free(prompt_buf);
        return 1;
    }
    llm_ctx *ctx = llm_ctx_init(m, (int)n_ctx, kv, &err);
    sampler *smp = ctx ? sampler_init(&sp, m->hp.n_vocab) : NULL;
    token_vec ids = {0};
    int rc = 0;
    if (!ctx || !smp || tokenizer_encode(m->tok, prompt, strlen(prompt), true, false, &ids, &err)) {
        fprintf(stderr, "airlock run: %s\n", ctx && !smp ? "out of memory" : err.msg);
        rc = 1;
        goto done;
    }
    if (ids.n == 0) {
        fprintf(stderr, "airlock run: the prompt is empty and the model adds no BOS token; give a prompt\n");
        rc = 1;
        goto done;
    }
    if ((long)ids.n >= ctx->n_ctx) {
        fprintf(stderr, "airlock run: prompt is %zu tokens, the context holds %d (use -c)\n", ids.n, ctx->n_ctx);
        rc = 1;
        goto done;
    }
    if (verbose) {
        const llm_hparams *hp = &m->hp;
        fprintf(stderr, "model: %s, arch %s, %d layers, width %d, %d/%d heads of %d, ffn %d, vocab %d, %.1f MiB of weights\n",
                model_path, llm_arch_name(hp->arch), hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff,
                hp->n_vocab, (double)m->weight_bytes / 1048576.0);
        fprintf(stderr, "context: %d tokens, KV cache %s %.1f MiB; prompt: %zu tokens\n", ctx->n_ctx, kv == KV_F16 ? "f16" : "f32",
                (double)llm_ctx_kv_bytes(ctx) / 1048576.0, ids.n);
    }
    double t_load = now_s();
    char piece[512];
    bool first_piece = true;
    const float *logits = NULL;
    for (size_t i = 0; i < ids.n; i++) {
        if (echo) {
            int k = tokenizer_token_to_piece(m->tok, ids.ids[i], special, piece, sizeof piece);
            if (k > (int)sizeof piece) k = (int)sizeof piece;
            const char *p = piece;
            if (k > 0 && first_piece && tokenizer_get_kind(m->tok) == TOKENIZER_SPM && *p == ' ') p++, k--;
            if (k > 0) {
                fwrite(p, 1, (size_t)k, stdout);
                first_piece = false;
            }
        }
        sampler_accept(smp, ids.ids[i]);
        logits = llm_decode(ctx, ids.ids[i], &err);
        if (!logits) {
            fprintf(stderr, "\nairlock run: %s\n", err.msg);
            rc = 1;
            goto done;
        }
    }
    fflush(stdout);
    double t_prompt = now_s();
    long generated = 0;
    while (n_predict < 0 || generated < n_predict) {
        int32_t tok = sampler_sample(smp, logits);
        generated++;
        if (tokenizer_is_eog(m->tok, tok)) break;
        sampler_accept(smp, tok);
        int k = tokenizer_token_to_piece(m->tok, tok, special, piece, sizeof piece);
        if (k > (int)sizeof piece) k = (int)sizeof piece;
        const char *p = piece;
        if (k > 0 && first_piece && tokenizer_get_kind(m->tok) == TOKENIZER_SPM && *p == ' ') p++, k--;
        if (k > 0) {
            first_piece = false;
            int st = out_put(&os, p, (size_t)k);
            if (st < 0) {
                fprintf(stderr, "\nairlock run: out of memory\n");
                rc = 1;
                goto done;
            }
            if (st == 1) break;
        }
        if (n_predict >= 0 && generated >= n_predict) break;
        if (ctx->pos >= ctx->n_ctx) {
            fprintf(stderr, "\nairlock run: context full (%d tokens); stopping\n", ctx->n_ctx);
            break;
        }
        logits = llm_decode(ctx, tok, &err);
        if (!logits) {
            fprintf(stderr, "\nairlock run: %s\n", err.msg);
            rc = 1;
            goto done;
        }
    }
    fwrite(os.buf, 1, os.n, stdout);
    putchar('\n');
    fflush(stdout);
    if (verbose) {
        double t_end = now_s();
        fprintf(stderr, "load %.2f s; prompt %zu tokens in %.3f s (%.1f tok/s); generated %ld tokens in %.3f s (%.1f tok/s)\n",
                t_load - t0, ids.n, t_prompt - t_load, (double)ids.n / (t_prompt - t_load + 1e-9), generated, t_end - t_prompt,
                (double)generated / (t_end - t_prompt + 1e-9));
        fprintf(stderr, "peak RSS %.1f MiB (model file %.1f MiB + KV cache %.1f MiB + buffers)\n", (double)peak_rss_kib() / 1024.0,
                (double)m->gguf->size / 1048576.0, (double)llm_ctx_kv_bytes(ctx) / 1048576.0);
    }
done:
    free(os.buf);
    token_vec_free(&ids);
    sampler_free(smp);
    llm_ctx_free(ctx);
    llm_free(m);
    free(prompt_buf);
    return rc;
}
