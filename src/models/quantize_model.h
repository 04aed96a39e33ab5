/* quantize_model.h - re-type the tensors of a GGUF model file (`airlock quantize`).
 *
 * Reads a model (F32/F16/BF16, or already quantized with allow_requantize),
 * chooses each tensor's type by the file type's mix rules (quant_mix.h),
 * and streams the converted tensors to a new file with every metadata key
 * kept (general.file_type updated). Memory is about one tensor; the output
 * appears under its name only when complete. */
#ifndef AIRLOCK_MODELS_QUANTIZE_MODEL_H
#define AIRLOCK_MODELS_QUANTIZE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "models/convert.h"

typedef struct quantize_params {
    const char *in_path;
    const char *out_path;
    const char *type;        /* file type name: Q4_K_M, Q8_0, ... */
    int threads;             /* 0: all cores */
    bool allow_requantize;   /* accept already-quantized inputs (quality loss compounds) */
    bool pure;               /* every matrix in the base type */
    bool progress;
} quantize_params;

typedef struct quantize_result {
    uint64_t in_bytes;       /* tensor bytes of the input */
    uint64_t out_bytes;      /* tensor bytes of the output */
    uint64_t n_elems;        /* weights in the model */
    uint64_t n_tensors;
    uint64_t by_type[40];    /* tensors per output ggml type */
    double seconds;
} quantize_result;

/* Quantizes p->in_path into p->out_path. Returns 0 (and fills *res if
 * non-NULL), or -1 with err naming the file or tensor at fault. */
int quantize_model(const quantize_params *p, quantize_result *res, al_err *err);

#endif
