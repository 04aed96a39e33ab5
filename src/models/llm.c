/* llm.c - loading and running LLaMA-family models.
 *
 * The forward pass, read top to bottom, is llm_forward(): a batch of tokens
 * (one prompt, or the next token of many sequences) goes through each layer
 * together, so every weight matrix is read once per batch. */
#include "models/llm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/attn.h"
#include "kernels/qdot.h"
#include "kernels/quants.h"

int llm_hparams_write(gguf_writer *w, const llm_hparams *hp) {
    const char *arch = llm_arch_name(hp->arch);
    char key[128];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    int rc = gguf_writer_add_str(w, "general.architecture", arch);
    rc |= gguf_writer_add_u32(w, K("context_length"), (uint32_t)hp->n_ctx_train);
    rc |= gguf_writer_add_u32(w, K("embedding_length"), (uint32_t)hp->n_embd);
    rc |= gguf_writer_add_u32(w, K("block_count"), (uint32_t)hp->n_layer);
    rc |= gguf_writer_add_u32(w, K("feed_forward_length"), (uint32_t)hp->n_ff);
    rc |= gguf_writer_add_u32(w, K("attention.head_count"), (uint32_t)hp->n_head);
    rc |= gguf_writer_add_u32(w, K("attention.head_count_kv"), (uint32_t)hp->n_head_kv);
    rc |= gguf_writer_add_u32(w, K("rope.dimension_count"), (uint32_t)hp->rope_dim);
    rc |= gguf_writer_add_f32(w, K("rope.freq_base"), hp->rope_base);
    rc |= gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), hp->rms_eps);
    rc |= gguf_writer_add_u32(w, K("vocab_size"), (uint32_t)hp->n_vocab);
    if (hp->head_dim != hp->n_embd / hp->n_head) {
        rc |= gguf_writer_add_u32(w, K("attention.key_length"), (uint32_t)hp->head_dim);
        rc |= gguf_writer_add_u32(w, K("attention.value_length"), (uint32_t)hp->head_dim);
    }
    if (hp->rope_freq_scale != 1.0f && hp->rope_freq_scale > 0) {
        rc |= gguf_writer_add_str(w, K("rope.scaling.type"), "linear");
        rc |= gguf_writer_add_f32(w, K("rope.scaling.factor"), 1.0f / hp->rope_freq_scale);
    }
#undef K
    return rc ? -1 : 0;
}

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

/* bytes (rounded up to whole 2 MiB pages), 2 MiB-aligned, with the hint
 * that the kernel back them with huge pages where it allows (a failed hint
 * is harmless); free() releases it. NULL when out of memory. */
static void *huge_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    bytes = (bytes + huge - 1) & ~(huge - 1);
    if (posix_memalign(&p, huge, bytes)) return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/* Copies the matrices into one allocation backed by huge pages,
 * rearranging those the SIMD kernels read faster in another layout
 * (kernels/qdot.h), and lets the kernel drop the file pages they came from
 * (they come back from the file if ever needed). Generation streams every
 * matrix once per token: on 4 KiB file pages that costs a TLB miss per
 * page, and in a virtual machine a two-level page walk each (qwen2.5-0.5b
 * Q8_0, one thread: 9-45 tokens/s from run to run on 4 KiB pages, 40-46 on
 * huge ones). The token embedding keeps its file layout for row lookups; a
 * tied output matrix gets its own copy. */
static int repack_weights(llm_model *m, al_err *err) {
    const cpu_level level = cpu_level_get();
    const llm_hparams *hp = &m->hp;
    int n_w = 9 * hp->n_layer + 1;
    weight **ws = malloc((size_t)n_w * sizeof *ws);
    if (!ws) return al_err_set(err, "out of memory");
    int k = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        llm_layer *L = &m->layers[l];
        weight *list[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof list / sizeof *list; i++) ws[k++] = list[i];
    }
    ws[k++] = &m->output;
    size_t total = 0;
    for (int i = 0; i < k; i++) total += ((size_t)ws[i]->n_rows * ws[i]->row_bytes + 63) & ~(size_t)63;
    if (total == 0) {
        free(ws);
        return 0;
    }
    /* streaming the weights from huge pages misses the TLB 512 times less */
    m->repacked = huge_alloc(total);
    if (!m->repacked) {
        free(ws);
        return al_err_set(err, "out of memory rearranging %.1f MiB of weights", (double)total / 1048576.0);
    }
    uint8_t *dst = m->repacked;
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < k; i++) {
        weight *w = ws[i];
        uint32_t rt = qdot_repack_type_at(w->type, w->n_rows, w->n_cols, level);
        size_t bytes = (size_t)w->n_rows * w->row_bytes;
        if (rt) qdot_repack_as(rt, w->type, w->data, dst, w->n_rows, w->n_cols);
        else memcpy(dst, w->data, bytes);
        uintptr_t a = ((uintptr_t)w->data + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
        uintptr_t b = ((uintptr_t)w->data + bytes) & ~(uintptr_t)(page - 1);
        if (w != &m->output || !m->tied_output)
            if (b > a) madvise((void *)a, b - a, MADV_DONTNEED); /* only a hint: failure is harmless */
        if (rt) w->type = rt;
        w->data = dst;
        dst += (bytes + 63) & ~(size_t)63;
    }
    free(ws);
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
    m->rope_theta = malloc((size_t)(m->hp.rope_dim / 2) * sizeof(float));
    if (!m->rope_theta) {
        al_err_set(err, "out of memory");
        goto fail;
    }
    op_rope_theta(m->rope_theta, m->hp.rope_dim, m->hp.rope_base, m->hp.rope_freq_scale, m->rope_freqs);
    if (repack_weights(m, err)) goto fail;
    return m;
fail:
    llm_free(m);
    return NULL;
}

void llm_free(llm_model *m) {
    if (!m) return;
    free(m->layers);
    free(m->rope_theta);
    free(m->repacked);
    tokenizer_free(m->tok);
    gguf_close(m->gguf);
    free(m);
}

/* ---- context ---------------------------------------------------------------------- */

struct llm_ws {
    const llm_model *m;
    int n_batch;
    float *x;         /* [B][n_embd] residual stream */
    float *xb;        /* [B][max(n_embd, q_dim)] normed input / attention output */
    float *xb2;       /* [B][n_embd] */
    float *q;         /* [B][q_dim] */
    float *k, *v;     /* [B][kv_dim] */
    float *hb, *hb2;  /* [B][n_ff] */
    float *rope_cs;   /* [B][rope_dim] cos, sin of each pair at the token's position */
    int *pos;         /* [B] position of each token */
    int *tile;        /* [B] first token of each attention tile (consecutive tokens of one sequence) */
    int n_tiles;
};

static void *xcalloc(size_t n, size_t size) { return n && size ? calloc(n, size) : NULL; }

llm_ws *llm_ws_init(const llm_model *m, int n_batch, al_err *err) {
    const llm_hparams *hp = &m->hp;
    if (n_batch <= 0) n_batch = 1;
    llm_ws *ws = calloc(1, sizeof *ws);
    if (!ws) goto oom;
    ws->m = m;
    ws->n_batch = n_batch;
    size_t B = (size_t)n_batch, E = (size_t)hp->n_embd, qd = (size_t)hp->n_head * (size_t)hp->head_dim,
           kvd = (size_t)hp->n_head_kv * (size_t)hp->head_dim, F = (size_t)hp->n_ff;
    ws->x = xcalloc(B * E, sizeof(float));
    ws->xb = xcalloc(B * (qd > E ? qd : E), sizeof(float));
    ws->xb2 = xcalloc(B * E, sizeof(float));
    ws->q = xcalloc(B * qd, sizeof(float));
    ws->k = xcalloc(B * kvd, sizeof(float));
    ws->v = xcalloc(B * kvd, sizeof(float));
    ws->hb = xcalloc(B * F, sizeof(float));
    ws->hb2 = xcalloc(B * F, sizeof(float));
    ws->rope_cs = xcalloc(B * (size_t)hp->rope_dim, sizeof(float));
    ws->pos = xcalloc(B, sizeof(int));
    ws->tile = xcalloc(B + 1, sizeof(int));
    if (!ws->x || !ws->xb || !ws->xb2 || !ws->q || !ws->k || !ws->v || !ws->hb || !ws->hb2 || !ws->rope_cs || !ws->pos || !ws->tile)
        goto oom;
    return ws;
oom:
    al_err_set(err, "out of memory for a %d-token batch", n_batch);
    llm_ws_free(ws);
    return NULL;
}

void llm_ws_free(llm_ws *ws) {
    if (!ws) return;
    free(ws->x);
    free(ws->xb);
    free(ws->xb2);
    free(ws->q);
    free(ws->k);
    free(ws->v);
    free(ws->hb);
    free(ws->hb2);
    free(ws->rope_cs);
    free(ws->pos);
    free(ws->tile);
    free(ws);
}

int llm_ws_n_batch(const llm_ws *ws) { return ws->n_batch; }

#define LLM_DEFAULT_BATCH 512

llm_ctx *llm_ctx_init(const llm_model *m, int n_ctx, kv_type kv, al_err *err) {
    return llm_ctx_init_batch(m, n_ctx, kv, LLM_DEFAULT_BATCH, err);
}

llm_ctx *llm_ctx_init_batch(const llm_model *m, int n_ctx, kv_type kv, int n_batch, al_err *err) {
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
    size_t cache = (size_t)hp->n_layer * (size_t)n_ctx * (size_t)hp->n_head_kv * (size_t)hp->head_dim * (kv == KV_F16 ? 2 : 4);
    /* keys then values in one block on huge pages (as the weights): a
     * token's attention touches every layer's and head's run of the cache,
     * pages apart, and with 4 KiB pages each such run began with a TLB miss */
    c->k_cache = huge_alloc(2 * cache);
    c->v_cache = c->k_cache ? (uint8_t *)c->k_cache + cache : NULL;
    c->logits = calloc((size_t)hp->n_vocab, sizeof(float));
    if (!c->k_cache || !c->logits) {
        al_err_set(err, "out of memory for a %d-token context (%.1f MiB of KV cache)", n_ctx, 2.0 * (double)cache / 1048576.0);
        llm_ctx_free(c);
        return NULL;
    }
    if (n_batch <= 0) return c; /* the caller runs it through a shared workspace */
    if (n_batch > LLM_DEFAULT_BATCH) n_batch = LLM_DEFAULT_BATCH;
    c->ws = llm_ws_init(m, n_ctx < n_batch ? n_ctx : n_batch, err);
    if (!c->ws) {
        llm_ctx_free(c);
        return NULL;
    }
    return c;
}

void llm_ctx_free(llm_ctx *c) {
    if (!c) return;
    free(c->k_cache); /* the values are in the same block */
    free(c->logits);
    llm_ws_free(c->ws);
    free(c);
}

void llm_ctx_reset(llm_ctx *c) { c->pos = 0; }

uint64_t llm_ctx_kv_bytes(const llm_ctx *c) {
    const llm_hparams *hp = &c->m->hp;
    return 2ull * (uint64_t)hp->n_layer * (uint64_t)c->n_ctx * (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim *
           (c->kv == KV_F16 ? 2u : 4u);
}

/* Element offset of (layer, kv head, position) in a cache. */
static inline size_t kv_index(const llm_ctx *c, int layer, int head, int pos) {
    const llm_hparams *hp = &c->m->hp;
    return (((size_t)layer * (size_t)hp->n_head_kv + (size_t)head) * (size_t)c->n_ctx + (size_t)pos) * (size_t)hp->head_dim;
}

/* Stores n floats at element offset `at` of a cache. */
static void kv_store(const llm_ctx *c, void *cache, size_t at, const float *src, int n) {
    if (c->kv == KV_F32) {
        memcpy((float *)cache + at, src, (size_t)n * sizeof(float));
        return;
    }
    /* f16 saturates at +-65504 rather than becoming inf: the attention
     * kernel gives the keys a token of a tile does not see a weight of
     * exactly 0, and 0 x inf would be NaN */
    float clamped[256];
    for (int i0 = 0; i0 < n; i0 += 256) {
        int m = n - i0 < 256 ? n - i0 : 256;
        for (int i = 0; i < m; i++) clamped[i] = src[i0 + i] > 65504.0f ? 65504.0f : src[i0 + i] < -65504.0f ? -65504.0f : src[i0 + i];
        op_f32_to_f16((uint16_t *)cache + at + (size_t)i0, clamped, m);
    }
}

static void add_bias(float *x, const float *b, int n) {
    if (b)
        for (int i = 0; i < n; i++) x[i] += b[i];
}

/* ---- attention --------------------------------------------------------------------- */

#define ATT_CHUNK 256  /* keys scored at a time (online softmax across chunks) */
#define ATT_GROUP 8    /* query heads sharing a key head handled together */

typedef struct attn_job {
    const llm_batch *b;
    llm_ws *ws;
    int layer;
    qdot_dot_f16_fn dot16;
    qdot_axpy_f16_fn axpy16;
    attn_f16_fn attn16; /* the whole group at once (NULL: per key, below) */
} attn_job;

/* True if the attention kernel of kernels/attn.h serves this model's heads. */
static bool attn_kernel_fits(const attn_job *j) {
    const int hd = j->ws->m->hp.head_dim;
    return j->attn16 && hd % 16 == 0 && hd <= ATTN_MAX_HD;
}

/* Splits the batch into attention tiles, ws->tile[0..n_tiles] (the last
 * entry b->n): runs of consecutive tokens of one sequence at consecutive
 * positions, at most max_tok tokens each. */
static void batch_tiles(llm_ws *ws, const llm_batch *b, int max_tok) {
    int n = 0;
    for (int i = 0; i < b->n; i++) {
        bool extend = n > 0 && b->seq[i] == b->seq[i - 1] && ws->pos[i] == ws->pos[i - 1] + 1 && i - ws->tile[n - 1] < max_tok;
        if (!extend) ws->tile[n++] = i;
    }
    ws->tile[n] = b->n;
    ws->n_tiles = n;
}

/* Token tok, key head g, without the kernel: for each query head h of the
 * group, xb[tok][h] = sum_t softmax_t(q_h . k_t / sqrt(hd)) v_t over the
 * token's sequence up to its position, with the softmax computed online
 * over chunks of keys (no buffer proportional to the context). */
static void attn_token(const attn_job *j, int tok, int g) {
    const llm_hparams *hp = &j->ws->m->hp;
    const int nkv = hp->n_head_kv, hd = hp->head_dim, group = hp->n_head / nkv;
    const llm_ctx *c = j->b->seq[tok];
    const int last = j->ws->pos[tok];
    const float scale = 1.0f / sqrtf((float)hd);
    size_t base = kv_index(c, j->layer, g, 0);
    const float *q = j->ws->q + (size_t)tok * (size_t)hp->n_head * (size_t)hd;
    float *out = j->ws->xb + (size_t)tok * (size_t)hp->n_head * (size_t)hd;
    for (int h0 = 0; h0 < group; h0 += ATT_GROUP) {
        int nh = group - h0 < ATT_GROUP ? group - h0 : ATT_GROUP;
        float s[ATT_GROUP][ATT_CHUNK], mx[ATT_GROUP], sum[ATT_GROUP];
        float *acc[ATT_GROUP];
        const float *qh[ATT_GROUP];
        for (int h = 0; h < nh; h++) {
            int head = g * group + h0 + h;
            qh[h] = q + (size_t)head * (size_t)hd;
            acc[h] = out + (size_t)head * (size_t)hd;
            memset(acc[h], 0, (size_t)hd * sizeof(float));
            mx[h] = -INFINITY;
            sum[h] = 0.0f;
        }
        for (int t0 = 0; t0 <= last; t0 += ATT_CHUNK) {
            int nt = last + 1 - t0 < ATT_CHUNK ? last + 1 - t0 : ATT_CHUNK;
            /* s[h][t] = q_h . k_t * scale */
            for (int t = 0; t < nt; t++) {
                size_t at = base + (size_t)(t0 + t) * (size_t)hd;
                for (int h = 0; h < nh; h++)
                    s[h][t] = scale * (c->kv == KV_F16 ? j->dot16(qh[h], (const uint16_t *)c->k_cache + at, hd)
                                                       : op_dot(qh[h], (const float *)c->k_cache + at, hd));
            }
            /* rescale what was accumulated to the new maximum; s -> exp(s - max) */
            for (int h = 0; h < nh; h++) {
                float m = mx[h];
                for (int t = 0; t < nt; t++) m = s[h][t] > m ? s[h][t] : m;
                float corr = expf(mx[h] - m);
                if (corr != 1.0f) {
                    sum[h] *= corr;
                    for (int d = 0; d < hd; d++) acc[h][d] *= corr;
                }
                mx[h] = m;
                for (int t = 0; t < nt; t++) {
                    s[h][t] = expf(s[h][t] - m);
                    sum[h] += s[h][t];
                }
            }
            /* acc_h += sum_t s[h][t] v_t */
            for (int t = 0; t < nt; t++) {
                size_t at = base + (size_t)(t0 + t) * (size_t)hd;
                for (int h = 0; h < nh; h++) {
                    if (c->kv == KV_F16) {
                        j->axpy16(acc[h], s[h][t], (const uint16_t *)c->v_cache + at, hd);
                    } else {
                        const float *v = (const float *)c->v_cache + at;
                        for (int d = 0; d < hd; d++) acc[h][d] += s[h][t] * v[d];
                    }
                }
            }
        }
        for (int h = 0; h < nh; h++) {
            float inv = 1.0f / sum[h];
            for (int d = 0; d < hd; d++) acc[h][d] *= inv;
        }
    }
}

/* Task i: tile i / n_head_kv of the batch, key head i % n_head_kv: the
 * attention of each of the tile's tokens (xb, as attn_token), by the
 * kernel in one call per block of up to ATT_GROUP query heads where it
 * serves, else token by token. */
static void attn_task(void *arg, int64_t i) {
    const attn_job *j = arg;
    const llm_hparams *hp = &j->ws->m->hp;
    const int nkv = hp->n_head_kv, hd = hp->head_dim, group = hp->n_head / nkv, g = (int)(i % nkv);
    const int first = j->ws->tile[i / nkv], n_tok = j->ws->tile[i / nkv + 1] - first;
    const llm_ctx *c = j->b->seq[first];
    if (c->kv != KV_F16 || !attn_kernel_fits(j)) {
        for (int t = first; t < first + n_tok; t++) attn_token(j, t, g);
        return;
    }
    const size_t base = kv_index(c, j->layer, g, 0), stride = (size_t)hp->n_head * (size_t)hd;
    for (int h0 = 0; h0 < group; h0 += ATT_GROUP) {
        const int head = g * group + h0;
        attn_f16_tile a = {.q = j->ws->q + (size_t)first * stride + (size_t)head * (size_t)hd,
                           .q_stride = stride,
                           .out = j->ws->xb + (size_t)first * stride + (size_t)head * (size_t)hd,
                           .out_stride = stride,
                           .k = (const uint16_t *)c->k_cache + base,
                           .v = (const uint16_t *)c->v_cache + base,
                           .n_tok = n_tok,
                           .nh = group - h0 < ATT_GROUP ? group - h0 : ATT_GROUP,
                           .hd = hd,
                           .n_keys = j->ws->pos[first] + 1,
                           .scale = 1.0f / sqrtf((float)hd)};
        j->attn16(&a);
    }
}

/* ---- element-wise steps, spread over tokens ----------------------------------------- */

typedef struct rows_job {
    llm_ws *ws;
    const llm_batch *b;
    const llm_layer *L;
    int layer;
} rows_job;

/* Token i: xb = rmsnorm(x) with the attention norm. */
static void attn_norm_task(void *arg, int64_t i) {
    const rows_job *j = arg;
    const llm_hparams *hp = &j->ws->m->hp;
    size_t E = (size_t)hp->n_embd;
    op_rmsnorm(j->ws->xb + (size_t)i * E, j->ws->x + (size_t)i * E, j->L->attn_norm, hp->n_embd, hp->rms_eps);
}

/* Token i: biases, per-head q/k norms, rotary embedding; then k and v go to
 * the token's sequence cache at its position. */
static void qkv_post_task(void *arg, int64_t i) {
    const rows_job *j = arg;
    llm_ws *ws = j->ws;
    const llm_model *m = ws->m;
    const llm_hparams *hp = &m->hp;
    const llm_layer *L = j->L;
    const int hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    float *q = ws->q + (size_t)i * (size_t)qd, *k = ws->k + (size_t)i * (size_t)kvd, *v = ws->v + (size_t)i * (size_t)kvd;
    const float *cs = ws->rope_cs + (size_t)i * (size_t)hp->rope_dim;
    add_bias(q, L->bq, qd);
    add_bias(k, L->bk, kvd);
    add_bias(v, L->bv, kvd);
    for (int h = 0; h < hp->n_head; h++) {
        if (L->q_norm) op_rmsnorm(q + h * hd, q + h * hd, L->q_norm, hd, hp->rms_eps);
        op_rope_apply(q + h * hd, hp->rope_dim, cs, hp->rope_neox);
    }
    llm_ctx *c = j->b->seq[i];
    for (int h = 0; h < hp->n_head_kv; h++) {
        if (L->k_norm) op_rmsnorm(k + h * hd, k + h * hd, L->k_norm, hd, hp->rms_eps);
        op_rope_apply(k + h * hd, hp->rope_dim, cs, hp->rope_neox);
        kv_store(c, c->k_cache, kv_index(c, j->layer, h, ws->pos[i]), k + h * hd, hd);
        kv_store(c, c->v_cache, kv_index(c, j->layer, h, ws->pos[i]), v + h * hd, hd);
    }
}

/* Token i: x += xb2 (attention output); xb = rmsnorm(x) with the FFN norm. */
static void attn_residual_task(void *arg, int64_t i) {
    const rows_job *j = arg;
    const llm_hparams *hp = &j->ws->m->hp;
    size_t E = (size_t)hp->n_embd;
    float *x = j->ws->x + (size_t)i * E;
    const float *o = j->ws->xb2 + (size_t)i * E;
    for (size_t e = 0; e < E; e++) x[e] += o[e];
    op_rmsnorm(j->ws->xb + (size_t)i * E, x, j->L->ffn_norm, hp->n_embd, hp->rms_eps);
}

/* Token i: hb = silu(hb) * hb2. */
static void swiglu_task(void *arg, int64_t i) {
    const rows_job *j = arg;
    size_t F = (size_t)j->ws->m->hp.n_ff;
    op_swiglu(j->ws->hb + (size_t)i * F, j->ws->hb + (size_t)i * F, j->ws->hb2 + (size_t)i * F, (int)F);
}

/* Token i: x += xb2 (feed-forward output). */
static void ffn_residual_task(void *arg, int64_t i) {
    const rows_job *j = arg;
    size_t E = (size_t)j->ws->m->hp.n_embd;
    float *x = j->ws->x + (size_t)i * E;
    const float *o = j->ws->xb2 + (size_t)i * E;
    for (size_t e = 0; e < E; e++) x[e] += o[e];
}

/* ---- forward pass ------------------------------------------------------------------ */

/* Checks the batch and gives each token its position. Changes nothing on error. */
static int batch_positions(llm_ws *ws, const llm_batch *b, al_err *err) {
    const llm_hparams *hp = &ws->m->hp;
    if (b->n <= 0) return al_err_set(err, "empty batch");
    if (b->n > ws->n_batch) return al_err_set(err, "batch of %d tokens exceeds the workspace's %d", b->n, ws->n_batch);
    for (int i = 0; i < b->n; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= hp->n_vocab)
            return al_err_set(err, "token id %d is outside the vocabulary (0..%d)", b->tokens[i], hp->n_vocab - 1);
        if (b->seq[i]->m != ws->m) return al_err_set(err, "batch token %d belongs to a context of another model", i);
        int before = 0; /* earlier tokens of the same sequence in this batch */
        for (int k = i - 1; k >= 0; k--)
            if (b->seq[k] == b->seq[i]) {
                before = ws->pos[k] - b->seq[i]->pos + 1;
                break;
            }
        ws->pos[i] = b->seq[i]->pos + before;
        if (ws->pos[i] >= b->seq[i]->n_ctx)
            return al_err_set(err, "context is full (%d tokens); start a new sequence or use a larger context (-c)", b->seq[i]->n_ctx);
    }
    return 0;
}

/* True if token i's logits are wanted. */
static bool wants_logits(const llm_batch *b, int i) {
    if (b->want_logits) return b->want_logits[i];
    for (int k = i + 1; k < b->n; k++)
        if (b->seq[k] == b->seq[i]) return false;
    return true;
}

int llm_forward(llm_ws *ws, const llm_batch *b, float *logits, al_err *err) {
    const llm_model *m = ws->m;
    const llm_hparams *hp = &m->hp;
    if (batch_positions(ws, b, err)) return -1;
    const int n = b->n, E = hp->n_embd;

    /* x[n][E] = embedding rows; rope_cs[n][rope_dim] = cos, sin at each position */
    for (int i = 0; i < n; i++) {
        op_get_row(&m->tok_embd, b->tokens[i], ws->x + (size_t)i * (size_t)E);
        op_rope_angles(ws->rope_cs + (size_t)i * (size_t)hp->rope_dim, hp->rope_dim, ws->pos[i], m->rope_theta);
    }
    cpu_level lvl = cpu_level_get();
    attn_job aj = {.b = b, .ws = ws, .dot16 = qdot_dot_f16_get(lvl), .axpy16 = qdot_axpy_f16_get(lvl), .attn16 = attn_f16_get(lvl)};
    const int group = hp->n_head / hp->n_head_kv;
    batch_tiles(ws, b, attn_kernel_fits(&aj) ? attn_max_tokens(group < ATT_GROUP ? group : ATT_GROUP, hp->head_dim) : 1);
    for (int l = 0; l < hp->n_layer; l++) {
        const llm_layer *L = &m->layers[l];
        rows_job rj = {.ws = ws, .b = b, .L = L, .layer = l};

        /* attention: xb = rmsnorm(x); q[n][qd], k[n][kvd], v[n][kvd] */
        ops_parallel_for(attn_norm_task, &rj, n);
        op_matmul_out qkv[3] = {{ws->q, &L->wq}, {ws->k, &L->wk}, {ws->v, &L->wv}};
        if (op_matmul_fused(qkv, 3, ws->xb, n)) goto oom;
        ops_parallel_for(qkv_post_task, &rj, n);

        /* xb[n][qd] = attention over each token's sequence */
        aj.layer = l;
        ops_parallel_for(attn_task, &aj, (int64_t)ws->n_tiles * hp->n_head_kv);

        /* x += Wo xb; xb = rmsnorm(x) */
        if (op_matmul(ws->xb2, &L->wo, ws->xb, n)) goto oom;
        ops_parallel_for(attn_residual_task, &rj, n);

        /* feed-forward: x += W_down (silu(W_gate xb) * (W_up xb)) */
        op_matmul_out gate_up[2] = {{ws->hb, &L->w_gate}, {ws->hb2, &L->w_up}};
        if (op_matmul_fused(gate_up, 2, ws->xb, n)) goto oom;
        ops_parallel_for(swiglu_task, &rj, n);
        if (op_matmul(ws->xb2, &L->w_down, ws->hb, n)) goto oom;
        ops_parallel_for(ffn_residual_task, &rj, n);
    }

    /* logits[k][V] = W_out rmsnorm(x) for the tokens that want them */
    int n_out = 0;
    for (int i = 0; i < n; i++) {
        if (!wants_logits(b, i)) continue;
        op_rmsnorm(ws->xb + (size_t)n_out * (size_t)E, ws->x + (size_t)i * (size_t)E, m->output_norm, E, hp->rms_eps);
        n_out++;
    }
    if (n_out && op_matmul(logits, &m->output, ws->xb, n_out)) goto oom;
    for (int i = 0; i < n; i++) b->seq[i]->pos = ws->pos[i] + 1;
    return n_out;
oom:
    return al_err_set(err, "out of memory in the forward pass");
}

const float *llm_prefill(llm_ctx *c, const int32_t *tokens, int n, al_err *err) {
    if (n <= 0) {
        al_err_set(err, "empty prompt");
        return NULL;
    }
    if (!c->ws) {
        al_err_set(err, "this context has no workspace of its own (it runs in shared batches)");
        return NULL;
    }
    int B = llm_ws_n_batch(c->ws);
    llm_ctx *seq[LLM_DEFAULT_BATCH];
    for (int i = 0; i < B; i++) seq[i] = c;
    for (int i = 0; i < n; i += B) {
        int k = n - i < B ? n - i : B;
        llm_batch b = {.n = k, .tokens = tokens + i, .seq = seq};
        if (llm_forward(c->ws, &b, c->logits, err) < 0) return NULL;
    }
    return c->logits;
}

const float *llm_decode(llm_ctx *c, int32_t token, al_err *err) { return llm_prefill(c, &token, 1, err); }

/* Copies token id's text (or "" when it has none or is too long) into buf. */
static void token_text_copy(const tokenizer *tok, int32_t id, char *buf, size_t cap) {
    size_t len = 0;
    const char *s = id >= 0 ? tokenizer_token_text(tok, id, &len) : NULL;
    if (!s || len >= cap) len = 0;
    if (len) memcpy(buf, s, len);
    buf[len] = 0;
}

int llm_chat_template_init(const llm_model *m, const char *force_name, chat_template *t, al_err *err) {
    char *jinja = NULL;
    gguf_str js;
    if (gguf_find_key(m->gguf, "tokenizer.chat_template") >= 0 && gguf_get_str(m->gguf, "tokenizer.chat_template", &js, NULL) == 0) {
        jinja = strndup(js.ptr, (size_t)js.len);
        if (!jinja) return al_err_set(err, "out of memory");
    }
    char bos[256], eos[256];
    token_text_copy(m->tok, tokenizer_bos(m->tok), bos, sizeof bos);
    token_text_copy(m->tok, tokenizer_eos(m->tok), eos, sizeof eos);
    int rc = chat_template_init(t, jinja, force_name, bos, eos, err);
    free(jinja);
    return rc;
}

int llm_tokenize_chat(const llm_model *m, const chat_template *t, const char *text, token_vec *out, al_err *err) {
    bool has_bos = t->bos && t->bos[0] && strncmp(text, t->bos, strlen(t->bos)) == 0;
    return tokenizer_encode(m->tok, text, strlen(text), !has_bos, true, out, err);
}
