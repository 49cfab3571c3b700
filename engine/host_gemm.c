/* GEMMs on the host with OpenBLAS, on mapped OpenCL buffers (see host_gemm.h for when). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "error.h"
#include "host_gemm.h"
#include "host_map.h"

ut_status ut_host_gemm_choose(ut_runtime *rt) {
  rt->host_gemm = 0;
  const char *env = getenv("UNTANGLE_CPU_GEMM");
  if (env && *env && strcmp(env, "clblast") && strcmp(env, "openblas"))
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "$UNTANGLE_CPU_GEMM is '%s'; expected 'clblast' (CPU devices run GEMMs through CLBlast) or "
                   "'openblas' (on the host, the default)",
                   env);
  if (rt->info.type != UT_DEVICE_CPU || (env && !strcmp(env, "clblast"))) return UT_OK;
  /* A CPU device without unified memory would hand out copies; CLBlast is the safe choice. */
  cl_bool unified = CL_FALSE;
  if (clGetDeviceInfo(rt->device, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) != CL_SUCCESS ||
      unified != CL_TRUE)
    return UT_OK;
  rt->host_gemm = 1;
  /* A fixed thread count, because OpenBLAS blocks a product's sums differently for different
   * counts, so the last bits of a result depend on it; fixed, the same inputs give the same
   * bits on every run. The device's compute units, because the device's own worker threads
   * sit idle while a host GEMM runs, so the two take turns on the same cores. The setting is
   * OpenBLAS's, for the whole process. */
  openblas_set_num_threads(rt->info.compute_units ? (int)rt->info.compute_units : 1);
  return UT_OK;
}

/* A matrix as stored: rows x cols, row-major, rows `ld` floats apart. */
typedef struct {
  const char *name;
  size_t rows, cols, ld, stride;
  const ut_loc *loc;
} stored;

static void operands(const ut_gemm_args *a, stored s[3]) {
  s[0] = (stored){ "A", a->trans_a ? a->k : a->m, a->trans_a ? a->m : a->k, a->lda, a->stride_a, &a->a };
  s[1] = (stored){ "B", a->trans_b ? a->n : a->k, a->trans_b ? a->k : a->n, a->ldb, a->stride_b, &a->b };
  s[2] = (stored){ "C", a->m, a->n, a->ldc, a->stride_c, &a->c };
}

static size_t batch_count(const ut_gemm_args *a) { return a->batch > 1 ? a->batch : 1; }

/* The floats a matrix spans over every batch entry, from its first; 0 when it is empty. */
static size_t extent(const stored *s, size_t batch) {
  if (s->rows == 0 || s->cols == 0) return 0;
  return (batch - 1) * s->stride + (s->rows - 1) * s->ld + s->cols;
}

ut_status ut_host_gemm_check(const ut_gemm_args *a) {
  stored s[3];
  operands(a, s);
  if (a->m > INT_MAX || a->n > INT_MAX || a->k > INT_MAX)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "host SGEMM %zux%zux%zu: OpenBLAS takes sizes up to %d", a->m, a->n, a->k,
                   INT_MAX);
  for (int i = 0; i < 3; i++) {
    if (s[i].ld < s[i].cols || s[i].ld > INT_MAX)
      return ut_fail(UT_ERR_INVALID_ARGUMENT,
                     "host SGEMM %zux%zux%zu: the leading dimension of %s is %zu; expected at least its %zu columns "
                     "and at most %d",
                     a->m, a->n, a->k, s[i].name, s[i].ld, s[i].cols, INT_MAX);
  }
  return UT_OK;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

ut_status ut_host_gemm_run(ut_runtime *rt, const ut_gemm_args *a, double *ms) {
  *ms = 0;
  ut_status st = ut_host_gemm_check(a);
  if (st != UT_OK || a->m == 0 || a->n == 0) return st;
  size_t batch = batch_count(a);
  stored s[3];
  operands(a, s);
  ut_host_operand ops[3];
  for (int i = 0; i < 3; i++) /* k == 0: A and B are empty, never read; C is read too when beta != 0 */
    ops[i] = (ut_host_operand){ *s[i].loc, extent(&s[i], batch), i == 2 };
  ut_host_map m;
  if ((st = ut_host_map_begin(rt, &m, ops, 3, "a host SGEMM")) != UT_OK) return st;
  double t0 = now_ms();
  for (size_t b = 0; b < batch; b++)
    cblas_sgemm(CblasRowMajor, a->trans_a ? CblasTrans : CblasNoTrans, a->trans_b ? CblasTrans : CblasNoTrans,
                (int)a->m, (int)a->n, (int)a->k, a->alpha, m.ptr[0] + (ops[0].floats ? b * a->stride_a : 0),
                (int)(a->lda ? a->lda : 1), m.ptr[1] + (ops[1].floats ? b * a->stride_b : 0),
                (int)(a->ldb ? a->ldb : 1), a->beta, m.ptr[2] + b * a->stride_c, (int)a->ldc);
  *ms = now_ms() - t0;
  return ut_host_map_end(rt, &m, UT_OK);
}
