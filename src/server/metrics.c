/* metrics.c - counters, gauges and histograms in Prometheus text format. */
#include "server/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_SERIES 64
#define METRICS_NAME_MAX 64
#define METRICS_N_BUCKETS 14

/* Upper bounds of the latency buckets, seconds (+Inf is implied). */
static const double k_bounds[METRICS_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                    1, 2.5, 5, 10, 30, 60, 120};

typedef struct req_series {
    char route[METRICS_NAME_MAX];
    int status;
    uint64_t count;
} req_series;

typedef struct tok_series {
    char model[METRICS_NAME_MAX];
    uint64_t prompt, cached, completion;
} tok_series;

typedef struct histogram {
    uint64_t bucket[METRICS_N_BUCKETS + 1]; /* last: above every bound */
    uint64_t count;
    double sum;
} histogram;

struct metrics {
    pthread_mutex_t mu;
    req_series req[METRICS_MAX_SERIES];
    int n_req;
    tok_series tok[METRICS_MAX_SERIES];
    int n_tok;
    histogram hist[METRICS_HIST_COUNT];
    int queue_depth, slots_busy, slots_total;
    int64_t kv_used, kv_capacity;
};

static const char *const k_hist_name[METRICS_HIST_COUNT] = {
    "airlock_time_to_first_token_seconds", "airlock_inter_token_latency_seconds", "airlock_request_duration_seconds"};
static const char *const k_hist_help[METRICS_HIST_COUNT] = {
    "Seconds from a generation request's arrival to its first generated token.",
    "Seconds between consecutive generated tokens of one request.",
    "Seconds from a request's arrival to the end of its answer."};

metrics *metrics_init(void) {
    metrics *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Copies s into a label value buffer, keeping only characters that need no
 * escaping in the exposition format. */
static void label_copy(char dst[METRICS_NAME_MAX], const char *s) {
    size_t i = 0;
    for (; s && s[i] && i + 1 < METRICS_NAME_MAX; i++) dst[i] = (s[i] == '"' || s[i] == '\\' || s[i] == '\n') ? '_' : s[i];
    dst[i] = 0;
}

void metrics_count_request(metrics *m, const char *route, int status) {
    char r[METRICS_NAME_MAX];
    label_copy(r, route ? route : "other");
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_req && !(m->req[i].status == status && strcmp(m->req[i].route, r) == 0)) i++;
    if (i == m->n_req && m->n_req < METRICS_MAX_SERIES) {
        memcpy(m->req[i].route, r, sizeof r);
        m->req[i].status = status;
        m->n_req++;
    }
    if (i < m->n_req) m->req[i].count++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_count_tokens(metrics *m, const char *model, int64_t prompt, int64_t cached, int64_t completion) {
    char name[METRICS_NAME_MAX];
    label_copy(name, model);
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_tok && strcmp(m->tok[i].model, name) != 0) i++;
    if (i == m->n_tok && m->n_tok < METRICS_MAX_SERIES) {
        memcpy(m->tok[i].model, name, sizeof name);
        m->n_tok++;
    }
    if (i < m->n_tok) {
        m->tok[i].prompt += (uint64_t)prompt;
        m->tok[i].cached += (uint64_t)cached;
        m->tok[i].completion += (uint64_t)completion;
    }
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe(metrics *m, metrics_hist h, double seconds) {
    if (h < 0 || h >= METRICS_HIST_COUNT) return;
    int b = 0;
    while (b < METRICS_N_BUCKETS && seconds > k_bounds[b]) b++;
    pthread_mutex_lock(&m->mu);
    m->hist[h].bucket[b]++;
    m->hist[h].count++;
    m->hist[h].sum += seconds;
    pthread_mutex_unlock(&m->mu);
}

void metrics_set_load(metrics *m, int queue_depth, int slots_busy, int slots_total, int64_t kv_used, int64_t kv_capacity) {
    pthread_mutex_lock(&m->mu);
    m->queue_depth = queue_depth;
    m->slots_busy = slots_busy;
    m->slots_total = slots_total;
    m->kv_used = kv_used;
    m->kv_capacity = kv_capacity;
    pthread_mutex_unlock(&m->mu);
}

static void gauge(strbuf *o, const char *name, const char *help, double v) {
    strbuf_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

void metrics_render(metrics *m, strbuf *o) {
    pthread_mutex_lock(&m->mu);
    strbuf_puts(o, "# HELP airlock_requests_total HTTP requests answered, by route and status code.\n"
                   "# TYPE airlock_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        strbuf_printf(o, "airlock_requests_total{route=\"%s\",status=\"%d\"} %llu\n", m->req[i].route, m->req[i].status,
                      (unsigned long long)m->req[i].count);
    static const char *const tok_name[3] = {"airlock_prompt_tokens_total", "airlock_prompt_tokens_cached_total",
                                            "airlock_completion_tokens_total"};
    static const char *const tok_help[3] = {"Prompt tokens of finished generations.",
                                            "Prompt tokens reused from a slot's prefix cache instead of computed.",
                                            "Tokens generated."};
    for (int k = 0; k < 3; k++) {
        strbuf_printf(o, "# HELP %s %s\n# TYPE %s counter\n", tok_name[k], tok_help[k], tok_name[k]);
        for (int i = 0; i < m->n_tok; i++) {
            uint64_t v = k == 0 ? m->tok[i].prompt : k == 1 ? m->tok[i].cached : m->tok[i].completion;
            strbuf_printf(o, "%s{model=\"%s\"} %llu\n", tok_name[k], m->tok[i].model, (unsigned long long)v);
        }
    }
    for (int h = 0; h < METRICS_HIST_COUNT; h++) {
        const char *n = k_hist_name[h];
        strbuf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", n, k_hist_help[h], n);
        uint64_t cum = 0;
        for (int b = 0; b < METRICS_N_BUCKETS; b++) {
            cum += m->hist[h].bucket[b];
            strbuf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", n, k_bounds[b], (unsigned long long)cum);
        }
        cum += m->hist[h].bucket[METRICS_N_BUCKETS];
        strbuf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", n, (unsigned long long)cum, n,
                      m->hist[h].sum, n, (unsigned long long)m->hist[h].count);
    }
    gauge(o, "airlock_queue_depth", "Requests waiting for a free slot.", m->queue_depth);
    gauge(o, "airlock_slots_busy", "Slots generating or reading a prompt.", m->slots_busy);
    gauge(o, "airlock_slots_total", "Slots across all models (--parallel per model).", m->slots_total);
    gauge(o, "airlock_kv_cache_tokens", "Positions held in the slots' KV caches (active and cached prefixes).",
          (double)m->kv_used);
    gauge(o, "airlock_kv_cache_capacity_tokens", "Positions all slots' KV caches can hold.", (double)m->kv_capacity);
    gauge(o, "airlock_kv_cache_usage_ratio", "kv_cache_tokens / kv_cache_capacity_tokens.",
          m->kv_capacity ? (double)m->kv_used / (double)m->kv_capacity : 0.0);
    pthread_mutex_unlock(&m->mu);
}
