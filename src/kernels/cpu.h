/* cpu.h - which SIMD instruction sets the kernels may use.
 *
 * One binary carries scalar, AVX2+FMA and AVX-512 (F, BW, VL, DQ, VNNI)
 * kernels; cpu_level() picks the best the processor supports. The
 * environment variable AIRLOCK_CPU=scalar|avx2|avx512 lowers it (tests use
 * this to run every variant; asking for more than the CPU has is clamped). */
#ifndef AIRLOCK_KERNELS_CPU_H
#define AIRLOCK_KERNELS_CPU_H

typedef enum cpu_level { CPU_LEVEL_SCALAR = 0, CPU_LEVEL_AVX2 = 1, CPU_LEVEL_AVX512 = 2 } cpu_level;

/* The best level this processor supports. */
cpu_level cpu_level_max(void);
/* The level kernels use now (cpu_level_max, lowered by AIRLOCK_CPU). */
cpu_level cpu_level_get(void);
/* Sets the level (clamped to cpu_level_max). Returns the level in effect.
 * Not thread-safe: call between computations. */
cpu_level cpu_level_set(cpu_level l);
const char *cpu_level_name(cpu_level l);
/* Parses "scalar", "avx2", "avx512". Returns -1 when unknown. */
int cpu_level_parse(const char *s);

#endif
