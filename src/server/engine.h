/* engine.h - the server's scheduler: continuous batching over slots.
 *
 * Each served model has --parallel slots; a slot is one sequence with its
 * own KV cache. Requests wait in one bounded queue; a free slot takes the
 * oldest waiting request for its model, choosing among free slots the one
 * whose cached tokens share the longest prefix with the prompt (a chat's
 * history, an editor's file), so only the new suffix is computed. One engine
 * thread steps every model: each step is a single llm_forward batch holding
 * one token of every generating slot plus chunks of prompts being read, so
 * concurrent requests share each pass over the weights.
 *
 * A request is a gen_job shared by the engine and the HTTP connection that
 * submitted it (reference counted). The engine appends text and tokens; the
 * connection waits for new text, reads it, and may cancel (the client went
 * away): the engine then frees the slot before its next step. */
#ifndef AIRLOCK_SERVER_ENGINE_H
#define AIRLOCK_SERVER_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "models/llm.h"
#include "models/sampler.h"
#include "server/metrics.h"
#include "text/chat_template.h"

#define GEN_MAX_STOP 4
#define GEN_STOP_MAX_LEN 256
#define GEN_MAX_TOP_LOGPROBS 20

typedef enum gen_finish {
    GEN_RUNNING = 0,
    GEN_FINISH_STOP,      /* end-of-generation token or a stop string */
    GEN_FINISH_LENGTH,    /* max_tokens or the context is full */
    GEN_FINISH_CANCELLED, /* the client went away */
    GEN_FINISH_ERROR,
} gen_finish;

typedef struct gen_params {
    sampler_params sp;
    int max_tokens;                /* most tokens to generate (>= 1) */
    char *stop[GEN_MAX_STOP];      /* stop strings (malloc'd; the job frees them) */
    int n_stop;
    int logprobs;                  /* -1: none; else alternatives per token (0..20) */
    bool ignore_eos;               /* never pick an end-of-generation token (llama.cpp's ignore_eos) */
} gen_params;

/* One generated token. */
typedef struct gen_token {
    int32_t id;
    float logprob;      /* log-probability under the model's distribution */
    size_t text_start;  /* byte offset of its text in the generated text */
    int n_top;
    int32_t top_id[GEN_MAX_TOP_LOGPROBS];
    float top_lp[GEN_MAX_TOP_LOGPROBS];
} gen_token;

typedef struct gen_stats {
    int n_prompt;       /* prompt tokens */
    int n_cached;       /* of them, reused from the slot's cache */
    int n_gen;          /* generated tokens */
    double t_submit;    /* seconds on the monotonic clock */
    double t_first;     /* first generated token (0 if none) */
    double t_end;       /* finished (0 while running) */
} gen_stats;

/* What gen_job_read hands back. */
typedef struct gen_read {
    gen_token *toks;    /* new tokens (malloc'd, caller frees) */
    int n_toks;
    gen_finish finish;  /* GEN_RUNNING while more may come */
    gen_stats stats;
    char error[256];    /* for GEN_FINISH_ERROR */
} gen_read;

typedef struct gen_job gen_job;
typedef struct engine engine;

typedef struct engine_config {
    int n_slots;     /* slots per model */
    int n_ctx;       /* positions per slot (0: the model's training context, at most 8192) */
    int n_batch;     /* most tokens per forward pass */
    int queue_max;   /* most requests waiting for a slot */
    kv_type kv;
} engine_config;

typedef enum engine_submit_rc { ENGINE_OK = 0, ENGINE_QUEUE_FULL = 1, ENGINE_ERROR = -1 } engine_submit_rc;

engine *engine_init(const engine_config *cfg, metrics *mx, al_err *err);
/* Stops the engine thread and ends every job (cancelled); later submits
 * fail. The models stay loaded for connections still answering. */
void engine_stop(engine *e);
/* engine_stop, then frees everything. */
void engine_free(engine *e);
/* Loads a model under a name. Before engine_start only. Returns 0 or -1. */
int engine_add_model(engine *e, const char *name, const char *path, const char *chat_template_name, al_err *err);
int engine_start(engine *e, al_err *err);

int engine_n_models(const engine *e);
/* Index of the model with this name, or -1. */
int engine_find_model(const engine *e, const char *name);
const char *engine_model_name(const engine *e, int i);
const llm_model *engine_model(const engine *e, int i);
/* The model's chat template, or NULL when it has none airlock recognises
 * (error in err explains). */
const chat_template *engine_template(const engine *e, int i, al_err *err);
int engine_n_ctx(const engine *e, int i);
/* The model's fill-in-the-middle tokens (prefix, suffix, middle). Returns 0,
 * or -1 when the vocabulary has none. */
int engine_fim_tokens(const engine *e, int i, int32_t out[3]);

/* Queues a generation of model i from prompt[n] (copied). On success *out
 * holds a job the caller must gen_job_release. Takes ownership of p->stop
 * strings in every case. Returns ENGINE_OK, ENGINE_QUEUE_FULL, or
 * ENGINE_ERROR with err set (prompt too long for the context, bad params). */
engine_submit_rc engine_submit(engine *e, int i, const int32_t *prompt, int n, gen_params *p, gen_job **out, al_err *err);

/* Waits up to timeout_ms for text beyond text_off or for the end. Returns
 * true if there is something to read. */
bool gen_job_wait(gen_job *j, size_t text_off, int tok_off, int timeout_ms);
/* Appends the text from *text_off that is final (no partial UTF-8
 * character, nothing that may yet turn out to be a stop string) to out and
 * advances *text_off; returns new tokens from *tok_off likewise. */
void gen_job_read(gen_job *j, size_t *text_off, int *tok_off, strbuf *out, gen_read *r);
/* Asks the engine to stop this job (the client disconnected). */
void gen_job_cancel(gen_job *j);
void gen_job_release(gen_job *j);

/* Seconds on the monotonic clock. */
double engine_now(void);

#endif
