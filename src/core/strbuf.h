/* strbuf.h - a growable byte string. Failed growth sets `oom` and makes
 * later appends no-ops, so a caller checks once at the end. */
#ifndef AIRLOCK_CORE_STRBUF_H
#define AIRLOCK_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct strbuf {
    char *s;   /* NUL-terminated when non-NULL */
    size_t n, cap;
    bool oom;
} strbuf;

void strbuf_put(strbuf *b, const char *s, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) AL_PRINTF(2, 3);
/* Returns the string (caller frees) or NULL after an allocation failure. */
char *strbuf_take(strbuf *b);
void strbuf_free(strbuf *b);

#endif
