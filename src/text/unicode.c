/* unicode.c - Unicode properties from libutf8proc, with an ASCII fast path. */
#include "text/unicode.h"

#include "core/strbuf.h"

#include <pthread.h>
#include <utf8proc.h>

/* Maps utf8proc's general category to our flags. */
static uint16_t flags_of_category(utf8proc_category_t c) {
    switch (c) {
    case UTF8PROC_CATEGORY_LU: return UFLAG_LETTER | UFLAG_UPPER;
    case UTF8PROC_CATEGORY_LL: return UFLAG_LETTER | UFLAG_LOWER;
    case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: return UFLAG_LETTER;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: return UFLAG_MARK;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return UFLAG_NUMBER;
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO: return UFLAG_PUNCT;
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK: case UTF8PROC_CATEGORY_SO: return UFLAG_SYMBOL;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: return UFLAG_SEPARATOR;
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO: return UFLAG_CONTROL;
    default: return UFLAG_UNDEFINED;
    }
}

/* The White_Space property (PropList.txt): 25 codepoints. */
static int is_white_space(uint32_t cp) {
    if (cp >= 0x09 && cp <= 0x0D) return 1;
    switch (cp) {
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000: return 1;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

static uint16_t k_ascii[128];
static pthread_once_t k_ascii_once = PTHREAD_ONCE_INIT;

static uint16_t flags_slow(uint32_t cp) {
    uint16_t f = flags_of_category(utf8proc_category((utf8proc_int32_t)cp));
    if (is_white_space(cp)) f |= UFLAG_WHITESPACE;
    return f;
}

static void ascii_init(void) {
    for (uint32_t c = 0; c < 128; c++) k_ascii[c] = flags_slow(c);
}

uint16_t unicode_flags(uint32_t cp) {
    if (cp < 128) {
        pthread_once(&k_ascii_once, ascii_init); /* tokenizers run on many threads (the server) */
        return k_ascii[cp];
    }
    if (cp > UNICODE_MAX) return 0;
    return flags_slow(cp);
}

const char *unicode_category(uint32_t cp) {
    if (cp > UNICODE_MAX) return "Cn";
    return utf8proc_category_string((utf8proc_int32_t)cp);
}

uint32_t utf8_decode(const char *str, size_t len, size_t *adv) {
    const uint8_t *s = (const uint8_t *)str;
    *adv = 1;
    if (len == 0) return UNICODE_REPLACEMENT;
    uint8_t b = s[0];
    if (b < 0x80) return b;
    uint32_t cp, min;
    size_t n;
    if ((b & 0xE0) == 0xC0) { n = 2; cp = b & 0x1F; min = 0x80; }
    else if ((b & 0xF0) == 0xE0) { n = 3; cp = b & 0x0F; min = 0x800; }
    else if ((b & 0xF8) == 0xF0) { n = 4; cp = b & 0x07; min = 0x10000; }
    else return UNICODE_REPLACEMENT;
    if (len < n) return UNICODE_REPLACEMENT;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return UNICODE_REPLACEMENT;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > UNICODE_MAX || (cp >= 0xD800 && cp <= 0xDFFF)) return UNICODE_REPLACEMENT;
    *adv = n;
    return cp;
}

void utf8_sanitize(const char *s, size_t len, strbuf *out) {
    size_t i = 0, run = 0; /* s[run..i) is valid and not yet copied */
    while (i < len) {
        if ((uint8_t)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t adv;
        uint32_t cp = utf8_decode(s + i, len - i, &adv);
        if (cp == UNICODE_REPLACEMENT && adv == 1) { /* a real U+FFFD decodes with adv 3 */
            strbuf_put(out, s + run, i - run);
            strbuf_put(out, "\xef\xbf\xbd", 3);
            i++;
            run = i;
            continue;
        }
        i += adv;
    }
    strbuf_put(out, s + run, i - run);
}

int utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | ((cp >> 18) & 0x07)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

uint32_t unicode_tolower(uint32_t cp) {
    if (cp < 128) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    if (cp > UNICODE_MAX) return cp;
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

int unicode_nfd(uint32_t cp, uint32_t *out, int cap) {
    if (cp < 0xC0 || cp > UNICODE_MAX) {
        if (cap > 0) out[0] = cp;
        return 1;
    }
    utf8proc_int32_t buf[16];
    int last = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 16, UTF8PROC_DECOMPOSE, &last);
    if (n <= 0 || n > 16) {
        if (cap > 0) out[0] = cp;
        return 1;
    }
    int k = 0;
    for (utf8proc_ssize_t i = 0; i < n && k < cap; i++) out[k++] = (uint32_t)buf[i];
    return k;
}
