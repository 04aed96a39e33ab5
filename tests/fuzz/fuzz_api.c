/* fuzz_api.c - libFuzzer target: arbitrary request bodies through the
 * server's OpenAI request parser (chat, completions, infill; the first byte
 * picks which) against the real stories260K model, then the response
 * renderers with the input bytes as generated text (invalid UTF-8 included). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static engine *g_engine;

static void load(void) {
    static int done;
    if (done) return;
    done = 1;
    const char *dir = getenv("AIRLOCK_MODELS");
    char path[1024];
    snprintf(path, sizeof path, "%s/llm/stories260K.gguf", dir && *dir ? dir : AIRLOCK_MODELS_DIR);
    engine_config ec = {.n_slots = 1, .n_ctx = 256, .n_batch = 64, .queue_max = 1, .kv = KV_F32};
    al_err err;
    g_engine = engine_init(&ec, NULL, &err);
    if (g_engine && engine_add_model(g_engine, "stories", path, "chatml", &err)) {
        fprintf(stderr, "fuzz_api: %s\n", err.msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load();
    if (!g_engine || size < 1) return 0;
    api_kind kind = data[0] % 3 == 0 ? API_COMPLETION : data[0] % 3 == 1 ? API_CHAT : API_INFILL;
    api_request r;
    api_error err;
    strbuf out = {0};
    if (api_parse(g_engine, kind, (const char *)data + 1, size - 1, &r, &err) == 0) {
        gen_token t = {.id = r.prompt.ids[0], .logprob = -1.0f, .n_top = 1, .top_id = {r.prompt.ids[0]}, .top_lp = {-1.0f}};
        gen_read res = {.finish = GEN_FINISH_STOP, .stats = {.n_prompt = (int)r.prompt.n}};
        api_render_final(g_engine, &r, (const char *)data + 1, size - 1, &t, 1, &res, &out);
        api_render_chunk(g_engine, &r, (const char *)data + 1, size - 1, &t, 1, GEN_RUNNING, true, &out);
        api_render_stream_end(g_engine, &r, &res, &out);
        api_request_free(&r);
    } else {
        if (err.status < 400 || err.status > 599) abort(); /* every failure is an HTTP error */
        api_render_error(&err, &out);
    }
    strbuf_free(&out);
    return 0;
}
