/* GEMMs on the host with OpenBLAS, on mapped OpenCL buffers (see host_gemm.h for when). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "error.h"
#include "host_gemm.h"
#include "host_map.h"
#include "host_threads.h"

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
  /* OpenBLAS runs single-threaded and the engine splits the work over the device's compute
   * units itself (below, and the host convolution by images). OpenBLAS's own worker threads
   * spin, yielding the core, for a long while after each product (OPENBLAS_THREAD_TIMEOUT,
   * read only at start-up), and on a CPU device they then compete with the device's worker
   * threads and ours for the same cores. The setting is OpenBLAS's, for the whole process. */
  openblas_set_num_threads(1);
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

/* The products of one host GEMM split over threads: by batch entries, else by blocks of C's
 * rows or columns (the longer side). Each element of C is computed by one single-threaded
 * call whose sums over K do not depend on the block it sits in. */
typedef struct {
  const ut_gemm_args *a;
  float *const *ptr;
  const ut_host_operand *ops;
  size_t batch;
  int split_rows; /* when not by batch: 1 by rows of C, 0 by columns */
  size_t blocks, extent; /* the blocks and the rows or columns they divide */
} gemm_job;

static void product(const ut_gemm_args *a, const float *pa, const float *pb, float *pc, size_t m, size_t n) {
  cblas_sgemm(CblasRowMajor, a->trans_a ? CblasTrans : CblasNoTrans, a->trans_b ? CblasTrans : CblasNoTrans, (int)m,
              (int)n, (int)a->k, a->alpha, pa, (int)(a->lda ? a->lda : 1), pb, (int)(a->ldb ? a->ldb : 1), a->beta, pc,
              (int)a->ldc);
}

static int gemm_items(void *ctx, int64_t lo, int64_t hi) {
  const gemm_job *j = ctx;
  const ut_gemm_args *a = j->a;
  for (int64_t it = lo; it < hi; it++) {
    const float *pa = j->ptr[0], *pb = j->ptr[1];
    float *pc = j->ptr[2];
    if (j->batch > 1) { /* item = batch entry; an empty operand (k == 0) has no stride */
      size_t b = (size_t)it;
      product(a, pa + (j->ops[0].floats ? b * a->stride_a : 0), pb + (j->ops[1].floats ? b * a->stride_b : 0),
              pc + b * a->stride_c, a->m, a->n);
      continue;
    }
    size_t r0 = j->extent * (size_t)it / j->blocks, r1 = j->extent * (size_t)(it + 1) / j->blocks;
    if (r0 == r1) continue;
    if (j->split_rows) /* rows r0..r1 of C: of op(A), rows of A or columns of A^T */
      product(a, pa + (j->ops[0].floats ? (a->trans_a ? r0 : r0 * a->lda) : 0), pb, pc + r0 * a->ldc, r1 - r0, a->n);
    else /* columns r0..r1 of C: of op(B), columns of B or rows of B^T */
      product(a, pa, pb + (j->ops[1].floats ? (a->trans_b ? r0 * a->ldb : r0) : 0), pc + r0, a->m, r1 - r0);
  }
  return 0;
}

/* Fewer rows or columns than this per thread are not worth a thread; nor is a product of
 * fewer multiply-adds than MIN_SPLIT_WORK (about 50 microseconds on one core, the order of a
 * thread's start and join; many of an MLP's products are smaller). */
#define MIN_SPLIT 32
#define MIN_SPLIT_WORK ((double)(1 << 22))

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
  double t0 = (1e3 * ut_seconds());
  const int threads = rt->info.compute_units ? (int)rt->info.compute_units : 1;
  gemm_job job = { .a = a, .ptr = m.ptr, .ops = ops, .batch = batch, .split_rows = a->m >= a->n };
  job.extent = job.split_rows ? a->m : a->n;
  job.blocks = batch > 1 ? batch : job.extent / MIN_SPLIT;
  if (job.blocks > (size_t)threads && batch == 1) job.blocks = (size_t)threads;
  if (job.blocks < 1) job.blocks = 1;
  const int small = (double)a->m * (double)a->n * (double)a->k * (double)batch < MIN_SPLIT_WORK;
  ut_host_parallel(small ? 1 : threads, (int64_t)job.blocks, gemm_items, &job);
  *ms = (1e3 * ut_seconds()) - t0;
  return ut_host_map_end(rt, &m, UT_OK);
}
