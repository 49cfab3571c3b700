/* Elementwise ops: unary maps and broadcasting binary arithmetic, with their gradients built
 * from the same ops so that they can be differentiated again. */
#include <stdio.h>

#include "broadcast.h"
#include "error.h"
#include "plan_internal.h"

/* ---- unary --------------------------------------------------------------------------------- */

static ut_status same_shape(ut_tensor *n) {
  if (n->in[0]->dtype != UT_F32) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: input '%s' is not f32", n->op->name, n->in[0]->name);
  n->shape = n->in[0]->shape;
  return UT_OK;
}

static ut_status unary_forward(ut_plan *p, ut_tensor *n) {
  char kernel[64];
  snprintf(kernel, sizeof kernel, "unary_%s", n->op->name);
  ut_launch *l = ut_plan_kernel(p, n, "elementwise", kernel);
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_float(l, n->fattr[0]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_tensor *unary(ut_graph *g, const ut_op_def *op, ut_tensor *x, float p) {
  return ut_node_new(g, op, 1, &x, NULL, 0, &p, 1);
}

#define G_IN(i) grad_in[i]

/* ---- activation gradients ------------------------------------------------------------------ */

/* dx = f'(.) dy in one kernel, for an activation's input t (leaky ReLU, ReLU) or output (sigmoid,
 * tanh) and dy of the same shape: one pass over memory where mul(dy, chain of unary ops) took
 * two to five. Their own gradients are graph ops, so a second ut_backward goes through them. */
static ut_status act_grad_shape(ut_tensor *n) {
  ut_tensor *t = n->in[0], *d = n->in[1];
  if (t->dtype != UT_F32 || d->dtype != UT_F32)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: inputs must be f32 ('%s', '%s')", n->op->name, t->name, d->name);
  if (!ut_shape_equal(t->shape, d->shape)) {
    char st[64], sd[64];
    return ut_fail(UT_ERR_SHAPE, "%s: activation %s ('%s') and gradient %s ('%s') differ", n->op->name,
                   ut_shape_str(t->shape, st, sizeof st), t->name, ut_shape_str(d->shape, sd, sizeof sd), d->name);
  }
  n->shape = t->shape;
  return UT_OK;
}

static ut_status act_grad_forward(ut_plan *p, ut_tensor *n) {
  ut_launch *l = ut_plan_kernel(p, n, "elementwise", n->op->name);
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_float(l, n->fattr[0]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_tensor *act_grad(ut_graph *g, const ut_op_def *op, ut_tensor *t, ut_tensor *dy, float p) {
  ut_tensor *in[2] = { t, dy };
  return ut_node_new(g, op, 2, in, NULL, 0, &p, 1);
}

static ut_status back_leaky_relu_grad(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in);
static ut_status back_sigmoid_grad(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in);
static ut_status back_tanh_grad(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in);
static const ut_op_def op_leaky_relu_grad = { "leaky_relu_grad", UT_OP_INPLACE, act_grad_shape, act_grad_forward,
                                              back_leaky_relu_grad };
static const ut_op_def op_sigmoid_grad = { "sigmoid_grad", UT_OP_INPLACE, act_grad_shape, act_grad_forward,
                                           back_sigmoid_grad };
static const ut_op_def op_tanh_grad = { "tanh_grad", UT_OP_INPLACE, act_grad_shape, act_grad_forward, back_tanh_grad };

/* Linear in dy with the same factor; piecewise constant in x (no gradient flows to it). */
static ut_status back_leaky_relu_grad(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(1) = act_grad(g, &op_leaky_relu_grad, n->in[0], gr, n->fattr[0]);
  return UT_OK;
}
/* d/dy [dy y (1 - y)] = dy (1 - 2y) */
static ut_status back_sigmoid_grad(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_mul(g, ut_mul(g, gr, n->in[1]), ut_shift(g, ut_scale(g, n->in[0], -2.0f), 1.0f));
  G_IN(1) = act_grad(g, &op_sigmoid_grad, n->in[0], gr, 0.0f);
  return UT_OK;
}
/* d/dy [dy (1 - y^2)] = -2 y dy */
static ut_status back_tanh_grad(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_mul(g, ut_mul(g, gr, n->in[1]), ut_scale(g, n->in[0], -2.0f));
  G_IN(1) = act_grad(g, &op_tanh_grad, n->in[0], gr, 0.0f);
  return UT_OK;
}

/* ---- unary gradients and op table ---------------------------------------------------------- */

static ut_status back_neg(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) { G_IN(0) = ut_neg(g, gr); return UT_OK; }
static ut_status back_abs(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_mul(g, gr, ut_sign(g, n->in[0]));
  return UT_OK;
}
static ut_status back_exp(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) { G_IN(0) = ut_mul(g, gr, n); return UT_OK; }
static ut_status back_log(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) { G_IN(0) = ut_div(g, gr, n->in[0]); return UT_OK; }
static ut_status back_sqrt(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_div(g, ut_scale(g, gr, 0.5f), n);
  return UT_OK;
}
static ut_status back_square(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_mul(g, gr, ut_scale(g, n->in[0], 2.0f));
  return UT_OK;
}
static ut_status back_relu(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = act_grad(g, &op_leaky_relu_grad, n->in[0], gr, 0.0f);
  return UT_OK;
}
static ut_status back_leaky_relu(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = act_grad(g, &op_leaky_relu_grad, n->in[0], gr, n->fattr[0]);
  return UT_OK;
}
static ut_status back_tanh(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = act_grad(g, &op_tanh_grad, n, gr, 0.0f); /* dy (1 - y^2) */
  return UT_OK;
}
static ut_status back_sigmoid(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = act_grad(g, &op_sigmoid_grad, n, gr, 0.0f); /* dy y (1 - y) */
  return UT_OK;
}
static ut_status back_scale(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_scale(g, gr, n->fattr[0]);
  return UT_OK;
}
static ut_status back_shift(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) { G_IN(0) = gr; return UT_OK; }

#define UNARY_OP(name, back) static const ut_op_def op_##name = { #name, UT_OP_INPLACE, same_shape, unary_forward, back };
UNARY_OP(neg, back_neg)
UNARY_OP(abs, back_abs)
UNARY_OP(sign, NULL) /* piecewise constant: no gradient flows */
UNARY_OP(exp, back_exp)
UNARY_OP(log, back_log)
UNARY_OP(sqrt, back_sqrt)
UNARY_OP(square, back_square)
UNARY_OP(relu, back_relu)
UNARY_OP(leaky_relu, back_leaky_relu)
UNARY_OP(tanh, back_tanh)
UNARY_OP(sigmoid, back_sigmoid)
UNARY_OP(step, NULL)
UNARY_OP(scale, back_scale)
UNARY_OP(shift, back_shift)

ut_tensor *ut_neg(ut_graph *g, ut_tensor *x) { return unary(g, &op_neg, x, 0); }
ut_tensor *ut_abs(ut_graph *g, ut_tensor *x) { return unary(g, &op_abs, x, 0); }
ut_tensor *ut_sign(ut_graph *g, ut_tensor *x) { return unary(g, &op_sign, x, 0); }
ut_tensor *ut_exp(ut_graph *g, ut_tensor *x) { return unary(g, &op_exp, x, 0); }
ut_tensor *ut_log(ut_graph *g, ut_tensor *x) { return unary(g, &op_log, x, 0); }
ut_tensor *ut_sqrt(ut_graph *g, ut_tensor *x) { return unary(g, &op_sqrt, x, 0); }
ut_tensor *ut_square(ut_graph *g, ut_tensor *x) { return unary(g, &op_square, x, 0); }
ut_tensor *ut_relu(ut_graph *g, ut_tensor *x) { return unary(g, &op_relu, x, 0); }
ut_tensor *ut_leaky_relu(ut_graph *g, ut_tensor *x, float slope) { return unary(g, &op_leaky_relu, x, slope); }
ut_tensor *ut_tanh(ut_graph *g, ut_tensor *x) { return unary(g, &op_tanh, x, 0); }
ut_tensor *ut_sigmoid(ut_graph *g, ut_tensor *x) { return unary(g, &op_sigmoid, x, 0); }
ut_tensor *ut_step(ut_graph *g, ut_tensor *x, float below) { return unary(g, &op_step, x, below); }
ut_tensor *ut_scale(ut_graph *g, ut_tensor *x, float s) { return unary(g, &op_scale, x, s); }
ut_tensor *ut_shift(ut_graph *g, ut_tensor *x, float s) { return unary(g, &op_shift, x, s); }

/* ---- binary -------------------------------------------------------------------------------- */

static ut_status binary_shape(ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  if (a->dtype != UT_F32 || b->dtype != UT_F32)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: inputs must be f32 ('%s', '%s')", n->op->name, a->name, b->name);
  if (ut_broadcast_shape(a->shape, b->shape, &n->shape) != UT_OK) {
    char sa[64], sb[64];
    return ut_fail(UT_ERR_SHAPE, "%s: shapes %s ('%s') and %s ('%s') do not broadcast", n->op->name,
                   ut_shape_str(a->shape, sa, sizeof sa), a->name, ut_shape_str(b->shape, sb, sizeof sb), b->name);
  }
  return UT_OK;
}

static ut_status binary_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int same = ut_shape_numel(a->shape) == ut_shape_numel(n->shape) && ut_shape_numel(b->shape) == ut_shape_numel(n->shape);
  int ra[4], rb[4], split = same ? -1 : ut_bcast_rows(a->shape, b->shape, n->shape, ra, rb);
  char kernel[64];
  snprintf(kernel, sizeof kernel, "binary_%s_%s", n->op->name, same ? "same" : split >= 0 ? "rows" : "bcast");
  ut_launch *l = ut_plan_kernel(p, n, "elementwise", kernel);
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, a);
  ut_arg_tensor(l, b);
  if (split >= 0) {
    int dims[4];
    size_t cols = 1;
    ut_dims4(n->shape, dims);
    for (int i = split; i < 4; i++) cols *= (size_t)dims[i];
    size_t rows = count / cols;
    ut_arg_uint(l, (unsigned)rows);
    ut_arg_uint(l, (unsigned)cols);
    ut_arg_int4(l, ra);
    ut_arg_int4(l, rb);
    ut_launch_rows(l, cols, rows);
    return UT_OK;
  }
  ut_arg_uint(l, (unsigned)count);
  if (!same) {
    int dims[4], as[4], bs[4];
    ut_dims4(n->shape, dims);
    ut_bcast_strides(a->shape, n->shape, as);
    ut_bcast_strides(b->shape, n->shape, bs);
    ut_arg_int4(l, dims);
    ut_arg_int4(l, as);
    ut_arg_int4(l, bs);
  }
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_status back_add(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_sum_to(g, gr, n->in[0]->shape);
  G_IN(1) = ut_sum_to(g, gr, n->in[1]->shape);
  return UT_OK;
}
static ut_status back_sub(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_sum_to(g, gr, n->in[0]->shape);
  G_IN(1) = ut_neg(g, ut_sum_to(g, gr, n->in[1]->shape));
  return UT_OK;
}
static ut_status back_mul(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_sum_to(g, ut_mul(g, gr, n->in[1]), n->in[0]->shape);
  G_IN(1) = ut_sum_to(g, ut_mul(g, gr, n->in[0]), n->in[1]->shape);
  return UT_OK;
}
static ut_status back_div(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  G_IN(0) = ut_sum_to(g, ut_div(g, gr, n->in[1]), n->in[0]->shape);
  /* d(a/b)/db = -(a/b)/b */
  G_IN(1) = ut_sum_to(g, ut_neg(g, ut_div(g, ut_mul(g, gr, n), n->in[1])), n->in[1]->shape);
  return UT_OK;
}

static const ut_op_def op_add = { "add", UT_OP_INPLACE, binary_shape, binary_forward, back_add };
static const ut_op_def op_sub = { "sub", UT_OP_INPLACE, binary_shape, binary_forward, back_sub };
static const ut_op_def op_mul = { "mul", UT_OP_INPLACE, binary_shape, binary_forward, back_mul };
static const ut_op_def op_div = { "div", UT_OP_INPLACE, binary_shape, binary_forward, back_div };

static ut_tensor *binary(ut_graph *g, const ut_op_def *op, ut_tensor *a, ut_tensor *b) {
  ut_tensor *in[2] = { a, b };
  return ut_node_new(g, op, 2, in, NULL, 0, NULL, 0);
}
ut_tensor *ut_add(ut_graph *g, ut_tensor *a, ut_tensor *b) { return binary(g, &op_add, a, b); }
ut_tensor *ut_sub(ut_graph *g, ut_tensor *a, ut_tensor *b) { return binary(g, &op_sub, a, b); }
ut_tensor *ut_mul(ut_graph *g, ut_tensor *a, ut_tensor *b) { return binary(g, &op_mul, a, b); }
ut_tensor *ut_div(ut_graph *g, ut_tensor *a, ut_tensor *b) { return binary(g, &op_div, a, b); }
