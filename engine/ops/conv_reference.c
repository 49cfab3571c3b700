/* The reference convolution: im2col + one GEMM over the whole batch, composed of four small
 * ops and ut_matmul, so its gradients (and theirs: R1 needs second order) come from the
 * backward builders of those pieces. It was the engine's convolution until the chunked ops of
 * conv.c replaced it; it stays as their reference in the tests, because every piece of it is
 * simple enough to check by eye (cl/conv.cl describes the layouts):
 *
 *   im2col         x [B, C, H, W]       -> col [C*kh*kw, B*OH*OW]   adjoint: col2im
 *   col2im         col (+ bias [C])     -> x-shaped gather-sum      adjoint: im2col, sum
 *   channel_major  y [B, O, OH, OW]     -> t [O, B*OH*OW]           adjoint: batch_major
 *   batch_major    t (+ bias [O])       -> y [B, O, OH, OW]         adjoint: channel_major, sum
 *
 * and y = batch_major(matmul(w as [O, C*kh*kw], col), bias). Its cost is memory: every
 * trained convolution keeps its whole-batch column matrix alive from the forward pass to the
 * weight gradient. */
#include <stdio.h>

#include "conv_internal.h"
#include "error.h"
#include "plan_internal.h"

/* The integer attributes of im2col and col2im: the geometry minus C, which the tensors give. */
enum { A_KH, A_KW, A_STRIDE, A_PAD, A_REFLECT, A_B, A_H, A_W, N_GEOM_ATTRS };

static ut_conv_geom geom_from_attrs(const ut_tensor *n, int64_t channels) {
  const int64_t *a = n->iattr;
  return (ut_conv_geom){ .b = a[A_B], .c = channels, .h = a[A_H], .w = a[A_W], .kh = a[A_KH], .kw = a[A_KW],
                         .stride = a[A_STRIDE], .pad = a[A_PAD], .reflect = (int)a[A_REFLECT] };
}

static void geom_to_attrs(const ut_conv_geom *gm, int64_t a[N_GEOM_ATTRS]) {
  a[A_KH] = gm->kh, a[A_KW] = gm->kw, a[A_STRIDE] = gm->stride, a[A_PAD] = gm->pad, a[A_REFLECT] = gm->reflect;
  a[A_B] = gm->b, a[A_H] = gm->h, a[A_W] = gm->w;
}

static ut_status require_f32(const ut_tensor *n) {
  for (int i = 0; i < n->n_in; i++)
    if (n->in[i]->dtype != UT_F32)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: input '%s' is not f32", n->op->name, n->in[i]->name);
  return UT_OK;
}

/* ---- im2col and col2im ------------------------------------------------------------------------- */

static ut_status im2col_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_status st = require_f32(n);
  if (st != UT_OK) return st;
  char s[64];
  if (x->shape.rank != 4)
    return ut_fail(UT_ERR_SHAPE, "im2col: '%s' must be [B, C, H, W], got %s", x->name, ut_shape_str(x->shape, s, sizeof s));
  ut_conv_geom gm = geom_from_attrs(n, x->shape.d[1]);
  if (gm.b != x->shape.d[0] || gm.h != x->shape.d[2] || gm.w != x->shape.d[3])
    return ut_fail(UT_ERR_SHAPE, "im2col: '%s' has shape %s, the op was made for [%lld, C, %lld, %lld]", x->name,
                   ut_shape_str(x->shape, s, sizeof s), (long long)gm.b, (long long)gm.h, (long long)gm.w);
  if ((st = ut_conv_geom_check("im2col", &gm)) != UT_OK) return st;
  n->shape = UT_SHAPE(gm.c * gm.kh * gm.kw, gm.b * gm.oh * gm.ow);
  return UT_OK;
}

static ut_status im2col_forward(ut_plan *p, ut_tensor *n) {
  ut_conv_geom gm = geom_from_attrs(n, n->in[0]->shape.d[1]);
  ut_status st = ut_conv_geom_check("im2col", &gm);
  if (st != UT_OK) return st;
  ut_launch *l = ut_plan_kernel(p, n, "conv", "im2col");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_conv_geom_args(l, &gm, (size_t)(gm.c * gm.b * gm.oh * gm.ow));
  return UT_OK;
}

static ut_status im2col_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_conv_geom gm = geom_from_attrs(n, n->in[0]->shape.d[1]);
  grad_in[0] = ut_conv_col2im(g, grad, NULL, &gm);
  return UT_OK;
}

static ut_status col2im_shape(ut_tensor *n) {
  ut_tensor *col = n->in[0];
  ut_status st = require_f32(n);
  if (st != UT_OK) return st;
  int64_t taps = n->iattr[A_KH] * n->iattr[A_KW];
  ut_conv_geom gm = geom_from_attrs(n, taps > 0 && col->shape.rank == 2 ? col->shape.d[0] / taps : 0);
  if ((st = ut_conv_geom_check("col2im", &gm)) != UT_OK) return st;
  char s[64];
  if (col->shape.rank != 2 || col->shape.d[0] % taps || col->shape.d[1] != gm.b * gm.oh * gm.ow)
    return ut_fail(UT_ERR_SHAPE, "col2im: '%s' of shape %s is no [C*%lld, %lld] column matrix", col->name,
                   ut_shape_str(col->shape, s, sizeof s), (long long)taps, (long long)(gm.b * gm.oh * gm.ow));
  if (n->n_in > 1 && (n->in[1]->shape.rank != 1 || n->in[1]->shape.d[0] != col->shape.d[0] / taps))
    return ut_fail(UT_ERR_SHAPE, "col2im: bias '%s' of shape %s does not fit %lld channels", n->in[1]->name,
                   ut_shape_str(n->in[1]->shape, s, sizeof s), (long long)(col->shape.d[0] / taps));
  n->shape = UT_SHAPE(gm.b, col->shape.d[0] / taps, gm.h, gm.w);
  return UT_OK;
}

static ut_status col2im_forward(ut_plan *p, ut_tensor *n) {
  ut_conv_geom gm = geom_from_attrs(n, n->shape.d[1]);
  ut_status st = ut_conv_geom_check("col2im", &gm);
  if (st != UT_OK) return st;
  int has_bias = n->n_in > 1;
  ut_launch *l = ut_plan_kernel(p, n, "conv", "col2im");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[has_bias]); /* any valid buffer when there is no bias */
  ut_arg_int(l, has_bias);
  ut_conv_geom_args(l, &gm, (size_t)ut_shape_numel(n->shape));
  return UT_OK;
}

static ut_status col2im_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_conv_geom gm = geom_from_attrs(n, n->shape.d[1]);
  grad_in[0] = ut_conv_im2col(g, grad, &gm);
  if (n->n_in > 1) grad_in[1] = ut_reshape(g, ut_sum(g, grad, 1u | 4u | 8u), n->in[1]->shape); /* over B, H, W */
  return UT_OK;
}

static const ut_op_def op_im2col = { "im2col", 0, im2col_shape, im2col_forward, im2col_backward };
static const ut_op_def op_col2im = { "col2im", 0, col2im_shape, col2im_forward, col2im_backward };

ut_tensor *ut_conv_im2col(ut_graph *g, ut_tensor *x, const ut_conv_geom *gm) {
  int64_t a[N_GEOM_ATTRS];
  geom_to_attrs(gm, a);
  return ut_node_new(g, &op_im2col, 1, &x, a, N_GEOM_ATTRS, NULL, 0);
}

ut_tensor *ut_conv_col2im(ut_graph *g, ut_tensor *col, ut_tensor *bias, const ut_conv_geom *gm) {
  int64_t a[N_GEOM_ATTRS];
  geom_to_attrs(gm, a);
  ut_tensor *in[2] = { col, bias };
  return ut_node_new(g, &op_col2im, bias ? 2 : 1, in, a, N_GEOM_ATTRS, NULL, 0);
}

/* ---- channel-major <-> batch-major --------------------------------------------------------------- */

/* batch_major's attributes: the batch and the output's height and width. */
enum { A_NB, A_OH, A_OW, N_LAYOUT_ATTRS };

static ut_status channel_major_shape(ut_tensor *n) {
  ut_tensor *y = n->in[0];
  ut_status st = require_f32(n);
  if (st != UT_OK) return st;
  char s[64];
  if (y->shape.rank != 4)
    return ut_fail(UT_ERR_SHAPE, "channel_major: '%s' must be [B, C, H, W], got %s", y->name, ut_shape_str(y->shape, s, sizeof s));
  n->shape = UT_SHAPE(y->shape.d[1], y->shape.d[0] * y->shape.d[2] * y->shape.d[3]);
  return UT_OK;
}

static ut_status channel_major_forward(ut_plan *p, ut_tensor *n) {
  const ut_shape ys = n->in[0]->shape;
  size_t count = (size_t)ut_shape_numel(ys);
  ut_launch *l = ut_plan_kernel(p, n, "conv", "channel_major");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)ys.d[0]);
  ut_arg_uint(l, (unsigned)ys.d[1]);
  ut_arg_uint(l, (unsigned)(ys.d[2] * ys.d[3]));
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_status channel_major_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  const ut_shape ys = n->in[0]->shape;
  grad_in[0] = ut_conv_to_batch_major(g, grad, NULL, ys.d[0], ys.d[2], ys.d[3]);
  return UT_OK;
}

static ut_status batch_major_shape(ut_tensor *n) {
  ut_tensor *t = n->in[0];
  ut_status st = require_f32(n);
  if (st != UT_OK) return st;
  int64_t nb = n->iattr[A_NB], oh = n->iattr[A_OH], ow = n->iattr[A_OW];
  char s[64], sb[64];
  if (nb < 1 || oh < 1 || ow < 1 || t->shape.rank != 2 || t->shape.d[1] != nb * oh * ow)
    return ut_fail(UT_ERR_SHAPE, "batch_major: '%s' of shape %s is no [O, %lld*%lld*%lld] matrix", t->name,
                   ut_shape_str(t->shape, s, sizeof s), (long long)nb, (long long)oh, (long long)ow);
  if (n->n_in > 1 && (n->in[1]->shape.rank != 1 || n->in[1]->shape.d[0] != t->shape.d[0]))
    return ut_fail(UT_ERR_SHAPE, "batch_major: bias '%s' of shape %s does not fit %lld channels (from %s)", n->in[1]->name,
                   ut_shape_str(n->in[1]->shape, sb, sizeof sb), (long long)t->shape.d[0], ut_shape_str(t->shape, s, sizeof s));
  n->shape = UT_SHAPE(nb, t->shape.d[0], oh, ow);
  return UT_OK;
}

static ut_status batch_major_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  int has_bias = n->n_in > 1;
  ut_launch *l = ut_plan_kernel(p, n, "conv", "batch_major");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, has_bias ? n->in[1] : n->in[0]); /* any valid buffer when there is no bias */
  ut_arg_uint(l, (unsigned)n->shape.d[0]);
  ut_arg_uint(l, (unsigned)n->shape.d[1]);
  ut_arg_uint(l, (unsigned)(n->shape.d[2] * n->shape.d[3]));
  ut_arg_int(l, has_bias);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_status batch_major_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_conv_to_channel_major(g, grad);
  if (n->n_in > 1) grad_in[1] = ut_reshape(g, ut_sum(g, grad, 1u | 4u | 8u), n->in[1]->shape); /* over B, OH, OW */
  return UT_OK;
}

static const ut_op_def op_channel_major = { "channel_major", 0, channel_major_shape, channel_major_forward,
                                            channel_major_backward };
static const ut_op_def op_batch_major = { "batch_major", 0, batch_major_shape, batch_major_forward, batch_major_backward };

/* With a batch of one both layouts hold the same bytes, so a view replaces the copy. */
ut_tensor *ut_conv_to_channel_major(ut_graph *g, ut_tensor *y) {
  if (!y) return ut_graph_fail(g, ut_graph_status(g));
  if (y->shape.rank == 4 && y->shape.d[0] == 1)
    return ut_reshape(g, y, UT_SHAPE(y->shape.d[1], y->shape.d[2] * y->shape.d[3]));
  return ut_node_new(g, &op_channel_major, 1, &y, NULL, 0, NULL, 0);
}

ut_tensor *ut_conv_to_batch_major(ut_graph *g, ut_tensor *t, ut_tensor *bias, int64_t nb, int64_t oh, int64_t ow) {
  if (!t) return ut_graph_fail(g, ut_graph_status(g));
  if (nb == 1 && !bias && t->shape.rank == 2) return ut_reshape(g, t, UT_SHAPE(1, t->shape.d[0], oh, ow));
  ut_tensor *in[2] = { t, bias };
  int64_t a[N_LAYOUT_ATTRS] = { [A_NB] = nb, [A_OH] = oh, [A_OW] = ow };
  return ut_node_new(g, &op_batch_major, bias ? 2 : 1, in, a, N_LAYOUT_ATTRS, NULL, 0);
}

/* ---- the reference convolutions --------------------------------------------------------------- */

ut_tensor *ut_conv2d_reference(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm) {
  int direct = gm->kh == 1 && gm->kw == 1 && gm->stride == 1 && gm->pad == 0;
  ut_tensor *col = direct ? ut_conv_to_channel_major(g, x) : ut_conv_im2col(g, x, gm);
  ut_tensor *w2 = ut_reshape(g, w, UT_SHAPE(w->shape.d[0], gm->c * gm->kh * gm->kw));
  ut_tensor *t = ut_matmul(g, w2, col, 0, 0); /* [O, B*OH*OW] */
  return ut_conv_to_batch_major(g, t, bias, gm->b, gm->oh, gm->ow);
}

/* The transposed convolution is the adjoint in the opposite order: t = channel_major(x),
 * col = (w as [C, O*kh*kw])^T t, y = col2im(col) + bias. */
ut_tensor *ut_conv_transpose2d_reference(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm) {
  const int64_t C = x->shape.d[1], O = gm->c;
  ut_tensor *t = ut_conv_to_channel_major(g, x);
  ut_tensor *w2 = ut_reshape(g, w, UT_SHAPE(C, O * gm->kh * gm->kw));
  ut_tensor *col = ut_matmul(g, w2, t, 1, 0); /* [O*kh*kw, B*H*W] */
  if (gm->kh == 1 && gm->kw == 1 && gm->stride == 1 && gm->pad == 0)
    return ut_conv_to_batch_major(g, col, bias, gm->b, x->shape.d[2], x->shape.d[3]);
  return ut_conv_col2im(g, col, bias, gm);
}
