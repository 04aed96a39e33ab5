/* threadpool.c - workers take indices from a shared atomic counter or from
 * per-thread ranges.
 *
 * A forward pass runs a few hundred short parallel loops per token, so the
 * hand-off must cost far less than a sleep/wake: between loops workers spin
 * on a generation counter for a while, and only then sleep on a condition
 * variable. threadpool_run wakes sleepers only when there are any.
 *
 * On a virtual machine a cache line written by one core and read by another
 * can take close to a microsecond to move, so a step of a generated token
 * (a few to a few tens of microseconds) is built to move as few lines as it
 * can on the way from start to finish:
 *  - the run's parameters and the generation share one line: the worker's
 *    one miss there tells it everything;
 *  - each thread has one line of its own (its slot) with its range, the
 *    count of items it has finished and the count of runs it has left. The
 *    caller never writes a worker's slot to start a run: a range carries
 *    the run's tag, and whichever thread first finds an old tag there sets
 *    up the new range. The caller learns that a worker's range is empty and
 *    that its items are finished from the same line, and whether the worker
 *    has left the last run when it next looks;
 *  - the caller runs the first item of its range before anything that
 *    waits for its stores to reach the other core.
 *
 * A range is one 64-bit word, lo | hi << 24 | tag << 48, changed by
 * compare-and-swap: its owner advances lo, other threads lower hi. */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ROUNDS (1 << 17) /* about a millisecond of polling before sleeping */
#define YIELD_ROUNDS 1024     /* polls (tens of microseconds) between yields of the processor */

/* One round of a wait for another thread: a pause, and every YIELD_ROUNDS
 * rounds a yield, so that a thread waited for that shares this processor
 * (more threads than cores) gets to run instead of waiting out the spinner's
 * time slice (milliseconds a step). */
static void spin_relax(unsigned *round) {
    if (++*round % YIELD_ROUNDS == 0) sched_yield();
    else CPU_RELAX();
}
#define RANGE_BITS 24         /* a range run has fewer than 2^24 items */
#define RANGE_MASK ((UINT64_C(1) << RANGE_BITS) - 1)
#define TAG_MASK UINT64_C(0xffff)

/* One thread's line. */
typedef struct slot {
    _Alignas(64) uint64_t lohi; /* atomic: the range, see above */
    int64_t finished;           /* atomic: items this thread has run, over all runs */
    uint64_t exits;             /* atomic: runs this thread (a worker) has left */
} slot;

struct threadpool {
    int n;                 /* threads including the caller */
    pthread_t *threads;    /* [n - 1] workers */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    int sleepers;          /* atomic: workers waiting on work_cv (changed under mu) */
    bool stop;             /* atomic */
    slot *slot;            /* [n] */
    int64_t target;        /* the callers' view: sum of finished when the current run is over */
    int64_t next;          /* atomic: next index to take (shared-counter runs) */
    /* Written by the caller for each run, read by the workers: one line. */
    _Alignas(64) uint64_t generation; /* atomic: bumped for each run */
    threadpool_fn fn;
    void *arg;
    int64_t n_items;
    bool ranges;           /* this run hands out per-thread ranges */
};

static _Thread_local int t_index;

int threadpool_thread_index(void) { return t_index; }

typedef struct worker_arg {
    threadpool *p;
    int index;
} worker_arg;

/* One run as a thread sees it. */
typedef struct run_view {
    threadpool_fn fn;
    void *arg;
    int64_t n;
    uint64_t tag;
    int threads;
} run_view;

/* Thread k's share of [0, n) for a run tagged tag, as a range word. */
static uint64_t range_fresh(const run_view *v, int k) {
    uint64_t lo = (uint64_t)(v->n * k / v->threads), hi = (uint64_t)(v->n * (k + 1) / v->threads);
    return lo | hi << RANGE_BITS | v->tag << (2 * RANGE_BITS);
}

/* Takes index lo of the range in slot s (from_front) or hi - 1, setting up
 * the run's range k there first if the slot still holds an earlier run's.
 * Returns the index, or -1 when the range is empty. */
static int64_t range_take(const run_view *v, slot *s, int k, bool from_front) {
    uint64_t w = __atomic_load_n(&s->lohi, __ATOMIC_ACQUIRE);
    for (;;) {
        if (w >> (2 * RANGE_BITS) != v->tag) { /* an earlier run's (no thread is ever in a run before the last) */
            uint64_t fresh = range_fresh(v, k);
            if (!__atomic_compare_exchange_n(&s->lohi, &w, fresh, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
            w = fresh;
        }
        uint64_t lo = w & RANGE_MASK, hi = (w >> RANGE_BITS) & RANGE_MASK;
        if (lo >= hi) return -1;
        uint64_t nw = from_front ? w + 1 : w - (UINT64_C(1) << RANGE_BITS);
        if (__atomic_compare_exchange_n(&s->lohi, &w, nw, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (int64_t)(from_front ? lo : hi - 1);
    }
}

/* Adds k items to this thread's finished count (only this thread writes it). */
static void slot_finish(slot *s, int64_t k) {
    if (k > 0) __atomic_store_n(&s->finished, __atomic_load_n(&s->finished, __ATOMIC_RELAXED) + k, __ATOMIC_RELEASE);
}

/* Runs range r's items from the front (own) or the back (stealing) until
 * it is empty. Returns how many ran. */
static int64_t range_drain(const run_view *v, slot *s, int k, bool own) {
    int64_t i, count = 0;
    while ((i = range_take(v, s, k, own)) >= 0) {
        v->fn(v->arg, i);
        count++;
    }
    return count;
}

/* A worker's part of a run: its own range, counted finished as soon as it
 * is empty (before the look at the others, a line another core owns), then
 * the backs of the others' ranges, nearest first. */
static void worker_drain_ranges(threadpool *p, const run_view *v) {
    int self = t_index;
    slot *own = &p->slot[self];
    slot_finish(own, range_drain(v, own, self, true));
    for (int d = 1; d < v->threads; d++) {
        int k = (self + d) % v->threads;
        slot_finish(own, range_drain(v, &p->slot[k], k, false));
    }
}

/* A thread's part of a shared-counter run, counted finished in its slot own. */
static void drain_counter(threadpool *p, const run_view *v, slot *own) {
    int64_t count = 0;
    for (;;) {
        int64_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= v->n) break;
        v->fn(v->arg, i);
        count++;
    }
    slot_finish(own, count);
}

/* Waits until the generation differs from seen (or stop). Returns it. */
static uint64_t wait_work(threadpool *p, uint64_t seen) {
    for (unsigned i = 0; i < SPIN_ROUNDS;) {
        uint64_t g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        if (g != seen || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return g;
        spin_relax(&i);
    }
    pthread_mutex_lock(&p->mu);
    __atomic_fetch_add(&p->sleepers, 1, __ATOMIC_SEQ_CST); /* before the check below: see run() */
    uint64_t g;
    while ((g = __atomic_load_n(&p->generation, __ATOMIC_SEQ_CST)) == seen && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&p->work_cv, &p->mu);
    __atomic_fetch_sub(&p->sleepers, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    threadpool *p = wa.p;
    t_index = wa.index;
    slot *own = &p->slot[wa.index];
    uint64_t seen = 0;
    for (;;) {
        seen = wait_work(p, seen);
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        /* the caller changes these only after every worker has left the run */
        run_view v = {p->fn, p->arg, p->n_items, seen & TAG_MASK, p->n};
        if (p->ranges) worker_drain_ranges(p, &v);
        else drain_counter(p, &v, own);
        __atomic_store_n(&own->exits, __atomic_load_n(&own->exits, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

threadpool *threadpool_init(int n_threads) {
    threadpool *p = aligned_alloc(_Alignof(threadpool), sizeof *p); /* sizeof is a multiple of the alignment */
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    if (p->n > 1) {
        p->threads = calloc((size_t)p->n - 1, sizeof *p->threads);
        p->slot = aligned_alloc(_Alignof(slot), (size_t)p->n * sizeof *p->slot);
        if (!p->threads || !p->slot) {
            threadpool_free(p);
            return NULL;
        }
        memset(p->slot, 0, (size_t)p->n * sizeof *p->slot); /* tag 0: older than the first run's, 1 */
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
    free(p->slot);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    free(p);
}

int threadpool_size(const threadpool *p) { return p ? p->n : 1; }

/* Wakes the workers that sleep, if any. A worker going to sleep raises
 * sleepers, then reads the generation (both sequentially consistent): either
 * it sees the new run or this sees its count and wakes it. */
static void wake_sleepers(threadpool *p) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* The items the whole pool has finished, over all runs. */
static int64_t pool_finished(threadpool *p) {
    int64_t sum = 0;
    for (int k = 0; k < p->n; k++) sum += __atomic_load_n(&p->slot[k].finished, __ATOMIC_ACQUIRE);
    return sum;
}

/* Starts a run on the workers, takes part in it, and returns when every
 * item has finished. A worker may still be leaving the run (looking at the
 * others' empty ranges) then: the next run waits for that before it
 * changes the parameters. */
static void run(threadpool *p, threadpool_fn fn, void *arg, int64_t n, bool ranges) {
    if (!p || p->n == 1 || n <= 1) {
        for (int64_t i = 0; i < n; i++) fn(arg, i);
        return;
    }
    uint64_t runs = __atomic_load_n(&p->generation, __ATOMIC_RELAXED);
    unsigned round = 0;
    for (int k = 1; k < p->n; k++)
        while (__atomic_load_n(&p->slot[k].exits, __ATOMIC_ACQUIRE) != runs) spin_relax(&round);
    p->fn = fn;
    p->arg = arg;
    p->n_items = n;
    p->ranges = ranges;
    p->target += n;
    slot *own = &p->slot[0];
    run_view v = {fn, arg, n, (runs + 1) & TAG_MASK, p->n};
    /* Every slot is set up anew once in 2^15 runs, so none can hold a range
     * so old that its tag comes round again. */
    if ((v.tag & (TAG_MASK >> 1)) == 0)
        for (int k = 1; k < p->n; k++) __atomic_store_n(&p->slot[k].lohi, range_fresh(&v, k), __ATOMIC_RELAXED);
    if (ranges) {
        /* this thread's range without its first item, which it runs at once */
        uint64_t fresh = range_fresh(&v, 0);
        bool first = (fresh & RANGE_MASK) < ((fresh >> RANGE_BITS) & RANGE_MASK);
        __atomic_store_n(&own->lohi, fresh + first, __ATOMIC_RELAXED);
        __atomic_store_n(&p->generation, runs + 1, __ATOMIC_RELEASE);
        if (first) fn(arg, (int64_t)(fresh & RANGE_MASK));
        wake_sleepers(p);
        slot_finish(own, first + range_drain(&v, own, 0, true));
        for (int d = 1; d < p->n && pool_finished(p) != p->target; d++) slot_finish(own, range_drain(&v, &p->slot[d], d, false));
    } else {
        __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&p->generation, runs + 1, __ATOMIC_RELEASE);
        wake_sleepers(p);
        drain_counter(p, &v, own);
    }
    while (pool_finished(p) != p->target) spin_relax(&round);
}

void threadpool_run(threadpool *p, threadpool_fn fn, void *arg, int64_t n) { run(p, fn, arg, n, false); }

void threadpool_run_ranges(threadpool *p, threadpool_fn fn, void *arg, int64_t n) {
    run(p, fn, arg, n, n < (int64_t)RANGE_MASK); /* a range packs indices in 24 bits */
}
