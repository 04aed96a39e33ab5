/* sampler.c - time of one sampler_sample call over a vocabulary of
 * Qwen's size (151936), for the sampling settings people use: the CLI's
 * defaults, the server's (OpenAI semantics: temperature only), top-p alone,
 * min-p alone, and greedy picking (temperature 0: op_argmax). The logits
 * are seeded pseudo-random values spread evenly over [-8, 8) (flatter than
 * a real model's, so top-p keeps many tokens: a hard case).
 *
 * AIRLOCK_CPU=scalar|avx2|avx512 picks the kernels' level (kernels/cpu.h).
 *
 * usage: sampler [-n VOCAB] [-R CALLS] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "models/sampler.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int n = 151936, calls = 50, c;
    while ((c = getopt(argc, argv, "n:R:")) != -1) {
        switch (c) {
        case 'n': n = atoi(optarg); break;
        case 'R': calls = atoi(optarg); break;
        default: fprintf(stderr, "usage: sampler [-n VOCAB] [-R CALLS]\n"); return 2;
        }
    }
    if (n < 2 || calls < 1) {
        fprintf(stderr, "sampler: bad arguments\n");
        return 2;
    }
    float *logits = malloc(sizeof(float) * (size_t)n);
    if (!logits) return 1;
    uint64_t r = 1;
    for (int i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)((r >> 40) & 0xFFFF) / 4096.0f - 8.0f;
    }
    struct {
        const char *name;
        float temperature, top_p, min_p;
        int top_k;
    } cases[] = {{"CLI defaults (T 0.8, top-k 40, top-p 0.95, min-p 0.05)", 0.8f, 0.95f, 0.05f, 40},
                 {"server defaults (T 1, no truncation)", 1.0f, 1.0f, 0.0f, 0},
                 {"T 1, top-p 0.9", 1.0f, 0.9f, 0.0f, 0},
                 {"T 0.7, min-p 0.05", 0.7f, 1.0f, 0.05f, 0},
                 {"greedy (T 0)", 0.0f, 1.0f, 0.0f, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sampler_params p = sampler_default_params();
        p.temperature = cases[k].temperature;
        p.top_k = cases[k].top_k;
        p.top_p = cases[k].top_p;
        p.min_p = cases[k].min_p;
        sampler *s = sampler_init(&p, n);
        if (!s) return 1;
        long sink = 0;
        double t0 = now_s();
        for (int i = 0; i < calls; i++) sink += sampler_sample(s, logits);
        double dt = (now_s() - t0) / calls;
        printf("%-56s %8.3f ms a token (vocabulary %d; checksum %ld)\n", cases[k].name, dt * 1e3, n, sink);
        sampler_free(s);
    }
    free(logits);
    return 0;
}
