/* tokenizer.c - SentencePiece, byte-level BPE and WordPiece tokenizers. */
#include "text/tokenizer.h"

#include <assert.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "text/regex.h"
#include "text/unicode.h"

#define MAX_PRE_REGEX 8
#define WPM_MAX_WORD_CHARS 100

/* ---- string -> id hash table (open addressing) ------------------------------ */

typedef struct str_entry {
    const char *s;
    uint32_t len;
    int32_t id;
} str_entry;

typedef struct str_map {
    str_entry *slots;
    uint64_t mask;
} str_map;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9E3779B97F4A7C15ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, s + i, n - i);
    h = (h ^ tail) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 32;
    return h;
}

static int str_map_init(str_map *m, size_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap *= 2;
    m->slots = calloc((size_t)cap, sizeof *m->slots);
    m->mask = cap - 1;
    return m->slots ? 0 : -1;
}

/* Inserts s -> id unless s is present (first one wins). */
static void str_map_put(str_map *m, const char *s, size_t len, int32_t id) {
    uint64_t i = hash_bytes(s, len) & m->mask;
    while (m->slots[i].s) {
        if (m->slots[i].len == len && memcmp(m->slots[i].s, s, len) == 0) return;
        i = (i + 1) & m->mask;
    }
    m->slots[i] = (str_entry){s, (uint32_t)len, id};
}

static int32_t str_map_get(const str_map *m, const char *s, size_t len) {
    uint64_t i = hash_bytes(s, len) & m->mask;
    while (m->slots[i].s) {
        if (m->slots[i].len == len && memcmp(m->slots[i].s, s, len) == 0) return m->slots[i].id;
        i = (i + 1) & m->mask;
    }
    return TOKEN_NONE;
}

/* ---- (id, id) -> merge hash table ------------------------------------------- */

typedef struct pair_entry {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t merged;
} pair_entry;

typedef struct pair_map {
    pair_entry *slots;
    uint64_t mask;
} pair_map;

static inline uint64_t pair_key(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }
static inline uint64_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static const pair_entry *pair_map_get(const pair_map *m, int32_t a, int32_t b) {
    uint64_t k = pair_key(a, b);
    uint64_t i = pair_hash(k) & m->mask;
    while (m->slots[i].key) {
        if (m->slots[i].key == k) return &m->slots[i];
        i = (i + 1) & m->mask;
    }
    return NULL;
}

/* ---- the tokenizer ------------------------------------------------------------ */

typedef struct token_data {
    const char *text;
    uint32_t len;
    float score;
    uint8_t type;
} token_data;

struct tokenizer {
    enum tokenizer_kind kind;
    char pre[64];
    int32_t n_vocab;
    token_data *tokens;
    str_map map;
    pair_map merges;
    regex *pre_re[MAX_PRE_REGEX];
    int n_pre_re;
    bool ignore_merges;
    bool add_space_prefix;
    bool add_bos, add_eos;
    int32_t bos, eos, eot, eom, unk, sep, cls, pad;
    int32_t byte_tok[256];     /* SPM: <0xXX>; BPE: the byte-level character */
    char byte_chr[256][3];     /* BPE: UTF-8 of each byte's stand-in character */
    uint8_t byte_chr_len[256];
    int32_t *specials;         /* control / user-defined / unknown ids, by first byte then length */
    int32_t n_specials;
    int32_t special_start[257];/* specials[special_start[b] .. special_start[b+1]) begin with byte b */
    bool wpm_hash_prefix;      /* WordPiece vocab uses "##" continuations (else "▁" word starts) */
    bool spm_split_words;      /* no token holds "▁" after another character: words merge independently */
    uint32_t max_token_len;
};

void token_vec_free(token_vec *v) {
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

int token_vec_push(token_vec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        int32_t *ni = realloc(v->ids, nc * sizeof *ni);
        if (!ni) return -1;
        v->ids = ni;
        v->cap = nc;
    }
    v->ids[v->n++] = id;
    return 0;
}

/* Pre-tokenizer regex lists, named by tokenizer.ggml.pre. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct pre_def {
    const char *names; /* space-separated aliases */
    const char *re[MAX_PRE_REGEX];
    int clean_spaces; /* unused for now: decode is lossless */
    bool add_bos;
    bool ignore_merges;
} pre_def;

static const pre_def k_pre[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+"}, 1, false, false},
    {"gpt-2 gpt2 gpt-neox mpt olmo jais phi-2 roberta-bpe jina-es jina-de gigachat jina-v1-en jina-v2-es jina-v2-de jina-v2-code",
     {RE_GPT2}, 1, false, false},
    {"llama3 llama-v3 llama-bpe falcon3 dbrx smaug-bpe", {RE_LLAMA3}, 1, true, true},
    {"qwen2 deepseek-r1-qwen stablelm2 megrez", {RE_QWEN2}, 0, false, false},
    {"chatglm-bpe", {RE_LLAMA3}, 1, false, false},
    {"deepseek-llm",
     {"[\r\n]",
      "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+", "\\s+$", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}+"},
     0, false, false},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}"}, 0, false, false},
    {"deepseek-v3",
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     0, false, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, 1, false, false},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b", {"\\p{N}", RE_GPT2}, 1, false, false},
    {"poro-chat bloom gpt3-finnish", {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"}, 0, false, false},
    {"viking", {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+", "\\p{N}"}, 0, false, false},
    {"tekken",
     {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     0, true, true},
    {"chameleon",
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]",
      RE_GPT2},
     0, true, false},
};

static const pre_def *find_pre(const char *name) {
    size_t nl = strlen(name);
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++) {
        const char *p = k_pre[i].names;
        while (*p) {
            const char *sp = strchr(p, ' ');
            size_t l = sp ? (size_t)(sp - p) : strlen(p);
            if (l == nl && memcmp(p, name, l) == 0) return &k_pre[i];
            p += l;
            while (*p == ' ') p++;
        }
    }
    return NULL;
}

/* GPT-2's reversible byte -> printable character map. */
static uint32_t byte_to_cp(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
    return 256u + (uint32_t)n;
}

static int16_t g_inv[68]; /* byte for each codepoint byte_to_cp puts above 255 */
static pthread_once_t g_inv_once = PTHREAD_ONCE_INIT;

static void inv_init(void) {
    for (int b = 0; b < 256; b++) {
        uint32_t c = byte_to_cp(b);
        if (c >= 256) g_inv[c - 256] = (int16_t)b;
    }
}

/* Inverse of byte_to_cp; -1 for codepoints that stand for no byte. */
static int cp_to_byte(uint32_t cp) {
    if (cp < 256) {
        if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
        return -1;
    }
    pthread_once(&g_inv_once, inv_init); /* tokenizers run on many threads (the server) */
    return cp - 256 < 68 ? g_inv[cp - 256] : -1;
}

static int32_t get_id_key(const gguf_ctx *ctx, const char *key, int32_t dflt, int32_t n_vocab) {
    uint32_t v;
    if (gguf_find_key(ctx, key) < 0 || gguf_get_u32(ctx, key, &v, NULL)) return dflt;
    return (int32_t)v < n_vocab ? (int32_t)v : dflt;
}

static bool get_bool_key(const gguf_ctx *ctx, const char *key, bool dflt) {
    bool b;
    if (gguf_find_key(ctx, key) < 0 || gguf_get_bool(ctx, key, &b, NULL)) return dflt;
    return b;
}

static int cmp_special(const void *a, const void *b, void *arg) {
    const tokenizer *t = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint8_t bx = (uint8_t)t->tokens[x].text[0], by = (uint8_t)t->tokens[y].text[0];
    if (bx != by) return bx < by ? -1 : 1;
    if (t->tokens[x].len != t->tokens[y].len) return t->tokens[x].len > t->tokens[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int build_specials(tokenizer *t, al_err *err) {
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->tokens[i].type;
        if ((ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED || ty == TOKEN_TYPE_UNKNOWN) && t->tokens[i].len > 0) n++;
    }
    t->specials = malloc((size_t)(n ? n : 1) * sizeof *t->specials);
    if (!t->specials) return al_err_set(err, "out of memory");
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->tokens[i].type;
        if ((ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED || ty == TOKEN_TYPE_UNKNOWN) && t->tokens[i].len > 0)
            t->specials[n++] = i;
    }
    t->n_specials = n;
    qsort_r(t->specials, (size_t)n, sizeof *t->specials, cmp_special, t);
    int32_t j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < n && (uint8_t)t->tokens[t->specials[j]].text[0] < b) j++;
        t->special_start[b] = j;
    }
    return 0;
}

static int load_merges(tokenizer *t, const gguf_ctx *ctx, al_err *err) {
    const gguf_array *m;
    if (gguf_get_arr(ctx, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &m, err)) return -1;
    uint64_t cap = 16;
    while (cap < m->n * 2) cap *= 2;
    t->merges.slots = calloc((size_t)cap, sizeof *t->merges.slots);
    if (!t->merges.slots) return al_err_set(err, "out of memory for %llu merges", (unsigned long long)m->n);
    t->merges.mask = cap - 1;
    char *cat = malloc(t->max_token_len * 2 + 2);
    if (!cat) return al_err_set(err, "out of memory");
    for (uint64_t r = 0; r < m->n && r < INT32_MAX; r++) {
        const char *s = m->strs[r].ptr;
        size_t len = (size_t)m->strs[r].len;
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) continue;
        size_t la = (size_t)(sp - s), lb = len - la - 1;
        int32_t a = str_map_get(&t->map, s, la), b = str_map_get(&t->map, sp + 1, lb);
        if (a < 0 || b < 0 || la + lb > t->max_token_len) continue;
        memcpy(cat, s, la);
        memcpy(cat + la, sp + 1, lb);
        int32_t ab = str_map_get(&t->map, cat, la + lb);
        if (ab < 0) continue;
        uint64_t k = pair_key(a, b);
        uint64_t i = pair_hash(k) & t->merges.mask;
        while (t->merges.slots[i].key && t->merges.slots[i].key != k) i = (i + 1) & t->merges.mask;
        if (!t->merges.slots[i].key) t->merges.slots[i] = (pair_entry){k, (int32_t)r, ab};
    }
    free(cat);
    return 0;
}

tokenizer *tokenizer_load(const gguf_ctx *ctx, al_err *err) {
    gguf_str model;
    const gguf_array *toks;
    if (gguf_get_str(ctx, "tokenizer.ggml.model", &model, err)) return NULL;
    if (gguf_get_arr(ctx, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, err)) return NULL;
    if (toks->n == 0 || toks->n > INT32_MAX) {
        al_err_set(err, "%s: tokenizer.ggml.tokens has %llu entries", ctx->path, (unsigned long long)toks->n);
        return NULL;
    }
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    t->n_vocab = (int32_t)toks->n;
#define MODEL_IS(s) (model.len == strlen(s) && memcmp(model.ptr, s, model.len) == 0)
    if (MODEL_IS("llama")) t->kind = TOKENIZER_SPM;
    else if (MODEL_IS("gpt2")) t->kind = TOKENIZER_BPE;
    else if (MODEL_IS("bert")) t->kind = TOKENIZER_WPM;
    else {
        al_err_set(err, "%s: unsupported tokenizer.ggml.model '%.*s' (supported: llama, gpt2, bert)", ctx->path,
                   (int)(model.len > 64 ? 64 : model.len), model.ptr);
        goto fail;
    }
#undef MODEL_IS
    t->tokens = calloc((size_t)t->n_vocab, sizeof *t->tokens);
    if (!t->tokens || str_map_init(&t->map, (size_t)t->n_vocab)) {
        al_err_set(err, "out of memory");
        goto fail;
    }
    const gguf_array *scores = NULL, *types = NULL;
    if (gguf_find_key(ctx, "tokenizer.ggml.scores") >= 0) {
        if (gguf_get_arr(ctx, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &scores, err)) goto fail;
        if (scores->n != toks->n) {
            al_err_set(err, "%s: tokenizer.ggml.scores has %llu entries, tokens has %llu", ctx->path,
                       (unsigned long long)scores->n, (unsigned long long)toks->n);
            goto fail;
        }
    }
    if (gguf_find_key(ctx, "tokenizer.ggml.token_type") >= 0) {
        if (gguf_get_arr(ctx, "tokenizer.ggml.token_type", GGUF_TYPE_COUNT, &types, err)) goto fail;
        if (types->n != toks->n || types->type == GGUF_TYPE_STRING || types->type == GGUF_TYPE_ARRAY) {
            al_err_set(err, "%s: tokenizer.ggml.token_type must be %llu integers", ctx->path, (unsigned long long)toks->n);
            goto fail;
        }
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        token_data *d = &t->tokens[i];
        if (toks->strs[i].len > UINT32_MAX / 4) {
            al_err_set(err, "%s: token %d is too long", ctx->path, i);
            goto fail;
        }
        d->text = toks->strs[i].ptr;
        d->len = (uint32_t)toks->strs[i].len;
        d->score = scores ? (float)gguf_arr_f64(scores, (uint64_t)i) : 0.0f;
        d->type = TOKEN_TYPE_NORMAL;
        if (types) {
            int64_t ty = gguf_arr_i64(types, (uint64_t)i);
            d->type = (ty >= 1 && ty <= 6) ? (uint8_t)ty : TOKEN_TYPE_UNDEFINED;
        }
        if (d->len > t->max_token_len) t->max_token_len = d->len;
        if (d->len) str_map_put(&t->map, d->text, d->len, i);
    }

    /* special ids: keys, then what the family conventionally uses */
    int32_t n = t->n_vocab;
    t->bos = get_id_key(ctx, "tokenizer.ggml.bos_token_id", TOKEN_NONE, n);
    t->eos = get_id_key(ctx, "tokenizer.ggml.eos_token_id", TOKEN_NONE, n);
    t->eot = get_id_key(ctx, "tokenizer.ggml.eot_token_id", TOKEN_NONE, n);
    t->eom = get_id_key(ctx, "tokenizer.ggml.eom_token_id", TOKEN_NONE, n);
    t->unk = get_id_key(ctx, "tokenizer.ggml.unknown_token_id", TOKEN_NONE, n);
    t->sep = get_id_key(ctx, "tokenizer.ggml.seperator_token_id", TOKEN_NONE, n);
    if (t->sep == TOKEN_NONE) t->sep = get_id_key(ctx, "tokenizer.ggml.separator_token_id", TOKEN_NONE, n);
    t->cls = get_id_key(ctx, "tokenizer.ggml.cls_token_id", TOKEN_NONE, n);
    t->pad = get_id_key(ctx, "tokenizer.ggml.padding_token_id", TOKEN_NONE, n);

    const char *pre = "default";
    char prebuf[64];
    if (gguf_find_key(ctx, "tokenizer.ggml.pre") >= 0) {
        gguf_str p;
        if (gguf_get_str(ctx, "tokenizer.ggml.pre", &p, err)) goto fail;
        if (p.len >= sizeof prebuf) {
            al_err_set(err, "%s: tokenizer.ggml.pre is too long", ctx->path);
            goto fail;
        }
        memcpy(prebuf, p.ptr, (size_t)p.len);
        prebuf[p.len] = 0;
        pre = prebuf;
    }
    snprintf(t->pre, sizeof t->pre, "%s", pre);

    if (t->kind == TOKENIZER_SPM) {
        t->add_space_prefix = true;
        t->add_bos = true;
        if (t->unk == TOKEN_NONE) t->unk = str_map_get(&t->map, "<unk>", 5);
        for (int b = 0; b < 256; b++) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            t->byte_tok[b] = str_map_get(&t->map, hex, 6);
        }
        t->spm_split_words = true;
        for (int32_t i = 0; i < t->n_vocab && t->spm_split_words; i++) {
            const char *x = t->tokens[i].text;
            for (uint32_t k = 1; k + 3 <= t->tokens[i].len; k++) {
                if (memcmp(x + k, "\xe2\x96\x81", 3) == 0 && (k < 3 || memcmp(x + k - 3, "\xe2\x96\x81", 3) != 0)) {
                    t->spm_split_words = false;
                    break;
                }
            }
        }
    } else if (t->kind == TOKENIZER_BPE) {
        const pre_def *pd = find_pre(pre);
        if (!pd) {
            al_err_set(err, "%s: unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", ctx->path, pre);
            goto fail;
        }
        t->add_bos = pd->add_bos;
        t->ignore_merges = pd->ignore_merges;
        for (int i = 0; i < MAX_PRE_REGEX && pd->re[i]; i++) {
            t->pre_re[i] = regex_compile(pd->re[i], err);
            if (!t->pre_re[i]) goto fail;
            t->n_pre_re = i + 1;
        }
        for (int b = 0; b < 256; b++) {
            t->byte_chr_len[b] = (uint8_t)utf8_encode(byte_to_cp(b), t->byte_chr[b]);
            t->byte_tok[b] = str_map_get(&t->map, t->byte_chr[b], t->byte_chr_len[b]);
        }
        if (load_merges(t, ctx, err)) goto fail;
    } else {
        t->add_bos = true;
        if (t->cls == TOKEN_NONE) t->cls = str_map_get(&t->map, "[CLS]", 5);
        if (t->sep == TOKEN_NONE) t->sep = str_map_get(&t->map, "[SEP]", 5);
        if (t->unk == TOKEN_NONE) t->unk = str_map_get(&t->map, "[UNK]", 5);
        if (t->bos == TOKEN_NONE) t->bos = t->cls;
        if (t->eos == TOKEN_NONE) t->eos = t->sep;
        /* "##" continuations (Hugging Face vocab.txt) or "▁" word starts (GGUF) */
        int hash = 0, under = 0;
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (t->tokens[i].len > 2 && memcmp(t->tokens[i].text, "##", 2) == 0) hash++;
            if (t->tokens[i].len > 3 && memcmp(t->tokens[i].text, "\xe2\x96\x81", 3) == 0) under++;
        }
        t->wpm_hash_prefix = hash > under;
    }
    t->add_space_prefix = get_bool_key(ctx, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
    t->add_bos = get_bool_key(ctx, "tokenizer.ggml.add_bos_token", t->add_bos);
    t->add_eos = get_bool_key(ctx, "tokenizer.ggml.add_eos_token", t->add_eos);
    if (t->add_bos && t->bos == TOKEN_NONE && t->kind != TOKENIZER_WPM) t->add_bos = false;
    if (t->add_eos && t->eos == TOKEN_NONE) t->add_eos = false;
    if (build_specials(t, err)) goto fail;
    return t;
fail:
    tokenizer_free(t);
    return NULL;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    free(t->tokens);
    free(t->map.slots);
    free(t->merges.slots);
    for (int i = 0; i < t->n_pre_re; i++) regex_free(t->pre_re[i]);
    free(t->specials);
    free(t);
}

/* ---- work buffers -------------------------------------------------------------- */

typedef struct sym {
    int32_t id;      /* token id, or TOKEN_NONE */
    uint32_t off, n; /* bytes in the session text (n == 0: merged away) */
    int32_t prev, next;
} sym;

typedef struct heap_ent {
    float key;       /* lower first (rank), or -score for SPM */
    int32_t left, right;
    int32_t left_id, right_id;
    uint32_t size;
} heap_ent;

typedef struct work {
    sym *syms;
    size_t n_syms, cap_syms;
    heap_ent *heap;
    size_t n_heap, cap_heap;
    char *text;     /* scratch bytes */
    size_t n_text, cap_text;
    uint32_t *cps;
    uint16_t *flags;
    size_t cap_cps;
    size_t *lens, n_lens, cap_lens;
    size_t *lens2, n_lens2, cap_lens2;
    bool oom;
} work;

static void work_free(work *w) {
    free(w->syms);
    free(w->heap);
    free(w->text);
    free(w->cps);
    free(w->flags);
    free(w->lens);
    free(w->lens2);
}

static bool reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return false;
    *p = np;
    *cap = nc;
    return true;
}

static void text_put(work *w, const char *s, size_t n) {
    if (!reserve((void **)&w->text, &w->cap_text, w->n_text + n, 1)) {
        w->oom = true;
        return;
    }
    memcpy(w->text + w->n_text, s, n);
    w->n_text += n;
}

static void sym_push(work *w, int32_t id, uint32_t off, uint32_t n) {
    if (!reserve((void **)&w->syms, &w->cap_syms, w->n_syms + 1, sizeof *w->syms)) {
        w->oom = true;
        return;
    }
    int32_t i = (int32_t)w->n_syms++;
    w->syms[i] = (sym){id, off, n, i - 1, -1};
    if (i > 0) w->syms[i - 1].next = i;
}

/* Binary heap ordered by (key, left): the lowest key wins, leftmost on ties. */
static bool heap_less(const heap_ent *a, const heap_ent *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static void heap_push(work *w, heap_ent e) {
    if (!reserve((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap)) {
        w->oom = true;
        return;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

static heap_ent heap_pop(work *w) {
    heap_ent top = w->heap[0];
    heap_ent last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!heap_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Merges symbol e.right into e.left (its right neighbour) and unlinks it. */
static void sym_merge(work *w, const heap_ent *e) {
    sym *a = &w->syms[e->left], *b = &w->syms[e->right];
    a->n += b->n;
    b->n = 0;
    a->next = b->next;
    if (b->next >= 0) w->syms[b->next].prev = e->left;
}

static void emit(work *w, token_vec *out, int32_t id) {
    if (token_vec_push(out, id)) w->oom = true;
}

/* ---- SentencePiece ---------------------------------------------------------------- */

static void spm_try_bigram(const tokenizer *t, work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const sym *a = &w->syms[l], *b = &w->syms[r];
    int32_t id = str_map_get(&t->map, w->text + a->off, a->n + b->n);
    if (id < 0) return;
    heap_push(w, (heap_ent){-t->tokens[id].score, l, r, 0, 0, a->n + b->n});
}

/* Tokenizes w->text (already space-escaped) and appends ids. */
static void spm_encode(const tokenizer *t, work *w, size_t begin, size_t end, token_vec *out) {
    w->n_syms = w->n_heap = 0;
    for (size_t off = begin; off < end;) {
        size_t n = utf8_len_lead((uint8_t)w->text[off]);
        if (n > end - off) n = end - off;
        sym_push(w, TOKEN_NONE, (uint32_t)off, (uint32_t)n);
        off += n;
    }
    if (w->oom) return;
    for (size_t i = 1; i < w->n_syms; i++) spm_try_bigram(t, w, (int32_t)i - 1, (int32_t)i);
    while (w->n_heap && !w->oom) {
        heap_ent e = heap_pop(w);
        sym *a = &w->syms[e.left], *b = &w->syms[e.right];
        if (a->n == 0 || b->n == 0 || a->n + b->n != e.size) continue;
        sym_merge(w, &e);
        spm_try_bigram(t, w, a->prev, e.left);
        spm_try_bigram(t, w, e.left, a->next);
    }
    for (int32_t i = 0; i >= 0 && (size_t)i < w->n_syms; i = w->syms[i].next) {
        const sym *s = &w->syms[i];
        int32_t id = str_map_get(&t->map, w->text + s->off, s->n);
        if (id >= 0) {
            emit(w, out, id);
            continue;
        }
        for (uint32_t j = 0; j < s->n; j++) {
            int32_t bt = t->byte_tok[(uint8_t)w->text[s->off + j]];
            if (bt >= 0) emit(w, out, bt);
            else if (t->unk >= 0) emit(w, out, t->unk);
        }
    }
}

static void spm_fragment(const tokenizer *t, work *w, const char *s, size_t n, bool prefix_space, token_vec *out) {
    w->n_text = 0;
    if (prefix_space) text_put(w, "\xe2\x96\x81", 3);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            text_put(w, s + start, i - start);
            text_put(w, "\xe2\x96\x81", 3);
            start = i + 1;
        }
    }
    text_put(w, s + start, n - start);
    if (w->oom || w->n_text > UINT32_MAX / 2) {
        w->oom = true;
        return;
    }
    if (!t->spm_split_words) {
        spm_encode(t, w, 0, w->n_text, out);
        return;
    }
    /* No merge can join a character to a following "▁" (no such token), so
     * each word (a run of "▁" and what follows up to the next "▁" after
     * another character) is encoded on its own: same result, smaller heaps. */
    size_t begin = 0;
    for (size_t i = 3; i + 3 <= w->n_text; i++) {
        if (memcmp(w->text + i, "\xe2\x96\x81", 3) == 0 && memcmp(w->text + i - 3, "\xe2\x96\x81", 3) != 0) {
            spm_encode(t, w, begin, i, out);
            begin = i;
        }
    }
    spm_encode(t, w, begin, w->n_text, out);
}

/* ---- byte-level BPE ------------------------------------------------------------- */

static void bpe_try_pair(const tokenizer *t, work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const sym *a = &w->syms[l], *b = &w->syms[r];
    if (a->id < 0 || b->id < 0) return;
    const pair_entry *pe = pair_map_get(&t->merges, a->id, b->id);
    if (!pe) return;
    heap_push(w, (heap_ent){(float)pe->rank, l, r, a->id, b->id, 0});
}

/* Encodes one pre-tokenized word given as codepoints cps[0..n). */
static void bpe_word(const tokenizer *t, work *w, const uint32_t *cps, size_t n, token_vec *out) {
    w->n_syms = w->n_heap = 0;
    w->n_text = 0;
    for (size_t i = 0; i < n; i++) {
        char u[4];
        int k = utf8_encode(cps[i], u);
        for (int j = 0; j < k; j++) {
            uint8_t b = (uint8_t)u[j];
            sym_push(w, t->byte_tok[b], (uint32_t)w->n_text, t->byte_chr_len[b]);
            text_put(w, t->byte_chr[b], t->byte_chr_len[b]);
        }
    }
    if (w->oom) return;
    if (t->ignore_merges) {
        int32_t id = str_map_get(&t->map, w->text, w->n_text);
        if (id >= 0) {
            emit(w, out, id);
            return;
        }
    }
    for (size_t i = 1; i < w->n_syms; i++) bpe_try_pair(t, w, (int32_t)i - 1, (int32_t)i);
    while (w->n_heap && !w->oom) {
        heap_ent e = heap_pop(w);
        sym *a = &w->syms[e.left], *b = &w->syms[e.right];
        if (a->n == 0 || b->n == 0 || a->id != e.left_id || b->id != e.right_id || a->next != e.right) continue;
        const pair_entry *pe = pair_map_get(&t->merges, a->id, b->id);
        a->id = pe->merged;
        sym_merge(w, &e);
        bpe_try_pair(t, w, a->prev, e.left);
        bpe_try_pair(t, w, e.left, a->next);
    }
    for (int32_t i = 0; i >= 0 && (size_t)i < w->n_syms; i = w->syms[i].next) {
        const sym *s = &w->syms[i];
        if (s->id >= 0) {
            emit(w, out, s->id);
            continue;
        }
        /* a byte with no token: try its raw bytes as one-byte tokens */
        for (uint32_t j = 0; j < s->n; j++) {
            int32_t id = str_map_get(&t->map, w->text + s->off + j, 1);
            if (id >= 0) emit(w, out, id);
        }
    }
}

/* Decodes s[0..n) into w->cps / w->flags; returns the codepoint count. */
static size_t decode_cps(work *w, const char *s, size_t n) {
    if (!reserve((void **)&w->cps, &w->cap_cps, n + 1, sizeof *w->cps)) {
        w->oom = true;
        return 0;
    }
    size_t cap = w->cap_cps;
    uint16_t *nf = realloc(w->flags, cap * sizeof *nf);
    if (!nf) {
        w->oom = true;
        return 0;
    }
    w->flags = nf;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t adv;
        uint32_t cp = (uint8_t)s[i] < 0x80 ? (adv = 1, (uint8_t)s[i]) : utf8_decode(s + i, n - i, &adv);
        w->cps[k] = cp;
        w->flags[k] = unicode_flags(cp);
        k++;
        i += adv;
    }
    return k;
}

static void bpe_fragment(const tokenizer *t, work *w, const char *s, size_t n, token_vec *out) {
    size_t ncp = decode_cps(w, s, n);
    if (w->oom || ncp == 0) return;
    /* pieces: start as one, each regex splits them further */
    w->n_lens = 0;
    if (!reserve((void **)&w->lens, &w->cap_lens, 1, sizeof *w->lens)) {
        w->oom = true;
        return;
    }
    w->lens[w->n_lens++] = ncp;
    for (int r = 0; r < t->n_pre_re; r++) {
        w->n_lens2 = 0;
        size_t pos = 0;
        for (size_t i = 0; i < w->n_lens; i++) {
            regex_subject sub = {w->cps, w->flags, pos, pos + w->lens[i]};
            if (regex_split(t->pre_re[r], &sub, &w->lens2, &w->n_lens2, &w->cap_lens2)) {
                w->oom = true;
                return;
            }
            pos += w->lens[i];
        }
        size_t *tl = w->lens; w->lens = w->lens2; w->lens2 = tl;
        size_t tn = w->n_lens; w->n_lens = w->n_lens2; w->n_lens2 = tn;
        size_t tc = w->cap_lens; w->cap_lens = w->cap_lens2; w->cap_lens2 = tc;
    }
    size_t pos = 0;
    for (size_t i = 0; i < w->n_lens && !w->oom; i++) {
        bpe_word(t, w, w->cps + pos, w->lens[i], out);
        pos += w->lens[i];
    }
}

/* ---- WordPiece ---------------------------------------------------------------------- */

static bool is_chinese_char(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static bool is_bert_punct(uint32_t cp, uint16_t fl) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
    return (fl & UFLAG_PUNCT) != 0;
}

/* WordPiece of one normalised word held in w->text[0..n_text). */
static void wpm_word(const tokenizer *t, work *w, size_t n_chars, token_vec *out) {
    if (n_chars > WPM_MAX_WORD_CHARS) {
        if (t->unk >= 0) emit(w, out, t->unk);
        return;
    }
    size_t start_n = out->n;
    size_t len = w->n_text;
    /* candidate buffer: prefix + substring */
    char buf[WPM_MAX_WORD_CHARS * 4 + 8];
    for (size_t i = 0; i < len;) {
        size_t best = 0;
        int32_t best_id = TOKEN_NONE;
        for (size_t j = len; j > i; j--) {
            if (j < len && ((uint8_t)w->text[j] & 0xC0) == 0x80) continue; /* not a char boundary */
            size_t pl = 0;
            if (i == 0 && !t->wpm_hash_prefix) { memcpy(buf, "\xe2\x96\x81", 3); pl = 3; }
            if (i > 0 && t->wpm_hash_prefix) { memcpy(buf, "##", 2); pl = 2; }
            if (pl + (j - i) > t->max_token_len) continue;
            memcpy(buf + pl, w->text + i, j - i);
            int32_t id = str_map_get(&t->map, buf, pl + (j - i));
            if (id >= 0) {
                best = j;
                best_id = id;
                break;
            }
        }
        if (best_id < 0) {
            out->n = start_n;
            if (t->unk >= 0) emit(w, out, t->unk);
            return;
        }
        emit(w, out, best_id);
        i = best;
    }
}

static void wpm_fragment(const tokenizer *t, work *w, const char *s, size_t n, token_vec *out) {
    size_t ncp = decode_cps(w, s, n);
    if (w->oom) return;
    w->n_text = 0;
    size_t n_chars = 0;
#define FLUSH() do { if (w->n_text) { wpm_word(t, w, n_chars, out); w->n_text = 0; n_chars = 0; } } while (0)
    for (size_t i = 0; i < ncp && !w->oom; i++) {
        uint32_t cp = w->cps[i];
        uint16_t fl = w->flags[i];
        if (cp == 0 || cp == UNICODE_REPLACEMENT) continue;
        if ((fl & UFLAG_WHITESPACE) || cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
            FLUSH();
            continue;
        }
        if (fl & (UFLAG_CONTROL | UFLAG_UNDEFINED)) continue;
        if (is_chinese_char(cp)) {
            FLUSH();
            char u[4];
            int k = utf8_encode(cp, u);
            text_put(w, u, (size_t)k);
            n_chars = 1;
            FLUSH();
            continue;
        }
        /* NFD, drop non-spacing marks, lowercase; punctuation is split off */
        uint32_t d[16];
        int nd = unicode_nfd(cp, d, 16);
        for (int k = 0; k < nd; k++) {
            uint32_t c = d[k];
            uint16_t cf = k == 0 && nd == 1 ? fl : unicode_flags(c);
            if ((cf & UFLAG_MARK) && strcmp(unicode_category(c), "Mn") == 0) continue;
            char u[8];
            int ul;
            if (c == 0x130) { /* İ lowercases to i + combining dot above */
                memcpy(u, "i\xcc\x87", 3);
                ul = 3;
            } else {
                ul = utf8_encode(unicode_tolower(c), u);
            }
            if (is_bert_punct(c, cf)) {
                FLUSH();
                text_put(w, u, (size_t)ul);
                n_chars = 1;
                FLUSH();
            } else {
                text_put(w, u, (size_t)ul);
                n_chars++;
            }
        }
    }
    FLUSH();
#undef FLUSH
}

/* ---- driver ------------------------------------------------------------------------ */

/* Finds the special token starting at s[0..n) (longest first), or TOKEN_NONE. */
static int32_t match_special(const tokenizer *t, const char *s, size_t n, bool parse_special) {
    uint8_t b = (uint8_t)s[0];
    for (int32_t k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
        int32_t id = t->specials[k];
        const token_data *d = &t->tokens[id];
        if (!parse_special && d->type != TOKEN_TYPE_USER_DEFINED) continue;
        if (d->len <= n && memcmp(s, d->text, d->len) == 0) return id;
    }
    return TOKEN_NONE;
}

static void encode_fragment(const tokenizer *t, work *w, const char *s, size_t n, bool prev_special, token_vec *out) {
    if (n == 0) return;
    switch (t->kind) {
    case TOKENIZER_SPM: spm_fragment(t, w, s, n, t->add_space_prefix && prev_special, out); break;
    case TOKENIZER_BPE: bpe_fragment(t, w, s, n, out); break;
    case TOKENIZER_WPM: wpm_fragment(t, w, s, n, out); break;
    }
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                     token_vec *out, al_err *err) {
    work w = {0};
    size_t n0 = out->n;
    if (add_special && t->kind == TOKENIZER_WPM) {
        if (t->cls >= 0) emit(&w, out, t->cls);
    } else if (add_special && t->add_bos) {
        emit(&w, out, t->bos);
    }
    bool prev_special = true; /* SentencePiece prefixes a space at the start */
    size_t frag = 0;
    for (size_t i = 0; i < len && !w.oom;) {
        int32_t id = t->n_specials ? match_special(t, text + i, len - i, parse_special) : TOKEN_NONE;
        if (id < 0) {
            i++;
            continue;
        }
        if (i > frag) {
            encode_fragment(t, &w, text + frag, i - frag, prev_special, out);
            prev_special = false;
        }
        emit(&w, out, id);
        prev_special = true;
        i += t->tokens[id].len;
        frag = i;
    }
    if (len > frag && !w.oom) encode_fragment(t, &w, text + frag, len - frag, prev_special, out);
    if (add_special && t->kind == TOKENIZER_WPM) {
        if (t->sep >= 0) emit(&w, out, t->sep);
    } else if (add_special && t->add_eos) {
        emit(&w, out, t->eos);
    }
    work_free(&w);
    if (w.oom) {
        out->n = n0;
        return al_err_set(err, "out of memory while tokenizing %zu bytes", len);
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------ */

static size_t put_piece(char *buf, size_t cap, size_t at, const char *s, size_t n) {
    if (at < cap) memcpy(buf + at, s, at + n <= cap ? n : cap - at);
    return at + n;
}

int tokenizer_token_to_piece(const tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab) return -1;
    const token_data *d = &t->tokens[id];
    size_t n = 0;
    switch (d->type) {
    case TOKEN_TYPE_CONTROL: case TOKEN_TYPE_UNKNOWN: case TOKEN_TYPE_UNUSED:
        if (!special) return 0;
        return (int)put_piece(buf, cap, 0, d->text, d->len);
    case TOKEN_TYPE_USER_DEFINED:
        return (int)put_piece(buf, cap, 0, d->text, d->len);
    case TOKEN_TYPE_BYTE:
        if (t->kind == TOKENIZER_SPM && d->len == 6) {
            unsigned v;
            if (sscanf(d->text, "<0x%2X>", &v) == 1) {
                char c = (char)v;
                return (int)put_piece(buf, cap, 0, &c, 1);
            }
        }
        return (int)put_piece(buf, cap, 0, d->text, d->len);
    default:
        break;
    }
    if (t->kind == TOKENIZER_BPE) {
        for (uint32_t i = 0; i < d->len;) {
            size_t adv;
            uint32_t cp = utf8_decode(d->text + i, d->len - i, &adv);
            int b = cp_to_byte(cp);
            if (b >= 0) {
                char c = (char)b;
                n = put_piece(buf, cap, n, &c, 1);
            } else {
                n = put_piece(buf, cap, n, d->text + i, adv);
            }
            i += (uint32_t)adv;
        }
        return (int)n;
    }
    /* SPM and WordPiece: "▁" stands for a space */
    if (t->kind == TOKENIZER_WPM && t->wpm_hash_prefix) {
        if (d->len >= 2 && memcmp(d->text, "##", 2) == 0) return (int)put_piece(buf, cap, 0, d->text + 2, d->len - 2);
        n = put_piece(buf, cap, 0, " ", 1);
        return (int)put_piece(buf, cap, n, d->text, d->len);
    }
    for (uint32_t i = 0; i < d->len;) {
        if (d->len - i >= 3 && memcmp(d->text + i, "\xe2\x96\x81", 3) == 0) {
            n = put_piece(buf, cap, n, " ", 1);
            i += 3;
        } else {
            n = put_piece(buf, cap, n, d->text + i, 1);
            i++;
        }
    }
    return (int)n;
}

char *tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, bool special, size_t *len, al_err *err) {
    size_t cap = 64 + n * 8, used = 0;
    char *out = malloc(cap);
    if (!out) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        int k = tokenizer_token_to_piece(t, ids[i], special, out + used, cap - used - 1);
        if (k < 0) {
            free(out);
            al_err_set(err, "token id %d is outside the vocabulary (0..%d)", ids[i], t->n_vocab - 1);
            return NULL;
        }
        if ((size_t)k > cap - used - 1) {
            cap = (cap + (size_t)k) * 2;
            char *no = realloc(out, cap);
            if (!no) {
                free(out);
                al_err_set(err, "out of memory");
                return NULL;
            }
            out = no;
            k = tokenizer_token_to_piece(t, ids[i], special, out + used, cap - used - 1);
        }
        /* the space SentencePiece / WordPiece put before the first word */
        bool strip = first && k > 0 && out[used] == ' ' &&
                     ((t->kind == TOKENIZER_SPM && t->add_space_prefix) || t->kind == TOKENIZER_WPM);
        if (k > 0) first = false;
        if (strip) {
            memmove(out + used, out + used + 1, (size_t)k - 1);
            k--;
        }
        used += (size_t)k;
    }
    out[used] = 0;
    if (len) *len = used;
    return out;
}

/* ---- accessors ------------------------------------------------------------------------ */

enum tokenizer_kind tokenizer_get_kind(const tokenizer *t) { return t->kind; }
const char *tokenizer_pre_name(const tokenizer *t) { return t->pre; }
int32_t tokenizer_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const tokenizer *t) { return t->eos; }
bool tokenizer_add_bos(const tokenizer *t) { return t->add_bos && t->bos != TOKEN_NONE; }

const char *tokenizer_pre_from_regexes(const char *const *re, int n) {
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++) {
        const pre_def *pd = &k_pre[i];
        int m = 0;
        while (m < MAX_PRE_REGEX && pd->re[m]) m++;
        if (m != n) continue;
        int same = 1;
        for (int k = 0; k < n && same; k++) same = strcmp(pd->re[k], re[k]) == 0;
        if (!same) continue;
        /* the first name of the entry's list */
        static __thread char name[64];
        size_t len = strcspn(pd->names, " ");
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, pd->names, len);
        name[len] = 0;
        return name;
    }
    return NULL;
}

const char *tokenizer_token_text(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->tokens[id].len;
    return t->tokens[id].text;
}

enum token_type tokenizer_token_type(const tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return TOKEN_TYPE_UNDEFINED;
    return (enum token_type)t->tokens[id].type;
}

bool tokenizer_is_eog(const tokenizer *t, int32_t id) {
    return id >= 0 && (id == t->eos || id == t->eot || id == t->eom);
}

int32_t tokenizer_find(const tokenizer *t, const char *text, size_t len) { return str_map_get(&t->map, text, len); }
