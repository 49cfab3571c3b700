/* Embedding lookups: rows of a [N, D] table gathered by an int32 index tensor [B], and the
 * gradient, a deterministic scatter-add into a dense [N, D] gradient (kernels in cl/embed.cl,
 * which also says what out-of-range indices do). Also int32 constants, so that fixed indices
 * and labels can be part of a graph. */
#include <string.h>

#include "error.h"
#include "plan_internal.h"

/* Shared by gather and scatter: in[0] is float ([N, D] table or [B, D] gradient), in[1] the
 * int32 indices [B]. */
static ut_status check_indices(ut_tensor *n, ut_tensor *rows, ut_tensor *idx) {
  char a[64], b[64];
  if (rows->dtype != UT_F32 || rows->shape.rank != 2)
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' of shape %s must be a 2-D f32 tensor", n->op->name, rows->name,
                   ut_shape_str(rows->shape, a, sizeof a));
  if (idx->dtype != UT_I32 || idx->shape.rank != 1)
    return ut_fail(UT_ERR_SHAPE, "%s: the indices '%s' of shape %s must be a 1-D int32 tensor [batch]", n->op->name,
                   idx->name, ut_shape_str(idx->shape, b, sizeof b));
  return UT_OK;
}

/* ---- gather ---------------------------------------------------------------------------------- */

static ut_status gather_shape(ut_tensor *n) {
  ut_status s = check_indices(n, n->in[0], n->in[1]);
  if (s != UT_OK) return s;
  n->shape = UT_SHAPE(n->in[1]->shape.d[0], n->in[0]->shape.d[1]);
  return UT_OK;
}

static ut_status gather_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *table = n->in[0], *idx = n->in[1];
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "embed", "embed_gather");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, table);
  ut_arg_tensor(l, idx);
  ut_arg_uint(l, (unsigned)table->shape.d[0]);
  ut_arg_uint(l, (unsigned)table->shape.d[1]);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_tensor *embedding_scatter(ut_graph *g, ut_tensor *grad, ut_tensor *indices, int64_t n_rows);

static ut_status gather_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = embedding_scatter(g, grad, n->in[1], n->in[0]->shape.d[0]);
  grad_in[1] = NULL; /* integer indices have no gradient */
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_embedding = { "embedding", 0, gather_shape, gather_forward, gather_backward };

ut_tensor *ut_embedding(ut_graph *g, ut_tensor *table, ut_tensor *indices) {
  ut_tensor *in[2] = { table, indices };
  return ut_node_new(g, &op_embedding, 2, in, NULL, 0, NULL, 0);
}

/* ---- scatter-add (the gradient of the gather) -------------------------------------------------- */

/* iattr[0]: the table's row count N. */
static ut_status scatter_shape(ut_tensor *n) {
  ut_status s = check_indices(n, n->in[0], n->in[1]);
  if (s != UT_OK) return s;
  if (n->in[0]->shape.d[0] != n->in[1]->shape.d[0] || n->iattr[0] < 1) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "%s: gradient rows %s ('%s') and indices %s ('%s') differ in batch, or %lld table rows",
                   n->op->name, ut_shape_str(n->in[0]->shape, a, sizeof a), n->in[0]->name,
                   ut_shape_str(n->in[1]->shape, b, sizeof b), n->in[1]->name, (long long)n->iattr[0]);
  }
  n->shape = UT_SHAPE(n->iattr[0], n->in[0]->shape.d[1]);
  return UT_OK;
}

static ut_status scatter_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *dy = n->in[0], *idx = n->in[1];
  size_t count = (size_t)ut_shape_numel(n->shape), batch = (size_t)dy->shape.d[0];
  unsigned dim = (unsigned)dy->shape.d[1];
  ut_launch *l = ut_plan_kernel(p, n, "embed", "embed_zero");
  ut_arg_tensor(l, n);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
  l = ut_plan_kernel(p, n, "embed", "embed_scatter");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, dy);
  ut_arg_tensor(l, idx);
  ut_arg_uint(l, (unsigned)n->shape.d[0]);
  ut_arg_uint(l, dim);
  ut_arg_uint(l, (unsigned)batch);
  ut_launch_range(l, batch * dim, 0);
  return UT_OK;
}

/* The scatter is linear in the gradient rows and its adjoint is the gather. */
static ut_status scatter_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_embedding(g, grad, n->in[1]);
  grad_in[1] = NULL;
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_embedding_scatter = { "embedding_scatter", 0, scatter_shape, scatter_forward, scatter_backward };

static ut_tensor *embedding_scatter(ut_graph *g, ut_tensor *grad, ut_tensor *indices, int64_t n_rows) {
  ut_tensor *in[2] = { grad, indices };
  return ut_node_new(g, &op_embedding_scatter, 2, in, &n_rows, 1, NULL, 0);
}

/* ---- int32 constants --------------------------------------------------------------------------- */

/* A float constant node re-typed: the plan uploads a constant's 4-byte elements as they are,
 * so the int32 bit patterns arrive intact. */
ut_tensor *ut_constant_i32(ut_graph *g, ut_shape shape, const int32_t *values) {
  if (!g) return NULL;
  if (!values) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "constant_i32: no values");
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  _Static_assert(sizeof(float) == sizeof(int32_t), "int32 constants travel in float storage");
  int64_t count = ut_shape_numel(shape);
  float *bits = count > 0 ? ut_graph_alloc(g, (size_t)count * sizeof *bits) : NULL;
  if (count > 0 && !bits) {
    ut_fail(UT_ERR_HOST_MEMORY, "constant_i32: out of host memory");
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  if (bits) memcpy(bits, values, (size_t)count * sizeof *bits);
  ut_tensor *t = ut_constant(g, shape, bits);
  if (t) {
    t->dtype = UT_I32;
    t->iattr[5] = UT_I32; /* where source nodes keep their dtype */
  }
  return t;
}
