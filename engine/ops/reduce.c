/* Sums over chosen dimensions (kept with size 1), and the means and broadcast-undoing sums
 * built on them. */
#include "broadcast.h"
#include "error.h"
#include "plan_internal.h"

static ut_status sum_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  unsigned axes = (unsigned)n->iattr[0];
  if (axes >> x->shape.rank)
    return ut_fail(UT_ERR_SHAPE, "sum: axis mask 0x%x names dimensions beyond rank %d of '%s'", axes, x->shape.rank, x->name);
  n->shape = x->shape;
  for (int i = 0; i < x->shape.rank; i++)
    if (axes & (1u << i)) n->shape.d[i] = 1;
  return UT_OK;
}

/* A power of two: the tree in the kernel halves the group each step. */
static size_t group_size(ut_plan *p, int64_t n_red) {
  size_t max = ut_plan_local_size(p), g = 1;
  while (g * 2 <= max && (int64_t)g < n_red) g *= 2;
  return g;
}

static ut_status sum_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0];
  int xd[4], keep[4], red[4], xs[4];
  ut_dims4(x->shape, xd);
  ut_bcast_strides(x->shape, x->shape, xs);
  unsigned axes = (unsigned)n->iattr[0];
  int64_t n_red = 1;
  for (int i = 0; i < 4; i++) {
    int dim = x->shape.rank - 4 + i; /* the original dimension behind padded slot i */
    int reduced = dim >= 0 && (axes & (1u << dim));
    keep[i] = reduced ? 1 : xd[i];
    red[i] = reduced ? xd[i] : 1;
    n_red *= red[i];
  }
  size_t local = group_size(p, n_red);
  ut_launch *l = ut_plan_kernel(p, n, "reduce", "reduce_sum");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_uint(l, (unsigned)n_red);
  ut_arg_int4(l, keep);
  ut_arg_int4(l, red);
  ut_arg_int4(l, xs);
  ut_arg_local(l, local * sizeof(float));
  ut_launch_range(l, (size_t)ut_shape_numel(n->shape) * local, local);
  return UT_OK;
}

static ut_status sum_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_broadcast(g, grad, n->in[0]->shape);
  return UT_OK;
}

static const ut_op_def op_sum = { "sum", 0, sum_shape, sum_forward, sum_backward };

ut_tensor *ut_sum(ut_graph *g, ut_tensor *x, unsigned axes) {
  int64_t a = axes;
  return ut_node_new(g, &op_sum, 1, &x, &a, 1, NULL, 0);
}

ut_tensor *ut_mean(ut_graph *g, ut_tensor *x, unsigned axes) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  int64_t count = 1;
  for (int i = 0; i < x->shape.rank; i++)
    if (axes & (1u << i)) count *= x->shape.d[i];
  return ut_scale(g, ut_sum(g, x, axes), 1.0f / (float)count);
}

ut_tensor *ut_sum_all(ut_graph *g, ut_tensor *x) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  return ut_reshape(g, ut_sum(g, x, (1u << x->shape.rank) - 1), UT_SHAPE(1));
}

ut_tensor *ut_mean_all(ut_graph *g, ut_tensor *x) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  return ut_scale(g, ut_sum_all(g, x), 1.0f / (float)ut_shape_numel(x->shape));
}

ut_tensor *ut_sum_to(ut_graph *g, ut_tensor *x, ut_shape shape) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (ut_shape_equal(x->shape, shape)) return x;
  ut_shape check;
  if (shape.rank > x->shape.rank || ut_broadcast_shape(x->shape, shape, &check) != UT_OK || !ut_shape_equal(check, x->shape)) {
    char a[64], b[64];
    ut_fail(UT_ERR_SHAPE, "sum_to: %s ('%s') does not broadcast from %s", ut_shape_str(x->shape, a, sizeof a), x->name,
            ut_shape_str(shape, b, sizeof b));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  unsigned axes = 0;
  int lead = x->shape.rank - shape.rank;
  for (int i = 0; i < x->shape.rank; i++)
    if (i < lead || (shape.d[i - lead] == 1 && x->shape.d[i] != 1)) axes |= 1u << i;
  ut_tensor *s = axes ? ut_sum(g, x, axes) : x;
  return ut_reshape(g, s, shape);
}
