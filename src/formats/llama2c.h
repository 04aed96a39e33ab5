/* llama2c.h - converting a llama2.c checkpoint (and its tokenizer.bin) to GGUF.
 *
 * Checkpoint (legacy version 0): seven int32 (dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means a
 * separate classifier), then float32 arrays: token embeddings [vocab][dim],
 * rms_att [L][dim], wq [L][dim][dim], wk, wv [L][kv_dim][dim], wo [L][dim][dim],
 * rms_ffn [L][dim], w1 [L][hidden][dim], w2 [L][dim][hidden], w3 [L][hidden][dim],
 * rms_final [dim], two RoPE tables [seq_len][head_size/2] (ignored), and the
 * classifier [vocab][dim] when not shared.
 * Tokenizer: int32 max_token_length, then per token: float32 score, int32
 * length, bytes (SentencePiece pieces with "▁" written as a space). */
#ifndef AIRLOCK_FORMATS_LLAMA2C_H
#define AIRLOCK_FORMATS_LLAMA2C_H

#include "core/error.h"

/* Writes a GGUF (architecture llama, all F32) at out_path. Returns 0 or -1
 * with err naming the file and what is inconsistent. */
int llama2c_convert(const char *checkpoint, const char *tokenizer_path, const char *out_path, al_err *err);

#endif
