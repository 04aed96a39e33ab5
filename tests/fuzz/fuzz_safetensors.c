/* fuzz_safetensors.c - libFuzzer target for the safetensors reader. Any
 * crash, leak, hang or out-of-bounds read found here is a bug; its input
 * goes into tests/data/fuzz/safetensors_regressions/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "formats/safetensors.h"
#include "kernels/quants.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    al_err err;
    st_file *f = st_parse(data, size, "fuzz.safetensors", &err);
    if (!f) return 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        /* every accepted tensor's bytes are readable, and convertible */
        if (t->nbytes) {
            volatile uint8_t a = ((const uint8_t *)t->data)[0];
            volatile uint8_t b = ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)a;
            (void)b;
        }
        if (st_dtype_ggml(t->dtype) >= 0 && t->n_elems > 0 && t->n_elems <= 4096) {
            float *out = malloc((size_t)t->n_elems * sizeof *out);
            if (out) dequantize_row((uint32_t)st_dtype_ggml(t->dtype), t->data, out, t->n_elems);
            free(out);
        }
    }
    st_close(f);
    return 0;
}
