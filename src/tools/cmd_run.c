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
#include "tools/cli_util.h"
#include "tools/commands.h"

#define MAX_STOPS 16

static void help(void) {
    printf("usage: airlock run -m MODEL.gguf [-p PROMPT] [options]\n\n"
           "Streams the model's continuation of PROMPT to stdout.\n\n"
           "  -m, --model FILE          GGUF model (llama, qwen2, qwen3 architectures)\n"
           "  -p, --prompt TEXT         prompt (default: empty, generation starts from BOS)\n"
           "  -f, --file FILE           read the prompt from FILE\n"
           "  -n, --n-predict N         tokens to generate (default 128; -1: until end or context full)\n"
           "%s"
           "      --stop TEXT           stop when TEXT is generated (repeatable, not printed)\n"
           "      --no-echo             do not print the prompt\n"
           "      --special             print control tokens' text\n"
           "  -v, --verbose             model facts, memory and speed on stderr\n",
           cli_gen_help());
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
    enum { O_STOP = 256, O_NOECHO, O_SPECIAL };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'}, {"file", required_argument, 0, 'f'},
        {"n-predict", required_argument, 0, 'n'}, {"stop", required_argument, 0, O_STOP}, {"no-echo", no_argument, 0, O_NOECHO},
        {"special", no_argument, 0, O_SPECIAL}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'},
        CLI_SAMPLING_OPTIONS, {0, 0, 0, 0}};
    const char *model_path = NULL, *prompt = "", *prompt_file = NULL;
    long n_predict = 128;
    cli_gen_opts go;
    cli_gen_defaults(&go);
    out_stream os = {0};
    bool verbose = false, echo = true, special = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:f:n:c:s:t:vh", opts, NULL)) != -1) {
        int r = cli_gen_option("run", c == 'c' ? CLI_OPT_CTX : c == 's' ? CLI_OPT_SEED : c == 't' ? CLI_OPT_THREADS : c, optarg, &go);
        if (r < 0) return 2;
        if (r > 0) continue;
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'f': prompt_file = optarg; break;
        case 'n': if (cli_parse_int("run", optarg, "--n-predict", -1, 1 << 24, &n_predict)) return 2; break;
        case O_STOP:
            if (os.n_stops == MAX_STOPS) {
                fprintf(stderr, "airlock run: at most %d --stop strings\n", MAX_STOPS);
                return 2;
            }
            os.stops[os.n_stops++] = optarg;
            break;
        case O_NOECHO: echo = false; break;
        case O_SPECIAL: special = true; break;
        case 'v': verbose = true; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (!model_path || optind != argc) {
        fprintf(stderr, "airlock run: need -m MODEL (see --help)\n");
        return 2;
    }
    al_err err;
    if (ops_set_threads((int)go.threads)) {
        fprintf(stderr, "airlock run: cannot start %ld threads\n", go.threads);
        return 1;
    }
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
    llm_ctx *ctx = llm_ctx_init(m, (int)go.n_ctx, go.kv, &err);
    sampler *smp = ctx ? sampler_init(&go.sp, m->hp.n_vocab) : NULL;
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
        fprintf(stderr, "context: %d tokens, KV cache %s %.1f MiB; prompt: %zu tokens\n", ctx->n_ctx, go.kv == KV_F16 ? "f16" : "f32",
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
    }
    /* the whole prompt in batches: each weight matrix is read once per batch */
    logits = llm_prefill(ctx, ids.ids, (int)ids.n, &err);
    if (!logits) {
        fprintf(stderr, "\nairlock run: %s\n", err.msg);
        rc = 1;
        goto done;
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
    ops_set_threads(1);
    free(os.buf);
    token_vec_free(&ids);
    sampler_free(smp);
    llm_ctx_free(ctx);
    llm_free(m);
    free(prompt_buf);
    return rc;
}
