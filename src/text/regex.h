/* regex.h - a small backtracking regular-expression engine over codepoints,
 * for the pre-tokenizer patterns of BPE vocabularies.
 *
 * Syntax: literals, `.`, classes `[...]` / `[^...]` with ranges, escapes
 * \s \S \d \D \w \W \r \n \t \f \v \xHH \uHHHH, Unicode properties \p{L}
 * \p{N} \p{P} \p{S} \p{M} \p{Z} \p{C} and two-letter categories (\p{Lu}),
 * \P{..} negations, groups (...) (?:...) (?i:...), lookaheads (?=...) (?!...),
 * alternation |, quantifiers * + ? {n} {n,} {n,m} (greedy, or lazy with ?),
 * anchors ^ $. Matching is leftmost-first, like Oniguruma/PCRE/ECMAScript.
 * `\s` is the Unicode White_Space property. */
#ifndef AIRLOCK_TEXT_REGEX_H
#define AIRLOCK_TEXT_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct regex regex;

/* Compiles a UTF-8 pattern. Returns NULL with err set on a syntax error. */
regex *regex_compile(const char *pattern, al_err *err);
void regex_free(regex *re);

/* Subject of a match: codepoints with their unicode_flags(). */
typedef struct regex_subject {
    const uint32_t *cps;
    const uint16_t *flags;
    size_t begin, end; /* the match window: ^ and $ and lookaheads stop here */
} regex_subject;

/* Tries to match starting exactly at pos. Returns the end position of the
 * match (which may equal pos for an empty match), or -1. */
long regex_match_at(const regex *re, const regex_subject *s, size_t pos);

/* Splits the window [s->begin, s->end) the way pre-tokenizers do: every match
 * becomes a piece and so does every run of text between matches. Appends
 * piece lengths to *lens (a growable array of *n / *cap entries).
 * Returns 0, or -1 when out of memory. */
int regex_split(const regex *re, const regex_subject *s, size_t **lens, size_t *n, size_t *cap);

#endif
