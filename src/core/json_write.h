/* json_write.h - writing JSON text to a stream (escaping done right). */
#ifndef AIRLOCK_CORE_JSON_WRITE_H
#define AIRLOCK_CORE_JSON_WRITE_H

#include <stddef.h>
#include <stdio.h>

/* Writes s[0..n) as a quoted JSON string. Invalid UTF-8 becomes U+FFFD. */
void json_write_str(FILE *f, const char *s, size_t n);

/* Writes a double as JSON (non-finite values as null). */
void json_write_num(FILE *f, double v);

#endif
