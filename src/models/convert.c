/* convert.c - streaming, multi-threaded tensor conversion into a GGUF file. */
#include "models/convert.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "kernels/quantize.h"
#include "kernels/quants.h"

#define ROWS_PER_ITEM 16

int64_t convert_src_row(int perm_heads, int64_t n_rows, int64_t r) {
    if (perm_heads <= 0) return r;
    int64_t hd = n_rows / perm_heads;
    int64_t h = r / hd, j = r % hd;
    return h * hd + (j % 2) * (hd / 2) + j / 2;
}

typedef struct convert_job {
    const convert_tensor *t;
    size_t n;
    threadpool *pool;
    float **scratch;        /* [threads][max row length] */
    /* the tensor being filled */
    const convert_tensor *cur;
    uint8_t *dst;
    int64_t n_rows;
    size_t src_row_bytes, dst_row_bytes;
    /* progress */
    const char *label;
    bool progress;
    uint64_t done, total;
    struct timespec t0;
    convert_stats *stats;
} convert_job;

static double now_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* Converts rows [i*ROWS_PER_ITEM, ...) of the current tensor. */
static void convert_rows(void *arg, int64_t item) {
    convert_job *j = arg;
    const convert_tensor *t = j->cur;
    float *row = j->scratch[threadpool_thread_index()];
    int64_t r0 = item * ROWS_PER_ITEM, r1 = r0 + ROWS_PER_ITEM < j->n_rows ? r0 + ROWS_PER_ITEM : j->n_rows;
    for (int64_t r = r0; r < r1; r++) {
        uint8_t *out = j->dst + (size_t)r * j->dst_row_bytes;
        if (!t->src) {
            t->gen(t->gen_user, t, r, row);
            quantize_row(t->type, row, out, t->ne[0]);
            continue;
        }
        const uint8_t *in = (const uint8_t *)t->src + (size_t)convert_src_row(t->perm_heads, j->n_rows, r) * j->src_row_bytes;
        if (t->src_type == t->type) {
            memcpy(out, in, j->dst_row_bytes);
        } else {
            dequantize_row(t->src_type, in, row, t->ne[0]);
            quantize_row(t->type, row, out, t->ne[0]);
        }
    }
}

static int fill(void *user, uint64_t index, void *buf, size_t size, al_err *err) {
    convert_job *j = user;
    const convert_tensor *t = &j->t[index];
    j->cur = t;
    j->dst = buf;
    j->n_rows = 1;
    for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++) j->n_rows *= t->ne[d];
    j->dst_row_bytes = ggml_row_size(t->type, t->ne[0]);
    j->src_row_bytes = t->src ? ggml_row_size(t->src_type, t->ne[0]) : 0;
    if (j->dst_row_bytes * (size_t)j->n_rows != size) return al_err_set(err, "tensor '%s': size mismatch", t->name);
    threadpool_run(j->pool, convert_rows, j, (j->n_rows + ROWS_PER_ITEM - 1) / ROWS_PER_ITEM);
    if (t->src && t->src_mapped) { /* done with these source pages: let the kernel drop them */
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t a = (uintptr_t)t->src, e = a + j->src_row_bytes * (size_t)j->n_rows;
        uintptr_t a0 = (a + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page, e0 = e / (uintptr_t)page * (uintptr_t)page;
        if (e0 > a0) madvise((void *)a0, e0 - a0, MADV_DONTNEED);
    }
    j->stats->bytes_in += j->src_row_bytes * (uint64_t)j->n_rows;
    j->stats->bytes_out += size;
    j->stats->n_elems += (uint64_t)t->ne[0] * (uint64_t)j->n_rows;
    j->done += size;
    if (j->progress) {
        double s = now_since(&j->t0);
        int w = 30, fillw = (int)((double)w * (double)j->done / (double)(j->total ? j->total : 1));
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fillw ? '#' : '.';
        bar[w] = 0;
        fprintf(stderr, "\r%s: [%s] %5.1f%% %4zu/%zu %-28.28s %6.0f MB/s", j->label, bar,
                100.0 * (double)j->done / (double)(j->total ? j->total : 1), (size_t)index + 1, j->n, t->name,
                s > 0 ? (double)j->done / 1e6 / s : 0.0);
        if (index + 1 == j->n) fputc('\n', stderr);
    }
    return 0;
}

int convert_write(gguf_writer *w, const convert_tensor *t, size_t n, const char *path, int threads, const char *label,
                  bool progress, convert_stats *stats, al_err *err) {
    convert_stats local = {0};
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    convert_job j = {.t = t, .n = n, .label = label, .progress = progress && isatty(2), .stats = stats};
    int64_t max_row = 1;
    for (size_t i = 0; i < n; i++) {
        const convert_tensor *x = &t[i];
        const ggml_type_info *ti = ggml_type_get(x->type);
        if (!ti || !quant_can_quantize(x->type))
            return al_err_set(err, "tensor '%s': cannot write type %s", x->name, ggml_type_name(x->type));
        if (x->ne[0] % ti->block_size != 0)
            return al_err_set(err, "tensor '%s': row of %lld elements is not a whole number of %s blocks (%u)", x->name,
                              (long long)x->ne[0], ti->name, ti->block_size);
        if (x->src && !quant_can_dequantize(x->src_type))
            return al_err_set(err, "tensor '%s': cannot read type %s", x->name, ggml_type_name(x->src_type));
        if (!x->src && !x->gen) return al_err_set(err, "tensor '%s': no source", x->name);
        if (x->perm_heads > 0 && (x->ne[1] % x->perm_heads != 0 || (x->ne[1] / x->perm_heads) % 2 != 0))
            return al_err_set(err, "tensor '%s': %lld rows do not split into %d heads of even size", x->name, (long long)x->ne[1],
                              x->perm_heads);
        if (gguf_writer_add_tensor(w, x->name, x->type, x->n_dims, x->ne, NULL, err)) return -1;
        if (x->ne[0] > max_row) max_row = x->ne[0];
        uint64_t rows = 1;
        for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++) rows *= (uint64_t)x->ne[d];
        j.total += ggml_row_size(x->type, x->ne[0]) * rows;
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    j.pool = threadpool_init(threads);
    j.scratch = calloc((size_t)threads, sizeof *j.scratch);
    int rc = (!j.pool || !j.scratch) ? al_err_set(err, "out of memory") : 0;
    for (int i = 0; !rc && i < threads; i++)
        if (!(j.scratch[i] = malloc((size_t)max_row * sizeof(float)))) rc = al_err_set(err, "out of memory");
    clock_gettime(CLOCK_MONOTONIC, &j.t0);
    if (!rc) rc = gguf_writer_write(w, path, fill, &j, err);
    stats->seconds = now_since(&j.t0);
    for (int i = 0; j.scratch && i < threads; i++) free(j.scratch[i]);
    free(j.scratch);
    threadpool_free(j.pool);
    return rc;
}
