/* What forward launchers see of a plan while it compiles: where each tensor lives, and calls
 * that append launches (kernels with arguments set now, and CLBlast GEMMs) to the schedule. */
#ifndef UT_PLAN_INTERNAL_H
#define UT_PLAN_INTERNAL_H

#include "graph_internal.h"
#include "runtime_internal.h"

/* A tensor's memory: a buffer and an offset in elements (the arena, a store tensor's own
 * buffer, or the plan's input buffer). Kernels take every tensor as (buffer, uint offset). */
typedef struct {
  cl_mem buf;
  size_t off;
} ut_loc;

typedef struct ut_launch ut_launch;

ut_runtime *ut_plan_runtime(ut_plan *p);
ut_loc ut_plan_loc(ut_plan *p, const ut_tensor *t);

/* Appends a launch of kernel `kernel` from cl/<source>.cl for node n. Arguments follow with
 * the ut_arg_* calls in kernel order; the first failure is kept and reported by the plan.
 * The pointer is valid until the next launch is appended. */
ut_launch *ut_plan_kernel(ut_plan *p, ut_tensor *n, const char *source, const char *kernel);
void ut_arg_tensor(ut_launch *l, const ut_tensor *t); /* two arguments: buffer, uint offset */
void ut_arg_int(ut_launch *l, int v);
void ut_arg_uint(ut_launch *l, unsigned v);
void ut_arg_float(ut_launch *l, float v);
void ut_arg_int4(ut_launch *l, const int v[4]);
void ut_arg_local(ut_launch *l, size_t bytes);
/* Global range: `n` work-items in 1-D, rounded up to the work-group size `local` (0: let the
 * engine pick). Kernels guard against the overhang. */
void ut_launch_range(ut_launch *l, size_t n, size_t local);
void ut_launch_range2(ut_launch *l, size_t n0, size_t n1, size_t local0, size_t local1);
/* A 2-D range over `rows` rows of `cols` columns (dimension 0 the column) with work-groups of
 * whole power-of-two spans of a row and as many rows as fill the engine's work-group size, so
 * that short rows still make work-groups large enough (a CPU device runs each work-group as
 * one loop, and pays per work-group). Both dimensions are rounded up; kernels guard both. */
void ut_launch_rows(ut_launch *l, size_t cols, size_t rows);

/* Per-run arguments: before each run the plan calls fn(l, user) so it can refresh scalar
 * arguments from host state (learning rates, step and random counters). */
typedef void (*ut_launch_prepare_fn)(ut_launch *l, const ut_tensor *n);
void ut_launch_on_run(ut_launch *l, ut_launch_prepare_fn fn);
/* Sets argument `index` again (inside a prepare function). */
void ut_launch_set_float(ut_launch *l, int index, float v);
void ut_launch_set_uint(ut_launch *l, int index, unsigned v);
/* The index the next ut_arg_* call will fill (to remember per-run arguments). */
int ut_launch_next_arg(const ut_launch *l);

/* Appends C = alpha * op(A) * op(B) + beta * C, row-major, through CLBlast. With batch > 1
 * it computes `batch` such products whose matrices start stride_* elements apart (a stride of
 * 0 reuses one matrix for every product). */
typedef struct {
  int trans_a, trans_b;
  size_t m, n, k;
  float alpha, beta;
  ut_loc a, b, c;
  size_t lda, ldb, ldc;
  size_t batch; /* 0 or 1: a single product */
  size_t stride_a, stride_b, stride_c;
} ut_gemm_args;
ut_status ut_plan_gemm(ut_plan *p, ut_tensor *n, const ut_gemm_args *args);

/* Appends `fn`, run on the host between the launches before and after it (host_map.h: the
 * operands are mapped, fn gets a pointer to the first float of each, then they are unmapped).
 * For CPU devices whose memory is host memory, where host code with OpenBLAS beats the
 * device's own kernels. `args` (args_bytes, copied) is fn's to read; `name` is the profile's
 * kernel column. */
#define UT_HOST_MAP_MAX 8
typedef struct {
  ut_loc loc;
  size_t floats;
  int write;
} ut_host_operand;
typedef ut_status (*ut_host_fn)(const void *args, float *const *ptr);
ut_status ut_plan_host(ut_plan *p, ut_tensor *n, const char *name, ut_host_fn fn, const void *args, size_t args_bytes,
                       const ut_host_operand *ops, int n_ops);

/* A kernel argument at an explicit location (two arguments: buffer, uint offset), for memory
 * that is no tensor: a node's workspace. */
void ut_arg_loc(ut_launch *l, ut_loc loc);

/* The node's scratch memory, of the size its op's `workspace` rule asked for: a range of the
 * arena that is free while the node runs and reused by other tensors before and after. */
ut_loc ut_plan_workspace(ut_plan *p, const ut_tensor *n);

/* The work-group size the engine uses for 1-D elementwise kernels on this device. */
size_t ut_plan_local_size(ut_plan *p);

#endif
