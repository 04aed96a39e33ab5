/* synth.h - synthetic models at the exact shapes of real ones.
 *
 * Writes a valid GGUF with seeded random weights (scaled like trained
 * weights: N(0, 1/sqrt(fan_in)) for matrices, ~1 for norms) and the real
 * vocabulary of a vocab GGUF, at a named shape (smollm2-135m, qwen2.5-0.5b,
 * llama-3.2-1b, qwen3-0.6b, llama-3.1-8b, ...), in any supported file type
 * with the usual tensor mix. Speed does not depend on weight values, so this
 * is how airlock is tested and benchmarked at sizes whose real weights cannot
 * be downloaded, and how a user estimates speed before obtaining a model. */
#ifndef AIRLOCK_MODELS_SYNTH_H
#define AIRLOCK_MODELS_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "models/llm.h"

typedef struct synth_shape {
    const char *name;
    llm_arch arch;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    float rope_base, rms_eps;
    bool tied;
    float llama3_rope_factor; /* > 0: Llama 3.1 long-context rope_freqs with this factor */
    float embed_sd;           /* embedding standard deviation (0: 0.02, like trained models) */
} synth_shape;

/* The named shape, or NULL. */
const synth_shape *synth_find_shape(const char *name);
/* Prints the shape table (name, arch, sizes, parameter count). */
void synth_print_shapes(void);

typedef struct synth_params {
    const synth_shape *shape;
    const char *vocab_path;  /* GGUF whose tokenizer.* metadata is used */
    const char *type;        /* file type name: Q4_K_M, Q8_0, F16, ... */
    const char *out_path;
    uint64_t seed;
    int n_layer_override;    /* > 0: fewer layers (tests) */
    int threads;
    bool pure;               /* every matrix in the base type (no mix rules) */
    bool progress;
} synth_params;

/* Writes the model. Returns 0, or -1 with err set. */
int synth_write(const synth_params *p, al_err *err);

#endif
