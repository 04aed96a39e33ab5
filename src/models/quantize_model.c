/* quantize_model.c - GGUF -> GGUF with the tensor types of a file type. */
#include "models/quantize_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "models/quant_mix.h"

static bool is_float_type(uint32_t t) { return t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16; }

/* Reads "<arch>.<suffix>" as u32 into *out; returns 0 or -1 with err set. */
static int arch_u32(const gguf_ctx *g, const char *arch, const char *suffix, uint32_t *out, al_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_u32(g, key, out, err);
}

int quantize_model(const quantize_params *p, quantize_result *res, al_err *err) {
    const quant_mix *mix = quant_mix_find(p->type);
    if (!mix) return al_err_set(err, "unknown type '%s' (known: %s)", p->type, quant_mix_names());
    gguf_ctx *g = gguf_open(p->in_path, err);
    if (!g) return -1;
    convert_tensor *ct = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *ct);
    gguf_writer *w = gguf_writer_init(3);
    int rc = (!ct || !w) ? al_err_set(err, "out of memory") : 0;

    /* the facts the mix rules need */
    quant_mix_model mm = {.n_layer = 0, .n_gqa = 1, .has_output = gguf_find_tensor(g, "output.weight") != NULL};
    gguf_str arch = {0};
    char archz[64] = "";
    if (!rc && gguf_get_str(g, "general.architecture", &arch, err) == 0 && arch.len < sizeof archz) {
        memcpy(archz, arch.ptr, (size_t)arch.len);
        uint32_t nl = 0, nh = 0, nkv = 0;
        al_err ignore;
        if (arch_u32(g, archz, "block_count", &nl, &ignore) == 0) mm.n_layer = (int)nl;
        if (arch_u32(g, archz, "attention.head_count", &nh, &ignore) == 0 &&
            arch_u32(g, archz, "attention.head_count_kv", &nkv, &ignore) == 0 && nkv > 0)
            mm.n_gqa = (int)(nh / nkv);
    } else if (!rc) {
        rc = al_err_prefix(err, "%s: not a model file", p->in_path);
    }

    /* metadata: all of it, with the new file type */
    for (uint64_t i = 0; !rc && i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (strcmp(kv->key, "general.file_type") == 0 || strcmp(kv->key, "general.quantization_version") == 0) continue;
        if (gguf_writer_add_value(w, kv->key, &kv->value)) rc = al_err_set(err, "out of memory copying metadata '%s'", kv->key);
    }
    if (!rc && (gguf_writer_add_u32(w, "general.file_type", mix->file_type) || gguf_writer_add_u32(w, "general.quantization_version", 2)))
        rc = al_err_set(err, "out of memory");

    quantize_result r = {0};
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        convert_tensor *c = &ct[i];
        if (strlen(t->name) >= sizeof c->name) {
            rc = al_err_set(err, "%s: tensor name '%.40s...' is too long", p->in_path, t->name);
            break;
        }
        snprintf(c->name, sizeof c->name, "%s", t->name);
        c->n_dims = t->n_dims;
        memcpy(c->ne, t->ne, sizeof c->ne);
        c->src = t->data;
        c->src_type = t->type;
        c->src_mapped = true;
        c->type = quant_mix_tensor_type(mix, &mm, t->name, t->ne[0], (int)t->n_dims);
        if (p->pure && t->n_dims >= 2 && c->type != GGML_TYPE_F32 && t->ne[0] % ggml_type_get(mix->base)->block_size == 0)
            c->type = mix->base;
        if (!is_float_type(t->type) && c->type != t->type) {
            if (!p->allow_requantize) {
                rc = al_err_set(err, "%s: tensor '%s' is already %s; quantizing it again to %s compounds the error "
                                     "(quantize from the F16/BF16/F32 model, or pass --allow-requantize)",
                                p->in_path, t->name, ggml_type_name(t->type), ggml_type_name(c->type));
                break;
            }
        }
        r.in_bytes += t->nbytes;
        r.n_tensors++;
        if (c->type < sizeof r.by_type / sizeof r.by_type[0]) r.by_type[c->type]++;
    }
    convert_stats st = {0};
    if (!rc) rc = convert_write(w, ct, (size_t)g->n_tensors, p->out_path, p->threads, "quantize", p->progress, &st, err);
    r.out_bytes = st.bytes_out;
    r.n_elems = st.n_elems;
    r.seconds = st.seconds;
    if (!rc && res) *res = r;
    gguf_writer_free(w);
    free(ct);
    gguf_close(g);
    return rc;
}
