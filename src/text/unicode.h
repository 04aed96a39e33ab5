/* unicode.h - UTF-8 decoding and the Unicode character properties the
 * tokenizers need (general category groups, White_Space, case, NFD).
 *
 * Property data comes from libutf8proc (Debian's packaged Unicode tables). */
#ifndef AIRLOCK_TEXT_UNICODE_H
#define AIRLOCK_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Category-group flags (one of the first eight is set) plus properties. */
enum unicode_flag {
    UFLAG_UNDEFINED = 1 << 0,  /* Cn */
    UFLAG_NUMBER = 1 << 1,     /* \p{N} */
    UFLAG_LETTER = 1 << 2,     /* \p{L} */
    UFLAG_SEPARATOR = 1 << 3,  /* \p{Z} */
    UFLAG_MARK = 1 << 4,       /* \p{M} */
    UFLAG_PUNCT = 1 << 5,      /* \p{P} */
    UFLAG_SYMBOL = 1 << 6,     /* \p{S} */
    UFLAG_CONTROL = 1 << 7,    /* \p{C} other than Cn */
    UFLAG_WHITESPACE = 1 << 8, /* White_Space property (\s) */
    UFLAG_LOWER = 1 << 9,      /* Ll */
    UFLAG_UPPER = 1 << 10,     /* Lu */
};

#define UNICODE_REPLACEMENT 0xFFFDu
#define UNICODE_MAX 0x10FFFFu

/* Flags of codepoint cp (0 for values past U+10FFFF). */
uint16_t unicode_flags(uint32_t cp);

/* Two-letter general category of cp, e.g. "Lu", "Mn". */
const char *unicode_category(uint32_t cp);

/* Decodes one UTF-8 sequence at s[0..len). Stores its length in *adv (>= 1).
 * Malformed, truncated, overlong or surrogate sequences decode as U+FFFD
 * with *adv = 1, so every byte of bad input is consumed exactly once. */
uint32_t utf8_decode(const char *s, size_t len, size_t *adv);

/* Encodes cp (<= U+10FFFF) into out; returns the byte count (1..4). */
int utf8_encode(uint32_t cp, char out[4]);

/* Length a UTF-8 sequence claims from its lead byte (1 for stray bytes). */
static inline size_t utf8_len_lead(uint8_t b) {
    static const uint8_t k[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return k[b >> 4];
}

/* Appends s[0..len) to out with every malformed sequence replaced by
 * U+FFFD, so the result is valid UTF-8 (JSON output needs it). */
struct strbuf;
void utf8_sanitize(const char *s, size_t len, struct strbuf *out);

/* Simple (one-to-one) lowercase mapping. */
uint32_t unicode_tolower(uint32_t cp);

/* Canonical decomposition (NFD) of cp into out (up to cap codepoints).
 * Returns the count written (cp itself when it does not decompose). */
int unicode_nfd(uint32_t cp, uint32_t *out, int cap);

#endif
