/* threadpool.h - a fixed set of worker threads that run one parallel loop at
 * a time: threadpool_run(p, fn, arg, n) calls fn(arg, i) for i in [0, n),
 * spread over the workers and the calling thread, and returns when all are done. */
#ifndef AIRLOCK_CORE_THREADPOOL_H
#define AIRLOCK_CORE_THREADPOOL_H

#include <stdint.h>

typedef struct threadpool threadpool;
typedef void (*threadpool_fn)(void *arg, int64_t i);

/* n_threads counts the caller: 1 means no workers. NULL when out of memory. */
threadpool *threadpool_init(int n_threads);
void threadpool_free(threadpool *p);
int threadpool_size(const threadpool *p);
void threadpool_run(threadpool *p, threadpool_fn fn, void *arg, int64_t n);
/* Like threadpool_run, but thread k starts with the k-th of n equal
 * contiguous ranges of [0, n) and calls fn in increasing i there; a thread
 * that finishes its range takes the highest remaining indices of the
 * others. For loops whose consecutive items read consecutive memory (the
 * rows of a weight matrix): each thread reads one sequential stream that
 * its prefetches keep ahead of, and a thread slowed down (a busy host)
 * still gets help. */
void threadpool_run_ranges(threadpool *p, threadpool_fn fn, void *arg, int64_t n);
/* The calling thread's index in its pool: 0 for the thread that calls
 * threadpool_run (and any thread outside a pool), 1..n-1 for workers. */
int threadpool_thread_index(void);

#endif
