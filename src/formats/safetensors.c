/* safetensors.c - a validating reader for Hugging Face .safetensors files. */
#include "formats/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ggml_types.h"

static const struct {
    const char *name;
    size_t size;
} k_dtypes[ST_DTYPE_COUNT] = {
    [ST_DTYPE_BOOL] = {"BOOL", 1}, [ST_DTYPE_U8] = {"U8", 1},     [ST_DTYPE_I8] = {"I8", 1},
    [ST_DTYPE_I16] = {"I16", 2},   [ST_DTYPE_U16] = {"U16", 2},   [ST_DTYPE_F16] = {"F16", 2},
    [ST_DTYPE_BF16] = {"BF16", 2}, [ST_DTYPE_I32] = {"I32", 4},   [ST_DTYPE_U32] = {"U32", 4},
    [ST_DTYPE_F32] = {"F32", 4},   [ST_DTYPE_I64] = {"I64", 8},   [ST_DTYPE_U64] = {"U64", 8},
    [ST_DTYPE_F64] = {"F64", 8},   [ST_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [ST_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? k_dtypes[t].name : "?"; }
size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? k_dtypes[t].size : 0; }

void st_close(st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    mapped_file_close(&f->map);
    free(f->path);
    free(f);
}

/* Reads one tensor entry `name: {dtype, shape, data_offsets}` into t.
 * Returns 0, or -1 with err naming the field. */
static int parse_entry(const char *file, const char *name, json_t *v, uint64_t data_size, st_tensor *t, al_err *err) {
    if (!json_is_object(v)) return al_err_set(err, "%s: tensor '%s': entry is not an object", file, name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt)) return al_err_set(err, "%s: tensor '%s': missing or non-string \"dtype\"", file, name);
    int found = -1;
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(json_string_value(dt), k_dtypes[i].name) == 0) found = i;
    if (found < 0) return al_err_set(err, "%s: tensor '%s': unknown dtype \"%.32s\"", file, name, json_string_value(dt));
    t->dtype = (st_dtype)found;
    if (!json_is_array(shape)) return al_err_set(err, "%s: tensor '%s': missing or non-array \"shape\"", file, name);
    if (json_array_size(shape) > ST_MAX_DIMS)
        return al_err_set(err, "%s: tensor '%s': %zu dimensions (at most %d)", file, name, json_array_size(shape), ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(shape);
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        json_t *x = json_array_get(shape, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return al_err_set(err, "%s: tensor '%s': shape[%d] is not a non-negative integer", file, name, d);
        uint64_t e = (uint64_t)json_integer_value(x);
        if (e != 0 && n > (UINT64_MAX / 8) / e)
            return al_err_set(err, "%s: tensor '%s': shape overflows", file, name);
        n *= e;
        t->shape[d] = (int64_t)e;
    }
    t->n_elems = (int64_t)n;
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
        !json_is_integer(json_array_get(offs, 1)))
        return al_err_set(err, "%s: tensor '%s': \"data_offsets\" is not [begin, end]", file, name);
    json_int_t b = json_integer_value(json_array_get(offs, 0)), e = json_integer_value(json_array_get(offs, 1));
    if (b < 0 || e < b) return al_err_set(err, "%s: tensor '%s': data_offsets [%lld, %lld] are not an increasing range", file, name, (long long)b, (long long)e);
    if ((uint64_t)e > data_size)
        return al_err_set(err, "%s: tensor '%s': data_offsets end %lld is past the end of the data (%llu bytes)", file, name,
                          (long long)e, (unsigned long long)data_size);
    t->offset = (uint64_t)b;
    t->nbytes = (uint64_t)(e - b);
    if (n * k_dtypes[t->dtype].size != t->nbytes)
        return al_err_set(err, "%s: tensor '%s': %s shape of %llu elements needs %llu bytes, data_offsets give %llu", file, name,
                          k_dtypes[t->dtype].name, (unsigned long long)n, (unsigned long long)(n * k_dtypes[t->dtype].size),
                          (unsigned long long)t->nbytes);
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

/* Validates the image in f->base/f->size and fills f->tensors. */
static int parse_image(st_file *f, al_err *err) {
    const char *file = f->path;
    if (f->size < 8) return al_err_set(err, "%s: %zu bytes is too short for a safetensors header", file, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->base[i];
    if (hlen > ST_MAX_HEADER) return al_err_set(err, "%s: header length %llu exceeds the %u-byte limit", file, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > f->size - 8)
        return al_err_set(err, "%s: header length %llu is past the end of the file (%zu bytes)", file, (unsigned long long)hlen, f->size);
    if (hlen < 2 || f->base[8] != '{') return al_err_set(err, "%s: header does not start with a JSON object", file);
    json_error_t je;
    json_t *root = json_loadb((const char *)f->base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK * 0, &je);
    if (!root) return al_err_set(err, "%s: header JSON: %s (at byte %d of the header)", file, je.text, je.position);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = al_err_set(err, "%s: header is not a JSON object", file);
        goto done;
    }
    uint64_t data_size = f->size - 8 - hlen;
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = al_err_set(err, "%s: out of memory", file);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                rc = al_err_set(err, "%s: \"__metadata__\" is not an object", file);
                goto done;
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->n_tensors];
        t->name = strdup(key);
        if (!t->name) {
            rc = al_err_set(err, "%s: out of memory", file);
            goto done;
        }
        f->n_tensors++;
        if ((rc = parse_entry(file, key, v, data_size, t, err))) goto done;
        t->data = f->base + 8 + hlen + t->offset;
    }
    /* no two tensors may share bytes */
    if (f->n_tensors > 1) {
        const st_tensor **order = malloc(f->n_tensors * sizeof *order);
        if (!order) {
            rc = al_err_set(err, "%s: out of memory", file);
            goto done;
        }
        for (size_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
        qsort(order, f->n_tensors, sizeof *order, cmp_offset);
        for (size_t i = 1; i < f->n_tensors && !rc; i++) {
            const st_tensor *a = order[i - 1], *b = order[i];
            if (b->offset < a->offset + a->nbytes && b->nbytes && a->nbytes)
                rc = al_err_set(err, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", file, a->name,
                                (unsigned long long)a->offset, (unsigned long long)(a->offset + a->nbytes), b->name,
                                (unsigned long long)b->offset, (unsigned long long)(b->offset + b->nbytes));
        }
        free(order);
    }
done:
    json_decref(root);
    return rc;
}

static st_file *finish(st_file *f, al_err *err) {
    if (parse_image(f, err)) {
        st_close(f);
        return NULL;
    }
    return f;
}

st_file *st_open(const char *path, al_err *err) {
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        al_err_set(err, "out of memory");
        return NULL;
    }
    if (mapped_file_open(&f->map, path, err)) {
        st_close(f);
        return NULL;
    }
    f->base = f->map.data;
    f->size = f->map.size;
    return finish(f, err);
}

st_file *st_parse(const void *buf, size_t size, const char *name, al_err *err) {
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(name))) {
        free(f);
        al_err_set(err, "out of memory");
        return NULL;
    }
    f->base = buf;
    f->size = size;
    return finish(f, err);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

int st_dtype_ggml(st_dtype t) {
    switch (t) {
    case ST_DTYPE_F32: return GGML_TYPE_F32;
    case ST_DTYPE_F16: return GGML_TYPE_F16;
    case ST_DTYPE_BF16: return GGML_TYPE_BF16;
    default: return -1;
    }
}
