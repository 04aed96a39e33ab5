/* qdot_tile.h - shared by the SIMD kernel files: walks an nr x nt range of
 * outputs in tiles of at most 4 x 4, calling a tile function instantiated
 * with constant sizes (so its register arrays stay in registers). */
#ifndef AIRLOCK_KERNELS_QDOT_TILE_H
#define AIRLOCK_KERNELS_QDOT_TILE_H

#include <stddef.h>
#include <stdint.h>

#include <xmmintrin.h>

#include "formats/ggml_types.h"
#include "kernels/cpu.h"
#include "kernels/qdot.h"

/* Bytes per block of the types the integer kernels handle. */
static inline size_t qdot_block_bytes(uint32_t wtype) {
    switch (wtype) {
    case GGML_TYPE_Q4_0: return 18;
    case GGML_TYPE_Q5_0: return 22;
    case GGML_TYPE_Q8_0: return 34;
    case GGML_TYPE_Q4_K: return 144;
    case GGML_TYPE_Q6_K: return 210;
    default: return 0;
    }
}

/* How far ahead of a sequential stream of weights (a panel matrix, or a
 * run of consecutive rows) to prefetch, in bytes, under each policy
 * (kernels/cpu.h). CPU_PREFETCH_L1_L2: into L2 far ahead, into L1 near;
 * there the hardware prefetcher alone kept too few lines in flight for one
 * core to reach the memory's bandwidth. bench/kernels, Q4_0R 32768 x 8192,
 * one thread, median of 5 alternating runs (membw: 14.9 GB/s): L1 only,
 * 8 KB ahead 12.3 GB/s, 4 KB 11.3, 16 KB into L2 12.2; L1 2 KB + L2 18 KB
 * 14.0, 1 KB + 17 KB 12.5, 2 KB + 10 KB 13.4, 2 KB + 34 KB 13.5, 4 KB + 20
 * KB 13.7; two threads 22.0 -> 26.0 GB/s (membw 25.0). CPU_PREFETCH_NTA
 * (AMD Zen 5, session 10): one non-temporal hint 4 KB ahead; against the
 * L1+L2 pair, call by call in one process, decode of a 32768 x 4096
 * matrix went 1.25-1.43x faster for Q4_0, 1.22-1.25x Q8_0, 1.20-1.26x
 * Q4_K, 1.10-1.26x Q6_K (2 KB ahead: 1.06-1.39x). */
#define PREFETCH_L1_AHEAD 2048
#define PREFETCH_L2_AHEAD (2048 + 16384)
#define PREFETCH_NTA_AHEAD 4096

/* Prefetches the len bytes of a stream ahead of p as cpu_prefetch_mode
 * says. The addresses may lie past the matrix (a hint never faults): they
 * are computed as integers, not by pointer arithmetic beyond the object. */
static inline __attribute__((always_inline)) void prefetch_stream(const uint8_t *p, size_t len) {
    uintptr_t a = (uintptr_t)p;
    if (cpu_prefetch_mode == CPU_PREFETCH_NTA) {
        for (size_t o = 0; o < len; o += 64) _mm_prefetch((const char *)(a + PREFETCH_NTA_AHEAD + o), _MM_HINT_NTA);
    } else if (cpu_prefetch_mode == CPU_PREFETCH_L1_L2) {
        for (size_t o = 0; o < len; o += 64) {
            _mm_prefetch((const char *)(a + PREFETCH_L1_AHEAD + o), _MM_HINT_T0);
            _mm_prefetch((const char *)(a + PREFETCH_L2_AHEAD + o), _MM_HINT_T1);
        }
    }
}

/* As prefetch_stream, but under CPU_PREFETCH_L1_L2 each line's pair of
 * hints follows a fresh (volatile) read of the policy and a branch on it,
 * which paces the hints among the kernel's own loads instead of issuing
 * them in one burst. Used by the one-token tiles of the 16-row panels and
 * 64-row groups of Q4_0, Q5_0 and Q8_0 (tiles of more tokens re-read a
 * panel from cache, where the pacing only costs: a Q8_0 pp512 fell from
 * 1.18x llama.cpp's to 1.02x with it). Measured on the Intel Xeon of session 20 against
 * prefetch_stream, same hints at the same distances, bench/decode_bound
 * in alternation (share of the read bound then, 1 / 2 threads):
 * llama-3.2-1b Q4_0 84% -> 92% / 79% -> 89%, qwen2.5-0.5b Q4_K_M (mostly
 * Q5_0) 77% -> 92% / 75% -> 88%, llama-3.2-1b Q8_0 87% -> 100% / 87% ->
 * 96% (bench/RESULTS.md). The one-token Q4_K and Q6_K panel tiles call
 * it line by line (or per quad's three lines) just before the loads, which
 * on the same Xeon in session 22 took llama-3.2-1b Q4_K_M from 79-83% to
 * 88-91% of the read bound at one thread and 80-82% to 86-88% at two
 * (bench/decode_bound, old and new builds in alternation; their earlier
 * hints, all of a step's near ones then all its far ones at the step's
 * start, had themselves beaten hints interleaved in one burst, 72% ->
 * 85%). The same hints per line without the fresh read measured below the
 * old ones (Q4_K 15.2 against 15.9 GB/s, bench/kernels from memory). The
 * mechanism is not confirmed: that VM has no performance counters. */
static inline __attribute__((always_inline)) void prefetch_stream_paced(const uint8_t *p, size_t len) {
    if (cpu_prefetch_mode != CPU_PREFETCH_L1_L2) {
        prefetch_stream(p, len);
        return;
    }
    uintptr_t a = (uintptr_t)p;
    for (size_t o = 0; o < len; o += 64)
        if (*(volatile cpu_prefetch *)&cpu_prefetch_mode == CPU_PREFETCH_L1_L2) {
            _mm_prefetch((const char *)(a + PREFETCH_L1_AHEAD + o), _MM_HINT_T0);
            _mm_prefetch((const char *)(a + PREFETCH_L2_AHEAD + o), _MM_HINT_T1);
        }
}

/* The scale of an activation block whose largest magnitude is amax (values
 * become round(x / d) in [-127, 127]) and its inverse in *id (0 for an
 * all-zero block): one definition, so every level quantizes to the same
 * bytes. */
static inline float qdot_q8_scale(float amax, float *id) {
    float d = amax / 127.0f;
    *id = d > 0 ? 1.0f / d : 0.0f;
    return d;
}

#define TILE_WALK(NAME, TILE, RT, TT)                                                                                     \
    static void NAME(uint32_t wtype, const uint8_t *w, size_t w_stride, const uint8_t *act, size_t act_stride, int64_t n, \
                     float *out, size_t ldo, int nr, int nt, float *scratch) {                                           \
        (void)scratch;                                                                                                    \
        (void)wtype;                                                                                                    \
        for (int r = 0; r < nr; r += RT) {                                                                                \
            int rr = nr - r < RT ? nr - r : RT;                                                                           \
            for (int t = 0; t < nt; t += TT) {                                                                            \
                int tt = nt - t < TT ? nt - t : TT;                                                                       \
                const uint8_t *wp = w + (size_t)r * w_stride, *ap = act + (size_t)t * act_stride;                        \
                float *op = out + (size_t)t * ldo + (size_t)r;                                                            \
                switch ((rr - 1) * 4 + (tt - 1)) {                                                                        \
                case 0: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 1, 1); break;                               \
                case 1: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 1, 2); break;                               \
                case 2: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 1, 3); break;                               \
                case 3: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 1, 4); break;                               \
                case 4: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 2, 1); break;                               \
                case 5: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 2, 2); break;                               \
                case 6: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 2, 3); break;                               \
                case 7: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 2, 4); break;                               \
                case 8: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 3, 1); break;                               \
                case 9: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 3, 2); break;                               \
                case 10: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 3, 3); break;                              \
                case 11: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 3, 4); break;                              \
                case 12: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 4, 1); break;                              \
                case 13: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 4, 2); break;                              \
                case 14: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 4, 3); break;                              \
                default: TILE(wtype, wp, w_stride, ap, act_stride, n, op, ldo, 4, 4); break;                              \
                }                                                                                                         \
            }                                                                                                             \
        }                                                                                                                 \
    }


#endif
