/* Concatenation and slicing along dimension 1 (the channels of [B, C, H, W], the features of
 * [B, F]), and zero-padded placement, the slice's adjoint. Kernels in cl/concat.cl.
 *
 * The three ops are linear and close over their gradients: concat's gradient is two slices,
 * a slice's is a placement in zeros, a placement's is a slice. */
#include "error.h"
#include "plan_internal.h"

/* Elements per batch entry per channel: the product of the dimensions after 1. */
static int64_t plane(ut_shape s) {
  int64_t p = 1;
  for (int i = 2; i < s.rank; i++) p *= s.d[i];
  return p;
}

static ut_status check_channels(ut_tensor *n, ut_tensor *x) {
  char a[64];
  if (x->dtype != UT_F32 || x->shape.rank < 2)
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' of shape %s must be an f32 tensor of rank 2 to 4", n->op->name, x->name,
                   ut_shape_str(x->shape, a, sizeof a));
  return UT_OK;
}

/* ---- concat ------------------------------------------------------------------------------------- */

static ut_status concat_shape(ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  ut_status st = check_channels(n, a);
  if (st == UT_OK) st = check_channels(n, b);
  if (st != UT_OK) return st;
  int fit = a->shape.rank == b->shape.rank;
  for (int i = 0; fit && i < a->shape.rank; i++) fit = i == 1 || a->shape.d[i] == b->shape.d[i];
  if (!fit) {
    char sa[64], sb[64];
    return ut_fail(UT_ERR_SHAPE, "concat: %s ('%s') and %s ('%s') differ in a dimension other than 1", ut_shape_str(a->shape, sa, sizeof sa),
                   a->name, ut_shape_str(b->shape, sb, sizeof sb), b->name);
  }
  n->shape = a->shape;
  n->shape.d[1] = a->shape.d[1] + b->shape.d[1];
  return UT_OK;
}

static ut_status concat_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int64_t pl = plane(n->shape);
  size_t total = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "concat", "concat2");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, a);
  ut_arg_tensor(l, b);
  ut_arg_uint(l, (unsigned)total);
  ut_arg_uint(l, (unsigned)(a->shape.d[1] * pl));
  ut_arg_uint(l, (unsigned)(b->shape.d[1] * pl));
  ut_launch_range(l, total, 0);
  return UT_OK;
}

static ut_status concat_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  int64_t ca = n->in[0]->shape.d[1], cb = n->in[1]->shape.d[1];
  grad_in[0] = ut_slice_channels(g, grad, 0, ca);
  grad_in[1] = ut_slice_channels(g, grad, ca, cb);
  return grad_in[0] && grad_in[1] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_concat = { "concat", 0, concat_shape, concat_forward, concat_backward };

ut_tensor *ut_concat(ut_graph *g, ut_tensor *a, ut_tensor *b) {
  ut_tensor *in[2] = { a, b };
  return ut_node_new(g, &op_concat, 2, in, NULL, 0, NULL, 0);
}

/* ---- slice and pad: iattr = start, count (slice) or start, total (pad) ---------------------------- */

static ut_status slice_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_status st = check_channels(n, x);
  if (st != UT_OK) return st;
  int64_t start = n->iattr[0], count = n->iattr[1];
  if (start < 0 || count < 1 || start + count > x->shape.d[1]) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "slice_channels: channels [%lld, %lld) are not inside the %lld of '%s' %s", (long long)start,
                   (long long)(start + count), (long long)x->shape.d[1], x->name, ut_shape_str(x->shape, a, sizeof a));
  }
  n->shape = x->shape;
  n->shape.d[1] = count;
  return UT_OK;
}

static ut_status pad_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_status st = check_channels(n, x);
  if (st != UT_OK) return st;
  int64_t start = n->iattr[0], total = n->iattr[1];
  if (start < 0 || start + x->shape.d[1] > total) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "pad_channels: the %lld channels of '%s' %s do not fit at %lld of %lld", (long long)x->shape.d[1],
                   x->name, ut_shape_str(x->shape, a, sizeof a), (long long)start, (long long)total);
  }
  n->shape = x->shape;
  n->shape.d[1] = total;
  return UT_OK;
}

/* Both kernels take (out, x, total, stride, start, count), stride being the wide side's row. */
static ut_status strided_forward(ut_plan *p, ut_tensor *n, const char *kernel, ut_shape wide, int64_t count) {
  int64_t pl = plane(wide);
  size_t total = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "concat", kernel);
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)total);
  ut_arg_uint(l, (unsigned)(wide.d[1] * pl));
  ut_arg_uint(l, (unsigned)(n->iattr[0] * pl));
  ut_arg_uint(l, (unsigned)(count * pl));
  ut_launch_range(l, total, 0);
  return UT_OK;
}

static ut_status slice_forward(ut_plan *p, ut_tensor *n) {
  return strided_forward(p, n, "slice_inner", n->in[0]->shape, n->iattr[1]);
}
static ut_status pad_forward(ut_plan *p, ut_tensor *n) {
  return strided_forward(p, n, "pad_inner", n->shape, n->in[0]->shape.d[1]);
}

static ut_status slice_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_pad_channels(g, grad, n->iattr[0], n->in[0]->shape.d[1]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}
static ut_status pad_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_slice_channels(g, grad, n->iattr[0], n->in[0]->shape.d[1]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_slice = { "slice_channels", 0, slice_shape, slice_forward, slice_backward };
static const ut_op_def op_pad = { "pad_channels", 0, pad_shape, pad_forward, pad_backward };

ut_tensor *ut_slice_channels(ut_graph *g, ut_tensor *x, int64_t start, int64_t count) {
  if (x && start == 0 && x->shape.rank >= 2 && count == x->shape.d[1]) return x;
  int64_t a[2] = { start, count };
  return ut_node_new(g, &op_slice, 1, &x, a, 2, NULL, 0);
}

ut_tensor *ut_pad_channels(ut_graph *g, ut_tensor *x, int64_t start, int64_t total) {
  if (x && start == 0 && x->shape.rank >= 2 && total == x->shape.d[1]) return x;
  int64_t a[2] = { start, total };
  return ut_node_new(g, &op_pad, 1, &x, a, 2, NULL, 0);
}
