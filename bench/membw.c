/* membw.c - the machine's memory read bandwidth, the bound on generation
 * speed: each generated token reads every weight once, so tokens/s can not
 * exceed bandwidth / model bytes.
 *
 * usage: membw [-t THREADS] [-s MiB] [-r REPS]
 * Each thread sums its own slice of a buffer far larger than the caches
 * with 512-bit loads (256-bit ones with AVX2 only, 64-bit ones on other
 * machines), plain and with software
 * prefetch at several distances, into L1 and non-temporal (the hints the
 * kernels' prefetch policies use, kernels/cpu.h), in REPS rounds that each
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
#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct slice {
    const uint8_t *p;
    size_t n;
    size_t ahead; /* software prefetch distance in bytes, 0 for none */
    int nta;      /* the hint is non-temporal (else into L1) */
    double sink;
} slice;

#if defined(__x86_64__)
/* Asks for the 256 bytes `ahead` bytes on from p: non-temporal (nta) or
 * into L1. The address is computed as an integer: it may lie past the
 * buffer (a hint never faults). */
static inline void prefetch256(const uint8_t *p, size_t ahead, int nta) {
    uintptr_t a = (uintptr_t)p + ahead;
    for (size_t o = 0; o < 256; o += 64) {
        if (nta) _mm_prefetch((const char *)(a + o), _MM_HINT_NTA);
        else _mm_prefetch((const char *)(a + o), _MM_HINT_T0);
    }
}

/* With ahead > 0, also asks for the line `ahead` bytes on before each load
 * (a single core keeps more lines in flight that way than the hardware
 * prefetcher alone asks for: the kernels do the same). */
__attribute__((target("avx512f"))) static double sum512(const uint8_t *p, size_t n, size_t ahead, int nta) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        if (ahead) prefetch256(p + i, ahead, nta);
        a0 = _mm512_add_ps(a0, _mm512_load_ps((const float *)(const void *)(p + i)));
        a1 = _mm512_add_ps(a1, _mm512_load_ps((const float *)(const void *)(p + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_load_ps((const float *)(const void *)(p + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_load_ps((const float *)(const void *)(p + i + 192)));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* As sum512 with 256-bit loads, for AVX2 machines (the width their
 * kernels load with). */
__attribute__((target("avx2"))) static double sum256(const uint8_t *p, size_t n, size_t ahead, int nta) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        if (ahead) prefetch256(p + i, ahead, nta);
        for (size_t o = 0; o < 256; o += 128) {
            a0 = _mm256_add_ps(a0, _mm256_load_ps((const float *)(const void *)(p + i + o)));
            a1 = _mm256_add_ps(a1, _mm256_load_ps((const float *)(const void *)(p + i + o + 32)));
            a2 = _mm256_add_ps(a2, _mm256_load_ps((const float *)(const void *)(p + i + o + 64)));
            a3 = _mm256_add_ps(a3, _mm256_load_ps((const float *)(const void *)(p + i + o + 96)));
        }
    }
    __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float f[8];
    _mm256_storeu_ps(f, a);
    return (double)f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

static double sum_portable(const uint8_t *p, size_t n) {
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a += x;
        b ^= y;
    }
    return (double)(a ^ b);
}

static void *reader(void *arg) {
    slice *s = arg;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        s->sink = sum512(s->p, s->n, s->ahead, s->nta);
        return NULL;
    }
    if (__builtin_cpu_supports("avx2")) {
        s->sink = sum256(s->p, s->n, s->ahead, s->nta);
        return NULL;
    }
#endif
    s->sink = sum_portable(s->p, s->n);
    return NULL;
}

/* qsort order of doubles, ascending */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    /* software prefetch distances tried; the bound is the best of them */
    static const struct { size_t ahead; int nta; } aheads[] = {{0, 0},    {2048, 0}, {4096, 0}, {8192, 0},
                                                              {16384, 0}, {2048, 1}, {4096, 1}, {8192, 1}};
    enum { N_AHEAD = sizeof aheads / sizeof *aheads };
    double bound = 0, sustained = 0, sink = 0;
    double *gb = malloc((size_t)reps * N_AHEAD * sizeof *gb); /* gb[a * reps + r]: pass r of distance a, GB/s */
    if (!gb) return 1;
    /* round by round through the distances, so that a slow or fast spell
     * of a shared host falls on all of them alike */
    for (int r = 0; r < reps; r++)
        for (size_t a = 0; a < N_AHEAD; a++) {
            double t0 = now_s();
            for (int i = 0; i < threads; i++) {
                sl[i] = (slice){buf + (size_t)i * per, per, aheads[a].ahead, aheads[a].nta, 0};
                if (pthread_create(&tid[i], NULL, reader, &sl[i])) return 1;
            }
            for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
            gb[a * (size_t)reps + (size_t)r] = (double)(per * (size_t)threads) / (now_s() - t0) / 1e9;
            for (int i = 0; i < threads; i++) sink += sl[i].sink;
        }
    for (size_t a = 0; a < N_AHEAD; a++) {
        double *g = gb + a * (size_t)reps;
        qsort(g, (size_t)reps, sizeof *g, cmp_double);
        double best = g[reps - 1], median = reps % 2 ? g[reps / 2] : 0.5 * (g[reps / 2 - 1] + g[reps / 2]);
        printf("threads %d  buffer %zu MiB  prefetch %5zu B ahead%s  read bandwidth %.2f GB/s (best of %d), median %.2f%s\n",
               threads, mib, aheads[a].ahead, aheads[a].nta ? " (nta)" : "      ", best, reps, median, sink == 1.5 ? " " : "");
        bound = best > bound ? best : bound;
        sustained = median > sustained ? median : sustained;
    }
    printf("threads %d  read bandwidth %.2f GB/s (best of all)\n", threads, bound);
    printf("threads %d  read bandwidth %.2f GB/s (sustained: highest median)\n", threads, sustained);
    free(gb);
    free(buf);
    return 0;
}
