/* threadpool.c - workers take indices from a shared atomic counter.
 *
 * A forward pass runs a few hundred short parallel loops per token, so the
 * hand-off must cost far less than a sleep/wake: between loops workers spin
 * on a generation counter for a while, and only then sleep on a condition
 * variable. threadpool_run wakes sleepers only when there are any.
 *
 * Items are handed out in one of two ways: from one shared counter (any
 * thread takes the next index), or from per-thread ranges with stealing
 * (threadpool_run_ranges). A range is one 64-bit word holding its next
 * index (low half) and its end (high half), changed by compare-and-swap:
 * its owner advances the low half, other threads lower the high half. */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ROUNDS (1 << 17) /* about a millisecond of polling before sleeping */

/* One thread's range: [lo, hi) packed as lo | hi << 32, alone on its cache line. */
typedef struct range {
    _Alignas(64) uint64_t lohi;
} range;

struct threadpool {
    int n;                 /* threads including the caller */
    pthread_t *threads;    /* [n - 1] workers */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    int sleepers;          /* workers waiting on work_cv (under mu) */
    uint64_t generation;   /* atomic: bumped for each run */
    int pending;           /* atomic: workers still in the current run */
    bool stop;             /* atomic */
    threadpool_fn fn;
    void *arg;
    int64_t n_items;
    int64_t next;          /* atomic: next index to take (shared-counter runs) */
    bool ranges;           /* this run hands out per-thread ranges */
    range *range;          /* [n] the ranges of a threadpool_run_ranges run */
};

static _Thread_local int t_index;

int threadpool_thread_index(void) { return t_index; }

typedef struct worker_arg {
    threadpool *p;
    int index;
} worker_arg;

/* Takes index lo of range r (from_front) or hi - 1. Returns it, or -1 when
 * the range is empty. */
static int64_t range_take(range *r, bool from_front) {
    uint64_t v = __atomic_load_n(&r->lohi, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t lo = v & 0xffffffffu, hi = v >> 32;
        if (lo >= hi) return -1;
        uint64_t nv = from_front ? (lo + 1) | (hi << 32) : lo | ((hi - 1) << 32);
        if (__atomic_compare_exchange_n(&r->lohi, &v, nv, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return (int64_t)(from_front ? lo : hi - 1);
    }
}

/* Runs this thread's own range front to back, then steals from the backs
 * of the others, nearest first. */
static void drain_ranges(threadpool *p) {
    int self = t_index;
    int64_t i;
    while ((i = range_take(&p->range[self], true)) >= 0) p->fn(p->arg, i);
    for (int k = 1; k < p->n; k++) {
        range *r = &p->range[(self + k) % p->n];
        while ((i = range_take(r, false)) >= 0) p->fn(p->arg, i);
    }
}

static void drain(threadpool *p) {
    if (p->ranges) {
        drain_ranges(p);
        return;
    }
    for (;;) {
        int64_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n_items) break;
        p->fn(p->arg, i);
    }
}

/* Waits until the generation differs from seen (or stop). Returns it. */
static uint64_t wait_work(threadpool *p, uint64_t seen) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        uint64_t g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        if (g != seen || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return g;
        CPU_RELAX();
    }
    pthread_mutex_lock(&p->mu);
    p->sleepers++;
    uint64_t g;
    while ((g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE)) == seen && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&p->work_cv, &p->mu);
    p->sleepers--;
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    threadpool *p = wa.p;
    t_index = wa.index;
    uint64_t seen = 0;
    for (;;) {
        seen = wait_work(p, seen);
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        drain(p);
        __atomic_fetch_sub(&p->pending, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

threadpool *threadpool_init(int n_threads) {
    threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    if (p->n > 1) {
        p->threads = calloc((size_t)p->n - 1, sizeof *p->threads);
        p->range = aligned_alloc(_Alignof(range), (size_t)p->n * sizeof *p->range);
        if (!p->threads || !p->range) {
            threadpool_free(p);
            return NULL;
        }
        for (int i = 0; i < p->n - 1; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) *wa = (worker_arg){p, i + 1};
            if (!wa || pthread_create(&p->threads[i], NULL, worker, wa) != 0) {
                free(wa);
                p->n = i + 1; /* run with the workers we got */
                break;
            }
        }
    }
    return p;
}

void threadpool_free(threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; p->threads && i < p->n - 1; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p->range);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    free(p);
}

int threadpool_size(const threadpool *p) { return p ? p->n : 1; }

/* Starts a run on the workers, takes part in it, and waits for the end. */
static void run(threadpool *p, threadpool_fn fn, void *arg, int64_t n, bool ranges) {
    if (!p || p->n == 1 || n <= 1) {
        for (int64_t i = 0; i < n; i++) fn(arg, i);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_items = n;
    p->ranges = ranges;
    __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
    if (ranges)
        for (int k = 0; k < p->n; k++) {
            uint64_t lo = (uint64_t)(n * k / p->n), hi = (uint64_t)(n * (k + 1) / p->n);
            __atomic_store_n(&p->range[k].lohi, lo | hi << 32, __ATOMIC_RELAXED);
        }
    __atomic_store_n(&p->pending, p->n - 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers > 0) pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    drain(p);
    while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0) CPU_RELAX();
}

void threadpool_run(threadpool *p, threadpool_fn fn, void *arg, int64_t n) { run(p, fn, arg, n, false); }

void threadpool_run_ranges(threadpool *p, threadpool_fn fn, void *arg, int64_t n) {
    run(p, fn, arg, n, n < ((int64_t)1 << 31)); /* a range packs indices in 32 bits */
}
