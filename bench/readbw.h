/* readbw.h - the streaming read loops behind the bandwidth bound
 * (bench/membw.c, bench/decode_bound.c). */
#ifndef AIRLOCK_BENCH_READBW_H
#define AIRLOCK_BENCH_READBW_H

#include <stddef.h>
#include <stdint.h>

/* A software prefetch distance tried: ahead bytes (0 for none), into L1
 * or non-temporal; with far > 0, also a hint into L2 far bytes ahead for
 * each line, each pair after a read of a volatile flag and a branch on it
 * (the hints and pacing of the kernels' CPU_PREFETCH_L1_L2 streams,
 * kernels/qdot_tile.h, which read faster than any single hint on the
 * Intel Xeon of session 20). */
typedef struct readbw_ahead {
    size_t ahead;
    int nta;
    size_t far;
} readbw_ahead;

/* The distances tried (the hints the kernels' prefetch policies use,
 * kernels/cpu.h); the bound is the best of them. */
#define READBW_N_AHEAD 9
extern const readbw_ahead readbw_aheads[READBW_N_AHEAD];

/* Reads the n bytes at p once (whole 256-byte steps) with the widest loads
 * the processor has (512-bit, 256-bit with AVX2 only, else 64-bit) and
 * the given prefetch (readbw_ahead's fields); returns a sum of them, for
 * the caller to keep so the loads are not optimized away. */
double readbw_sum(const uint8_t *p, size_t n, size_t ahead, int nta, size_t far);

/* The median of the n values at v (sorted in place). */
double readbw_median(double *v, size_t n);

#endif
