/* test_cli.c - the airlock binary's commands as a user runs them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static void test_help_lists_commands(void **state) {
    (void)state;
    char *out;
    assert_int_equal(test_run(AIRLOCK_BINARY " help", &out), 0);
    assert_non_null(strstr(out, "inspect"));
    assert_non_null(strstr(out, "tokenize"));
    assert_non_null(strstr(out, "run"));
    free(out);
    assert_int_equal(test_run(AIRLOCK_BINARY " inspect --help", &out), 0);
    assert_non_null(strstr(out, "--json"));
    free(out);
    assert_int_equal(test_run(AIRLOCK_BINARY " frobnicate", &out), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
    free(out);
}

static void test_inspect(void **state) {
    (void)state;
    if (!test_have_model("llm/stories260K.gguf")) skip();
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " inspect %s", test_model_path("llm/stories260K.gguf"));
    assert_int_equal(test_run(cmd, &out), 0);
    assert_non_null(strstr(out, "general.architecture"));
    assert_non_null(strstr(out, "token_embd.weight"));
    assert_non_null(strstr(out, "64 x 512"));
    free(out);
    snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " inspect --json %s", test_model_path("llm/stories260K.gguf"));
    assert_int_equal(test_run(cmd, &out), 0);
    assert_non_null(strstr(out, "\"name\":\"token_embd.weight\",\"type\":\"F32\",\"shape\":[64,512]"));
    free(out);
    /* a truncated copy: non-zero exit, message names file, field and offset */
    size_t n;
    char *data = test_read_file(test_model_path("llm/stories260K.gguf"), &n);
    test_write_file(test_path("trunc.gguf"), data, 1000);
    free(data);
    snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " inspect %s", test_path("trunc.gguf"));
    assert_int_equal(test_run(cmd, &out), 1);
    assert_non_null(strstr(out, "trunc.gguf"));
    assert_non_null(strstr(out, "offset"));
    free(out);
}

static void test_tokenize_roundtrip(void **state) {
    (void)state;
    if (!test_have_model("tokenizer-fixtures/ggml-vocab-llama-spm.gguf")) skip();
    char cmd[1024], *out;
    const char *m = test_model_path("tokenizer-fixtures/ggml-vocab-llama-spm.gguf");
    /* "Hello world" is [15043, 3186] in the Llama 2 vocabulary (fixture .out file) */
    snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " tokenize -m %s --ids --no-special 'Hello world'", m);
    assert_int_equal(test_run(cmd, &out), 0);
    assert_string_equal(out, "15043 3186\n");
    free(out);
    snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " tokenize -m %s --ids 'Hello world'", m);
    assert_int_equal(test_run(cmd, &out), 0);
    assert_string_equal(out, "1 15043 3186\n");
    free(out);
    snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " tokenize -m %s --detokenize 1 15043 3186", m);
    assert_int_equal(test_run(cmd, &out), 0);
    assert_string_equal(out, "Hello world\n");
    free(out);
    snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " tokenize -m %s --detokenize 99999", m);
    assert_int_equal(test_run(cmd, &out), 1);
    assert_non_null(strstr(out, "not a token id"));
    free(out);
}

static void test_chat_piped(void **state) {
    (void)state;
    if (!test_have_model("llm/stories260K.gguf")) return;
    char cmd[1024], *out;
    const char *m = test_model_path("llm/stories260K.gguf");
    /* stories260K ships no chat template: a clear message naming the way out */
    snprintf(cmd, sizeof cmd, "printf 'hi\\n' | " AIRLOCK_BINARY " chat -m %s", m);
    assert_int_equal(test_run(cmd, &out), 1);
    assert_non_null(strstr(out, "--chat-template"));
    free(out);
    /* three turns and a reset: one reply line per message, exit 0 */
    snprintf(cmd, sizeof cmd,
             "printf 'Hello\\nTell me more\\n/reset\\nAgain\\n' | " AIRLOCK_BINARY
             " chat -m %s --chat-template llama2 -n 8 --temp 0 -c 256 2>/dev/null | wc -l",
             m);
    assert_int_equal(test_run(cmd, &out), 0);
    assert_int_equal(atoi(out), 3);
    free(out);
    /* greedy chat is deterministic: the same input twice gives the same replies */
    char *a, *b;
    snprintf(cmd, sizeof cmd, "printf 'Hi\\nAnd?\\n' | " AIRLOCK_BINARY " chat -m %s --chat-template chatml -n 12 --temp 0 -c 256", m);
    assert_int_equal(test_run(cmd, &a), 0);
    assert_int_equal(test_run(cmd, &b), 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* bench: the tests asked for, in llama-bench's JSON shape (one object per
 * test, REPS samples each), with and without the warm-up run. */
static void test_bench_json(void **state) {
    (void)state;
    if (!test_have_model("llm/stories260K.gguf")) skip();
    const char *opts[] = {"", " --no-warmup"};
    for (int i = 0; i < 2; i++) {
        char cmd[1024], *out;
        snprintf(cmd, sizeof cmd, AIRLOCK_BINARY " bench -m %s -p 16 -n 4 -d 8 -t 1 -r 2 --json%s", test_model_path("llm/stories260K.gguf"),
                 opts[i]);
        assert_int_equal(test_run(cmd, &out), 0);
        assert_non_null(strstr(out, "\"n_prompt\": 16, \"n_gen\": 0, \"n_depth\": 8, \"test\": \"pp16 @ d8\""));
        assert_non_null(strstr(out, "\"n_prompt\": 0, \"n_gen\": 4, \"n_depth\": 8, \"test\": \"tg4 @ d8\""));
        const char *p = strstr(out, "\"samples_ts\": [");
        assert_non_null(p);
        assert_non_null(strchr(p, ','));            /* two samples */
        assert_true(strchr(p, ',') < strchr(p, ']'));
        free(out);
    }
    char *out;
    assert_int_equal(test_run(AIRLOCK_BINARY " bench --help", &out), 0);
    assert_non_null(strstr(out, "--no-warmup"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_commands),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_tokenize_roundtrip),
        cmocka_unit_test(test_chat_piped),
        cmocka_unit_test(test_bench_json),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
