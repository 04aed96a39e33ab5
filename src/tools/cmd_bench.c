/* cmd_bench.c - `airlock bench`: prompt-processing and generation speed, in
 * the shape llama.cpp's llama-bench reports (so the two can be compared
 * line by line on the same file). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json_write.h"
#include "kernels/cpu.h"
#include "kernels/ops.h"
#include "models/llm.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

#define MAX_LIST 16

static void help(void) {
    printf("usage: airlock bench -m MODEL.gguf [options]\n\n"
           "Measures prompt processing (pp: a prompt of N random tokens in one go) and\n"
           "generation (tg: N tokens one at a time) in tokens per second, as the mean and\n"
           "standard deviation over repetitions, after one warm-up run of each test.\n\n"
           "  -m, --model FILE     GGUF model\n"
           "  -p, --n-prompt N     prompt tokens for the pp test (default 512; 0 skips it)\n"
           "  -n, --n-gen N        generated tokens for the tg test (default 128; 0 skips it)\n"
           "  -t, --threads LIST   thread counts, comma-separated (default: all cores)\n"
           "  -d, --depth LIST     tokens already in the context before each test (default 0)\n"
           "  -r, --repetitions N  runs per test (default 5)\n"
           "      --kv-type f16|f32 KV cache precision (default f16)\n"
           "      --no-warmup      skip the warm-up run (long contexts: each run fills the\n"
           "                       context anew, which can take minutes)\n"
           "      --json           one JSON array instead of the markdown table\n");
}

/* Parses "1,2,4" into out; returns the count or -1. */
static int parse_list(const char *s, const char *name, long lo, long hi, long *out) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == MAX_LIST || cli_parse_int("bench", tok, name, lo, hi, &out[n])) return -1;
        n++;
    }
    return n ? n : -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 0x853c49e6748fea9bull;
static int32_t random_token(int n_vocab) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((g_rng >> 33) % (uint64_t)n_vocab);
}

/* Fills the context with `depth` random tokens (not timed). */
static int fill_depth(llm_ctx *c, int depth, int32_t *toks, al_err *err) {
    llm_ctx_reset(c);
    if (depth == 0) return 0;
    for (int i = 0; i < depth; i++) toks[i] = random_token(c->m->hp.n_vocab);
    return llm_prefill(c, toks, depth, err) ? 0 : -1;
}

/* One run of a test: seconds for n_prompt tokens at once, or n_gen one by one. */
static double run_once(llm_ctx *c, int depth, int n_prompt, int n_gen, int32_t *toks, al_err *err) {
    if (fill_depth(c, depth, toks, err)) return -1;
    double t0 = now_s();
    if (n_prompt) {
        for (int i = 0; i < n_prompt; i++) toks[i] = random_token(c->m->hp.n_vocab);
        if (!llm_prefill(c, toks, n_prompt, err)) return -1;
    } else {
        int32_t t = random_token(c->m->hp.n_vocab);
        for (int i = 0; i < n_gen; i++) {
            const float *lg = llm_decode(c, t, err);
            if (!lg) return -1;
            t = op_argmax(lg, c->m->hp.n_vocab); /* greedy, as a real generation loop would pick */
        }
    }
    return now_s() - t0;
}

typedef struct result {
    int threads, depth, n_prompt, n_gen, reps;
    double samples[64];
    double mean, sd;
} result;

static void stats(result *r) {
    double s = 0, ss = 0;
    for (int i = 0; i < r->reps; i++) s += r->samples[i];
    r->mean = s / r->reps;
    for (int i = 0; i < r->reps; i++) ss += (r->samples[i] - r->mean) * (r->samples[i] - r->mean);
    r->sd = r->reps > 1 ? sqrt(ss / (r->reps - 1)) : 0;
}

static void test_name(const result *r, char *buf, size_t n) {
    if (r->n_prompt) snprintf(buf, n, "pp%d", r->n_prompt);
    else snprintf(buf, n, "tg%d", r->n_gen);
    if (r->depth) snprintf(buf + strlen(buf), n - strlen(buf), " @ d%d", r->depth);
}

int cmd_bench(int argc, char **argv) {
    enum { O_JSON = 256, O_KV, O_NO_WARMUP };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"n-prompt", required_argument, 0, 'p'},
                                         {"n-gen", required_argument, 0, 'n'}, {"threads", required_argument, 0, 't'},
                                         {"depth", required_argument, 0, 'd'}, {"repetitions", required_argument, 0, 'r'},
                                         {"kv-type", required_argument, 0, O_KV}, {"json", no_argument, 0, O_JSON},
                                         {"no-warmup", no_argument, 0, O_NO_WARMUP}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = NULL;
    long n_prompt = 512, n_gen = 128, reps = 5, threads[MAX_LIST] = {0}, depths[MAX_LIST] = {0};
    int n_threads = 1, n_depths = 1;
    bool json = false, warmup = true;
    kv_type kv = KV_F16;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:t:d:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 'p': if (cli_parse_int("bench", optarg, "-p", 0, 1 << 20, &n_prompt)) return 2; break;
        case 'n': if (cli_parse_int("bench", optarg, "-n", 0, 1 << 20, &n_gen)) return 2; break;
        case 'r': if (cli_parse_int("bench", optarg, "-r", 1, 64, &reps)) return 2; break;
        case 't': if ((n_threads = parse_list(optarg, "-t", 1, 1024, threads)) < 0) return 2; break;
        case 'd': if ((n_depths = parse_list(optarg, "-d", 0, 1 << 20, depths)) < 0) return 2; break;
        case O_KV: if (cli_parse_kv("bench", optarg, &kv)) return 2; break;
        case O_JSON: json = true; break;
        case O_NO_WARMUP: warmup = false; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (!path || optind != argc) {
        fprintf(stderr, "airlock bench: need -m MODEL (see --help)\n");
        return 2;
    }
    al_err err;
    llm_model *m = llm_load(path, &err);
    if (!m) {
        fprintf(stderr, "airlock bench: %s\n", err.msg);
        return 1;
    }
    long max_depth = 0;
    for (int i = 0; i < n_depths; i++) max_depth = depths[i] > max_depth ? depths[i] : max_depth;
    long need = max_depth + (n_prompt > n_gen ? n_prompt : n_gen);
    llm_ctx *ctx = llm_ctx_init(m, (int)(need > 0 ? need : 1), kv, &err);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(need > 0 ? need : 1));
    if (!ctx || !toks) {
        fprintf(stderr, "airlock bench: %s\n", ctx ? "out of memory" : err.msg);
        free(toks);
        llm_ctx_free(ctx);
        llm_free(m);
        return 1;
    }
    uint64_t params = 0;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const gguf_tensor *t = &m->gguf->tensors[i];
        params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    char model_name[96];
    snprintf(model_name, sizeof model_name, "%s %.2fB", llm_arch_name(m->hp.arch), (double)params / 1e9);
    const char *level = cpu_level_name(cpu_level_get());

    if (!json) {
        printf("| model                  |       size |     params | backend        | threads |          test |                  t/s |\n");
        printf("| ---------------------- | ---------: | ---------: | -------------- | ------: | ------------: | -------------------: |\n");
    } else {
        printf("[");
    }
    int rc = 0, first = 1;
    for (int ti = 0; ti < n_threads && !rc; ti++) {
        if (ops_set_threads((int)threads[ti])) {
            fprintf(stderr, "airlock bench: cannot start %ld threads\n", threads[ti]);
            rc = 1;
            break;
        }
        for (int di = 0; di < n_depths && !rc; di++) {
            for (int kind = 0; kind < 2 && !rc; kind++) {
                result r = {.threads = ops_get_threads(), .depth = (int)depths[di], .reps = (int)reps};
                if (kind == 0) r.n_prompt = (int)n_prompt;
                else r.n_gen = (int)n_gen;
                if ((kind == 0 && !n_prompt) || (kind == 1 && !n_gen)) continue;
                int ntok = kind == 0 ? r.n_prompt : r.n_gen;
                if (warmup && run_once(ctx, r.depth, r.n_prompt, r.n_gen, toks, &err) < 0) {
                    fprintf(stderr, "airlock bench: %s\n", err.msg);
                    rc = 1;
                    break;
                }
                for (int k = 0; k < r.reps; k++) {
                    double s = run_once(ctx, r.depth, r.n_prompt, r.n_gen, toks, &err);
                    if (s < 0) {
                        fprintf(stderr, "airlock bench: %s\n", err.msg);
                        rc = 1;
                        break;
                    }
                    r.samples[k] = ntok / s;
                }
                if (rc) break;
                stats(&r);
                char name[48], tps[48], backend[32];
                test_name(&r, name, sizeof name);
                snprintf(backend, sizeof backend, "CPU %s", level);
                if (!json) {
                    snprintf(tps, sizeof tps, "%.2f ± %.2f", r.mean, r.sd);
                    printf("| %-22s | %6.2f MiB | %8.2f M | %-14s | %7d | %13s | %20s |\n", model_name, (double)m->weight_bytes / 1048576.0,
                           (double)params / 1e6, backend, r.threads, name, tps);
                } else {
                    printf("%s\n  {\"model\": ", first ? "" : ",");
                    json_write_str(stdout, path, strlen(path));
                    printf(", \"arch\": \"%s\", \"size_bytes\": %llu, \"params\": %llu, \"backend\": \"CPU\", \"cpu_level\": \"%s\", "
                           "\"threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, \"test\": \"%s\", \"avg_ts\": %.4f, "
                           "\"stddev_ts\": %.4f, \"samples_ts\": [",
                           llm_arch_name(m->hp.arch), (unsigned long long)m->weight_bytes, (unsigned long long)params, level,
                           r.threads, r.n_prompt, r.n_gen, r.depth, name, r.mean, r.sd);
                    for (int k = 0; k < r.reps; k++) printf("%s%.4f", k ? ", " : "", r.samples[k]);
                    printf("]}");
                }
                first = 0;
                fflush(stdout);
            }
        }
    }
    if (json) printf("\n]\n");
    ops_set_threads(1);
    free(toks);
    llm_ctx_free(ctx);
    llm_free(m);
    return rc;
}
