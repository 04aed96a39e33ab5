/* test_chat_template.c - airlock's chat formats against the real templates
 * rendered by Jinja2 (tests/reference/render_chat.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "text/chat_template.h"

typedef struct fixture {
    const char *file;
    const char *bos, *eos;
    chat_format family;
} fixture;

static const fixture k_fixtures[] = {
    {"llama2.jinja", "<s>", "</s>", CHAT_LLAMA2},
    {"llama3.jinja", "<|begin_of_text|>", "<|eot_id|>", CHAT_LLAMA3},
    {"qwen2.5.jinja", "", "<|im_end|>", CHAT_CHATML},
    {"smollm2.jinja", "<|im_start|>", "<|im_end|>", CHAT_CHATML},
    {"mistral.jinja", "<s>", "</s>", CHAT_MISTRAL},
    {"phi3.jinja", "<s>", "<|endoftext|>", CHAT_PHI3},
    {"gemma.jinja", "<bos>", "<eos>", CHAT_GEMMA},
    {"deepseek-llm.jinja", "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
     "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", CHAT_DEEPSEEK},
};

typedef struct convo {
    const char *name;
    chat_message msgs[6];
    size_t n;
} convo;

static const convo k_convos[] = {
    {"one user turn", {{"user", "Hello"}}, 1},
    {"system + three turns", {{"system", "You are terse."}, {"user", "Hi  "}, {"assistant", " Hey. "}, {"user", "What is 2+2?"}}, 4},
    {"two exchanges", {{"user", "Hi"}, {"assistant", "Hello there"}, {"user", "Bye"}, {"assistant", "Goodbye!"}}, 4},
    {"multi-line", {{"system", "Be kind"}, {"user", "line one\nline two"}}, 2},
};

static char *template_path(const char *file) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/chat_templates/%s", AIRLOCK_TEST_DATA, file);
    return buf;
}

/* Shell-quotes s into out (single quotes). */
static void quote(char *out, size_t cap, const char *s) {
    size_t o = 0;
    out[o++] = '\'';
    for (; *s && o + 8 < cap; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else if (*s == '\n') {
            memcpy(out + o, "\\n", 2);
            o += 2;
        } else {
            out[o++] = *s;
        }
    }
    out[o++] = '\'';
    out[o] = 0;
}

static char *jinja_render(const fixture *f, const convo *c, int gen) {
    char cmd[8192], q[1024];
    int o = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../reference/render_chat.py %s", AIRLOCK_TEST_DATA, template_path(f->file));
    quote(q, sizeof q, f->bos);
    o += snprintf(cmd + o, sizeof cmd - (size_t)o, " %s", q);
    quote(q, sizeof q, f->eos);
    o += snprintf(cmd + o, sizeof cmd - (size_t)o, " %s %d", q, gen);
    for (size_t i = 0; i < c->n; i++) {
        char arg[512];
        snprintf(arg, sizeof arg, "%s=%s", c->msgs[i].role, c->msgs[i].content);
        quote(q, sizeof q, arg);
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, " %s", q);
    }
    char *out;
    if (test_run(cmd, &out) != 0) fail_msg("render_chat.py failed: %s", out);
    return out;
}

static void test_against_jinja(void **state) {
    (void)state;
    int compared = 0, refused = 0;
    for (size_t fi = 0; fi < sizeof k_fixtures / sizeof *k_fixtures; fi++) {
        const fixture *f = &k_fixtures[fi];
        char *jinja = test_read_file(template_path(f->file), NULL);
        assert_int_equal(chat_format_detect(jinja), f->family);
        chat_template t;
        al_err err;
        if (chat_template_init(&t, jinja, NULL, f->bos, f->eos, &err)) fail_msg("%s: %s", f->file, err.msg);
        for (size_t ci = 0; ci < sizeof k_convos / sizeof *k_convos; ci++) {
            for (int gen = 0; gen <= 1; gen++) {
                char *want = jinja_render(f, &k_convos[ci], gen);
                if (strncmp(want, "RAISES: ", 8) == 0) { /* the template refuses (e.g. no system role) */
                    refused++;
                    free(want);
                    continue;
                }
                char *got = chat_template_apply(&t, k_convos[ci].msgs, k_convos[ci].n, gen, &err);
                assert_non_null(got);
                if (strcmp(got, want) != 0)
                    fail_msg("%s, %s, add_generation_prompt=%d:\n--- jinja2 ---\n%s\n--- airlock ---\n%s", f->file, k_convos[ci].name, gen, want, got);
                compared++;
                free(got);
                free(want);
            }
        }
        chat_template_free(&t);
        free(jinja);
    }
    print_message("%d renderings identical to Jinja2 (%d refused by the template itself)\n", compared, refused);
    assert_true(compared >= 50);
}

static void test_default_system_prompt(void **state) {
    (void)state;
    char *jinja = test_read_file(template_path("qwen2.5.jinja"), NULL);
    chat_template t;
    al_err err;
    assert_int_equal(chat_template_init(&t, jinja, NULL, "", "<|im_end|>", &err), 0);
    assert_string_equal(t.default_system, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
    chat_template_free(&t);
    free(jinja);
}

static void test_unknown_and_forced(void **state) {
    (void)state;
    chat_template t;
    al_err err;
    assert_int_equal(chat_template_init(&t, "{{ messages | weird_filter }}", NULL, "<s>", "</s>", &err), -1);
    assert_non_null(strstr(err.msg, "--chat-template"));
    assert_non_null(strstr(err.msg, "chatml"));
    assert_int_equal(chat_template_init(&t, NULL, NULL, "<s>", "</s>", &err), -1);
    assert_non_null(strstr(err.msg, "no chat template"));
    assert_int_equal(chat_template_init(&t, NULL, "nope", "<s>", "</s>", &err), -1);
    assert_non_null(strstr(err.msg, "unknown chat template 'nope'"));
    assert_int_equal(chat_template_init(&t, "{{ weird }}", "chatml", "<s>", "</s>", &err), 0);
    chat_message m = {"user", "hi"};
    char *s = chat_template_apply(&t, &m, 1, true, &err);
    assert_string_equal(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    chat_template_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_jinja),
        cmocka_unit_test(test_default_system_prompt),
        cmocka_unit_test(test_unknown_and_forced),
    };
    return cmocka_run_group_tests_name("chat_template", tests, NULL, NULL);
}
