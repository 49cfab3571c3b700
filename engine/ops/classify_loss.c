/* Classification losses: binary cross-entropy with logits and cross-entropy over integer
 * labels, with the small ops they need (softplus, a per-row max with no gradient, one-hot).
 * Kernels in cl/classify_loss.cl. Every loss is a mean and a [1] tensor, built from
 * differentiable ops so that gradients of gradients (R1) work through them. The least-squares
 * and hinge GAN losses are the model kit's (models/kit_losses.c). */
#include "error.h"
#include "plan_internal.h"

static int check_f32(ut_graph *g, const char *op, ut_tensor *x) {
  if (!x) return 0;
  if (x->dtype == UT_F32) return 1;
  ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: input '%s' is not f32", op, x->name);
  ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  return 0;
}

/* ---- softplus ---------------------------------------------------------------------------------- */

static ut_status softplus_shape(ut_tensor *n) {
  if (n->in[0]->dtype != UT_F32) return ut_fail(UT_ERR_INVALID_ARGUMENT, "softplus: input '%s' is not f32", n->in[0]->name);
  n->shape = n->in[0]->shape;
  return UT_OK;
}

static ut_status softplus_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "classify_loss", "softplus");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

/* d softplus(x) / dx = sigmoid(x), exact at 0 too (a composite of relu and abs would give the
 * one-sided derivative there). */
static ut_status softplus_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_mul(g, grad, ut_sigmoid(g, n->in[0]));
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_softplus = { "softplus", 0, softplus_shape, softplus_forward, softplus_backward };

ut_tensor *ut_softplus(ut_graph *g, ut_tensor *x) { return ut_node_new(g, &op_softplus, 1, &x, NULL, 0, NULL, 0); }

/* ---- row max (no gradient) ------------------------------------------------------------------------ */

static ut_status row_max_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  if (x->dtype != UT_F32 || x->shape.rank != 2) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "row_max: '%s' of shape %s must be an f32 [rows, k] tensor", x->name, ut_shape_str(x->shape, a, sizeof a));
  }
  n->shape = UT_SHAPE(x->shape.d[0], 1);
  return UT_OK;
}

static ut_status row_max_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_launch *l = ut_plan_kernel(p, n, "classify_loss", "row_max");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_uint(l, (unsigned)x->shape.d[0]);
  ut_arg_uint(l, (unsigned)x->shape.d[1]);
  ut_launch_range(l, (size_t)x->shape.d[0], 0);
  return UT_OK;
}

/* No backward: autograd stops here. Used only as the shift inside a log-sum-exp, which does
 * not depend on the shift, so treating it as a constant changes no derivative of any order. */
static const ut_op_def op_row_max = { "row_max", 0, row_max_shape, row_max_forward, NULL };

/* ---- one-hot ----------------------------------------------------------------------------------- */

static ut_status one_hot_shape(ut_tensor *n) {
  ut_tensor *l = n->in[0];
  if (l->dtype != UT_I32 || l->shape.rank != 1 || n->iattr[0] < 1) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "one_hot: labels '%s' of shape %s must be a 1-D int32 tensor, and classes (%lld) >= 1", l->name,
                   ut_shape_str(l->shape, a, sizeof a), (long long)n->iattr[0]);
  }
  n->shape = UT_SHAPE(l->shape.d[0], n->iattr[0]);
  return UT_OK;
}

static ut_status one_hot_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "classify_loss", "one_hot");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_uint(l, (unsigned)n->shape.d[1]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static const ut_op_def op_one_hot = { "one_hot", 0, one_hot_shape, one_hot_forward, NULL };

ut_tensor *ut_one_hot(ut_graph *g, ut_tensor *labels, int64_t classes) {
  return ut_node_new(g, &op_one_hot, 1, &labels, &classes, 1, NULL, 0);
}

/* ---- losses ------------------------------------------------------------------------------------ */

ut_tensor *ut_bce_with_logits(ut_graph *g, ut_tensor *logits, ut_tensor *targets) {
  if (!check_f32(g, "bce_with_logits", logits) || !check_f32(g, "bce_with_logits", targets))
    return ut_graph_fail(g, ut_graph_status(g));
  if (!ut_shape_equal(logits->shape, targets->shape)) {
    char a[64], b[64];
    ut_fail(UT_ERR_SHAPE, "bce_with_logits: logits %s ('%s') and targets %s ('%s') differ", ut_shape_str(logits->shape, a, sizeof a),
            logits->name, ut_shape_str(targets->shape, b, sizeof b), targets->name);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  /* max(x,0) - x y + log(1 + exp(-|x|)) = softplus(x) - x y */
  return ut_mean_all(g, ut_sub(g, ut_softplus(g, logits), ut_mul(g, logits, targets)));
}

ut_tensor *ut_bce_with_logits_const(ut_graph *g, ut_tensor *logits, float target) {
  if (!check_f32(g, "bce_with_logits_const", logits)) return ut_graph_fail(g, ut_graph_status(g));
  ut_tensor *sp = ut_softplus(g, logits);
  return ut_mean_all(g, target != 0.0f ? ut_sub(g, sp, ut_scale(g, logits, target)) : sp);
}

/* mean_b [ m_b + log sum_k exp(x_bk - m_b) - x_b,label_b ] with m_b the row max (a constant to
 * autograd, see op_row_max). The label's logit is picked by a one-hot mask, so an
 * out-of-range label picks nothing (its row then adds just the log-sum-exp). */
ut_tensor *ut_cross_entropy(ut_graph *g, ut_tensor *logits, ut_tensor *labels) {
  if (!check_f32(g, "cross_entropy", logits) || !labels) return ut_graph_fail(g, ut_graph_status(g));
  if (logits->shape.rank != 2 || labels->dtype != UT_I32 || labels->shape.rank != 1 || labels->shape.d[0] != logits->shape.d[0]) {
    char a[64], b[64];
    ut_fail(UT_ERR_SHAPE, "cross_entropy: logits '%s' %s must be [B, K] and labels '%s' %s an int32 [B]", logits->name,
            ut_shape_str(logits->shape, a, sizeof a), labels->name, ut_shape_str(labels->shape, b, sizeof b));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  ut_tensor *m = ut_node_new(g, &op_row_max, 1, &logits, NULL, 0, NULL, 0);
  ut_tensor *lse = ut_add(g, m, ut_log(g, ut_sum(g, ut_exp(g, ut_sub(g, logits, m)), 1u << 1)));
  ut_tensor *picked = ut_sum(g, ut_mul(g, logits, ut_one_hot(g, labels, logits->shape.d[1])), 1u << 1);
  return ut_mean_all(g, ut_sub(g, lse, picked));
}
