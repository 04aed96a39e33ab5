/* test_util.c - temporary files, shared model paths, commands, byte buffers. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[256];

static void cleanup(void) {
    if (g_tmp[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    }
}

const char *test_tmpdir(void) {
    if (!g_tmp[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(g_tmp, sizeof g_tmp, "%s/airlock-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(g_tmp)) {
            perror("mkdtemp");
            abort();
        }
        atexit(cleanup);
    }
    return g_tmp;
}

const char *test_path(const char *name) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s", test_tmpdir(), name);
    return b;
}

const char *test_model_path(const char *rel) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    const char *dir = getenv("AIRLOCK_MODELS");
    snprintf(b, 512, "%s/%s", dir && *dir ? dir : AIRLOCK_MODELS_DIR, rel);
    return b;
}

int test_have_model(const char *rel) {
    struct stat st;
    if (stat(test_model_path(rel), &st) == 0) return 1;
    /* Missing model data is a failure, not a skip: a green run must mean the
     * real-model checks ran. Point AIRLOCK_MODELS at the data to fix. */
    fail_msg("model data %s not found (set AIRLOCK_MODELS to the shared/models directory)", test_model_path(rel));
    return 0;
}

void test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

char *test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = 0;
    if (n) *n = (size_t)len;
    return buf;
}

int test_run(const char *cmd, char **output) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (output) *output = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void bytes_put(bytes *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
void bytes_u8(bytes *b, uint8_t v) { bytes_put(b, &v, 1); }
void bytes_u32(bytes *b, uint32_t v) { bytes_put(b, &v, 4); }
void bytes_u64(bytes *b, uint64_t v) { bytes_put(b, &v, 8); }
void bytes_str(bytes *b, const char *s) {
    bytes_u64(b, strlen(s));
    bytes_put(b, s, strlen(s));
}
void bytes_free(bytes *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
