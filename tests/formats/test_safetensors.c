/* test_safetensors.c - the safetensors reader accepts well-formed files
 * (bytes laid out by hand from the format's description) and rejects
 * hostile headers with a message naming the problem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "kernels/fp16.h"
#include "kernels/quants.h"
#include "test_util.h"

/* A file image: 8-byte header length, the header, then data bytes. */
static bytes image(const char *header, const void *data, size_t n) {
    bytes b = {0};
    bytes_u64(&b, strlen(header));
    bytes_put(&b, header, strlen(header));
    if (n) bytes_put(&b, data, n);
    return b;
}

static void test_valid(void **state) {
    (void)state;
    float f[3] = {1.5f, -2.0f, 0.25f};
    uint16_t h[2] = {fp32_to_fp16(3.0f), fp32_to_bf16(-0.5f)};
    uint8_t data[16];
    memcpy(data, f, 12);
    memcpy(data + 12, h, 4);
    bytes b = image("{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                    "\"h\":{\"dtype\":\"F16\",\"shape\":[1,1],\"data_offsets\":[12,14]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[14,16]},"
                    "\"s\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}   ",
                    data, sizeof data);
    al_err err;
    st_file *s = st_parse(b.p, b.n, "ok.safetensors", &err);
    if (!s) fail_msg("%s", err.msg);
    assert_int_equal(s->n_tensors, 4);
    const st_tensor *w = st_find(s, "w"), *hh = st_find(s, "h"), *bb = st_find(s, "b");
    assert_non_null(w);
    assert_int_equal(w->dtype, ST_DTYPE_F32);
    assert_int_equal(w->n_dims, 1);
    assert_int_equal(w->shape[0], 3);
    float out[3];
    assert_int_equal(st_dtype_ggml(w->dtype), GGML_TYPE_F32);
    dequantize_row(GGML_TYPE_F32, w->data, out, 3);
    assert_memory_equal(out, f, 12);
    assert_int_equal(hh->n_dims, 2);
    assert_int_equal(st_dtype_ggml(hh->dtype), GGML_TYPE_F16);
    dequantize_row(GGML_TYPE_F16, hh->data, out, 1);
    assert_true(out[0] == 3.0f);
    assert_int_equal(st_dtype_ggml(bb->dtype), GGML_TYPE_BF16);
    dequantize_row(GGML_TYPE_BF16, bb->data, out, 1);
    assert_true(out[0] == -0.5f);
    assert_null(st_find(s, "__metadata__"));
    st_close(s);
    bytes_free(&b);
}

/* Each hostile header must fail with a message containing `expect`. */
static void reject(const char *header, size_t data_len, const char *expect) {
    uint8_t *data = calloc(data_len + 1, 1);
    bytes b = image(header, data, data_len);
    al_err err;
    st_file *s = st_parse(b.p, b.n, "bad.safetensors", &err);
    if (s) fail_msg("accepted: %s", header);
    if (!strstr(err.msg, expect)) fail_msg("for %s\n  message '%s' lacks '%s'", header, err.msg, expect);
    assert_non_null(strstr(err.msg, "bad.safetensors"));
    bytes_free(&b);
    free(data);
}

static void test_hostile_headers(void **state) {
    (void)state;
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "header JSON");
    reject("[1,2,3]", 0, "JSON object");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the end");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           12, "overlap");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes");
    reject("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "increasing");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "increasing");
    reject("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    reject("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "shape");
    reject("{\"a\":7}", 8, "not an object");
    reject("{\"__metadata__\":[1]}", 0, "__metadata__");
    reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           4, "duplicate");

    /* header length fields that lie */
    al_err err;
    uint8_t tiny[5] = {1, 2, 3, 4, 5};
    assert_null(st_parse(tiny, sizeof tiny, "bad.safetensors", &err));
    assert_non_null(strstr(err.msg, "too short"));
    bytes b = {0};
    bytes_u64(&b, 1000);
    bytes_put(&b, "{}", 2);
    assert_null(st_parse(b.p, b.n, "bad.safetensors", &err));
    assert_non_null(strstr(err.msg, "past the end of the file"));
    bytes_free(&b);
    bytes_u64(&b, (uint64_t)1 << 62);
    bytes_put(&b, "{}", 2);
    assert_null(st_parse(b.p, b.n, "bad.safetensors", &err));
    assert_non_null(strstr(err.msg, "exceeds"));
    bytes_free(&b);
}

static void test_open_file(void **state) {
    (void)state;
    al_err err;
    assert_null(st_open(test_path("missing.safetensors"), &err));
    assert_non_null(strstr(err.msg, "missing.safetensors"));
    float v[2] = {1, 2};
    bytes b = image("{\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", v, 8);
    test_write_file(test_path("v.safetensors"), b.p, b.n);
    bytes_free(&b);
    st_file *s = st_open(test_path("v.safetensors"), &err);
    if (!s) fail_msg("%s", err.msg);
    assert_int_equal(s->n_tensors, 1);
    float got;
    memcpy(&got, (const uint8_t *)s->tensors[0].data + 4, 4); /* data need not be aligned: the header length is arbitrary */
    assert_true(got == 2.0f);
    st_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_hostile_headers),
                                       cmocka_unit_test(test_open_file)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
