/* test_batch.c - batched forward passes and the CPU kernel levels.
 *
 * A prompt run as one batch must give exactly the logits of running it one
 * token at a time (each output is summed in the same order either way), two
 * sequences batched together exactly their separate results, and every
 * kernel level (scalar, AVX2, AVX-512 with repacked weights) the same
 * logits up to float summation order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu.h"
#include "models/llm.h"
#include "models/synth.h"
#include "test_util.h"

enum { N_TOK = 7 };
/* Positions compared across levels. Summation order differs between
 * levels, so an activation can round to the neighbouring 8-bit value at a
 * later position and move every later logit by ~1% (see test_reference);
 * the first positions show whether the kernels agree. */
enum { N_CHECK = 3 };
static const int32_t k_prompt[N_TOK] = {1, 450, 4996, 17354, 1701, 432, 29889};
static const int32_t k_other[N_TOK] = {1, 15043, 29892, 3186, 29889, 1724, 338};

static const char *make_model(const char *type, const char *name) {
    const char *path = test_path(name);
    synth_params sp = {.shape = synth_find_shape("tiny-llama"), .vocab_path = test_model_path("tokenizer-fixtures/ggml-vocab-llama-spm.gguf"),
                       .type = type, .out_path = path, .seed = 3, .pure = true, .threads = 2};
    assert_non_null(sp.shape);
    al_err err;
    if (synth_write(&sp, &err)) fail_msg("%s", err.msg);
    return path;
}

/* Logits after each prompt token, one token at a time ([N_TOK][V]). */
static float *run_sequential(llm_model *m, const int32_t *toks) {
    al_err err;
    int V = m->hp.n_vocab;
    float *out = malloc(sizeof(float) * (size_t)V * N_TOK);
    llm_ctx *c = llm_ctx_init(m, 64, KV_F16, &err);
    assert_non_null(out);
    assert_non_null(c);
    for (int i = 0; i < N_TOK; i++) {
        const float *lg = llm_decode(c, toks[i], &err);
        if (!lg) fail_msg("%s", err.msg);
        memcpy(out + (size_t)i * V, lg, sizeof(float) * (size_t)V);
    }
    llm_ctx_free(c);
    return out;
}

static void check_batch_equals_sequential(const char *type) {
    al_err err;
    llm_model *m = llm_load(make_model(type, "batch.gguf"), &err);
    if (!m) fail_msg("%s", err.msg);
    int V = m->hp.n_vocab;
    float *seq_a = run_sequential(m, k_prompt), *seq_b = run_sequential(m, k_other);

    /* both prompts in one batch, interleaved, every token's logits wanted */
    llm_ctx *a = llm_ctx_init(m, 64, KV_F16, &err), *b = llm_ctx_init(m, 64, KV_F16, &err);
    llm_ws *ws = llm_ws_init(m, 2 * N_TOK, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(ws);
    int32_t toks[2 * N_TOK];
    llm_ctx *seqs[2 * N_TOK];
    bool want[2 * N_TOK];
    for (int i = 0; i < N_TOK; i++) {
        toks[2 * i] = k_prompt[i], seqs[2 * i] = a, want[2 * i] = true;
        toks[2 * i + 1] = k_other[i], seqs[2 * i + 1] = b, want[2 * i + 1] = true;
    }
    float *lg = malloc(sizeof(float) * (size_t)V * 2 * N_TOK);
    assert_non_null(lg);
    llm_batch batch = {.n = 2 * N_TOK, .tokens = toks, .seq = seqs, .want_logits = want};
    assert_int_equal(llm_forward(ws, &batch, lg, &err), 2 * N_TOK);
    assert_int_equal(a->pos, N_TOK);
    assert_int_equal(b->pos, N_TOK);
    for (int i = 0; i < N_TOK; i++) {
        if (memcmp(lg + (size_t)(2 * i) * V, seq_a + (size_t)i * V, sizeof(float) * (size_t)V))
            fail_msg("%s: batched logits of sequence A token %d differ from one-at-a-time", type, i);
        if (memcmp(lg + (size_t)(2 * i + 1) * V, seq_b + (size_t)i * V, sizeof(float) * (size_t)V))
            fail_msg("%s: batched logits of sequence B token %d differ from one-at-a-time", type, i);
    }

    /* llm_prefill of the whole prompt: the last token's logits, exactly */
    llm_ctx_reset(a);
    const float *last = llm_prefill(a, k_prompt, N_TOK, &err);
    assert_non_null(last);
    assert_memory_equal(last, seq_a + (size_t)(N_TOK - 1) * V, sizeof(float) * (size_t)V);

    /* a batch that does not fit a context changes nothing */
    llm_ctx *small = llm_ctx_init(m, 4, KV_F16, &err);
    llm_ctx *ss[N_TOK];
    for (int i = 0; i < N_TOK; i++) ss[i] = small;
    llm_batch over = {.n = N_TOK, .tokens = k_prompt, .seq = ss};
    assert_int_equal(llm_forward(ws, &over, lg, &err), -1);
    assert_non_null(strstr(err.msg, "context is full"));
    assert_int_equal(small->pos, 0);
    llm_ctx_free(small);

    free(lg);
    free(seq_a);
    free(seq_b);
    llm_ws_free(ws);
    llm_ctx_free(a);
    llm_ctx_free(b);
    llm_free(m);
}

static void test_batch_equals_sequential(void **state) {
    (void)state;
    const char *types[] = {"Q4_0", "Q8_0", "Q4_K", "Q6_K", "Q5_0", "F16"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) check_batch_equals_sequential(types[i]);
}

/* Every level gives the scalar level's logits, up to summation order. */
static void test_levels_agree(void **state) {
    (void)state;
    const char *types[] = {"Q4_0", "Q8_0", "Q4_K", "Q6_K", "Q5_0", "F16"};
    cpu_level saved = cpu_level_get();
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const char *path = make_model(types[ti], "levels.gguf");
        float *ref = NULL;
        int V = 0;
        for (int lvl = CPU_LEVEL_SCALAR; lvl <= (int)cpu_level_max(); lvl++) {
            cpu_level_set((cpu_level)lvl);
            al_err err;
            llm_model *m = llm_load(path, &err); /* repacking depends on the level */
            if (!m) fail_msg("%s", err.msg);
            V = m->hp.n_vocab;
            float *lg = run_sequential(m, k_prompt);
            if (!ref) {
                ref = lg;
            } else {
                double worst = 0, scale = 0;
                for (size_t i = 0; i < (size_t)V * N_CHECK; i++) {
                    worst = fmax(worst, fabs((double)lg[i] - ref[i]));
                    scale = fmax(scale, fabs((double)ref[i]));
                }
                print_message("%-4s %-6s vs scalar: max |logit difference| %.2e (max |logit| %.2f)\n", types[ti],
                              cpu_level_name((cpu_level)lvl), worst, scale);
                if (worst > 1e-4 * scale)
                    fail_msg("%s at level %s: logits differ from scalar by %.3g", types[ti], cpu_level_name((cpu_level)lvl), worst);
                free(lg);
            }
            llm_free(m);
        }
        free(ref);
        (void)V;
    }
    cpu_level_set(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_equals_sequential),
        cmocka_unit_test(test_levels_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
