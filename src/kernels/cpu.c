/* cpu.c - processor feature detection and the kernel level in use. */
#include "kernels/cpu.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static int g_level = -1; /* -1: not yet decided */

#if defined(__x86_64__) || defined(__i386__)
/* F16C (half <-> float conversion): CPUID leaf 1, ECX bit 29 (not every
 * compiler's __builtin_cpu_supports knows the name). */
static bool has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

/* AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and 25), tile state
 * saved by the operating system (XCR0 bits 17 and 18), and on Linux the
 * process's permission to use tile data, which the kernel grants only on
 * request (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA). Asks
 * once; returns whether tiles may be used. */
static bool amx_usable(void) {
    static int usable = -1;
    if (usable >= 0) return usable;
    unsigned a, b, c, d;
    usable = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) return false;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false; /* OSXSAVE: xgetbv may be used */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & (3u << 17)) != (3u << 17)) return false;
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return false;
#endif
    usable = 1;
    return true;
}
#endif

cpu_level cpu_level_max(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
        has_f16c())
        return amx_usable() ? CPU_LEVEL_AMX : CPU_LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        return CPU_LEVEL_AVX2;
#endif
    return CPU_LEVEL_SCALAR;
}

int cpu_level_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "scalar") == 0) return CPU_LEVEL_SCALAR;
    if (strcmp(s, "avx2") == 0) return CPU_LEVEL_AVX2;
    if (strcmp(s, "avx512") == 0) return CPU_LEVEL_AVX512;
    if (strcmp(s, "amx") == 0) return CPU_LEVEL_AMX;
    return -1;
}

cpu_level cpu_level_set(cpu_level l) {
    cpu_level max = cpu_level_max();
    g_level = (int)(l > max ? max : l);
    return (cpu_level)g_level;
}

cpu_level cpu_level_get(void) {
    if (g_level < 0) {
        int want = cpu_level_parse(getenv("AIRLOCK_CPU"));
        cpu_level_set(want < 0 ? cpu_level_max() : (cpu_level)want);
    }
    return (cpu_level)g_level;
}

const char *cpu_level_name(cpu_level l) {
    switch (l) {
    case CPU_LEVEL_SCALAR: return "scalar";
    case CPU_LEVEL_AVX2: return "avx2";
    case CPU_LEVEL_AVX512: return "avx512";
    case CPU_LEVEL_AMX: return "amx";
    }
    return "?";
}

cpu_prefetch cpu_prefetch_mode = CPU_PREFETCH_L1_L2;
static bool g_prefetch_decided;

cpu_prefetch cpu_prefetch_default(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    /* vendor "AuthenticAMD" is EBX, EDX, ECX = "Auth", "enti", "cAMD" */
    if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u &&
        __get_cpuid(1, &a, &b, &c, &d)) {
        unsigned family = (a >> 8) & 0xF;
        if (family == 0xF) family += (a >> 20) & 0xFF; /* extended family */
        if (family >= 0x1A) return CPU_PREFETCH_NTA;
        /* Zen 4: family 19h with AVX-512 (Zen 3, also 19h, has none) */
        if (family == 0x19 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 16))) return CPU_PREFETCH_NONE;
    }
#endif
    return CPU_PREFETCH_L1_L2;
}

int cpu_prefetch_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "l1l2") == 0) return CPU_PREFETCH_L1_L2;
    if (strcmp(s, "nta") == 0) return CPU_PREFETCH_NTA;
    if (strcmp(s, "none") == 0) return CPU_PREFETCH_NONE;
    return -1;
}

void cpu_prefetch_set(cpu_prefetch p) {
    cpu_prefetch_mode = p;
    g_prefetch_decided = true;
}

cpu_prefetch cpu_prefetch_get(void) {
    if (!g_prefetch_decided) {
        int want = cpu_prefetch_parse(getenv("AIRLOCK_PREFETCH"));
        cpu_prefetch_set(want < 0 ? cpu_prefetch_default() : (cpu_prefetch)want);
    }
    return cpu_prefetch_mode;
}

const char *cpu_prefetch_name(cpu_prefetch p) {
    switch (p) {
    case CPU_PREFETCH_L1_L2: return "l1l2";
    case CPU_PREFETCH_NTA: return "nta";
    case CPU_PREFETCH_NONE: return "none";
    }
    return "?";
}
