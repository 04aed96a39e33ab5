/* strbuf.c - growable strings. */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(strbuf *b, size_t need) {
    if (b->oom) return false;
    if (b->n + need + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + need + 1) cap *= 2;
    char *ns = realloc(b->s, cap);
    if (!ns) {
        b->oom = true;
        return false;
    }
    b->s = ns;
    b->cap = cap;
    return true;
}

void strbuf_put(strbuf *b, const char *s, size_t n) {
    if (!grow(b, n)) return;
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void strbuf_puts(strbuf *b, const char *s) { strbuf_put(b, s, strlen(s)); }

void strbuf_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

char *strbuf_take(strbuf *b) {
    if (b->oom) {
        strbuf_free(b);
        return NULL;
    }
    if (!b->s && !grow(b, 0)) return NULL;
    if (b->n == 0) b->s[0] = '\0';
    char *s = b->s;
    b->s = NULL;
    b->n = b->cap = 0;
    return s;
}

void strbuf_free(strbuf *b) {
    free(b->s);
    b->s = NULL;
    b->n = b->cap = 0;
    b->oom = false;
}
