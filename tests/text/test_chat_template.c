/* test_chat_template.c - airlock's chat formats against the real templates
 * rendered by Jinja2 (tests/reference/render_chat.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Llama 3.1, 3.2 and 3.3 instruct (llama3.1): the conversations above as
 * Jinja2 renders the templates those models ship (render_chat.py, whose
 * environment has no strftime_now, so all three fall back to the
 * template's literal date). The three render these conversations alike.
 * The template texts are not kept here; `k_llama31_markers` carries the
 * parts that recognition and the literals come from. */
static const char *const k_llama31_want[] = {
    /* one user turn, add_generation_prompt=0 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
    /* one user turn, add_generation_prompt=1 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    /* system + three turns, add_generation_prompt=0 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHey.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>",
    /* system + three turns, add_generation_prompt=1 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHey.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    /* two exchanges, add_generation_prompt=0 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nGoodbye!<|eot_id|>",
    /* two exchanges, add_generation_prompt=1 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nGoodbye!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    /* multi-line, add_generation_prompt=0 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe kind<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nline one\nline two<|eot_id|>",
    /* multi-line, add_generation_prompt=1 */
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe kind<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nline one\nline two<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
};

/* What airlock reads from such a template: the header tokens, the cut-off
 * line and the literal date (3.1), or a call of strftime_now (3.2, 3.3),
 * written as Jinja writes them (escaped newlines inside string literals). */
static const char k_llama31_markers[] = "{%- set date_string = \"26 Jul 2024\" %}\n"
                                        "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
                                        "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
                                        "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}{{- \"<|eot_id|>\" }}\n";

/* Today's date as the templates' strftime_now("%d %b %Y") writes it. */
static void today(char *out, size_t cap) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out, cap, "%d %b %Y", &tm);
}

static void test_llama31(void **state) {
    (void)state;
    chat_template t;
    al_err err;
    assert_int_equal(chat_format_detect(k_llama31_markers), CHAT_LLAMA31);
    assert_int_equal(chat_template_init(&t, k_llama31_markers, NULL, "<|begin_of_text|>", "<|eot_id|>", &err), 0);
    for (size_t ci = 0; ci < sizeof k_convos / sizeof *k_convos; ci++)
        for (int gen = 0; gen <= 1; gen++) {
            char *got = chat_template_apply(&t, k_convos[ci].msgs, k_convos[ci].n, gen, &err);
            assert_non_null(got);
            const char *want = k_llama31_want[2 * ci + (size_t)gen];
            if (strcmp(got, want) != 0) fail_msg("%s, add_generation_prompt=%d:\n--- jinja2 ---\n%s\n--- airlock ---\n%s", k_convos[ci].name, gen, want, got);
            free(got);
        }
    chat_template_free(&t);

    /* 3.2 / 3.3 ask for today's date; so does the family chosen by name */
    char before[32], after[32], line_before[96], line_after[96];
    const char *with_now = "{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- endif %}"
                           "<|start_header_id|><|eot_id|>{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
    for (int forced = 0; forced <= 1; forced++) {
        today(before, sizeof before);
        assert_int_equal(chat_template_init(&t, forced ? NULL : with_now, forced ? "llama3.1" : NULL, "<|begin_of_text|>", "<|eot_id|>", &err), 0);
        today(after, sizeof after);
        snprintf(line_before, sizeof line_before, "Cutting Knowledge Date: December 2023\nToday Date: %s\n\n", before);
        snprintf(line_after, sizeof line_after, "Cutting Knowledge Date: December 2023\nToday Date: %s\n\n", after);
        if (strcmp(t.system_header, line_before) != 0 && strcmp(t.system_header, line_after) != 0)
            fail_msg("%s: system header \"%s\", expected today's date (%s)", forced ? "forced" : "strftime_now", t.system_header, before);
        chat_template_free(&t);
    }
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
        cmocka_unit_test(test_llama31),
        cmocka_unit_test(test_default_system_prompt),
        cmocka_unit_test(test_unknown_and_forced),
    };
    return cmocka_run_group_tests_name("chat_template", tests, NULL, NULL);
}
