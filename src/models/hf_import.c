/* hf_import.c - Hugging Face safetensors checkpoint -> GGUF. */
#include "models/hf_import.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "kernels/ops.h"
#include "models/llm.h"
#include "models/quant_mix.h"
#include "text/hf_tokenizer.h"

#define MAX_SHARDS 256

typedef struct hf_model {
    const char *dir;
    json_t *cfg;
    llm_hparams hp;
    bool permute_qk;        /* llama/mistral: q/k rows from rotate-half to interleaved pairs */
    bool tied;
    float rope_factors[512];/* Llama 3.1 rope_freqs, when llama3_rope */
    bool llama3_rope;
    st_file *shard[MAX_SHARDS];
    int n_shards;
    json_t *weight_map;     /* index.json "weight_map", or NULL for one file */
    bool *used;             /* per shard tensor, flattened: shard_base[i] + j */
    size_t *shard_base;
} hf_model;

/* config.json integer field in [lo, hi]; def when absent/null (required: error). */
static int cfg_int(const hf_model *m, const char *key, long def, bool required, long lo, long hi, int *out, al_err *err) {
    json_t *v = json_object_get(m->cfg, key);
    if (!v || json_is_null(v)) {
        if (required) return al_err_set(err, "%s/config.json: missing \"%s\"", m->dir, key);
        *out = (int)def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return al_err_set(err, "%s/config.json: \"%s\" must be an integer in [%ld, %ld]", m->dir, key, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int cfg_num(const hf_model *m, json_t *obj, const char *key, double def, double lo, double hi, float *out, al_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = (float)def;
        return 0;
    }
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return al_err_set(err, "%s/config.json: \"%s\" must be a number in [%g, %g]", m->dir, key, lo, hi);
    *out = (float)json_number_value(v);
    return 0;
}

/* Reads config.json into m->hp (all but n_vocab's padding). */
static int read_config(hf_model *m, al_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    json_error_t je;
    m->cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!m->cfg) return al_err_set(err, "%s: line %d: %s", path, je.line, je.text);
    if (!json_is_object(m->cfg)) return al_err_set(err, "%s: not a JSON object", path);
    const char *archs = json_string_value(json_array_get(json_object_get(m->cfg, "architectures"), 0));
    const char *mt = json_string_value(json_object_get(m->cfg, "model_type"));
    llm_hparams *hp = &m->hp;
    if ((archs && (strcmp(archs, "LlamaForCausalLM") == 0 || strcmp(archs, "MistralForCausalLM") == 0)) ||
        (!archs && mt && (strcmp(mt, "llama") == 0 || strcmp(mt, "mistral") == 0))) {
        hp->arch = LLM_ARCH_LLAMA;
        m->permute_qk = true;
    } else if ((archs && strcmp(archs, "Qwen2ForCausalLM") == 0) || (!archs && mt && strcmp(mt, "qwen2") == 0)) {
        hp->arch = LLM_ARCH_QWEN2;
    } else if ((archs && strcmp(archs, "Qwen3ForCausalLM") == 0) || (!archs && mt && strcmp(mt, "qwen3") == 0)) {
        hp->arch = LLM_ARCH_QWEN3;
    } else {
        return al_err_set(err, "%s: architecture \"%s\" is not supported (LlamaForCausalLM, MistralForCausalLM, "
                               "Qwen2ForCausalLM, Qwen3ForCausalLM are)", path, archs ? archs : mt ? mt : "(none)");
    }
    if (cfg_int(m, "hidden_size", 0, true, 1, 1 << 20, &hp->n_embd, err) ||
        cfg_int(m, "num_hidden_layers", 0, true, 1, 4096, &hp->n_layer, err) ||
        cfg_int(m, "intermediate_size", 0, true, 1, 1 << 22, &hp->n_ff, err) ||
        cfg_int(m, "num_attention_heads", 0, true, 1, 4096, &hp->n_head, err) ||
        cfg_int(m, "num_key_value_heads", hp->n_head, false, 1, 4096, &hp->n_head_kv, err) ||
        cfg_int(m, "vocab_size", 0, true, 1, 1 << 24, &hp->n_vocab, err) ||
        cfg_int(m, "max_position_embeddings", 4096, false, 1, 1 << 24, &hp->n_ctx_train, err))
        return -1;
    if (hp->n_embd % hp->n_head != 0 && !json_is_integer(json_object_get(m->cfg, "head_dim")))
        return al_err_set(err, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, hp->n_embd, hp->n_head);
    if (cfg_int(m, "head_dim", hp->n_embd / hp->n_head, false, 2, 4096, &hp->head_dim, err)) return -1;
    if (hp->head_dim % 2 != 0) return al_err_set(err, "%s: head_dim %d is odd", path, hp->head_dim);
    if (hp->n_head % hp->n_head_kv != 0)
        return al_err_set(err, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, hp->n_head, hp->n_head_kv);
    hp->rope_dim = hp->head_dim;
    hp->rope_neox = hp->arch != LLM_ARCH_LLAMA;
    hp->rope_freq_scale = 1.0f;
    if (cfg_num(m, m->cfg, "rope_theta", 10000.0, 1.0, 1e12, &hp->rope_base, err) ||
        cfg_num(m, m->cfg, "rms_norm_eps", 1e-6, 1e-12, 1.0, &hp->rms_eps, err))
        return -1;
    json_t *tie = json_object_get(m->cfg, "tie_word_embeddings");
    m->tied = json_is_boolean(tie) ? json_is_true(tie) : false;

    json_t *rs = json_object_get(m->cfg, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *t = json_string_value(json_object_get(rs, "rope_type"));
        if (!t) t = json_string_value(json_object_get(rs, "type"));
        if (!t) return al_err_set(err, "%s: rope_scaling has no \"rope_type\"", path);
        float factor = 1.0f;
        if (cfg_num(m, rs, "factor", 1.0, 1e-3, 1e6, &factor, err)) return -1;
        if (strcmp(t, "llama3") == 0) {
            float lo = 1.0f, hi = 4.0f, orig = 8192.0f;
            if (cfg_num(m, rs, "low_freq_factor", 1.0, 1e-6, 1e6, &lo, err) || cfg_num(m, rs, "high_freq_factor", 4.0, 1e-6, 1e6, &hi, err) ||
                cfg_num(m, rs, "original_max_position_embeddings", 8192, 1, 1e9, &orig, err))
                return -1;
            if (hi <= lo) return al_err_set(err, "%s: rope_scaling high_freq_factor must exceed low_freq_factor", path);
            if (hp->head_dim / 2 > (int)(sizeof m->rope_factors / sizeof m->rope_factors[0]))
                return al_err_set(err, "%s: head_dim %d too large for rope scaling", path, hp->head_dim);
            op_rope_llama3_factors(m->rope_factors, hp->head_dim, hp->rope_base, factor, lo, hi, orig);
            m->llama3_rope = true;
        } else if (strcmp(t, "linear") == 0) {
            hp->rope_freq_scale = 1.0f / factor;
        } else if (strcmp(t, "default") != 0) {
            return al_err_set(err, "%s: rope_scaling type \"%s\" is not supported (llama3 and linear are)", path, t);
        }
    }
    return 0;
}

/* Opens the weights: the shards the index names, or model.safetensors. */
static int open_weights(hf_model *m, al_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", m->dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        json_error_t je;
        json_t *idx = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!idx) return al_err_set(err, "%s: line %d: %s", path, je.line, je.text);
        m->weight_map = json_incref(json_object_get(idx, "weight_map"));
        json_decref(idx);
        if (!json_is_object(m->weight_map)) return al_err_set(err, "%s: no \"weight_map\" object", path);
        const char *key;
        json_t *v;
        json_object_foreach(m->weight_map, key, v) {
            const char *file = json_string_value(v);
            if (!file || !*file || strchr(file, '/') || strcmp(file, "..") == 0 || strcmp(file, ".") == 0)
                return al_err_set(err, "%s: weight_map[\"%.60s\"] is not a file name in the directory", path, key);
            bool seen = false;
            for (int i = 0; i < m->n_shards && !seen; i++) seen = strcmp(strrchr(m->shard[i]->path, '/') + 1, file) == 0;
            if (seen) continue;
            if (m->n_shards == MAX_SHARDS) return al_err_set(err, "%s: more than %d shards", path, MAX_SHARDS);
            char sp[4096];
            snprintf(sp, sizeof sp, "%s/%s", m->dir, file);
            if (!(m->shard[m->n_shards] = st_open(sp, err))) return -1;
            m->n_shards++;
        }
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", m->dir);
        FILE *g = fopen(path, "rb");
        if (!g) {
            snprintf(path, sizeof path, "%s/pytorch_model.bin", m->dir);
            FILE *pt = fopen(path, "rb");
            if (pt) {
                fclose(pt);
                return al_err_set(err, "%s: PyTorch pickle checkpoints are not read (loading one can run code); "
                                       "use the model's safetensors files", path);
            }
            return al_err_set(err, "%s: no model.safetensors or model.safetensors.index.json", m->dir);
        }
        fclose(g);
        if (!(m->shard[0] = st_open(path, err))) return -1;
        m->n_shards = 1;
    }
    m->shard_base = calloc((size_t)m->n_shards + 1, sizeof *m->shard_base);
    if (!m->shard_base) return al_err_set(err, "out of memory");
    for (int i = 0; i < m->n_shards; i++) m->shard_base[i + 1] = m->shard_base[i] + m->shard[i]->n_tensors;
    m->used = calloc(m->shard_base[m->n_shards] + 1, sizeof *m->used);
    if (!m->used) return al_err_set(err, "out of memory");
    /* every tensor the index promises must be where it says */
    if (m->weight_map) {
        const char *key;
        json_t *v;
        json_object_foreach(m->weight_map, key, v) {
            const char *file = json_string_value(v);
            for (int i = 0; i < m->n_shards; i++)
                if (strcmp(strrchr(m->shard[i]->path, '/') + 1, file) == 0 && !st_find(m->shard[i], key))
                    return al_err_set(err, "%s: the index puts '%s' in this file, which does not hold it", m->shard[i]->path, key);
        }
    }
    return 0;
}

/* The tensor called name in any shard (marked used), or NULL. */
static const st_tensor *find_tensor(hf_model *m, const char *name, const char **file) {
    for (int i = 0; i < m->n_shards; i++) {
        const st_tensor *t = st_find(m->shard[i], name);
        if (t) {
            m->used[m->shard_base[i] + (size_t)(t - m->shard[i]->tensors)] = true;
            *file = m->shard[i]->path;
            return t;
        }
    }
    return NULL;
}

static void rope_gen(void *user, const convert_tensor *t, int64_t row, float *out) {
    (void)row;
    const hf_model *m = user;
    memcpy(out, m->rope_factors, (size_t)t->ne[0] * sizeof *out);
}

/* Appends GGUF tensor gname made of checkpoint tensor hname, which must have
 * shape [rows, cols] (rows 0: a vector of cols). */
static int add_weight(hf_model *m, convert_tensor *out, int *n, const char *gname, const char *hname, int64_t rows, int64_t cols,
                      int perm_heads, bool optional, al_err *err) {
    const char *file = NULL;
    const st_tensor *t = find_tensor(m, hname, &file);
    if (!t) return optional ? 0 : al_err_set(err, "%s: checkpoint has no tensor '%s'", m->dir, hname);
    int want_dims = rows ? 2 : 1;
    if (t->n_dims != want_dims || (rows && (t->shape[0] != rows || t->shape[1] != cols)) || (!rows && t->shape[0] != cols)) {
        char got[96] = "";
        for (int d = 0; d < t->n_dims; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (rows)
            return al_err_set(err, "%s: tensor '%s' has shape [%s]; config.json implies [%lld, %lld]", file, hname, got, (long long)rows,
                              (long long)cols);
        return al_err_set(err, "%s: tensor '%s' has shape [%s]; config.json implies [%lld]", file, hname, got, (long long)cols);
    }
    int st = st_dtype_ggml(t->dtype);
    if (st < 0)
        return al_err_set(err, "%s: tensor '%s' is %s; F32, F16 and BF16 checkpoints are supported", file, hname, st_dtype_name(t->dtype));
    convert_tensor *c = &out[(*n)++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", gname);
    c->n_dims = (uint32_t)want_dims;
    c->ne[0] = cols;
    c->ne[1] = rows ? rows : 1;
    c->ne[2] = c->ne[3] = 1;
    c->src = t->data;
    c->src_type = (uint32_t)st;
    c->perm_heads = perm_heads;
    c->src_mapped = true;
    return 0;
}

static void hf_model_free(hf_model *m) {
    for (int i = 0; i < m->n_shards; i++) st_close(m->shard[i]);
    json_decref(m->cfg);
    json_decref(m->weight_map);
    free(m->used);
    free(m->shard_base);
}

int hf_import(const hf_import_params *p, hf_import_result *res, al_err *err) {
    hf_model m = {.dir = p->dir};
    const quant_mix *mix = NULL;
    if (p->type && !(mix = quant_mix_find(p->type)))
        return al_err_set(err, "unknown type '%s' (known: %s)", p->type, quant_mix_names());
    gguf_writer *w = NULL;
    convert_tensor *ct = NULL;
    int rc = read_config(&m, err);
    if (!rc) rc = open_weights(&m, err);
    if (rc) goto out;
    llm_hparams *hp = &m.hp;
    int L = hp->n_layer;
    ct = calloc((size_t)L * 16 + 8, sizeof *ct);
    w = gguf_writer_init(3);
    if (!ct || !w) {
        rc = al_err_set(err, "out of memory");
        goto out;
    }
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    int n = 0;
    char g[96], h[128];
    rc = add_weight(&m, ct, &n, "token_embd.weight", "model.embed_tokens.weight", hp->n_vocab, E, 0, false, err);
    if (!rc && m.llama3_rope) {
        convert_tensor *c = &ct[n++];
        snprintf(c->name, sizeof c->name, "rope_freqs.weight");
        c->n_dims = 1;
        c->ne[0] = hp->head_dim / 2;
        c->ne[1] = c->ne[2] = c->ne[3] = 1;
        c->type = GGML_TYPE_F32;
        c->gen = rope_gen;
        c->gen_user = &m;
    }
    for (int l = 0; l < L && !rc; l++) {
#define W(gs, hs, rows, cols, perm, opt) \
    (snprintf(g, sizeof g, "blk.%d." gs, l), snprintf(h, sizeof h, "model.layers.%d." hs, l), \
     add_weight(&m, ct, &n, g, h, rows, cols, perm, opt, err))
        rc = W("attn_norm.weight", "input_layernorm.weight", 0, E, 0, false) ||
             W("attn_q.weight", "self_attn.q_proj.weight", Q, E, m.permute_qk ? hp->n_head : 0, false) ||
             W("attn_k.weight", "self_attn.k_proj.weight", KV, E, m.permute_qk ? hp->n_head_kv : 0, false) ||
             W("attn_v.weight", "self_attn.v_proj.weight", KV, E, 0, false);
        if (!rc && hp->arch == LLM_ARCH_QWEN2)
            rc = W("attn_q.bias", "self_attn.q_proj.bias", 0, Q, 0, false) || W("attn_k.bias", "self_attn.k_proj.bias", 0, KV, 0, false) ||
                 W("attn_v.bias", "self_attn.v_proj.bias", 0, KV, 0, false);
        if (!rc && hp->arch == LLM_ARCH_QWEN3)
            rc = W("attn_q_norm.weight", "self_attn.q_norm.weight", 0, hp->head_dim, 0, false) ||
                 W("attn_k_norm.weight", "self_attn.k_norm.weight", 0, hp->head_dim, 0, false);
        if (!rc)
            rc = W("attn_output.weight", "self_attn.o_proj.weight", E, Q, 0, false) ||
                 W("ffn_norm.weight", "post_attention_layernorm.weight", 0, E, 0, false) ||
                 W("ffn_gate.weight", "mlp.gate_proj.weight", F, E, 0, false) || W("ffn_up.weight", "mlp.up_proj.weight", F, E, 0, false) ||
                 W("ffn_down.weight", "mlp.down_proj.weight", E, F, 0, false);
#undef W
        if (rc) rc = -1;
    }
    if (!rc) rc = add_weight(&m, ct, &n, "output_norm.weight", "model.norm.weight", 0, E, 0, false, err);
    if (!rc && !m.tied) {
        int before = n;
        rc = add_weight(&m, ct, &n, "output.weight", "lm_head.weight", hp->n_vocab, E, 0, true, err);
        if (!rc && n == before) m.tied = true; /* no lm_head: the embedding is the output projection */
    } else if (!rc) {
        const char *file;
        (void)find_tensor(&m, "lm_head.weight", &file); /* a tied checkpoint may still carry a copy */
    }
    if (rc) goto out;
    /* every tensor of the checkpoint must have been used */
    for (int i = 0; i < m.n_shards && !rc; i++)
        for (size_t j = 0; j < m.shard[i]->n_tensors && !rc; j++) {
            const char *nm = m.shard[i]->tensors[j].name;
            static const char inv_freq[] = ".rotary_emb.inv_freq"; /* a buffer old checkpoints carry */
            size_t ln = strlen(nm), li = sizeof inv_freq - 1;
            if (!m.used[m.shard_base[i] + j] && !(ln > li && strcmp(nm + ln - li, inv_freq) == 0))
                rc = al_err_set(err, "%s: tensor '%s' is not part of the %s architecture airlock knows", m.shard[i]->path, nm,
                                llm_arch_name(hp->arch));
        }
    if (rc) goto out;

    /* tensor types */
    quant_mix_model mm = {.n_layer = L, .n_gqa = hp->n_head / hp->n_head_kv, .has_output = !m.tied};
    for (int i = 0; i < n; i++) {
        convert_tensor *c = &ct[i];
        if (c->gen) continue;
        if (mix) c->type = quant_mix_tensor_type(mix, &mm, c->name, c->ne[0], (int)c->n_dims);
        else c->type = c->n_dims == 1 ? GGML_TYPE_F32 : c->src_type;
    }

    /* metadata */
    char name[256];
    const char *base = strrchr(p->dir, '/');
    base = base && base[1] ? base + 1 : p->dir;
    snprintf(name, sizeof name, "%s", p->name ? p->name : base);
    uint32_t ft = mix ? mix->file_type : 1; /* 1: mostly F16 */
    if (!mix) ft = ct[0].src_type == GGML_TYPE_F32 ? 0 : ct[0].src_type == GGML_TYPE_BF16 ? 32 : 1; /* the embedding's precision */
    rc |= llm_hparams_write(w, hp);
    rc |= gguf_writer_add_str(w, "general.name", name);
    rc |= gguf_writer_add_u32(w, "general.file_type", ft);
    if (mix) rc |= gguf_writer_add_u32(w, "general.quantization_version", 2);
    if (rc) {
        rc = al_err_set(err, "out of memory");
        goto out;
    }
    hf_tokenizer_info ti;
    if ((rc = hf_tokenizer_to_gguf(p->dir, hp->n_vocab, p->pre, w, &ti, err))) goto out;
    if (ti.n_tokens != hp->n_vocab) {
        rc = al_err_set(err, "%s: the tokenizer has %d tokens but the embedding has %d rows", p->dir, ti.n_tokens, hp->n_vocab);
        goto out;
    }
    hf_import_result r = {.n_layer = L, .n_vocab = hp->n_vocab, .n_tensors = n};
    snprintf(r.arch, sizeof r.arch, "%s", llm_arch_name(hp->arch));
    rc = convert_write(w, ct, (size_t)n, p->out_path, p->threads, "import", p->progress, &r.stats, err);
    if (!rc && res) *res = r;
out:
    gguf_writer_free(w);
    free(ct);
    hf_model_free(&m);
    return rc;
}
