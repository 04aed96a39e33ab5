/* convert.h - write a GGUF file's tensors from other tensors, row by row.
 *
 * The shared back end of `airlock quantize`, `airlock import` and `airlock
 * synth`: each output tensor names where its rows come from (rows of another
 * tensor in any readable type, optionally reordered, or a generator) and the
 * type they become. Tensors are produced one at a time while the file is
 * written, their rows spread over threads, so memory stays at about one
 * tensor whatever the model's size; the file appears under its name only
 * when complete (gguf_writer_write's temporary file and rename). */
#ifndef AIRLOCK_MODELS_CONVERT_H
#define AIRLOCK_MODELS_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "formats/gguf.h"

typedef struct convert_tensor convert_tensor;

/* Writes row `row` (t->ne[0] floats) of a generated tensor into out. */
typedef void (*convert_gen_fn)(void *user, const convert_tensor *t, int64_t row, float *out);

struct convert_tensor {
    char name[96];
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];   /* ne[0]: row length; unused dims 1 */
    uint32_t type;               /* output ggml type */
    /* source: rows of src_type at src ... */
    uint32_t src_type;
    const void *src;
    /* > 0: the rows are a projection of `perm_heads` heads whose rotary pairs
     * are stored as halves (Hugging Face's rotate_half layout); they are
     * reordered into interleaved pairs, the layout GGUF's llama expects. */
    int perm_heads;
    /* src lies in a read-only file mapping: its pages are released once the
     * tensor is written, so resident memory stays near one tensor */
    bool src_mapped;
    /* ... or a generator (when src is NULL) */
    convert_gen_fn gen;
    void *gen_user;
};

typedef struct convert_stats {
    uint64_t bytes_in;   /* source bytes read (0 for generated tensors) */
    uint64_t bytes_out;  /* tensor bytes written */
    uint64_t n_elems;    /* elements written */
    double seconds;
} convert_stats;

/* Source row of output row r for a tensor with perm_heads heads over n rows. */
int64_t convert_src_row(int perm_heads, int64_t n_rows, int64_t r);

/* Adds the tensors (in order) to w and writes the file to path, converting
 * each with `threads` threads (0: all cores). `label` prefixes a progress
 * bar on stderr when progress is set and stderr is a terminal. Returns 0 or
 * -1 with err naming the tensor; on error no file is left at path. */
int convert_write(gguf_writer *w, const convert_tensor *t, size_t n, const char *path, int threads, const char *label,
                  bool progress, convert_stats *stats, al_err *err);

#endif
