/* metrics.h - the server's counters, gauges and latency histograms, rendered
 * in Prometheus' text exposition format for GET /metrics.
 *
 * Every update takes one mutex: updates happen a few times per token, far
 * below the cost of computing one. */
#ifndef AIRLOCK_SERVER_METRICS_H
#define AIRLOCK_SERVER_METRICS_H

#include <stdint.h>

#include "core/strbuf.h"

typedef struct metrics metrics;

typedef enum metrics_hist {
    METRICS_HIST_TTFT,          /* seconds from a request's arrival to its first token */
    METRICS_HIST_TOKEN_LATENCY, /* seconds between consecutive tokens of one request */
    METRICS_HIST_REQUEST,       /* seconds from arrival to the last byte of the answer */
    METRICS_HIST_COUNT
} metrics_hist;

metrics *metrics_init(void);
void metrics_free(metrics *m);

/* One finished HTTP request on a route ("/v1/chat/completions", ...) with
 * its status code. Unknown routes are counted as "other". */
void metrics_count_request(metrics *m, const char *route, int status);
/* Tokens of a finished generation: prompt tokens, of them those reused from
 * the prefix cache, and generated tokens. */
void metrics_count_tokens(metrics *m, const char *model, int64_t prompt, int64_t cached, int64_t completion);
void metrics_observe(metrics *m, metrics_hist h, double seconds);
/* Gauges the scheduler sets after each step. */
void metrics_set_load(metrics *m, int queue_depth, int slots_busy, int slots_total, int64_t kv_used, int64_t kv_capacity);
/* Appends the exposition text to out. */
void metrics_render(metrics *m, strbuf *out);

#endif
