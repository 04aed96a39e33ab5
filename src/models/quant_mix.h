/* quant_mix.h - which tensor type each tensor gets in a quantized model file.
 *
 * Model files are named by a "file type" (Q4_K_M, Q5_K_S, Q8_0, ...): a base
 * type plus rules that keep the tensors that matter most at higher precision.
 * The rules follow the conventions of the GGUF ecosystem so files look like
 * the ones people download: the output projection (or the tied embedding) in
 * Q6_K; attn_v and ffn_down in Q6_K on the first and last eighth of layers
 * and every third one between, for *_M; 1-D tensors stay F32; rows that
 * are not a whole number of 256-blocks fall back to a 32-block type. */
#ifndef AIRLOCK_MODELS_QUANT_MIX_H
#define AIRLOCK_MODELS_QUANT_MIX_H

#include <stdbool.h>
#include <stdint.h>

typedef struct quant_mix {
    const char *name;    /* "Q4_K_M" */
    uint32_t file_type;  /* general.file_type value */
    uint32_t base;       /* enum ggml_type most tensors get */
} quant_mix;

/* Finds a mix by name (case-insensitive); NULL if unknown. */
const quant_mix *quant_mix_find(const char *name);
/* Comma-separated list of the names, for help texts. */
const char *quant_mix_names(void);

/* Model facts the rules need. */
typedef struct quant_mix_model {
    int n_layer;
    int n_gqa;          /* n_head / n_head_kv */
    bool has_output;    /* separate output.weight (else the embedding is tied) */
} quant_mix_model;

/* The type of tensor `name` with row length ne0 and n_dims dimensions. */
uint32_t quant_mix_tensor_type(const quant_mix *mix, const quant_mix_model *m, const char *name, int64_t ne0, int n_dims);

#endif
