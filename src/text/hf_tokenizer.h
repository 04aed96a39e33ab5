/* hf_tokenizer.h - a Hugging Face tokenizer directory as GGUF tokenizer metadata.
 *
 * Reads tokenizer.json (a BPE model: byte-level like GPT-2/Llama 3/Qwen, or
 * with byte fallback like Llama 2/Mistral, which becomes GGUF's SentencePiece
 * "llama" model with scores from the merge ranks), tokenizer_config.json
 * (special tokens, add_bos/add_eos, chat_template) and generation_config.json
 * (end-of-generation ids), and writes the tokenizer.* keys GGUF runtimes
 * read: tokens, token types, scores or merges, the pre-tokenizer name
 * (found by matching the split regexes against the ones airlock knows),
 * special token ids and the chat template. */
#ifndef AIRLOCK_TEXT_HF_TOKENIZER_H
#define AIRLOCK_TEXT_HF_TOKENIZER_H

#include "core/error.h"
#include "formats/gguf.h"

typedef struct hf_tokenizer_info {
    int n_tokens;         /* tokens written (>= the n_vocab asked for) */
    char model[16];       /* "gpt2" or "llama" */
    char pre[64];         /* pre-tokenizer name ("" for llama) */
    int bos, eos;         /* -1 when none */
    int has_chat_template;
} hf_tokenizer_info;

/* Adds the tokenizer of Hugging Face directory dir to w, padding the token
 * list with unused tokens to n_vocab (the model's embedding rows) when the
 * tokenizer has fewer. pre_override, if not NULL, names the pre-tokenizer
 * instead of detecting it. Returns 0, or -1 with err naming the file and
 * field at fault. */
int hf_tokenizer_to_gguf(const char *dir, int n_vocab, const char *pre_override, gguf_writer *w, hf_tokenizer_info *info,
                         al_err *err);

#endif
