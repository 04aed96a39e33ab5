/* attn.c - speed of the attention kernel (kernels/attn.h) for one key head:
 * a tile of query rows (tokens x the group's heads) over a context of
 * keys, for judging a kernel change before and after it.
 *
 * usage: attn [-H HEADS] [-d HEAD_DIM] [-k KEYS] [-n TOKENS] [-L LAYERS] [-R REPS]
 * Times REPS calls with TOKENS tokens (token i sees KEYS + i keys) of
 * HEADS query heads of HEAD_DIM (defaults: 7 heads of 64, qwen2.5-0.5b's
 * group; 4096 keys; 1 token, as in generation). With -L the calls walk
 * LAYERS separate key/value caches in turn, as a forward pass does, so
 * that with enough of them the keys come from memory rather than from
 * cache. Prints the best and median time per call, the floating-point
 * rate (2 x HEAD_DIM multiply-adds per row and key: the scores and the
 * value sums) and the key/value bytes read per second. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kernels/attn.h"
#include "kernels/cpu.h"
#include "kernels/fp16.h"
#include "readbw.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int nh = 7, hd = 64, keys = 4096, n_tok = 1, layers = 1, reps = 50, opt;
    while ((opt = getopt(argc, argv, "H:d:k:n:L:R:")) != -1) {
        switch (opt) {
        case 'H': nh = atoi(optarg); break;
        case 'd': hd = atoi(optarg); break;
        case 'k': keys = atoi(optarg); break;
        case 'n': n_tok = atoi(optarg); break;
        case 'L': layers = atoi(optarg); break;
        case 'R': reps = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: attn [-H HEADS] [-d HEAD_DIM] [-k KEYS] [-n TOKENS] [-L LAYERS] [-R REPS]\n");
            return 2;
        }
    }
    attn_f16_fn fn = attn_f16_get(cpu_level_get());
    if (!fn) {
        fprintf(stderr, "attn: this processor has no attention kernel (AVX-512 needed)\n");
        return 1;
    }
    if (hd % 16 || hd < 16 || hd > ATTN_MAX_HD || nh < 1 || nh > ATTN_MAX_HEADS || keys < 1 || n_tok < 1 ||
        n_tok > attn_max_tokens(nh, hd) || layers < 1 || reps < 1) {
        fprintf(stderr, "attn: out of range: need hd %% 16 == 0, hd <= %d, heads 1..%d, tokens 1..%d, keys, layers, reps >= 1\n",
                ATTN_MAX_HD, ATTN_MAX_HEADS, attn_max_tokens(nh, hd) > 0 ? attn_max_tokens(nh, hd) : 1);
        return 2;
    }
    const size_t total = (size_t)keys + (size_t)n_tok - 1, per_layer = total * (size_t)hd, rows = (size_t)n_tok * (size_t)nh * (size_t)hd;
    /* the caches in 2 MiB-aligned memory with huge pages, as llm_ctx_init
     * allocates them */
    const size_t huge = (size_t)2 << 20, kv_bytes = (sizeof(uint16_t) * per_layer * 2 * (size_t)layers + huge - 1) & ~(huge - 1);
    void *kv_mem = NULL;
    if (posix_memalign(&kv_mem, huge, kv_bytes)) kv_mem = NULL;
    if (kv_mem) madvise(kv_mem, kv_bytes, MADV_HUGEPAGE);
    uint16_t *kv = kv_mem;
    float *q = malloc(sizeof(float) * rows), *out = malloc(sizeof(float) * rows);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!kv || !q || !out || !t) {
        fprintf(stderr, "attn: out of memory\n");
        return 1;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < per_layer * 2 * (size_t)layers; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        kv[i] = fp32_to_fp16((float)(rng >> 40) / 16777216.0f * 2.0f - 1.0f);
    }
    for (size_t i = 0; i < rows; i++) q[i] = (float)(i % 17) / 17.0f - 0.5f;
    attn_f16_tile a = {.q = q, .q_stride = (size_t)nh * (size_t)hd, .out = out, .out_stride = (size_t)nh * (size_t)hd,
                       .n_tok = n_tok, .nh = nh, .hd = hd, .n_keys = keys, .scale = 0.125f};
    for (int r = -1; r < reps; r++) { /* one untimed call first */
        const uint16_t *k = kv + (size_t)((r + layers) % layers) * 2 * per_layer;
        a.k = k;
        a.v = k + per_layer;
        double t0 = now_s();
        fn(&a);
        if (r >= 0) t[r] = now_s() - t0;
    }
    const double med = readbw_median(t, (size_t)reps); /* sorts t */
    const double flops = 4.0 * (double)hd * (double)nh * ((double)n_tok * (double)keys + (double)n_tok * (n_tok - 1) / 2.0);
    const double bytes = 2.0 * (double)per_layer * sizeof(uint16_t);
    printf("heads %d hd %d keys %d tokens %d layers %d: best %.2f us, median %.2f us, %.1f GFLOP/s, %.2f GB/s of keys and values (median)\n",
           nh, hd, keys, n_tok, layers, t[0] * 1e6, med * 1e6, flops / med * 1e-9, bytes / med * 1e-9);
    free(kv);
    free(q);
    free(out);
    free(t);
    return 0;
}
