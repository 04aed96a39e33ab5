/* error.c - formatting of al_err messages. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int al_err_set(al_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int al_err_prefix(al_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[AL_ERR_MAX];
    char old[AL_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t pl = strnlen(prefix, sizeof prefix - 1);
    size_t cap = sizeof err->msg - 1;
    size_t n = pl < cap ? pl : cap;
    memcpy(err->msg, prefix, n);
    if (n + 2 <= cap) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
    }
    size_t ol = strnlen(old, sizeof old - 1);
    if (ol > cap - n) ol = cap - n;
    memcpy(err->msg + n, old, ol);
    err->msg[n + ol] = '\0';
    return -1;
}
