/* safetensors.h - reading Hugging Face .safetensors files.
 *
 * A file is: an 8-byte little-endian header length N, N bytes of JSON
 * mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
 * (plus an optional "__metadata__" object of strings), then the data, with
 * offsets relative to the first byte after the header. The reader maps the
 * file and checks every field before trusting it: the header length against
 * the file, the JSON (duplicate keys rejected), each dtype, each shape against
 * its byte range, every range inside the file and no two ranges overlapping.
 * Tensor data points into the mapping. */
#ifndef AIRLOCK_FORMATS_SAFETENSORS_H
#define AIRLOCK_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/mapped_file.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20) /* the limit Hugging Face's reader applies */

typedef enum st_dtype {
    ST_DTYPE_BOOL, ST_DTYPE_U8, ST_DTYPE_I8, ST_DTYPE_I16, ST_DTYPE_U16, ST_DTYPE_F16, ST_DTYPE_BF16,
    ST_DTYPE_I32, ST_DTYPE_U32, ST_DTYPE_F32, ST_DTYPE_I64, ST_DTYPE_U64, ST_DTYPE_F64,
    ST_DTYPE_F8_E4M3, ST_DTYPE_F8_E5M2, ST_DTYPE_COUNT
} st_dtype;

typedef struct st_tensor {
    char *name;             /* NUL-terminated copy */
    st_dtype dtype;
    int n_dims;             /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS]; /* outermost first (row-major, as PyTorch) */
    int64_t n_elems;
    uint64_t offset;        /* relative to the data section */
    uint64_t nbytes;
    const void *data;       /* into the mapping */
} st_tensor;

typedef struct st_file {
    char *path;
    mapped_file map;        /* unused when parsed from a caller's buffer */
    const uint8_t *base;
    size_t size;
    size_t n_tensors;
    st_tensor *tensors;     /* in header order */
} st_file;

/* Maps and validates path. Returns the file (free with st_close) or NULL
 * with err naming the file, the tensor and what is wrong. */
st_file *st_open(const char *path, al_err *err);
/* Validates an image held in memory (not copied). `name` is used in errors. */
st_file *st_parse(const void *buf, size_t size, const char *name, al_err *err);
void st_close(st_file *f);

/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);

/* "F32", "BF16", ... */
const char *st_dtype_name(st_dtype t);
/* Bytes per element. */
size_t st_dtype_size(st_dtype t);

/* The GGML type with the same element layout (F32, F16, BF16), so the
 * tensor can be read with dequantize_row; -1 for the other dtypes. */
int st_dtype_ggml(st_dtype t);

#endif
