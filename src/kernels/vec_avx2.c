/* vec_avx2.c - element-wise steps of the forward pass and of sampling on
 * AVX2 + FMA machines (the portable versions are in ops.c, which calls
 * these when cpu_level() is AVX2; AVX-512 machines use vec_avx512.c).
 * Compiled with AVX2 and FMA enabled. Whole vectors of 8, then the last
 * n % 8 elements one at a time with the same arithmetic as the lanes. */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops.h"

#define AI static inline __attribute__((always_inline))

/* e^x on 8 lanes, the scheme of exp512.h (kernels/exp512.h): x = n ln2 + r
 * with ln2 split in two, the degree-7 polynomial of the Cephes expf for
 * e^r, and 2^n built in the exponent bits (n is in [-126, 127] after the
 * clamp to [-87, 88], so 2^n is a normal float). Within 2 ulp of expf. */
AI __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

/* exp256 of one value (the lane arithmetic, for the tails). */
AI float exp256_one(float x) { return _mm256_cvtss_f32(exp256(_mm256_set1_ps(x))); }

/* out[i] = gate[i] / (1 + e^-gate[i]) * up[i] with exp256. */
void op_swiglu_avx2(float *out, const float *gate, const float *up, int n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + exp256_one(-gate[i])) * up[i];
}

/* op_argmax on 8 lanes: the largest value in four maximum chains (vmaxps
 * returns its second operand when the first is NaN, so NaNs drop out),
 * then the first position holding it. */
int op_argmax_avx2(const float *x, int n) {
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
        m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
        m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    __m256 mv = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    float m = -INFINITY;
    for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m; /* false for a NaN */
    const __m256 mb = _mm256_set1_ps(m);
    for (i = 0; i + 8 <= n; i += 8) {
        int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), mb, _CMP_EQ_OQ));
        if (eq) return i + __builtin_ctz((unsigned)eq);
    }
    for (; i < n; i++)
        if (x[i] == m) return i;
    return 0;
}

/* op_exp_weights on 8 lanes with exp256; lanes equal to mx become 1 and
 * -inf lanes 0 by blending. The sum goes into double per 4 lanes. */
double op_exp_weights_avx2(float *x, int n, float mx, float inv_t) {
    const __m256 m = _mm256_set1_ps(mx), it = _mm256_set1_ps(inv_t), one = _mm256_set1_ps(1.0f), ninf = _mm256_set1_ps(-INFINITY);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp256(_mm256_mul_ps(_mm256_sub_ps(v, m), it));
        e = _mm256_blendv_ps(e, one, _mm256_cmp_ps(v, m, _CMP_EQ_OQ));
        e = _mm256_and_ps(e, _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4], sum = 0;
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    for (int k = 0; k < 4; k++) sum += lanes[k];
    for (; i < n; i++) {
        /* as the lanes: the maximum 1, -inf and NaN 0 (their "not -inf" test is false for a NaN) */
        x[i] = x[i] == mx ? 1.0f : (x[i] == -INFINITY || x[i] != x[i]) ? 0.0f : exp256_one((x[i] - mx) * inv_t);
        sum += x[i];
    }
    return sum;
}

/* op_rmsnorm on 8 lanes: the sum of squares in four chains (a different
 * order of additions from the portable loop, so the scale may differ in
 * the last bit), then out = x * scale * g as there. */
void op_rmsnorm_avx2(float *out, const float *x, const float *g, int n, float eps) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    float lanes[8], ss = 0;
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (int k = 0; k < 8; k++) ss += lanes[k];
    for (; i < n; i++) ss += x[i] * x[i];
    const float sc = 1.0f / sqrtf(ss / (float)n + eps);
    const __m256 scale = _mm256_set1_ps(sc);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale), _mm256_loadu_ps(g + i)));
    for (; i < n; i++) out[i] = x[i] * sc * g[i];
}
