/* 2-D convolution as three ops (conv_internal.h): the forward pass, the input gradient and the
 * weight gradient. Written as matrices per image b, with col_b = im2col(x_b) [C*kh*kw, OH*OW]:
 *
 *   forward       y_b  = W col_b + bias                  W as [O, C*kh*kw]
 *   grad input    dx_b = col2im(W^T dy_b) + bias          (+ bias: the transposed convolution's)
 *   grad weight   dW   = sum_b dy_b col_b^T
 *
 * All three are linear in each input, and the adjoint of each is made of the three:
 *
 *   conv2d(x, w):           dx = grad_input(dy, w)   dw = grad_weight(dy, x)   db = sum dy
 *   grad_input(dy, w):      d dy = conv2d(g, w)      dw = grad_weight(dy, g)   db = sum g
 *   grad_weight(dy, x):     d dy = conv2d(x, G)      dx = grad_input(dy, G)
 *
 * (g, G: the incoming gradients of dx and dW), so any order of derivative is again these ops.
 *
 * Attributes, the same for all three: kh, kw, stride, pad, reflect, and the image's H and W
 * (which the input gradient cannot infer from dy). B, C and O come from the tensors. */
#include <stdio.h>

#include "conv_internal.h"
#include "error.h"

enum { A_KH, A_KW, A_STRIDE, A_PAD, A_REFLECT, A_H, A_W, N_ATTRS };

ut_status ut_conv_geom_check(const char *op, ut_conv_geom *gm) {
  char what[160];
  snprintf(what, sizeof what, "image [%lld, %lld, %lld, %lld], kernel %lldx%lld, stride %lld, %s pad %lld",
           (long long)gm->b, (long long)gm->c, (long long)gm->h, (long long)gm->w, (long long)gm->kh, (long long)gm->kw,
           (long long)gm->stride, gm->reflect ? "reflect" : "zero", (long long)gm->pad);
  if (gm->kh < 1 || gm->kw < 1 || gm->stride < 1 || gm->pad < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %s: kernel and stride must be positive, pad not negative", op, what);
  if (gm->reflect && (gm->pad >= gm->h || gm->pad >= gm->w))
    return ut_fail(UT_ERR_SHAPE, "%s: %s: reflect padding must be smaller than the image's height and width", op, what);
  if (gm->h + 2 * gm->pad < gm->kh || gm->w + 2 * gm->pad < gm->kw)
    return ut_fail(UT_ERR_SHAPE, "%s: %s: the kernel is larger than the padded image", op, what);
  /* The kernels index with 32-bit ints. */
  if (gm->h + 2 * gm->pad > INT32_MAX / 2 || gm->w + 2 * gm->pad > INT32_MAX / 2 || gm->kh * gm->kw > INT32_MAX / 2)
    return ut_fail(UT_ERR_SHAPE, "%s: %s: too large for 32-bit indexing", op, what);
  gm->oh = (gm->h + 2 * gm->pad - gm->kh) / gm->stride + 1;
  gm->ow = (gm->w + 2 * gm->pad - gm->kw) / gm->stride + 1;
  return UT_OK;
}

/* The geometry of node n from its attributes and the batch and image channels given. */
static ut_conv_geom geom_of(const ut_tensor *n, int64_t b, int64_t c) {
  const int64_t *a = n->iattr;
  ut_conv_geom gm = { .b = b, .c = c, .h = a[A_H], .w = a[A_W], .kh = a[A_KH], .kw = a[A_KW], .stride = a[A_STRIDE],
                      .pad = a[A_PAD], .reflect = (int)a[A_REFLECT] };
  gm.oh = (gm.h + 2 * gm.pad - gm.kh) / gm.stride + 1;
  gm.ow = (gm.w + 2 * gm.pad - gm.kw) / gm.stride + 1;
  return gm;
}

static ut_tensor *make(ut_graph *g, const ut_op_def *op, int n_in, ut_tensor **in, const ut_conv_geom *gm) {
  int64_t a[N_ATTRS] = { [A_KH] = gm->kh, [A_KW] = gm->kw, [A_STRIDE] = gm->stride, [A_PAD] = gm->pad,
                         [A_REFLECT] = gm->reflect, [A_H] = gm->h, [A_W] = gm->w };
  return ut_node_new(g, op, n_in, in, a, N_ATTRS, NULL, 0);
}

/* Checks that tensor t of node n has shape `want`; the message names the op, t and the geometry. */
static ut_status expect_shape(const ut_tensor *n, const ut_tensor *t, const char *role, ut_shape want, const ut_conv_geom *gm) {
  if (t->dtype == UT_F32 && ut_shape_equal(t->shape, want)) return UT_OK;
  char got[64], exp[64];
  return ut_fail(UT_ERR_SHAPE, "%s: %s '%s' is %s %s; the geometry (kernel %lldx%lld, stride %lld, pad %lld, image %lldx%lld) "
                 "needs f32 %s", n->op->name, role, t->name, t->dtype == UT_F32 ? "f32" : "not f32",
                 ut_shape_str(t->shape, got, sizeof got), (long long)gm->kh, (long long)gm->kw, (long long)gm->stride,
                 (long long)gm->pad, (long long)gm->h, (long long)gm->w, ut_shape_str(want, exp, sizeof exp));
}

static int64_t rank4_dim(const ut_tensor *t, int i) { return t->shape.rank == 4 ? t->shape.d[i] : -1; }

/* ---- forward: (x [B, C, H, W], w [O, C, kh, kw], bias [O]?) -> y [B, O, OH, OW] ---------------- */

static ut_status forward_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0], *w = n->in[1];
  ut_conv_geom gm = geom_of(n, rank4_dim(x, 0), rank4_dim(x, 1));
  ut_status st = ut_conv_geom_check("conv2d", &gm);
  int64_t o = rank4_dim(w, 0);
  if (st == UT_OK) st = expect_shape(n, x, "input", UT_SHAPE(gm.b, gm.c, gm.h, gm.w), &gm);
  if (st == UT_OK) st = expect_shape(n, w, "weight", UT_SHAPE(o, gm.c, gm.kh, gm.kw), &gm);
  if (st == UT_OK && n->n_in > 2) st = expect_shape(n, n->in[2], "bias", UT_SHAPE(o), &gm);
  if (st == UT_OK) n->shape = UT_SHAPE(gm.b, o, gm.oh, gm.ow);
  if (st == UT_OK) n->workspace = ut_conv_chunks(n->g->rt, &gm, o, UT_CONV_FORWARD).workspace;
  return st;
}

/* ---- input gradient: (dy [B, O, OH, OW], w [O, C, kh, kw], bias [C]?) -> dx [B, C, H, W] -------- */

static ut_status grad_input_shape(ut_tensor *n) {
  ut_tensor *dy = n->in[0], *w = n->in[1];
  ut_conv_geom gm = geom_of(n, rank4_dim(dy, 0), rank4_dim(w, 1));
  ut_status st = ut_conv_geom_check("conv2d_grad_input", &gm);
  int64_t o = rank4_dim(w, 0);
  if (st == UT_OK) st = expect_shape(n, w, "weight", UT_SHAPE(o, gm.c, gm.kh, gm.kw), &gm);
  if (st == UT_OK) st = expect_shape(n, dy, "output gradient", UT_SHAPE(gm.b, o, gm.oh, gm.ow), &gm);
  if (st == UT_OK && n->n_in > 2) st = expect_shape(n, n->in[2], "bias", UT_SHAPE(gm.c), &gm);
  if (st == UT_OK) n->shape = UT_SHAPE(gm.b, gm.c, gm.h, gm.w);
  if (st == UT_OK) n->workspace = ut_conv_chunks(n->g->rt, &gm, o, UT_CONV_GRAD_INPUT).workspace;
  return st;
}

/* ---- weight gradient: (dy [B, O, OH, OW], x [B, C, H, W]) -> dw [O, C, kh, kw] ----------------- */

static ut_status grad_weight_shape(ut_tensor *n) {
  ut_tensor *dy = n->in[0], *x = n->in[1];
  ut_conv_geom gm = geom_of(n, rank4_dim(x, 0), rank4_dim(x, 1));
  ut_status st = ut_conv_geom_check("conv2d_grad_weight", &gm);
  int64_t o = rank4_dim(dy, 1);
  if (st == UT_OK) st = expect_shape(n, x, "input", UT_SHAPE(gm.b, gm.c, gm.h, gm.w), &gm);
  if (st == UT_OK) st = expect_shape(n, dy, "output gradient", UT_SHAPE(gm.b, o, gm.oh, gm.ow), &gm);
  if (st == UT_OK) n->shape = UT_SHAPE(o, gm.c, gm.kh, gm.kw);
  if (st == UT_OK) n->workspace = ut_conv_chunks(n->g->rt, &gm, o, UT_CONV_GRAD_WEIGHT).workspace;
  return st;
}

/* ---- launches and workspace ------------------------------------------------------------------- */

/* A node's pass, geometry and output channels from its tensors. */
static ut_conv_pass pass_of(const ut_tensor *n, ut_conv_geom *gm, int64_t *o);

static ut_status conv_forward(ut_plan *p, ut_tensor *n) {
  ut_conv_geom gm;
  int64_t o;
  ut_conv_pass pass = pass_of(n, &gm, &o);
  if (ut_conv_chunks(ut_plan_runtime(p), &gm, o, pass).workspace > n->workspace)
    return ut_fail(UT_ERR_STATE, "%s: the runtime's convolution settings changed after the graph was built", n->op->name);
  return ut_plan_runtime(p)->host_gemm ? ut_conv_launch_host(p, n, pass, &gm, o) : ut_conv_launch_device(p, n, pass, &gm, o);
}

/* ---- gradients ---------------------------------------------------------------------------------- */

/* The sum of t [B, K, H, W] over B, H and W, as [K]. */
static ut_tensor *channel_sum(ut_graph *g, ut_tensor *t) {
  return ut_reshape(g, ut_sum(g, t, 1u | 4u | 8u), UT_SHAPE(t->shape.d[1]));
}

static ut_status forward_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_conv_geom gm;
  int64_t o;
  pass_of(n, &gm, &o);
  grad_in[0] = ut_conv_grad_input_node(g, grad, n->in[1], NULL, &gm);
  grad_in[1] = ut_conv_grad_weight_node(g, grad, n->in[0], &gm);
  if (n->n_in > 2) grad_in[2] = channel_sum(g, grad);
  return UT_OK;
}

static ut_status grad_input_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_conv_geom gm;
  int64_t o;
  pass_of(n, &gm, &o);
  grad_in[0] = ut_conv_forward_node(g, grad, n->in[1], NULL, &gm);
  grad_in[1] = ut_conv_grad_weight_node(g, n->in[0], grad, &gm);
  if (n->n_in > 2) grad_in[2] = channel_sum(g, grad);
  return UT_OK;
}

static ut_status grad_weight_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_conv_geom gm;
  int64_t o;
  pass_of(n, &gm, &o);
  grad_in[0] = ut_conv_forward_node(g, n->in[1], grad, NULL, &gm);
  grad_in[1] = ut_conv_grad_input_node(g, n->in[0], grad, NULL, &gm);
  return UT_OK;
}

static const ut_op_def op_forward = { "conv2d", 0, forward_shape, conv_forward, forward_backward };
static const ut_op_def op_grad_input = { "conv2d_grad_input", 0, grad_input_shape, conv_forward, grad_input_backward };
static const ut_op_def op_grad_weight = { "conv2d_grad_weight", 0, grad_weight_shape, conv_forward, grad_weight_backward };

static ut_conv_pass pass_of(const ut_tensor *n, ut_conv_geom *gm, int64_t *o) {
  if (n->op == &op_forward) {
    *gm = geom_of(n, n->in[0]->shape.d[0], n->in[0]->shape.d[1]);
    *o = n->in[1]->shape.d[0];
    return UT_CONV_FORWARD;
  }
  if (n->op == &op_grad_input) {
    *gm = geom_of(n, n->in[0]->shape.d[0], n->in[1]->shape.d[1]);
    *o = n->in[1]->shape.d[0];
    return UT_CONV_GRAD_INPUT;
  }
  *gm = geom_of(n, n->in[1]->shape.d[0], n->in[1]->shape.d[1]);
  *o = n->in[0]->shape.d[1];
  return UT_CONV_GRAD_WEIGHT;
}

ut_tensor *ut_conv_forward_node(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm) {
  ut_tensor *in[3] = { x, w, bias };
  return make(g, &op_forward, bias ? 3 : 2, in, gm);
}

ut_tensor *ut_conv_grad_input_node(ut_graph *g, ut_tensor *dy, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm) {
  ut_tensor *in[3] = { dy, w, bias };
  return make(g, &op_grad_input, bias ? 3 : 2, in, gm);
}

ut_tensor *ut_conv_grad_weight_node(ut_graph *g, ut_tensor *dy, ut_tensor *x, const ut_conv_geom *gm) {
  ut_tensor *in[2] = { dy, x };
  return make(g, &op_grad_weight, 2, in, gm);
}

/* ---- the public calls -------------------------------------------------------------------------- */

ut_tensor *ut_conv2d(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, ut_conv_cfg cfg) {
  if (!g) return NULL;
  if (!x || !w) return ut_graph_fail(g, ut_graph_status(g));
  char sx[64], sw[64], sb[64];
  ut_shape xs = x->shape, ws = w->shape;
  if (xs.rank != 4 || ws.rank != 4 || ws.d[1] != xs.d[1]) {
    ut_fail(UT_ERR_SHAPE, "conv2d: input '%s' %s and weight '%s' %s must be [B, C, H, W] and [O, C, kh, kw]", x->name,
            ut_shape_str(xs, sx, sizeof sx), w->name, ut_shape_str(ws, sw, sizeof sw));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  if (bias && (bias->shape.rank != 1 || bias->shape.d[0] != ws.d[0])) {
    ut_fail(UT_ERR_SHAPE, "conv2d: bias '%s' %s does not fit weight '%s' %s (needs [%lld])", bias->name,
            ut_shape_str(bias->shape, sb, sizeof sb), w->name, ut_shape_str(ws, sw, sizeof sw), (long long)ws.d[0]);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  if (cfg.pad_mode != UT_PAD_ZERO && cfg.pad_mode != UT_PAD_REFLECT) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "conv2d: unknown pad mode %d for input '%s'", (int)cfg.pad_mode, x->name);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  ut_conv_geom gm = { .b = xs.d[0], .c = xs.d[1], .h = xs.d[2], .w = xs.d[3], .kh = ws.d[2], .kw = ws.d[3],
                      .stride = cfg.stride ? cfg.stride : 1, .pad = cfg.pad, .reflect = cfg.pad_mode == UT_PAD_REFLECT };
  ut_status st = ut_conv_geom_check("conv2d", &gm);
  if (st != UT_OK) {
    ut_error_prefix("input '%s', weight '%s'", x->name, w->name);
    return ut_graph_fail(g, st);
  }
  return ut_conv_forward_node(g, x, w, bias, &gm);
}

ut_tensor *ut_conv2d_layer(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_channels, int kernel, ut_conv_cfg cfg,
                           int with_bias) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (!prefix || x->shape.rank != 4 || out_channels < 1 || kernel < 1) {
    char s[64];
    ut_fail(UT_ERR_INVALID_ARGUMENT, "conv2d layer '%s': input '%s' %s must be [B, C, H, W], with %lld output channels and kernel %d",
            prefix ? prefix : "(null)", x->name, ut_shape_str(x->shape, s, sizeof s), (long long)out_channels, kernel);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  int64_t fan_in = x->shape.d[1] * kernel * kernel;
  char wname[128], bname[128];
  snprintf(wname, sizeof wname, "%s.w", prefix);
  snprintf(bname, sizeof bname, "%s.b", prefix);
  ut_tensor *w = ut_param(g, wname, UT_SHAPE(out_channels, x->shape.d[1], kernel, kernel), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 });
  ut_tensor *b = NULL;
  if (with_bias) {
    b = ut_param(g, bname, UT_SHAPE(out_channels), (ut_init){ UT_INIT_FAN_IN_UNIFORM, (float)fan_in, 0 });
    if (!b) return ut_graph_fail(g, ut_graph_status(g));
  }
  return ut_conv2d(g, x, w, b, cfg);
}
