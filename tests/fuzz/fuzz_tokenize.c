/* fuzz_tokenize.c - libFuzzer target: arbitrary bytes through each real
 * vocabulary's tokenizer (SentencePiece, byte-level BPE, WordPiece), with
 * and without special-token parsing, then decoded back. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/gguf.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_VOCABS 4
static gguf_ctx *g_gguf[N_VOCABS];
static tokenizer *g_tok[N_VOCABS];

static void load_all(void) {
    static int done;
    if (done) return;
    done = 1;
    static const char *names[N_VOCABS] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-bert-bge.gguf",
                                          "ggml-vocab-deepseek-llm.gguf"};
    const char *dir = getenv("AIRLOCK_MODELS");
    for (int i = 0; i < N_VOCABS; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tokenizer-fixtures/%s", dir && *dir ? dir : AIRLOCK_MODELS_DIR, names[i]);
        al_err err;
        g_gguf[i] = gguf_open(path, &err);
        if (g_gguf[i]) g_tok[i] = tokenizer_load(g_gguf[i], &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_all();
    if (size == 0) return 0;
    int which = data[0] % N_VOCABS, parse_special = (data[0] >> 2) & 1;
    if (!g_tok[which]) return 0;
    token_vec ids = {0};
    al_err err;
    if (tokenizer_encode(g_tok[which], (const char *)data + 1, size - 1, true, parse_special, &ids, &err) == 0) {
        for (size_t i = 0; i < ids.n; i++)
            if (ids.ids[i] < 0 || ids.ids[i] >= tokenizer_n_vocab(g_tok[which])) abort();
        char *s = tokenizer_decode(g_tok[which], ids.ids, ids.n, true, NULL, &err);
        free(s);
    }
    token_vec_free(&ids);
    return 0;
}
