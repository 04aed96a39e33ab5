/* test_tokenizer.c - tokenizers against the reference ids of real vocabularies.
 *
 * Each ../shared/models/tokenizer-fixtures/X.gguf has X.gguf.inp (test strings
 * separated by "\n__ggml_vocab_test__\n") and X.gguf.out (the ids the model's
 * original Hugging Face tokenizer produced, one line per string). Every pair
 * found there is checked, so new vocabularies only need their files. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "test_util.h"
#include "text/tokenizer.h"

typedef struct loaded {
    gguf_ctx *g;
    tokenizer *t;
} loaded;

static loaded load(const char *rel) {
    loaded l = {0};
    al_err err;
    l.g = gguf_open(test_model_path(rel), &err);
    if (!l.g) fail_msg("%s", err.msg);
    l.t = tokenizer_load(l.g, &err);
    if (!l.t) fail_msg("%s", err.msg);
    return l;
}

static void unload(loaded *l) {
    tokenizer_free(l->t);
    gguf_close(l->g);
}

/* Tokenizes every string of inp_path (separated by "\n__ggml_vocab_test__\n")
 * and compares with the matching line of out_path. Returns the mismatches. */
static int check_pairs(const tokenizer *t, const char *name, const char *inp_path, const char *out_path) {
    size_t n_inp, n_out;
    char *inp = test_read_file(inp_path, &n_inp);
    char *out = test_read_file(out_path, &n_out);
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sep_len = strlen(sep);
    char *p = inp, *end = inp + n_inp, *line = out;
    int bad = 0, count = 0;
    while (p < end) {
        char *next = strstr(p, sep);
        size_t len = next ? (size_t)(next - p) : (size_t)(end - p);
        char *eol = strchr(line, '\n');
        if (!eol) fail_msg("%s: .out has fewer lines than .inp has strings", name);
        *eol = 0;
        token_vec ids = {0};
        al_err err;
        assert_int_equal(tokenizer_encode(t, p, len, false, false, &ids, &err), 0);
        char got[16384];
        size_t o = 0;
        for (size_t i = 0; i < ids.n && o < sizeof got - 16; i++) o += (size_t)snprintf(got + o, sizeof got - o, " %d", ids.ids[i]);
        got[o] = 0;
        /* expected lines are " id id ..." (leading space); compare trimmed */
        const char *want = line;
        while (*want == ' ') want++;
        const char *g = got;
        while (*g == ' ') g++;
        size_t wl = strlen(want);
        while (wl && want[wl - 1] == ' ') wl--;
        if (strlen(g) != wl || memcmp(g, want, wl) != 0) {
            bad++;
            print_message("%s: string %d (%zu bytes) '%.*s'\n  want: %.*s\n  got:  %s\n", name, count, len,
                          (int)(len > 60 ? 60 : len), p, (int)(wl > 300 ? 300 : wl), want, g);
        }
        token_vec_free(&ids);
        line = eol + 1;
        count++;
        if (!next) break;
        p = next + sep_len;
    }
    print_message("%s: %d strings, %d mismatches\n", name, count, bad);
    assert_true(count > 0);
    free(inp);
    free(out);
    return bad;
}

/* Returns the number of mismatching strings in one fixture. */
static int check_fixture(const char *name) {
    char rel[512], inp[1024], out[1024];
    snprintf(rel, sizeof rel, "tokenizer-fixtures/%s", name);
    loaded l = load(rel);
    snprintf(inp, sizeof inp, "%s.inp", test_model_path(rel));
    snprintf(out, sizeof out, "%s.out", test_model_path(rel));
    int bad = check_pairs(l.t, name, inp, out);
    unload(&l);
    return bad;
}

/* Pre-tokenizers of families whose vocabularies are not in the shared data:
 * the DeepSeek LLM vocabulary (byte-level BPE, 102,400 tokens) with
 * tokenizer.ggml.pre set to each family, against the ids llama.cpp (commit
 * c392e5094, built beside the project) produced for the same 336 strings
 * (multilingual text, code, numbers, whitespace runs, random mixtures):
 * tests/data/pretokenizers/pretok-<pre>.out. */
static void test_pretokenizers_against_llama_cpp(void **state) {
    (void)state;
    static const char *pres[] = {"gpt-2", "mpt", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder",
                                 "starcoder", "refact", "smollm", "falcon", "default"};
    al_err err;
    gguf_ctx *v = gguf_open(test_model_path("tokenizer-fixtures/ggml-vocab-deepseek-llm.gguf"), &err);
    if (!v) fail_msg("%s", err.msg);
    int bad = 0;
    for (size_t i = 0; i < sizeof pres / sizeof *pres; i++) {
        gguf_writer *w = gguf_writer_init(3);
        for (uint64_t k = 0; k < v->n_kv; k++) {
            if (strcmp(v->kv[k].key, "tokenizer.ggml.pre") == 0) assert_int_equal(gguf_writer_add_str(w, v->kv[k].key, pres[i]), 0);
            else assert_int_equal(gguf_writer_add_value(w, v->kv[k].key, &v->kv[k].value), 0);
        }
        assert_int_equal(gguf_writer_write(w, test_path("pre.gguf"), NULL, NULL, &err), 0);
        gguf_writer_free(w);
        gguf_ctx *g = gguf_open(test_path("pre.gguf"), &err);
        assert_non_null(g);
        tokenizer *t = tokenizer_load(g, &err);
        if (!t) fail_msg("%s: %s", pres[i], err.msg);
        char inp[1024], out[1024];
        snprintf(inp, sizeof inp, "%s/pretokenizers/pretok.inp", AIRLOCK_TEST_DATA);
        snprintf(out, sizeof out, "%s/pretokenizers/pretok-%s.out", AIRLOCK_TEST_DATA, pres[i]);
        bad += check_pairs(t, pres[i], inp, out);
        tokenizer_free(t);
        gguf_close(g);
    }
    gguf_close(v);
    assert_int_equal(bad, 0);
}

static void test_all_fixtures(void **state) {
    (void)state;
    DIR *d = opendir(test_model_path("tokenizer-fixtures"));
    if (!d) fail_msg("tokenizer fixtures not found at %s", test_model_path("tokenizer-fixtures"));
    struct dirent *e;
    int files = 0, bad = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 9 && strcmp(e->d_name + n - 9, ".gguf.inp") == 0) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(n - 4), e->d_name);
            bad += check_fixture(name);
            files++;
        }
    }
    closedir(d);
    print_message("%d vocabularies checked\n", files);
    assert_true(files >= 4);
    assert_int_equal(bad, 0);
}

static char *roundtrip(const tokenizer *t, const char *s, bool add_special) {
    token_vec ids = {0};
    al_err err;
    assert_int_equal(tokenizer_encode(t, s, strlen(s), add_special, false, &ids, &err), 0);
    size_t len;
    char *back = tokenizer_decode(t, ids.ids, ids.n, false, &len, &err);
    assert_non_null(back);
    token_vec_free(&ids);
    return back;
}

static void test_decode_is_inverse(void **state) {
    (void)state;
    if (!test_have_model("tokenizer-fixtures/ggml-vocab-gpt-2.gguf")) skip();
    const char *texts[] = {"Hello world", "  leading and trailing  ", "code: for (int i = 0; i < n; i++) {}\n\tret;",
                           "Grüße aus Köln — 世界 🦙 ½", "ünïcödé\r\n\r\nlines", "'s 're 'VE"};
    const char *vocabs[] = {"tokenizer-fixtures/ggml-vocab-gpt-2.gguf", "tokenizer-fixtures/ggml-vocab-llama-spm.gguf",
                            "tokenizer-fixtures/ggml-vocab-deepseek-llm.gguf"};
    for (size_t v = 0; v < 3; v++) {
        loaded l = load(vocabs[v]);
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            char *back = roundtrip(l.t, texts[i], true);
            assert_string_equal(back, texts[i]);
            free(back);
        }
        unload(&l);
    }
}

static void test_special_tokens(void **state) {
    (void)state;
    if (!test_have_model("tokenizer-fixtures/ggml-vocab-llama-spm.gguf")) skip();
    loaded l = load("tokenizer-fixtures/ggml-vocab-llama-spm.gguf");
    token_vec ids = {0};
    al_err err;
    /* with parse_special, "<s>" in the text is BOS (id 1); without, it is text */
    assert_int_equal(tokenizer_encode(l.t, "<s>Hi", 5, false, true, &ids, &err), 0);
    assert_true(ids.n >= 2);
    assert_int_equal(ids.ids[0], 1);
    ids.n = 0;
    assert_int_equal(tokenizer_encode(l.t, "<s>Hi", 5, false, false, &ids, &err), 0);
    for (size_t i = 0; i < ids.n; i++) assert_int_not_equal(ids.ids[i], 1);
    /* add_special: BOS only (add_bos_token true, add_eos_token false) */
    ids.n = 0;
    assert_int_equal(tokenizer_encode(l.t, "Hi", 2, true, false, &ids, &err), 0);
    assert_int_equal(ids.ids[0], 1);
    assert_int_not_equal(ids.ids[ids.n - 1], 2);
    assert_int_equal(tokenizer_bos(l.t), 1);
    assert_int_equal(tokenizer_eos(l.t), 2);
    assert_true(tokenizer_is_eog(l.t, 2));
    /* control tokens decode to nothing unless asked */
    char buf[16];
    assert_int_equal(tokenizer_token_to_piece(l.t, 1, false, buf, sizeof buf), 0);
    assert_int_equal(tokenizer_token_to_piece(l.t, 1, true, buf, sizeof buf), 3);
    /* byte fallback: U+1F999 is not in the vocabulary, so it is 4 byte tokens <0xF0> ... */
    ids.n = 0;
    assert_int_equal(tokenizer_encode(l.t, "\xf0\x9f\xa6\x99", 4, false, false, &ids, &err), 0);
    assert_int_equal(ids.n, 5); /* "▁" + 4 bytes */
    assert_int_equal(ids.ids[1], 0xF0 + 3);
    token_vec_free(&ids);
    unload(&l);

    /* WordPiece adds [CLS] ... [SEP] */
    l = load("tokenizer-fixtures/ggml-vocab-bert-bge.gguf");
    assert_int_equal(tokenizer_encode(l.t, "Hello world", 11, true, false, &ids, &err), 0);
    assert_int_equal(ids.ids[0], 101);
    assert_int_equal(ids.ids[ids.n - 1], 102);
    char *s = tokenizer_decode(l.t, ids.ids + 1, ids.n - 2, false, NULL, &err);
    assert_string_equal(s, "hello world");
    free(s);
    token_vec_free(&ids);
    unload(&l);
}

/* Invalid UTF-8, NULs and random bytes never crash and always yield ids in range. */
static void test_hostile_text(void **state) {
    (void)state;
    const char *vocabs[] = {"tokenizer-fixtures/ggml-vocab-gpt-2.gguf", "tokenizer-fixtures/ggml-vocab-llama-spm.gguf",
                            "tokenizer-fixtures/ggml-vocab-bert-bge.gguf", "tokenizer-fixtures/ggml-vocab-deepseek-llm.gguf"};
    uint64_t seed = 12345;
    for (size_t v = 0; v < 4; v++) {
        if (!test_have_model(vocabs[v])) continue;
        loaded l = load(vocabs[v]);
        for (int iter = 0; iter < 200; iter++) {
            char buf[300];
            size_t n = (size_t)(iter % 50) * 6;
            for (size_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                buf[i] = (char)(seed >> 56);
            }
            token_vec ids = {0};
            al_err err;
            assert_int_equal(tokenizer_encode(l.t, buf, n, true, iter & 1, &ids, &err), 0);
            for (size_t i = 0; i < ids.n; i++) {
                assert_true(ids.ids[i] >= 0);
                assert_true(ids.ids[i] < tokenizer_n_vocab(l.t));
            }
            char *back = tokenizer_decode(l.t, ids.ids, ids.n, true, NULL, &err);
            assert_non_null(back);
            free(back);
            token_vec_free(&ids);
        }
        /* lone continuation bytes and truncated sequences */
        const char *bad[] = {"\x80", "\xc3", "a\xe2\x82", "\xf8\x88\x80\x80\x80", "\xed\xa0\x80", "\xc0\xaf"};
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            token_vec ids = {0};
            al_err err;
            assert_int_equal(tokenizer_encode(l.t, bad[i], strlen(bad[i]), false, false, &ids, &err), 0);
            token_vec_free(&ids);
        }
        unload(&l);
    }
}

static void test_bad_metadata(void **state) {
    (void)state;
    al_err err;
    gguf_writer *w = gguf_writer_init(3);
    assert_int_equal(gguf_writer_add_str(w, "tokenizer.ggml.model", "unigram-x"), 0);
    const char *toks[] = {"a", "b"};
    assert_int_equal(gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, 2), 0);
    assert_int_equal(gguf_writer_write(w, test_path("badtok.gguf"), NULL, NULL, &err), 0);
    gguf_writer_free(w);
    gguf_ctx *g = gguf_open(test_path("badtok.gguf"), &err);
    assert_non_null(g);
    assert_null(tokenizer_load(g, &err));
    assert_non_null(strstr(err.msg, "unsupported tokenizer.ggml.model 'unigram-x'"));
    gguf_close(g);

    w = gguf_writer_init(3);
    assert_int_equal(gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2"), 0);
    assert_int_equal(gguf_writer_add_str(w, "tokenizer.ggml.pre", "no-such-pre"), 0);
    assert_int_equal(gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, 2), 0);
    assert_int_equal(gguf_writer_write(w, test_path("badpre.gguf"), NULL, NULL, &err), 0);
    gguf_writer_free(w);
    g = gguf_open(test_path("badpre.gguf"), &err);
    assert_null(tokenizer_load(g, &err));
    assert_non_null(strstr(err.msg, "unknown pre-tokenizer 'no-such-pre'"));
    gguf_close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fixtures),
        cmocka_unit_test(test_pretokenizers_against_llama_cpp),
        cmocka_unit_test(test_decode_is_inverse),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_bad_metadata),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
}
