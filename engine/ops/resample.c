/* Resampling of NCHW feature maps by two: nearest upsampling (LORD's and UNIT's decoders),
 * 2x2 average pooling and global average pooling. Kernels in cl/resample.cl.
 *
 * Two ops carry a factor s: "upsample2x" (out = s * nearest(in)) and "pool2x2" (out = s * 2x2
 * window sum). Each is the other's adjoint, so the gradient of one is the other with the same
 * factor, and gradients of gradients stay inside this pair. */
#include "error.h"
#include "plan_internal.h"

static ut_status check_nchw(ut_tensor *n, ut_tensor *x) {
  char a[64];
  if (x->dtype != UT_F32 || x->shape.rank != 4)
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' of shape %s must be an f32 [B, C, H, W] tensor", n->op->name, x->name,
                   ut_shape_str(x->shape, a, sizeof a));
  return UT_OK;
}

/* A launch of `kernel` over a 2-D range of `cols` x `rows` work-items (cl/resample.cl). */
static ut_status launch(ut_plan *p, ut_tensor *n, const char *kernel, int64_t cols, int64_t rows) {
  ut_tensor *x = n->in[0];
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "resample", kernel);
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_uint(l, (unsigned)x->shape.d[2]);
  ut_arg_uint(l, (unsigned)x->shape.d[3]);
  ut_arg_uint(l, (unsigned)n->shape.d[2]);
  ut_arg_uint(l, (unsigned)n->shape.d[3]);
  ut_arg_float(l, n->fattr[0]);
  ut_launch_rows(l, (size_t)cols, (size_t)rows);
  return UT_OK;
}

/* The range of the kernels that have a work-item per output element: output columns x output
 * rows of all planes. */
static ut_status launch_per_output(ut_plan *p, ut_tensor *n, const char *kernel) {
  return launch(p, n, kernel, n->shape.d[3], n->shape.d[0] * n->shape.d[1] * n->shape.d[2]);
}

/* ---- nearest upsampling: iattr = output H, W (2h or 2h + 1); fattr[0] = s ------------------------ */

static ut_status up_shape(ut_tensor *n) {
  ut_status st = check_nchw(n, n->in[0]);
  if (st != UT_OK) return st;
  ut_shape s = n->in[0]->shape;
  for (int i = 0; i < 2; i++) {
    int64_t o = n->iattr[i];
    if (o != 2 * s.d[2 + i] && o != 2 * s.d[2 + i] + 1) {
      char a[64];
      return ut_fail(UT_ERR_SHAPE, "%s: output size %lld is not twice (plus at most one) dimension %d of '%s' %s",
                     n->op->name, (long long)o, 2 + i, n->in[0]->name, ut_shape_str(s, a, sizeof a));
    }
  }
  n->shape = UT_SHAPE(s.d[0], s.d[1], n->iattr[0], n->iattr[1]);
  return UT_OK;
}

static ut_status up_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0];
  if (n->shape.d[2] != 2 * x->shape.d[2] || n->shape.d[3] != 2 * x->shape.d[3]) return launch_per_output(p, n, "upsample2x");
  /* upsample2x_even has a work-item per input element */
  return launch(p, n, "upsample2x_even", x->shape.d[3], x->shape.d[0] * x->shape.d[1] * x->shape.d[2]);
}
static ut_tensor *pool(ut_graph *g, ut_tensor *x, float s);

static ut_status up_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = pool(g, grad, n->fattr[0]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_upsample = { "upsample2x", 0, up_shape, up_forward, up_backward };

static ut_tensor *upsample(ut_graph *g, ut_tensor *x, int64_t oh, int64_t ow, float s) {
  int64_t a[2] = { oh, ow };
  return ut_node_new(g, &op_upsample, 1, &x, a, 2, &s, 1);
}

/* ---- 2x2 window sum, stride 2, floor: fattr[0] = s ------------------------------------------------ */

static ut_status pool_shape(ut_tensor *n) {
  ut_status st = check_nchw(n, n->in[0]);
  if (st != UT_OK) return st;
  ut_shape s = n->in[0]->shape;
  if (s.d[2] < 2 || s.d[3] < 2) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' of shape %s is smaller than the 2x2 window", n->op->name, n->in[0]->name,
                   ut_shape_str(s, a, sizeof a));
  }
  n->shape = UT_SHAPE(s.d[0], s.d[1], s.d[2] / 2, s.d[3] / 2);
  return UT_OK;
}

static ut_status pool_forward(ut_plan *p, ut_tensor *n) { return launch_per_output(p, n, "pool2x2"); }

/* The rows and columns that a floor dropped get a zero gradient from the padded upsample. */
static ut_status pool_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_shape s = n->in[0]->shape;
  grad_in[0] = upsample(g, grad, s.d[2], s.d[3], n->fattr[0]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_pool = { "pool2x2", 0, pool_shape, pool_forward, pool_backward };

static ut_tensor *pool(ut_graph *g, ut_tensor *x, float s) { return ut_node_new(g, &op_pool, 1, &x, NULL, 0, &s, 1); }

/* ---- public ------------------------------------------------------------------------------------ */

ut_tensor *ut_upsample_nearest2x(ut_graph *g, ut_tensor *x) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  int64_t h = x->shape.rank == 4 ? x->shape.d[2] : 0, w = x->shape.rank == 4 ? x->shape.d[3] : 0;
  return upsample(g, x, 2 * h, 2 * w, 1.0f);
}

ut_tensor *ut_avg_pool2x2(ut_graph *g, ut_tensor *x) { return pool(g, x, 0.25f); }

ut_tensor *ut_global_avg_pool(ut_graph *g, ut_tensor *x) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (x->shape.rank != 4) {
    char a[64];
    ut_fail(UT_ERR_SHAPE, "global_avg_pool: '%s' of shape %s must be [B, C, H, W]", x->name, ut_shape_str(x->shape, a, sizeof a));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  return ut_mean(g, x, (1u << 2) | (1u << 3));
}
