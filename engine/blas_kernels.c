/* Which kernels OpenBLAS runs on this processor (untangle.h: ut_blas_kernels).
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels when it is loaded, by the
 * processor's family and model numbers. A processor newer than the release falls through to
 * its oldest x86-64 kernels: Debian 12's OpenBLAS 0.3.21 names an Emerald Rapids Xeon
 * (family 6, model 207, AVX-512) "Prescott" and runs SSE3 code on it: LORD's VGG training
 * steps on two of its cores took 2.3-2.9 times PyTorch's time, and with OPENBLAS_CORETYPE=
 * SkylakeX 0.43-0.48 of that (benchmarks/README.md). The features are what matter, so where
 * the processor has AVX2 and FMA but OpenBLAS chose kernels for neither,
 * ut_blas_better_kernels names the ones that use them. */
#include <stddef.h>
#include <string.h>

#include <cblas.h>

#include "untangle.h"

const char *ut_blas_kernels(void) { return openblas_get_corename(); }

/* OpenBLAS's x86-64 kernels that use AVX2 and FMA or AVX-512. */
static int vector_kernels(const char *name) {
  static const char *const modern[] = { "Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids" };
  for (size_t i = 0; i < sizeof modern / sizeof modern[0]; i++)
    if (name && !strcmp(name, modern[i])) return 1;
  return 0;
}

const char *ut_blas_better_kernels(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || vector_kernels(ut_blas_kernels())) return NULL;
  /* SkylakeX's kernels use AVX-512 F, CD, BW, DQ and VL, as the Skylake server processors have them. */
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  return "Haswell";
#else
  return NULL;
#endif
}
