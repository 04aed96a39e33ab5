/* engine.c - continuous batching: slots, the request queue, the engine thread. */
#include "server/engine.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/unicode.h"

struct gen_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                /* engine + connection; under mu */
    int model;
    int32_t *prompt;         /* [n_prompt] */
    int n_prompt;
    gen_params p;
    atomic_bool cancel;
    /* output, under mu */
    strbuf text;             /* generated text so far */
    size_t safe;             /* text[0..safe) is final */
    gen_token *toks;         /* [n_toks] */
    int n_toks, cap_toks, n_safe_toks;
    gen_finish finish;
    char error[256];
    gen_stats st;
    gen_job *next;           /* queue link, under engine mu */
};

typedef struct slot {
    llm_ctx *ctx;            /* KV cache; ctx->pos positions hold cached[0..pos) */
    int32_t *cached;         /* [n_ctx] tokens in the cache */
    gen_job *job;            /* NULL when free */
    int n_fed;               /* prompt tokens already in the cache */
    sampler *smp;
    int32_t next_tok;        /* sampled, to be fed next step */
    bool generating;         /* prompt done, decoding */
    uint64_t last_used;
    double t_last;           /* time of the last generated token */
} slot;

typedef struct emodel {
    char *name;
    llm_model *m;
    chat_template tmpl;
    bool has_tmpl;
    char tmpl_err[AL_ERR_MAX];
    int32_t fim[3];
    bool has_fim;
    int32_t *eog;            /* [n_eog] end-of-generation token ids */
    int n_eog;
    llm_ws *ws;
    float *logits;           /* [n_slots][n_vocab] */
    slot *slots;             /* [n_slots] */
    int n_slots;
    int n_ctx;
    /* the batch being built: [n_batch] each */
    int32_t *btok;
    llm_ctx **bseq;
    bool *bwant;
    int *bslot;
} emodel;

struct engine {
    engine_config cfg;
    metrics *mx;
    emodel *models;
    int n_models;
    pthread_t thr;
    bool started;
    pthread_mutex_t mu;      /* queue, stop */
    pthread_cond_t cv;
    gen_job *qhead, *qtail;
    int qlen;
    bool stop;
    uint64_t tick;
};

double engine_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- jobs ----------------------------------------------------------------------- */

static void params_free(gen_params *p) {
    for (int i = 0; i < p->n_stop; i++) free(p->stop[i]);
    p->n_stop = 0;
}

static gen_job *job_new(int model, const int32_t *prompt, int n, gen_params *p) {
    gen_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->prompt = malloc((size_t)n * sizeof *j->prompt);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool ok = j->prompt && pthread_mutex_init(&j->mu, NULL) == 0;
    if (ok && pthread_cond_init(&j->cv, &ca) != 0) {
        pthread_mutex_destroy(&j->mu);
        ok = false;
    }
    pthread_condattr_destroy(&ca);
    if (!ok) {
        free(j->prompt);
        free(j);
        return NULL;
    }
    memcpy(j->prompt, prompt, (size_t)n * sizeof *prompt);
    j->n_prompt = n;
    j->model = model;
    j->p = *p;
    p->n_stop = 0; /* the job owns the strings now */
    j->refs = 2;
    atomic_init(&j->cancel, false);
    j->st.n_prompt = n;
    j->st.t_submit = engine_now();
    return j;
}

void gen_job_release(gen_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    params_free(&j->p);
    strbuf_free(&j->text);
    free(j->toks);
    free(j->prompt);
    free(j);
}

void gen_job_cancel(gen_job *j) { atomic_store(&j->cancel, true); }

bool gen_job_wait(gen_job *j, size_t text_off, int tok_off, int timeout_ms) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (j->safe <= text_off && j->n_safe_toks <= tok_off && j->finish == GEN_RUNNING)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) != 0) break;
    bool ready = j->safe > text_off || j->n_safe_toks > tok_off || j->finish != GEN_RUNNING;
    pthread_mutex_unlock(&j->mu);
    return ready;
}

void gen_job_read(gen_job *j, size_t *text_off, int *tok_off, strbuf *out, gen_read *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_lock(&j->mu);
    if (j->safe > *text_off) {
        strbuf_put(out, j->text.s + *text_off, j->safe - *text_off);
        *text_off = j->safe;
    }
    if (j->n_safe_toks > *tok_off) {
        int n = j->n_safe_toks - *tok_off;
        r->toks = malloc((size_t)n * sizeof *r->toks);
        if (r->toks) {
            memcpy(r->toks, j->toks + *tok_off, (size_t)n * sizeof *r->toks);
            r->n_toks = n;
            *tok_off = j->n_safe_toks;
        }
    }
    r->finish = j->finish;
    r->stats = j->st;
    memcpy(r->error, j->error, sizeof r->error);
    pthread_mutex_unlock(&j->mu);
}

/* Bytes at the end of s[0..n) that start a UTF-8 character not yet complete. */
static size_t utf8_incomplete_tail(const char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t b = (uint8_t)s[n - back];
        if ((b & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        size_t need = (b >= 0xC0 && b < 0xF8) ? utf8_len_lead(b) : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Recomputes how much of the text is final: not a partial character, and
 * not the beginning of a stop string. Called with j->mu held. */
static void job_update_safe(gen_job *j) {
    size_t n = j->text.n;
    size_t safe = n - utf8_incomplete_tail(j->text.s, n);
    size_t hold = 0;
    for (int s = 0; s < j->p.n_stop; s++) {
        size_t sl = strlen(j->p.stop[s]);
        if (sl == 0) continue;
        for (size_t l = sl - 1; l > hold && l >= 1; l--)
            if (l <= safe && memcmp(j->text.s + safe - l, j->p.stop[s], l) == 0) {
                hold = l;
                break;
            }
    }
    safe -= hold;
    if (safe > j->safe) j->safe = safe;
    int t = j->n_safe_toks;
    while (t < j->n_toks && (t + 1 < j->n_toks ? j->toks[t + 1].text_start : n) <= j->safe) t++;
    j->n_safe_toks = t;
}

/* Ends the job (under its mutex): everything becomes final. */
static void job_finish_locked(gen_job *j, gen_finish f, const char *error) {
    if (j->finish != GEN_RUNNING) return;
    j->finish = f;
    if (error) snprintf(j->error, sizeof j->error, "%s", error);
    j->safe = j->text.n;
    int t = 0;
    while (t < j->n_toks && j->toks[t].text_start < j->text.n) t++;
    j->n_safe_toks = t;
    j->st.t_end = engine_now();
    pthread_cond_broadcast(&j->cv);
}

static void job_finish(gen_job *j, gen_finish f, const char *error) {
    pthread_mutex_lock(&j->mu);
    job_finish_locked(j, f, error);
    pthread_mutex_unlock(&j->mu);
}

/* ---- models and slots ---------------------------------------------------------- */

static void slot_release(engine *e, emodel *em, slot *s, gen_finish f, const char *error) {
    gen_job *j = s->job;
    if (!j) return;
    job_finish(j, f, error);
    if (e->mx) metrics_count_tokens(e->mx, em->name, j->st.n_prompt, j->st.n_cached, j->st.n_gen);
    gen_job_release(j);
    sampler_free(s->smp);
    s->smp = NULL;
    s->job = NULL;
    s->generating = false;
    s->last_used = ++e->tick;
}

static void emodel_free(emodel *em) {
    for (int i = 0; i < em->n_slots; i++) {
        llm_ctx_free(em->slots[i].ctx);
        free(em->slots[i].cached);
    }
    free(em->slots);
    llm_ws_free(em->ws);
    free(em->logits);
    free(em->btok);
    free(em->bseq);
    free(em->bwant);
    free(em->bslot);
    free(em->eog);
    if (em->has_tmpl) chat_template_free(&em->tmpl);
    llm_free(em->m);
    free(em->name);
}

/* Looks up the vocabulary's fill-in-the-middle tokens: the GGUF keys first,
 * then the spellings code models use. */
static void find_fim(emodel *em) {
    const gguf_ctx *g = em->m->gguf;
    static const char *const keys[2][3] = {
        {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"},
        {"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id", "tokenizer.ggml.middle_token_id"}};
    for (int k = 0; k < 2; k++) {
        uint32_t id[3];
        bool ok = true;
        for (int i = 0; i < 3 && ok; i++)
            ok = gguf_find_key(g, keys[k][i]) >= 0 && gguf_get_u32(g, keys[k][i], &id[i], NULL) == 0 &&
                 id[i] < (uint32_t)em->m->hp.n_vocab;
        if (ok) {
            for (int i = 0; i < 3; i++) em->fim[i] = (int32_t)id[i];
            em->has_fim = true;
            return;
        }
    }
    static const char *const names[][3] = {
        {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},       /* Qwen2.5-Coder */
        {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"},             /* StarCoder */
        {"<fim-prefix>", "<fim-suffix>", "<fim-middle>"},             /* SantaCoder */
        {"<PRE>", "<SUF>", "<MID>"},                                  /* Code Llama */
        {"<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>",
         "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>"},       /* DeepSeek-Coder */
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int32_t id[3];
        bool ok = true;
        for (int i = 0; i < 3 && ok; i++) ok = (id[i] = tokenizer_find(em->m->tok, names[k][i], strlen(names[k][i]))) >= 0;
        if (ok) {
            memcpy(em->fim, id, sizeof id);
            em->has_fim = true;
            return;
        }
    }
}

engine *engine_init(const engine_config *cfg, metrics *mx, al_err *err) {
    if (cfg->n_slots < 1 || cfg->n_slots > 256) {
        al_err_set(err, "--parallel %d out of range (1..256)", cfg->n_slots);
        return NULL;
    }
    engine *e = calloc(1, sizeof *e);
    if (!e) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    if (e->cfg.n_batch < 2 * e->cfg.n_slots) e->cfg.n_batch = 2 * e->cfg.n_slots;
    if (e->cfg.queue_max < 0) e->cfg.queue_max = 0;
    e->mx = mx;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    return e;
}

int engine_add_model(engine *e, const char *name, const char *path, const char *tmpl_name, al_err *err) {
    if (e->started) return al_err_set(err, "models are added before the engine starts");
    if (engine_find_model(e, name) >= 0) return al_err_set(err, "two models named '%s'", name);
    emodel *nm = realloc(e->models, (size_t)(e->n_models + 1) * sizeof *nm);
    if (!nm) return al_err_set(err, "out of memory");
    e->models = nm;
    emodel *em = &e->models[e->n_models];
    memset(em, 0, sizeof *em);
    if (!(em->name = strdup(name))) return al_err_set(err, "out of memory");
    if (!(em->m = llm_load(path, err))) {
        emodel_free(em);
        return al_err_prefix(err, "model '%s'", name);
    }
    al_err terr;
    if (llm_chat_template_init(em->m, tmpl_name, &em->tmpl, &terr) == 0) em->has_tmpl = true;
    else if (tmpl_name) {
        emodel_free(em);
        return al_err_set(err, "model '%s': %s", name, terr.msg);
    } else snprintf(em->tmpl_err, sizeof em->tmpl_err, "%s", terr.msg);
    find_fim(em);
    const llm_hparams *hp = &em->m->hp;
    for (int pass = 0; pass < 2; pass++) { /* count, then fill */
        em->n_eog = 0;
        for (int32_t t = 0; t < hp->n_vocab; t++)
            if (tokenizer_is_eog(em->m->tok, t)) {
                if (pass) em->eog[em->n_eog] = t;
                em->n_eog++;
            }
        if (!pass && !(em->eog = malloc(((size_t)em->n_eog + 1) * sizeof *em->eog))) {
            emodel_free(em);
            return al_err_set(err, "out of memory");
        }
    }
    int n_ctx = e->cfg.n_ctx;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train > 0 && hp->n_ctx_train < 8192 ? hp->n_ctx_train : 8192;
    em->n_ctx = n_ctx;
    int S = e->cfg.n_slots, B = e->cfg.n_batch;
    em->ws = llm_ws_init(em->m, B, err);
    em->logits = malloc((size_t)S * (size_t)hp->n_vocab * sizeof(float));
    em->slots = calloc((size_t)S, sizeof *em->slots);
    if (em->slots) em->n_slots = S;
    em->btok = malloc((size_t)B * sizeof *em->btok);
    em->bseq = malloc((size_t)B * sizeof *em->bseq);
    em->bwant = malloc((size_t)B * sizeof *em->bwant);
    em->bslot = malloc((size_t)B * sizeof *em->bslot);
    if (!em->ws || !em->logits || !em->slots || !em->btok || !em->bseq || !em->bwant || !em->bslot) {
        emodel_free(em);
        return al_err_set(err, "model '%s': out of memory for %d slots", name, S);
    }
    for (int i = 0; i < S; i++) {
        slot *s = &em->slots[i];
        s->ctx = llm_ctx_init_batch(em->m, n_ctx, e->cfg.kv, 0, err);
        s->cached = malloc((size_t)n_ctx * sizeof *s->cached);
        if (!s->ctx || !s->cached) {
            if (s->ctx) al_err_set(err, "out of memory");
            al_err_prefix(err, "model '%s', slot %d", name, i);
            emodel_free(em);
            return -1;
        }
    }
    e->n_models++;
    return 0;
}

int engine_n_models(const engine *e) { return e->n_models; }

int engine_find_model(const engine *e, const char *name) {
    for (int i = 0; i < e->n_models; i++)
        if (strcmp(e->models[i].name, name) == 0) return i;
    return -1;
}

const char *engine_model_name(const engine *e, int i) { return e->models[i].name; }
const llm_model *engine_model(const engine *e, int i) { return e->models[i].m; }
int engine_n_ctx(const engine *e, int i) { return e->models[i].n_ctx; }

const chat_template *engine_template(const engine *e, int i, al_err *err) {
    if (e->models[i].has_tmpl) return &e->models[i].tmpl;
    al_err_set(err, "model '%s' cannot chat: %s (airlock serve --chat-template NAME)",
               e->models[i].name, e->models[i].tmpl_err);
    return NULL;
}

int engine_fim_tokens(const engine *e, int i, int32_t out[3]) {
    if (!e->models[i].has_fim) return -1;
    memcpy(out, e->models[i].fim, sizeof e->models[i].fim);
    return 0;
}

/* ---- scheduling --------------------------------------------------------------------- */

engine_submit_rc engine_submit(engine *e, int mi, const int32_t *prompt, int n, gen_params *p, gen_job **out, al_err *err) {
    *out = NULL;
    emodel *em = &e->models[mi];
    if (n < 1) {
        params_free(p);
        al_err_set(err, "the prompt is empty");
        return ENGINE_ERROR;
    }
    if (n >= em->n_ctx) {
        params_free(p);
        al_err_set(err, "the prompt has %d tokens; the context holds %d (prompt plus at least one generated token)", n,
                   em->n_ctx);
        return ENGINE_ERROR;
    }
    for (int i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= em->m->hp.n_vocab) {
            params_free(p);
            al_err_set(err, "prompt token %d is id %d, outside the vocabulary (0..%d)", i, prompt[i], em->m->hp.n_vocab - 1);
            return ENGINE_ERROR;
        }
    pthread_mutex_lock(&e->mu);
    if (e->stop || e->qlen >= e->cfg.queue_max) {
        bool stopping = e->stop;
        pthread_mutex_unlock(&e->mu);
        params_free(p);
        if (stopping) {
            al_err_set(err, "the server is shutting down");
            return ENGINE_ERROR;
        }
        return ENGINE_QUEUE_FULL;
    }
    gen_job *j = job_new(mi, prompt, n, p);
    if (!j) {
        pthread_mutex_unlock(&e->mu);
        params_free(p);
        al_err_set(err, "out of memory");
        return ENGINE_ERROR;
    }
    if (e->qtail) e->qtail->next = j;
    else e->qhead = j;
    e->qtail = j;
    e->qlen++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *out = j;
    return ENGINE_OK;
}

/* The free slot whose cache shares the longest prefix with the prompt (the
 * least recently used among equals). Returns its index or -1; *lcp gets the
 * shared length. */
static int pick_slot(const emodel *em, int n_slots, const gen_job *j, int *lcp) {
    int best = -1, best_l = -1;
    for (int i = 0; i < n_slots; i++) {
        const slot *s = &em->slots[i];
        if (s->job) continue;
        int l = 0, lim = s->ctx->pos < j->n_prompt ? s->ctx->pos : j->n_prompt;
        while (l < lim && s->cached[l] == j->prompt[l]) l++;
        if (l > best_l || (l == best_l && s->last_used < em->slots[best].last_used)) {
            best = i;
            best_l = l;
        }
    }
    *lcp = best_l;
    return best;
}

/* Moves queued jobs into free slots (engine mutex held). */
static void admit(engine *e) {
    gen_job **pp = &e->qhead, *prev = NULL;
    while (*pp) {
        gen_job *j = *pp;
        emodel *em = &e->models[j->model];
        int lcp = 0, si = -1;
        bool cancelled = atomic_load(&j->cancel);
        if (!cancelled) si = pick_slot(em, e->cfg.n_slots, j, &lcp);
        if (!cancelled && si < 0) {
            prev = j;
            pp = &j->next;
            continue;
        }
        *pp = j->next; /* unlink */
        if (e->qtail == j) e->qtail = prev;
        j->next = NULL;
        e->qlen--;
        if (cancelled) {
            job_finish(j, GEN_FINISH_CANCELLED, NULL);
            gen_job_release(j);
            continue;
        }
        slot *s = &em->slots[si];
        if (lcp >= j->n_prompt) lcp = j->n_prompt - 1; /* the last prompt token is run again for its logits */
        s->ctx->pos = lcp;
        s->n_fed = lcp;
        s->job = j;
        s->generating = false;
        s->smp = sampler_init(&j->p.sp, em->m->hp.n_vocab);
        pthread_mutex_lock(&j->mu);
        j->st.n_cached = lcp;
        pthread_mutex_unlock(&j->mu);
        if (!s->smp) {
            slot_release(e, em, s, GEN_FINISH_ERROR, "out of memory");
            continue;
        }
        int from = j->n_prompt > j->p.sp.penalty_last_n ? j->n_prompt - j->p.sp.penalty_last_n : 0;
        for (int i = from; i < j->n_prompt; i++) sampler_accept(s->smp, j->prompt[i]);
    }
}

/* log-softmax of the chosen token and the n best alternatives. */
static void token_logprobs(const float *lg, int V, gen_token *t, int n_top) {
    float mx = lg[0];
    for (int i = 1; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)(lg[i] - mx));
    float lse = mx + (float)log(sum);
    t->logprob = lg[t->id] - lse;
    t->n_top = 0;
    for (int i = 0; i < V && n_top > 0; i++) {
        float v = lg[i] - lse;
        if (t->n_top == n_top && v <= t->top_lp[n_top - 1]) continue;
        int k = t->n_top < n_top ? t->n_top++ : n_top - 1;
        while (k > 0 && t->top_lp[k - 1] < v) {
            t->top_lp[k] = t->top_lp[k - 1];
            t->top_id[k] = t->top_id[k - 1];
            k--;
        }
        t->top_lp[k] = v;
        t->top_id[k] = i;
    }
}

/* Samples the slot's next token from its logits and appends it to the job:
 * text, stop strings, limits, metrics. Frees the slot when the job ends. */
static void slot_take_token(engine *e, emodel *em, slot *s, float *lg) {
    gen_job *j = s->job;
    const tokenizer *tok = em->m->tok;
    if (j->p.ignore_eos)
        for (int i = 0; i < em->n_eog; i++) lg[em->eog[i]] = -INFINITY;
    int32_t t = sampler_sample(s->smp, lg);
    double now = engine_now();
    if (e->mx) {
        if (j->st.n_gen == 0) metrics_observe(e->mx, METRICS_HIST_TTFT, now - j->st.t_submit);
        else metrics_observe(e->mx, METRICS_HIST_TOKEN_LATENCY, now - s->t_last);
    }
    s->t_last = now;
    if (tokenizer_is_eog(tok, t)) {
        pthread_mutex_lock(&j->mu);
        if (j->st.t_first == 0) j->st.t_first = now;
        pthread_mutex_unlock(&j->mu);
        slot_release(e, em, s, GEN_FINISH_STOP, NULL);
        return;
    }
    sampler_accept(s->smp, t);
    gen_token gt = {.id = t};
    if (j->p.logprobs >= 0) token_logprobs(lg, em->m->hp.n_vocab, &gt, j->p.logprobs);
    char buf[512];
    int k = tokenizer_token_to_piece(tok, t, false, buf, sizeof buf);
    char *piece = buf;
    if (k > (int)sizeof buf) {
        piece = malloc((size_t)k);
        if (!piece || tokenizer_token_to_piece(tok, t, false, piece, (size_t)k) != k) {
            free(piece == buf ? NULL : piece);
            slot_release(e, em, s, GEN_FINISH_ERROR, "out of memory");
            return;
        }
    }
    gen_finish fin = GEN_RUNNING;
    pthread_mutex_lock(&j->mu);
    if (j->st.t_first == 0) j->st.t_first = now;
    if (j->n_toks == j->cap_toks) {
        int nc = j->cap_toks ? j->cap_toks * 2 : 64;
        gen_token *nt = realloc(j->toks, (size_t)nc * sizeof *nt);
        if (nt) {
            j->toks = nt;
            j->cap_toks = nc;
        }
    }
    size_t before = j->text.n;
    gt.text_start = before;
    if (j->n_toks < j->cap_toks) j->toks[j->n_toks++] = gt;
    else fin = GEN_FINISH_ERROR;
    if (k > 0) strbuf_put(&j->text, piece, (size_t)k);
    if (j->text.oom) fin = GEN_FINISH_ERROR;
    j->st.n_gen++;
    /* a stop string ending in the new text ends the generation before it */
    size_t from = before > GEN_STOP_MAX_LEN ? before - GEN_STOP_MAX_LEN : 0;
    size_t cut = (size_t)-1;
    for (int i = 0; i < j->p.n_stop && fin == GEN_RUNNING && j->text.s; i++) {
        const char *hit = memmem(j->text.s + from, j->text.n - from, j->p.stop[i], strlen(j->p.stop[i]));
        if (hit && (size_t)(hit - j->text.s) < cut) cut = (size_t)(hit - j->text.s);
    }
    if (cut != (size_t)-1) {
        j->text.n = cut;
        j->text.s[cut] = 0;
        fin = GEN_FINISH_STOP;
    } else if (fin == GEN_RUNNING && j->st.n_gen >= j->p.max_tokens) fin = GEN_FINISH_LENGTH;
    else if (fin == GEN_RUNNING && s->ctx->pos >= s->ctx->n_ctx) fin = GEN_FINISH_LENGTH;
    if (fin == GEN_RUNNING) {
        job_update_safe(j);
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    if (piece != buf) free(piece);
    if (fin != GEN_RUNNING) {
        slot_release(e, em, s, fin, fin == GEN_FINISH_ERROR ? "out of memory" : NULL);
        return;
    }
    s->next_tok = t;
    s->generating = true;
}

/* One forward pass for a model: a token from every generating slot, then
 * prompt chunks up to the batch size. Returns the number of tokens run. */
static int step_model(engine *e, emodel *em) {
    const int S = e->cfg.n_slots, B = e->cfg.n_batch;
    int nb = 0;
    for (int i = 0; i < S; i++) {
        slot *s = &em->slots[i];
        if (!s->job) continue;
        if (atomic_load(&s->job->cancel)) {
            slot_release(e, em, s, GEN_FINISH_CANCELLED, NULL);
            continue;
        }
        if (!s->generating) continue;
        if (s->ctx->pos >= s->ctx->n_ctx) { /* cannot feed the last sampled token */
            slot_release(e, em, s, GEN_FINISH_LENGTH, NULL);
            continue;
        }
        s->cached[s->ctx->pos] = s->next_tok;
        em->btok[nb] = s->next_tok;
        em->bseq[nb] = s->ctx;
        em->bwant[nb] = true;
        em->bslot[nb] = i;
        nb++;
    }
    for (int i = 0; i < S && nb < B; i++) {
        slot *s = &em->slots[i];
        if (!s->job || s->generating) continue;
        gen_job *j = s->job;
        int k = j->n_prompt - s->n_fed;
        if (k > B - nb) k = B - nb;
        for (int t = 0; t < k; t++) {
            int32_t id = j->prompt[s->n_fed + t];
            s->cached[s->ctx->pos + t] = id;
            em->btok[nb] = id;
            em->bseq[nb] = s->ctx;
            em->bwant[nb] = s->n_fed + t == j->n_prompt - 1;
            em->bslot[nb] = i;
            nb++;
        }
        s->n_fed += k;
    }
    if (nb == 0) return 0;
    llm_batch b = {.n = nb, .tokens = em->btok, .seq = em->bseq, .want_logits = em->bwant};
    al_err err;
    int n_out = llm_forward(em->ws, &b, em->logits, &err);
    if (n_out < 0) {
        for (int t = 0; t < nb; t++) {
            slot *s = &em->slots[em->bslot[t]];
            if (s->job) slot_release(e, em, s, GEN_FINISH_ERROR, err.msg);
        }
        return nb;
    }
    int row = 0;
    for (int t = 0; t < nb; t++) {
        if (!em->bwant[t]) continue;
        slot *s = &em->slots[em->bslot[t]];
        float *lg = em->logits + (size_t)row++ * (size_t)em->m->hp.n_vocab;
        if (s->job) slot_take_token(e, em, s, lg);
    }
    return nb;
}

static void update_gauges(engine *e) {
    if (!e->mx) return;
    int busy = 0;
    int64_t used = 0, cap = 0;
    for (int m = 0; m < e->n_models; m++)
        for (int i = 0; i < e->cfg.n_slots; i++) {
            const slot *s = &e->models[m].slots[i];
            busy += s->job != NULL;
            used += s->ctx->pos;
            cap += s->ctx->n_ctx;
        }
    metrics_set_load(e->mx, e->qlen, busy, e->n_models * e->cfg.n_slots, used, cap);
}

static void *engine_main(void *arg) {
    engine *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        admit(e);
        update_gauges(e);
        bool busy = false;
        for (int m = 0; m < e->n_models && !busy; m++)
            for (int i = 0; i < e->cfg.n_slots && !busy; i++) busy = e->models[m].slots[i].job != NULL;
        if (!busy) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        for (int m = 0; m < e->n_models; m++) step_model(e, &e->models[m]);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int engine_start(engine *e, al_err *err) {
    if (e->n_models == 0) return al_err_set(err, "no model to serve");
    if (pthread_create(&e->thr, NULL, engine_main, e) != 0) return al_err_set(err, "cannot start the engine thread");
    e->started = true;
    return 0;
}

void engine_stop(engine *e) {
    pthread_mutex_lock(&e->mu);
    bool was = e->stop;
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (was) return;
    if (e->started) pthread_join(e->thr, NULL);
    pthread_mutex_lock(&e->mu);
    while (e->qhead) {
        gen_job *j = e->qhead;
        e->qhead = j->next;
        job_finish(j, GEN_FINISH_CANCELLED, "the server is shutting down");
        gen_job_release(j);
    }
    e->qtail = NULL;
    e->qlen = 0;
    pthread_mutex_unlock(&e->mu);
    for (int m = 0; m < e->n_models; m++)
        for (int i = 0; i < e->cfg.n_slots; i++)
            if (e->models[m].slots[i].job)
                slot_release(e, &e->models[m], &e->models[m].slots[i], GEN_FINISH_CANCELLED, "the server is shutting down");
}

void engine_free(engine *e) {
    if (!e) return;
    engine_stop(e);
    for (int m = 0; m < e->n_models; m++) emodel_free(&e->models[m]);
    free(e->models);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}
