/* test_quantize_model.c - `airlock quantize` end to end: every file type
 * round-trips a model within the bound its formats imply, keeps every
 * metadata key, follows the mix rules, refuses to requantize silently, and
 * an interrupted run leaves no file under the output name. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "formats/gguf.h"
#include "kernels/quantize.h"
#include "kernels/quants.h"
#include "models/quantize_model.h"
#include "models/synth.h"
#include "test_util.h"

static const char *g_src;

static int setup(void **state) {
    (void)state;
    static char path[1024];
    snprintf(path, sizeof path, "%s", test_path("src-f16.gguf"));
    synth_params sp = {.shape = synth_find_shape("tiny-qwen2"),
                       .vocab_path = test_model_path("tokenizer-fixtures/ggml-vocab-llama-spm.gguf"),
                       .type = "F16", .out_path = path, .seed = 5, .threads = 2};
    al_err err;
    if (synth_write(&sp, &err)) fail_msg("%s", err.msg);
    g_src = path;
    return 0;
}

/* Every element of every tensor of q is within its block's bound of src. */
static void check_roundtrip(const char *type) {
    char out[1024];
    snprintf(out, sizeof out, "%s", test_path("q.gguf"));
    quantize_params p = {.in_path = g_src, .out_path = out, .type = type, .threads = 2};
    quantize_result r;
    al_err err;
    if (quantize_model(&p, &r, &err)) fail_msg("%s: %s", type, err.msg);
    gguf_ctx *a = gguf_open(g_src, &err), *b = gguf_open(out, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->n_tensors, b->n_tensors);
    /* metadata: every key of the source, file type updated */
    for (uint64_t i = 0; i < a->n_kv; i++)
        if (strcmp(a->kv[i].key, "general.file_type") != 0 && gguf_find_key(b, a->kv[i].key) < 0)
            fail_msg("%s: metadata key %s lost", type, a->kv[i].key);
    double worst = 0;
    uint64_t out_bytes = 0;
    for (uint64_t t = 0; t < a->n_tensors; t++) {
        const gguf_tensor *x = &a->tensors[t], *y = gguf_find_tensor(b, x->name);
        assert_non_null(y);
        assert_memory_equal(x->ne, y->ne, sizeof x->ne);
        out_bytes += y->nbytes;
        int64_t n = x->ne[0], rows = x->nbytes / ggml_row_size(x->type, n);
        const ggml_type_info *ti = ggml_type_get(y->type);
        float *fx = malloc((size_t)n * sizeof *fx), *fy = malloc((size_t)n * sizeof *fy);
        for (int64_t r0 = 0; r0 < rows; r0++) {
            const uint8_t *qrow = (const uint8_t *)y->data + (size_t)r0 * ggml_row_size(y->type, n);
            dequantize_row(x->type, (const uint8_t *)x->data + (size_t)r0 * ggml_row_size(x->type, n), fx, n);
            dequantize_row(y->type, qrow, fy, n);
            for (int64_t i = 0; i < n; i++) {
                float bound;
                if (y->type == GGML_TYPE_F16) bound = fabsf(fx[i]) * ldexpf(1.0f, -11) + ldexpf(1.0f, -25);
                else bound = quant_max_error(y->type, qrow + (size_t)(i / ti->block_size) * ti->type_size, (int)(i % ti->block_size));
                bound = bound * 1.0001f + fabsf(fx[i]) * 1e-6f + 1e-12f;
                float e = fabsf(fx[i] - fy[i]);
                if (!(e <= bound))
                    fail_msg("%s: %s[%lld][%lld] (%s): %.9g -> %.9g, error %.3g > bound %.3g", type, x->name, (long long)r0,
                             (long long)i, ti->name, fx[i], fy[i], e, bound);
                if (bound > 0 && e / bound > worst) worst = e / bound;
            }
        }
        free(fx);
        free(fy);
    }
    assert_true(out_bytes == r.out_bytes);
    print_message("%-7s %6.2f bits per weight, worst error / bound %.3f\n", type, 8.0 * (double)r.out_bytes / (double)r.n_elems, worst);
    gguf_close(a);
    gguf_close(b);
}

static void test_every_type_roundtrips(void **state) {
    (void)state;
    static const char *types[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_S",
                                  "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "F16", "Q3_K_S", "Q3_K_L"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) check_roundtrip(types[i]);
}

/* The mix rules: Q4_K_M keeps the output in Q6_K, attn_v/ffn_down of the
 * last layer in Q6_K, norms in F32; --pure puts every matrix in Q4_K. */
static void test_mix_rules(void **state) {
    (void)state;
    const char *out = test_path("mix.gguf");
    al_err err;
    quantize_params p = {.in_path = g_src, .out_path = out, .type = "Q4_K_M", .threads = 2};
    if (quantize_model(&p, NULL, &err)) fail_msg("%s", err.msg);
    gguf_ctx *g = gguf_open(out, &err);
    assert_non_null(g);
    assert_int_equal(gguf_find_tensor(g, "token_embd.weight")->type, GGML_TYPE_Q6_K); /* tied: it is the output */
    /* the last eighth of the layers (here: layer 1 of 2) gets more bits, layer 0 of 2 does not */
    assert_int_equal(gguf_find_tensor(g, "blk.1.attn_v.weight")->type, GGML_TYPE_Q6_K);
    assert_int_equal(gguf_find_tensor(g, "blk.1.ffn_down.weight")->type, GGML_TYPE_Q6_K);
    assert_int_equal(gguf_find_tensor(g, "blk.0.attn_v.weight")->type, GGML_TYPE_Q4_K);
    assert_int_equal(gguf_find_tensor(g, "blk.0.attn_q.weight")->type, GGML_TYPE_Q4_K);
    assert_int_equal(gguf_find_tensor(g, "blk.0.attn_norm.weight")->type, GGML_TYPE_F32);
    assert_int_equal(gguf_find_tensor(g, "blk.0.attn_q.bias")->type, GGML_TYPE_F32);
    uint32_t ft;
    assert_int_equal(gguf_get_u32(g, "general.file_type", &ft, &err), 0);
    assert_int_equal(ft, 15);
    gguf_close(g);
    p.pure = true;
    if (quantize_model(&p, NULL, &err)) fail_msg("%s", err.msg);
    g = gguf_open(out, &err);
    assert_int_equal(gguf_find_tensor(g, "blk.1.attn_v.weight")->type, GGML_TYPE_Q4_K);
    assert_int_equal(gguf_find_tensor(g, "blk.0.attn_norm.weight")->type, GGML_TYPE_F32);
    gguf_close(g);
}

/* A quantized input is refused unless allow_requantize; the error says why. */
static void test_requantize_refused(void **state) {
    (void)state;
    char q8[1024];
    snprintf(q8, sizeof q8, "%s", test_path("q8.gguf"));
    al_err err;
    quantize_params p = {.in_path = g_src, .out_path = q8, .type = "Q8_0", .threads = 2};
    if (quantize_model(&p, NULL, &err)) fail_msg("%s", err.msg);
    const char *out = test_path("rq.gguf");
    quantize_params p2 = {.in_path = q8, .out_path = out, .type = "Q4_0", .threads = 2};
    assert_int_equal(quantize_model(&p2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "already Q8_0"));
    assert_non_null(strstr(err.msg, "--allow-requantize"));
    assert_int_not_equal(access(out, F_OK), 0);
    p2.allow_requantize = true;
    assert_int_equal(quantize_model(&p2, NULL, &err), 0);
    /* same type again: copied, not requantized */
    quantize_params p3 = {.in_path = q8, .out_path = out, .type = "Q8_0", .threads = 2};
    assert_int_equal(quantize_model(&p3, NULL, &err), 0);
    gguf_ctx *a = gguf_open(q8, &err), *b = gguf_open(out, &err);
    for (uint64_t i = 0; i < a->n_tensors; i++)
        assert_memory_equal(a->tensors[i].data, gguf_find_tensor(b, a->tensors[i].name)->data, a->tensors[i].nbytes);
    gguf_close(a);
    gguf_close(b);
}

static void test_bad_inputs(void **state) {
    (void)state;
    al_err err;
    const char *out = test_path("bad.gguf");
    quantize_params p = {.in_path = g_src, .out_path = out, .type = "Q9_9"};
    assert_int_equal(quantize_model(&p, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unknown type 'Q9_9'"));
    const char *junk = test_path("junk.gguf");
    test_write_file(junk, "GGUF\x03\0\0\0garbage", 15);
    p = (quantize_params){.in_path = junk, .out_path = out, .type = "Q4_0"};
    assert_int_equal(quantize_model(&p, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "junk.gguf"));
    assert_int_not_equal(access(out, F_OK), 0);
}

/* SIGINT in the middle of writing: neither OUT nor OUT.tmp remains. */
static void test_interrupt_leaves_nothing(void **state) {
    (void)state;
    char big[1024], out[1024], tmp[1100];
    snprintf(big, sizeof big, "%s", test_path("big-f16.gguf"));
    snprintf(out, sizeof out, "%s", test_path("interrupted.gguf"));
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    synth_params sp = {.shape = synth_find_shape("smollm2-135m"),
                       .vocab_path = test_model_path("tokenizer-fixtures/ggml-vocab-llama-spm.gguf"),
                       .type = "F16", .out_path = big, .seed = 1, .n_layer_override = 6, .threads = 2};
    al_err err;
    if (synth_write(&sp, &err)) fail_msg("%s", err.msg);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(AIRLOCK_BINARY, AIRLOCK_BINARY, "quantize", "-q", "-t", "1", big, out, "Q2_K", (char *)NULL);
        _exit(127);
    }
    /* wait until the temporary file exists, i.e. writing is under way */
    struct timespec ts = {0, 1000000};
    int seen = 0;
    for (int i = 0; i < 20000 && !seen; i++) {
        seen = access(tmp, F_OK) == 0;
        if (!seen) nanosleep(&ts, NULL);
    }
    assert_true(seen);
    kill(pid, SIGINT);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) fail_msg("quantize finished (status %d) before the interrupt; the test model is too small", WEXITSTATUS(status));
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    unlink(big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_roundtrips), cmocka_unit_test(test_mix_rules),
        cmocka_unit_test(test_requantize_refused),    cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_interrupt_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
