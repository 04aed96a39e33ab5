/* api.c - OpenAI-compatible request parsing and response rendering (jansson). */
#include "server/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "text/unicode.h"

#define API_FINGERPRINT "airlock-0.1.0"

int api_error_vset(api_error *err, int status, const char *type, const char *param, const char *code, const char *fmt,
                   va_list ap) {
    err->status = status;
    err->type = type;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    snprintf(err->code, sizeof err->code, "%s", code ? code : "");
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return -1;
}

int api_error_set(api_error *err, int status, const char *type, const char *param, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    api_error_vset(err, status, type, param, code, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(param, ...) api_error_set(err, 400, "invalid_request_error", param, NULL, __VA_ARGS__)

/* A JSON string holding s[0..n) with malformed UTF-8 replaced. */
static json_t *jstr(const char *s, size_t n) {
    strbuf b = {0};
    utf8_sanitize(s ? s : "", s ? n : 0, &b);
    json_t *j = b.oom ? NULL : json_stringn(b.s ? b.s : "", b.n);
    strbuf_free(&b);
    return j ? j : json_string("");
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Field key of o as a number in [lo, hi]. Absent or null leaves *out alone.
 * Returns 0 or -1 with err. */
static int get_number(const json_t *o, const char *key, double lo, double hi, double *out, api_error *err) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return BAD(key, "'%s' must be a number, not %s", key, type_name(v));
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return BAD(key, "'%s' is %g; it must be between %g and %g", key, d, lo, hi);
    *out = d;
    return 0;
}

/* Field key as an integer in [lo, hi] (integral reals accepted). Returns 1
 * when present, 0 when absent or null, -1 with err. */
static int get_int(const json_t *o, const char *key, long long lo, long long hi, long long *out, api_error *err) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    long long x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15)
        x = (long long)json_real_value(v);
    else return BAD(key, "'%s' must be an integer, not %s", key, json_is_real(v) ? "a fraction" : type_name(v));
    if (x < lo || x > hi) return BAD(key, "'%s' is %lld; it must be between %lld and %lld", key, x, lo, hi);
    *out = x;
    return 1;
}

static int get_bool(const json_t *o, const char *key, bool *out, api_error *err) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return BAD(key, "'%s' must be a boolean, not %s", key, type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* Field key as a string (NULL when absent or null). Returns 0 or -1. */
static int get_string(const json_t *o, const char *key, const char **out, size_t *len, api_error *err) {
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (len) *len = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return BAD(key, "'%s' must be a string, not %s", key, type_name(v));
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return 0;
}

static uint64_t random_seed(void) {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
    }
    return s;
}

static int add_stop(api_request *r, const json_t *v, api_error *err) {
    if (!json_is_string(v)) return BAD("stop", "'stop' must be a string or an array of strings, not %s", type_name(v));
    size_t n = json_string_length(v);
    if (n == 0) return BAD("stop", "stop strings must not be empty");
    if (n > GEN_STOP_MAX_LEN) return BAD("stop", "a stop string is %zu bytes; at most %d", n, GEN_STOP_MAX_LEN);
    if (memchr(json_string_value(v), 0, n)) return BAD("stop", "stop strings must not contain NUL");
    if (r->gp.n_stop == GEN_MAX_STOP) return BAD("stop", "at most %d stop strings", GEN_MAX_STOP);
    if (!(r->gp.stop[r->gp.n_stop] = strndup(json_string_value(v), n)))
        return api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    r->gp.n_stop++;
    return 0;
}

/* Sampling and length fields shared by every endpoint. */
static int parse_sampling(const json_t *o, api_request *r, api_error *err) {
    sampler_params *sp = &r->gp.sp;
    *sp = sampler_default_params();
    sp->temperature = 1.0f; /* OpenAI's defaults: plain sampling at temperature 1 */
    sp->top_k = 0;
    sp->top_p = 1.0f;
    sp->min_p = 0.0f;
    double d;
    long long x;
    d = sp->temperature;
    if (get_number(o, "temperature", 0, 2, &d, err)) return -1;
    sp->temperature = (float)d;
    d = sp->top_p;
    if (get_number(o, "top_p", 0, 1, &d, err)) return -1;
    sp->top_p = (float)d;
    d = sp->min_p;
    if (get_number(o, "min_p", 0, 1, &d, err)) return -1;
    sp->min_p = (float)d;
    d = 0;
    if (get_number(o, "presence_penalty", -2, 2, &d, err)) return -1;
    sp->presence_penalty = (float)d;
    d = 0;
    if (get_number(o, "frequency_penalty", -2, 2, &d, err)) return -1;
    sp->frequency_penalty = (float)d;
    d = 1;
    if (get_number(o, "repeat_penalty", 0, 10, &d, err)) return -1;
    sp->repeat_penalty = (float)d;
    x = 0;
    if (get_int(o, "top_k", 0, 1 << 30, &x, err) < 0) return -1;
    sp->top_k = (int)x;
    sp->penalty_last_n = 1 << 30; /* OpenAI's penalties see all the text so far */
    int has = get_int(o, "seed", -(1ll << 62), 1ll << 62, &x, err);
    if (has < 0) return -1;
    sp->seed = has ? (uint64_t)x : random_seed();
    x = 1;
    if (get_int(o, "n", 1, 1 << 30, &x, err) < 0) return -1;
    if (x != 1) return BAD("n", "only n = 1 is supported (one choice per request)");
    if (get_bool(o, "stream", &r->stream, err)) return -1;
    if (get_bool(o, "ignore_eos", &r->gp.ignore_eos, err)) return -1;
    const json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return BAD("stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, err)) return -1;
    }
    const json_t *st = json_object_get(o, "stop");
    if (st && !json_is_null(st)) {
        if (json_is_array(st)) {
            size_t i;
            const json_t *v;
            json_array_foreach(st, i, v) if (add_stop(r, v, err)) return -1;
        } else if (add_stop(r, st, err)) return -1;
    }
    return 0;
}

/* Appends the text of a chat message's content (a string, or an array of
 * {"type": "text", "text": ...} parts) to b. */
static int content_text(const json_t *c, size_t idx, strbuf *b, api_error *err) {
    if (!c || json_is_null(c)) return 0;
    if (json_is_string(c)) {
        strbuf_put(b, json_string_value(c), json_string_length(c));
        return 0;
    }
    if (!json_is_array(c)) return BAD("messages", "messages[%zu].content must be a string or an array of parts", idx);
    size_t i;
    const json_t *part;
    json_array_foreach(c, i, part) {
        const char *type = NULL, *text = NULL;
        size_t tl = 0;
        if (!json_is_object(part)) return BAD("messages", "messages[%zu].content[%zu] must be an object", idx, i);
        if (get_string(part, "type", &type, NULL, err) || get_string(part, "text", &text, &tl, err)) return -1;
        if (!type || strcmp(type, "text") != 0)
            return BAD("messages", "messages[%zu].content[%zu]: only parts of type 'text' are supported", idx, i);
        if (!text) return BAD("messages", "messages[%zu].content[%zu] has no 'text'", idx, i);
        strbuf_put(b, text, tl);
    }
    return 0;
}

static int parse_chat_prompt(engine *e, const json_t *o, api_request *r, api_error *err) {
    al_err aerr;
    const chat_template *t = engine_template(e, r->model, &aerr);
    if (!t) return BAD("model", "%s", aerr.msg);
    const json_t *msgs = json_object_get(o, "messages");
    if (!msgs) return BAD("messages", "'messages' is required");
    if (!json_is_array(msgs)) return BAD("messages", "'messages' must be an array, not %s", type_name(msgs));
    size_t n = json_array_size(msgs);
    if (n == 0) return BAD("messages", "'messages' must not be empty");
    if (n > 100000) return BAD("messages", "too many messages (%zu)", n);
    chat_message *cm = calloc(n, sizeof *cm);
    strbuf *texts = calloc(n, sizeof *texts);
    int rc = 0;
    if (!cm || !texts) rc = api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = NULL;
        if (!json_is_object(m)) rc = BAD("messages", "messages[%zu] must be an object", i);
        else if (get_string(m, "role", &role, NULL, err)) rc = -1;
        else if (!role) rc = BAD("messages", "messages[%zu] has no 'role'", i);
        else if (strcmp(role, "developer") == 0) role = "system";
        else if (strcmp(role, "system") != 0 && strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
            rc = BAD("messages", "messages[%zu].role '%.40s' is not supported (system, developer, user, assistant)", i, role);
        if (rc == 0) rc = content_text(json_object_get(m, "content"), i, &texts[i], err);
        if (rc == 0 && texts[i].oom) rc = api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
        if (rc == 0 && texts[i].n != strlen(texts[i].s ? texts[i].s : ""))
            rc = BAD("messages", "messages[%zu].content contains a NUL character", i);
        if (rc == 0) cm[i] = (chat_message){role, texts[i].s ? texts[i].s : ""};
    }
    char *prompt = NULL;
    if (rc == 0 && !(prompt = chat_template_apply(t, cm, n, true, &aerr))) rc = BAD("messages", "%s", aerr.msg);
    if (rc == 0 && llm_tokenize_chat(engine_model(e, r->model), t, prompt, &r->prompt, &aerr))
        rc = api_error_set(err, 500, "server_error", NULL, NULL, "%s", aerr.msg);
    free(prompt);
    for (size_t i = 0; texts && i < n; i++) strbuf_free(&texts[i]);
    free(texts);
    free(cm);
    return rc;
}

/* Tokenizes text into r->prompt (without BOS/EOS unless add_special). */
static int tokenize_into(engine *e, api_request *r, const char *text, size_t len, bool add_special, const char *param,
                         api_error *err) {
    al_err aerr;
    if (memchr(text, 0, len)) return BAD(param, "'%s' contains a NUL character", param);
    if (tokenizer_encode(engine_model(e, r->model)->tok, text, len, add_special, true, &r->prompt, &aerr))
        return api_error_set(err, 500, "server_error", NULL, NULL, "%s", aerr.msg);
    return 0;
}

/* prompt: a string, [string], [token ids] or [[token ids]]. */
static int parse_completion_prompt(engine *e, const json_t *o, api_request *r, api_error *err) {
    const json_t *p = json_object_get(o, "prompt");
    if (!p || json_is_null(p)) return BAD("prompt", "'prompt' is required");
    if (json_is_array(p) && json_array_size(p) == 1 && !json_is_integer(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (json_is_string(p)) return tokenize_into(e, r, json_string_value(p), json_string_length(p), true, "prompt", err);
    if (!json_is_array(p)) return BAD("prompt", "'prompt' must be a string or an array, not %s", type_name(p));
    if (json_array_size(p) == 0) return BAD("prompt", "'prompt' must not be empty");
    size_t i;
    const json_t *v;
    json_array_foreach(p, i, v) {
        if (json_is_string(v)) return BAD("prompt", "only one prompt per request is supported");
        if (!json_is_integer(v)) return BAD("prompt", "prompt[%zu] must be a token id, not %s", i, type_name(v));
        json_int_t id = json_integer_value(v);
        if (id < 0 || id >= engine_model(e, r->model)->hp.n_vocab)
            return BAD("prompt", "prompt[%zu] = %lld is not a token id of this model (0..%d)", i, (long long)id,
                       engine_model(e, r->model)->hp.n_vocab - 1);
        if (token_vec_push(&r->prompt, (int32_t)id)) return api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    return 0;
}

/* Fill in the middle, prefix-suffix-middle order: [BOS] PRE prefix SUF
 * suffix MID, then what the model writes is the middle. */
static int build_fim(engine *e, api_request *r, const char *prefix, size_t pl, const char *suffix, size_t sl,
                     const char *param, api_error *err) {
    int32_t fim[3];
    if (engine_fim_tokens(e, r->model, fim))
        return BAD(param, "model '%s' has no fill-in-the-middle tokens", engine_model_name(e, r->model));
    const tokenizer *tok = engine_model(e, r->model)->tok;
    token_vec body = r->prompt; /* text tokenized so far (input_extra) */
    r->prompt = (token_vec){0};
    int rc = 0;
    int32_t bos = tokenizer_bos(tok);
    token_vec t = {0};
    al_err aerr;
    if (bos >= 0 && tokenizer_encode(tok, "", 0, true, false, &t, &aerr) == 0 && t.n > 0 && t.ids[0] == bos)
        rc |= token_vec_push(&r->prompt, bos);
    rc |= token_vec_push(&r->prompt, fim[0]);
    for (size_t i = 0; i < body.n; i++) rc |= token_vec_push(&r->prompt, body.ids[i]);
    token_vec_free(&body);
    token_vec_free(&t);
    if (rc) return api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    if (tokenize_into(e, r, prefix, pl, false, param, err)) return -1;
    if (token_vec_push(&r->prompt, fim[1])) return api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    if (tokenize_into(e, r, suffix, sl, false, "suffix", err)) return -1;
    if (token_vec_push(&r->prompt, fim[2])) return api_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    return 0;
}

/* llama.cpp's /infill body: input_prefix, input_suffix, input_extra
 * [{filename, text}] (context placed before the prefix), prompt (written
 * after the middle token, as the start of the middle). */
static int parse_infill(engine *e, const json_t *o, api_request *r, api_error *err) {
    const char *pre, *suf, *prompt;
    size_t pl, sl, ql;
    if (get_string(o, "input_prefix", &pre, &pl, err) || get_string(o, "input_suffix", &suf, &sl, err) ||
        get_string(o, "prompt", &prompt, &ql, err))
        return -1;
    if (!pre && !suf) return BAD("input_prefix", "'input_prefix' or 'input_suffix' is required");
    const json_t *extra = json_object_get(o, "input_extra");
    if (extra && !json_is_null(extra)) {
        if (!json_is_array(extra)) return BAD("input_extra", "'input_extra' must be an array of {filename, text}");
        size_t i;
        const json_t *c;
        json_array_foreach(extra, i, c) {
            const char *fn = NULL, *text = NULL;
            size_t fl = 0, tl = 0;
            if (!json_is_object(c)) return BAD("input_extra", "input_extra[%zu] must be an object", i);
            if (get_string(c, "filename", &fn, &fl, err) || get_string(c, "text", &text, &tl, err)) return -1;
            if (fn && tokenize_into(e, r, fn, fl, false, "input_extra", err)) return -1;
            if (fn && tokenize_into(e, r, "\n", 1, false, "input_extra", err)) return -1;
            if (text && tokenize_into(e, r, text, tl, false, "input_extra", err)) return -1;
            if (tokenize_into(e, r, "\n", 1, false, "input_extra", err)) return -1;
        }
    }
    if (build_fim(e, r, pre ? pre : "", pl, suf ? suf : "", sl, "input_prefix", err)) return -1;
    if (prompt && tokenize_into(e, r, prompt, ql, false, "prompt", err)) return -1;
    return 0;
}

static void make_id(api_request *r) {
    static const char hex[] = "0123456789abcdef";
    uint64_t a = random_seed(), b = random_seed();
    const char *pre = r->kind == API_CHAT ? "chatcmpl-" : "cmpl-";
    size_t o = (size_t)snprintf(r->id, sizeof r->id, "%s", pre);
    for (int i = 0; i < 24 && o + 1 < sizeof r->id; i++) r->id[o++] = hex[((i < 16 ? a >> (4 * i) : b >> (4 * (i - 16)))) & 15];
    r->id[o] = 0;
}

int api_parse(engine *e, api_kind kind, const char *body, size_t len, api_request *r, api_error *err) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->gp.logprobs = -1;
    r->created = (long long)time(NULL);
    make_id(r);
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return api_error_set(err, 400, "invalid_request_error", NULL, "invalid_json",
                                 "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    int rc = -1;
    if (!json_is_object(o)) {
        BAD(NULL, "the body must be a JSON object, not %s", type_name(o));
        goto done;
    }
    const char *model;
    if (get_string(o, "model", &model, NULL, err)) goto done;
    if (model) {
        r->model = engine_find_model(e, model);
        if (r->model < 0) {
            api_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                          "The model '%.200s' does not exist (GET /v1/models lists them)", model);
            goto done;
        }
    } else if (engine_n_models(e) == 1 || kind == API_INFILL) r->model = 0;
    else {
        BAD("model", "'model' is required: this server has %d models", engine_n_models(e));
        goto done;
    }
    if (parse_sampling(o, r, err)) goto done;
    /* length: max_completion_tokens (new name), max_tokens, n_predict (llama.cpp) */
    long long maxt = 0;
    int has_max = get_int(o, "max_completion_tokens", 1, 1 << 30, &maxt, err);
    if (has_max == 0) has_max = get_int(o, "max_tokens", 1, 1 << 30, &maxt, err);
    if (has_max == 0) {
        has_max = get_int(o, "n_predict", -1, 1 << 30, &maxt, err);
        if (has_max > 0 && maxt <= 0) has_max = 0; /* llama.cpp: -1 means no limit */
    }
    if (has_max < 0) goto done;
    /* logprobs: chat takes a boolean and top_logprobs; completions an integer 0..5 */
    if (kind == API_CHAT) {
        bool lp = false;
        long long top = 0;
        if (get_bool(o, "logprobs", &lp, err)) goto done;
        int has_top = get_int(o, "top_logprobs", 0, GEN_MAX_TOP_LOGPROBS, &top, err);
        if (has_top < 0) goto done;
        if (has_top && !lp) {
            BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
            goto done;
        }
        r->chat_logprobs = lp;
        r->gp.logprobs = lp ? (int)top : -1;
    } else {
        long long lp = 0;
        int has_lp = get_int(o, "logprobs", 0, 5, &lp, err);
        if (has_lp < 0) goto done;
        if (has_lp) r->gp.logprobs = (int)lp;
        bool echo = false;
        if (get_bool(o, "echo", &echo, err)) goto done;
        if (echo) {
            BAD("echo", "'echo' is not supported");
            goto done;
        }
        long long best_of = 1;
        if (get_int(o, "best_of", 1, 1 << 30, &best_of, err) < 0) goto done;
        if (best_of != 1) {
            BAD("best_of", "only best_of = 1 is supported");
            goto done;
        }
    }
    if (kind == API_CHAT) {
        if (parse_chat_prompt(e, o, r, err)) goto done;
    } else if (kind == API_INFILL) {
        if (parse_infill(e, o, r, err)) goto done;
    } else {
        const char *suffix;
        size_t sl;
        if (get_string(o, "suffix", &suffix, &sl, err)) goto done;
        if (suffix) {
            const json_t *p = json_object_get(o, "prompt");
            if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
            if (!json_is_string(p)) {
                BAD("prompt", "with 'suffix', 'prompt' must be a string");
                goto done;
            }
            if (build_fim(e, r, json_string_value(p), json_string_length(p), suffix, sl, "suffix", err)) goto done;
        } else if (parse_completion_prompt(e, o, r, err)) goto done;
    }
    int n_ctx = engine_n_ctx(e, r->model), n = (int)r->prompt.n;
    if (n == 0) {
        BAD(kind == API_CHAT ? "messages" : "prompt", "the prompt is empty");
        goto done;
    }
    if (n >= n_ctx) {
        api_error_set(err, 400, "invalid_request_error", kind == API_CHAT ? "messages" : "prompt", "context_length_exceeded",
                      "This model's maximum context length is %d tokens. However, your prompt has %d tokens "
                      "(at least one must be left to generate).",
                      n_ctx, n);
        goto done;
    }
    if (has_max && (long long)n + maxt > n_ctx) {
        api_error_set(err, 400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                      "This model's maximum context length is %d tokens. However, you requested %lld tokens "
                      "(%d in the prompt, %lld for the completion). Reduce the prompt or the completion length.",
                      n_ctx, (long long)n + maxt, n, maxt);
        goto done;
    }
    if (has_max) r->gp.max_tokens = (int)maxt;
    else if (kind == API_COMPLETION) r->gp.max_tokens = n_ctx - n < 16 ? n_ctx - n : 16; /* OpenAI's default */
    else r->gp.max_tokens = n_ctx - n;
    rc = 0;
done:
    json_decref(o);
    if (rc) api_request_free(r);
    return rc;
}

void api_request_free(api_request *r) {
    token_vec_free(&r->prompt);
    for (int i = 0; i < r->gp.n_stop; i++) free(r->gp.stop[i]);
    r->gp.n_stop = 0;
}

/* ---- rendering ---------------------------------------------------------------------- */

static void dump(json_t *j, strbuf *out) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s) strbuf_puts(out, s);
    else out->oom = true;
    free(s);
    json_decref(j);
}

void api_render_error(const api_error *err, strbuf *out) {
    json_t *e = json_object();
    json_object_set_new(e, "message", jstr(err->message, strlen(err->message)));
    json_object_set_new(e, "type", json_string(err->type ? err->type : "invalid_request_error"));
    json_object_set_new(e, "param", err->param[0] ? json_string(err->param) : json_null());
    json_object_set_new(e, "code", err->code[0] ? json_string(err->code) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    dump(o, out);
}

const char *api_finish_name(gen_finish f) {
    switch (f) {
    case GEN_FINISH_STOP: return "stop";
    case GEN_FINISH_LENGTH: return "length";
    case GEN_FINISH_CANCELLED: return "cancelled";
    case GEN_FINISH_ERROR: return "error";
    default: return NULL;
    }
}

static json_t *token_json(const tokenizer *tok, int32_t id, float lp, bool chat) {
    char buf[256];
    int k = tokenizer_token_to_piece(tok, id, false, buf, sizeof buf);
    if (k < 0) k = 0;
    if (k > (int)sizeof buf) k = (int)sizeof buf;
    json_t *o = json_object();
    json_object_set_new(o, "token", jstr(buf, (size_t)k));
    json_object_set_new(o, "logprob", json_real(lp));
    if (chat) {
        json_t *bytes = json_array();
        for (int i = 0; i < k; i++) json_array_append_new(bytes, json_integer((uint8_t)buf[i]));
        json_object_set_new(o, "bytes", bytes);
    }
    return o;
}

/* The logprobs object of a choice (chat or completions shape), or null. */
static json_t *logprobs_json(engine *e, const api_request *r, const gen_token *toks, int n) {
    if (r->gp.logprobs < 0) return json_null();
    const tokenizer *tok = engine_model(e, r->model)->tok;
    if (r->kind == API_CHAT) {
        json_t *content = json_array();
        for (int i = 0; i < n; i++) {
            json_t *t = token_json(tok, toks[i].id, toks[i].logprob, true);
            json_t *top = json_array();
            for (int k = 0; k < toks[i].n_top; k++) json_array_append_new(top, token_json(tok, toks[i].top_id[k], toks[i].top_lp[k], true));
            json_object_set_new(t, "top_logprobs", top);
            json_array_append_new(content, t);
        }
        json_t *o = json_object();
        json_object_set_new(o, "content", content);
        return o;
    }
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (int i = 0; i < n; i++) {
        json_t *t = token_json(tok, toks[i].id, toks[i].logprob, false);
        json_array_append(tokens, json_object_get(t, "token"));
        json_array_append_new(lps, json_real(toks[i].logprob));
        json_t *top = json_object();
        for (int k = 0; k < toks[i].n_top; k++) {
            json_t *a = token_json(tok, toks[i].top_id[k], toks[i].top_lp[k], false);
            json_object_set(top, json_string_value(json_object_get(a, "token")), json_object_get(a, "logprob"));
            json_decref(a);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)toks[i].text_start));
        json_decref(t);
    }
    json_t *o = json_object();
    json_object_set_new(o, "tokens", tokens);
    json_object_set_new(o, "token_logprobs", lps);
    json_object_set_new(o, "top_logprobs", tops);
    json_object_set_new(o, "text_offset", offs);
    return o;
}

static json_t *usage_json(const gen_stats *st) {
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(st->n_prompt));
    json_object_set_new(u, "completion_tokens", json_integer(st->n_gen));
    json_object_set_new(u, "total_tokens", json_integer(st->n_prompt + st->n_gen));
    json_t *d = json_object();
    json_object_set_new(d, "cached_tokens", json_integer(st->n_cached));
    json_object_set_new(u, "prompt_tokens_details", d);
    return u;
}

/* llama.cpp's timings object. */
static json_t *timings_json(const gen_stats *st) {
    json_t *t = json_object();
    double prompt_ms = st->t_first > 0 ? (st->t_first - st->t_submit) * 1e3 : 0;
    double gen_ms = st->t_end > st->t_first && st->t_first > 0 ? (st->t_end - st->t_first) * 1e3 : 0;
    json_object_set_new(t, "prompt_n", json_integer(st->n_prompt - st->n_cached));
    json_object_set_new(t, "prompt_ms", json_real(prompt_ms));
    json_object_set_new(t, "predicted_n", json_integer(st->n_gen));
    json_object_set_new(t, "predicted_ms", json_real(gen_ms));
    json_object_set_new(t, "predicted_per_second", json_real(gen_ms > 0 && st->n_gen > 1 ? (st->n_gen - 1) * 1e3 / gen_ms : 0));
    return t;
}

/* llama.cpp's last /infill object: the answer (or, streamed, "") with stop,
 * token counts and timings. */
static json_t *infill_last_json(engine *e, const api_request *r, const gen_read *res, const char *text, size_t len) {
    json_t *o = json_object();
    json_object_set_new(o, "content", jstr(text, len));
    json_object_set_new(o, "stop", json_true());
    json_object_set_new(o, "model", json_string(engine_model_name(e, r->model)));
    json_object_set_new(o, "tokens_predicted", json_integer(res->stats.n_gen));
    json_object_set_new(o, "tokens_evaluated", json_integer(res->stats.n_prompt));
    json_object_set_new(o, "stop_type", json_string(res->finish == GEN_FINISH_LENGTH ? "limit" : "eos"));
    json_object_set_new(o, "timings", timings_json(&res->stats));
    return o;
}

static json_t *envelope(engine *e, const api_request *r, const char *object) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "object", json_string(object));
    json_object_set_new(o, "created", json_integer(r->created));
    json_object_set_new(o, "model", json_string(engine_model_name(e, r->model)));
    json_object_set_new(o, "system_fingerprint", json_string(API_FINGERPRINT));
    return o;
}

static json_t *finish_json(gen_finish f) {
    const char *n = api_finish_name(f);
    return n ? json_string(n) : json_null();
}

void api_render_final(engine *e, const api_request *r, const char *text, size_t len, const gen_token *toks, int n_toks,
                      const gen_read *res, strbuf *out) {
    if (r->kind == API_INFILL) {
        json_t *o = infill_last_json(e, r, res, text, len);
        json_object_set_new(o, "tokens_cached", json_integer(res->stats.n_cached));
        dump(o, out);
        return;
    }
    bool chat = r->kind == API_CHAT;
    json_t *o = envelope(e, r, chat ? "chat.completion" : "text_completion");
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (chat) {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        json_object_set_new(msg, "content", jstr(text, len));
        json_object_set_new(msg, "refusal", json_null());
        json_object_set_new(choice, "message", msg);
    } else json_object_set_new(choice, "text", jstr(text, len));
    json_object_set_new(choice, "logprobs", logprobs_json(e, r, toks, n_toks));
    json_object_set_new(choice, "finish_reason", finish_json(res->finish));
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage_json(&res->stats));
    json_object_set_new(o, "timings", timings_json(&res->stats));
    dump(o, out);
}

bool api_render_chunk(engine *e, const api_request *r, const char *text, size_t len, const gen_token *toks, int n_toks,
                      gen_finish finish, bool first, strbuf *out) {
    if (len == 0 && n_toks == 0 && finish == GEN_RUNNING && !first) return false;
    if (r->kind == API_INFILL) {
        if (len == 0 && finish == GEN_RUNNING) return false;
        json_t *o = json_object();
        json_object_set_new(o, "content", jstr(text, len));
        json_object_set_new(o, "stop", json_false());
        dump(o, out);
        return true;
    }
    bool chat = r->kind == API_CHAT;
    json_t *o = envelope(e, r, chat ? "chat.completion.chunk" : "text_completion");
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (chat) {
        json_t *delta = json_object();
        if (first) json_object_set_new(delta, "role", json_string("assistant"));
        if (len || first) json_object_set_new(delta, "content", jstr(text, len));
        json_object_set_new(choice, "delta", delta);
    } else json_object_set_new(choice, "text", jstr(text, len));
    json_object_set_new(choice, "logprobs", n_toks ? logprobs_json(e, r, toks, n_toks) : json_null());
    json_object_set_new(choice, "finish_reason", finish_json(finish));
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    if (r->include_usage) json_object_set_new(o, "usage", json_null());
    dump(o, out);
    return true;
}

void api_render_stream_end(engine *e, const api_request *r, const gen_read *res, strbuf *out) {
    if (r->kind == API_INFILL) {
        dump(infill_last_json(e, r, res, "", 0), out);
        return;
    }
    json_t *o = envelope(e, r, r->kind == API_CHAT ? "chat.completion.chunk" : "text_completion");
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", usage_json(&res->stats));
    dump(o, out);
}

void api_render_models(engine *e, long long created, strbuf *out) {
    json_t *data = json_array();
    for (int i = 0; i < engine_n_models(e); i++) {
        json_t *m = json_object();
        json_object_set_new(m, "id", json_string(engine_model_name(e, i)));
        json_object_set_new(m, "object", json_string("model"));
        json_object_set_new(m, "created", json_integer(created));
        json_object_set_new(m, "owned_by", json_string("airlock"));
        json_t *meta = json_object();
        const llm_model *lm = engine_model(e, i);
        json_object_set_new(meta, "n_ctx", json_integer(engine_n_ctx(e, i)));
        json_object_set_new(meta, "n_vocab", json_integer(lm->hp.n_vocab));
        json_object_set_new(meta, "n_params_bytes", json_integer((json_int_t)lm->weight_bytes));
        json_object_set_new(meta, "arch", json_string(llm_arch_name(lm->hp.arch)));
        json_object_set_new(m, "meta", meta);
        json_array_append_new(data, m);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    dump(o, out);
}
