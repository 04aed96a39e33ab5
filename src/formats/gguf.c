/* gguf.c - GGUF reader (validating, zero-copy) and writer.
 *
 * The reader never trusts a count or length: each is checked against the
 * bytes left in the file before anything is allocated or read, so a hostile
 * file gets an error that names the file, the field and its offset. */
#include "formats/gguf.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE floats required");

static const char *const k_type_names[GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};
static const size_t k_type_sizes[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *gguf_type_name(enum gguf_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? k_type_names[t] : "?";
}

size_t gguf_type_size(enum gguf_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? k_type_sizes[t] : 0;
}

/* ---- reader ------------------------------------------------------------ */

/* A bounds-checked cursor over the file image. `field` names what is being
 * read, for error messages. */
typedef struct reader {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *name;
    al_err *err;
    char field[160];
} reader;

static void rd_field(reader *r, const char *fmt, ...) AL_PRINTF(2, 3);
static void rd_field(reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->field, sizeof r->field, fmt, ap);
    va_end(ap);
}

static int rd_fail(reader *r, size_t at, const char *fmt, ...) AL_PRINTF(3, 4);
static int rd_fail(reader *r, size_t at, const char *fmt, ...) {
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return al_err_set(r->err, "%s: %s at offset %zu (0x%zx): %s", r->name, r->field, at, at, what);
}

static size_t rd_left(const reader *r) { return r->size - r->pos; }

static int rd_bytes(reader *r, void *dst, size_t n) {
    memset(dst, 0, n); /* defined contents even on failure */
    if (rd_left(r) < n)
        return rd_fail(r, r->pos, "file truncated: need %zu bytes, %zu left", n, rd_left(r));
    memcpy(dst, r->base + r->pos, n);
    r->pos += n;
    return 0;
}

static int rd_u32(reader *r, uint32_t *v) { return rd_bytes(r, v, 4); }
static int rd_u64(reader *r, uint64_t *v) { return rd_bytes(r, v, 8); }

/* Reads a length-prefixed string; the result points into the image. */
static int rd_str(reader *r, gguf_str *s) {
    s->ptr = NULL;
    s->len = 0;
    size_t at = r->pos;
    uint64_t len;
    if (rd_u64(r, &len)) return -1;
    if (len > rd_left(r))
        return rd_fail(r, at, "string length %llu exceeds the %zu bytes left in the file",
                       (unsigned long long)len, rd_left(r));
    s->ptr = (const char *)r->base + r->pos;
    s->len = len;
    r->pos += (size_t)len;
    return 0;
}

/* Copies a string into a NUL-terminated heap string; NUL bytes inside are
 * rejected since names and keys are used as C strings. */
static char *rd_cstr(reader *r, size_t at, const gguf_str *s) {
    if (memchr(s->ptr, 0, (size_t)s->len)) {
        rd_fail(r, at, "contains a NUL byte");
        return NULL;
    }
    char *c = malloc((size_t)s->len + 1);
    if (!c) {
        rd_fail(r, at, "out of memory");
        return NULL;
    }
    memcpy(c, s->ptr, (size_t)s->len);
    c[s->len] = '\0';
    return c;
}

static void value_free(gguf_value *v);

static void array_free(gguf_array *a) {
    if (a->type == GGUF_TYPE_ARRAY && a->arrs) {
        for (uint64_t i = 0; i < a->n; i++) value_free(&a->arrs[i]);
    }
    free(a->arrs);
    free(a->strs);
    a->arrs = NULL;
    a->strs = NULL;
}

static void value_free(gguf_value *v) {
    if (v->type == GGUF_TYPE_ARRAY) array_free(&v->arr);
}

/* Smallest encoding of one element of type t, used to bound counts. */
static size_t min_elem_size(enum gguf_type t) {
    if (t == GGUF_TYPE_STRING) return 8;
    if (t == GGUF_TYPE_ARRAY) return 12;
    return k_type_sizes[t];
}

static int rd_value(reader *r, enum gguf_type type, gguf_value *v, int depth);

static int rd_array(reader *r, gguf_array *a, int depth) {
    size_t at = r->pos;
    uint32_t et;
    uint64_t n;
    memset(a, 0, sizeof *a);
    if (rd_u32(r, &et)) return -1;
    if (et >= GGUF_TYPE_COUNT) return rd_fail(r, at, "unknown array element type id %u", et);
    a->type = (enum gguf_type)et;
    if (a->type == GGUF_TYPE_ARRAY && depth + 1 >= GGUF_MAX_ARRAY_DEPTH)
        return rd_fail(r, at, "arrays nested deeper than %d levels", GGUF_MAX_ARRAY_DEPTH);
    size_t at_n = r->pos;
    if (rd_u64(r, &n)) return -1;
    if (n > rd_left(r) / min_elem_size(a->type))
        return rd_fail(r, at_n, "array count %llu of %s cannot fit in the %zu bytes left in the file",
                       (unsigned long long)n, k_type_names[a->type], rd_left(r));
    a->n = n;
    if (a->type == GGUF_TYPE_STRING) {
        a->strs = calloc(n ? (size_t)n : 1, sizeof *a->strs);
        if (!a->strs) return rd_fail(r, at, "out of memory for %llu strings", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if (rd_str(r, &a->strs[i])) return -1;
    } else if (a->type == GGUF_TYPE_ARRAY) {
        a->arrs = calloc(n ? (size_t)n : 1, sizeof *a->arrs);
        if (!a->arrs) return rd_fail(r, at, "out of memory for %llu arrays", (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++) {
            a->arrs[i].type = GGUF_TYPE_ARRAY;
            if (rd_array(r, &a->arrs[i].arr, depth + 1)) {
                a->n = i + 1; /* free what was read */
                return -1;
            }
        }
    } else {
        size_t bytes = (size_t)n * k_type_sizes[a->type];
        a->data = r->base + r->pos;
        if (a->type == GGUF_TYPE_BOOL) {
            for (size_t i = 0; i < bytes; i++)
                if (r->base[r->pos + i] > 1)
                    return rd_fail(r, r->pos + i, "bool array element %zu has value %u (must be 0 or 1)", i,
                                   r->base[r->pos + i]);
        }
        r->pos += bytes;
    }
    return 0;
}

static int rd_value(reader *r, enum gguf_type type, gguf_value *v, int depth) {
    uint8_t b[8];
    v->type = type;
    switch (type) {
    case GGUF_TYPE_UINT8: if (rd_bytes(r, b, 1)) return -1; v->u64 = b[0]; break;
    case GGUF_TYPE_INT8: if (rd_bytes(r, b, 1)) return -1; v->i64 = (int8_t)b[0]; break;
    case GGUF_TYPE_UINT16: { uint16_t x; if (rd_bytes(r, &x, 2)) return -1; v->u64 = x; break; }
    case GGUF_TYPE_INT16: { int16_t x; if (rd_bytes(r, &x, 2)) return -1; v->i64 = x; break; }
    case GGUF_TYPE_UINT32: { uint32_t x; if (rd_bytes(r, &x, 4)) return -1; v->u64 = x; break; }
    case GGUF_TYPE_INT32: { int32_t x; if (rd_bytes(r, &x, 4)) return -1; v->i64 = x; break; }
    case GGUF_TYPE_FLOAT32: { float x; if (rd_bytes(r, &x, 4)) return -1; v->f64 = x; break; }
    case GGUF_TYPE_BOOL:
        if (rd_bytes(r, b, 1)) return -1;
        if (b[0] > 1) return rd_fail(r, r->pos - 1, "bool has value %u (must be 0 or 1)", b[0]);
        v->b = b[0];
        break;
    case GGUF_TYPE_STRING: if (rd_str(r, &v->str)) return -1; break;
    case GGUF_TYPE_ARRAY: if (rd_array(r, &v->arr, depth)) return -1; break;
    case GGUF_TYPE_UINT64: if (rd_u64(r, &v->u64)) return -1; break;
    case GGUF_TYPE_INT64: { int64_t x; if (rd_bytes(r, &x, 8)) return -1; v->i64 = x; break; }
    case GGUF_TYPE_FLOAT64: if (rd_bytes(r, &v->f64, 8)) return -1; break;
    default: return rd_fail(r, r->pos, "unknown value type id %u", (unsigned)type);
    }
    return 0;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails if any of the n names repeats. */
static int check_unique(reader *r, char **names, uint64_t n, const char *what) {
    if (n < 2) return 0;
    char **s = malloc((size_t)n * sizeof *s);
    if (!s) return rd_fail(r, r->pos, "out of memory");
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_str);
    for (uint64_t i = 1; i < n; i++) {
        if (strcmp(s[i - 1], s[i]) == 0) {
            al_err_set(r->err, "%s: duplicate %s '%s'", r->name, what, s[i]);
            free(s);
            return -1;
        }
    }
    free(s);
    return 0;
}

static int parse(gguf_ctx *ctx, al_err *err) {
    reader rr = {.base = ctx->base, .size = ctx->size, .name = ctx->path, .err = err};
    reader *r = &rr;
    char magic[4];
    uint64_t n_tensors, n_kv;

    rd_field(r, "magic");
    if (rd_bytes(r, magic, 4)) return -1;
    if (memcmp(magic, GGUF_MAGIC, 4) != 0)
        return rd_fail(r, 0, "not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")",
                       (uint8_t)magic[0], (uint8_t)magic[1], (uint8_t)magic[2], (uint8_t)magic[3]);
    rd_field(r, "version");
    if (rd_u32(r, &ctx->version)) return -1;
    if (ctx->version != 2 && ctx->version != 3)
        return rd_fail(r, 4, "unsupported GGUF version %u (2 and 3 are supported)", ctx->version);
    rd_field(r, "tensor_count");
    if (rd_u64(r, &n_tensors)) return -1;
    rd_field(r, "metadata_kv_count");
    if (rd_u64(r, &n_kv)) return -1;
    /* Each kv takes at least 13 bytes, each tensor info at least 24. */
    if (n_kv > rd_left(r) / 13)
        return rd_field(r, "metadata_kv_count"), rd_fail(r, 16, "%llu metadata entries cannot fit in the %zu bytes left in the file",
                       (unsigned long long)n_kv, rd_left(r));
    if (n_tensors > rd_left(r) / 24)
        return rd_field(r, "tensor_count"), rd_fail(r, 8, "%llu tensors cannot fit in the %zu bytes left in the file",
                       (unsigned long long)n_tensors, rd_left(r));

    ctx->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *ctx->kv);
    if (!ctx->kv) return rd_fail(r, 16, "out of memory");
    ctx->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &ctx->kv[i];
        gguf_str key;
        uint32_t type;
        kv->offset = r->pos;
        rd_field(r, "metadata[%llu].key", (unsigned long long)i);
        if (rd_str(r, &key)) return -1;
        if (!(kv->key = rd_cstr(r, (size_t)kv->offset, &key))) return -1;
        ctx->n_kv = i + 1;
        rd_field(r, "metadata[%llu] ('%.64s').type", (unsigned long long)i, kv->key);
        size_t at = r->pos;
        if (rd_u32(r, &type)) return -1;
        if (type >= GGUF_TYPE_COUNT) return rd_fail(r, at, "unknown value type id %u", type);
        rd_field(r, "metadata[%llu] ('%.64s').value", (unsigned long long)i, kv->key);
        at = r->pos;
        if (rd_value(r, (enum gguf_type)type, &kv->value, 0)) return -1;
        if (strcmp(kv->key, "general.alignment") == 0) {
            if (kv->value.type != GGUF_TYPE_UINT32)
                return rd_fail(r, at, "general.alignment must be uint32, not %s", gguf_type_name(kv->value.type));
            uint64_t a = kv->value.u64;
            if (a == 0 || (a & (a - 1)) != 0)
                return rd_fail(r, at, "alignment %llu is not a power of two", (unsigned long long)a);
            ctx->alignment = (uint32_t)a;
        }
    }
    {
        char **keys = malloc((n_kv ? (size_t)n_kv : 1) * sizeof *keys);
        if (!keys) return rd_fail(r, r->pos, "out of memory");
        for (uint64_t i = 0; i < n_kv; i++) keys[i] = ctx->kv[i].key;
        int rc = check_unique(r, keys, n_kv, "metadata key");
        free(keys);
        if (rc) return -1;
    }

    ctx->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *ctx->tensors);
    if (!ctx->tensors) return rd_fail(r, 8, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor *t = &ctx->tensors[i];
        gguf_str name;
        size_t at = r->pos;
        rd_field(r, "tensor[%llu].name", (unsigned long long)i);
        if (rd_str(r, &name)) return -1;
        if (!(t->name = rd_cstr(r, at, &name))) return -1;
        ctx->n_tensors = i + 1;
        rd_field(r, "tensor[%llu] ('%.64s').n_dims", (unsigned long long)i, t->name);
        at = r->pos;
        if (rd_u32(r, &t->n_dims)) return -1;
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
            return rd_fail(r, at, "n_dims %u out of range 1..%d", t->n_dims, GGUF_MAX_DIMS);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            rd_field(r, "tensor[%llu] ('%.64s').ne[%u]", (unsigned long long)i, t->name, d);
            at = r->pos;
            if (rd_u64(r, &ne)) return -1;
            if (ne > (uint64_t)INT64_MAX) return rd_fail(r, at, "dimension %llu is negative or too large", (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        rd_field(r, "tensor[%llu] ('%.64s').type", (unsigned long long)i, t->name);
        at = r->pos;
        if (rd_u32(r, &t->type)) return -1;
        const ggml_type_info *ti = ggml_type_get(t->type);
        if (!ti) return rd_fail(r, at, "unknown tensor type id %u", t->type);
        /* element count and byte size, with overflow checks */
        uint64_t nel = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            if (__builtin_mul_overflow(nel, (uint64_t)t->ne[d], &nel) || nel > (uint64_t)INT64_MAX)
                return rd_fail(r, at, "element count of shape overflows 64 bits");
        }
        if (t->ne[0] % ti->block_size != 0)
            return rd_fail(r, at, "row length %lld is not a multiple of the %s block size %u",
                           (long long)t->ne[0], ti->name, ti->block_size);
        uint64_t nbytes;
        if (__builtin_mul_overflow(nel / ti->block_size, (uint64_t)ti->type_size, &nbytes))
            return rd_fail(r, at, "byte size of tensor overflows 64 bits");
        t->nbytes = nbytes;
        rd_field(r, "tensor[%llu] ('%.64s').offset", (unsigned long long)i, t->name);
        at = r->pos;
        if (rd_u64(r, &t->offset)) return -1;
        if (t->offset % ctx->alignment != 0)
            return rd_fail(r, at, "data offset %llu is not a multiple of the alignment %u",
                           (unsigned long long)t->offset, ctx->alignment);
    }
    {
        char **names = malloc((n_tensors ? (size_t)n_tensors : 1) * sizeof *names);
        if (!names) return rd_fail(r, r->pos, "out of memory");
        for (uint64_t i = 0; i < n_tensors; i++) names[i] = ctx->tensors[i].name;
        int rc = check_unique(r, names, n_tensors, "tensor name");
        free(names);
        if (rc) return -1;
    }

    /* data section */
    uint64_t data_off = ((uint64_t)r->pos + ctx->alignment - 1) / ctx->alignment * ctx->alignment;
    ctx->data_offset = data_off;
    if (n_tensors == 0) return 0;
    rd_field(r, "tensor data");
    if (data_off > ctx->size)
        return rd_fail(r, r->pos, "tensor data section starts at %llu, past the end of the %zu-byte file",
                       (unsigned long long)data_off, ctx->size);
    uint64_t data_size = ctx->size - data_off;
    gguf_tensor **order = malloc((size_t)n_tensors * sizeof *order);
    if (!order) return rd_fail(r, r->pos, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++) order[i] = &ctx->tensors[i];
    qsort(order, (size_t)n_tensors, sizeof *order, cmp_tensor_offset);
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor *t = order[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            al_err_set(err, "%s: tensor '%s' data [%llu, +%llu) at file offset %llu runs past the end of the file (%zu bytes)",
                       ctx->path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                       (unsigned long long)(data_off + t->offset), ctx->size);
            free(order);
            return -1;
        }
        if (i > 0 && order[i - 1]->offset + order[i - 1]->nbytes > t->offset) {
            al_err_set(err, "%s: tensor '%s' data at offset %llu overlaps tensor '%s' [%llu, +%llu)",
                       ctx->path, t->name, (unsigned long long)t->offset, order[i - 1]->name,
                       (unsigned long long)order[i - 1]->offset, (unsigned long long)order[i - 1]->nbytes);
            free(order);
            return -1;
        }
        t->data = ctx->base + data_off + t->offset;
    }
    free(order);
    return 0;
}

static gguf_ctx *ctx_new(const char *name) {
    gguf_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->path = strdup(name ? name : "<buffer>");
    if (!ctx->path) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

gguf_ctx *gguf_parse(const void *buf, size_t size, const char *name, al_err *err) {
    gguf_ctx *ctx = ctx_new(name);
    if (!ctx) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    ctx->base = buf;
    ctx->size = size;
    if (parse(ctx, err)) {
        gguf_close(ctx);
        return NULL;
    }
    return ctx;
}

gguf_ctx *gguf_open(const char *path, al_err *err) {
    gguf_ctx *ctx = ctx_new(path);
    if (!ctx) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    if (mapped_file_open(&ctx->map, path, err)) {
        gguf_close(ctx);
        return NULL;
    }
    ctx->base = ctx->map.data;
    ctx->size = ctx->map.size;
    if (parse(ctx, err)) {
        gguf_close(ctx);
        return NULL;
    }
    return ctx;
}

void gguf_close(gguf_ctx *ctx) {
    if (!ctx) return;
    for (uint64_t i = 0; i < ctx->n_kv; i++) {
        free(ctx->kv[i].key);
        value_free(&ctx->kv[i].value);
    }
    free(ctx->kv);
    for (uint64_t i = 0; i < ctx->n_tensors; i++) free(ctx->tensors[i].name);
    free(ctx->tensors);
    mapped_file_close(&ctx->map);
    free(ctx->path);
    free(ctx);
}

/* ---- lookups ------------------------------------------------------------ */

int64_t gguf_find_key(const gguf_ctx *ctx, const char *key) {
    for (uint64_t i = 0; i < ctx->n_kv; i++)
        if (strcmp(ctx->kv[i].key, key) == 0) return (int64_t)i;
    return -1;
}

const gguf_value *gguf_get(const gguf_ctx *ctx, const char *key) {
    int64_t i = gguf_find_key(ctx, key);
    return i < 0 ? NULL : &ctx->kv[i].value;
}

const gguf_tensor *gguf_find_tensor(const gguf_ctx *ctx, const char *name) {
    for (uint64_t i = 0; i < ctx->n_tensors; i++)
        if (strcmp(ctx->tensors[i].name, name) == 0) return &ctx->tensors[i];
    return NULL;
}

static const gguf_value *get_checked(const gguf_ctx *ctx, const char *key, al_err *err) {
    const gguf_value *v = gguf_get(ctx, key);
    if (!v) al_err_set(err, "%s: metadata key '%s' is missing", ctx->path, key);
    return v;
}

static int bad_type(const gguf_ctx *ctx, const char *key, const gguf_value *v, const char *want, al_err *err) {
    return al_err_set(err, "%s: metadata '%s' has type %s, expected %s", ctx->path, key, gguf_type_name(v->type), want);
}

static bool is_unsigned(enum gguf_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_UINT64;
}
static bool is_signed(enum gguf_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

int gguf_get_u64(const gguf_ctx *ctx, const char *key, uint64_t *out, al_err *err) {
    const gguf_value *v = get_checked(ctx, key, err);
    if (!v) return -1;
    if (is_unsigned(v->type)) {
        *out = v->u64;
        return 0;
    }
    if (is_signed(v->type)) {
        if (v->i64 < 0) return al_err_set(err, "%s: metadata '%s' is negative (%lld)", ctx->path, key, (long long)v->i64);
        *out = (uint64_t)v->i64;
        return 0;
    }
    return bad_type(ctx, key, v, "an integer", err);
}

int gguf_get_u32(const gguf_ctx *ctx, const char *key, uint32_t *out, al_err *err) {
    uint64_t x;
    if (gguf_get_u64(ctx, key, &x, err)) return -1;
    if (x > UINT32_MAX) return al_err_set(err, "%s: metadata '%s' = %llu is out of range", ctx->path, key, (unsigned long long)x);
    *out = (uint32_t)x;
    return 0;
}

int gguf_get_f32(const gguf_ctx *ctx, const char *key, float *out, al_err *err) {
    const gguf_value *v = get_checked(ctx, key, err);
    if (!v) return -1;
    if (v->type == GGUF_TYPE_FLOAT32 || v->type == GGUF_TYPE_FLOAT64) *out = (float)v->f64;
    else if (is_unsigned(v->type)) *out = (float)v->u64;
    else if (is_signed(v->type)) *out = (float)v->i64;
    else return bad_type(ctx, key, v, "a number", err);
    return 0;
}

int gguf_get_bool(const gguf_ctx *ctx, const char *key, bool *out, al_err *err) {
    const gguf_value *v = get_checked(ctx, key, err);
    if (!v) return -1;
    if (v->type != GGUF_TYPE_BOOL) return bad_type(ctx, key, v, "bool", err);
    *out = v->b;
    return 0;
}

int gguf_get_str(const gguf_ctx *ctx, const char *key, gguf_str *out, al_err *err) {
    const gguf_value *v = get_checked(ctx, key, err);
    if (!v) return -1;
    if (v->type != GGUF_TYPE_STRING) return bad_type(ctx, key, v, "string", err);
    *out = v->str;
    return 0;
}

int gguf_get_arr(const gguf_ctx *ctx, const char *key, enum gguf_type elem_type, const gguf_array **out, al_err *err) {
    const gguf_value *v = get_checked(ctx, key, err);
    if (!v) return -1;
    if (v->type != GGUF_TYPE_ARRAY) return bad_type(ctx, key, v, "array", err);
    if (elem_type != GGUF_TYPE_COUNT && v->arr.type != elem_type)
        return al_err_set(err, "%s: metadata '%s' is an array of %s, expected %s", ctx->path, key,
                          gguf_type_name(v->arr.type), gguf_type_name(elem_type));
    *out = &v->arr;
    return 0;
}

double gguf_arr_f64(const gguf_array *a, uint64_t i) {
    assert(i < a->n);
    const uint8_t *p = (const uint8_t *)a->data + i * k_type_sizes[a->type];
    switch (a->type) {
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); return x; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    default: return (double)gguf_arr_i64(a, i);
    }
}

int64_t gguf_arr_i64(const gguf_array *a, uint64_t i) {
    assert(i < a->n);
    const uint8_t *p = (const uint8_t *)a->data + i * k_type_sizes[a->type];
    switch (a->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: return p[0];
    case GGUF_TYPE_INT8: return (int8_t)p[0];
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, 8); return (int64_t)x; }
    case GGUF_TYPE_INT64: { int64_t x; memcpy(&x, p, 8); return x; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); return (int64_t)x; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); return (int64_t)x; }
    default: return 0;
    }
}

/* ---- writer ------------------------------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const void *src, size_t n) {
    if (n == 0) return;
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void buf_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void buf_u64(buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void buf_str(buf *b, const char *s, uint64_t len) {
    buf_u64(b, len);
    buf_put(b, s, (size_t)len);
}

typedef struct wtensor {
    char *name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes;
    uint64_t offset;
    const void *data;
} wtensor;

struct gguf_writer {
    uint32_t version;
    uint32_t alignment;
    buf kv;        /* serialised key/value pairs */
    uint64_t n_kv;
    char **keys;
    wtensor *tensors;
    uint64_t n_tensors, cap_tensors;
    uint64_t data_size;
};

gguf_writer *gguf_writer_init(uint32_t version) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->version = version ? version : 3;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    free(w->kv.p);
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w);
}

static void put_value(buf *b, const gguf_value *v);

static void put_array(buf *b, const gguf_array *a) {
    buf_u32(b, (uint32_t)a->type);
    buf_u64(b, a->n);
    if (a->type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < a->n; i++) buf_str(b, a->strs[i].ptr, a->strs[i].len);
    } else if (a->type == GGUF_TYPE_ARRAY) {
        for (uint64_t i = 0; i < a->n; i++) put_array(b, &a->arrs[i].arr);
    } else {
        buf_put(b, a->data, (size_t)a->n * k_type_sizes[a->type]);
    }
}

static void put_value(buf *b, const gguf_value *v) {
    uint8_t u8;
    switch (v->type) {
    case GGUF_TYPE_UINT8: u8 = (uint8_t)v->u64; buf_put(b, &u8, 1); break;
    case GGUF_TYPE_INT8: u8 = (uint8_t)(int8_t)v->i64; buf_put(b, &u8, 1); break;
    case GGUF_TYPE_UINT16: { uint16_t x = (uint16_t)v->u64; buf_put(b, &x, 2); break; }
    case GGUF_TYPE_INT16: { int16_t x = (int16_t)v->i64; buf_put(b, &x, 2); break; }
    case GGUF_TYPE_UINT32: buf_u32(b, (uint32_t)v->u64); break;
    case GGUF_TYPE_INT32: { int32_t x = (int32_t)v->i64; buf_put(b, &x, 4); break; }
    case GGUF_TYPE_FLOAT32: { float x = (float)v->f64; buf_put(b, &x, 4); break; }
    case GGUF_TYPE_BOOL: u8 = v->b ? 1 : 0; buf_put(b, &u8, 1); break;
    case GGUF_TYPE_STRING: buf_str(b, v->str.ptr, v->str.len); break;
    case GGUF_TYPE_ARRAY: put_array(b, &v->arr); break;
    case GGUF_TYPE_UINT64: buf_u64(b, v->u64); break;
    case GGUF_TYPE_INT64: buf_put(b, &v->i64, 8); break;
    case GGUF_TYPE_FLOAT64: buf_put(b, &v->f64, 8); break;
    default: assert(!"bad gguf value type"); break;
    }
}

int gguf_writer_add_value(gguf_writer *w, const char *key, const gguf_value *v) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return -1;
    char **nk = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *nk);
    if (!nk) return -1;
    w->keys = nk;
    if (!(w->keys[w->n_kv] = strdup(key))) return -1;
    w->n_kv++;
    buf_str(&w->kv, key, strlen(key));
    buf_u32(&w->kv, (uint32_t)v->type);
    put_value(&w->kv, v);
    if (strcmp(key, "general.alignment") == 0 && v->type == GGUF_TYPE_UINT32 && v->u64 &&
        (v->u64 & (v->u64 - 1)) == 0)
        w->alignment = (uint32_t)v->u64;
    return w->kv.oom ? -1 : 0;
}

int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t x) {
    gguf_value v = {.type = GGUF_TYPE_UINT32, .u64 = x};
    return gguf_writer_add_value(w, key, &v);
}
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t x) {
    gguf_value v = {.type = GGUF_TYPE_INT32, .i64 = x};
    return gguf_writer_add_value(w, key, &v);
}
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t x) {
    gguf_value v = {.type = GGUF_TYPE_UINT64, .u64 = x};
    return gguf_writer_add_value(w, key, &v);
}
int gguf_writer_add_f32(gguf_writer *w, const char *key, float x) {
    gguf_value v = {.type = GGUF_TYPE_FLOAT32, .f64 = x};
    return gguf_writer_add_value(w, key, &v);
}
int gguf_writer_add_bool(gguf_writer *w, const char *key, bool x) {
    gguf_value v = {.type = GGUF_TYPE_BOOL, .b = x};
    return gguf_writer_add_value(w, key, &v);
}
int gguf_writer_add_str_n(gguf_writer *w, const char *key, const char *s, uint64_t len) {
    gguf_value v = {.type = GGUF_TYPE_STRING, .str = {s, len}};
    return gguf_writer_add_value(w, key, &v);
}
int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s) {
    return gguf_writer_add_str_n(w, key, s, strlen(s));
}
int gguf_writer_add_arr(gguf_writer *w, const char *key, enum gguf_type type, const void *data, uint64_t n) {
    assert(type != GGUF_TYPE_STRING && type != GGUF_TYPE_ARRAY);
    gguf_value v = {.type = GGUF_TYPE_ARRAY, .arr = {.type = type, .n = n, .data = data}};
    return gguf_writer_add_value(w, key, &v);
}
int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    gguf_str *s = malloc((n ? (size_t)n : 1) * sizeof *s);
    if (!s) return -1;
    for (uint64_t i = 0; i < n; i++) s[i] = (gguf_str){strs[i], strlen(strs[i])};
    gguf_value v = {.type = GGUF_TYPE_ARRAY, .arr = {.type = GGUF_TYPE_STRING, .n = n, .strs = s}};
    int rc = gguf_writer_add_value(w, key, &v);
    free(s);
    return rc;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, al_err *err) {
    const ggml_type_info *ti = ggml_type_get(type);
    if (!ti) return al_err_set(err, "tensor '%s': unknown type id %u", name, type);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS) return al_err_set(err, "tensor '%s': bad n_dims %u", name, n_dims);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return al_err_set(err, "duplicate tensor name '%s'", name);
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *nt = realloc(w->tensors, (size_t)cap * sizeof *nt);
        if (!nt) return al_err_set(err, "out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    uint64_t nel = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (t->ne[d] < 0 || __builtin_mul_overflow(nel, (uint64_t)t->ne[d], &nel))
            return al_err_set(err, "tensor '%s': bad shape", name);
    }
    if (t->ne[0] % ti->block_size) return al_err_set(err, "tensor '%s': row %lld not a multiple of block %u", name, (long long)t->ne[0], ti->block_size);
    if (!(t->name = strdup(name))) return al_err_set(err, "out of memory");
    t->n_dims = n_dims;
    t->type = type;
    t->nbytes = nel / ti->block_size * ti->type_size;
    t->data = data;
    w->data_size = (w->data_size + w->alignment - 1) / w->alignment * w->alignment;
    t->offset = w->data_size;
    w->data_size += t->nbytes;
    w->n_tensors++;
    return 0;
}

static int write_all(FILE *f, const void *p, size_t n, const char *path, al_err *err) {
    if (n && fwrite(p, 1, n, f) != n) return al_err_set(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

static int write_zeros(FILE *f, size_t n, const char *path, al_err *err) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (write_all(f, zeros, k, path, err)) return -1;
        n -= k;
    }
    return 0;
}

int gguf_writer_write(gguf_writer *w, const char *path, gguf_tensor_fill_fn fill, void *user, al_err *err) {
    if (w->kv.oom) return al_err_set(err, "%s: out of memory building metadata", path);
    /* Offsets were assigned with the alignment in force when each tensor was
     * added; recompute with the final alignment. */
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        off = (off + w->alignment - 1) / w->alignment * w->alignment;
        w->tensors[i].offset = off;
        off += w->tensors[i].nbytes;
    }
    buf hdr = {0};
    buf_put(&hdr, GGUF_MAGIC, 4);
    buf_u32(&hdr, w->version);
    buf_u64(&hdr, w->n_tensors);
    buf_u64(&hdr, w->n_kv);
    buf_put(&hdr, w->kv.p, w->kv.n);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        buf_str(&hdr, t->name, strlen(t->name));
        buf_u32(&hdr, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_u64(&hdr, (uint64_t)t->ne[d]);
        buf_u32(&hdr, t->type);
        buf_u64(&hdr, t->offset);
    }
    if (hdr.oom) {
        free(hdr.p);
        return al_err_set(err, "%s: out of memory", path);
    }
    size_t tmplen = strlen(path) + 8;
    char *tmp = malloc(tmplen);
    if (!tmp) {
        free(hdr.p);
        return al_err_set(err, "out of memory");
    }
    snprintf(tmp, tmplen, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        al_err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(hdr.p);
        return -1;
    }
    int rc = write_all(f, hdr.p, hdr.n, tmp, err);
    uint64_t pos = hdr.n;
    free(hdr.p);
    if (!rc && w->n_tensors) {
        uint64_t data_start = (pos + w->alignment - 1) / w->alignment * w->alignment;
        rc = write_zeros(f, (size_t)(data_start - pos), tmp, err);
        pos = 0;
        void *scratch = NULL;
        size_t scratch_cap = 0;
        for (uint64_t i = 0; !rc && i < w->n_tensors; i++) {
            const wtensor *t = &w->tensors[i];
            rc = write_zeros(f, (size_t)(t->offset - pos), tmp, err);
            if (rc) break;
            const void *src = t->data;
            if (!src) {
                if (!fill) {
                    rc = al_err_set(err, "tensor '%s' has no data", t->name);
                    break;
                }
                if (scratch_cap < t->nbytes) {
                    free(scratch);
                    scratch_cap = (size_t)t->nbytes;
                    scratch = malloc(scratch_cap ? scratch_cap : 1);
                    if (!scratch) {
                        rc = al_err_set(err, "out of memory for tensor '%s'", t->name);
                        break;
                    }
                }
                rc = fill(user, i, scratch, (size_t)t->nbytes, err);
                if (rc) break;
                src = scratch;
            }
            rc = write_all(f, src, (size_t)t->nbytes, tmp, err);
            pos = t->offset + t->nbytes;
        }
        free(scratch);
    }
    if (fflush(f) != 0 && !rc) rc = al_err_set(err, "%s: write failed: %s", tmp, strerror(errno));
    if (!rc && fsync(fileno(f)) != 0) rc = al_err_set(err, "%s: fsync failed: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && !rc) rc = al_err_set(err, "%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0) rc = al_err_set(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

int gguf_write_copy(const gguf_ctx *ctx, const char *path, al_err *err) {
    gguf_writer *w = gguf_writer_init(ctx->version);
    if (!w) return al_err_set(err, "out of memory");
    int rc = 0;
    for (uint64_t i = 0; i < ctx->n_kv && !rc; i++)
        if (gguf_writer_add_value(w, ctx->kv[i].key, &ctx->kv[i].value))
            rc = al_err_set(err, "cannot add key '%s'", ctx->kv[i].key);
    for (uint64_t i = 0; i < ctx->n_tensors && !rc; i++) {
        const gguf_tensor *t = &ctx->tensors[i];
        rc = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, err);
    }
    if (!rc) rc = gguf_writer_write(w, path, NULL, NULL, err);
    gguf_writer_free(w);
    return rc;
}
