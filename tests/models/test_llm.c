/* test_llm.c - the LLaMA runner on the real stories260K model, against golden
 * outputs from two independent implementations (llama2.c run.c and llama.cpp),
 * and its errors on broken model files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/llama2c.h"
#include "models/llm.h"
#include "models/sampler.h"
#include "test_util.h"

#define STORIES "llm/stories260K.gguf"

/* Greedy generation: prompt -> text of n_predict generated tokens (echoing
 * the prompt), with SentencePiece's leading space removed. */
static char *greedy(llm_model *m, const char *prompt, int n_predict, kv_type kv) {
    al_err err;
    llm_ctx *c = llm_ctx_init(m, 512, kv, &err);
    assert_non_null(c);
    token_vec ids = {0};
    assert_int_equal(tokenizer_encode(m->tok, prompt, strlen(prompt), true, false, &ids, &err), 0);
    const float *logits = NULL;
    for (size_t i = 0; i < ids.n; i++) assert_non_null(logits = llm_decode(c, ids.ids[i], &err));
    for (int g = 0; g < n_predict; g++) {
        int best = 0;
        for (int v = 1; v < m->hp.n_vocab; v++)
            if (logits[v] > logits[best]) best = v;
        if (best == tokenizer_eos(m->tok)) break;
        token_vec_push(&ids, best);
        if (g + 1 < n_predict) assert_non_null(logits = llm_decode(c, best, &err));
    }
    char *text = tokenizer_decode(m->tok, ids.ids, ids.n, false, NULL, &err);
    token_vec_free(&ids);
    llm_ctx_free(c);
    return text;
}

static char *trimmed_file(const char *rel) {
    char *s = test_read_file(test_model_path(rel), NULL);
    char *p = s;
    while (*p == ' ') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == '\n' || p[n - 1] == ' ')) n--;
    memmove(s, p, n);
    s[n] = 0;
    return s;
}

static void test_golden_run_c(void **state) {
    (void)state;
    if (!test_have_model(STORIES)) skip();
    al_err err;
    llm_model *m = llm_load(test_model_path(STORIES), &err);
    if (!m) fail_msg("%s", err.msg);
    char *want = trimmed_file("llm/stories260K.expected_greedy_n200.txt");
    for (int kv = 0; kv < 2; kv++) {
        for (int threads = 1; threads <= 3; threads += 2) { /* the thread count must not change results */
            assert_int_equal(ops_set_threads(threads), 0);
            assert_int_equal(ops_get_threads(), threads);
            char *got = greedy(m, "", 200, kv == 0 ? KV_F16 : KV_F32);
            assert_string_equal(got, want);
            free(got);
        }
    }
    ops_set_threads(1);
    free(want);
    llm_free(m);
}

static void test_golden_llama_cpp(void **state) {
    (void)state;
    if (!test_have_model(STORIES)) skip();
    al_err err;
    llm_model *m = llm_load(test_model_path(STORIES), &err);
    if (!m) fail_msg("%s", err.msg);
    char *want = trimmed_file("llm/stories260K.gguf.expected_llamacpp_greedy_prompt_once_upon_a_time_n300.txt");
    char *got = greedy(m, "Once upon a time", 300, KV_F16);
    assert_string_equal(got, want);
    free(got);
    free(want);
    llm_free(m);
}

static void test_context_full_is_an_error(void **state) {
    (void)state;
    if (!test_have_model(STORIES)) skip();
    al_err err;
    llm_model *m = llm_load(test_model_path(STORIES), &err);
    llm_ctx *c = llm_ctx_init(m, 8, KV_F16, &err);
    for (int i = 0; i < 8; i++) assert_non_null(llm_decode(c, 1, &err));
    assert_null(llm_decode(c, 1, &err));
    assert_non_null(strstr(err.msg, "context is full (8 tokens)"));
    assert_null(llm_decode(c, 9999, &err));
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    llm_ctx_reset(c);
    assert_non_null(llm_decode(c, 1, &err));
    llm_ctx_free(c);
    llm_free(m);
}

static void test_seeded_sampling_is_reproducible(void **state) {
    (void)state;
    if (!test_have_model(STORIES)) skip();
    al_err err;
    llm_model *m = llm_load(test_model_path(STORIES), &err);
    int32_t runs[3][40];
    uint64_t seeds[3] = {7, 7, 8};
    for (int r = 0; r < 3; r++) {
        sampler_params p = sampler_default_params();
        p.seed = seeds[r];
        p.temperature = 1.0f;
        sampler *s = sampler_init(&p, m->hp.n_vocab);
        llm_ctx *c = llm_ctx_init(m, 64, KV_F16, &err);
        const float *logits = llm_decode(c, 1, &err);
        for (int i = 0; i < 40; i++) {
            runs[r][i] = sampler_sample(s, logits);
            sampler_accept(s, runs[r][i]);
            logits = llm_decode(c, runs[r][i], &err);
        }
        llm_ctx_free(c);
        sampler_free(s);
    }
    assert_memory_equal(runs[0], runs[1], sizeof runs[0]);
    assert_memory_not_equal(runs[0], runs[2], sizeof runs[0]);
    llm_free(m);
}

/* Writes a copy of stories260K with one change, then expects llm_load to fail
 * with an error containing `want`. */
enum mutation { MUT_DROP_TENSOR, MUT_SHAPE, MUT_ARCH, MUT_TYPE, MUT_DROP_KEY };

static void expect_load_error(enum mutation mut, const char *want) {
    al_err err;
    gguf_ctx *g = gguf_open(test_model_path(STORIES), &err);
    assert_non_null(g);
    gguf_writer *w = gguf_writer_init(3);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (mut == MUT_ARCH && strcmp(kv->key, "general.architecture") == 0) {
            assert_int_equal(gguf_writer_add_str(w, kv->key, "mamba"), 0);
            continue;
        }
        if (mut == MUT_DROP_KEY && strcmp(kv->key, "llama.block_count") == 0) continue;
        assert_int_equal(gguf_writer_add_value(w, kv->key, &kv->value), 0);
    }
    static uint8_t junk[1 << 16];
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        bool target = strcmp(t->name, "blk.2.ffn_up.weight") == 0;
        if (target && mut == MUT_DROP_TENSOR) continue;
        if (target && mut == MUT_SHAPE) {
            int64_t ne[2] = {t->ne[0], t->ne[1] - 4};
            assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, 2, ne, t->data, &err), 0);
            continue;
        }
        if (strcmp(t->name, "blk.0.attn_q.weight") == 0 && mut == MUT_TYPE) {
            /* same shape, in a type airlock does not run (IQ4_NL, blocks of 32) */
            assert_int_equal(gguf_writer_add_tensor(w, t->name, GGML_TYPE_IQ4_NL, 2, t->ne, junk, &err), 0);
            continue;
        }
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err), 0);
    }
    const char *path = test_path("broken.gguf");
    assert_int_equal(gguf_writer_write(w, path, NULL, NULL, &err), 0);
    gguf_writer_free(w);
    gguf_close(g);
    llm_model *m = llm_load(path, &err);
    if (m) fail_msg("broken model loaded (expected '%s')", want);
    if (!strstr(err.msg, want)) fail_msg("error '%s' lacks '%s'", err.msg, want);
    assert_non_null(strstr(err.msg, "broken.gguf"));
}

static void test_bad_model_files(void **state) {
    (void)state;
    if (!test_have_model(STORIES)) skip();
    expect_load_error(MUT_DROP_TENSOR, "missing tensor 'blk.2.ffn_up.weight'");
    expect_load_error(MUT_SHAPE, "tensor 'blk.2.ffn_up.weight' has shape [64, 168, 1, 1], expected [64, 172]");
    expect_load_error(MUT_ARCH, "unsupported architecture 'mamba'");
    expect_load_error(MUT_TYPE, "tensor 'blk.0.attn_q.weight' has type IQ4_NL, which airlock cannot run");
    expect_load_error(MUT_DROP_KEY, "'llama.block_count' is missing");
}

/* airlock import of the original llama2.c files gives the same tensors and
 * vocabulary as llama.cpp's converter, and the golden text. */
static void test_import_llama2c(void **state) {
    (void)state;
    if (!test_have_model("llm/stories260K.bin") || !test_have_model(STORIES)) return;
    al_err err;
    const char *out = test_path("imported.gguf");
    if (llama2c_convert(test_model_path("llm/stories260K.bin"), test_model_path("llm/tok512.bin"), out, &err))
        fail_msg("%s", err.msg);
    gguf_ctx *a = gguf_open(out, &err), *b = gguf_open(test_model_path(STORIES), &err);
    assert_non_null(a);
    assert_non_null(b);
    int compared = 0;
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const gguf_tensor *ta = &a->tensors[i], *tb = gguf_find_tensor(b, ta->name);
        if (!tb && strcmp(ta->name, "output.weight") != 0) fail_msg("tensor %s not in the reference file", ta->name);
        if (!tb) continue;
        assert_int_equal(ta->nbytes, tb->nbytes);
        assert_memory_equal(ta->data, tb->data, ta->nbytes);
        compared++;
    }
    assert_int_equal(compared, 47);
    const gguf_array *ka, *kb;
    assert_int_equal(gguf_get_arr(a, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &ka, &err), 0);
    assert_int_equal(gguf_get_arr(b, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &kb, &err), 0);
    assert_int_equal(ka->n, kb->n);
    for (uint64_t i = 0; i < ka->n; i++) {
        assert_int_equal(ka->strs[i].len, kb->strs[i].len);
        assert_memory_equal(ka->strs[i].ptr, kb->strs[i].ptr, ka->strs[i].len);
    }
    gguf_close(a);
    gguf_close(b);
    llm_model *m = llm_load(out, &err);
    if (!m) fail_msg("%s", err.msg);
    char *want = trimmed_file("llm/stories260K.expected_greedy_n200.txt");
    char *got = greedy(m, "", 200, KV_F16);
    assert_string_equal(got, want);
    free(got);
    free(want);
    llm_free(m);

    /* a truncated checkpoint is refused with the sizes named */
    size_t n;
    char *data = test_read_file(test_model_path("llm/stories260K.bin"), &n);
    test_write_file(test_path("cut.bin"), data, n - 100);
    free(data);
    assert_int_equal(llama2c_convert(test_path("cut.bin"), test_model_path("llm/tok512.bin"), test_path("x.gguf"), &err), -1);
    assert_non_null(strstr(err.msg, "the header implies"));
    test_write_file(test_path("tiny.bin"), "abc", 3);
    assert_int_equal(llama2c_convert(test_path("tiny.bin"), test_model_path("llm/tok512.bin"), test_path("x.gguf"), &err), -1);
    assert_non_null(strstr(err.msg, "too short"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_run_c),
        cmocka_unit_test(test_golden_llama_cpp),
        cmocka_unit_test(test_context_full_is_an_error),
        cmocka_unit_test(test_seeded_sampling_is_reproducible),
        cmocka_unit_test(test_bad_model_files),
        cmocka_unit_test(test_import_llama2c),
    };
    return cmocka_run_group_tests_name("llm", tests, NULL, NULL);
}
