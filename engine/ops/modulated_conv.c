/* StyleGAN2's modulated (and demodulated) convolution without per-sample weights.
 *
 * rosinality's ModulatedConv2d builds w_b[o, c] = w[o, c] s[b, c] for each sample and runs a
 * grouped convolution with groups = B. The style scales input channels, so
 *   conv(x_b, w_b) = conv(x_b * s_b, w)
 * and one shared-weight convolution over the whole batch (one GEMM) computes every sample.
 * Demodulation divides output channel o of sample b by
 *   sqrt(sum_{c,i,j} (w[o,c,i,j] s[b,c])^2 + 1e-8) = sqrt(sum_c s[b,c]^2 W2[o,c] + 1e-8),
 * W2 = sum_ij w^2, which is one [B, C] x [C, O] matmul. Being linear in the weight per output
 * channel, the division commutes with the transposed convolution and the blur of the `up`
 * path, so it is applied last. Everything is a composition of differentiable ops; the only op
 * of this file is the swap of a weight's first two dimensions that the transposed convolution
 * needs (rosinality transposes the weight the same way, without flipping it). The layer that
 * owns the weight and the style's linear map is the model kit's kit_modulated_conv2d_layer
 * (models/kit_layers.c). */
#include "error.h"
#include "plan_internal.h"

/* ---- swap01: [A, B, ...] -> [B, A, ...] -------------------------------------------------------- */

static ut_tensor *swap01(ut_graph *g, ut_tensor *x);

static ut_status swap_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  if (x->dtype != UT_F32 || x->shape.rank < 2) {
    char a[64];
    return ut_fail(UT_ERR_SHAPE, "swap01: '%s' of shape %s must be an f32 tensor of rank 2 or more", x->name,
                   ut_shape_str(x->shape, a, sizeof a));
  }
  n->shape = x->shape;
  n->shape.d[0] = x->shape.d[1];
  n->shape.d[1] = x->shape.d[0];
  return UT_OK;
}

static ut_status swap_forward(ut_plan *p, ut_tensor *n) {
  ut_shape s = n->in[0]->shape;
  size_t count = (size_t)ut_shape_numel(s);
  ut_launch *l = ut_plan_kernel(p, n, "stylegan", "swap01");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_uint(l, (unsigned)s.d[0]);
  ut_arg_uint(l, (unsigned)s.d[1]);
  ut_arg_uint(l, (unsigned)(count / (size_t)(s.d[0] * s.d[1])));
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_status swap_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  (void)n;
  grad_in[0] = swap01(g, grad);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_swap01 = { "swap01", 0, swap_shape, swap_forward, swap_backward };

static ut_tensor *swap01(ut_graph *g, ut_tensor *x) { return ut_node_new(g, &op_swap01, 1, &x, NULL, 0, NULL, 0); }

/* ---- the modulated convolution ---------------------------------------------------------------- */

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

ut_tensor *ut_modulated_conv2d(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *style, ut_modconv_cfg cfg) {
  if (!g) return NULL;
  if (!x || !w || !style) return ut_graph_fail(g, ut_graph_status(g));
  ut_shape xs = x->shape, ws = w->shape, ss = style->shape;
  char a[64], b[64], c[64];
  if (xs.rank != 4 || ws.rank != 4 || ss.rank != 2 || ws.d[1] != xs.d[1] || ss.d[0] != xs.d[0] || ss.d[1] != xs.d[1] ||
      ws.d[2] != ws.d[3]) {
    ut_fail(UT_ERR_SHAPE, "modulated_conv2d: input '%s' %s, weight '%s' %s and style '%s' %s must be [B, C, H, W], "
            "[O, C, k, k] and [B, C]", x->name, ut_shape_str(xs, a, sizeof a), w->name, ut_shape_str(ws, b, sizeof b),
            style->name, ut_shape_str(ss, c, sizeof c));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t B = xs.d[0], C = xs.d[1], O = ws.d[0];
  int k = (int)ws.d[2];
  ut_tensor *xm = ut_mul(g, x, ut_reshape(g, style, UT_SHAPE(B, C, 1, 1)));
  ut_tensor *y;
  if (cfg.up) {
    ut_tensor *y2 = ut_conv_transpose2d(g, xm, swap01(g, w), NULL, 2, 0, 0);
    int p = 3 - k; /* (taps - factor) - (k - 1) with the 4-tap blur */
    y = ut_upfirdn2d(g, y2, (ut_fir_cfg){ .pad0 = floor_div(p + 1, 2) + 1, .pad1 = floor_div(p, 2) + 1, .gain = 4.0f });
  } else {
    y = ut_conv2d(g, xm, w, NULL, UT_CONV(1, k / 2));
  }
  if (!cfg.demodulate || !y) return y;
  ut_tensor *w2 = ut_reshape(g, ut_sum(g, ut_square(g, w), (1u << 2) | (1u << 3)), UT_SHAPE(O, C));
  ut_tensor *energy = ut_matmul(g, ut_square(g, style), w2, 0, 1); /* [B, O] */
  ut_tensor *norm = ut_sqrt(g, ut_shift(g, energy, 1e-8f));
  return ut_div(g, y, ut_reshape(g, norm, UT_SHAPE(B, O, 1, 1)));
}
