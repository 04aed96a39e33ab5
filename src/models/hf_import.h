/* hf_import.h - a Hugging Face checkpoint directory to a GGUF model file.
 *
 * Reads config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
 * Qwen3ForCausalLM), the weights (model.safetensors, or the shards named by
 * model.safetensors.index.json) in F32/F16/BF16, and the tokenizer
 * (hf_tokenizer.h), checks every tensor's presence, dtype and shape against
 * the config, and writes a GGUF with GGUF's tensor names and layouts: rows
 * of the llama q/k projections reordered from rotate-half pairs to
 * interleaved pairs, Llama 3.1 rope scaling as a rope_freqs tensor, 1-D
 * tensors in F32 and matrices in the source precision or a chosen type
 * (any quantize type, with its mix rules). Streams tensor by tensor. */
#ifndef AIRLOCK_MODELS_HF_IMPORT_H
#define AIRLOCK_MODELS_HF_IMPORT_H

#include <stdbool.h>

#include "core/error.h"
#include "models/convert.h"

typedef struct hf_import_params {
    const char *dir;
    const char *out_path;
    const char *type;     /* NULL: keep the checkpoint's precision; else F32, F16, BF16, Q8_0, Q4_K_M, ... */
    const char *pre;      /* pre-tokenizer name instead of detecting it, or NULL */
    const char *name;     /* general.name, or NULL for the directory's name */
    int threads;
    bool progress;
} hf_import_params;

typedef struct hf_import_result {
    char arch[16];         /* GGUF architecture written */
    int n_layer, n_vocab, n_tensors;
    convert_stats stats;
} hf_import_result;

/* Converts p->dir into p->out_path. Returns 0, or -1 with err naming the
 * file, tensor or config field at fault (nothing is left at out_path). */
int hf_import(const hf_import_params *p, hf_import_result *res, al_err *err);

#endif
