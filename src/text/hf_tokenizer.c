/* hf_tokenizer.c - tokenizer.json (+ configs) -> GGUF tokenizer.* keys. */
#include "text/hf_tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

/* The GPT-2 split regex, which a ByteLevel pre-tokenizer with use_regex applies. */
#define HF_RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define MAX_SPLITS 8

typedef struct hf_tok {
    const char *dir;
    json_t *tj, *cfg, *gen;  /* tokenizer.json, tokenizer_config.json, generation_config.json (may be NULL) */
    json_t *vocab;           /* tokenizer.json model.vocab: {token: id} */
    int n;                   /* tokens */
    char **text;             /* [n] */
    int32_t *type;           /* [n] */
    float *score;            /* [n] (llama model only) */
} hf_tok;

/* Loads dir/name as JSON; NULL (no error) if absent and optional. */
static int load_json(const char *dir, const char *name, bool required, json_t **out, al_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return required ? al_err_set(err, "%s: cannot open (a Hugging Face tokenizer directory has it)", path) : 0;
    json_error_t je;
    *out = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!*out) return al_err_set(err, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return al_err_set(err, "%s: not a JSON object", path);
    }
    return 0;
}

/* A special token's text from tokenizer_config.json: a string or {"content": ...}. */
static const char *special_text(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content"))) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static int find_token(const hf_tok *h, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < h->n; i++)
        if (h->text[i] && strcmp(h->text[i], s) == 0) return i;
    return -1;
}

/* Collects the split regexes a pre_tokenizer node applies, in order.
 * Returns 0, or -1 with err naming the unsupported node. */
static int collect_splits(json_t *node, const char **re, int *n, al_err *err) {
    if (!node || json_is_null(node)) return 0;
    const char *type = json_string_value(json_object_get(node, "type"));
    if (!type) return al_err_set(err, "tokenizer.json: pre_tokenizer without a \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(node, "pretokenizers");
        if (!json_is_array(list)) return al_err_set(err, "tokenizer.json: Sequence pre_tokenizer without \"pretokenizers\"");
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x) if (collect_splits(x, re, n, err)) return -1;
        return 0;
    }
    const char *add = NULL;
    if (strcmp(type, "ByteLevel") == 0) {
        json_t *ur = json_object_get(node, "use_regex");
        if (!ur || json_is_true(ur)) add = HF_RE_GPT2;
        else return 0;
    } else if (strcmp(type, "Split") == 0) {
        json_t *pat = json_object_get(node, "pattern");
        add = json_string_value(json_object_get(pat, "Regex"));
        if (!add) return al_err_set(err, "tokenizer.json: Split pre_tokenizer without a \"Regex\" pattern");
    } else if (strcmp(type, "Digits") == 0) {
        add = json_is_true(json_object_get(node, "individual_digits")) ? "\\p{N}" : "\\p{N}+";
    } else if (strcmp(type, "Metaspace") == 0) {
        return 0;
    } else {
        return al_err_set(err, "tokenizer.json: pre_tokenizer type \"%s\" is not supported (pass --pre NAME)", type);
    }
    if (*n >= MAX_SPLITS) return al_err_set(err, "tokenizer.json: more than %d split patterns", MAX_SPLITS);
    re[(*n)++] = add;
    return 0;
}

/* True if the normalizer or pre-tokenizer puts "▁" before the text (Llama 2 style). */
static bool adds_space_prefix(json_t *tj) {
    json_t *norm = json_object_get(tj, "normalizer");
    const char *nt = json_string_value(json_object_get(norm, "type"));
    if (nt && strcmp(nt, "Sequence") == 0) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(norm, "normalizers"), i, x) {
            const char *t = json_string_value(json_object_get(x, "type"));
            if (t && strcmp(t, "Prepend") == 0) return true;
        }
    } else if (nt && strcmp(nt, "Prepend") == 0) {
        return true;
    }
    json_t *pre = json_object_get(tj, "pre_tokenizer");
    const char *pt = json_string_value(json_object_get(pre, "type"));
    if (pt && strcmp(pt, "Metaspace") == 0) {
        const char *scheme = json_string_value(json_object_get(pre, "prepend_scheme"));
        if (scheme) return strcmp(scheme, "never") != 0;
        return !json_is_false(json_object_get(pre, "add_prefix_space"));
    }
    return false;
}

/* True if the post-processor puts token `bos` first in a single sequence. */
static bool post_adds(json_t *pp, const char *bos) {
    if (!pp || !bos) return false;
    const char *t = json_string_value(json_object_get(pp, "type"));
    if (!t) return false;
    if (strcmp(t, "Sequence") == 0) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(pp, "processors"), i, x) if (post_adds(x, bos)) return true;
        return false;
    }
    if (strcmp(t, "TemplateProcessing") != 0) return false;
    json_t *first = json_array_get(json_object_get(pp, "single"), 0);
    const char *id = json_string_value(json_object_get(json_object_get(first, "SpecialToken"), "id"));
    return id && strcmp(id, bos) == 0;
}

static void hf_tok_free(hf_tok *h) {
    for (int i = 0; h->text && i < h->n; i++) free(h->text[i]);
    free(h->text);
    free(h->type);
    free(h->score);
    json_decref(h->tj);
    json_decref(h->cfg);
    json_decref(h->gen);
}

/* Fills h->text/type from model.vocab and added_tokens, padded to n_vocab. */
static int build_vocab(hf_tok *h, int n_vocab, al_err *err) {
    json_t *added = json_object_get(h->tj, "added_tokens");
    int max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(h->vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24))
            return al_err_set(err, "tokenizer.json: model.vocab[\"%.40s\"] is not a token id", key);
        if (json_integer_value(v) > max_id) max_id = (int)json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 24) ||
            !json_is_string(json_object_get(v, "content")))
            return al_err_set(err, "tokenizer.json: added_tokens[%zu] lacks an id or content", i);
        if (json_integer_value(id) > max_id) max_id = (int)json_integer_value(id);
    }
    h->n = max_id + 1 > n_vocab ? max_id + 1 : n_vocab;
    if (h->n <= 0) return al_err_set(err, "tokenizer.json: empty vocabulary");
    h->text = calloc((size_t)h->n, sizeof *h->text);
    h->type = calloc((size_t)h->n, sizeof *h->type);
    h->score = calloc((size_t)h->n, sizeof *h->score);
    if (!h->text || !h->type || !h->score) return al_err_set(err, "out of memory");
    json_object_foreach(h->vocab, key, v) {
        int id = (int)json_integer_value(v);
        if (h->text[id]) return al_err_set(err, "tokenizer.json: id %d is given to two tokens", id);
        if (!(h->text[id] = strdup(key))) return al_err_set(err, "out of memory");
        h->type[id] = TOKEN_TYPE_NORMAL;
    }
    json_array_foreach(added, i, v) {
        int id = (int)json_integer_value(json_object_get(v, "id"));
        const char *content = json_string_value(json_object_get(v, "content"));
        if (h->text[id] && strcmp(h->text[id], content) != 0)
            return al_err_set(err, "tokenizer.json: added token %d \"%.40s\" clashes with vocab token \"%.40s\"", id, content, h->text[id]);
        free(h->text[id]);
        if (!(h->text[id] = strdup(content))) return al_err_set(err, "out of memory");
        h->type[id] = json_is_true(json_object_get(v, "special")) ? TOKEN_TYPE_CONTROL : TOKEN_TYPE_USER_DEFINED;
    }
    for (int k = 0; k < h->n; k++) {
        if (h->text[k]) continue;
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", k);
        if (!(h->text[k] = strdup(pad))) return al_err_set(err, "out of memory");
        h->type[k] = TOKEN_TYPE_UNUSED;
    }
    return 0;
}

/* Splits merge m (a "a b" string or an ["a", "b"] pair) into buf as "a b";
 * *cut is where b starts. Returns 0 or -1. */
static int merge_text(json_t *m, char *buf, size_t cap, size_t *cut) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp || sp == s || (size_t)snprintf(buf, cap, "%s", s) >= cap) return -1;
        *cut = (size_t)(sp - s) + 1;
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
        const char *a = json_string_value(json_array_get(m, 0)), *b = json_string_value(json_array_get(m, 1));
        if ((size_t)snprintf(buf, cap, "%s %s", a, b) >= cap) return -1;
        *cut = strlen(a) + 1;
        return 0;
    }
    return -1;
}

int hf_tokenizer_to_gguf(const char *dir, int n_vocab, const char *pre_override, gguf_writer *w, hf_tokenizer_info *info,
                         al_err *err) {
    hf_tok h = {.dir = dir};
    memset(info, 0, sizeof *info);
    info->bos = info->eos = -1;
    int rc = load_json(dir, "tokenizer.json", true, &h.tj, err);
    if (!rc) rc = load_json(dir, "tokenizer_config.json", false, &h.cfg, err);
    if (!rc) rc = load_json(dir, "generation_config.json", false, &h.gen, err);
    if (rc) goto out;
    json_t *model = json_object_get(h.tj, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    h.vocab = json_object_get(model, "vocab");
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        rc = al_err_set(err, "%s/tokenizer.json: model type \"%s\" is not supported (BPE models are: Llama, Mistral, Qwen)", dir,
                        mtype ? mtype : "(none)");
        goto out;
    }
    if (!json_is_object(h.vocab)) {
        rc = al_err_set(err, "%s/tokenizer.json: model.vocab is not an object", dir);
        goto out;
    }
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges)) {
        rc = al_err_set(err, "%s/tokenizer.json: model.merges is not an array", dir);
        goto out;
    }
    if ((rc = build_vocab(&h, n_vocab, err))) goto out;
    bool spm = json_is_true(json_object_get(model, "byte_fallback"));
    snprintf(info->model, sizeof info->model, "%s", spm ? "llama" : "gpt2");

    /* merges: GGUF "a b" strings for byte-level BPE; for byte-fallback
     * models, a SentencePiece score per token: earlier merges score higher */
    size_t n_merges = json_array_size(merges);
    char **mstr = spm ? NULL : calloc(n_merges ? n_merges : 1, sizeof *mstr);
    if (!spm && !mstr) {
        rc = al_err_set(err, "out of memory");
        goto out;
    }
    if (spm)
        for (int i = 0; i < h.n; i++) h.score[i] = h.type[i] == TOKEN_TYPE_NORMAL && strlen(h.text[i]) > 1 ? -1e9f : 0.0f;
    for (size_t i = 0; i < n_merges && !rc; i++) {
        char buf[1024];
        size_t cut;
        if (merge_text(json_array_get(merges, i), buf, sizeof buf, &cut)) {
            rc = al_err_set(err, "%s/tokenizer.json: merges[%zu] is not a pair of tokens", dir, i);
            break;
        }
        if (spm) {
            memmove(buf + cut - 1, buf + cut, strlen(buf + cut) + 1); /* "a b" -> "ab" */
            json_t *id = json_object_get(h.vocab, buf);
            if (json_is_integer(id) && h.score[json_integer_value(id)] < -(float)i) h.score[json_integer_value(id)] = -(float)i;
        } else if (!(mstr[i] = strdup(buf))) {
            rc = al_err_set(err, "out of memory");
        }
    }
    if (spm) {
        for (int i = 0; i < h.n; i++) {
            unsigned b;
            char tail;
            if (h.type[i] == TOKEN_TYPE_NORMAL && sscanf(h.text[i], "<0x%2X>%c", &b, &tail) == 1 && strlen(h.text[i]) == 6)
                h.type[i] = TOKEN_TYPE_BYTE;
        }
        const char *unk = json_string_value(json_object_get(model, "unk_token"));
        int u = find_token(&h, unk);
        if (u >= 0) h.type[u] = TOKEN_TYPE_UNKNOWN;
    }
    if (!rc && !spm) {
        if (gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mstr, n_merges))
            rc = al_err_set(err, "out of memory");
    }
    for (size_t i = 0; mstr && i < n_merges; i++) free(mstr[i]);
    free(mstr);
    if (rc) goto out;

    /* pre-tokenizer */
    if (!spm) {
        const char *pre = pre_override;
        if (!pre) {
            const char *re[MAX_SPLITS];
            int nre = 0;
            if ((rc = collect_splits(json_object_get(h.tj, "pre_tokenizer"), re, &nre, err))) {
                al_err_prefix(err, "%s", dir);
                goto out;
            }
            pre = tokenizer_pre_from_regexes(re, nre);
            if (!pre) {
                rc = al_err_set(err, "%s/tokenizer.json: the pre-tokenizer's %d split pattern(s) (first: \"%.80s\") match none airlock "
                                     "knows; pass --pre NAME (e.g. llama-bpe, qwen2, gpt-2) if you know which it is",
                                dir, nre, nre ? re[0] : "");
                goto out;
            }
        }
        snprintf(info->pre, sizeof info->pre, "%s", pre);
    }

    /* special tokens and flags */
    json_t *cfg = h.cfg;
    const char *bos_s = special_text(json_object_get(cfg, "bos_token")), *eos_s = special_text(json_object_get(cfg, "eos_token"));
    const char *unk_s = special_text(json_object_get(cfg, "unk_token")), *pad_s = special_text(json_object_get(cfg, "pad_token"));
    info->bos = find_token(&h, bos_s);
    info->eos = find_token(&h, eos_s);
    json_t *geos = json_object_get(h.gen, "eos_token_id");
    if (info->eos < 0 && json_is_integer(geos)) info->eos = (int)json_integer_value(geos);
    if (info->eos < 0 && json_is_array(geos) && json_is_integer(json_array_get(geos, 0))) info->eos = (int)json_integer_value(json_array_get(geos, 0));
    if (info->bos < 0 && json_is_integer(json_object_get(h.gen, "bos_token_id")))
        info->bos = (int)json_integer_value(json_object_get(h.gen, "bos_token_id"));
    if (info->bos >= h.n) info->bos = -1;
    if (info->eos >= h.n) info->eos = -1;
    int eot = -1, eom = -1;
    if (json_is_array(geos)) {
        size_t i;
        json_t *x;
        json_array_foreach(geos, i, x) {
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= h.n || json_integer_value(x) == info->eos) continue;
            int id = (int)json_integer_value(x);
            if (strcmp(h.text[id], "<|eom_id|>") == 0) eom = id;
            else if (eot < 0) eot = id;
        }
    }
    json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
    bool add_bos = json_is_boolean(ab) ? json_is_true(ab) : spm ? true : post_adds(json_object_get(h.tj, "post_processor"), bos_s);
    bool add_eos = json_is_true(ae);
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *tmpl = json_string_value(ct);
    if (json_is_array(ct)) { /* [{"name": "default", "template": ...}, ...] */
        size_t i;
        json_t *x;
        json_array_foreach(ct, i, x) {
            const char *nm = json_string_value(json_object_get(x, "name"));
            if (nm && strcmp(nm, "default") == 0) tmpl = json_string_value(json_object_get(x, "template"));
        }
    }
    info->has_chat_template = tmpl != NULL;
    info->n_tokens = h.n;

    rc |= gguf_writer_add_str(w, "tokenizer.ggml.model", info->model);
    if (!spm) rc |= gguf_writer_add_str(w, "tokenizer.ggml.pre", info->pre);
    rc |= gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)h.text, (uint64_t)h.n);
    rc |= gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, h.type, (uint64_t)h.n);
    if (spm) rc |= gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, h.score, (uint64_t)h.n);
    if (info->bos >= 0) rc |= gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)info->bos);
    if (info->eos >= 0) rc |= gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)info->eos);
    if (eot >= 0) rc |= gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)eot);
    if (eom >= 0) rc |= gguf_writer_add_u32(w, "tokenizer.ggml.eom_token_id", (uint32_t)eom);
    int unk = find_token(&h, unk_s ? unk_s : spm ? json_string_value(json_object_get(model, "unk_token")) : NULL);
    if (unk >= 0) rc |= gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
    int pad = find_token(&h, pad_s);
    if (pad >= 0) rc |= gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
    rc |= gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", add_bos && info->bos >= 0);
    rc |= gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", add_eos && info->eos >= 0);
    if (spm) rc |= gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", adds_space_prefix(h.tj));
    if (tmpl) rc |= gguf_writer_add_str(w, "tokenizer.chat_template", tmpl);
    if (rc) rc = al_err_set(err, "out of memory writing tokenizer metadata");
out:
    hf_tok_free(&h);
    return rc;
}
