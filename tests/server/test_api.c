/* test_api.c - request parsing for the server (fill-in-the-middle prompt
 * assembly, lengths, errors) and API keys. The HTTP behaviour is tested from
 * outside with the openai client (openai.test.mjs, robust.test.mjs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "models/synth.h"
#include "server/api.h"
#include "server/auth.h"
#include "test_util.h"

/* Any three ids do: the test checks they land where prefix-suffix-middle
 * order puts them. */
enum { FIM_PRE = 107, FIM_SUF = 108, FIM_MID = 109 };

/* The Llama SPM vocabulary with the GGUF keys that name FIM tokens. */
static const char *fim_vocab(void) {
    const char *out = test_path("vocab-fim.gguf");
    al_err err;
    gguf_ctx *v = gguf_open(test_model_path("tokenizer-fixtures/ggml-vocab-llama-spm.gguf"), &err);
    if (!v) fail_msg("%s", err.msg);
    gguf_writer *w = gguf_writer_init(3);
    for (uint64_t i = 0; i < v->n_kv; i++) assert_int_equal(gguf_writer_add_value(w, v->kv[i].key, &v->kv[i].value), 0);
    assert_int_equal(gguf_writer_add_u32(w, "tokenizer.ggml.fim_pre_token_id", FIM_PRE), 0);
    assert_int_equal(gguf_writer_add_u32(w, "tokenizer.ggml.fim_suf_token_id", FIM_SUF), 0);
    assert_int_equal(gguf_writer_add_u32(w, "tokenizer.ggml.fim_mid_token_id", FIM_MID), 0);
    if (gguf_writer_write(w, out, NULL, NULL, &err)) fail_msg("%s", err.msg);
    gguf_writer_free(w);
    gguf_close(v);
    return out;
}

static engine *make_engine(const char *vocab, const char *name) {
    const char *path = test_path(name);
    synth_params sp = {.shape = synth_find_shape("tiny-llama"), .vocab_path = vocab, .type = "F32", .out_path = path, .seed = 1,
                       .pure = true, .threads = 1};
    al_err err;
    if (synth_write(&sp, &err)) fail_msg("%s", err.msg);
    engine_config ec = {.n_slots = 1, .n_ctx = 64, .n_batch = 64, .queue_max = 4, .kv = KV_F32};
    engine *e = engine_init(&ec, NULL, &err);
    assert_non_null(e);
    if (engine_add_model(e, "m", path, "llama2", &err)) fail_msg("%s", err.msg);
    return e;
}

/* Token ids of text without BOS, through the model's own tokenizer. */
static token_vec enc(engine *e, const char *text) {
    token_vec v = {0};
    al_err err;
    assert_int_equal(tokenizer_encode(engine_model(e, 0)->tok, text, strlen(text), false, true, &v, &err), 0);
    return v;
}

static void expect_seq(const api_request *r, const int32_t *want, size_t n) {
    if (r->prompt.n != n) fail_msg("prompt has %zu tokens, expected %zu", r->prompt.n, n);
    for (size_t i = 0; i < n; i++)
        if (r->prompt.ids[i] != want[i]) fail_msg("prompt[%zu] = %d, expected %d", i, r->prompt.ids[i], want[i]);
}

static void test_fim_prompt_order(void **state) {
    (void)state;
    if (!test_have_model("tokenizer-fixtures/ggml-vocab-llama-spm.gguf")) skip();
    engine *e = make_engine(fim_vocab(), "fim.gguf");
    int32_t fim[3];
    assert_int_equal(engine_fim_tokens(e, 0, fim), 0);
    assert_int_equal(fim[0], FIM_PRE);
    assert_int_equal(fim[2], FIM_MID);
    token_vec pre = enc(e, "def add(a, b):\n    return"), suf = enc(e, "\n\nprint(add(1, 2))\n");
    /* expected: BOS PRE prefix SUF suffix MID */
    int32_t want[256];
    size_t n = 0;
    want[n++] = 1;
    want[n++] = FIM_PRE;
    for (size_t i = 0; i < pre.n; i++) want[n++] = pre.ids[i];
    want[n++] = FIM_SUF;
    for (size_t i = 0; i < suf.n; i++) want[n++] = suf.ids[i];
    want[n++] = FIM_MID;
    api_request r;
    api_error aerr;
    const char *body = "{\"prompt\": \"def add(a, b):\\n    return\", \"suffix\": \"\\n\\nprint(add(1, 2))\\n\", \"max_tokens\": 8}";
    if (api_parse(e, API_COMPLETION, body, strlen(body), &r, &aerr)) fail_msg("%s", aerr.message);
    expect_seq(&r, want, n);
    assert_int_equal(r.gp.max_tokens, 8);
    api_request_free(&r);
    /* llama.cpp's /infill: the same, input_extra placed before the prefix, prompt after MID */
    token_vec tail = enc(e, " a");
    body = "{\"input_prefix\": \"def add(a, b):\\n    return\", \"input_suffix\": \"\\n\\nprint(add(1, 2))\\n\", "
           "\"input_extra\": [{\"filename\": \"utils.py\", \"text\": \"# helpers\\n\"}], \"prompt\": \" a\"}";
    if (api_parse(e, API_INFILL, body, strlen(body), &r, &aerr)) fail_msg("%s", aerr.message);
    /* extra chunks are tokenized piece by piece (file name, newline, text, newline) */
    assert_true(r.prompt.n > pre.n + suf.n + 4);
    assert_int_equal(r.prompt.ids[0], 1);
    assert_int_equal(r.prompt.ids[1], FIM_PRE);
    size_t mid = r.prompt.n - tail.n - 1;
    assert_int_equal(r.prompt.ids[mid], FIM_MID);
    for (size_t i = 0; i < tail.n; i++) assert_int_equal(r.prompt.ids[mid + 1 + i], tail.ids[i]);
    size_t s = mid - suf.n - 1;
    assert_int_equal(r.prompt.ids[s], FIM_SUF);
    for (size_t i = 0; i < suf.n; i++) assert_int_equal(r.prompt.ids[s + 1 + i], suf.ids[i]);
    for (size_t i = 0; i < pre.n; i++) assert_int_equal(r.prompt.ids[s - pre.n + i], pre.ids[i]);
    api_request_free(&r);
    token_vec_free(&pre);
    token_vec_free(&suf);
    token_vec_free(&tail);
    engine_free(e);
}

static void test_no_fim_tokens_is_a_clear_error(void **state) {
    (void)state;
    if (!test_have_model("tokenizer-fixtures/ggml-vocab-llama-spm.gguf")) skip();
    engine *e = make_engine(test_model_path("tokenizer-fixtures/ggml-vocab-llama-spm.gguf"), "nofim.gguf");
    int32_t fim[3];
    assert_int_equal(engine_fim_tokens(e, 0, fim), -1);
    api_request r;
    api_error aerr;
    const char *body = "{\"input_prefix\": \"a\", \"input_suffix\": \"b\"}";
    assert_int_equal(api_parse(e, API_INFILL, body, strlen(body), &r, &aerr), -1);
    assert_int_equal(aerr.status, 400);
    assert_non_null(strstr(aerr.message, "has no fill-in-the-middle tokens"));
    engine_free(e);
}

static void test_lengths(void **state) {
    (void)state;
    if (!test_have_model("tokenizer-fixtures/ggml-vocab-llama-spm.gguf")) skip();
    engine *e = make_engine(test_model_path("tokenizer-fixtures/ggml-vocab-llama-spm.gguf"), "len.gguf");
    api_request r;
    api_error aerr;
    /* 5 prompt tokens (BOS + 4 ids) in a 64-token context */
    const char *ok = "{\"prompt\": [1, 2, 3, 4, 5], \"max_tokens\": 59}";
    assert_int_equal(api_parse(e, API_COMPLETION, ok, strlen(ok), &r, &aerr), 0);
    assert_int_equal(r.gp.max_tokens, 59);
    api_request_free(&r);
    const char *over = "{\"prompt\": [1, 2, 3, 4, 5], \"max_tokens\": 60}";
    assert_int_equal(api_parse(e, API_COMPLETION, over, strlen(over), &r, &aerr), -1);
    assert_string_equal(aerr.code, "context_length_exceeded");
    assert_non_null(strstr(aerr.message, "maximum context length is 64 tokens"));
    assert_non_null(strstr(aerr.message, "65 tokens"));
    /* defaults: completions 16 (OpenAI's), chat the rest of the context */
    const char *dflt = "{\"prompt\": [1, 2, 3]}";
    assert_int_equal(api_parse(e, API_COMPLETION, dflt, strlen(dflt), &r, &aerr), 0);
    assert_int_equal(r.gp.max_tokens, 16);
    api_request_free(&r);
    const char *chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
    assert_int_equal(api_parse(e, API_CHAT, chat, strlen(chat), &r, &aerr), 0);
    assert_int_equal(r.gp.max_tokens, 64 - (int)r.prompt.n);
    api_request_free(&r);
    /* llama.cpp's n_predict = -1 means "no limit" */
    const char *np = "{\"prompt\": [1, 2, 3], \"n_predict\": -1}";
    assert_int_equal(api_parse(e, API_COMPLETION, np, strlen(np), &r, &aerr), 0);
    assert_int_equal(r.gp.max_tokens, 16);
    api_request_free(&r);
    engine_free(e);
}

static void test_auth_keys(void **state) {
    (void)state;
    char hex[65];
    /* FIPS 180-2 test vector */
    assert_int_equal(auth_hash_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char k1[AUTH_KEY_MAX], k2[AUTH_KEY_MAX];
    al_err err;
    assert_int_equal(auth_key_generate(k1, &err), 0);
    assert_int_equal(auth_key_generate(k2, &err), 0);
    assert_int_equal(strlen(k1), 46);
    assert_memory_equal(k1, "al-", 3);
    assert_string_not_equal(k1, k2);
    char h1[65], h2[65];
    auth_hash_hex(k1, strlen(k1), h1);
    auth_hash_hex(k2, strlen(k2), h2);
    char text[512];
    snprintf(text, sizeof text, "# comment\n\nalice user %s\n  ops admin %s  # trailing comment\n", h1, h2);
    const char *path = test_path("keys");
    test_write_file(path, text, strlen(text));
    auth_keys ks;
    if (auth_keys_load(&ks, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ks.n, 2);
    const auth_key *a = auth_keys_check(&ks, k1, strlen(k1));
    assert_non_null(a);
    assert_string_equal(a->id, "alice");
    assert_false(a->admin);
    const auth_key *o = auth_keys_check(&ks, k2, strlen(k2));
    assert_non_null(o);
    assert_true(o->admin);
    assert_null(auth_keys_check(&ks, k1, strlen(k1) - 1));
    assert_null(auth_keys_check(&ks, "", 0));
    auth_keys_free(&ks);
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"alice user 12\n", "keys:1: hash must be 64 hex digits"},
        {"alice root 0000000000000000000000000000000000000000000000000000000000000000\n", "keys:1: role 'root'"},
        {"al ice user 00\n", "keys:1: expected three fields"},
        {"a user 0000000000000000000000000000000000000000000000000000000000000000\n"
         "a user 1111111111111111111111111111111111111111111111111111111111111111\n", "keys:2: duplicate key ID 'a'"},
        {"a user 000000000000000000000000000000000000000000000000000000000000000g\n", "non-hex"},
        {"# nothing\n", "no keys"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_write_file(path, bad[i].line, strlen(bad[i].line));
        assert_int_equal(auth_keys_load(&ks, path, &err), -1);
        if (!strstr(err.msg, bad[i].msg)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fim_prompt_order),
        cmocka_unit_test(test_no_fim_tokens_is_a_clear_error),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_auth_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
