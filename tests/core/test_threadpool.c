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

/* Records which thread ran item i; the calling thread (index 0) sleeps on
 * each of its items. */
static void mark_who(void *arg, int64_t i) {
    int who = threadpool_thread_index();
    ((int *)arg)[i] = who + 1;
    if (who == 0) nanosleep(&(struct timespec){0, 2000000}, NULL);
}

static void test_ranges_steal(void **state) {
    (void)state;
    enum { N = 64 };
    int who[N];
    threadpool *p = threadpool_init(2);
    assert_non_null(p);
    memset(who, 0, sizeof who);
    threadpool_run_ranges(p, mark_who, who, N);
    /* thread 0 owns [0, 32) and starts at 0; thread 1 owns [32, 64), finishes
     * it long before, then takes thread 0's items from the top down */
    assert_int_equal(who[0], 1);
    for (int i = N / 2; i < N; i++) assert_int_equal(who[i], 2);
    assert_int_equal(who[N / 2 - 1], 2);
    int stolen = 0;
    for (int i = 0; i < N / 2; i++) {
        assert_true(who[i] == 1 || who[i] == 2);
        stolen += who[i] == 2;
        if (i > 0 && who[i - 1] == 2) assert_int_equal(who[i], 2); /* a stolen item's successors are stolen */
    }
    assert_true(stolen > 0);
    threadpool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_each_index_once), cmocka_unit_test(test_small_runs_and_tag_wrap),
                                       cmocka_unit_test(test_ranges_steal)};
    return cmocka_run_group_tests_name("threadpool", tests, NULL, NULL);
}
