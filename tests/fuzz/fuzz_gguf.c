/* fuzz_gguf.c - libFuzzer target for the GGUF reader (and the tokenizer
 * loader on whatever the reader accepts). Any crash, leak, hang or
 * out-of-bounds read found here is a bug; its input goes into
 * tests/data/fuzz/gguf_regressions/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "formats/gguf.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    al_err err;
    gguf_ctx *g = gguf_parse(data, size, "fuzz.gguf", &err);
    if (!g) return 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        /* touch first and last byte of every tensor the reader accepted */
        const gguf_tensor *t = &g->tensors[i];
        if (t->nbytes) {
            volatile uint8_t a = ((const uint8_t *)t->data)[0];
            volatile uint8_t b = ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)a;
            (void)b;
        }
    }
    tokenizer *tok = tokenizer_load(g, &err);
    if (tok) {
        token_vec ids = {0};
        static const char text[] = "Hello world, it's 2024! <s> \xe2\x96\x81 \xff";
        if (tokenizer_encode(tok, text, sizeof text - 1, true, true, &ids, &err) == 0) {
            char *s = tokenizer_decode(tok, ids.ids, ids.n, true, NULL, &err);
            free(s);
        }
        token_vec_free(&ids);
        tokenizer_free(tok);
    }
    gguf_close(g);
    return 0;
}
