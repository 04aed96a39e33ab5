/* error.h - one error message carried back to the caller.
 *
 * Every fallible airlock function takes an `al_err *` and returns -1 (or NULL)
 * after filling it with a message that names what was wrong and where. */
#ifndef AIRLOCK_CORE_ERROR_H
#define AIRLOCK_CORE_ERROR_H

#include <stddef.h>

#define AL_ERR_MAX 512

typedef struct al_err {
    char msg[AL_ERR_MAX];
} al_err;

#if defined(__GNUC__)
#define AL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AL_PRINTF(a, b)
#endif

/* Formats a message into err (if err is non-NULL). Always returns -1 so a
 * caller can write `return al_err_set(err, ...)`. */
int al_err_set(al_err *err, const char *fmt, ...) AL_PRINTF(2, 3);

/* Prepends "prefix: " to the message already in err. Returns -1. */
int al_err_prefix(al_err *err, const char *fmt, ...) AL_PRINTF(2, 3);

#endif
