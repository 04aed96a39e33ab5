/* kernels.c - speed of one matrix product (op_matmul) at a given weight type
 * and shape, for judging a kernel change before and after it.
 *
 * usage: kernels [-T TYPE] [-r ROWS] [-c COLS] [-n TOKENS] [-t THREADS] [-R REPS]
 * Builds a ROWS x COLS matrix of TYPE (Q4_0, Q8_0, Q4_K, Q6_K, Q5_0, ...)
 * from seeded random floats, rearranged as the model loader does (repacked
 * Q4_0 / Q8_0 panels on AVX-512), then times REPS products with TOKENS
 * activation rows. Prints the best time, the weight bytes read per second
 * (the figure that matters when TOKENS is 1: generation) and integer
 * multiply-adds per second (the one that matters for prompts). For a matrix
 * larger than the caches (the default 32768 x 8192) and TOKENS = 1 the bytes
 * per second compare directly with bench/membw.
 *
 * With -g G the same matrix is also repacked as G-row matrices are (-g 8:
 * the 4-row panels on AVX-512, the file's layout on AVX2), and the two layouts are timed call by call in turn
 * (the mean of REPS calls each): on a shared host whose bandwidth drifts
 * by 20% from one second to the next, only such interleaving compares
 * layouts fairly.
 *
 * With -P A,B (policies l1l2, nta, none: kernels/cpu.h) the loader's
 * layout is timed under prefetch policy A and B call by call in turn, the
 * same way; -P A alone sets the policy (default: the processor's).
 *
 * With -L A,B (levels scalar, avx2, avx512, amx: kernels/cpu.h) the same
 * way for two kernel levels that read the same layout (avx512 and amx). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "formats/ggml_types.h"
#include "kernels/cpu.h"
#include "kernels/ops.h"
#include "kernels/qdot.h"
#include "kernels/quantize.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift floats in [-1, 1) */
static float rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)(*s >> 40) / (float)(1 << 23) - 1.0f;
}

int main(int argc, char **argv) {
    const char *tname = "Q4_0";
    int64_t rows = 32768, cols = 8192;
    int nt = 1, threads = 1, reps = 20, huge = 0, group = 0, pf[2] = {-1, -1}, lv[2] = {-1, -1};
    int c;
    while ((c = getopt(argc, argv, "T:r:c:n:t:R:g:P:L:Hh")) != -1) {
        switch (c) {
        case 'T': tname = optarg; break;
        case 'r': rows = atol(optarg); break;
        case 'c': cols = atol(optarg); break;
        case 'n': nt = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'R': reps = atoi(optarg); break;
        case 'H': huge = 1; break;
        case 'g': group = atoi(optarg); break;
        case 'P': {
            char a[16] = "", b[16] = "";
            if (sscanf(optarg, "%15[a-z0-9],%15[a-z0-9]", a, b) < 1 || (pf[0] = cpu_prefetch_parse(a)) < 0 ||
                (b[0] && (pf[1] = cpu_prefetch_parse(b)) < 0)) {
                fprintf(stderr, "kernels: -P %s: policies are l1l2, nta, none\n", optarg);
                return 2;
            }
            break;
        }
        case 'L': {
            char a[16] = "", b[16] = "";
            if (sscanf(optarg, "%15[a-z0-9],%15[a-z0-9]", a, b) != 2 || (lv[0] = cpu_level_parse(a)) < 0 || (lv[1] = cpu_level_parse(b)) < 0) {
                fprintf(stderr, "kernels: -L %s: two levels of scalar, avx2, avx512, amx\n", optarg);
                return 2;
            }
            break;
        }
        default:
            fprintf(stderr, "usage: kernels [-T TYPE] [-r ROWS] [-c COLS] [-n TOKENS] [-t THREADS] [-R REPS] [-g GROUP] [-P POLICY[,POLICY]] "
                            "[-L LEVEL,LEVEL]\n");
            return 2;
        }
    }
    int type = ggml_type_from_name(tname);
    if (type < 0 || rows < 1 || cols < 1 || nt < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "kernels: bad arguments (type %s)\n", tname);
        return 2;
    }
    const ggml_type_info *ti = ggml_type_get((uint32_t)type);
    if (!ti || !quant_can_quantize((uint32_t)type) || cols % ti->block_size) {
        fprintf(stderr, "kernels: cannot make a %s matrix with that many columns\n", tname);
        return 2;
    }
    size_t row_bytes = (size_t)(cols / ti->block_size) * ti->type_size;
    size_t bytes = row_bytes * (size_t)rows;
    uint8_t *wq = NULL, *wr = NULL;
    float *src = malloc((size_t)cols * sizeof(float));
    float *x = malloc((size_t)nt * (size_t)cols * sizeof(float));
    float *out = malloc((size_t)nt * (size_t)rows * sizeof(float));
    if (!src || !x || !out || posix_memalign((void **)&wq, 64, bytes) || posix_memalign((void **)&wr, 2 << 20, bytes)) {
        fprintf(stderr, "kernels: out of memory\n");
        return 1;
    }
    uint64_t seed = 0x9E3779B97F4A7C15u;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < cols; i++) src[i] = rnd(&seed);
        quantize_row((uint32_t)type, src, wq + (size_t)r * row_bytes, cols);
    }
    for (size_t i = 0; i < (size_t)nt * (size_t)cols; i++) x[i] = rnd(&seed);
    weight w = {.type = (uint32_t)type, .n_cols = cols, .n_rows = rows, .row_bytes = row_bytes, .data = wq};
    uint32_t rt = qdot_repack_type_at((uint32_t)type, rows, cols, cpu_level_get());
    if (huge) madvise(wr, bytes, MADV_HUGEPAGE);
    if (rt) {
        qdot_repack_as(rt, (uint32_t)type, wq, wr, rows, cols);
        w.type = rt;
    } else {
        memcpy(wr, wq, bytes);
    }
    w.data = wr;
    if (ops_set_threads(threads)) return 1;
    /* the layout the loader picks and, with -g, a second one, timed call by call in turn */
    weight w2 = w;
    const weight *ws[2] = {&w, &w2};
    int nv = 1;
    uint8_t *wr2 = NULL;
    if ((group > 0) + (pf[1] >= 0) + (lv[0] >= 0) > 1) {
        fprintf(stderr, "kernels: -g, -P A,B and -L A,B each compare two ways: give one\n");
        return 2;
    }
    /* each variant's kernel level: -L, else the one in use */
    cpu_level vlv[2] = {cpu_level_get(), cpu_level_get()};
    if (lv[0] >= 0) {
        for (int v = 0; v < 2; v++) {
            if ((int)cpu_level_set((cpu_level)lv[v]) != lv[v]) {
                fprintf(stderr, "kernels: -L: this processor has no %s\n", cpu_level_name((cpu_level)lv[v]));
                return 2;
            }
            vlv[v] = (cpu_level)lv[v];
            if (qdot_repack_type_at((uint32_t)type, rows, cols, vlv[v]) != rt) {
                fprintf(stderr, "kernels: -L: %s reads another layout of this matrix\n", cpu_level_name(vlv[v]));
                return 2;
            }
        }
        nv = 2;
    }
    /* each variant's prefetch policy: -P, else the processor's */
    cpu_prefetch vpf[2] = {pf[0] >= 0 ? (cpu_prefetch)pf[0] : cpu_prefetch_get(), pf[1] >= 0 ? (cpu_prefetch)pf[1] : cpu_prefetch_get()};
    if (pf[1] >= 0) nv = 2;
    if (group > 0) {
        uint32_t rt2 = qdot_repack_type_at((uint32_t)type, group, cols, cpu_level_get());
        if (!rt || rows % group) {
            fprintf(stderr, "kernels: -g %d: no second repacked layout for this type and shape\n", group);
            return 2;
        }
        if (posix_memalign((void **)&wr2, 2 << 20, bytes)) {
            fprintf(stderr, "kernels: out of memory\n");
            return 1;
        }
        if (huge) madvise(wr2, bytes, MADV_HUGEPAGE);
        if (rt2)
            for (int64_t r = 0; r < rows; r += group)
                qdot_repack_as(rt2, (uint32_t)type, wq + (size_t)r * row_bytes, wr2 + (size_t)r * row_bytes, group, cols);
        else memcpy(wr2, wq, bytes); /* no panels for that many rows at this level: the file's layout */
        w2.type = rt2 ? rt2 : (uint32_t)type;
        w2.data = wr2;
        nv = 2;
    }
    double best[2] = {1e30, 1e30}, total[2] = {0, 0};
    for (int r = 0; r <= reps; r++) /* the first round is a warm-up */
        for (int v = 0; v < nv; v++) {
            cpu_prefetch_set(vpf[v]);
            cpu_level_set(vlv[v]);
            double t0 = now_s();
            if (op_matmul(out, ws[v], x, nt)) return 1;
            double dt = now_s() - t0;
            if (r && dt < best[v]) best[v] = dt;
            if (r) total[v] += dt;
        }
    for (int v = 0; v < nv; v++) {
        /* one layout: the best call; two: the mean of each (the figure the drift affects alike) */
        double t = nv == 2 ? total[v] / reps : best[v];
        char layout[64] = "";
        if (nv == 2 && group > 0) snprintf(layout, sizeof layout, ", panels of %d rows, mean", qdot_panel_rows(ws[v]->type));
        else if (nv == 2 && lv[0] < 0) snprintf(layout, sizeof layout, ", prefetch %s, mean", cpu_prefetch_name(vpf[v]));
        else if (nv == 2) snprintf(layout, sizeof layout, ", mean");
        printf("%s %s %lldx%lld tokens %d threads %d%s: %.3f ms  %.2f GB/s weights  %.1f GMAC/s\n", tname, cpu_level_name(vlv[v]), (long long)rows, (long long)cols, nt, threads, layout, t * 1e3,
               (double)bytes / t / 1e9, (double)rows * (double)cols * nt / t / 1e9);
    }
    free(wr2);
    free(src);
    free(x);
    free(out);
    free(wq);
    free(wr);
    return 0;
}
