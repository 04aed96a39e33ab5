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
 * distances of bench/membw in turn, one distance per token, and in the same
 * rotation by the one-token products of the kernels that stream fastest,
 * Q8_0 and Q4_0 matrices in the loader's layout over the same buffer (on
 * the Intel Xeon of session 20 the kernels read up to 5% faster than any
 * plain read loop, and a bound below what code reads is no bound). So the
 * generation and the reading it is held to share every slow and fast
 * spell of a shared host, which readings taken before and after a run
 * cannot promise (bench/RESULTS.md, session 13: on a virtual machine whose
 * 2-thread bandwidth jumped between about 31 and 50-57 GB/s within seconds,
 * `membw` readings half a minute apart put the same engine at 56% and at
 * 143% of the bound).
 *
 * Prints tokens/s two ways, the mean over rounds of tokens / seconds (as
 * `airlock bench` reports it) and one over the median token's seconds; the
 * read bandwidth (the highest over the loops and products of the median
 * pass); the
 * bound (that bandwidth over the model's weight bytes: every weight is read
 * once per token) and the share of it the generation reached, median
 * against median: the same statistic on both sides, so that a slow spell
 * weighs on neither more than on the other. With more than one thread, also
 * a cache line's round trip between two of the threads' cores after every
 * token (median, 10th and 90th percentiles: see ping_task). With --json,
 * one JSON object instead. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "formats/ggml_types.h"
#include "kernels/cpu.h"
#include "kernels/ops.h"
#include "kernels/qdot.h"
#include "models/llm.h"
#include "readbw.h"

/* The read patterns: READBW_N_AHEAD loops (readbw_aheads), then the
 * one-token products of these weight types over the buffer. */
static const uint32_t k_read_types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0};
#define N_READ_TYPES (sizeof k_read_types / sizeof *k_read_types)
#define N_PATTERNS (READBW_N_AHEAD + (int)N_READ_TYPES)
enum { PRODUCT_COLS = 4096 };

/* The n-byte buffer at p as a matrix of `type` with PRODUCT_COLS columns,
 * 64 rows at a time, in the layout the loader gives such a matrix: the
 * bytes are whatever the buffer holds (the caller fills it with 0x01:
 * small, finite scales). */
static weight buffer_as_matrix(const uint8_t *p, size_t n, uint32_t type) {
    const ggml_type_info *ti = ggml_type_get(type);
    size_t row_bytes = PRODUCT_COLS / ti->block_size * ti->type_size;
    int64_t rows = (int64_t)(n / row_bytes) / 64 * 64;
    uint32_t rt = qdot_repack_type_at(type, rows, PRODUCT_COLS, cpu_level_get());
    weight w = {.type = rt ? rt : type, .n_cols = PRODUCT_COLS, .n_rows = rows, .row_bytes = row_bytes, .data = p};
    return w;
}

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
    j->sink[i] += readbw_sum(j->buf + (size_t)i * j->per, j->per, j->how.ahead, j->how.nta, j->how.far);
}

/* One cross-core round trip measurement: the two items of a parallel step
 * meet, the first to arrive (the pinger) and the second (the ponger), and
 * pass a counter back and forth PING_ROUNDS times through two cache lines.
 * The caller takes one item and a worker the other, so this times a cache
 * line's trip between the cores the two threads run on, the cost every
 * hand-off, every shared activation and every product's output pays once
 * or more. On the virtual machines of bench/RESULTS.md (session 16) it
 * tells the two placements of the 2 vCPUs apart: about 100 ns on one
 * chiplet (one L3), 400-600 ns on two. If one thread ends up with both
 * items (a worker slow to wake), the pinger gives up after a millisecond
 * and the measurement is left out (ns stays 0). */
#define PING_ROUNDS 256
#define PING_CANCELLED 1000
typedef struct ping_job {
    _Alignas(64) int arrived; /* atomic: threads that took an item; PING_CANCELLED + 1 once the pinger gave up */
    _Alignas(64) int ping;    /* atomic: the pinger's count */
    _Alignas(64) int pong;    /* atomic: the ponger's answer */
    double ns;                /* the mean round trip, set by the pinger */
} ping_job;

static void ping_task(void *arg, int64_t i) {
    (void)i;
    ping_job *j = arg;
    int me = __atomic_fetch_add(&j->arrived, 1, __ATOMIC_ACQ_REL);
    if (me == 0) {
        double t0 = now_s();
        int one = 1;
        while (__atomic_load_n(&j->arrived, __ATOMIC_ACQUIRE) < 2)
            if (now_s() - t0 > 1e-3 &&
                __atomic_compare_exchange_n(&j->arrived, &one, PING_CANCELLED + 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return; /* no partner came; a late one finds the count past PING_CANCELLED */
        t0 = now_s();
        for (int r = 1; r <= PING_ROUNDS; r++) {
            __atomic_store_n(&j->ping, r, __ATOMIC_RELEASE);
            while (__atomic_load_n(&j->pong, __ATOMIC_ACQUIRE) != r) {}
        }
        j->ns = (now_s() - t0) * 1e9 / PING_ROUNDS;
    } else if (me == 1) {
        for (int r = 1; r <= PING_ROUNDS; r++) {
            while (__atomic_load_n(&j->ping, __ATOMIC_ACQUIRE) != r) {}
            __atomic_store_n(&j->pong, r, __ATOMIC_RELEASE);
        }
    }
}

/* The mean cross-core round trip in ns over one ping_job, or 0 when the
 * two items did not run on two threads at once. */
static double round_trip_ns(void) {
    static ping_job j;
    memset(&j, 0, sizeof j);
    ops_parallel_for(ping_task, &j, 2);
    return j.ns;
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
    if (!path || threads < 1 || threads > 256 || n_gen < N_PATTERNS || rounds < 1 || rounds > 64) {
        fprintf(stderr, "decode_bound: give -m FILE, 1-256 threads, at least %d tokens and 1-64 rounds\n", N_PATTERNS);
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
    /* pass r of pattern a, GB/s: [a][round * per_distance + k] */
    const int per_round = n_gen / N_PATTERNS, per_distance = per_round * rounds;
    double *gb = malloc(sizeof(double) * N_PATTERNS * (size_t)per_distance);
    float *px = malloc(sizeof(float) * PRODUCT_COLS), *py = malloc(sizeof(float) * (bytes / 64));
    double *tps = malloc(sizeof(double) * (size_t)rounds);
    double *tok_s = malloc(sizeof(double) * (size_t)rounds * (size_t)n_gen); /* seconds of each timed token */
    double *rt_ns = malloc(sizeof(double) * (size_t)rounds * (size_t)n_gen);  /* round trips after them (threads > 1) */
    int n_tok = 0, n_rt = 0;
    if (!ctx || !gb || !px || !py || !tps || !tok_s || !rt_ns || posix_memalign((void **)&buf, (size_t)2 << 20, bytes)) {
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
    weight mats[N_READ_TYPES];
    for (size_t k = 0; k < N_READ_TYPES; k++) mats[k] = buffer_as_matrix(buf, bytes, k_read_types[k]);
    for (int i = 0; i < PRODUCT_COLS; i++) px[i] = 1.0f;
    int n_filled[N_PATTERNS] = {0};
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
            const int a = i % N_PATTERNS;
            double g;
            if (a < READBW_N_AHEAD) {
                rj.how = readbw_aheads[a];
                t0 = now_s();
                ops_parallel_for(read_task, &rj, READ_SLICES);
                g = (double)(rj.per * READ_SLICES) / (now_s() - t0) / 1e9;
            } else {
                const weight *w = &mats[a - READBW_N_AHEAD];
                t0 = now_s();
                if (op_matmul(py, w, px, 1)) {
                    fprintf(stderr, "decode_bound: the %s product failed\n", ggml_type_name(k_read_types[a - READBW_N_AHEAD]));
                    return 1;
                }
                g = (double)((size_t)w->n_rows * w->row_bytes) / (now_s() - t0) / 1e9;
                rj.sink[0] += py[0];
            }
            if (r >= 0 && i < per_round * N_PATTERNS) gb[(size_t)a * (size_t)per_distance + (size_t)n_filled[a]++] = g;
            if (r >= 0 && threads > 1) {
                double ns = round_trip_ns();
                if (ns > 0) rt_ns[n_rt++] = ns;
            }
        }
        if (r >= 0) tps[r] = n_gen / gen;
    }
    double mean = 0, bw = 0;
    for (int r = 0; r < rounds; r++) mean += tps[r] / rounds;
    int best_a = 0;
    for (int a = 0; a < N_PATTERNS; a++) {
        double med = readbw_median(gb + (size_t)a * (size_t)per_distance, (size_t)per_distance);
        if (med > bw) bw = med, best_a = a;
    }
    double bound = bw * 1e9 / (double)m->weight_bytes, sink = 0, med_tps = 1.0 / readbw_median(tok_s, (size_t)n_tok);
    for (int i = 0; i < READ_SLICES; i++) sink += rj.sink[i];
    /* round trips: median and the 10th / 90th percentiles (0 with one thread) */
    double rt_med = 0, rt_lo = 0, rt_hi = 0;
    if (n_rt > 0) {
        rt_med = readbw_median(rt_ns, (size_t)n_rt); /* sorts rt_ns */
        rt_lo = rt_ns[n_rt / 10];
        rt_hi = rt_ns[n_rt - 1 - n_rt / 10];
    }
    char how[64];
    if (best_a >= READBW_N_AHEAD) snprintf(how, sizeof how, "the %s product", ggml_type_name(k_read_types[best_a - READBW_N_AHEAD]));
    else
        snprintf(how, sizeof how, "prefetch %zu B%s", readbw_aheads[best_a].ahead,
                 readbw_aheads[best_a].nta ? " nta" : readbw_aheads[best_a].far ? " + L2" : "");
    if (json)
        printf("{\"threads\": %d, \"n_gen\": %d, \"rounds\": %d, \"weight_bytes\": %llu, \"tokens_per_s\": %.3f, "
               "\"median_token_tokens_per_s\": %.3f, \"read_gb_per_s\": %.3f, \"bound_tokens_per_s\": %.3f, \"share\": %.4f, "
               "\"round_trip_ns\": [%.0f, %.0f, %.0f], \"best_read\": \"%s\"}\n",
               threads, n_gen, rounds, (unsigned long long)m->weight_bytes, mean, med_tps, bw, bound, med_tps / bound, rt_lo, rt_med,
               rt_hi, how);
    else
        printf("%s  threads %d  tg%d x %d: %.2f tokens/s (median token %.2f)  read %.2f GB/s (median pass, %s)  "
               "bound %.2f tokens/s  share %.0f%%  core-to-core round trip %.0f ns (10%%-90%%: %.0f-%.0f)%s\n",
               path, threads, n_gen, rounds, mean, med_tps, bw, how, bound, 100 * med_tps / bound, rt_med, rt_lo, rt_hi, sink == 1.5 ? " " : "");
    ops_set_threads(1);
    free(buf);
    free(gb);
    free(px);
    free(py);
    free(tps);
    free(tok_s);
    free(rt_ns);
    llm_ctx_free(ctx);
    llm_free(m);
    return 0;
}
