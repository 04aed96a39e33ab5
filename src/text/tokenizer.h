/* tokenizer.h - text <-> token ids, built from GGUF metadata alone.
 *
 * Three families, picked by `tokenizer.ggml.model`:
 *   llama  SentencePiece BPE by piece score, with <0xXX> byte fallback;
 *   gpt2   byte-level BPE by merge rank, after the pre-tokenizer named by
 *          `tokenizer.ggml.pre` splits the text (regex list per family);
 *   bert   WordPiece, with BERT's normalisation (clean-up, CJK spacing,
 *          NFD accent stripping, lowercase, punctuation splitting).
 * Special tokens (control / user-defined) are matched in the text first,
 * leftmost-longest, when asked to (`parse_special`); user-defined tokens are
 * always matched. Invalid UTF-8 never fails: bad bytes become U+FFFD. */
#ifndef AIRLOCK_TEXT_TOKENIZER_H
#define AIRLOCK_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "formats/gguf.h"

enum tokenizer_kind { TOKENIZER_SPM, TOKENIZER_BPE, TOKENIZER_WPM };

/* GGUF token types (tokenizer.ggml.token_type). */
enum token_type {
    TOKEN_TYPE_UNDEFINED = 0,
    TOKEN_TYPE_NORMAL = 1,
    TOKEN_TYPE_UNKNOWN = 2,
    TOKEN_TYPE_CONTROL = 3,
    TOKEN_TYPE_USER_DEFINED = 4,
    TOKEN_TYPE_UNUSED = 5,
    TOKEN_TYPE_BYTE = 6,
};

#define TOKEN_NONE (-1)

typedef struct tokenizer tokenizer;

/* A growable list of token ids. */
typedef struct token_vec {
    int32_t *ids;
    size_t n, cap;
} token_vec;

void token_vec_free(token_vec *v);
int token_vec_push(token_vec *v, int32_t id);

/* Builds the tokenizer from a GGUF file's metadata. The context must outlive
 * the tokenizer (token strings point into the file mapping). Returns NULL
 * with err set when the metadata is missing or inconsistent. */
tokenizer *tokenizer_load(const gguf_ctx *ctx, al_err *err);
void tokenizer_free(tokenizer *tok);

/* Appends the ids of text[0..len) to out. add_special adds BOS/EOS (or
 * CLS/SEP) as the vocabulary's flags say; parse_special turns control-token
 * text such as "<|im_start|>" into its id instead of tokenizing it as text.
 * Returns 0, or -1 when out of memory. */
int tokenizer_encode(const tokenizer *tok, const char *text, size_t len, bool add_special, bool parse_special,
                     token_vec *out, al_err *err);

/* Writes the text of token id into buf (at most cap bytes). Control tokens
 * give "" unless `special`. Returns the piece length (which may exceed cap:
 * then the piece was truncated), or -1 for an id outside the vocabulary. */
int tokenizer_token_to_piece(const tokenizer *tok, int32_t id, bool special, char *buf, size_t cap);

/* Decodes ids into a malloc'd NUL-terminated string (length in *len).
 * Returns NULL when out of memory or an id is outside the vocabulary. */
char *tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, bool special, size_t *len, al_err *err);

enum tokenizer_kind tokenizer_get_kind(const tokenizer *tok);
const char *tokenizer_pre_name(const tokenizer *tok);
int32_t tokenizer_n_vocab(const tokenizer *tok);
/* Raw vocabulary entry (as stored in the file) and its type. */
const char *tokenizer_token_text(const tokenizer *tok, int32_t id, size_t *len);
enum token_type tokenizer_token_type(const tokenizer *tok, int32_t id);
int32_t tokenizer_bos(const tokenizer *tok);
int32_t tokenizer_eos(const tokenizer *tok);
/* The GGUF pre-tokenizer name (tokenizer.ggml.pre) whose split regexes are
 * exactly re[0..n), in order; NULL if none. Used when importing a Hugging
 * Face tokenizer.json. The result is valid until the next call on the thread. */
const char *tokenizer_pre_from_regexes(const char *const *re, int n);
/* True if tokenizer_encode with add_special puts BOS first. */
bool tokenizer_add_bos(const tokenizer *tok);
/* True for ids that end generation (EOS, EOT, EOM). */
bool tokenizer_is_eog(const tokenizer *tok, int32_t id);
/* Id of an exact vocabulary string, or TOKEN_NONE. */
int32_t tokenizer_find(const tokenizer *tok, const char *text, size_t len);

#endif
