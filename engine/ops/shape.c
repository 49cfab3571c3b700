/* Ops that change a tensor's shape: reshape (a view, no copy) and broadcast (a copy). */
#include "broadcast.h"
#include "error.h"
#include "plan_internal.h"

static ut_status reshape_shape(ut_tensor *n) {
  ut_shape s = { .rank = (int)n->iattr[0] };
  for (int i = 0; i < s.rank && i < UT_MAX_RANK; i++) s.d[i] = n->iattr[1 + i];
  if (s.rank < 1 || s.rank > UT_MAX_RANK || ut_shape_numel(s) != ut_shape_numel(n->in[0]->shape)) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "reshape: '%s' of shape %s cannot become %s", n->in[0]->name,
                   ut_shape_str(n->in[0]->shape, a, sizeof a), ut_shape_str(s, b, sizeof b));
  }
  n->shape = s;
  n->dtype = n->in[0]->dtype;
  return UT_OK;
}

static ut_status reshape_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_reshape(g, grad, n->in[0]->shape);
  return UT_OK;
}

static const ut_op_def op_reshape = { "reshape", UT_OP_VIEW, reshape_shape, NULL, reshape_backward };

ut_tensor *ut_reshape(ut_graph *g, ut_tensor *x, ut_shape shape) {
  if (x && ut_shape_equal(x->shape, shape)) return x;
  int64_t a[1 + UT_MAX_RANK] = { shape.rank };
  for (int i = 0; i < shape.rank && i < UT_MAX_RANK; i++) a[1 + i] = shape.d[i];
  return ut_node_new(g, &op_reshape, 1, &x, a, 1 + UT_MAX_RANK, NULL, 0);
}

static ut_status broadcast_shape(ut_tensor *n) {
  ut_shape target = { .rank = (int)n->iattr[0] }, check;
  for (int i = 0; i < target.rank && i < UT_MAX_RANK; i++) target.d[i] = n->iattr[1 + i];
  if (n->in[0]->shape.rank > target.rank || ut_broadcast_shape(n->in[0]->shape, target, &check) != UT_OK ||
      !ut_shape_equal(check, target)) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "broadcast: '%s' of shape %s does not stretch to %s", n->in[0]->name,
                   ut_shape_str(n->in[0]->shape, a, sizeof a), ut_shape_str(target, b, sizeof b));
  }
  n->shape = target;
  return UT_OK;
}

static ut_status broadcast_forward(ut_plan *p, ut_tensor *n) {
  int dims[4], xs[4];
  ut_dims4(n->shape, dims);
  ut_bcast_strides(n->in[0]->shape, n->shape, xs);
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "elementwise", "broadcast_copy");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_int4(l, dims);
  ut_arg_int4(l, xs);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_status broadcast_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_sum_to(g, grad, n->in[0]->shape);
  return UT_OK;
}

static const ut_op_def op_broadcast = { "broadcast", 0, broadcast_shape, broadcast_forward, broadcast_backward };

ut_tensor *ut_broadcast(ut_graph *g, ut_tensor *x, ut_shape shape) {
  if (x && ut_shape_equal(x->shape, shape)) return x;
  int64_t a[1 + UT_MAX_RANK] = { shape.rank };
  for (int i = 0; i < shape.rank && i < UT_MAX_RANK; i++) a[1 + i] = shape.d[i];
  return ut_node_new(g, &op_broadcast, 1, &x, a, 1 + UT_MAX_RANK, NULL, 0);
}
