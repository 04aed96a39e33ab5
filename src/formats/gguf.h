/* gguf.h - reading and writing GGUF model files (versions 2 and 3).
 *
 * A file is: magic "GGUF", version, tensor count, metadata count, the metadata
 * key/value pairs, the tensor infos (name, shape, type, offset), padding to
 * `general.alignment` (default 32), then the tensor data. The reader maps the
 * file and validates every count, length and offset before trusting it; tensor
 * data and string values point into the mapping (no copies). */
#ifndef AIRLOCK_FORMATS_GGUF_H
#define AIRLOCK_FORMATS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/ggml_types.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_ARRAY_DEPTH 8

enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

/* A string as stored: not NUL-terminated, may hold any bytes. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_value gguf_value;

typedef struct gguf_array {
    enum gguf_type type; /* element type */
    uint64_t n;          /* element count */
    const void *data;    /* scalar elements: n little-endian values, possibly unaligned */
    gguf_str *strs;      /* GGUF_TYPE_STRING elements: [n] */
    gguf_value *arrs;    /* GGUF_TYPE_ARRAY elements: [n], each of type ARRAY */
} gguf_array;

struct gguf_value {
    enum gguf_type type;
    union {
        uint64_t u64;  /* UINT8/16/32/64 */
        int64_t i64;   /* INT8/16/32/64 */
        double f64;    /* FLOAT32/64 */
        bool b;        /* BOOL */
        gguf_str str;  /* STRING */
        gguf_array arr;/* ARRAY */
    };
};

typedef struct gguf_kv {
    char *key;          /* NUL-terminated copy */
    gguf_value value;
    uint64_t offset;    /* file offset of the key */
} gguf_kv;

typedef struct gguf_tensor {
    char *name;          /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint32_t type;       /* enum ggml_type */
    uint64_t offset;     /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data;    /* into the mapping */
} gguf_tensor;

typedef struct gguf_ctx {
    char *path;
    mapped_file map;     /* unused when parsed from a caller's buffer */
    const uint8_t *base; /* the file's bytes */
    size_t size;
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset; /* file offset of the tensor data section */
} gguf_ctx;

/* Maps and validates the file at path. Returns a context (free with
 * gguf_close), or NULL with err naming the file, the field and its offset. */
gguf_ctx *gguf_open(const char *path, al_err *err);

/* Validates a GGUF image held in memory (not copied: buf must outlive the
 * context). `name` is used in error messages. Returns NULL on error. */
gguf_ctx *gguf_parse(const void *buf, size_t size, const char *name, al_err *err);

void gguf_close(gguf_ctx *ctx);

/* Index of key, or -1. */
int64_t gguf_find_key(const gguf_ctx *ctx, const char *key);
/* The value of key, or NULL. */
const gguf_value *gguf_get(const gguf_ctx *ctx, const char *key);
/* Tensor by name, or NULL. */
const gguf_tensor *gguf_find_tensor(const gguf_ctx *ctx, const char *name);

/* Typed getters: return 0 and store the value, or -1 if the key is missing or
 * its value cannot be represented in the requested type (err says which). */
int gguf_get_u64(const gguf_ctx *ctx, const char *key, uint64_t *out, al_err *err);
int gguf_get_u32(const gguf_ctx *ctx, const char *key, uint32_t *out, al_err *err);
int gguf_get_f32(const gguf_ctx *ctx, const char *key, float *out, al_err *err);
int gguf_get_bool(const gguf_ctx *ctx, const char *key, bool *out, al_err *err);
/* String getter: returns a pointer into the file (not NUL-terminated). */
int gguf_get_str(const gguf_ctx *ctx, const char *key, gguf_str *out, al_err *err);
/* Array getter; elem_type GGUF_TYPE_COUNT accepts any element type. */
int gguf_get_arr(const gguf_ctx *ctx, const char *key, enum gguf_type elem_type, const gguf_array **out, al_err *err);

/* Element i of a scalar array as double / int64 (any numeric element type). */
double gguf_arr_f64(const gguf_array *a, uint64_t i);
int64_t gguf_arr_i64(const gguf_array *a, uint64_t i);

/* Name of a metadata type ("uint32", "string", ...). */
const char *gguf_type_name(enum gguf_type t);
/* Size in bytes of a scalar metadata type; 0 for STRING and ARRAY. */
size_t gguf_type_size(enum gguf_type t);

/* ---- writer ------------------------------------------------------------ */

typedef struct gguf_writer gguf_writer;

/* Supplies tensor data while writing: fill `size` bytes of buf for tensor
 * `index`. Returns 0 or -1 with err set. */
typedef int (*gguf_tensor_fill_fn)(void *user, uint64_t index, void *buf, size_t size, al_err *err);

gguf_writer *gguf_writer_init(uint32_t version);
void gguf_writer_free(gguf_writer *w);

/* Metadata; values are serialised at once (the caller's memory is not kept).
 * Each returns 0, or -1 if the key already exists or memory ran out. */
int gguf_writer_add_value(gguf_writer *w, const char *key, const gguf_value *v);
int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_add_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_add_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s);
int gguf_writer_add_str_n(gguf_writer *w, const char *key, const char *s, uint64_t len);
/* Array of n scalars of `type`, given as a packed little-endian buffer. */
int gguf_writer_add_arr(gguf_writer *w, const char *key, enum gguf_type type, const void *data, uint64_t n);
/* Array of n strings (NUL-terminated). */
int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n);

/* Adds a tensor. data (nbytes, which must match the shape and type) is
 * referenced, not copied, and must stay valid until gguf_writer_write; pass
 * NULL to have it supplied by the fill callback instead. Returns 0 or -1. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, al_err *err);

/* Writes the file: to path.tmp, then renamed over path, so an interrupted
 * write never leaves a truncated file under the final name. */
int gguf_writer_write(gguf_writer *w, const char *path, gguf_tensor_fill_fn fill, void *user, al_err *err);

/* Writes a whole context back out (metadata in order, tensors in order);
 * used by tests to show read/write round trips are byte-identical. */
int gguf_write_copy(const gguf_ctx *ctx, const char *path, al_err *err);

#endif
