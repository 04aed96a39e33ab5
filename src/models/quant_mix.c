/* quant_mix.c - per-tensor type rules of the quantized file types. */
#include "models/quant_mix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "formats/ggml_types.h"

enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9, FT_Q2_K = 10,
    FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15, FT_Q5_K_S = 16, FT_Q5_K_M = 17,
    FT_Q6_K = 18, FT_BF16 = 32
};

static const quant_mix k_mixes[] = {
    {"F32", FT_F32, GGML_TYPE_F32},       {"F16", FT_F16, GGML_TYPE_F16},       {"BF16", FT_BF16, GGML_TYPE_BF16},
    {"Q8_0", FT_Q8_0, GGML_TYPE_Q8_0},    {"Q4_0", FT_Q4_0, GGML_TYPE_Q4_0},    {"Q4_1", FT_Q4_1, GGML_TYPE_Q4_1},
    {"Q5_0", FT_Q5_0, GGML_TYPE_Q5_0},    {"Q5_1", FT_Q5_1, GGML_TYPE_Q5_1},    {"Q2_K", FT_Q2_K, GGML_TYPE_Q2_K},
    {"Q3_K_S", FT_Q3_K_S, GGML_TYPE_Q3_K}, {"Q3_K_M", FT_Q3_K_M, GGML_TYPE_Q3_K}, {"Q3_K_L", FT_Q3_K_L, GGML_TYPE_Q3_K},
    {"Q4_K_S", FT_Q4_K_S, GGML_TYPE_Q4_K}, {"Q4_K_M", FT_Q4_K_M, GGML_TYPE_Q4_K}, {"Q5_K_S", FT_Q5_K_S, GGML_TYPE_Q5_K},
    {"Q5_K_M", FT_Q5_K_M, GGML_TYPE_Q5_K}, {"Q6_K", FT_Q6_K, GGML_TYPE_Q6_K},
};

const quant_mix *quant_mix_find(const char *name) {
    for (size_t i = 0; i < sizeof k_mixes / sizeof k_mixes[0]; i++)
        if (strcasecmp(k_mixes[i].name, name) == 0) return &k_mixes[i];
    /* plain type names that are not file types: Q3_K -> Q3_K_M etc. */
    if (strcasecmp(name, "Q3_K") == 0) return quant_mix_find("Q3_K_M");
    if (strcasecmp(name, "Q4_K") == 0) return quant_mix_find("Q4_K_M");
    if (strcasecmp(name, "Q5_K") == 0) return quant_mix_find("Q5_K_M");
    return NULL;
}

const char *quant_mix_names(void) {
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K";
}

static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool is_quantized(uint32_t t) { return t != GGML_TYPE_F32 && t != GGML_TYPE_F16 && t != GGML_TYPE_BF16; }

uint32_t quant_mix_tensor_type(const quant_mix *mix, const quant_mix_model *m, const char *name, int64_t ne0, int n_dims) {
    uint32_t t = mix->base;
    if (n_dims < 2 || !ends_with(name, ".weight") || strstr(name, "_norm.weight") || strcmp(name, "rope_freqs.weight") == 0)
        return GGML_TYPE_F32;
    if (!is_quantized(t)) return t;
    uint32_t ft = mix->file_type;
    int layer = -1;
    if (sscanf(name, "blk.%d.", &layer) != 1) layer = -1;
    int n = m->n_layer;
    if (strcmp(name, "output.weight") == 0 || (!m->has_output && strcmp(name, "token_embd.weight") == 0)) {
        if (ne0 % 256 != 0) t = GGML_TYPE_Q8_0;
        else if (t != GGML_TYPE_Q8_0) t = GGML_TYPE_Q6_K;
    } else if (strcmp(name, "token_embd.weight") == 0) {
        /* base type */
    } else if (strstr(name, "attn_v.weight")) {
        if (ft == FT_Q2_K) t = m->n_gqa >= 4 ? GGML_TYPE_Q4_K : GGML_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = layer < 2 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = GGML_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(layer, n)) t = GGML_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && layer < 4) t = GGML_TYPE_Q5_K;
    } else if (strstr(name, "ffn_down")) {
        if (ft == FT_Q2_K) t = GGML_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = layer < n / 16 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = GGML_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(layer, n)) t = GGML_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && layer < n / 8) t = GGML_TYPE_Q5_K;
    } else if (strstr(name, "attn_output.weight")) {
        if (ft == FT_Q2_K) t = GGML_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = GGML_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = GGML_TYPE_Q5_K;
    }
    /* rows that are not whole 256-blocks fall back to a 32-block type */
    const ggml_type_info *ti = ggml_type_get(t);
    if (ne0 % ti->block_size != 0) {
        switch (t) {
        case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: t = GGML_TYPE_Q4_0; break;
        case GGML_TYPE_Q4_K: t = GGML_TYPE_Q5_0; break;
        case GGML_TYPE_Q5_K: t = GGML_TYPE_Q5_1; break;
        case GGML_TYPE_Q6_K: t = GGML_TYPE_Q8_0; break;
        default: break;
        }
        if (ne0 % ggml_type_get(t)->block_size != 0) t = GGML_TYPE_F16;
    }
    return t;
}
