/* cpu.h - which SIMD instruction sets the kernels may use.
 *
 * One binary carries scalar, AVX2+FMA and AVX-512 (F, BW, VL, DQ, VNNI)
 * kernels, and for batched Q8_0, Q4_0, Q5_0, Q4_K and Q6_K products Intel
 * AMX (AMX-TILE, AMX-INT8, on top of that AVX-512); cpu_level() picks the
 * best the processor and the operating system support. The environment variable
 * AIRLOCK_CPU=scalar|avx2|avx512|amx lowers it (tests use this to run every
 * variant; asking for more than the CPU has is clamped). */
#ifndef AIRLOCK_KERNELS_CPU_H
#define AIRLOCK_KERNELS_CPU_H

typedef enum cpu_level { CPU_LEVEL_SCALAR = 0, CPU_LEVEL_AVX2 = 1, CPU_LEVEL_AVX512 = 2, CPU_LEVEL_AMX = 3 } cpu_level;

/* The best level this processor supports. */
cpu_level cpu_level_max(void);
/* The level kernels use now (cpu_level_max, lowered by AIRLOCK_CPU). */
cpu_level cpu_level_get(void);
/* Sets the level (clamped to cpu_level_max). Returns the level in effect.
 * Not thread-safe: call between computations. */
cpu_level cpu_level_set(cpu_level l);
const char *cpu_level_name(cpu_level l);
/* Parses "scalar", "avx2", "avx512", "amx". Returns -1 when unknown. */
int cpu_level_parse(const char *s);

/* How the streaming kernels (qdot_tile.h) ask for weights before they use
 * them. Which is fastest depends on the processor's own prefetchers
 * (bench/RESULTS.md, "session 10"): CPU_PREFETCH_L1_L2 (2 KB ahead into
 * L1 and 18 KB ahead into L2) was best on the hosts it was tuned on;
 * on AMD Zen 5 the far L2 hints cost 10-30% and CPU_PREFETCH_NTA (4 KB
 * ahead, into L1 without filling the outer caches) is best; on Zen 4 no
 * software prefetch at all is. The
 * environment variable AIRLOCK_PREFETCH=l1l2|nta|none overrides the
 * processor's default. */
typedef enum cpu_prefetch { CPU_PREFETCH_L1_L2 = 0, CPU_PREFETCH_NTA = 1, CPU_PREFETCH_NONE = 2 } cpu_prefetch;

/* The policy in use, read by the kernels' inner loops: call
 * cpu_prefetch_get() once before kernels run so that it is decided. */
extern cpu_prefetch cpu_prefetch_mode;
/* The policy for this processor: CPU_PREFETCH_NTA on AMD family 1Ah (Zen
 * 5, where it was measured) and later, CPU_PREFETCH_NONE on Zen 4 (family
 * 19h with AVX-512, session 13), CPU_PREFETCH_L1_L2 elsewhere. */
cpu_prefetch cpu_prefetch_default(void);
/* The policy in use (decided on the first call: AIRLOCK_PREFETCH, else
 * cpu_prefetch_default). */
cpu_prefetch cpu_prefetch_get(void);
/* Sets the policy. Not thread-safe: call between computations. */
void cpu_prefetch_set(cpu_prefetch p);
const char *cpu_prefetch_name(cpu_prefetch p);
/* Parses "l1l2", "nta", "none". Returns -1 when unknown. */
int cpu_prefetch_parse(const char *s);

#endif
