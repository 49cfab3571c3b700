/* FIR resampling of NCHW feature maps (StyleGAN2's upfirdn2d), depthwise, with a separable
 * kernel: the blur after a transposed convolution, the blur before a strided convolution, and
 * the 2x up- and downsampling of skip connections. Kernel in cl/stylegan.cl.
 *
 * One op, "upfirdn2d", carries the taps already flipped (the kernel loop correlates) and
 * normalised, a gain, the factors, the leading pad and the output size. Its adjoint is the same
 * op with the taps flipped back, the factors exchanged and the leading pad mirrored
 * (taps - 1 - pad0), producing the input's size; so the gradient, and the gradient of that,
 * stay inside this one op. */
#include <stdio.h>

#include "error.h"
#include "plan_internal.h"

#define FIR_MAX_TAPS 7

/* Integer attributes; fattr[0 .. taps-1] hold the flipped taps and fattr[7] the gain. */
enum { A_UP, A_DOWN, A_PAD0, A_OH, A_OW, A_TAPS, N_ATTRS };
enum { F_GAIN = 7 };

static ut_status fir_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  char a[64];
  if (x->dtype != UT_F32 || x->shape.rank != 4)
    return ut_fail(UT_ERR_SHAPE, "upfirdn2d: '%s' of shape %s must be an f32 [B, C, H, W] tensor", x->name,
                   ut_shape_str(x->shape, a, sizeof a));
  const int64_t *t = n->iattr;
  if (t[A_UP] < 1 || t[A_DOWN] < 1 || t[A_TAPS] < 1 || t[A_TAPS] > FIR_MAX_TAPS || t[A_OH] < 1 || t[A_OW] < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "upfirdn2d: '%s' %s: up %lld, down %lld, %lld taps and output %lldx%lld "
                   "must be positive (at most %d taps)", x->name, ut_shape_str(x->shape, a, sizeof a), (long long)t[A_UP],
                   (long long)t[A_DOWN], (long long)t[A_TAPS], (long long)t[A_OH], (long long)t[A_OW], FIR_MAX_TAPS);
  /* The kernel indexes with 32-bit ints. */
  if (x->shape.d[2] * t[A_UP] > INT32_MAX / 4 || x->shape.d[3] * t[A_UP] > INT32_MAX / 4 ||
      t[A_OH] * t[A_DOWN] > INT32_MAX / 4 || t[A_OW] * t[A_DOWN] > INT32_MAX / 4)
    return ut_fail(UT_ERR_SHAPE, "upfirdn2d: '%s' %s is too large for 32-bit indexing", x->name,
                   ut_shape_str(x->shape, a, sizeof a));
  n->shape = UT_SHAPE(x->shape.d[0], x->shape.d[1], t[A_OH], t[A_OW]);
  return UT_OK;
}

static ut_status fir_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0];
  const int64_t *t = n->iattr;
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "stylegan", "upfirdn2d");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_int(l, (int)x->shape.d[2]);
  ut_arg_int(l, (int)x->shape.d[3]);
  ut_arg_int(l, (int)t[A_OH]);
  ut_arg_int(l, (int)t[A_OW]);
  ut_arg_int(l, (int)t[A_UP]);
  ut_arg_int(l, (int)t[A_DOWN]);
  ut_arg_int(l, (int)t[A_PAD0]);
  ut_arg_int(l, (int)t[A_TAPS]);
  for (int i = 0; i < FIR_MAX_TAPS; i++) ut_arg_float(l, i < t[A_TAPS] ? n->fattr[i] : 0.0f);
  ut_arg_float(l, n->fattr[F_GAIN]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_tensor *fir_node(ut_graph *g, ut_tensor *x, const float *flipped, int taps, float gain, int64_t up,
                           int64_t down, int64_t pad0, int64_t oh, int64_t ow);

static ut_status fir_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  const int64_t *t = n->iattr;
  int taps = (int)t[A_TAPS];
  float back[FIR_MAX_TAPS];
  for (int i = 0; i < taps; i++) back[i] = n->fattr[taps - 1 - i];
  ut_shape xs = n->in[0]->shape;
  grad_in[0] = fir_node(g, grad, back, taps, n->fattr[F_GAIN], t[A_DOWN], t[A_UP], taps - 1 - t[A_PAD0], xs.d[2], xs.d[3]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_fir = { "upfirdn2d", 0, fir_shape, fir_forward, fir_backward };

static ut_tensor *fir_node(ut_graph *g, ut_tensor *x, const float *flipped, int taps, float gain, int64_t up,
                           int64_t down, int64_t pad0, int64_t oh, int64_t ow) {
  int64_t a[N_ATTRS] = { [A_UP] = up, [A_DOWN] = down, [A_PAD0] = pad0, [A_OH] = oh, [A_OW] = ow, [A_TAPS] = taps };
  float f[UT_MAX_ATTRS] = { 0 };
  for (int i = 0; i < taps && i < FIR_MAX_TAPS; i++) f[i] = flipped[i];
  f[F_GAIN] = gain;
  return ut_node_new(g, &op_fir, 1, &x, a, N_ATTRS, f, UT_MAX_ATTRS);
}

/* ---- public ------------------------------------------------------------------------------------ */

static const float fir_default_taps[4] = { 1, 3, 3, 1 };

ut_tensor *ut_upfirdn2d(ut_graph *g, ut_tensor *x, ut_fir_cfg cfg) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  const float *k = cfg.kernel ? cfg.kernel : fir_default_taps;
  int taps = cfg.kernel ? cfg.taps : 4;
  int up = cfg.up ? cfg.up : 1, down = cfg.down ? cfg.down : 1;
  float gain = cfg.gain != 0.0f ? cfg.gain : 1.0f;
  char s[64];
  if (taps < 1 || taps > FIR_MAX_TAPS || up < 1 || down < 1) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "upfirdn2d: input '%s': %d taps (1 to %d), up %d and down %d (positive)", x->name, taps,
            FIR_MAX_TAPS, up, down);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  if (x->shape.rank != 4) {
    ut_fail(UT_ERR_SHAPE, "upfirdn2d: input '%s' of shape %s must be [B, C, H, W]", x->name, ut_shape_str(x->shape, s, sizeof s));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  /* StyleGAN2's make_kernel: the outer product of the taps, divided by its sum (the square of
   * the taps' sum), which the two separable passes share. */
  double sum = 0;
  for (int i = 0; i < taps; i++) sum += k[i];
  if (sum == 0) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "upfirdn2d: input '%s': the kernel's taps sum to 0 and cannot be normalised", x->name);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  float flipped[FIR_MAX_TAPS];
  for (int i = 0; i < taps; i++) flipped[i] = (float)(k[taps - 1 - i] / sum);
  int64_t span[2];
  for (int i = 0; i < 2; i++) {
    span[i] = x->shape.d[2 + i] * up + cfg.pad0 + cfg.pad1 - taps;
    if (span[i] < 0) {
      ut_fail(UT_ERR_SHAPE, "upfirdn2d: input '%s' %s, up %d, pads (%d, %d): the padded image is smaller than the %d-tap "
              "kernel", x->name, ut_shape_str(x->shape, s, sizeof s), up, cfg.pad0, cfg.pad1, taps);
      return ut_graph_fail(g, UT_ERR_SHAPE);
    }
  }
  return fir_node(g, x, flipped, taps, gain, up, down, cfg.pad0, span[0] / down + 1, span[1] / down + 1);
}

/* StyleGAN2's Upsample(factor 2): p = taps - 2, pads ((p + 1) / 2 + 1, p / 2), gain 4. */
ut_tensor *ut_fir_upsample2x(ut_graph *g, ut_tensor *x) {
  return ut_upfirdn2d(g, x, (ut_fir_cfg){ .up = 2, .pad0 = 2, .pad1 = 1, .gain = 4.0f });
}

/* StyleGAN2's Downsample(factor 2): p = taps - 2, pads ((p + 1) / 2, p / 2). */
ut_tensor *ut_fir_downsample2x(ut_graph *g, ut_tensor *x) {
  return ut_upfirdn2d(g, x, (ut_fir_cfg){ .down = 2, .pad0 = 1, .pad1 = 1 });
}
