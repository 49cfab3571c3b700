/* How a plan's GEMM is handed to CLBlast so that CLBlast copies as little as it can.
 *
 * CLBlast's tiled GEMM kernel reads A and B in fixed orientations and writes C column-major.
 * Any operand that is not already in that form (a row-major C, a transposed A, a non-zero
 * offset, a size or leading dimension that is not a multiple of the tiles) is first copied
 * into a scratch buffer by a padding/transposing kernel, and C is copied back afterwards.
 * CLBlastSGemmTempBufferSize reports the scratch it needs, which is the size of those copies.
 *
 * Two things avoid copies without changing the product:
 *   - the row-major product C = op(A) op(B) is the column-major product C^T = op(B)^T op(A)^T
 *     of the same memory, so the call may go column-major with A and B swapped; whichever
 *     layout CLBlast asks less scratch for is used (row-major on a tie, as before);
 *   - an operand that starts inside a buffer at a multiple of the device's base-address
 *     alignment is passed as a sub-buffer starting there, at offset 0.
 * A device that refuses such a sub-buffer gets the offset instead (and the engine says so once
 * on stderr): the product is the same, only with CLBlast's copy. */
#ifndef UT_CLBLAST_GEMM_H
#define UT_CLBLAST_GEMM_H

#include <clblast_c.h>

#include "plan_internal.h"

typedef struct {
  CLBlastLayout layout;
  CLBlastTranspose ta, tb;
  size_t m, n, k;
  float alpha, beta;
  cl_mem a, b, c;
  size_t a_off, b_off, c_off; /* elements */
  size_t lda, ldb, ldc;
  size_t batch, stride_a, stride_b, stride_c;
  cl_mem owned[3];   /* sub-buffers made for this call, released by ut_clblast_gemm_release */
  size_t temp_bytes; /* CLBlast's scratch for this call (single products; 0 for batched ones) */
  size_t as_given_temp_bytes; /* the same for the product called row-major at its buffer offsets */
} ut_clblast_gemm;

/* Chooses the layout and the operand buffers for `a` (row-major, as ut_plan_gemm takes it). */
ut_status ut_clblast_gemm_prepare(ut_runtime *rt, const ut_gemm_args *a, ut_clblast_gemm *out);
ut_status ut_clblast_gemm_enqueue(const ut_clblast_gemm *g, cl_command_queue *queue, cl_event *event, cl_mem temp);
void ut_clblast_gemm_release(ut_clblast_gemm *g);

#endif
