/* test_regex.c - the pre-tokenizer regex engine against hand-worked splits. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "text/regex.h"
#include "text/unicode.h"

/* Splits text with pattern; returns the pieces joined by '|' (static buffer). */
static const char *split(const char *pattern, const char *text) {
    static char out[4096];
    al_err err;
    regex *re = regex_compile(pattern, &err);
    if (!re) fail_msg("%s", err.msg);
    size_t n = strlen(text);
    uint32_t *cps = calloc(n + 1, sizeof *cps);
    uint16_t *fl = calloc(n + 1, sizeof *fl);
    size_t *off = calloc(n + 2, sizeof *off); /* byte offset of each codepoint */
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t adv;
        cps[k] = utf8_decode(text + i, n - i, &adv);
        fl[k] = unicode_flags(cps[k]);
        off[k++] = i;
        i += adv;
    }
    off[k] = n;
    regex_subject s = {cps, fl, 0, k};
    size_t *lens = NULL, nl = 0, cap = 0;
    assert_int_equal(regex_split(re, &s, &lens, &nl, &cap), 0);
    size_t o = 0, pos = 0;
    for (size_t i = 0; i < nl; i++) {
        if (i) out[o++] = '|';
        size_t b0 = off[pos], b1 = off[pos + lens[i]];
        memcpy(out + o, text + b0, b1 - b0);
        o += b1 - b0;
        pos += lens[i];
    }
    out[o] = 0;
    assert_int_equal(pos, k);
    free(lens);
    free(cps);
    free(fl);
    free(off);
    regex_free(re);
    return out;
}

#define GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static void test_gpt2_pattern(void **state) {
    (void)state;
    assert_string_equal(split(GPT2, "Hello world"), "Hello| world");
    assert_string_equal(split(GPT2, "it's 42!!  ok"), "it|'s| 42|!!| | ok");
    assert_string_equal(split(GPT2, "a   b"), "a|  | b");
    assert_string_equal(split(GPT2, "end  "), "end|  ");
    assert_string_equal(split(GPT2, "Grüße 世界"), "Grüße| 世界");
    assert_string_equal(split(GPT2, "x\n\ny"), "x|\n|\n|y");
}

static void test_llama3_pattern(void **state) {
    (void)state;
    const char *re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    assert_string_equal(split(re, "1234567"), "123|456|7");
    assert_string_equal(split(re, "IT'S"), "IT|'S");
    assert_string_equal(split(re, "(hello)"), "(hello|)");
    assert_string_equal(split(re, "a \n\n b"), "a| \n\n| b");
}

static void test_engine_features(void **state) {
    (void)state;
    /* leftmost-first alternation, not longest */
    assert_string_equal(split("a|ab", "ab"), "a|b");
    /* counted repeats and lazy quantifiers */
    assert_string_equal(split("x{2}", "xxxxx"), "xx|xx|x");
    assert_string_equal(split("x{2,}", "xxxxx"), "xxxxx");
    assert_string_equal(split("<.+?>", "<a><b>"), "<a>|<b>");
    /* lookahead, positive and negative */
    assert_string_equal(split("a(?=b)", "abac"), "a|bac");
    assert_string_equal(split("a(?!b)", "abac"), "ab|a|c");
    /* anchors */
    assert_string_equal(split("\\s+$", "a  b  "), "a  b|  ");
    assert_string_equal(split("^a", "aaa"), "a|aa");
    /* classes: ranges, negation, escapes, non-ASCII ranges */
    assert_string_equal(split("[0-9]+", "ab12cd345"), "ab|12|cd|345");
    assert_string_equal(split("[^a-z]+", "abC1-d"), "ab|C1-|d");
    assert_string_equal(split("[À-ÖØ-öø-ÿ]+", "aéb"), "a|é|b");
    assert_string_equal(split("[\\p{P}\\$]+", "a$.b,c"), "a|$.|b|,|c");
    assert_string_equal(split("\\p{Lu}\\p{Ll}*", "HelloWorld"), "Hello|World");
    /* groups with quantifiers (general backtracking path) */
    assert_string_equal(split("(ab)+", "ababa"), "abab|a");
    assert_string_equal(split("(?:a|b)c", "acbcc"), "ac|bc|c");
    /* \s is Unicode White_Space: U+3000 ideographic space, U+0085 */
    assert_string_equal(split("\\s+", "a\xe3\x80\x80\xc2\x85z"), "a|\xe3\x80\x80\xc2\x85|z");
    /* escapes */
    assert_string_equal(split("\\x41\\u00e9", "Aé"), "Aé");
    assert_string_equal(split("\\.", "a.b"), "a|.|b");
}

static void test_long_input_no_stack_growth(void **state) {
    (void)state;
    /* a megabyte of letters and one of spaces: repeats must not recurse per char */
    size_t n = 1 << 20;
    char *text = malloc(2 * n + 1);
    memset(text, 'a', n);
    memset(text + n, ' ', n);
    text[2 * n] = 0;
    al_err err;
    regex *re = regex_compile(GPT2, &err);
    assert_non_null(re);
    uint32_t *cps = malloc(2 * n * sizeof *cps);
    uint16_t *fl = malloc(2 * n * sizeof *fl);
    for (size_t i = 0; i < 2 * n; i++) {
        cps[i] = (uint8_t)text[i];
        fl[i] = unicode_flags(cps[i]);
    }
    regex_subject s = {cps, fl, 0, 2 * n};
    size_t *lens = NULL, nl = 0, cap = 0;
    assert_int_equal(regex_split(re, &s, &lens, &nl, &cap), 0);
    assert_int_equal(nl, 2);
    assert_int_equal(lens[0], n);
    assert_int_equal(lens[1], n);
    free(lens);
    free(cps);
    free(fl);
    free(text);
    regex_free(re);
}

static void test_syntax_errors(void **state) {
    (void)state;
    const char *bad[] = {"(a", "a)", "[abc", "\\p{Q}", "*a", "a{3,2}", "\\", "[z-a]", "(?<x>a)", "\\q"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        al_err err;
        regex *re = regex_compile(bad[i], &err);
        if (re) fail_msg("pattern '%s' accepted", bad[i]);
        assert_non_null(strstr(err.msg, "regex"));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_pattern),
        cmocka_unit_test(test_llama3_pattern),
        cmocka_unit_test(test_engine_features),
        cmocka_unit_test(test_long_input_no_stack_growth),
        cmocka_unit_test(test_syntax_errors),
    };
    return cmocka_run_group_tests_name("regex", tests, NULL, NULL);
}
