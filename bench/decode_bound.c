/* decode_bound.c - generation speed against the memory-bandwidth bound,
 * both measured in the same seconds.
 *
 * usage: decode_bound -m FILE [-t THREADS] [-n TOKENS] [-r ROUNDS] [-s MiB]
 *
 * Generates TOKENS tokens one at a time from an empty context, greedily, as
 * `airlock bench -n` does, ROUNDS times (after one warm-up round), and
 * after every token reads a buffer of the model's size (at least -s MiB,
 * default 256, so that it is larger than the caches) once on the same
 * thread pool (in READ_SLICES slices of a few MB that the threads take in
 * turn, so a thread slow to wake reads less rather than leaving its share
 * unread until it does), with the prefetch
 * distances of bench/membw in turn, one distance per token. So the
 * generation and the reading it is held to share every slow and fast
 * spell of a shared host, which readings taken before and after a run
 * cannot promise (bench/RESULTS.md, session 13: on a virtual machine whose
 * 2-thread bandwidth jumped between about 31 and 50-57 GB/s within seconds,
 * `membw` readings half a minute apart put the same engine at 56% and at
 * 143% of the bound).
 *
 * Prints tokens/s two ways, the mean over rounds of tokens / seconds (as
 * `airlock bench` reports it) and one over the median token's seconds; the
 * read bandwidth (the highest over distances of the median pass); the
 * bound (that bandwidth over the model's weight bytes: every weight is read
 * once per token) and the share of it the generation reached, median
 * against median: the same statistic on both sides, so that a slow spell
 * weighs on neither more than on the other. With --json, one JSON object
 * instead. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/ops.h"
#include "models/llm.h"
#include "readbw.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One read pass: item i sums slice i of READ_SLICES. */
#define READ_SLICES 64
typedef struct read_job {
    const uint8_t *buf;
    size_t per; /* bytes per slice, a multiple of 256 */
    readbw_ahead how;
    double sink[READ_SLICES];
} read_job;

static void read_task(void *arg, int64_t i) {
    read_job *j = arg;
    j->sink[i] += readbw_sum(j->buf + (size_t)i * j->per, j->per, j->how.ahead, j->how.nta);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 1, n_gen = 128, rounds = 3, json = 0;
    size_t min_mib = 256;
    static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:t:n:r:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'n': n_gen = atoi(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 's': min_mib = (size_t)atol(optarg); break;
        case 'j': json = 1; break;
        default:
            fprintf(stderr, "usage: decode_bound -m FILE [-t THREADS] [-n TOKENS] [-r ROUNDS] [-s MiB] [--json]\n");
            return 2;
        }
    }
    if (!path || threads < 1 || threads > 256 || n_gen < READBW_N_AHEAD || rounds < 1 || rounds > 64) {
        fprintf(stderr, "decode_bound: give -m FILE, 1-256 threads, at least %d tokens and 1-64 rounds\n", READBW_N_AHEAD);
        return 2;
    }
    al_err err;
    llm_model *m = llm_load(path, &err);
    if (!m) {
        fprintf(stderr, "decode_bound: %s\n", err.msg);
        return 1;
    }
    llm_ctx *ctx = llm_ctx_init(m, n_gen, KV_F16, &err);
    size_t bytes = (size_t)m->weight_bytes > (min_mib << 20) ? (size_t)m->weight_bytes : min_mib << 20;
    bytes = (bytes + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
    uint8_t *buf = NULL;
    /* pass r of distance a, GB/s: [a][round * per_distance + k] */
    const int per_round = n_gen / READBW_N_AHEAD, per_distance = per_round * rounds;
    double *gb = malloc(sizeof(double) * READBW_N_AHEAD * (size_t)per_distance);
    double *tps = malloc(sizeof(double) * (size_t)rounds);
    double *tok_s = malloc(sizeof(double) * (size_t)rounds * (size_t)n_gen); /* seconds of each timed token */
    int n_tok = 0;
    if (!ctx || !gb || !tps || !tok_s || posix_memalign((void **)&buf, (size_t)2 << 20, bytes)) {
        fprintf(stderr, "decode_bound: %s\n", ctx ? "out of memory" : err.msg);
        return 1;
    }
    if (ops_set_threads(threads)) {
        fprintf(stderr, "decode_bound: cannot start %d threads\n", threads);
        return 1;
    }
    madvise(buf, bytes, MADV_HUGEPAGE); /* as the model's weights (models/llm.c) */
    memset(buf, 1, bytes);              /* fault every page in before timing */
    read_job rj = {.buf = buf, .per = bytes / READ_SLICES / 256 * 256};
    int n_filled[READBW_N_AHEAD] = {0};
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        llm_ctx_reset(ctx);
        int32_t t = 1;
        double gen = 0;
        for (int i = 0; i < n_gen; i++) {
            double t0 = now_s();
            const float *lg = llm_decode(ctx, t, &err);
            if (!lg) {
                fprintf(stderr, "decode_bound: %s\n", err.msg);
                return 1;
            }
            t = op_argmax(lg, m->hp.n_vocab); /* greedy, as airlock bench picks */
            const double dt = now_s() - t0;
            gen += dt;
            if (r >= 0) tok_s[n_tok++] = dt;
            const int a = i % READBW_N_AHEAD;
            rj.how = readbw_aheads[a];
            t0 = now_s();
            ops_parallel_for(read_task, &rj, READ_SLICES);
            double g = (double)(rj.per * READ_SLICES) / (now_s() - t0) / 1e9;
            if (r >= 0 && i < per_round * READBW_N_AHEAD) gb[(size_t)a * (size_t)per_distance + (size_t)n_filled[a]++] = g;
        }
        if (r >= 0) tps[r] = n_gen / gen;
    }
    double mean = 0, bw = 0;
    for (int r = 0; r < rounds; r++) mean += tps[r] / rounds;
    int best_a = 0;
    for (int a = 0; a < READBW_N_AHEAD; a++) {
        double med = readbw_median(gb + (size_t)a * (size_t)per_distance, (size_t)per_distance);
        if (med > bw) bw = med, best_a = a;
    }
    double bound = bw * 1e9 / (double)m->weight_bytes, sink = 0, med_tps = 1.0 / readbw_median(tok_s, (size_t)n_tok);
    for (int i = 0; i < READ_SLICES; i++) sink += rj.sink[i];
    if (json)
        printf("{\"threads\": %d, \"n_gen\": %d, \"rounds\": %d, \"weight_bytes\": %llu, \"tokens_per_s\": %.3f, "
               "\"median_token_tokens_per_s\": %.3f, \"read_gb_per_s\": %.3f, \"bound_tokens_per_s\": %.3f, \"share\": %.4f}\n",
               threads, n_gen, rounds, (unsigned long long)m->weight_bytes, mean, med_tps, bw, bound, med_tps / bound);
    else
        printf("%s  threads %d  tg%d x %d: %.2f tokens/s (median token %.2f)  read %.2f GB/s (median pass, prefetch %zu B%s)  "
               "bound %.2f tokens/s  share %.0f%%%s\n",
               path, threads, n_gen, rounds, mean, med_tps, bw, readbw_aheads[best_a].ahead, readbw_aheads[best_a].nta ? " nta" : "",
               bound, 100 * med_tps / bound, sink == 1.5 ? " " : "");
    ops_set_threads(1);
    free(buf);
    free(gb);
    free(tps);
    free(tok_s);
    llm_ctx_free(ctx);
    llm_free(m);
    return 0;
}
