/* api.h - the OpenAI (and llama.cpp) request and response shapes.
 *
 * api_parse validates a request body completely before anything runs: JSON
 * syntax, types, ranges, the model name, the prompt's length against the
 * context; each failure becomes an api_error with OpenAI's status, type,
 * param and message. The render functions build response bodies and
 * server-sent-event chunks (always valid UTF-8 JSON). */
#ifndef AIRLOCK_SERVER_API_H
#define AIRLOCK_SERVER_API_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "server/engine.h"

typedef enum api_kind {
    API_CHAT,        /* POST /v1/chat/completions */
    API_COMPLETION,  /* POST /v1/completions (suffix: fill-in-the-middle) */
    API_INFILL,      /* POST /infill (llama.cpp) */
} api_kind;

typedef struct api_request {
    api_kind kind;
    int model;
    token_vec prompt;
    gen_params gp;
    bool stream;
    bool include_usage;   /* stream_options.include_usage */
    bool chat_logprobs;   /* chat: logprobs in the chat shape */
    char id[40];          /* "chatcmpl-..." / "cmpl-..." */
    long long created;    /* unix seconds */
} api_request;

typedef struct api_error {
    int status;
    const char *type;     /* "invalid_request_error", ... */
    char param[64];       /* "" when not about one field */
    char code[64];        /* "" or e.g. "model_not_found", "context_length_exceeded" */
    char message[512];
} api_error;

/* Parses and validates a request for engine e. Returns 0, or -1 with err. */
int api_parse(engine *e, api_kind kind, const char *body, size_t len, api_request *out, api_error *err);
void api_request_free(api_request *r);

/* Sets err and returns -1. */
int api_error_set(api_error *err, int status, const char *type, const char *param, const char *code, const char *fmt, ...)
    AL_PRINTF(6, 7);
/* The same with a va_list. */
int api_error_vset(api_error *err, int status, const char *type, const char *param, const char *code, const char *fmt,
                   va_list ap) AL_PRINTF(6, 0);
/* {"error": {...}} */
void api_render_error(const api_error *err, strbuf *out);

/* The whole answer of a finished request (not streamed). */
void api_render_final(engine *e, const api_request *r, const char *text, size_t len, const gen_token *toks, int n_toks,
                      const gen_read *res, strbuf *out);
/* One streamed event with new text and tokens; finish != GEN_RUNNING adds
 * the finish reason. first: the chat stream's opening role delta. Writes
 * nothing and returns false when there is nothing to say. */
bool api_render_chunk(engine *e, const api_request *r, const char *text, size_t len, const gen_token *toks, int n_toks,
                      gen_finish finish, bool first, strbuf *out);
/* The usage chunk after the last one (stream_options.include_usage), or for
 * /infill the final event with timings. */
void api_render_stream_end(engine *e, const api_request *r, const gen_read *res, strbuf *out);

/* GET /v1/models */
void api_render_models(engine *e, long long created, strbuf *out);

/* "stop", "length", ... as OpenAI names them. */
const char *api_finish_name(gen_finish f);

#endif
