/* Fused instance normalisation and AdaIN (cl/norm.cl): one work-group per (sample, channel)
 * plane computes the plane's statistics and writes its output in one kernel, where the
 * composites of norm.c ran seven full-size ops forward and more backward.
 *
 * Three ops, on x [B, C, H, W] with planes of N = H*W elements, xhat = (x - mean) * rstd,
 * rstd = 1 / sqrt(var + eps) (biased variance), s and t the plane's scale and bias:
 *
 *   plane_norm             x, [scale], [bias]  -> y  = xhat * s + t
 *   plane_norm_grad        x, dy, [scale]      -> dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
 *                                                      g = dy * s
 *   plane_norm_param_grad  x, dy               -> [2, B, C]: sums over the plane of dy * xhat
 *                                                 (entry 0) and of dy (entry 1)
 *
 * Scale and bias are [C] (per channel) or [B, C] (per plane), as the attribute A_PARAMS says.
 * plane_norm's backward is dx = plane_norm_grad and dscale, dbias = the two entries of
 * plane_norm_param_grad (summed over B for [C]). Every backward builder below is made of these
 * three ops and ordinary graph ops, so gradients are differentiable again (R1 penalties need
 * second order). No statistics are kept between the ops: each recomputes them from x, which
 * costs a re-read of a plane that is usually still in the cache, and keeps every op a node
 * with one output, as the engine's nodes are.
 *
 * The backward of plane_norm_grad, for an upstream gradient u of dx (sums over the plane,
 * J(v) = rstd * (v - mean(v) - xhat * mean(v * xhat)), the adjoint of x -> xhat applied to v,
 * which is plane_norm_grad of (x, v) without a scale):
 *   d/dg  = J(u)                 so d/ddy = s * J(u) and d/ds = sum(dy * J(u))
 *   d/dx  = -rstd / N * (xhat * sum(u * dx) + dx * sum(u * xhat)) - rstd * mean(g * xhat) * J(u)
 * (dx depends on x through rstd, whose derivative is -rstd^2 * xhat / N, and through xhat,
 * both in mean(g * xhat) and as the factor of it; the terms in sum(u * dx) and sum(u * xhat)
 * collect them). The backward of plane_norm_param_grad, for an upstream (w, v) [2, B, C]:
 *   d/ddy = w * xhat + v,  d/dx = w * J(dy). */
#include <stdint.h>

#include "error.h"
#include "norm_internal.h"
#include "plan_internal.h"

/* Attributes. plane_norm: the input index of the scale and of the bias (0: none, as input 0 is
 * x). plane_norm_grad: the scale, if any, is input 2. A_WIDTH: work-items per plane asked for
 * (0: the device's choice, group_size), passed on to the backward's ops so that a test can
 * run the wide-group path on a CPU too. fattr[0] is eps for all three. */
enum { A_PARAMS, A_SCALE, A_BIAS, A_WIDTH, N_ATTRS };

static const ut_op_def op_plane_norm, op_plane_norm_grad, op_plane_norm_param_grad;

/* ---- shape rules ------------------------------------------------------------------------------- */

static ut_status check_x(const ut_tensor *n, const ut_tensor *x) {
  char s[64];
  if (x->dtype != UT_F32 || x->shape.rank != 4)
    return ut_fail(UT_ERR_SHAPE, "%s: input '%s' of shape %s must be an f32 [B, C, H, W] tensor", n->op->name, x->name,
                   ut_shape_str(x->shape, s, sizeof s));
  /* The kernels index with 32-bit unsigned offsets, as every kernel of the engine. */
  if (ut_shape_numel(x->shape) > (int64_t)UINT32_MAX)
    return ut_fail(UT_ERR_SHAPE, "%s: input '%s' of shape %s has more than 2^32 - 1 elements", n->op->name, x->name,
                   ut_shape_str(x->shape, s, sizeof s));
  return UT_OK;
}

static ut_status check_same(const ut_tensor *n, const ut_tensor *x, const ut_tensor *dy) {
  if (dy->dtype == UT_F32 && ut_shape_equal(dy->shape, x->shape)) return UT_OK;
  char a[64], b[64];
  return ut_fail(UT_ERR_SHAPE, "%s: gradient '%s' of shape %s must be an f32 tensor of the shape of '%s' %s", n->op->name,
                 dy->name, ut_shape_str(dy->shape, a, sizeof a), x->name, ut_shape_str(x->shape, b, sizeof b));
}

/* A scale or bias: [C] per channel, [B, C] per plane. */
static ut_status check_param(const ut_tensor *n, const ut_tensor *x, const ut_tensor *v, const char *what) {
  ut_shape want = n->iattr[A_PARAMS] == UT_NORM_PER_PLANE ? UT_SHAPE(x->shape.d[0], x->shape.d[1]) : UT_SHAPE(x->shape.d[1]);
  if (v->dtype == UT_F32 && ut_shape_equal(v->shape, want)) return UT_OK;
  char a[64], b[64], c[64];
  return ut_fail(UT_ERR_SHAPE, "%s: %s '%s' of shape %s must be %s for input '%s' %s", n->op->name, what, v->name,
                 ut_shape_str(v->shape, a, sizeof a), ut_shape_str(want, b, sizeof b), x->name,
                 ut_shape_str(x->shape, c, sizeof c));
}

static ut_status plane_norm_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_status st = check_x(n, x);
  if (st == UT_OK && n->iattr[A_SCALE]) st = check_param(n, x, n->in[n->iattr[A_SCALE]], "scale");
  if (st == UT_OK && n->iattr[A_BIAS]) st = check_param(n, x, n->in[n->iattr[A_BIAS]], "bias");
  n->shape = x->shape;
  return st;
}

static ut_status plane_norm_grad_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_status st = check_x(n, x);
  if (st == UT_OK) st = check_same(n, x, n->in[1]);
  if (st == UT_OK && n->n_in > 2) st = check_param(n, x, n->in[2], "scale");
  n->shape = x->shape;
  return st;
}

static ut_status param_grad_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_status st = check_x(n, x);
  if (st == UT_OK) st = check_same(n, x, n->in[1]);
  n->shape = UT_SHAPE(2, x->shape.d[0], x->shape.d[1]);
  return st;
}

/* ---- launches ---------------------------------------------------------------------------------- */

static int64_t plane_elems(const ut_tensor *x) { return x->shape.d[2] * x->shape.d[3]; }

/* Work-items per plane: a power of two no larger than the device allows, and no larger than
 * the plane needs (a 1x1 plane gets one, a 3x5 plane 16). On a CPU device a work-group runs
 * on one core with its work-items as a loop, so width only adds barriers and strided access
 * there, while the B*C groups already spread over the cores: one work-item streams its plane
 * contiguously (PoCL, [32, 32, 32, 32]: width 256 ran 8x slower than 1, width 4 and 16 a
 * little slower; [32, 64, 8, 8] and [2, 8, 256, 256] alike). A width asked for by A_WIDTH
 * replaces the device's limit when smaller, and the CPU rule. */
static size_t group_size(ut_plan *p, const ut_tensor *n) {
  int64_t plane = plane_elems(n->in[0]), want = n->iattr[A_WIDTH];
  size_t max = ut_plan_local_size(p), g = 1;
  if (want > 0 && (size_t)want < max) max = (size_t)want;
  if (!want && ut_runtime_device(ut_plan_runtime(p))->type == UT_DEVICE_CPU) return 1;
  while (g * 2 <= max && (int64_t)g < plane) g *= 2;
  return g;
}

/* The per-plane scale index is b * pstride + c (cl/norm.cl). */
static unsigned param_stride(const ut_tensor *n) {
  return n->iattr[A_PARAMS] == UT_NORM_PER_PLANE ? (unsigned)n->in[0]->shape.d[1] : 0u;
}

static ut_status plane_norm_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0], *scale = n->iattr[A_SCALE] ? n->in[n->iattr[A_SCALE]] : NULL;
  ut_tensor *bias = n->iattr[A_BIAS] ? n->in[n->iattr[A_BIAS]] : NULL;
  int64_t plane = plane_elems(x);
  size_t local = group_size(p, n);
  ut_launch *l = ut_plan_kernel(p, n, "norm", "plane_norm_forward");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_tensor(l, scale ? scale : x); /* any valid buffer when there is none */
  ut_arg_tensor(l, bias ? bias : x);
  ut_arg_uint(l, (unsigned)plane);
  ut_arg_float(l, 1.0f / (float)plane);
  ut_arg_float(l, n->fattr[0]);
  ut_arg_int(l, scale != NULL);
  ut_arg_int(l, bias != NULL);
  ut_arg_uint(l, param_stride(n));
  ut_arg_local(l, local * sizeof(float));
  ut_launch_range2(l, (size_t)x->shape.d[1] * local, (size_t)x->shape.d[0], local, 1);
  return UT_OK;
}

static ut_status plane_norm_grad_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0], *scale = n->n_in > 2 ? n->in[2] : NULL;
  int64_t plane = plane_elems(x);
  size_t local = group_size(p, n);
  ut_launch *l = ut_plan_kernel(p, n, "norm", "plane_norm_backward");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_tensor(l, scale ? scale : x);
  ut_arg_uint(l, (unsigned)plane);
  ut_arg_float(l, 1.0f / (float)plane);
  ut_arg_float(l, n->fattr[0]);
  ut_arg_int(l, scale != NULL);
  ut_arg_uint(l, param_stride(n));
  ut_arg_local(l, local * 4 * sizeof(float));
  ut_launch_range2(l, (size_t)x->shape.d[1] * local, (size_t)x->shape.d[0], local, 1);
  return UT_OK;
}

static ut_status param_grad_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0];
  int64_t plane = plane_elems(x);
  size_t local = group_size(p, n);
  ut_launch *l = ut_plan_kernel(p, n, "norm", "plane_norm_param_grad");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_uint(l, (unsigned)plane);
  ut_arg_float(l, 1.0f / (float)plane);
  ut_arg_float(l, n->fattr[0]);
  ut_arg_local(l, local * 4 * sizeof(float));
  ut_launch_range(l, (size_t)(x->shape.d[0] * x->shape.d[1]) * local, local);
  return UT_OK;
}

/* ---- node constructors ------------------------------------------------------------------------- */

ut_tensor *ut_plane_norm(ut_graph *g, ut_tensor *x, ut_tensor *scale, ut_tensor *bias, ut_norm_params params, float eps,
                         int width) {
  ut_tensor *in[3] = { x };
  int n_in = 1;
  int64_t a[N_ATTRS] = { params, 0, 0, width };
  if (scale) a[A_SCALE] = n_in, in[n_in++] = scale;
  if (bias) a[A_BIAS] = n_in, in[n_in++] = bias;
  return ut_node_new(g, &op_plane_norm, n_in, in, a, N_ATTRS, &eps, 1);
}

static ut_tensor *plane_norm_grad(ut_graph *g, ut_tensor *x, ut_tensor *dy, ut_tensor *scale, int64_t params, float eps,
                                  int64_t width) {
  ut_tensor *in[3] = { x, dy, scale };
  int64_t a[N_ATTRS] = { params, 0, 0, width };
  return ut_node_new(g, &op_plane_norm_grad, scale ? 3 : 2, in, a, N_ATTRS, &eps, 1);
}

static ut_tensor *param_grad_sums(ut_graph *g, ut_tensor *x, ut_tensor *dy, float eps, int64_t width) {
  ut_tensor *in[2] = { x, dy };
  int64_t a[N_ATTRS] = { UT_NORM_PER_PLANE, 0, 0, width };
  return ut_node_new(g, &op_plane_norm_param_grad, 2, in, a, N_ATTRS, &eps, 1);
}

/* Entry `which` of a [2, B, C] tensor as [B, C, 1, 1]. */
static ut_tensor *entry4(ut_graph *g, ut_tensor *t, int which) {
  ut_tensor *e = ut_slice_batch(g, t, which, 1);
  return e ? ut_reshape(g, e, UT_SHAPE(t->shape.d[1], t->shape.d[2], 1, 1)) : NULL;
}

/* ---- backward builders ------------------------------------------------------------------------- */

#define PLANE_AXES ((1u << 2) | (1u << 3))

/* A scale as a tensor that broadcasts over x: [B, C, 1, 1] or [1, C, 1, 1]. */
static ut_tensor *scale4(ut_graph *g, ut_tensor *s, const ut_tensor *x, int64_t params) {
  int64_t b = params == UT_NORM_PER_PLANE ? x->shape.d[0] : 1;
  return ut_reshape(g, s, UT_SHAPE(b, x->shape.d[1], 1, 1));
}

/* A per-plane gradient [B, C, 1, 1] or [B, C] as the gradient of a scale or bias of the op's
 * kind: itself as [B, C], or its sum over the batch as [C]. */
static ut_tensor *param_grad(ut_graph *g, ut_tensor *v, const ut_tensor *x, int64_t params) {
  ut_shape bc = UT_SHAPE(x->shape.d[0], x->shape.d[1]);
  ut_tensor *t = ut_reshape(g, v, bc);
  if (params == UT_NORM_PER_PLANE) return t;
  return ut_reshape(g, ut_sum(g, t, 1u), UT_SHAPE(x->shape.d[1]));
}

static ut_status plane_norm_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_tensor *x = n->in[0];
  int64_t params = n->iattr[A_PARAMS], si = n->iattr[A_SCALE], bi = n->iattr[A_BIAS], width = n->iattr[A_WIDTH];
  float eps = n->fattr[0];
  grad_in[0] = plane_norm_grad(g, x, grad, si ? n->in[si] : NULL, params, eps, width);
  if (si || bi) {
    /* one kernel for both: it costs little more than either alone */
    ut_tensor *sums = param_grad_sums(g, x, grad, eps, width);
    if (si) grad_in[si] = param_grad(g, entry4(g, sums, 0), x, params);
    if (bi) grad_in[bi] = param_grad(g, entry4(g, sums, 1), x, params);
  }
  return ut_graph_status(g);
}

static ut_status plane_norm_grad_backward(ut_graph *g, ut_tensor *n, ut_tensor *u, ut_tensor **grad_in) {
  ut_tensor *x = n->in[0], *dy = n->in[1], *s = n->n_in > 2 ? scale4(g, n->in[2], x, n->iattr[A_PARAMS]) : NULL;
  float eps = n->fattr[0], inv_n = 1.0f / (float)plane_elems(x);
  int64_t width = n->iattr[A_WIDTH];
  ut_tensor *ju = plane_norm_grad(g, x, u, NULL, UT_NORM_PER_PLANE, eps, width); /* J(u) = d/dg */
  grad_in[1] = s ? ut_mul(g, ju, s) : ju;
  if (s) grad_in[2] = param_grad(g, ut_sum(g, ut_mul(g, dy, ju), PLANE_AXES), x, n->iattr[A_PARAMS]);

  /* rstd from composite ops: per plane, and only built for second order, where its few small
   * reductions are not the cost. */
  ut_tensor *centered = ut_sub(g, x, ut_mean(g, x, PLANE_AXES));
  ut_tensor *var = ut_mean(g, ut_square(g, centered), PLANE_AXES);
  ut_tensor *rstd = ut_div(g, ut_scalar(g, 1.0f), ut_sqrt(g, ut_shift(g, var, eps)));
  ut_tensor *xhat = ut_plane_norm(g, x, NULL, NULL, UT_NORM_PER_PLANE, eps, (int)width);
  ut_tensor *sum_u_dx = ut_sum(g, ut_mul(g, u, n), PLANE_AXES), *sum_u_xhat = ut_sum(g, ut_mul(g, u, xhat), PLANE_AXES);
  ut_tensor *mean_gx = ut_scale(g, entry4(g, param_grad_sums(g, x, dy, eps, width), 0), inv_n); /* mean(g * xhat) / s */
  if (s) mean_gx = ut_mul(g, mean_gx, s);
  ut_tensor *inner = ut_add(g, ut_mul(g, xhat, sum_u_dx), ut_mul(g, n, sum_u_xhat));
  inner = ut_add(g, ut_scale(g, inner, inv_n), ut_mul(g, mean_gx, ju));
  grad_in[0] = ut_neg(g, ut_mul(g, rstd, inner));
  return ut_graph_status(g);
}

static ut_status param_grad_backward(ut_graph *g, ut_tensor *n, ut_tensor *wv, ut_tensor **grad_in) {
  ut_tensor *x = n->in[0], *dy = n->in[1], *w = entry4(g, wv, 0), *v = entry4(g, wv, 1);
  float eps = n->fattr[0];
  int64_t width = n->iattr[A_WIDTH];
  grad_in[0] = ut_mul(g, w, plane_norm_grad(g, x, dy, NULL, UT_NORM_PER_PLANE, eps, width));
  grad_in[1] = ut_add(g, ut_mul(g, w, ut_plane_norm(g, x, NULL, NULL, UT_NORM_PER_PLANE, eps, (int)width)), v);
  return ut_graph_status(g);
}

static const ut_op_def op_plane_norm = { "plane_norm", 0, plane_norm_shape, plane_norm_forward, plane_norm_backward };
static const ut_op_def op_plane_norm_grad = { "plane_norm_grad", 0, plane_norm_grad_shape, plane_norm_grad_forward,
                                              plane_norm_grad_backward };
static const ut_op_def op_plane_norm_param_grad = { "plane_norm_param_grad", 0, param_grad_shape, param_grad_forward,
                                                    param_grad_backward };
