/* vec_avx512.c - element-wise steps of the forward pass on AVX-512 (the
 * portable versions are in ops.c, which calls these when cpu_level()
 * allows). Compiled with AVX-512 enabled. */
#include <immintrin.h>
#include <math.h>

#include "kernels/exp512.h"
#include "kernels/mask512.h"
#include "kernels/ops.h"

/* out[i] = gate[i] / (1 + e^-gate[i]) * up[i], 16 at a time (the tail
 * through a mask), with exp512 in place of expf. */
void op_swiglu_avx512(float *out, const float *gate, const float *up, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n, i);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
        __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(silu, u));
    }
}

/* op_argmax on 16 lanes: the largest value in four independent maximum
 * chains (vmaxps returns its second operand when the first is NaN, so NaNs
 * drop out), then the first position holding it. */
int op_argmax_avx512(const float *x, int n) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
        m2 = _mm512_max_ps(_mm512_loadu_ps(x + i + 32), m2);
        m3 = _mm512_max_ps(_mm512_loadu_ps(x + i + 48), m3);
    }
    for (; i < n; i += 16) m0 = _mm512_mask_max_ps(m0, tail16(n, i), _mm512_maskz_loadu_ps(tail16(n, i), x + i), m0);
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))));
    for (i = 0; i < n; i += 16) {
        __mmask16 eq = _mm512_mask_cmp_ps_mask(tail16(n, i), _mm512_maskz_loadu_ps(tail16(n, i), x + i), m, _CMP_EQ_OQ);
        if (eq) return i + __builtin_ctz(eq);
    }
    return 0;
}

/* op_exp_weights on 16 lanes with exp512; lanes equal to mx become 1 and
 * -inf lanes 0 by mask. The sum goes into double per 8 lanes. */
double op_exp_weights_avx512(float *x, int n, float mx, float inv_t) {
    const __m512 m = _mm512_set1_ps(mx), it = _mm512_set1_ps(inv_t), one = _mm512_set1_ps(1.0f), ninf = _mm512_set1_ps(-INFINITY);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    for (int i = 0; i < n; i += 16) {
        const __mmask16 live = tail16(n, i);
        __m512 v = _mm512_maskz_loadu_ps(live, x + i);
        __m512 e = exp512(_mm512_mul_ps(_mm512_sub_ps(v, m), it));
        e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(v, m, _CMP_EQ_OQ), one);
        e = _mm512_maskz_mov_ps(live & _mm512_cmp_ps_mask(v, ninf, _CMP_NEQ_OQ), e);
        _mm512_mask_storeu_ps(x + i, live, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

/* op_rmsnorm on 16 lanes: the sum of squares in four chains (a different
 * order of additions from the portable loop, so the scale may differ in
 * the last bit), then out = x * scale * g as there. */
void op_rmsnorm_avx512(float *out, const float *x, const float *g, int n, float eps) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
        s2 = _mm512_fmadd_ps(c, c, s2);
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    for (; i < n; i += 16) {
        __m512 a = _mm512_maskz_loadu_ps(tail16(n, i), x + i);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    float ss = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(ss / (float)n + eps));
    for (i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n, i);
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale), _mm512_maskz_loadu_ps(m, g + i));
        _mm512_mask_storeu_ps(out + i, m, y);
    }
}

/* op_f32_to_f16 on 16 lanes: the processor's conversion rounds to nearest
 * even as fp32_to_fp16 does; NaNs become that function's quiet NaN (the
 * hardware would keep part of the payload). */
void op_f32_to_f16_avx512(uint16_t *dst, const float *x, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n, i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        if (nan) {
            __m256i sign = _mm256_and_si256(h, _mm256_set1_epi16((short)0x8000));
            h = _mm256_mask_blend_epi16(nan, h, _mm256_or_si256(sign, _mm256_set1_epi16(0x7E00)));
        }
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}
