/* A range of batch entries (dimension 0) and its adjoint, the range placed in zeros. Kernels in
 * cl/batch.cl.
 *
 * Both are copies, not views: a view shares its input's buffer and offset in the plan, and an
 * offset into the middle of a tensor has no place in that scheme. The two ops are each other's
 * adjoint, so gradients of any order stay inside the pair. */
#include "error.h"
#include "plan_internal.h"

/* Elements per batch entry. */
static int64_t row_size(ut_shape s) { return ut_shape_numel(s) / s.d[0]; }

/* iattr: start, count (slice) or start, total (pad). */
static ut_status slice_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  int64_t start = n->iattr[0], count = n->iattr[1];
  char a[64];
  if (x->dtype != UT_F32 || start < 0 || count < 1 || start + count > x->shape.d[0])
    return ut_fail(UT_ERR_SHAPE, "slice_batch: entries [%lld, %lld) are not inside the %lld of f32 '%s' %s", (long long)start,
                   (long long)(start + count), (long long)x->shape.d[0], x->name, ut_shape_str(x->shape, a, sizeof a));
  n->shape = x->shape;
  n->shape.d[0] = count;
  return UT_OK;
}

static ut_status pad_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  int64_t start = n->iattr[0], total = n->iattr[1];
  if (x->dtype != UT_F32 || start < 0 || start + x->shape.d[0] > total) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "pad_batch: the %lld entries of f32 '%s' %s do not fit at %lld of %lld", (long long)x->shape.d[0],
                   x->name, ut_shape_str(x->shape, a, sizeof a), (long long)start, (long long)total);
  }
  n->shape = x->shape;
  n->shape.d[0] = total;
  return UT_OK;
}

static ut_status slice_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "batch", "rows_slice");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_uint(l, (unsigned)(n->iattr[0] * row_size(n->shape)));
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_status pad_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "batch", "rows_pad");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_uint(l, (unsigned)(n->iattr[0] * row_size(n->shape)));
  ut_arg_uint(l, (unsigned)ut_shape_numel(n->in[0]->shape));
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_tensor *pad_batch(ut_graph *g, ut_tensor *x, int64_t start, int64_t total);

static ut_status slice_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = pad_batch(g, grad, n->iattr[0], n->in[0]->shape.d[0]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}
static ut_status pad_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_slice_batch(g, grad, n->iattr[0], n->in[0]->shape.d[0]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_slice = { "slice_batch", 0, slice_shape, slice_forward, slice_backward };
static const ut_op_def op_pad = { "pad_batch", 0, pad_shape, pad_forward, pad_backward };

static ut_tensor *pad_batch(ut_graph *g, ut_tensor *x, int64_t start, int64_t total) {
  if (x && start == 0 && total == x->shape.d[0]) return x;
  int64_t a[2] = { start, total };
  return ut_node_new(g, &op_pad, 1, &x, a, 2, NULL, 0);
}

ut_tensor *ut_slice_batch(ut_graph *g, ut_tensor *x, int64_t start, int64_t count) {
  if (x && start == 0 && count == x->shape.d[0]) return x;
  int64_t a[2] = { start, count };
  return ut_node_new(g, &op_slice, 1, &x, a, 2, NULL, 0);
}
