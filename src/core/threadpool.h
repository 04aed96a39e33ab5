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
/* The calling thread's index in its pool: 0 for the thread that calls
 * threadpool_run (and any thread outside a pool), 1..n-1 for workers. */
int threadpool_thread_index(void);

#endif
