/* cmd_inspect.c - `airlock inspect FILE [--json] [--all]`: a GGUF file's
 * metadata and tensor table, for people or (with --json) for machines. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/json_write.h"
#include "formats/gguf.h"
#include "tools/commands.h"

#define PREVIEW 8 /* array elements shown unless --all */

static void print_scalar(FILE *f, const gguf_value *v, bool json) {
    switch (v->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
        fprintf(f, "%" PRIu64, v->u64); break;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        fprintf(f, "%" PRId64, v->i64); break;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        if (json) json_write_num(f, v->f64);
        else fprintf(f, "%.9g", v->f64);
        break;
    case GGUF_TYPE_BOOL: fputs(v->b ? "true" : "false", f); break;
    case GGUF_TYPE_STRING:
        if (json) json_write_str(f, v->str.ptr, (size_t)v->str.len);
        else {
            size_t n = (size_t)v->str.len;
            json_write_str(f, v->str.ptr, n > 200 ? 200 : n);
            if (n > 200) fprintf(f, "... (%zu bytes)", n);
        }
        break;
    default: break;
    }
}

static void print_array(FILE *f, const gguf_array *a, bool json, bool all) {
    uint64_t shown = all || a->n <= PREVIEW ? a->n : PREVIEW;
    fputc('[', f);
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", f);
        if (a->type == GGUF_TYPE_STRING) {
            gguf_value v = {.type = GGUF_TYPE_STRING, .str = a->strs[i]};
            print_scalar(f, &v, json);
        } else if (a->type == GGUF_TYPE_ARRAY) {
            print_array(f, &a->arrs[i].arr, json, all);
        } else if (a->type == GGUF_TYPE_FLOAT32 || a->type == GGUF_TYPE_FLOAT64) {
            if (json) json_write_num(f, gguf_arr_f64(a, i));
            else fprintf(f, "%.9g", gguf_arr_f64(a, i));
        } else if (a->type == GGUF_TYPE_BOOL) {
            fputs(gguf_arr_i64(a, i) ? "true" : "false", f);
        } else if (a->type == GGUF_TYPE_UINT64) {
            fprintf(f, "%" PRIu64, (uint64_t)gguf_arr_i64(a, i));
        } else {
            fprintf(f, "%" PRId64, gguf_arr_i64(a, i));
        }
    }
    if (shown < a->n && !json) fprintf(f, ", ... (%" PRIu64 " more)", a->n - shown);
    fputc(']', f);
}

static void print_text(const gguf_ctx *g, bool all) {
    printf("file: %s\nversion: %u\nalignment: %u\nmetadata: %" PRIu64 " entries\ntensors: %" PRIu64 "\ndata offset: %" PRIu64 "\n\n",
           g->path, g->version, g->alignment, g->n_kv, g->n_tensors, g->data_offset);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (kv->value.type == GGUF_TYPE_ARRAY) {
            printf("%-45s arr[%s,%" PRIu64 "] = ", kv->key, gguf_type_name(kv->value.arr.type), kv->value.arr.n);
            print_array(stdout, &kv->value.arr, false, all);
        } else {
            printf("%-45s %-8s = ", kv->key, gguf_type_name(kv->value.type));
            print_scalar(stdout, &kv->value, false);
        }
        putchar('\n');
    }
    if (g->n_tensors) {
        printf("\n%5s  %-40s %-8s %-28s %14s %14s\n", "#", "name", "type", "shape", "bytes", "offset");
        uint64_t total = 0;
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const gguf_tensor *t = &g->tensors[i];
            char shape[64];
            int k = 0;
            for (uint32_t d = 0; d < t->n_dims && k < (int)sizeof shape; d++)
                k += snprintf(shape + k, sizeof shape - (size_t)k, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
            printf("%5" PRIu64 "  %-40s %-8s %-28s %14" PRIu64 " %14" PRIu64 "\n", i, t->name, ggml_type_name(t->type),
                   shape, t->nbytes, g->data_offset + t->offset);
            total += t->nbytes;
        }
        printf("\ntensor data: %" PRIu64 " bytes (%.2f MiB)\n", total, (double)total / (1024.0 * 1024.0));
    }
}

static void print_json(const gguf_ctx *g, bool all) {
    printf("{\"file\":");
    json_write_str(stdout, g->path, strlen(g->path));
    printf(",\"version\":%u,\"alignment\":%u,\"data_offset\":%" PRIu64 ",\"metadata\":[", g->version, g->alignment, g->data_offset);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        printf(i ? ",{\"key\":" : "{\"key\":");
        json_write_str(stdout, kv->key, strlen(kv->key));
        if (kv->value.type == GGUF_TYPE_ARRAY) {
            printf(",\"type\":\"array\",\"elem_type\":\"%s\",\"n\":%" PRIu64 ",\"value\":", gguf_type_name(kv->value.arr.type), kv->value.arr.n);
            print_array(stdout, &kv->value.arr, true, all);
        } else {
            printf(",\"type\":\"%s\",\"value\":", gguf_type_name(kv->value.type));
            print_scalar(stdout, &kv->value, true);
        }
        putchar('}');
    }
    printf("],\"tensors\":[");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        printf(i ? ",{\"name\":" : "{\"name\":");
        json_write_str(stdout, t->name, strlen(t->name));
        printf(",\"type\":\"%s\",\"shape\":[", ggml_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++) printf(d ? ",%" PRId64 : "%" PRId64, t->ne[d]);
        printf("],\"bytes\":%" PRIu64 ",\"offset\":%" PRIu64 "}", t->nbytes, g->data_offset + t->offset);
    }
    printf("]}\n");
}

int cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"all", no_argument, 0, 'a'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool json = false, all = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jah", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'a': all = true; break;
        case 'h':
            printf("usage: airlock inspect FILE.gguf [--json] [--all]\n\n"
                   "Validates a GGUF file and prints its metadata and tensor table\n"
                   "(name, type, shape, bytes, file offset).\n\n"
                   "  --json  one JSON object, for machines\n"
                   "  --all   print every array element (default: the first %d)\n", PREVIEW);
            return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: airlock inspect FILE.gguf [--json] [--all]\n");
        return 2;
    }
    al_err err;
    gguf_ctx *g = gguf_open(argv[optind], &err);
    if (!g) {
        fprintf(stderr, "airlock inspect: %s\n", err.msg);
        return 1;
    }
    if (json) print_json(g, all);
    else print_text(g, all);
    gguf_close(g);
    return 0;
}
