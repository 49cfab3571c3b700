/* CLBlast GEMM calls with the fewest operand copies (clblast_gemm.h). */
#include <stdio.h>
#include <string.h>

#include "clblast_gemm.h"
#include "error.h"

/* Elements a row-major operand of rows x cols with leading dimension ld spans, batches included. */
static size_t extent(size_t rows, size_t cols, size_t ld, size_t batch, size_t stride) {
  if (rows == 0 || cols == 0) return 0;
  return (rows - 1) * ld + cols + (batch > 1 ? (batch - 1) * stride : 0);
}

/* A zero-offset view of buf from element `off` over `floats` elements, or NULL where the offset
 * is already 0, is not a multiple of the device's base alignment, or the device refuses it
 * (said once per runtime: the call then keeps the offset and CLBlast copies the operand). */
static cl_mem zero_offset_view(ut_runtime *rt, cl_mem buf, size_t off, size_t floats) {
  size_t align = rt->info.base_align_bytes;
  if (off == 0 || floats == 0 || align == 0 || (off * sizeof(float)) % align != 0) return NULL;
  cl_buffer_region region = { off * sizeof(float), floats * sizeof(float) };
  cl_int err = CL_SUCCESS;
  cl_mem view = clCreateSubBuffer(buf, 0 /* the parent's access */, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
  if (err == CL_SUCCESS) return view;
  if (!rt->subbuffer_refusal_said) {
    fprintf(stderr,
            "untangle: %s refuses a sub-buffer at byte %zu (its base alignment %zu bytes; OpenCL error %d): CLBlast "
            "GEMMs on it take buffer offsets, and copy their operands\n",
            rt->info.name, off * sizeof(float), align, (int)err);
    rt->subbuffer_refusal_said = 1;
  }
  return NULL;
}

static size_t temp_bytes(ut_runtime *rt, const ut_clblast_gemm *g) {
  size_t bytes = 0;
  CLBlastStatusCode s = CLBlastSGemmTempBufferSize(g->layout, g->ta, g->tb, g->m, g->n, g->k, g->a_off, g->lda,
                                                   g->b_off, g->ldb, g->c_off, g->ldc, &rt->queue, &bytes);
  return s == CLBlastSuccess ? bytes : (size_t)-1;
}

ut_status ut_clblast_gemm_prepare(ut_runtime *rt, const ut_gemm_args *a, ut_clblast_gemm *out) {
  memset(out, 0, sizeof *out);
  size_t batch = a->batch > 1 ? a->batch : 1;
  ut_clblast_gemm row = { .layout = CLBlastLayoutRowMajor,
                          .ta = a->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                          .tb = a->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo,
                          .m = a->m, .n = a->n, .k = a->k, .alpha = a->alpha, .beta = a->beta,
                          .a = a->a.buf, .b = a->b.buf, .c = a->c.buf,
                          .a_off = a->a.off, .b_off = a->b.off, .c_off = a->c.off,
                          .lda = a->lda, .ldb = a->ldb, .ldc = a->ldc,
                          .batch = batch, .stride_a = a->stride_a, .stride_b = a->stride_b, .stride_c = a->stride_c };
  /* What CLBlast would copy for the call as the plan gave it, before any operand is a view. */
  size_t as_given = batch > 1 ? 0 : temp_bytes(rt, &row);
  ut_loc loc[3] = { a->a, a->b, a->c };
  size_t span[3] = {
    extent(a->trans_a ? a->k : a->m, a->trans_a ? a->m : a->k, a->lda, batch, a->stride_a),
    extent(a->trans_b ? a->n : a->k, a->trans_b ? a->k : a->n, a->ldb, batch, a->stride_b),
    extent(a->m, a->n, a->ldc, batch, a->stride_c),
  };
  for (int i = 0; i < 3; i++) {
    out->owned[i] = zero_offset_view(rt, loc[i].buf, loc[i].off, span[i]);
    if (out->owned[i]) loc[i] = (ut_loc){ out->owned[i], 0 };
  }
  row.a = loc[0].buf, row.b = loc[1].buf, row.c = loc[2].buf;
  row.a_off = loc[0].off, row.b_off = loc[1].off, row.c_off = loc[2].off;
  /* The same memory read column-major: C^T (n x m) = op(B)^T (n x k) op(A)^T (k x m). */
  ut_clblast_gemm col = row;
  col.layout = CLBlastLayoutColMajor;
  col.ta = row.tb, col.tb = row.ta;
  col.m = a->n, col.n = a->m;
  col.a = row.b, col.b = row.a;
  col.a_off = row.b_off, col.b_off = row.a_off;
  col.lda = row.ldb, col.ldb = row.lda;
  col.stride_a = row.stride_b, col.stride_b = row.stride_a;
  row.temp_bytes = temp_bytes(rt, &row);
  col.temp_bytes = temp_bytes(rt, &col);
  if (row.temp_bytes == (size_t)-1) {
    ut_clblast_gemm_release(out);
    return ut_fail(UT_ERR_BLAS, "CLBlast cannot size the GEMM %zux%zux%zu", a->m, a->n, a->k);
  }
  /* The batched routine allocates its own scratch; the single products' sizes still tell
   * which layout makes it copy less, since both routines rotate operands by the same rules. */
  ut_clblast_gemm *pick = col.temp_bytes < row.temp_bytes ? &col : &row;
  memcpy(pick->owned, out->owned, sizeof pick->owned);
  *out = *pick;
  if (batch > 1) out->temp_bytes = 0;
  out->as_given_temp_bytes = as_given == (size_t)-1 ? 0 : as_given;
  return UT_OK;
}

ut_status ut_clblast_gemm_enqueue(const ut_clblast_gemm *g, cl_command_queue *queue, cl_event *event, cl_mem temp) {
  CLBlastStatusCode s =
      g->batch > 1
          ? CLBlastSgemmStridedBatched(g->layout, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->a_off, g->lda,
                                       g->stride_a, g->b, g->b_off, g->ldb, g->stride_b, g->beta, g->c, g->c_off,
                                       g->ldc, g->stride_c, g->batch, queue, event)
          : CLBlastSgemmWithTempBuffer(g->layout, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->a_off, g->lda,
                                       g->b, g->b_off, g->ldb, g->beta, g->c, g->c_off, g->ldc, queue, event, temp);
  if (s == CLBlastSuccess) return UT_OK;
  return ut_fail(s > -1000 ? s : UT_ERR_BLAS, "CLBlast SGEMM %zux%zux%zu (%s) failed: %s (%d)", g->m, g->n, g->k,
                 g->layout == CLBlastLayoutRowMajor ? "row-major" : "column-major, operands swapped",
                 ut_status_name(s), (int)s);
}

void ut_clblast_gemm_release(ut_clblast_gemm *g) {
  for (int i = 0; i < 3; i++)
    if (g->owned[i]) clReleaseMemObject(g->owned[i]), g->owned[i] = NULL;
}
