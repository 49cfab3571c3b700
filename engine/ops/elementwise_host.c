/* ReLU, leaky ReLU and the gradient of both on the host (elementwise_host.h).
 *
 * On PoCL the kernels of cl/elementwise.cl move 6-7 GB/s at LORD's generator sizes (leaky ReLU
 * of a 4 MB tensor: 1.2 ms); a loop the compiler vectorises moves what the cache gives (a 4 MB
 * copy: 0.16 ms here). The expressions are the kernels', evaluated the same way, so the
 * results are the same bits. Nodes may run in place (UT_OP_INPLACE): each element is read
 * before it is written. */
#include "elementwise_host.h"

#include <stdio.h>
#include <string.h>

#include "host_threads.h"
#include "runtime_internal.h"

typedef enum { HOST_RELU, HOST_LEAKY_RELU, HOST_LEAKY_RELU_GRAD } host_kind;

typedef struct {
  host_kind kind;
  float p;
  int threads;
  int64_t count;
} host_act;

typedef struct {
  const host_act *a;
  float *const *ptr;
} host_act_job;

/* Blocks through local arrays: the output may be one of the inputs (in place), and loops over
 * pointers that may alias are not vectorised where they do; over local arrays they are. (GCC
 * also needs -fno-trapping-math for the selects, engine/CMakeLists.txt.) */
enum { BLOCK = 256 };

static int act_part(void *ctx, int64_t lo, int64_t hi) {
  const host_act_job *j = ctx;
  const float p = j->a->p;
  float *y = j->ptr[0];
  const float *x = j->ptr[1], *d = j->a->kind == HOST_LEAKY_RELU_GRAD ? j->ptr[2] : NULL;
  float tx[BLOCK], td[BLOCK], ty[BLOCK];
  for (int64_t b = lo; b < hi; b += BLOCK) {
    const int n = hi - b < BLOCK ? (int)(hi - b) : BLOCK;
    memcpy(tx, x + b, (size_t)n * sizeof *tx);
    switch (j->a->kind) {
    case HOST_RELU:
      for (int i = 0; i < n; i++) ty[i] = tx[i] > 0.0f ? tx[i] : 0.0f;
      break;
    case HOST_LEAKY_RELU:
      for (int i = 0; i < n; i++) ty[i] = tx[i] > 0.0f ? tx[i] : tx[i] * p;
      break;
    case HOST_LEAKY_RELU_GRAD: /* x: the activation's input, d: the gradient of its output */
      memcpy(td, d + b, (size_t)n * sizeof *td);
      for (int i = 0; i < n; i++) ty[i] = tx[i] > 0.0f ? td[i] : td[i] * p;
      break;
    }
    memcpy(y + b, ty, (size_t)n * sizeof *ty);
  }
  return 0;
}

/* Shares of whole 4 KB pages, so that two threads never write one cache line. */
enum { PART = 1024 };

static int act_pages(void *ctx, int64_t lo, int64_t hi) {
  const host_act_job *j = ctx;
  int64_t end = hi * PART < j->a->count ? hi * PART : j->a->count;
  return act_part(ctx, lo * PART, end);
}

static ut_status run_act(const void *args, float *const *ptr) {
  const host_act *a = args;
  host_act_job j = { a, ptr };
  ut_host_parallel(a->threads, (a->count + PART - 1) / PART, act_pages, &j);
  return UT_OK;
}

static int kind_of(const char *op, host_kind *kind) {
  if (!strcmp(op, "relu")) *kind = HOST_RELU;
  else if (!strcmp(op, "leaky_relu")) *kind = HOST_LEAKY_RELU;
  else if (!strcmp(op, "leaky_relu_grad")) *kind = HOST_LEAKY_RELU_GRAD;
  else return 0;
  return 1;
}

int ut_elementwise_host_takes(ut_plan *p, const ut_tensor *n) {
  host_kind kind;
  return ut_plan_runtime(p)->host_gemm && kind_of(n->op->name, &kind);
}

ut_status ut_elementwise_host(ut_plan *p, ut_tensor *n) {
  ut_runtime *rt = ut_plan_runtime(p);
  host_act a = { .p = n->fattr[0], .count = ut_shape_numel(n->shape) };
  kind_of(n->op->name, &a.kind);
  /* Below about 64 K floats the work is a few microseconds: not worth waking a thread. */
  a.threads = a.count >= 65536 && rt->info.compute_units ? (int)rt->info.compute_units : 1;
  ut_host_operand ops[3] = { { ut_plan_loc(p, n), (size_t)a.count, 1 } };
  for (int i = 0; i < n->n_in; i++) ops[1 + i] = (ut_host_operand){ ut_plan_loc(p, n->in[i]), (size_t)a.count, 0 };
  char name[48];
  snprintf(name, sizeof name, "host_%s", n->op->name);
  return ut_plan_host(p, n, name, run_act, &a, sizeof a, ops, 1 + n->n_in);
}
