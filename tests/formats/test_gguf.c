/* test_gguf.c - GGUF reader and writer: round trips, real files, hostile files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "test_util.h"

/* ---- a file with every metadata type, written and read back ---------------- */

static const int32_t k_i32s[] = {-1, 0, 7, 2147483647};
static const float k_f32s[] = {0.5f, -1.25f, 3e38f};
static const uint8_t k_bools[] = {1, 0, 1};
static const char *const k_strs[] = {"", "hello", "\xe2\x96\x81world", "tab\there"};

static void write_everything(const char *path, float *w_f32, uint16_t *w_f16, uint8_t *w_q8) {
    gguf_writer *w = gguf_writer_init(3);
    assert_non_null(w);
    gguf_value v;
    v = (gguf_value){.type = GGUF_TYPE_UINT8, .u64 = 250};
    assert_int_equal(gguf_writer_add_value(w, "t.u8", &v), 0);
    v = (gguf_value){.type = GGUF_TYPE_INT8, .i64 = -100};
    assert_int_equal(gguf_writer_add_value(w, "t.i8", &v), 0);
    v = (gguf_value){.type = GGUF_TYPE_UINT16, .u64 = 65000};
    assert_int_equal(gguf_writer_add_value(w, "t.u16", &v), 0);
    v = (gguf_value){.type = GGUF_TYPE_INT16, .i64 = -32000};
    assert_int_equal(gguf_writer_add_value(w, "t.i16", &v), 0);
    assert_int_equal(gguf_writer_add_u32(w, "t.u32", 4000000000u), 0);
    assert_int_equal(gguf_writer_add_i32(w, "t.i32", -2000000000), 0);
    assert_int_equal(gguf_writer_add_f32(w, "t.f32", 0.15625f), 0);
    assert_int_equal(gguf_writer_add_bool(w, "t.bool", true), 0);
    assert_int_equal(gguf_writer_add_str(w, "t.str", "Grüße, 世界"), 0);
    assert_int_equal(gguf_writer_add_u64(w, "t.u64", 18000000000000000000ull), 0);
    v = (gguf_value){.type = GGUF_TYPE_INT64, .i64 = -9000000000000000000ll};
    assert_int_equal(gguf_writer_add_value(w, "t.i64", &v), 0);
    v = (gguf_value){.type = GGUF_TYPE_FLOAT64, .f64 = 2.718281828459045};
    assert_int_equal(gguf_writer_add_value(w, "t.f64", &v), 0);
    assert_int_equal(gguf_writer_add_arr(w, "t.arr_i32", GGUF_TYPE_INT32, k_i32s, 4), 0);
    assert_int_equal(gguf_writer_add_arr(w, "t.arr_f32", GGUF_TYPE_FLOAT32, k_f32s, 3), 0);
    assert_int_equal(gguf_writer_add_arr(w, "t.arr_bool", GGUF_TYPE_BOOL, k_bools, 3), 0);
    assert_int_equal(gguf_writer_add_arr_str(w, "t.arr_str", k_strs, 4), 0);
    assert_int_equal(gguf_writer_add_arr(w, "t.arr_empty", GGUF_TYPE_UINT8, NULL, 0), 0);
    /* nested: [[1,2],[3]] of uint16, and [["a"],[]] of strings */
    static const uint16_t a1[] = {1, 2}, a2[] = {3};
    gguf_value inner[2] = {
        {.type = GGUF_TYPE_ARRAY, .arr = {.type = GGUF_TYPE_UINT16, .n = 2, .data = a1}},
        {.type = GGUF_TYPE_ARRAY, .arr = {.type = GGUF_TYPE_UINT16, .n = 1, .data = a2}},
    };
    v = (gguf_value){.type = GGUF_TYPE_ARRAY, .arr = {.type = GGUF_TYPE_ARRAY, .n = 2, .arrs = inner}};
    assert_int_equal(gguf_writer_add_value(w, "t.nested", &v), 0);
    gguf_str sa = {"a", 1};
    gguf_value inner2[2] = {
        {.type = GGUF_TYPE_ARRAY, .arr = {.type = GGUF_TYPE_STRING, .n = 1, .strs = &sa}},
        {.type = GGUF_TYPE_ARRAY, .arr = {.type = GGUF_TYPE_STRING, .n = 0, .strs = NULL}},
    };
    v = (gguf_value){.type = GGUF_TYPE_ARRAY, .arr = {.type = GGUF_TYPE_ARRAY, .n = 2, .arrs = inner2}};
    assert_int_equal(gguf_writer_add_value(w, "t.nested_str", &v), 0);
    assert_int_equal(gguf_writer_add_u32(w, "t.u32", 1), -1); /* duplicate key refused */

    al_err err;
    int64_t ne1[2] = {8, 3}, ne2[1] = {5}, ne3[2] = {64, 2};
    assert_int_equal(gguf_writer_add_tensor(w, "a.f32", GGML_TYPE_F32, 2, ne1, w_f32, &err), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "b.f16", GGML_TYPE_F16, 1, ne2, w_f16, &err), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "c.q8", GGML_TYPE_Q8_0, 2, ne3, w_q8, &err), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "a.f32", GGML_TYPE_F32, 2, ne1, w_f32, &err), -1);
    int64_t bad[1] = {33};
    assert_int_equal(gguf_writer_add_tensor(w, "bad", GGML_TYPE_Q8_0, 1, bad, w_q8, &err), -1);
    assert_int_equal(gguf_writer_write(w, path, NULL, NULL, &err), 0);
    gguf_writer_free(w);
}

static void test_roundtrip_all_types(void **state) {
    (void)state;
    float f32[24];
    uint16_t f16[5];
    uint8_t q8[4 * 34];
    for (int i = 0; i < 24; i++) f32[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < 5; i++) f16[i] = (uint16_t)(0x3C00 + i);
    for (int i = 0; i < (int)sizeof q8; i++) q8[i] = (uint8_t)(i * 7);
    const char *path = test_path("all.gguf");
    write_everything(path, f32, f16, q8);

    al_err err;
    gguf_ctx *g = gguf_open(path, &err);
    if (!g) fail_msg("%s", err.msg);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 19);
    assert_int_equal(g->n_tensors, 3);
    const gguf_value *v;
    assert_non_null(v = gguf_get(g, "t.u8"));
    assert_int_equal(v->type, GGUF_TYPE_UINT8);
    assert_int_equal(v->u64, 250);
    assert_int_equal(gguf_get(g, "t.i8")->i64, -100);
    assert_int_equal(gguf_get(g, "t.u16")->u64, 65000);
    assert_int_equal(gguf_get(g, "t.i16")->i64, -32000);
    uint32_t u32;
    assert_int_equal(gguf_get_u32(g, "t.u32", &u32, &err), 0);
    assert_int_equal(u32, 4000000000u);
    assert_int_equal(gguf_get(g, "t.i32")->i64, -2000000000);
    float f;
    assert_int_equal(gguf_get_f32(g, "t.f32", &f, &err), 0);
    assert_true(f == 0.15625f);
    bool b;
    assert_int_equal(gguf_get_bool(g, "t.bool", &b, &err), 0);
    assert_true(b);
    gguf_str s;
    assert_int_equal(gguf_get_str(g, "t.str", &s, &err), 0);
    assert_int_equal(s.len, strlen("Grüße, 世界"));
    assert_memory_equal(s.ptr, "Grüße, 世界", s.len);
    assert_true(gguf_get(g, "t.u64")->u64 == 18000000000000000000ull);
    assert_true(gguf_get(g, "t.i64")->i64 == -9000000000000000000ll);
    assert_true(gguf_get(g, "t.f64")->f64 == 2.718281828459045);
    const gguf_array *a;
    assert_int_equal(gguf_get_arr(g, "t.arr_i32", GGUF_TYPE_INT32, &a, &err), 0);
    assert_int_equal(a->n, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(gguf_arr_i64(a, (uint64_t)i), k_i32s[i]);
    assert_int_equal(gguf_get_arr(g, "t.arr_f32", GGUF_TYPE_FLOAT32, &a, &err), 0);
    for (int i = 0; i < 3; i++) assert_true((float)gguf_arr_f64(a, (uint64_t)i) == k_f32s[i]);
    assert_int_equal(gguf_get_arr(g, "t.arr_bool", GGUF_TYPE_BOOL, &a, &err), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(gguf_arr_i64(a, (uint64_t)i), k_bools[i]);
    assert_int_equal(gguf_get_arr(g, "t.arr_str", GGUF_TYPE_STRING, &a, &err), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a->strs[i].len, strlen(k_strs[i]));
        assert_memory_equal(a->strs[i].ptr, k_strs[i], a->strs[i].len);
    }
    assert_int_equal(gguf_get_arr(g, "t.arr_empty", GGUF_TYPE_UINT8, &a, &err), 0);
    assert_int_equal(a->n, 0);
    assert_int_equal(gguf_get_arr(g, "t.nested", GGUF_TYPE_ARRAY, &a, &err), 0);
    assert_int_equal(a->n, 2);
    assert_int_equal(a->arrs[0].arr.type, GGUF_TYPE_UINT16);
    assert_int_equal(a->arrs[0].arr.n, 2);
    assert_int_equal(gguf_arr_i64(&a->arrs[0].arr, 1), 2);
    assert_int_equal(gguf_arr_i64(&a->arrs[1].arr, 0), 3);
    assert_int_equal(gguf_get_arr(g, "t.nested_str", GGUF_TYPE_ARRAY, &a, &err), 0);
    assert_int_equal(a->arrs[0].arr.n, 1);
    assert_memory_equal(a->arrs[0].arr.strs[0].ptr, "a", 1);
    assert_int_equal(a->arrs[1].arr.n, 0);
    /* wrong-type getters fail with a message naming the key */
    assert_int_equal(gguf_get_str(g, "t.u8", &s, &err), -1);
    assert_non_null(strstr(err.msg, "t.u8"));
    assert_int_equal(gguf_get_u32(g, "t.i8", &u32, &err), -1);
    assert_int_equal(gguf_get_u32(g, "missing.key", &u32, &err), -1);
    assert_non_null(strstr(err.msg, "missing.key"));

    const gguf_tensor *t = gguf_find_tensor(g, "a.f32");
    assert_non_null(t);
    assert_int_equal(t->type, GGML_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 8);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->nbytes, sizeof f32);
    assert_memory_equal(t->data, f32, sizeof f32);
    assert_int_equal((uintptr_t)t->data % 32, 0); /* mapping is page aligned, data 32-aligned */
    t = gguf_find_tensor(g, "b.f16");
    assert_int_equal(t->nbytes, 10);
    assert_memory_equal(t->data, f16, 10);
    assert_int_equal(t->offset % 32, 0);
    t = gguf_find_tensor(g, "c.q8");
    assert_int_equal(t->nbytes, sizeof q8);
    assert_memory_equal(t->data, q8, sizeof q8);
    assert_null(gguf_find_tensor(g, "nope"));

    /* writing what was read gives the same bytes */
    const char *copy = test_path("all-copy.gguf");
    assert_int_equal(gguf_write_copy(g, copy, &err), 0);
    size_t n1, n2;
    char *b1 = test_read_file(path, &n1), *b2 = test_read_file(copy, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    gguf_close(g);
}

/* Files written by llama.cpp's own tools come back byte-identical. */
static void copy_identical(const char *rel) {
    if (!test_have_model(rel)) {
        print_message("skipping: %s not present\n", rel);
        skip();
    }
    al_err err;
    gguf_ctx *g = gguf_open(test_model_path(rel), &err);
    if (!g) fail_msg("%s", err.msg);
    const char *copy = test_path("copy.gguf");
    assert_int_equal(gguf_write_copy(g, copy, &err), 0);
    size_t n1, n2;
    char *b1 = test_read_file(test_model_path(rel), &n1), *b2 = test_read_file(copy, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    gguf_close(g);
}

static void test_real_stories260k(void **state) {
    (void)state;
    if (!test_have_model("llm/stories260K.gguf")) skip();
    al_err err;
    gguf_ctx *g = gguf_open(test_model_path("llm/stories260K.gguf"), &err);
    if (!g) fail_msg("%s", err.msg);
    /* facts from the model card: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512 */
    gguf_str arch;
    assert_int_equal(gguf_get_str(g, "general.architecture", &arch, &err), 0);
    assert_int_equal(arch.len, 5);
    assert_memory_equal(arch.ptr, "llama", 5);
    uint32_t v;
    assert_int_equal(gguf_get_u32(g, "llama.embedding_length", &v, &err), 0);
    assert_int_equal(v, 64);
    assert_int_equal(gguf_get_u32(g, "llama.feed_forward_length", &v, &err), 0);
    assert_int_equal(v, 172);
    assert_int_equal(gguf_get_u32(g, "llama.block_count", &v, &err), 0);
    assert_int_equal(v, 5);
    assert_int_equal(gguf_get_u32(g, "llama.attention.head_count_kv", &v, &err), 0);
    assert_int_equal(v, 4);
    const gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->type, GGML_TYPE_F32);
    /* llama2.c layout: 9 tensors per layer + embeddings + final norm (tied output) */
    assert_true(g->n_tensors == 5 * 9 + 2 || g->n_tensors == 5 * 9 + 3);
    gguf_close(g);
    copy_identical("llm/stories260K.gguf");
}

static void test_real_vocab_files(void **state) {
    (void)state;
    copy_identical("tokenizer-fixtures/ggml-vocab-llama-spm.gguf");
    copy_identical("tokenizer-fixtures/ggml-vocab-gpt-2.gguf");
    copy_identical("tokenizer-fixtures/ggml-vocab-bert-bge.gguf");
}

/* ---- hostile files ----------------------------------------------------------- */

/* A small valid file built by hand: 2 kv, 2 tensors. */
static void build_small(bytes *b, uint64_t n_tensors, uint64_t n_kv) {
    bytes_put(b, "GGUF", 4);
    bytes_u32(b, 3);
    bytes_u64(b, n_tensors);
    bytes_u64(b, n_kv);
}

static void finish_valid(bytes *b) {
    bytes_str(b, "general.name");
    bytes_u32(b, GGUF_TYPE_STRING);
    bytes_str(b, "tiny");
    bytes_str(b, "arr");
    bytes_u32(b, GGUF_TYPE_ARRAY);
    bytes_u32(b, GGUF_TYPE_STRING);
    bytes_u64(b, 2);
    bytes_str(b, "x");
    bytes_str(b, "yz");
    /* tensor 0: f32 [4], offset 0; tensor 1: f32 [2,2] offset 32 */
    bytes_str(b, "t0");
    bytes_u32(b, 1);
    bytes_u64(b, 4);
    bytes_u32(b, GGML_TYPE_F32);
    bytes_u64(b, 0);
    bytes_str(b, "t1");
    bytes_u32(b, 2);
    bytes_u64(b, 2);
    bytes_u64(b, 2);
    bytes_u32(b, GGML_TYPE_F32);
    bytes_u64(b, 32);
    while (b->n % 32) bytes_u8(b, 0);
    for (int i = 0; i < 48; i++) bytes_u8(b, (uint8_t)i);
}

/* Parses buf and asserts failure with all the given substrings in the message. */
static void expect_error(const bytes *b, const char *s1, const char *s2) {
    al_err err;
    gguf_ctx *g = gguf_parse(b->p, b->n, "hostile.gguf", &err);
    if (g) {
        gguf_close(g);
        fail_msg("hostile file was accepted (expected error mentioning '%s')", s1);
    }
    if (!strstr(err.msg, "hostile.gguf")) fail_msg("error does not name the file: %s", err.msg);
    if (s1 && !strstr(err.msg, s1)) fail_msg("error lacks '%s': %s", s1, err.msg);
    if (s2 && !strstr(err.msg, s2)) fail_msg("error lacks '%s': %s", s2, err.msg);
}

static void test_valid_small_and_every_truncation(void **state) {
    (void)state;
    bytes b = {0};
    build_small(&b, 2, 2);
    finish_valid(&b);
    al_err err;
    gguf_ctx *g = gguf_parse(b.p, b.n, "small.gguf", &err);
    if (!g) fail_msg("%s", err.msg);
    assert_int_equal(gguf_find_tensor(g, "t1")->nbytes, 16);
    gguf_close(g);
    /* every proper prefix is rejected with an error, never a crash; a heap
     * copy of exactly n bytes lets ASan catch any read past the end */
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.p, n);
        g = gguf_parse(cut, n, "cut.gguf", &err);
        if (g) fail_msg("truncated at %zu of %zu accepted", n, b.n);
        assert_non_null(strstr(err.msg, "cut.gguf"));
        assert_non_null(strstr(err.msg, "offset") ? err.msg : strstr(err.msg, "past the end"));
        free(cut);
    }
    bytes_free(&b);
}

static void test_wrong_magic_and_version(void **state) {
    (void)state;
    bytes b = {0};
    bytes_put(&b, "GGML", 4);
    bytes_u32(&b, 3);
    bytes_u64(&b, 0);
    bytes_u64(&b, 0);
    expect_error(&b, "magic", "not a GGUF file");
    bytes_free(&b);
    for (uint32_t ver = 0; ver < 6; ver++) {
        if (ver == 2 || ver == 3) continue;
        bytes_put(&b, "GGUF", 4);
        bytes_u32(&b, ver);
        bytes_u64(&b, 0);
        bytes_u64(&b, 0);
        expect_error(&b, "version", "unsupported");
        bytes_free(&b);
    }
}

static void test_absurd_counts(void **state) {
    (void)state;
    bytes b = {0};
    build_small(&b, 1ull << 63, 0);
    expect_error(&b, "tensor_count", "cannot fit");
    bytes_free(&b);
    build_small(&b, 0, UINT64_MAX);
    expect_error(&b, "metadata_kv_count", "cannot fit");
    bytes_free(&b);
    /* a 2^40-byte string */
    build_small(&b, 0, 1);
    bytes_u64(&b, 1ull << 40);
    bytes_put(&b, "abcdefgh", 8);
    expect_error(&b, "metadata[0].key", "string length 1099511627776");
    bytes_free(&b);
    /* a string value past EOF */
    build_small(&b, 0, 1);
    bytes_str(&b, "k");
    bytes_u32(&b, GGUF_TYPE_STRING);
    bytes_u64(&b, 100);
    bytes_put(&b, "short", 5);
    expect_error(&b, "metadata[0] ('k').value", "exceeds");
    bytes_free(&b);
    /* an array of 2^62 uint32 */
    build_small(&b, 0, 1);
    bytes_str(&b, "k");
    bytes_u32(&b, GGUF_TYPE_ARRAY);
    bytes_u32(&b, GGUF_TYPE_UINT32);
    bytes_u64(&b, 1ull << 62);
    expect_error(&b, "metadata[0] ('k').value", "array count");
    bytes_free(&b);
}

static void test_bad_types(void **state) {
    (void)state;
    bytes b = {0};
    build_small(&b, 0, 1);
    bytes_str(&b, "k");
    bytes_u32(&b, 13);
    bytes_u32(&b, 0);
    expect_error(&b, "('k').type", "unknown value type id 13");
    bytes_free(&b);
    build_small(&b, 0, 1);
    bytes_str(&b, "k");
    bytes_u32(&b, GGUF_TYPE_ARRAY);
    bytes_u32(&b, 99);
    bytes_u64(&b, 0);
    expect_error(&b, "('k').value", "unknown array element type id 99");
    bytes_free(&b);
    build_small(&b, 0, 1);
    bytes_str(&b, "k");
    bytes_u32(&b, GGUF_TYPE_BOOL);
    bytes_u8(&b, 2);
    expect_error(&b, "('k').value", "bool");
    bytes_free(&b);
    uint32_t bad_tensor_types[] = {4, 5, 31, 33, 36, 39, 1000};
    for (size_t i = 0; i < sizeof bad_tensor_types / sizeof *bad_tensor_types; i++) {
        build_small(&b, 1, 0);
        bytes_str(&b, "w");
        bytes_u32(&b, 1);
        bytes_u64(&b, 32);
        bytes_u32(&b, bad_tensor_types[i]);
        bytes_u64(&b, 0);
        while (b.n % 32) bytes_u8(&b, 0);
        for (int k = 0; k < 256; k++) bytes_u8(&b, 0);
        expect_error(&b, "tensor[0] ('w').type", "unknown tensor type id");
        bytes_free(&b);
    }
}

/* One tensor with the given dims / type / offset and `data` bytes of data. */
static void one_tensor(bytes *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off, size_t data) {
    build_small(b, 1, 0);
    bytes_str(b, "w");
    bytes_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) bytes_u64(b, ne[d]);
    bytes_u32(b, type);
    bytes_u64(b, off);
    while (b->n % 32) bytes_u8(b, 0);
    for (size_t k = 0; k < data; k++) bytes_u8(b, 1);
}

static void test_bad_tensor_infos(void **state) {
    (void)state;
    bytes b = {0};
    uint64_t ne[5] = {4, 1, 1, 1, 1};
    one_tensor(&b, 5, ne, GGML_TYPE_F32, 0, 16);
    expect_error(&b, "n_dims", "out of range");
    bytes_free(&b);
    one_tensor(&b, 0, ne, GGML_TYPE_F32, 0, 16);
    expect_error(&b, "n_dims", "out of range");
    bytes_free(&b);
    uint64_t big[4] = {1ull << 32, 1ull << 32, 1ull << 32, 1};
    one_tensor(&b, 4, big, GGML_TYPE_F32, 0, 16);
    expect_error(&b, "tensor[0] ('w')", "overflows");
    bytes_free(&b);
    uint64_t big2[2] = {1ull << 61, 4};
    one_tensor(&b, 2, big2, GGML_TYPE_F32, 0, 16);
    expect_error(&b, "tensor[0] ('w')", "overflows");
    bytes_free(&b);
    uint64_t neg[1] = {UINT64_MAX};
    one_tensor(&b, 1, neg, GGML_TYPE_F32, 0, 16);
    expect_error(&b, "ne[0]", "negative");
    bytes_free(&b);
    uint64_t odd[1] = {33};
    one_tensor(&b, 1, odd, GGML_TYPE_Q4_0, 0, 64);
    expect_error(&b, "tensor[0] ('w')", "block size");
    bytes_free(&b);
    /* misaligned offset */
    one_tensor(&b, 1, ne, GGML_TYPE_F32, 8, 64);
    expect_error(&b, "offset", "alignment");
    bytes_free(&b);
    /* data past EOF */
    one_tensor(&b, 1, ne, GGML_TYPE_F32, 0, 8);
    expect_error(&b, "'w'", "past the end");
    bytes_free(&b);
    uint64_t huge[1] = {1ull << 40};
    one_tensor(&b, 1, huge, GGML_TYPE_F32, 0, 64);
    expect_error(&b, "'w'", "past the end");
    bytes_free(&b);
    one_tensor(&b, 1, ne, GGML_TYPE_F32, UINT64_MAX - 31, 64);
    expect_error(&b, "'w'", "past the end");
    bytes_free(&b);
}

static void test_overlap_duplicates_alignment(void **state) {
    (void)state;
    bytes b = {0};
    /* two tensors of 64 bytes, the second at offset 32: overlap */
    build_small(&b, 2, 0);
    for (int i = 0; i < 2; i++) {
        bytes_str(&b, i ? "b" : "a");
        bytes_u32(&b, 1);
        bytes_u64(&b, 16);
        bytes_u32(&b, GGML_TYPE_F32);
        bytes_u64(&b, i ? 32 : 0);
    }
    while (b.n % 32) bytes_u8(&b, 0);
    for (int k = 0; k < 128; k++) bytes_u8(&b, 0);
    expect_error(&b, "overlaps", NULL);
    bytes_free(&b);
    /* duplicate tensor names */
    build_small(&b, 2, 0);
    for (int i = 0; i < 2; i++) {
        bytes_str(&b, "same");
        bytes_u32(&b, 1);
        bytes_u64(&b, 8);
        bytes_u32(&b, GGML_TYPE_F32);
        bytes_u64(&b, (uint64_t)i * 32);
    }
    while (b.n % 32) bytes_u8(&b, 0);
    for (int k = 0; k < 64; k++) bytes_u8(&b, 0);
    expect_error(&b, "duplicate tensor name 'same'", NULL);
    bytes_free(&b);
    /* duplicate keys */
    build_small(&b, 0, 2);
    for (int i = 0; i < 2; i++) {
        bytes_str(&b, "dup.key");
        bytes_u32(&b, GGUF_TYPE_UINT8);
        bytes_u8(&b, 1);
    }
    expect_error(&b, "duplicate metadata key 'dup.key'", NULL);
    bytes_free(&b);
    /* alignment not a power of two, or of the wrong type */
    build_small(&b, 0, 1);
    bytes_str(&b, "general.alignment");
    bytes_u32(&b, GGUF_TYPE_UINT32);
    bytes_u32(&b, 48);
    expect_error(&b, "general.alignment", "power of two");
    bytes_free(&b);
    build_small(&b, 0, 1);
    bytes_str(&b, "general.alignment");
    bytes_u32(&b, GGUF_TYPE_UINT64);
    bytes_u64(&b, 64);
    expect_error(&b, "general.alignment", "must be uint32");
    bytes_free(&b);
    /* a custom alignment is honoured */
    build_small(&b, 1, 1);
    bytes_str(&b, "general.alignment");
    bytes_u32(&b, GGUF_TYPE_UINT32);
    bytes_u32(&b, 64);
    bytes_str(&b, "w");
    bytes_u32(&b, 1);
    bytes_u64(&b, 4);
    bytes_u32(&b, GGML_TYPE_F32);
    bytes_u64(&b, 0);
    size_t hdr = b.n;
    while (b.n % 64) bytes_u8(&b, 0);
    for (int k = 0; k < 16; k++) bytes_u8(&b, (uint8_t)k);
    al_err err;
    gguf_ctx *g = gguf_parse(b.p, b.n, "align.gguf", &err);
    if (!g) fail_msg("%s", err.msg);
    assert_int_equal(g->alignment, 64);
    assert_int_equal(g->data_offset, (hdr + 63) / 64 * 64);
    assert_int_equal(((const uint8_t *)g->tensors[0].data)[3], 3);
    gguf_close(g);
    bytes_free(&b);
}

static void test_nesting_depth_and_nul_names(void **state) {
    (void)state;
    bytes b = {0};
    build_small(&b, 0, 1);
    bytes_str(&b, "deep");
    bytes_u32(&b, GGUF_TYPE_ARRAY);
    for (int d = 0; d < 100; d++) {
        bytes_u32(&b, GGUF_TYPE_ARRAY);
        bytes_u64(&b, 1);
    }
    expect_error(&b, "('deep').value", "nested deeper");
    bytes_free(&b);
    build_small(&b, 0, 1);
    bytes_u64(&b, 3);
    bytes_put(&b, "a\0b", 3);
    bytes_u32(&b, GGUF_TYPE_UINT8);
    bytes_u8(&b, 0);
    expect_error(&b, "metadata[0].key", "NUL");
    bytes_free(&b);
}

static void test_open_errors(void **state) {
    (void)state;
    al_err err;
    assert_null(gguf_open(test_path("does-not-exist.gguf"), &err));
    assert_non_null(strstr(err.msg, "does-not-exist.gguf"));
    assert_null(gguf_open(test_tmpdir(), &err));
    assert_non_null(strstr(err.msg, "not a regular file"));
    test_write_file(test_path("empty.gguf"), "", 0);
    assert_null(gguf_open(test_path("empty.gguf"), &err));
    assert_non_null(strstr(err.msg, "truncated"));
}

/* Every file in the fuzzing regression corpus is handled without a crash. */
static void test_regression_corpus(void **state) {
    (void)state;
    char *list = NULL;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls %s/fuzz/gguf_regressions 2>/dev/null", AIRLOCK_TEST_DATA);
    test_run(cmd, &list);
    int n = 0;
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char path[1024];
        snprintf(path, sizeof path, "%s/fuzz/gguf_regressions/%s", AIRLOCK_TEST_DATA, line);
        size_t len;
        char *data = test_read_file(path, &len);
        al_err err;
        gguf_ctx *g = gguf_parse(data, len, line, &err);
        gguf_close(g);
        free(data);
        n++;
    }
    free(list);
    print_message("regression corpus: %d files\n", n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_real_stories260k),
        cmocka_unit_test(test_real_vocab_files),
        cmocka_unit_test(test_valid_small_and_every_truncation),
        cmocka_unit_test(test_wrong_magic_and_version),
        cmocka_unit_test(test_absurd_counts),
        cmocka_unit_test(test_bad_types),
        cmocka_unit_test(test_bad_tensor_infos),
        cmocka_unit_test(test_overlap_duplicates_alignment),
        cmocka_unit_test(test_nesting_depth_and_nul_names),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_regression_corpus),
    };
    return cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
}
