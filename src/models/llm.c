/* llm.c - loading and running LLaMA-family models, one token at a time.
 *
 * The forward pass, read top to bottom, is llm_decode(). */
#include "models/llm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/quants.h"

const char *llm_arch_name(llm_arch a) {
    switch (a) {
    case LLM_ARCH_LLAMA: return "llama";
    case LLM_ARCH_QWEN2: return "qwen2";
    case LLM_ARCH_QWEN3: return "qwen3";
    }
    return "?";
}

/* ---- loading --------------------------------------------------------------------- */

typedef struct loader {
    llm_model *m;
    const char *arch;
    al_err *err;
    char key[128];
} loader;

static const char *akey(loader *l, const char *suffix) {
    snprintf(l->key, sizeof l->key, "%s.%s", l->arch, suffix);
    return l->key;
}

static int get_int(loader *l, const char *suffix, int *out, int dflt, bool required) {
    const char *key = akey(l, suffix);
    if (gguf_find_key(l->m->gguf, key) < 0) {
        if (required) return al_err_set(l->err, "%s: metadata key '%s' is missing", l->m->gguf->path, key);
        *out = dflt;
        return 0;
    }
    uint32_t v;
    if (gguf_get_u32(l->m->gguf, key, &v, l->err)) return -1;
    if (v > (1u << 30)) return al_err_set(l->err, "%s: metadata '%s' = %u is out of range", l->m->gguf->path, key, v);
    *out = (int)v;
    return 0;
}

static int get_float(loader *l, const char *suffix, float *out, float dflt) {
    const char *key = akey(l, suffix);
    if (gguf_find_key(l->m->gguf, key) < 0) {
        *out = dflt;
        return 0;
    }
    return gguf_get_f32(l->m->gguf, key, out, l->err);
}

/* Finds tensor `name` and checks its shape ([ne0, ne1], ne1 = 0 for 1-D). */
static const gguf_tensor *find(loader *l, const char *name, int64_t ne0, int64_t ne1, bool required) {
    const gguf_tensor *t = gguf_find_tensor(l->m->gguf, name);
    if (!t) {
        if (required) al_err_set(l->err, "%s: missing tensor '%s'", l->m->gguf->path, name);
        return NULL;
    }
    int want_dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == ne0 && (ne1 ? t->ne[1] == ne1 : t->ne[1] == 1) && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok || (int)t->n_dims > want_dims) {
        if (ne1)
            al_err_set(l->err, "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", l->m->gguf->path, name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], (long long)ne0, (long long)ne1);
        else
            al_err_set(l->err, "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld]", l->m->gguf->path, name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], (long long)ne0);
        return NULL;
    }
    return t;
}

static int get_vec(loader *l, const char *name, int64_t n, const float **out, bool required) {
    *out = NULL;
    const gguf_tensor *t = find(l, name, n, 0, required);
    if (!t) return required || gguf_find_tensor(l->m->gguf, name) ? -1 : 0;
    if (t->type != GGML_TYPE_F32)
        return al_err_set(l->err, "%s: tensor '%s' has type %s, expected F32", l->m->gguf->path, name, ggml_type_name(t->type));
    *out = t->data;
    return 0;
}

static int get_mat(loader *l, const char *name, int64_t n_in, int64_t n_out, weight *w, bool required) {
    memset(w, 0, sizeof *w);
    const gguf_tensor *t = find(l, name, n_in, n_out, required);
    if (!t) return required || gguf_find_tensor(l->m->gguf, name) ? -1 : 0;
    if (!quant_can_dequantize(t->type))
        return al_err_set(l->err, "%s: tensor '%s' has type %s, which airlock cannot run", l->m->gguf->path, name,
                          ggml_type_name(t->type));
    w->type = t->type;
    w->n_cols = n_in;
    w->n_rows = n_out;
    w->row_bytes = ggml_row_size(t->type, n_in);
    w->data = t->data;
    return 0;
}

static int load_hparams(loader *l) {
    llm_model *m = l->m;
    llm_hparams *hp = &m->hp;
    if (get_int(l, "embedding_length", &hp->n_embd, 0, true) || get_int(l, "block_count", &hp->n_layer, 0, true) ||
        get_int(l, "feed_forward_length", &hp->n_ff, 0, true) || get_int(l, "attention.head_count", &hp->n_head, 0, true) ||
        get_int(l, "attention.head_count_kv", &hp->n_head_kv, hp->n_head, false) ||
        get_int(l, "context_length", &hp->n_ctx_train, 2048, false))
        return -1;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_ff <= 0)
        return al_err_set(l->err, "%s: hyperparameters must be positive", m->gguf->path);
    if (hp->n_head % hp->n_head_kv != 0)
        return al_err_set(l->err, "%s: head_count %d is not a multiple of head_count_kv %d", m->gguf->path, hp->n_head, hp->n_head_kv);
    if (get_int(l, "attention.key_length", &hp->head_dim, hp->n_embd / hp->n_head, false)) return -1;
    int vlen;
    if (get_int(l, "attention.value_length", &vlen, hp->head_dim, false)) return -1;
    if (vlen != hp->head_dim) return al_err_set(l->err, "%s: value_length %d != key_length %d is not supported", m->gguf->path, vlen, hp->head_dim);
    if (hp->head_dim <= 0 || hp->head_dim % 2) return al_err_set(l->err, "%s: bad head size %d", m->gguf->path, hp->head_dim);
    if (get_int(l, "rope.dimension_count", &hp->rope_dim, hp->head_dim, false)) return -1;
    if (hp->rope_dim <= 0 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
        return al_err_set(l->err, "%s: rope.dimension_count %d does not fit head size %d", m->gguf->path, hp->rope_dim, hp->head_dim);
    if (get_float(l, "rope.freq_base", &hp->rope_base, 10000.0f) ||
        get_float(l, "attention.layer_norm_rms_epsilon", &hp->rms_eps, 1e-5f))
        return -1;
    hp->rope_freq_scale = 1.0f;
    const char *st_key = akey(l, "rope.scaling.type");
    if (gguf_find_key(m->gguf, st_key) >= 0) {
        gguf_str st;
        if (gguf_get_str(m->gguf, st_key, &st, l->err)) return -1;
        if (st.len == 6 && memcmp(st.ptr, "linear", 6) == 0) {
            float f;
            if (get_float(l, "rope.scaling.factor", &f, 1.0f)) return -1;
            if (f > 0) hp->rope_freq_scale = 1.0f / f;
        } else if (!(st.len == 4 && memcmp(st.ptr, "none", 4) == 0) && !(st.len == 4 && memcmp(st.ptr, "yarn", 4) == 0)) {
            return al_err_set(l->err, "%s: rope scaling '%.*s' is not supported", m->gguf->path, (int)(st.len > 32 ? 32 : st.len), st.ptr);
        }
    }
    hp->rope_neox = hp->arch != LLM_ARCH_LLAMA;
    return 0;
}

static int load_tensors(loader *l) {
    llm_model *m = l->m;
    llm_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, V = hp->n_vocab, F = hp->n_ff, Q = (int64_t)hp->n_head * hp->head_dim,
            KV = (int64_t)hp->n_head_kv * hp->head_dim;
    if (get_mat(l, "token_embd.weight", E, V, &m->tok_embd, true)) return -1;
    if (get_vec(l, "output_norm.weight", E, &m->output_norm, true)) return -1;
    if (get_mat(l, "output.weight", E, V, &m->output, false)) return -1;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    if (get_vec(l, "rope_freqs.weight", hp->rope_dim / 2, &m->rope_freqs, false)) return -1;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return al_err_set(l->err, "out of memory");
    for (int i = 0; i < hp->n_layer; i++) {
        llm_layer *L = &m->layers[i];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, i), n)
        if (get_vec(l, NAME("attn_norm.weight"), E, &L->attn_norm, true) ||
            get_mat(l, NAME("attn_q.weight"), E, Q, &L->wq, true) || get_mat(l, NAME("attn_k.weight"), E, KV, &L->wk, true) ||
            get_mat(l, NAME("attn_v.weight"), E, KV, &L->wv, true) || get_mat(l, NAME("attn_output.weight"), Q, E, &L->wo, true) ||
            get_vec(l, NAME("ffn_norm.weight"), E, &L->ffn_norm, true) ||
            get_mat(l, NAME("ffn_gate.weight"), E, F, &L->w_gate, true) || get_mat(l, NAME("ffn_up.weight"), E, F, &L->w_up, true) ||
            get_mat(l, NAME("ffn_down.weight"), F, E, &L->w_down, true))
            return -1;
        bool need_bias = hp->arch == LLM_ARCH_QWEN2;
        if (get_vec(l, NAME("attn_q.bias"), Q, &L->bq, need_bias) || get_vec(l, NAME("attn_k.bias"), KV, &L->bk, need_bias) ||
            get_vec(l, NAME("attn_v.bias"), KV, &L->bv, need_bias))
            return -1;
        bool need_qk_norm = hp->arch == LLM_ARCH_QWEN3;
        if (get_vec(l, NAME("attn_q_norm.weight"), hp->head_dim, &L->q_norm, need_qk_norm) ||
            get_vec(l, NAME("attn_k_norm.weight"), hp->head_dim, &L->k_norm, need_qk_norm))
            return -1;
#undef NAME
    }
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) m->weight_bytes += m->gguf->tensors[i].nbytes;
    return 0;
}

llm_model *llm_load(const char *path, al_err *err) {
    llm_model *m = calloc(1, sizeof *m);
    if (!m) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    loader l = {.m = m, .err = err};
    m->gguf = gguf_open(path, err);
    if (!m->gguf) goto fail;
    gguf_str arch;
    if (gguf_get_str(m->gguf, "general.architecture", &arch, err)) goto fail;
    if (arch.len == 5 && memcmp(arch.ptr, "llama", 5) == 0) m->hp.arch = LLM_ARCH_LLAMA;
    else if (arch.len == 5 && memcmp(arch.ptr, "qwen2", 5) == 0) m->hp.arch = LLM_ARCH_QWEN2;
    else if (arch.len == 5 && memcmp(arch.ptr, "qwen3", 5) == 0) m->hp.arch = LLM_ARCH_QWEN3;
    else {
        al_err_set(err, "%s: unsupported architecture '%.*s' (supported: llama, qwen2, qwen3)", path,
                   (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
        goto fail;
    }
    l.arch = llm_arch_name(m->hp.arch);
    if (load_hparams(&l)) goto fail;
    m->tok = tokenizer_load(m->gguf, err);
    if (!m->tok) goto fail;
    m->hp.n_vocab = tokenizer_n_vocab(m->tok);
    if (load_tensors(&l)) goto fail;
    return m;
fail:
    llm_free(m);
    return NULL;
}

void llm_free(llm_model *m) {
    if (!m) return;
    free(m->layers);
    tokenizer_free(m->tok);
    gguf_close(m->gguf);
    free(m);
}

/* ---- context ---------------------------------------------------------------------- */

llm_ctx *llm_ctx_init(const llm_model *m, int n_ctx, kv_type kv, al_err *err) {
    const llm_hparams *hp = &m->hp;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train;
    if (n_ctx <= 0 || n_ctx > (1 << 24)) {
        al_err_set(err, "context size %d out of range", n_ctx);
        return NULL;
    }
    llm_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    c->m = m;
    c->n_ctx = n_ctx;
    c->kv = kv;
    size_t kvd = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    size_t elem = kv == KV_F16 ? 2 : 4;
    size_t cache = (size_t)hp->n_layer * (size_t)n_ctx * kvd * elem;
    int qd = hp->n_head * hp->head_dim;
    int maxrow = hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff;
    if (qd > maxrow) maxrow = qd;
    c->k_cache = malloc(cache);
    c->v_cache = malloc(cache);
    c->x = calloc((size_t)hp->n_embd, sizeof(float));
    c->xb = calloc((size_t)(qd > hp->n_embd ? qd : hp->n_embd), sizeof(float));
    c->xb2 = calloc((size_t)hp->n_embd, sizeof(float));
    c->q = calloc((size_t)qd, sizeof(float));
    c->k = calloc(kvd, sizeof(float));
    c->v = calloc(kvd, sizeof(float));
    c->att = calloc((size_t)hp->n_head * (size_t)n_ctx, sizeof(float));
    c->hb = calloc((size_t)hp->n_ff, sizeof(float));
    c->hb2 = calloc((size_t)hp->n_ff, sizeof(float));
    c->scratch = calloc((size_t)maxrow, sizeof(float));
    c->logits = calloc((size_t)hp->n_vocab, sizeof(float));
    if (!c->k_cache || !c->v_cache || !c->x || !c->xb || !c->xb2 || !c->q || !c->k || !c->v || !c->att || !c->hb ||
        !c->hb2 || !c->scratch || !c->logits) {
        al_err_set(err, "out of memory for a %d-token context (%.1f MiB of KV cache)", n_ctx, 2.0 * (double)cache / 1048576.0);
        llm_ctx_free(c);
        return NULL;
    }
    return c;
}

void llm_ctx_free(llm_ctx *c) {
    if (!c) return;
    free(c->k_cache);
    free(c->v_cache);
    free(c->x);
    free(c->xb);
    free(c->xb2);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->hb);
    free(c->hb2);
    free(c->scratch);
    free(c->logits);
    free(c);
}

void llm_ctx_reset(llm_ctx *c) { c->pos = 0; }

uint64_t llm_ctx_kv_bytes(const llm_ctx *c) {
    const llm_hparams *hp = &c->m->hp;
    return 2ull * (uint64_t)hp->n_layer * (uint64_t)c->n_ctx * (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim *
           (c->kv == KV_F16 ? 2u : 4u);
}

/* Stores n floats at element offset `at` of a cache. */
static void kv_store(const llm_ctx *c, void *cache, size_t at, const float *src, int n) {
    if (c->kv == KV_F32) {
        memcpy((float *)cache + at, src, (size_t)n * sizeof(float));
    } else {
        uint16_t *d = (uint16_t *)cache + at;
        for (int i = 0; i < n; i++) d[i] = fp32_to_fp16(src[i]);
    }
}

static inline float kv_load(const llm_ctx *c, const void *cache, size_t at) {
    return c->kv == KV_F32 ? ((const float *)cache)[at] : fp16_to_fp32(((const uint16_t *)cache)[at]);
}

static void add_bias(float *x, const float *b, int n) {
    if (b)
        for (int i = 0; i < n; i++) x[i] += b[i];
}

/* ---- forward pass ------------------------------------------------------------------ */

const float *llm_decode(llm_ctx *c, int32_t token, al_err *err) {
    const llm_model *m = c->m;
    const llm_hparams *hp = &m->hp;
    if (token < 0 || token >= hp->n_vocab) {
        al_err_set(err, "token id %d is outside the vocabulary (0..%d)", token, hp->n_vocab - 1);
        return NULL;
    }
    if (c->pos >= c->n_ctx) {
        al_err_set(err, "context is full (%d tokens); start a new sequence or use a larger context (-c)", c->n_ctx);
        return NULL;
    }
    const int E = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv;
    const int kvd = nkv * hd, group = nh / nkv, pos = c->pos;
    const float att_scale = 1.0f / sqrtf((float)hd);

    /* x[E] = embedding row of the token */
    op_get_row(&m->tok_embd, token, c->x);

    for (int l = 0; l < hp->n_layer; l++) {
        const llm_layer *L = &m->layers[l];
        size_t layer_off = (size_t)l * (size_t)c->n_ctx * (size_t)kvd;

        /* attention: xb[E] = rmsnorm(x); q[nh*hd], k[kvd], v[kvd] */
        op_rmsnorm(c->xb, c->x, L->attn_norm, E, hp->rms_eps);
        op_matvec(c->q, &L->wq, c->xb, c->scratch);
        op_matvec(c->k, &L->wk, c->xb, c->scratch);
        op_matvec(c->v, &L->wv, c->xb, c->scratch);
        add_bias(c->q, L->bq, nh * hd);
        add_bias(c->k, L->bk, kvd);
        add_bias(c->v, L->bv, kvd);
        for (int h = 0; h < nh; h++) {
            float *qh = c->q + h * hd;
            if (L->q_norm) op_rmsnorm(qh, qh, L->q_norm, hd, hp->rms_eps);
            op_rope(qh, hp->rope_dim, pos, hp->rope_base, hp->rope_freq_scale, m->rope_freqs, hp->rope_neox);
        }
        for (int h = 0; h < nkv; h++) {
            float *kh = c->k + h * hd;
            if (L->k_norm) op_rmsnorm(kh, kh, L->k_norm, hd, hp->rms_eps);
            op_rope(kh, hp->rope_dim, pos, hp->rope_base, hp->rope_freq_scale, m->rope_freqs, hp->rope_neox);
        }
        kv_store(c, c->k_cache, layer_off + (size_t)pos * (size_t)kvd, c->k, kvd);
        kv_store(c, c->v_cache, layer_off + (size_t)pos * (size_t)kvd, c->v, kvd);

        /* per head: att[t] = softmax(q . k_t / sqrt(hd)) over t <= pos; xb[h*hd..] = sum_t att[t] v_t */
        for (int h = 0; h < nh; h++) {
            const float *qh = c->q + h * hd;
            float *att = c->att + (size_t)h * (size_t)c->n_ctx;
            size_t kvh = (size_t)(h / group) * (size_t)hd;
            for (int t = 0; t <= pos; t++) {
                size_t base = layer_off + (size_t)t * (size_t)kvd + kvh;
                float s = 0.0f;
                for (int i = 0; i < hd; i++) s += qh[i] * kv_load(c, c->k_cache, base + (size_t)i);
                att[t] = s * att_scale;
            }
            op_softmax(att, pos + 1);
            float *out = c->xb + h * hd;
            memset(out, 0, (size_t)hd * sizeof(float));
            for (int t = 0; t <= pos; t++) {
                size_t base = layer_off + (size_t)t * (size_t)kvd + kvh;
                float a = att[t];
                for (int i = 0; i < hd; i++) out[i] += a * kv_load(c, c->v_cache, base + (size_t)i);
            }
        }
        /* x += Wo xb */
        op_matvec(c->xb2, &L->wo, c->xb, c->scratch);
        for (int i = 0; i < E; i++) c->x[i] += c->xb2[i];

        /* feed-forward: x += W_down (silu(W_gate xb) * (W_up xb)) */
        op_rmsnorm(c->xb, c->x, L->ffn_norm, E, hp->rms_eps);
        op_matvec(c->hb, &L->w_gate, c->xb, c->scratch);
        op_matvec(c->hb2, &L->w_up, c->xb, c->scratch);
        op_swiglu(c->hb, c->hb, c->hb2, hp->n_ff);
        op_matvec(c->xb2, &L->w_down, c->hb, c->scratch);
        for (int i = 0; i < E; i++) c->x[i] += c->xb2[i];
    }

    /* logits[V] = W_out rmsnorm(x) */
    op_rmsnorm(c->x, c->x, m->output_norm, E, hp->rms_eps);
    op_matvec(c->logits, &m->output, c->x, c->scratch);
    c->pos++;
    return c->logits;
}
