/* llm.h - LLaMA-family decoder-only language models (llama, qwen2, qwen3).
 *
 * llm_load maps a GGUF file, reads every hyperparameter from its metadata,
 * finds and shape-checks every tensor before any compute, and builds the
 * tokenizer. An llm_ctx holds one sequence's KV cache and activations. */
#ifndef AIRLOCK_MODELS_LLM_H
#define AIRLOCK_MODELS_LLM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "formats/gguf.h"
#include "kernels/ops.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

typedef enum llm_arch { LLM_ARCH_LLAMA, LLM_ARCH_QWEN2, LLM_ARCH_QWEN3 } llm_arch;

typedef struct llm_hparams {
    llm_arch arch;
    int n_vocab;
    int n_embd;     /* model width */
    int n_layer;
    int n_head;     /* query heads */
    int n_head_kv;  /* key/value heads (GQA when < n_head) */
    int head_dim;   /* per-head size (key_length) */
    int n_ff;       /* feed-forward width */
    int n_ctx_train;
    int rope_dim;   /* leading dimensions of each head that are rotated */
    bool rope_neox; /* pairing (i, i+d/2) instead of (2i, 2i+1) */
    float rope_base;
    float rope_freq_scale; /* 1 / linear scaling factor */
    float rms_eps;
} llm_hparams;

typedef struct llm_layer {
    const float *attn_norm;           /* [n_embd] */
    weight wq, wk, wv, wo;            /* [n_embd -> n_head*head_dim], ... */
    const float *bq, *bk, *bv;        /* qwen2 biases, or NULL */
    const float *q_norm, *k_norm;     /* qwen3 per-head RMSNorm [head_dim], or NULL */
    const float *ffn_norm;            /* [n_embd] */
    weight w_gate, w_up, w_down;      /* [n_embd -> n_ff], [n_embd -> n_ff], [n_ff -> n_embd] */
} llm_layer;

typedef struct llm_model {
    gguf_ctx *gguf;
    tokenizer *tok;
    llm_hparams hp;
    weight tok_embd;                  /* [n_vocab rows of n_embd] */
    const float *output_norm;         /* [n_embd] */
    weight output;                    /* [n_embd -> n_vocab]; token_embd when tied */
    bool tied_output;
    const float *rope_freqs;          /* [rope_dim/2] Llama 3.1 factors, or NULL */
    float *rope_theta;                /* [rope_dim/2] angle per position of each rotated pair */
    llm_layer *layers;                /* [n_layer] */
    uint64_t weight_bytes;            /* bytes of tensor data */
    void *repacked;                   /* matrices rearranged for the SIMD kernels, or NULL */
} llm_model;

typedef enum kv_type { KV_F16, KV_F32 } kv_type;

/* Activations for a batch of up to n_batch tokens (any mix of sequences).
 * One forward pass at a time may use a workspace. */
typedef struct llm_ws llm_ws;

/* One sequence: its KV cache and how many positions it holds. */
typedef struct llm_ctx {
    const llm_model *m;
    int n_ctx;        /* positions the cache holds */
    int pos;          /* tokens already in the cache */
    kv_type kv;
    void *k_cache;    /* [n_layer][n_head_kv][n_ctx][head_dim], F16 or F32 */
    void *v_cache;    /* same layout, in k_cache's allocation */
    llm_ws *ws;       /* for llm_decode / llm_prefill on this context alone */
    float *logits;    /* [n_vocab] last logits of llm_decode / llm_prefill */
} llm_ctx;

/* Loads a model. Returns NULL with err naming the file and what is wrong
 * (missing tensor, wrong shape, unsupported architecture or type). */
llm_model *llm_load(const char *path, al_err *err);
void llm_free(llm_model *m);

/* A context of n_ctx positions (0: the model's training context). */
llm_ctx *llm_ctx_init(const llm_model *m, int n_ctx, kv_type kv, al_err *err);
/* The same with its own workspace for n_batch-token batches (llm_decode,
 * llm_prefill), or none when n_batch is 0: such a context only takes part in
 * llm_forward batches run through a shared workspace (the server's slots). */
llm_ctx *llm_ctx_init_batch(const llm_model *m, int n_ctx, kv_type kv, int n_batch, al_err *err);
void llm_ctx_free(llm_ctx *c);
/* Forgets the sequence (keeps the allocation). */
void llm_ctx_reset(llm_ctx *c);
/* Bytes held by the KV cache. */
uint64_t llm_ctx_kv_bytes(const llm_ctx *c);

/* A workspace for batches of up to n_batch tokens. NULL when out of memory. */
llm_ws *llm_ws_init(const llm_model *m, int n_batch, al_err *err);
void llm_ws_free(llm_ws *ws);
int llm_ws_n_batch(const llm_ws *ws);

/* A batch: token i extends sequence seq[i]; tokens of one sequence appear
 * in order and take its next positions. want_logits[i] asks for token i's
 * logits (NULL: the last token of each sequence in the batch). */
typedef struct llm_batch {
    int n;
    const int32_t *tokens;
    llm_ctx *const *seq;
    const bool *want_logits;
} llm_batch;

/* Runs the batch through the model in one pass: weights are read once for
 * all its tokens. Appends every token's keys and values to its sequence's
 * cache and writes the logits of the tokens that asked, in batch order, to
 * logits ([n_wanted][n_vocab]). Returns n_wanted, or -1 with err set (a
 * token out of range, a full context, a batch larger than the workspace,
 * out of memory), in which case no sequence has changed. */
int llm_forward(llm_ws *ws, const llm_batch *b, float *logits, al_err *err);

/* Runs one token at position c->pos and returns the logits for the next
 * token ([n_vocab], owned by c), or NULL with err set. */
const float *llm_decode(llm_ctx *c, int32_t token, al_err *err);

/* Runs n tokens (a prompt) in batches and returns the logits after the last
 * one (owned by c), or NULL with err set. */
const float *llm_prefill(llm_ctx *c, const int32_t *tokens, int n, al_err *err);

const char *llm_arch_name(llm_arch a);

/* Writes general.architecture and the "<arch>.*" hyperparameter keys that
 * llm_load reads (context, sizes, heads, rope, norm epsilon, vocab size) for
 * hp to w. Used by the tools that create model files. Returns 0, or -1 when
 * out of memory. */
int llm_hparams_write(gguf_writer *w, const llm_hparams *hp);

/* The model's chat template (`tokenizer.chat_template`, with its BOS/EOS
 * texts), or the family force_name names. Returns 0, or -1 with err saying
 * the template is not recognised and how to pick a family. */
int llm_chat_template_init(const llm_model *m, const char *force_name, chat_template *t, al_err *err);

/* Tokenizes a rendered conversation: control tokens in the text become their
 * ids, and BOS is added unless the template already wrote it. Returns 0 or
 * -1 with err. */
int llm_tokenize_chat(const llm_model *m, const chat_template *t, const char *text, token_vec *out, al_err *err);

#endif
