/* membw.c - the machine's memory read bandwidth, the bound on generation
 * speed: each generated token reads every weight once, so tokens/s can not
 * exceed bandwidth / model bytes.
 *
 * usage: membw [-t THREADS] [-s MiB] [-r REPS]
 * Each thread sums its own slice of a buffer far larger than the caches
 * with 512-bit loads (256-bit ones with AVX2 only, 64-bit ones on other
 * machines), plain and with software
 * prefetch at several distances, into L1 and non-temporal, and the
 * kernels' paced pair of hints into L1 and L2 (the hints the kernels'
 * prefetch policies use, kernels/cpu.h, bench/readbw.h), in REPS rounds that each
 * pass once through every distance; prints the best and the median of the
 * REPS passes in GB/s (10^9 bytes/s) for each, then two
 * summaries: the best single pass of all, and the sustained bandwidth, the
 * highest of the medians. On a dedicated machine the two agree; on a
 * shared virtual machine a neighbour that falls idle for one 40 ms pass
 * can lift that pass far above what any second-long run sees (a host of
 * session 13: 2 threads, medians 30-32 GB/s, single passes up to 57), and
 * the median is the figure a run of seconds can be held to. Taking the
 * distances one after another instead let one distance's passes all fall
 * in such a spell (medians of 48-54 GB/s there, while reads through the
 * thread pool just before and after ran at 31). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "readbw.h"

typedef struct slice {
    const uint8_t *p;
    size_t n;
    size_t ahead; /* software prefetch distance in bytes, 0 for none */
    int nta;      /* the hint is non-temporal (else into L1) */
    size_t far;   /* with far > 0, also into L2 far bytes ahead (readbw.h) */
    double sink;
} slice;

static void *reader(void *arg) {
    slice *s = arg;
    s->sink = readbw_sum(s->p, s->n, s->ahead, s->nta, s->far);
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = 1, reps = 10;
    size_t mib = 1024;
    int c;
    while ((c = getopt(argc, argv, "t:s:r:h")) != -1) {
        switch (c) {
        case 't': threads = atoi(optarg); break;
        case 's': mib = (size_t)atol(optarg); break;
        case 'r': reps = atoi(optarg); break;
        default: fprintf(stderr, "usage: membw [-t THREADS] [-s MiB] [-r REPS]\n"); return 2;
        }
    }
    if (threads < 1 || threads > 256 || mib < 64 || reps < 1) {
        fprintf(stderr, "membw: bad arguments\n");
        return 2;
    }
    size_t n = mib << 20;
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, (size_t)2 << 20, n)) {
        fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib);
        return 1;
    }
#ifdef MADV_HUGEPAGE
    madvise(buf, n, MADV_HUGEPAGE); /* as the model's weights (models/llm.c): fewer TLB misses */
#endif
    memset(buf, 1, n); /* fault every page in before timing */
    pthread_t tid[256];
    slice sl[256];
    size_t per = n / (size_t)threads / 256 * 256;
    double bound = 0, sustained = 0, sink = 0;
    double *gb = malloc((size_t)reps * READBW_N_AHEAD * sizeof *gb); /* gb[a * reps + r]: pass r of distance a, GB/s */
    if (!gb) return 1;
    /* round by round through the distances, so that a slow or fast spell
     * of a shared host falls on all of them alike */
    for (int r = 0; r < reps; r++)
        for (size_t a = 0; a < READBW_N_AHEAD; a++) {
            double t0 = now_s();
            for (int i = 0; i < threads; i++) {
                sl[i] = (slice){buf + (size_t)i * per, per, readbw_aheads[a].ahead, readbw_aheads[a].nta, readbw_aheads[a].far, 0};
                if (pthread_create(&tid[i], NULL, reader, &sl[i])) return 1;
            }
            for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
            gb[a * (size_t)reps + (size_t)r] = (double)(per * (size_t)threads) / (now_s() - t0) / 1e9;
            for (int i = 0; i < threads; i++) sink += sl[i].sink;
        }
    for (size_t a = 0; a < READBW_N_AHEAD; a++) {
        double *g = gb + a * (size_t)reps;
        double median = readbw_median(g, (size_t)reps), best = g[reps - 1]; /* g is sorted now */
        printf("threads %d  buffer %zu MiB  prefetch %5zu B ahead%s  read bandwidth %.2f GB/s (best of %d), median %.2f%s\n",
               threads, mib, readbw_aheads[a].ahead, readbw_aheads[a].nta ? " (nta)" : readbw_aheads[a].far ? " (+L2)" : "      ", best, reps, median, sink == 1.5 ? " " : "");
        bound = best > bound ? best : bound;
        sustained = median > sustained ? median : sustained;
    }
    printf("threads %d  read bandwidth %.2f GB/s (best of all)\n", threads, bound);
    printf("threads %d  read bandwidth %.2f GB/s (sustained: highest median)\n", threads, sustained);
    free(gb);
    free(buf);
    return 0;
}
