/* server.c - routes, limits, authentication, streaming and the request log. */
#include "server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "core/strbuf.h"
#include "server/api.h"
#include "text/unicode.h"

#define WAIT_SLICE_MS 50 /* how often a waiting connection checks its client and deadline */

struct server {
    server_config cfg;
    engine *e;
    metrics *mx;
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t log_mu;
    unsigned long long next_id;
};

typedef enum route {
    ROUTE_NONE,
    ROUTE_HEALTH,
    ROUTE_MODELS,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_INFILL,
    ROUTE_METRICS,
} route;

static const struct {
    const char *path;
    route r;
    const char *method;
} k_routes[] = {
    {"/health", ROUTE_HEALTH, "GET"},
    {"/v1/models", ROUTE_MODELS, "GET"},
    {"/models", ROUTE_MODELS, "GET"},
    {"/v1/chat/completions", ROUTE_CHAT, "POST"},
    {"/chat/completions", ROUTE_CHAT, "POST"},
    {"/v1/completions", ROUTE_COMPLETIONS, "POST"},
    {"/completions", ROUTE_COMPLETIONS, "POST"},
    {"/infill", ROUTE_INFILL, "POST"},
    {"/metrics", ROUTE_METRICS, "GET"},
};

/* One request on a connection. */
typedef struct req {
    server *srv;
    struct MHD_Connection *conn;
    char id[32];
    double t_start, deadline;
    route route;
    const char *path;           /* the route's canonical path, for logs and metrics */
    const char *method;
    int status;
    const auth_key *key;
    strbuf body;
    bool too_big;
    api_request ar;
    bool have_ar;
    gen_job *job;
    int fd;
    /* generation output */
    strbuf text;                /* everything generated (for non-streamed answers and content logging) */
    size_t text_off;
    size_t text_base;           /* generated-text offset of q->text.s[0] (streams drop what they sent) */
    int tok_off;
    gen_token *toks;
    int n_toks, cap_toks;
    gen_read res;               /* stats and finish of the last read */
    bool timed_out, client_gone;
    /* streaming */
    strbuf pending;             /* SSE bytes not yet handed to libmicrohttpd */
    size_t pend_off;
    bool first_chunk, finished, ended;
} req;

/* ---- helpers ------------------------------------------------------------------------- */

static bool socket_closed(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    if (p.revents & POLLIN) {
        char c;
        return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    }
    return false;
}

/* Adds the headers every answer carries: the request id, and the idle timeout
 * as a Keep-Alive hint so that clients drop a pooled connection before the
 * server closes it (a request sent on a connection the server is closing at
 * that moment fails on the client with a reset). */
static void add_common_headers(const req *q, struct MHD_Response *resp) {
    char ka[32];
    snprintf(ka, sizeof ka, "timeout=%d", q->srv->cfg.idle_timeout);
    MHD_add_response_header(resp, "X-Request-Id", q->id);
    if (q->srv->cfg.idle_timeout > 0) MHD_add_response_header(resp, "Keep-Alive", ka);
}

static enum MHD_Result queue(req *q, int status, const char *ctype, strbuf *body, bool retry_after) {
    size_t n = body->n;
    char *data = strbuf_take(body);
    struct MHD_Response *resp =
        data ? MHD_create_response_from_buffer(n, data, MHD_RESPMEM_MUST_FREE) : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    add_common_headers(q, resp);
    if (retry_after) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    q->status = status;
    enum MHD_Result r = MHD_queue_response(q->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result queue_error(req *q, const api_error *err) {
    strbuf b = {0};
    api_render_error(err, &b);
    return queue(q, err->status, "application/json", &b, err->status == 503);
}

static enum MHD_Result fail(req *q, int status, const char *type, const char *code, const char *fmt, ...) AL_PRINTF(5, 6);
static enum MHD_Result fail(req *q, int status, const char *type, const char *code, const char *fmt, ...) {
    api_error err;
    va_list ap;
    va_start(ap, fmt);
    api_error_vset(&err, status, type, NULL, code, fmt, ap);
    va_end(ap);
    return queue_error(q, &err);
}

static enum MHD_Result fail_too_big(req *q) {
    return fail(q, 413, "invalid_request_error", "body_too_large", "the request body exceeds the server's limit of %zu bytes",
                q->srv->cfg.max_body);
}

static void toks_append(req *q, const gen_token *t, int n) {
    if (n <= 0) return;
    if (q->n_toks + n > q->cap_toks) {
        int nc = q->cap_toks ? q->cap_toks : 64;
        while (nc < q->n_toks + n) nc *= 2;
        gen_token *nt = realloc(q->toks, (size_t)nc * sizeof *nt);
        if (!nt) return;
        q->toks = nt;
        q->cap_toks = nc;
    }
    memcpy(q->toks + q->n_toks, t, (size_t)n * sizeof *t);
    q->n_toks += n;
}

/* Reads what the job has produced: new text into q->text, new tokens into
 * q->toks. Returns the byte offset in q->text where the new text starts. */
static size_t pull(req *q, int *first_tok) {
    size_t from = q->text.n;
    *first_tok = q->n_toks;
    gen_job_read(q->job, &q->text_off, &q->tok_off, &q->text, &q->res);
    toks_append(q, q->res.toks, q->res.n_toks);
    free(q->res.toks);
    q->res.toks = NULL;
    return from;
}

/* Waits one slice for the job; cancels it when the client has gone or the
 * request ran out of time. Returns false when the request must end now. */
static bool wait_slice(req *q) {
    gen_job_wait(q->job, q->text_off, q->tok_off, WAIT_SLICE_MS);
    if (socket_closed(q->fd)) {
        q->client_gone = true;
        gen_job_cancel(q->job);
        return false;
    }
    if (engine_now() > q->deadline) {
        q->timed_out = true;
        gen_job_cancel(q->job);
        return false;
    }
    return true;
}

/* ---- streaming --------------------------------------------------------------------------- */

static void sse_event(req *q, const strbuf *json) {
    strbuf_puts(&q->pending, "data: ");
    strbuf_put(&q->pending, json->s ? json->s : "", json->n);
    strbuf_puts(&q->pending, "\n\n");
}

/* Renders the text from q->text[from] and tokens from q->toks[t0] as one
 * event per token, like OpenAI's streams: the text is split where each new
 * token's text starts (never inside a UTF-8 character); a token's logprobs
 * go with the piece its text starts in. */
static size_t tok_pos(const req *q, int k) {
    size_t p = q->toks[k].text_start;
    return p > q->text_base ? p - q->text_base : 0;
}

static void sse_token_events(req *q, size_t from, int t0) {
    server *s = q->srv;
    const char *text = q->text.s ? q->text.s : "";
    size_t end = q->text.n, a = from;
    int t = t0, n = q->n_toks;
    strbuf ev = {0};
    while (a < end || t < n) {
        int t1 = t; /* tokens that start at or before the piece's start belong to it */
        while (t1 < n && tok_pos(q, t1) <= a) t1++;
        size_t b = end;
        for (int k = t1; k < n; k++) {
            size_t cut = tok_pos(q, k);
            if (cut > a && cut < end && ((uint8_t)text[cut] & 0xC0) != 0x80) {
                b = cut;
                break;
            }
        }
        if (b == end) t1 = n;
        else
            while (t1 < n && tok_pos(q, t1) < b) t1++;
        if (api_render_chunk(s->e, &q->ar, text + a, b - a, q->toks + t, t1 - t, GEN_RUNNING, false, &ev)) sse_event(q, &ev);
        strbuf_free(&ev);
        a = b;
        t = t1;
    }
}

/* Produces the next SSE events into q->pending. */
static void sse_produce(req *q) {
    server *s = q->srv;
    strbuf ev = {0};
    if (q->first_chunk) {
        q->first_chunk = false;
        if (api_render_chunk(s->e, &q->ar, "", 0, NULL, 0, GEN_RUNNING, q->ar.kind == API_CHAT, &ev)) sse_event(q, &ev);
        strbuf_free(&ev);
        if (q->pending.n) return;
    }
    if (q->finished) {
        if (q->ar.kind != API_INFILL) strbuf_puts(&q->pending, "data: [DONE]\n\n");
        q->ended = true;
        return;
    }
    while (q->pending.n == 0 && !q->finished) {
        if (!wait_slice(q)) {
            q->finished = true;
            if (q->timed_out) {
                api_error err;
                api_error_set(&err, 504, "server_error", NULL, "timeout", "the request ran past the server's %d-second limit",
                              s->cfg.request_timeout);
                api_render_error(&err, &ev);
                sse_event(q, &ev);
            }
            break;
        }
        int t0;
        size_t from = pull(q, &t0);
        gen_finish f = q->res.finish;
        sse_token_events(q, from, t0);
        if (!s->cfg.log_content) { /* keep memory flat: the text is only needed for the log */
            q->text_base += q->text.n;
            q->text.n = 0;
            q->n_toks = 0;
        }
        if (f == GEN_RUNNING) continue;
        q->finished = true;
        if (f == GEN_FINISH_ERROR) {
            api_error err;
            api_error_set(&err, 500, "server_error", NULL, NULL, "generation failed: %s", q->res.error);
            api_render_error(&err, &ev);
            sse_event(q, &ev);
        } else if (q->ar.kind != API_INFILL) {
            if (api_render_chunk(s->e, &q->ar, "", 0, NULL, 0, f, false, &ev)) sse_event(q, &ev);
            strbuf_free(&ev);
            if (q->ar.include_usage) {
                api_render_stream_end(s->e, &q->ar, &q->res, &ev);
                sse_event(q, &ev);
            }
        } else {
            api_render_stream_end(s->e, &q->ar, &q->res, &ev);
            sse_event(q, &ev);
        }
        strbuf_free(&ev);
    }
    strbuf_free(&ev);
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    req *q = cls;
    while (q->pend_off == q->pending.n) {
        q->pending.n = 0;
        q->pend_off = 0;
        if (q->ended) return q->client_gone ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
        sse_produce(q);
        if (q->pending.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (q->client_gone) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = q->pending.n - q->pend_off;
    if (n > max) n = max;
    memcpy(buf, q->pending.s + q->pend_off, n);
    q->pend_off += n;
    return (ssize_t)n;
}

/* ---- request handling ---------------------------------------------------------------------- */

/* Checks the Authorization header. Returns true when the request may go on
 * (else an error response has been queued). */
static bool authorize(req *q, enum MHD_Result *ret) {
    server *s = q->srv;
    if (!s->cfg.keys || q->route == ROUTE_HEALTH) return true;
    const char *h = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) {
        *ret = fail(q, 401, "invalid_request_error", "missing_api_key",
                    "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer KEY'.");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        *ret = fail(q, 401, "invalid_request_error", "invalid_api_key", "The Authorization header must be 'Bearer KEY'.");
        return false;
    }
    const char *k = h + 7;
    while (*k == ' ') k++;
    q->key = auth_keys_check(s->cfg.keys, k, strlen(k));
    if (!q->key) {
        *ret = fail(q, 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.");
        return false;
    }
    if (q->route == ROUTE_METRICS && s->cfg.metrics_admin && !q->key->admin) {
        *ret = fail(q, 403, "permission_error", "admin_key_required", "/metrics needs an admin key.");
        return false;
    }
    return true;
}

static enum MHD_Result run_generation(req *q, api_kind kind) {
    server *s = q->srv;
    api_error aerr;
    if (q->too_big) return fail_too_big(q);
    if (api_parse(s->e, kind, q->body.s ? q->body.s : "", q->body.n, &q->ar, &aerr)) return queue_error(q, &aerr);
    q->have_ar = true;
    strbuf_free(&q->body);
    al_err err;
    engine_submit_rc rc = engine_submit(s->e, q->ar.model, q->ar.prompt.ids, (int)q->ar.prompt.n, &q->ar.gp, &q->job, &err);
    if (rc == ENGINE_QUEUE_FULL)
        return fail(q, 503, "server_error", "overloaded", "every slot is busy and the queue is full; retry shortly");
    if (rc != ENGINE_OK) return fail(q, 400, "invalid_request_error", NULL, "%s", err.msg);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    q->fd = ci ? ci->connect_fd : -1;
    if (q->ar.stream) {
        q->first_chunk = true;
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_reader, q, NULL);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        add_common_headers(q, resp);
        q->status = 200;
        enum MHD_Result r = MHD_queue_response(q->conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return r;
    }
    for (;;) {
        bool go_on = wait_slice(q);
        int t0;
        pull(q, &t0);
        if (q->res.finish != GEN_RUNNING && !(q->client_gone || q->timed_out)) break;
        if (!go_on) {
            if (q->client_gone) {
                q->status = 499; /* nobody to answer; the log records it */
                return MHD_NO;
            }
            return fail(q, 504, "server_error", "timeout", "the request ran past the server's %d-second limit",
                        s->cfg.request_timeout);
        }
    }
    if (q->res.finish == GEN_FINISH_ERROR) return fail(q, 500, "server_error", NULL, "generation failed: %s", q->res.error);
    strbuf b = {0};
    api_render_final(s->e, &q->ar, q->text.s ? q->text.s : "", q->text.n, q->toks, q->n_toks, &q->res, &b);
    if (b.oom) return fail(q, 500, "server_error", NULL, "out of memory");
    return queue(q, 200, "application/json", &b, false);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    (void)version;
    server *s = cls;
    req *q = *con_cls;
    if (!q) { /* headers are in: route, authenticate, check the declared size */
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        *con_cls = q;
        q->srv = s;
        q->conn = conn;
        q->fd = -1;
        q->t_start = engine_now();
        q->deadline = q->t_start + s->cfg.request_timeout;
        q->method = strcmp(method, "GET") == 0 ? "GET" : strcmp(method, "POST") == 0 ? "POST" : "other";
        pthread_mutex_lock(&s->log_mu);
        snprintf(q->id, sizeof q->id, "req-%llx-%llu", (unsigned long long)time(NULL), ++s->next_id);
        pthread_mutex_unlock(&s->log_mu);
        bool path_known = false;
        for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
            if (strcmp(url, k_routes[i].path) == 0) {
                path_known = true;
                if (strcmp(method, k_routes[i].method) == 0) {
                    q->route = k_routes[i].r;
                    q->path = k_routes[i].path;
                }
            }
        if (!path_known) return fail(q, 404, "invalid_request_error", "not_found", "no such route");
        if (q->route == ROUTE_NONE) return fail(q, 405, "invalid_request_error", "method_not_allowed", "method not allowed on this route");
        enum MHD_Result ret;
        if (!authorize(q, &ret)) return ret;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) return fail_too_big(q);
        if (q->route == ROUTE_CHAT || q->route == ROUTE_COMPLETIONS || q->route == ROUTE_INFILL) return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body */
        if (engine_now() > q->deadline) return MHD_NO; /* a client dripping its body: drop the connection */
        if (!q->too_big && q->body.n + *upload_data_size <= q->srv->cfg.max_body)
            strbuf_put(&q->body, upload_data, *upload_data_size);
        else q->too_big = true;
        if (q->body.oom) q->too_big = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (q->status) return MHD_YES; /* already answered */
    strbuf b = {0};
    switch (q->route) {
    case ROUTE_HEALTH:
        strbuf_puts(&b, "{\"status\":\"ok\"}");
        return queue(q, 200, "application/json", &b, false);
    case ROUTE_MODELS:
        api_render_models(s->e, (long long)time(NULL), &b);
        return queue(q, 200, "application/json", &b, false);
    case ROUTE_METRICS:
        metrics_render(s->mx, &b);
        return queue(q, 200, "text/plain; version=0.0.4; charset=utf-8", &b, false);
    case ROUTE_CHAT: return run_generation(q, API_CHAT);
    case ROUTE_COMPLETIONS: return run_generation(q, API_COMPLETION);
    case ROUTE_INFILL: return run_generation(q, API_INFILL);
    default: return MHD_NO;
    }
}

/* ---- the request log ------------------------------------------------------------------------ */

static void log_str(strbuf *b, const char *key, const char *s, size_t n) {
    strbuf_printf(b, ",\"%s\":\"", key);
    strbuf clean = {0};
    utf8_sanitize(s ? s : "", s ? n : 0, &clean);
    for (size_t i = 0; i < clean.n; i++) {
        unsigned char c = (unsigned char)clean.s[i];
        if (c == '"' || c == '\\') strbuf_printf(b, "\\%c", c);
        else if (c < 0x20) strbuf_printf(b, "\\u%04x", c);
        else strbuf_put(b, (const char *)&c, 1);
    }
    strbuf_free(&clean);
    strbuf_puts(b, "\"");
}

static void log_request(server *s, req *q, enum MHD_RequestTerminationCode toe) {
    strbuf b = {0};
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    double dur = engine_now() - q->t_start;
    strbuf_printf(&b, "{\"ts\":\"%s\",\"id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\",\"status\":%d", ts, q->id, q->method,
                  q->path ? q->path : "other", q->status);
    if (q->key) strbuf_printf(&b, ",\"key\":\"%s\"", q->key->id);
    if (q->have_ar) {
        const gen_stats *st = &q->res.stats;
        strbuf_printf(&b, ",\"model\":\"%s\",\"stream\":%s", engine_model_name(s->e, q->ar.model), q->ar.stream ? "true" : "false");
        if (q->job)
            strbuf_printf(&b, ",\"prompt_tokens\":%d,\"cached_tokens\":%d,\"completion_tokens\":%d", st->n_prompt, st->n_cached,
                          st->n_gen);
        if (st->t_first > 0) strbuf_printf(&b, ",\"ttft_ms\":%.1f", (st->t_first - st->t_submit) * 1e3);
        const char *fin = api_finish_name(q->res.finish);
        if (fin) strbuf_printf(&b, ",\"finish\":\"%s\"", fin);
    }
    strbuf_printf(&b, ",\"duration_ms\":%.1f", dur * 1e3);
    if (q->client_gone || toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT) strbuf_puts(&b, ",\"client_closed\":true");
    if (q->timed_out || toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) strbuf_puts(&b, ",\"timed_out\":true");
    if (s->cfg.log_content && q->have_ar) {
        char *p = tokenizer_decode(engine_model(s->e, q->ar.model)->tok, q->ar.prompt.ids, q->ar.prompt.n, true, NULL, NULL);
        log_str(&b, "prompt", p, p ? strlen(p) : 0);
        free(p);
        log_str(&b, "completion", q->text.s, q->text.n);
    }
    strbuf_puts(&b, "}\n");
    if (!b.oom && s->cfg.log) {
        pthread_mutex_lock(&s->log_mu);
        fwrite(b.s, 1, b.n, s->cfg.log);
        fflush(s->cfg.log);
        pthread_mutex_unlock(&s->log_mu);
    }
    strbuf_free(&b);
    if (s->mx) {
        metrics_count_request(s->mx, q->path, q->status ? q->status : 499);
        metrics_observe(s->mx, METRICS_HIST_REQUEST, dur);
    }
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    server *s = cls;
    req *q = *con_cls;
    if (!q) return;
    *con_cls = NULL;
    if (q->job) {
        gen_job_cancel(q->job); /* no-op when it has finished; frees the slot if the client left mid-stream */
        if (q->res.finish == GEN_RUNNING) {
            q->client_gone = q->client_gone || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
            gen_read r;
            size_t off = q->text_off;
            int toff = q->tok_off;
            strbuf sink = {0};
            gen_job_read(q->job, &off, &toff, &sink, &r); /* latest stats for the log */
            q->res.stats = r.stats;
            free(r.toks);
            strbuf_free(&sink);
        }
    }
    log_request(s, q, toe);
    if (q->job) gen_job_release(q->job);
    if (q->have_ar) api_request_free(&q->ar);
    strbuf_free(&q->body);
    strbuf_free(&q->text);
    strbuf_free(&q->pending);
    free(q->toks);
    free(q->res.toks);
    free(q);
}

/* libmicrohttpd's own messages, as JSON lines in the request log. */
static void mhd_log(void *cls, const char *fmt, va_list ap) AL_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    server *s = cls;
    if (!s->cfg.log) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    strbuf b = {0};
    strbuf_puts(&b, "{\"event\":\"http\"");
    log_str(&b, "message", msg, n);
    strbuf_puts(&b, "}\n");
    pthread_mutex_lock(&s->log_mu);
    if (!b.oom) fwrite(b.s, 1, b.n, s->cfg.log);
    pthread_mutex_unlock(&s->log_mu);
    strbuf_free(&b);
}

server *server_start(const server_config *cfg, engine *e, metrics *mx, al_err *err) {
    server *s = calloc(1, sizeof *s);
    if (!s) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->e = e;
    s->mx = mx;
    pthread_mutex_init(&s->log_mu, NULL);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        al_err_set(err, "--host '%s' is not a numeric IPv4 or IPv6 address", cfg->host);
        pthread_mutex_destroy(&s->log_mu);
        free(s);
        return NULL;
    }
    s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, handle, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_conns,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->idle_timeout,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->max_header,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_END);
    if (!s->d) {
        al_err_set(err, "cannot listen on %s port %d (in use, or not an address of this machine)", cfg->host, cfg->port);
        pthread_mutex_destroy(&s->log_mu);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    return s;
}

int server_port(const server *s) { return s->port; }

void server_stop(server *s) {
    if (!s) return;
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}
