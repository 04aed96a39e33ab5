/* test_threadpool.c - every index runs exactly once, on any pool size, many times over. */
#include <stdlib.h>
#include <string.h>

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
        }
        threadpool_free(p);
    }
    threadpool_run(NULL, mark, counts, 0); /* no pool: runs inline */
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_each_index_once)};
    return cmocka_run_group_tests_name("threadpool", tests, NULL, NULL);
}
