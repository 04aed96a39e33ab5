/* test_threadpool.c - every index runs exactly once, on any pool size, many
 * times over (past the wrap of a range's run tag), with the shared counter
 * and with per-thread ranges; a thread that lags has its range finished by
 * the others. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "test_util.h"

static void mark(void *arg, int64_t i) { __atomic_fetch_add(&((int *)arg)[i], 1, __ATOMIC_RELAXED); }

static void test_each_index_once(void **state) {
    (void)state;
    int counts[1000];
    for (int n = 1; n <= 5; n++) {
        threadpool *p = threadpool_init(n);
        assert_non_null(p);
        assert_int_equal(threadpool_size(p), n);
        for (int rep = 0; rep < 200; rep++) {
            int64_t items = (rep * 37) % 1000;
            memset(counts, 0, sizeof counts);
            threadpool_run(p, mark, counts, items);
            for (int64_t i = 0; i < 1000; i++) assert_int_equal(counts[i], i < items ? 1 : 0);
            memset(counts, 0, sizeof counts);
            threadpool_run_ranges(p, mark, counts, items);
            for (int64_t i = 0; i < 1000; i++) assert_int_equal(counts[i], i < items ? 1 : 0);
        }
        threadpool_free(p);
    }
    threadpool_run(NULL, mark, counts, 0); /* no pool: runs inline */
}

/* Fewer items than threads (some ranges empty), and more runs than a
 * range's tag can count (2^16) in both modes, so every tag comes round
 * again while a worker's range may have been left alone for many runs. */
static void test_small_runs_and_tag_wrap(void **state) {
    (void)state;
    int counts[16];
    for (int n = 2; n <= 5; n++) {
        threadpool *p = threadpool_init(n);
        assert_non_null(p);
        int runs = n == 2 ? 140000 : 3000;
        for (int rep = 0; rep < runs; rep++) {
            int64_t items = rep % 9;
            memset(counts, 0, sizeof counts);
            if (rep % 5 == 0) threadpool_run(p, mark, counts, items);
            else threadpool_run_ranges(p, mark, counts, items);
            for (int64_t i = 0; i < 16; i++)
                if (counts[i] != (i < items ? 1 : 0)) fail_msg("pool of %d, run %d of %lld items: item %lld ran %d times", n, rep, (long long)items, (long long)i, counts[i]);
        }
        threadpool_free(p);
    }
}

/* Records which thread ran item i. The calling thread (index 0), on item
 * 1, waits until the others have run every item but 0 and 1: the worker
 * must finish its own range and then take all the rest of the caller's
 * from the top down. No timing is assumed, only that a started worker runs
 * (a minute's wait fails the test rather than hanging). */
typedef struct who_run {
    int who[64];
    int n;
    int others_done; /* atomic: items run by threads other than 0 */
    int timed_out;
} who_run;

static void mark_who(void *arg, int64_t i) {
    who_run *r = arg;
    int who = threadpool_thread_index();
    r->who[i] = who + 1;
    if (who != 0) {
        __atomic_fetch_add(&r->others_done, 1, __ATOMIC_RELEASE);
        return;
    }
    if (i != 1) return;
    for (int ms = 0; __atomic_load_n(&r->others_done, __ATOMIC_ACQUIRE) < r->n - 2; ms++) {
        if (ms == 60000) {
            r->timed_out = 1;
            return;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

static void test_ranges_steal(void **state) {
    (void)state;
    enum { N = 64 };
    who_run r = {.n = N};
    threadpool *p = threadpool_init(2);
    assert_non_null(p);
    threadpool_run_ranges(p, mark_who, &r, N);
    assert_false(r.timed_out);
    /* thread 0 owns [0, 32) and runs 0 first (before the worker can start)
     * and then, almost always, 1; thread 1 owns [32, 64), runs it, then
     * takes thread 0's items 31 down to 2 (and 1 too when it got there
     * first, in which case thread 0 never waited) */
    assert_int_equal(r.who[0], 1);
    assert_true(r.who[1] == 1 || r.who[1] == 2);
    for (int i = 2; i < N; i++)
        if (r.who[i] != 2) fail_msg("item %d ran on thread %d, expected the worker", i, r.who[i] - 1);
    threadpool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_each_index_once), cmocka_unit_test(test_small_runs_and_tag_wrap),
                                       cmocka_unit_test(test_ranges_steal)};
    return cmocka_run_group_tests_name("threadpool", tests, NULL, NULL);
}
