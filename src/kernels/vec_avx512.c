/* vec_avx512.c - element-wise steps of the forward pass on AVX-512 (the
 * portable versions are in ops.c, which calls these when cpu_level()
 * allows). Compiled with AVX-512 enabled. */
#include <immintrin.h>

#include "kernels/exp512.h"
#include "kernels/ops.h"

/* out[i] = gate[i] / (1 + e^-gate[i]) * up[i], 16 at a time (the tail
 * through a mask), with exp512 in place of expf. */
void op_swiglu_avx512(float *out, const float *gate, const float *up, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
        __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(silu, u));
    }
}
