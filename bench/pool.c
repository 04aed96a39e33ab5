/* pool.c - the cost of one parallel step of the thread pool: what a
 * forward pass pays each time it hands a loop to the workers and waits for
 * them (a generated token runs about five such steps per layer).
 *
 * usage: pool [-t THREADS] [-n ITEMS] [-u MICROSECONDS] [-R STEPS]
 * Each step is threadpool_run_ranges over ITEMS items that each keep a core
 * busy for the given time (default 0.3 us: a row chunk of a small matrix in
 * generation). Prints the mean wall time of a step, the time the same work
 * takes on the calling thread alone (the two in turns), that time split
 * evenly over the threads, and the difference: the overhead of a step. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/threadpool.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Busy work: iters rounds of a dependent integer recurrence, kept in a
 * register (a result stored to memory shared by the threads would move a
 * cache line between them on every item: a cost of the benchmark, not of
 * the pool). */
static void spin(int64_t iters) {
    uint64_t x = 88172645463325252ull;
    for (int64_t i = 0; i < iters; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    __asm__ volatile("" : : "r"(x));
}

typedef struct job {
    int64_t iters; /* per item */
} job;

static void item(void *arg, int64_t i) {
    (void)i;
    spin(((job *)arg)->iters);
}

int main(int argc, char **argv) {
    int threads = 2, c;
    int64_t items = 32, steps = 20000 /* a multiple of 10 */;
    double us = 0.3;
    while ((c = getopt(argc, argv, "t:n:u:R:h")) != -1) {
        switch (c) {
        case 't': threads = atoi(optarg); break;
        case 'n': items = atol(optarg); break;
        case 'u': us = atof(optarg); break;
        case 'R': steps = atol(optarg); break;
        default: fprintf(stderr, "usage: pool [-t THREADS] [-n ITEMS] [-u MICROSECONDS] [-R STEPS]\n"); return c == 'h' ? 0 : 2;
        }
    }
    if (threads < 1 || items < 1 || us <= 0 || steps < 1) {
        fprintf(stderr, "pool: threads, items, microseconds and steps must be positive\n");
        return 2;
    }
    /* calibrate: rounds of the recurrence per microsecond, best of several */
    double best = 1e9;
    const int64_t cal = 1 << 22;
    for (int k = 0; k < 5; k++) {
        double t0 = now_s();
        spin(cal);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    job j = {(int64_t)(us * 1e-6 * (double)cal / best)};
    threadpool *p = threadpool_init(threads), *one = threadpool_init(1);
    if (!p || !one) {
        fprintf(stderr, "pool: out of memory\n");
        return 1;
    }
    /* the same steps on the pool and on the calling thread alone, in turns of
     * 10 (a shared host's speed drifts: only interleaving compares fairly) */
    double t_pool = 0, t_one = 0;
    for (int64_t s = 0; s < steps / 10; s++) threadpool_run_ranges(p, item, &j, items); /* warm up */
    for (int64_t s = 0; s < steps; s += 10) {
        double t0 = now_s();
        for (int k = 0; k < 10; k++) threadpool_run_ranges(p, item, &j, items);
        double t1 = now_s();
        for (int k = 0; k < 10; k++) threadpool_run_ranges(one, item, &j, items);
        t_pool += t1 - t0;
        t_one += now_s() - t1;
    }
    int n = threadpool_size(p);
    double step_us = t_pool / (double)steps * 1e6, one_us = t_one / (double)steps * 1e6;
    double ideal_us = one_us * (double)((items + n - 1) / n) / (double)items;
    printf("threads %d  items %lld x %.2f us: step %.2f us, on one thread %.2f us, split without hand-off %.2f us, overhead %.2f us\n", n,
           (long long)items, one_us / (double)items, step_us, one_us, ideal_us, step_us - ideal_us);
    threadpool_free(one);
    threadpool_free(p);
    return 0;
}
