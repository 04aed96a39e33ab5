/* synth.c - seeded random models at real shapes, streamed to a GGUF file. */
#include "models/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "models/convert.h"
#include "models/quant_mix.h"
#include "text/tokenizer.h"

/* Shapes of published models (their config.json), and small ones for tests. */
static const synth_shape k_shapes[] = {
    /* name            arch            vocab   embd  layer head kv  hd   ff     ctx     rope_base  eps   tied  llama3 */
    {"smollm2-135m", LLM_ARCH_LLAMA, 49152, 576, 30, 9, 3, 64, 1536, 8192, 100000.0f, 1e-5f, true, 0, 0},
    {"qwen2.5-0.5b", LLM_ARCH_QWEN2, 151936, 896, 24, 14, 2, 64, 4864, 32768, 1000000.0f, 1e-6f, true, 0, 0},
    {"qwen3-0.6b", LLM_ARCH_QWEN3, 151936, 1024, 28, 16, 8, 128, 3072, 40960, 1000000.0f, 1e-6f, true, 0, 0},
    {"llama-3.2-1b", LLM_ARCH_LLAMA, 128256, 2048, 16, 32, 8, 64, 8192, 131072, 500000.0f, 1e-5f, true, 32.0f, 0},
    {"llama-3.2-3b", LLM_ARCH_LLAMA, 128256, 3072, 28, 24, 8, 128, 8192, 131072, 500000.0f, 1e-5f, true, 32.0f, 0},
    {"qwen2.5-1.5b", LLM_ARCH_QWEN2, 151936, 1536, 28, 12, 2, 128, 8960, 32768, 1000000.0f, 1e-6f, true, 0, 0},
    {"llama-3.1-8b", LLM_ARCH_LLAMA, 128256, 4096, 32, 32, 8, 128, 14336, 131072, 500000.0f, 1e-5f, false, 8.0f, 0},
    {"mistral-7b", LLM_ARCH_LLAMA, 32768, 4096, 32, 32, 8, 128, 14336, 32768, 1000000.0f, 1e-5f, false, 0, 0},
    /* small shapes for tests: rows of 256 so every K-quant applies, and larger
     * embeddings so the next token is a clear choice (greedy comparisons) */
    {"tiny-llama", LLM_ARCH_LLAMA, 0, 256, 2, 4, 2, 64, 512, 512, 10000.0f, 1e-5f, false, 0, 0.25f},
    {"tiny-llama3", LLM_ARCH_LLAMA, 0, 256, 2, 4, 1, 64, 512, 512, 500000.0f, 1e-5f, true, 8.0f, 0.25f},
    {"tiny-qwen2", LLM_ARCH_QWEN2, 0, 256, 2, 4, 2, 64, 512, 512, 1000000.0f, 1e-6f, true, 0, 0.25f},
    {"tiny-qwen3", LLM_ARCH_QWEN3, 0, 256, 2, 4, 2, 128, 512, 512, 1000000.0f, 1e-6f, true, 0, 0.25f},
};

const synth_shape *synth_find_shape(const char *name) {
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
        if (strcmp(k_shapes[i].name, name) == 0) return &k_shapes[i];
    return NULL;
}

static double shape_params(const synth_shape *s, int n_vocab) {
    double E = s->n_embd, q = (double)s->n_head * s->head_dim, kv = (double)s->n_head_kv * s->head_dim;
    double layer = E * q * 2 + E * kv * 2 + 3 * E * s->n_ff + 2 * E;
    return layer * s->n_layer + (double)n_vocab * E * (s->tied ? 1 : 2) + E;
}

void synth_print_shapes(void) {
    printf("%-14s %-6s %7s %6s %6s %6s %5s %6s %7s %9s\n", "shape", "arch", "vocab", "embd", "layers", "heads", "kv", "head", "ffn", "params");
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++) {
        const synth_shape *s = &k_shapes[i];
        printf("%-14s %-6s %7d %6d %6d %6d %5d %6d %7d %8.2fB\n", s->name, llm_arch_name(s->arch), s->n_vocab, s->n_embd,
               s->n_layer, s->n_head, s->n_head_kv, s->head_dim, s->n_ff, shape_params(s, s->n_vocab ? s->n_vocab : 32000) / 1e9);
    }
    printf("(tiny-* shapes take their vocabulary size from --vocab)\n");
}

/* ---- random numbers -------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Approximately standard normal: sum of four uniforms, rescaled. */
static float gauss(uint64_t *s) {
    uint64_t r = splitmix(s);
    float a = (float)(r & 0xFFFF), b = (float)((r >> 16) & 0xFFFF), c = (float)((r >> 32) & 0xFFFF), d = (float)(r >> 48);
    return ((a + b + c + d) / 65536.0f - 2.0f) * 1.7320508f;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

/* ---- tensors ---------------------------------------------------------------------- */

enum init_kind { INIT_MATRIX, INIT_EMBED, INIT_NORM, INIT_BIAS, INIT_ROPE };

typedef struct stensor {
    char name[64];
    int n_dims;
    int64_t ne[2];
    uint32_t type;
    enum init_kind init;
} stensor;

typedef struct synth_job {
    const synth_params *p;
    const synth_shape *s;
    stensor *t;
    convert_tensor *ct;  /* [n_t] the same tensors, as convert_write takes them */
    int n_t;
    float rope_factors[256];
} synth_job;

/* Generates row r of tensor t (convert_gen_fn). */
static void gen_row(void *user, const convert_tensor *ct, int64_t r, float *row) {
    const synth_job *job = user;
    const stensor *t = &job->t[ct - job->ct];
    int64_t n = t->ne[0];
    float embed_sd = job->s->embed_sd > 0 ? job->s->embed_sd : 0.02f;
    float sd = t->init == INIT_EMBED ? embed_sd : t->init == INIT_BIAS ? 0.02f : 1.0f / sqrtf((float)n);
    uint64_t st = job->p->seed * 0x2545F4914F6CDD1Dull ^ hash_str(t->name) ^ ((uint64_t)r * 0x9E3779B97F4A7C15ull);
    for (int64_t i = 0; i < n; i++) {
        switch (t->init) {
        case INIT_NORM: row[i] = 1.0f + 0.05f * gauss(&st); break;
        case INIT_ROPE: row[i] = job->rope_factors[i]; break;
        default: row[i] = sd * gauss(&st); break;
        }
    }
}

static int add_tensor(stensor *t, int *n, const char *name, int n_dims, int64_t ne0, int64_t ne1, enum init_kind init) {
    stensor *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->n_dims = n_dims;
    x->ne[0] = ne0;
    x->ne[1] = ne1;
    x->init = init;
    return 0;
}

/* Copies the tokenizer metadata of vocab into w, padding the token list to
 * n_vocab with unused tokens. */
static int copy_vocab(gguf_writer *w, const gguf_ctx *v, int n_vocab, al_err *err) {
    const gguf_array *toks;
    if (gguf_get_arr(v, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, err)) return -1;
    int n_real = (int)toks->n;
    const gguf_array *scores = NULL, *types = NULL;
    if (gguf_find_key(v, "tokenizer.ggml.scores") >= 0 && gguf_get_arr(v, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &scores, err)) return -1;
    if (gguf_find_key(v, "tokenizer.ggml.token_type") >= 0 && gguf_get_arr(v, "tokenizer.ggml.token_type", GGUF_TYPE_COUNT, &types, err)) return -1;
    char **names = calloc((size_t)n_vocab, sizeof *names);
    float *sc = calloc((size_t)n_vocab, sizeof *sc);
    int32_t *ty = calloc((size_t)n_vocab, sizeof *ty);
    int rc = (!names || !sc || !ty) ? al_err_set(err, "out of memory") : 0;
    for (int i = 0; !rc && i < n_vocab; i++) {
        if (i < n_real) {
            names[i] = strndup(toks->strs[i].ptr, (size_t)toks->strs[i].len);
            sc[i] = scores && (uint64_t)i < scores->n ? (float)gguf_arr_f64(scores, (uint64_t)i) : 0.0f;
            ty[i] = types && (uint64_t)i < types->n ? (int32_t)gguf_arr_i64(types, (uint64_t)i) : TOKEN_TYPE_NORMAL;
        } else {
            char buf[48];
            snprintf(buf, sizeof buf, "<|synth_pad_%d|>", i);
            names[i] = strdup(buf);
            ty[i] = TOKEN_TYPE_UNUSED;
        }
        if (!names[i]) rc = al_err_set(err, "out of memory");
    }
    if (!rc) {
        rc |= gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)names, (uint64_t)n_vocab);
        rc |= gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, sc, (uint64_t)n_vocab);
        rc |= gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, ty, (uint64_t)n_vocab);
        for (uint64_t i = 0; !rc && i < v->n_kv; i++) {
            const gguf_kv *kv = &v->kv[i];
            if (strncmp(kv->key, "tokenizer.", 10) != 0 || strcmp(kv->key, "tokenizer.ggml.tokens") == 0 ||
                strcmp(kv->key, "tokenizer.ggml.scores") == 0 || strcmp(kv->key, "tokenizer.ggml.token_type") == 0)
                continue;
            rc |= gguf_writer_add_value(w, kv->key, &kv->value);
        }
        if (rc) rc = al_err_set(err, "out of memory writing tokenizer metadata");
    }
    for (int i = 0; names && i < n_vocab; i++) free(names[i]);
    free(names);
    free(sc);
    free(ty);
    return rc;
}

int synth_write(const synth_params *p, al_err *err) {
    const synth_shape *s = p->shape;
    const quant_mix *mix = quant_mix_find(p->type);
    if (!mix) return al_err_set(err, "unknown type '%s' (known: %s)", p->type, quant_mix_names());
    gguf_ctx *v = gguf_open(p->vocab_path, err);
    if (!v) return -1;
    tokenizer *tok = tokenizer_load(v, err); /* proves the vocabulary is usable */
    if (!tok) {
        gguf_close(v);
        return -1;
    }
    int n_real = tokenizer_n_vocab(tok);
    tokenizer_free(tok);
    int n_vocab = s->n_vocab > n_real ? s->n_vocab : n_real;
    int L = p->n_layer_override > 0 ? p->n_layer_override : s->n_layer;
    int64_t E = s->n_embd, Q = (int64_t)s->n_head * s->head_dim, KV = (int64_t)s->n_head_kv * s->head_dim, F = s->n_ff;

    synth_job job = {.p = p, .s = s};
    int max_t = 8 + L * 16;
    job.t = calloc((size_t)max_t, sizeof *job.t);
    if (!job.t) {
        gguf_close(v);
        return al_err_set(err, "out of memory");
    }
    int n = 0;
    char nm[64];
    add_tensor(job.t, &n, "token_embd.weight", 2, E, n_vocab, INIT_EMBED);
    if (s->llama3_rope_factor > 0) {
        op_rope_llama3_factors(job.rope_factors, s->head_dim, s->rope_base, s->llama3_rope_factor, 1.0f, 4.0f, 8192.0f);
        add_tensor(job.t, &n, "rope_freqs.weight", 1, s->head_dim / 2, 1, INIT_ROPE);
    }
    for (int l = 0; l < L; l++) {
#define T(suffix, nd, a, b, init) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), add_tensor(job.t, &n, nm, nd, a, b, init))
        T("attn_norm.weight", 1, E, 1, INIT_NORM);
        T("attn_q.weight", 2, E, Q, INIT_MATRIX);
        T("attn_k.weight", 2, E, KV, INIT_MATRIX);
        T("attn_v.weight", 2, E, KV, INIT_MATRIX);
        if (s->arch == LLM_ARCH_QWEN2) {
            T("attn_q.bias", 1, Q, 1, INIT_BIAS);
            T("attn_k.bias", 1, KV, 1, INIT_BIAS);
            T("attn_v.bias", 1, KV, 1, INIT_BIAS);
        }
        if (s->arch == LLM_ARCH_QWEN3) {
            T("attn_q_norm.weight", 1, s->head_dim, 1, INIT_NORM);
            T("attn_k_norm.weight", 1, s->head_dim, 1, INIT_NORM);
        }
        T("attn_output.weight", 2, Q, E, INIT_MATRIX);
        T("ffn_norm.weight", 1, E, 1, INIT_NORM);
        T("ffn_gate.weight", 2, E, F, INIT_MATRIX);
        T("ffn_up.weight", 2, E, F, INIT_MATRIX);
        T("ffn_down.weight", 2, F, E, INIT_MATRIX);
#undef T
    }
    add_tensor(job.t, &n, "output_norm.weight", 1, E, 1, INIT_NORM);
    if (!s->tied) add_tensor(job.t, &n, "output.weight", 2, E, n_vocab, INIT_EMBED);
    job.n_t = n;
    quant_mix_model mm = {.n_layer = L, .n_gqa = s->n_head / s->n_head_kv, .has_output = !s->tied};
    for (int i = 0; i < n; i++) {
        job.t[i].type = quant_mix_tensor_type(mix, &mm, job.t[i].name, job.t[i].ne[0], job.t[i].n_dims);
        if (p->pure && job.t[i].n_dims == 2 && job.t[i].ne[0] % ggml_type_get(mix->base)->block_size == 0) job.t[i].type = mix->base;
    }

    gguf_writer *w = gguf_writer_init(3);
    int rc = w ? 0 : al_err_set(err, "out of memory");
    char name[96];
    llm_hparams hp = {.arch = s->arch, .n_vocab = n_vocab, .n_embd = (int)E, .n_layer = L, .n_head = s->n_head,
                      .n_head_kv = s->n_head_kv, .head_dim = s->head_dim, .n_ff = (int)F, .n_ctx_train = s->n_ctx,
                      .rope_dim = s->head_dim, .rope_base = s->rope_base, .rope_freq_scale = 1.0f, .rms_eps = s->rms_eps};
    if (!rc) {
        snprintf(name, sizeof name, "synthetic %s %s (seed %llu)", s->name, mix->name, (unsigned long long)p->seed);
        rc |= llm_hparams_write(w, &hp);
        rc |= gguf_writer_add_str(w, "general.name", name);
        rc |= gguf_writer_add_u32(w, "general.file_type", mix->file_type);
        rc |= gguf_writer_add_u32(w, "general.quantization_version", 2);
        if (rc) rc = al_err_set(err, "out of memory building metadata");
    }
    if (!rc) rc = copy_vocab(w, v, n_vocab, err);
    job.ct = calloc((size_t)n, sizeof *job.ct);
    if (!rc && !job.ct) rc = al_err_set(err, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        convert_tensor *c = &job.ct[i];
        snprintf(c->name, sizeof c->name, "%s", job.t[i].name);
        c->n_dims = (uint32_t)job.t[i].n_dims;
        c->ne[0] = job.t[i].ne[0];
        c->ne[1] = job.t[i].n_dims > 1 ? job.t[i].ne[1] : 1;
        c->ne[2] = c->ne[3] = 1;
        c->type = job.t[i].type;
        c->gen = gen_row;
        c->gen_user = &job;
    }
    convert_stats st;
    if (!rc) rc = convert_write(w, job.ct, (size_t)n, p->out_path, p->threads, "synth", p->progress, &st, err);
    if (!rc && p->progress)
        fprintf(stderr, "synth: wrote %s: %s %s, %d layers, vocab %d (%d real tokens), %.1f MiB of tensors\n", p->out_path, s->name,
                mix->name, L, n_vocab, n_real, (double)st.bytes_out / 1048576.0);
    gguf_writer_free(w);
    free(job.ct);
    free(job.t);
    gguf_close(v);
    return rc;
}
