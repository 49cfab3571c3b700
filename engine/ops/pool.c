/* Max pooling, general average pooling and bilinear upsampling by two (kernels and their
 * exact definitions in cl/pool.cl). Each is a linear map, or for max pooling linear once the
 * choice of each window's maximum is fixed, so each comes as a pair of ops that are each
 * other's adjoint, and gradients of gradients stay inside the pair:
 *
 *   max_pool2d(key, v)          [.., H, W] -> [.., OH, OW]  v at each window's max of key
 *   max_pool2d_scatter(key, g)  [.., OH, OW] -> [.., H, W]  g added at each window's max of key
 *   avg_pool2d(x)               window means                adjoint: avg_pool2d_adjoint
 *   upsample_bilinear2x(x)      [.., H, W] -> [.., 2H, 2W]  adjoint: upsample_bilinear2x_adjoint
 *
 * (op names as profiles show them; kernels maxpool_gather, maxpool_scatter, avgpool, ...).
 * Max pooling is the gather with key = v = x. The key only decides which element is picked,
 * and the result does not change under a small change of key (ties aside), so its gradient in
 * the key is zero and only the value input gets one: max pooling differentiates to any order,
 * with the usual convention that at a tie the first maximum takes the whole gradient. */
#include "error.h"
#include "plan_internal.h"

/* iattr: kernel, stride, pad, flag (avgpool: count_include_pad), and for the ops that produce
 * the large image its H and W (the small side's size alone does not give it back). */
enum { A_K, A_S, A_P, A_FLAG, A_H, A_W, N_ATTRS };

static ut_status check_nchw(const ut_tensor *n, const ut_tensor *x) {
  char a[64];
  if (x->dtype != UT_F32 || x->shape.rank != 4)
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' of shape %s must be an f32 [B, C, H, W] tensor", n->op->name, x->name,
                   ut_shape_str(x->shape, a, sizeof a));
  return UT_OK;
}

/* One launch over the output: out, in0, in1 (in0 again when there is one input), then
 * (H, W, OH, OW) of the large and the small plane, the window attributes and the output's
 * element count; the caller sets the range. */
static ut_launch *launch_args(ut_plan *p, ut_tensor *n, const char *kernel, ut_shape large, ut_shape small) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "pool", kernel);
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[n->n_in - 1]);
  int sz[4] = { (int)large.d[2], (int)large.d[3], (int)small.d[2], (int)small.d[3] };
  int ksp[4] = { (int)n->iattr[A_K], (int)n->iattr[A_S], (int)n->iattr[A_P], (int)n->iattr[A_FLAG] };
  ut_arg_int4(l, sz);
  ut_arg_int4(l, ksp);
  ut_arg_uint(l, (unsigned)count);
  return l;
}

/* The general kernels: one work-item per output element. */
static ut_status launch(ut_plan *p, ut_tensor *n, const char *kernel, ut_shape large, ut_shape small) {
  ut_launch_range(launch_args(p, n, kernel, large, small), (size_t)ut_shape_numel(n->shape), 0);
  return UT_OK;
}

/* Output size of a window op along one axis (floor, as PyTorch's ceil_mode=False). */
static int64_t windows(int64_t size, int64_t k, int64_t s, int64_t p) { return (size + 2 * p - k) / s + 1; }

/* Checks the window attributes of n against the large image `xs` (named `name` in messages). */
static ut_status check_window(const ut_tensor *n, const char *name, ut_shape xs) {
  const int64_t *a = n->iattr;
  char sx[64];
  ut_shape_str(xs, sx, sizeof sx);
  if (a[A_K] < 1 || a[A_S] < 1 || a[A_P] < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: '%s' %s: kernel %lld and stride %lld must be positive, pad %lld not negative",
                   n->op->name, name, sx, (long long)a[A_K], (long long)a[A_S], (long long)a[A_P]);
  /* PyTorch's limit; it also keeps every window on at least one image element. */
  if (2 * a[A_P] > a[A_K])
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: '%s' %s: pad %lld is more than half the kernel %lld", n->op->name, name,
                   sx, (long long)a[A_P], (long long)a[A_K]);
  if (xs.d[2] + 2 * a[A_P] < a[A_K] || xs.d[3] + 2 * a[A_P] < a[A_K])
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' %s is smaller than the %lldx%lld window (pad %lld)", n->op->name, name, sx,
                   (long long)a[A_K], (long long)a[A_K], (long long)a[A_P]);
  if (xs.d[2] > INT32_MAX / 4 || xs.d[3] > INT32_MAX / 4 || a[A_K] > 4096 || a[A_S] > 4096)
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' %s is too large for 32-bit indexing", n->op->name, name, sx);
  return UT_OK;
}

/* The shape rule of the ops that go from the large image to the window grid. */
static ut_status to_windows_shape(ut_tensor *n) {
  ut_status st = UT_OK;
  for (int i = 0; i < n->n_in && st == UT_OK; i++) st = check_nchw(n, n->in[i]);
  if (st != UT_OK || (st = check_window(n, n->in[0]->name, n->in[0]->shape)) != UT_OK) return st;
  ut_shape s = n->in[0]->shape;
  if (n->n_in > 1 && !ut_shape_equal(s, n->in[1]->shape)) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "%s: key '%s' %s and values '%s' %s differ", n->op->name, n->in[0]->name,
                   ut_shape_str(s, a, sizeof a), n->in[1]->name, ut_shape_str(n->in[1]->shape, b, sizeof b));
  }
  const int64_t *a = n->iattr;
  n->shape = UT_SHAPE(s.d[0], s.d[1], windows(s.d[2], a[A_K], a[A_S], a[A_P]), windows(s.d[3], a[A_K], a[A_S], a[A_P]));
  return UT_OK;
}

/* The shape rule of the adjoints: the window grid (input n_in - 1) back to [B, C, H, W]. */
static ut_status from_windows_shape(ut_tensor *n) {
  ut_status st = UT_OK;
  for (int i = 0; i < n->n_in && st == UT_OK; i++) st = check_nchw(n, n->in[i]);
  if (st != UT_OK) return st;
  const ut_tensor *gr = n->in[n->n_in - 1];
  const int64_t *a = n->iattr;
  ut_shape large = UT_SHAPE(gr->shape.d[0], gr->shape.d[1], a[A_H], a[A_W]);
  if ((st = check_window(n, gr->name, large)) != UT_OK) return st;
  char s1[64], s2[64];
  if (gr->shape.d[2] != windows(a[A_H], a[A_K], a[A_S], a[A_P]) || gr->shape.d[3] != windows(a[A_W], a[A_K], a[A_S], a[A_P]))
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' %s is not the window grid of %s", n->op->name, gr->name,
                   ut_shape_str(gr->shape, s1, sizeof s1), ut_shape_str(large, s2, sizeof s2));
  if (n->n_in > 1 && !ut_shape_equal(n->in[0]->shape, large))
    return ut_fail(UT_ERR_SHAPE, "%s: key '%s' %s is not %s", n->op->name, n->in[0]->name,
                   ut_shape_str(n->in[0]->shape, s1, sizeof s1), ut_shape_str(large, s2, sizeof s2));
  n->shape = large;
  return UT_OK;
}

static ut_tensor *make(ut_graph *g, const ut_op_def *op, ut_tensor *a, ut_tensor *b, const int64_t attrs[N_ATTRS]) {
  ut_tensor *in[2] = { a, b };
  return ut_node_new(g, op, b ? 2 : 1, in, attrs, N_ATTRS, NULL, 0);
}

/* The attributes of the adjoint of n: n's window attributes with the large image's size. */
static void adjoint_attrs(const ut_tensor *n, ut_shape large, int64_t out[N_ATTRS]) {
  for (int i = 0; i < N_ATTRS; i++) out[i] = n->iattr[i];
  out[A_H] = large.d[2];
  out[A_W] = large.d[3];
}

/* ---- max pooling --------------------------------------------------------------------------------- */

static const ut_op_def op_maxpool_gather, op_maxpool_scatter;

/* Whether n's windows are 2x2 with stride 2 and tile the large image exactly (no pad, even
 * sizes): then the maxpool2x2 kernels of cl/pool.cl serve, one work-item per window. */
static int tiles_2x2(const ut_tensor *n, ut_shape large) {
  const int64_t *a = n->iattr;
  return a[A_K] == 2 && a[A_S] == 2 && a[A_P] == 0 && large.d[2] % 2 == 0 && large.d[3] % 2 == 0;
}

/* A maxpool2x2 kernel's launch: the general kernels' arguments over a 2-D range (OW, planes x OH). */
static ut_status launch_tiles(ut_plan *p, ut_tensor *n, const char *kernel, ut_shape large, ut_shape small) {
  ut_launch_rows(launch_args(p, n, kernel, large, small), (size_t)small.d[3], (size_t)(small.d[0] * small.d[1] * small.d[2]));
  return UT_OK;
}

static ut_status maxpool_gather_forward(ut_plan *p, ut_tensor *n) {
  if (tiles_2x2(n, n->in[0]->shape)) return launch_tiles(p, n, "maxpool2x2_gather", n->in[0]->shape, n->shape);
  return launch(p, n, "maxpool_gather", n->in[0]->shape, n->shape);
}

static ut_status maxpool_gather_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  int64_t a[N_ATTRS];
  adjoint_attrs(n, n->in[0]->shape, a);
  grad_in[1] = make(g, &op_maxpool_scatter, n->in[0], grad, a); /* the key gets none (see above) */
  return grad_in[1] ? UT_OK : ut_graph_status(g);
}

static ut_status maxpool_scatter_forward(ut_plan *p, ut_tensor *n) {
  if (tiles_2x2(n, n->shape)) return launch_tiles(p, n, "maxpool2x2_scatter", n->shape, n->in[1]->shape);
  return launch(p, n, "maxpool_scatter", n->shape, n->in[1]->shape);
}

static ut_status maxpool_scatter_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[1] = make(g, &op_maxpool_gather, n->in[0], grad, n->iattr);
  return grad_in[1] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_maxpool_gather = { "max_pool2d", 0, to_windows_shape, maxpool_gather_forward,
                                             maxpool_gather_backward };
static const ut_op_def op_maxpool_scatter = { "max_pool2d_scatter", 0, from_windows_shape, maxpool_scatter_forward,
                                              maxpool_scatter_backward };

/* ---- average pooling ----------------------------------------------------------------------------- */

static const ut_op_def op_avgpool, op_avgpool_adjoint;

static ut_status avgpool_forward(ut_plan *p, ut_tensor *n) { return launch(p, n, "avgpool", n->in[0]->shape, n->shape); }

static ut_status avgpool_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  int64_t a[N_ATTRS];
  adjoint_attrs(n, n->in[0]->shape, a);
  grad_in[0] = make(g, &op_avgpool_adjoint, grad, NULL, a);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static ut_status avgpool_adjoint_forward(ut_plan *p, ut_tensor *n) {
  return launch(p, n, "avgpool_adjoint", n->shape, n->in[0]->shape);
}

static ut_status avgpool_adjoint_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = make(g, &op_avgpool, grad, NULL, n->iattr);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_avgpool = { "avg_pool2d", 0, to_windows_shape, avgpool_forward, avgpool_backward };
static const ut_op_def op_avgpool_adjoint = { "avg_pool2d_adjoint", 0, from_windows_shape, avgpool_adjoint_forward,
                                              avgpool_adjoint_backward };

/* ---- bilinear upsampling by two ------------------------------------------------------------------ */

static const ut_op_def op_bilinear, op_bilinear_adjoint;

static ut_status bilinear_shape(ut_tensor *n) {
  ut_status st = check_nchw(n, n->in[0]);
  if (st != UT_OK) return st;
  ut_shape s = n->in[0]->shape;
  if (s.d[2] < 1 || s.d[3] < 1 || s.d[2] > INT32_MAX / 4 || s.d[3] > INT32_MAX / 4) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' %s: height and width must be in [1, 2^29)", n->op->name, n->in[0]->name,
                   ut_shape_str(s, a, sizeof a));
  }
  n->shape = UT_SHAPE(s.d[0], s.d[1], 2 * s.d[2], 2 * s.d[3]);
  return UT_OK;
}

static ut_status bilinear_adjoint_shape(ut_tensor *n) {
  ut_status st = check_nchw(n, n->in[0]);
  if (st != UT_OK) return st;
  ut_shape s = n->in[0]->shape;
  if (s.d[2] < 2 || s.d[3] < 2 || s.d[2] % 2 || s.d[3] % 2) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' %s: height and width must be even", n->op->name, n->in[0]->name,
                   ut_shape_str(s, a, sizeof a));
  }
  n->shape = UT_SHAPE(s.d[0], s.d[1], s.d[2] / 2, s.d[3] / 2);
  return UT_OK;
}

static ut_status bilinear_forward(ut_plan *p, ut_tensor *n) { return launch(p, n, "bilinear2x", n->in[0]->shape, n->shape); }
static ut_status bilinear_adjoint_forward(ut_plan *p, ut_tensor *n) {
  return launch(p, n, "bilinear2x_adjoint", n->shape, n->in[0]->shape);
}

static ut_status bilinear_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  (void)n;
  grad_in[0] = ut_node_new(g, &op_bilinear_adjoint, 1, &grad, NULL, 0, NULL, 0);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static ut_status bilinear_adjoint_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  (void)n;
  grad_in[0] = ut_node_new(g, &op_bilinear, 1, &grad, NULL, 0, NULL, 0);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_bilinear = { "upsample_bilinear2x", 0, bilinear_shape, bilinear_forward, bilinear_backward };
static const ut_op_def op_bilinear_adjoint = { "upsample_bilinear2x_adjoint", 0, bilinear_adjoint_shape,
                                               bilinear_adjoint_forward, bilinear_adjoint_backward };

/* ---- public -------------------------------------------------------------------------------------- */

ut_tensor *ut_max_pool2d(ut_graph *g, ut_tensor *x, int kernel, int stride) {
  int64_t a[N_ATTRS] = { [A_K] = kernel, [A_S] = stride ? stride : kernel };
  return make(g, &op_maxpool_gather, x, x, a);
}

ut_tensor *ut_avg_pool2d(ut_graph *g, ut_tensor *x, int kernel, int stride, int pad, int count_include_pad) {
  int64_t a[N_ATTRS] = { [A_K] = kernel, [A_S] = stride ? stride : kernel, [A_P] = pad, [A_FLAG] = count_include_pad != 0 };
  return make(g, &op_avgpool, x, NULL, a);
}

ut_tensor *ut_upsample_bilinear2x(ut_graph *g, ut_tensor *x) {
  return ut_node_new(g, &op_bilinear, 1, &x, NULL, 0, NULL, 0);
}
