/* llama2c.c - llama2.c checkpoint + tokenizer -> GGUF. */
#include "formats/llama2c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"

typedef struct l2c_config {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} l2c_config;

/* Reads the tokenizer file into parallel arrays. */
typedef struct l2c_vocab {
    char **text;
    float *score;
    int32_t *type;
    int n;
} l2c_vocab;

static void vocab_free(l2c_vocab *v) {
    for (int i = 0; v->text && i < v->n; i++) free(v->text[i]);
    free(v->text);
    free(v->score);
    free(v->type);
}

static int read_vocab(const char *path, int n_vocab, l2c_vocab *v, al_err *err) {
    mapped_file mf;
    if (mapped_file_open(&mf, path, err)) return -1;
    memset(v, 0, sizeof *v);
    v->text = calloc((size_t)n_vocab, sizeof *v->text);
    v->score = calloc((size_t)n_vocab, sizeof *v->score);
    v->type = calloc((size_t)n_vocab, sizeof *v->type);
    v->n = n_vocab;
    int rc = 0;
    size_t pos = 4;
    if (!v->text || !v->score || !v->type) rc = al_err_set(err, "out of memory");
    if (!rc && mf.size < 4) rc = al_err_set(err, "%s: too short for a llama2.c tokenizer", path);
    for (int i = 0; !rc && i < n_vocab; i++) {
        int32_t len;
        if (mf.size - pos < 8) {
            rc = al_err_set(err, "%s: truncated at token %d (offset %zu); the checkpoint has %d tokens", path, i, pos, n_vocab);
            break;
        }
        memcpy(&v->score[i], mf.data + pos, 4);
        memcpy(&len, mf.data + pos + 4, 4);
        pos += 8;
        if (len < 0 || (size_t)len > mf.size - pos) {
            rc = al_err_set(err, "%s: token %d has length %d past the end of the file (offset %zu)", path, i, len, pos - 4);
            break;
        }
        const char *s = (const char *)mf.data + pos;
        pos += (size_t)len;
        /* control tokens are stored as "\n<s>\n"; strip the newlines */
        if (i <= 2 && len >= 2 && s[0] == '\n' && s[len - 1] == '\n') {
            s++;
            len -= 2;
        }
        size_t spaces = 0;
        for (int k = 0; k < len; k++) spaces += s[k] == ' ';
        char *t = malloc((size_t)len + 2 * spaces + 1);
        if (!t) {
            rc = al_err_set(err, "out of memory");
            break;
        }
        size_t o = 0;
        for (int k = 0; k < len; k++) {
            if (s[k] == ' ') {
                memcpy(t + o, "\xe2\x96\x81", 3);
                o += 3;
            } else {
                t[o++] = s[k];
            }
        }
        t[o] = 0;
        v->text[i] = t;
        unsigned byte;
        char tail;
        if (i == 0) v->type[i] = TOKEN_TYPE_UNKNOWN;
        else if (i <= 2) v->type[i] = TOKEN_TYPE_CONTROL;
        else if (o == 6 && sscanf(t, "<0x%2X>%c", &byte, &tail) == 1) v->type[i] = TOKEN_TYPE_BYTE;
        else v->type[i] = TOKEN_TYPE_NORMAL;
    }
    mapped_file_close(&mf);
    if (rc) vocab_free(v);
    return rc;
}

int llama2c_convert(const char *checkpoint, const char *tokenizer_path, const char *out_path, al_err *err) {
    mapped_file mf;
    if (mapped_file_open(&mf, checkpoint, err)) return -1;
    l2c_config c;
    if (mf.size < sizeof c) {
        mapped_file_close(&mf);
        return al_err_set(err, "%s: too short for a llama2.c checkpoint header (%zu bytes)", checkpoint, mf.size);
    }
    memcpy(&c, mf.data, sizeof c);
    bool shared = c.vocab_size > 0;
    int64_t V = shared ? c.vocab_size : -(int64_t)c.vocab_size;
    if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || V <= 0 ||
        c.seq_len <= 0 || c.dim % c.n_heads || c.n_heads % c.n_kv_heads || c.dim > (1 << 16) || c.hidden_dim > (1 << 18) ||
        c.n_layers > 1024 || V > (1 << 22) || c.seq_len > (1 << 22) || (c.dim / c.n_heads) % 2) {
        mapped_file_close(&mf);
        return al_err_set(err, "%s: implausible llama2.c header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq %d)",
                          checkpoint, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len);
    }
    int64_t D = c.dim, H = c.hidden_dim, L = c.n_layers, hs = D / c.n_heads, KV = hs * c.n_kv_heads;
    /* expected float counts, in file order */
    int64_t n_emb = V * D, n_att = L * D, n_wq = L * D * D, n_wk = L * KV * D, n_wo = L * D * D, n_ffn = L * D,
            n_w1 = L * H * D, n_final = D, n_rope = (int64_t)c.seq_len * hs;
    int64_t total = n_emb + n_att + n_wq + 2 * n_wk + n_wo + n_ffn + 3 * n_w1 + n_final + n_rope + (shared ? 0 : n_emb);
    size_t want = sizeof c + (size_t)total * 4;
    if (mf.size != want) {
        mapped_file_close(&mf);
        return al_err_set(err, "%s: file is %zu bytes, the header implies %zu (dim %d, hidden %d, layers %d, vocab %d, seq %d)",
                          checkpoint, mf.size, want, c.dim, c.hidden_dim, c.n_layers, c.vocab_size, c.seq_len);
    }
    l2c_vocab voc;
    if (read_vocab(tokenizer_path, (int)V, &voc, err)) {
        mapped_file_close(&mf);
        return -1;
    }
    const float *p = (const float *)(mf.data + sizeof c);
    const float *emb = p, *att = emb + n_emb, *wq = att + n_att, *wk = wq + n_wq, *wv = wk + n_wk, *wo = wv + n_wk,
                *ffn = wo + n_wo, *w1 = ffn + n_ffn, *w2 = w1 + n_w1, *w3 = w2 + n_w1 /* w2 has as many floats as w1 */, *fin = w3 + n_w1,
                *cls = shared ? emb : fin + n_final + n_rope;
    gguf_writer *w = gguf_writer_init(3);
    int rc = w ? 0 : al_err_set(err, "out of memory");
    if (!rc) {
        rc |= gguf_writer_add_str(w, "general.architecture", "llama");
        rc |= gguf_writer_add_str(w, "general.name", "llama2.c import");
        rc |= gguf_writer_add_u32(w, "llama.context_length", (uint32_t)c.seq_len);
        rc |= gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)D);
        rc |= gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)H);
        rc |= gguf_writer_add_u32(w, "llama.block_count", (uint32_t)L);
        rc |= gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)c.n_heads);
        rc |= gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)c.n_kv_heads);
        rc |= gguf_writer_add_u32(w, "llama.rope.dimension_count", (uint32_t)hs);
        rc |= gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
        rc |= gguf_writer_add_u32(w, "general.file_type", 0);
        rc |= gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
        rc |= gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)voc.text, (uint64_t)V);
        rc |= gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, voc.score, (uint64_t)V);
        rc |= gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, voc.type, (uint64_t)V);
        rc |= gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        rc |= gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
        rc |= gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
        if (rc) rc = al_err_set(err, "out of memory building metadata");
    }
    int64_t ne[2];
#define ADD2(name, data, n0, n1) \
    (ne[0] = (n0), ne[1] = (n1), gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 2, ne, data, err))
#define ADD1(name, data, n0) (ne[0] = (n0), gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 1, ne, data, err))
    if (!rc) rc = ADD2("token_embd.weight", emb, D, V);
    if (!rc) rc = ADD1("output_norm.weight", fin, D);
    if (!rc && !shared) rc = ADD2("output.weight", cls, D, V);
    for (int64_t l = 0; l < L && !rc; l++) {
        char n[64];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)l), n)
        rc = ADD2(NAME("attn_q.weight"), wq + l * D * D, D, D);
        if (!rc) rc = ADD2(NAME("attn_k.weight"), wk + l * KV * D, D, KV);
        if (!rc) rc = ADD2(NAME("attn_v.weight"), wv + l * KV * D, D, KV);
        if (!rc) rc = ADD2(NAME("attn_output.weight"), wo + l * D * D, D, D);
        if (!rc) rc = ADD1(NAME("attn_norm.weight"), att + l * D, D);
        if (!rc) rc = ADD2(NAME("ffn_gate.weight"), w1 + l * H * D, D, H);
        if (!rc) rc = ADD2(NAME("ffn_down.weight"), w2 + l * D * H, H, D);
        if (!rc) rc = ADD2(NAME("ffn_up.weight"), w3 + l * H * D, D, H);
        if (!rc) rc = ADD1(NAME("ffn_norm.weight"), ffn + l * D, D);
#undef NAME
    }
#undef ADD1
#undef ADD2
    if (!rc) rc = gguf_writer_write(w, out_path, NULL, NULL, err);
    gguf_writer_free(w);
    vocab_free(&voc);
    mapped_file_close(&mf);
    return rc;
}
