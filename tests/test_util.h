/* test_util.h - helpers shared by the cmocka test programs. */
#ifndef AIRLOCK_TEST_UTIL_H
#define AIRLOCK_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh temporary directory for this process (removed at exit). */
const char *test_tmpdir(void);
/* Path "<tmpdir>/<name>" in a static rotating buffer. */
const char *test_path(const char *name);
/* Path under the shared model directory. */
const char *test_model_path(const char *rel);
/* True if the shared model file exists; fails the test when it does not. */
int test_have_model(const char *rel);
/* Writes n bytes to path; fails the test on error. */
void test_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file (malloc'd, NUL-terminated); fails the test on error. */
char *test_read_file(const char *path, size_t *n);
/* Runs a shell command, captures stdout+stderr (malloc'd) and returns the
 * exit status. */
int test_run(const char *cmd, char **output);

/* A growable byte buffer to craft binary files by hand. */
typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;
void bytes_put(bytes *b, const void *p, size_t n);
void bytes_u8(bytes *b, uint8_t v);
void bytes_u32(bytes *b, uint32_t v);
void bytes_u64(bytes *b, uint64_t v);
void bytes_str(bytes *b, const char *s);
void bytes_free(bytes *b);

#endif
