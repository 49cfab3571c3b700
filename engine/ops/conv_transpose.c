/* Transposed 2-D convolution (nn.ConvTranspose2d): the input gradient of a convolution, so it
 * is the conv2d_grad_input op of conv.c with the bias added, and differentiates like it.
 *
 * The geometry is that of the convolution whose input gradient this is: an "image" of
 * [B, O, OH, OW] read with kernel kh x kw, stride s and zero padding p gives H x W outputs,
 * because OH = (H - 1) s - 2p + kh + op with 0 <= op < s. output_padding only adds rows and
 * columns at the bottom and right that no input reaches (they hold the bias alone). The
 * weight [C, O, kh, kw] is that convolution's weight: C of its outputs, O of its inputs. */
#include <stdio.h>

#include "conv_internal.h"
#include "error.h"

static ut_tensor *fail(ut_graph *g, ut_status st, ut_tensor *x, ut_tensor *w) {
  ut_error_prefix("input '%s', weight '%s'", x->name, w->name);
  return ut_graph_fail(g, st);
}

ut_tensor *ut_conv_transpose2d(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, int stride, int pad,
                               int output_padding) {
  if (!g) return NULL;
  if (!x || !w) return ut_graph_fail(g, ut_graph_status(g));
  char sx[64], sw[64], sb[64];
  ut_shape xs = x->shape, ws = w->shape;
  if (xs.rank != 4 || ws.rank != 4 || ws.d[0] != xs.d[1] || x->dtype != UT_F32 || w->dtype != UT_F32) {
    ut_fail(UT_ERR_SHAPE, "conv_transpose2d: input '%s' %s and weight '%s' %s must be f32 [B, C, H, W] and [C, O, kh, kw]",
            x->name, ut_shape_str(xs, sx, sizeof sx), w->name, ut_shape_str(ws, sw, sizeof sw));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  if (bias && (bias->shape.rank != 1 || bias->shape.d[0] != ws.d[1])) {
    ut_fail(UT_ERR_SHAPE, "conv_transpose2d: bias '%s' %s does not fit weight '%s' %s (needs [%lld])", bias->name,
            ut_shape_str(bias->shape, sb, sizeof sb), w->name, ut_shape_str(ws, sw, sizeof sw), (long long)ws.d[1]);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  /* PyTorch's own limits: output_padding below the stride (dilation is 1), pad not negative. */
  if (stride < 1 || pad < 0 || output_padding < 0 || output_padding >= stride) {
    ut_fail(UT_ERR_INVALID_ARGUMENT,
            "conv_transpose2d: stride %d, pad %d, output_padding %d: the stride must be positive, the pad not "
            "negative, and the output padding in [0, stride)",
            stride, pad, output_padding);
    return fail(g, UT_ERR_INVALID_ARGUMENT, x, w);
  }
  const int64_t B = xs.d[0], H = xs.d[2], W = xs.d[3], O = ws.d[1], kh = ws.d[2], kw = ws.d[3];
  const int64_t oh = (H - 1) * stride - 2 * (int64_t)pad + kh + output_padding;
  const int64_t ow = (W - 1) * stride - 2 * (int64_t)pad + kw + output_padding;
  if (oh < 1 || ow < 1) {
    ut_fail(UT_ERR_SHAPE, "conv_transpose2d: input %s, kernel %lldx%lld, stride %d, pad %d, output_padding %d give an "
            "empty %lldx%lld output",
            ut_shape_str(xs, sx, sizeof sx), (long long)kh, (long long)kw, stride, pad, output_padding, (long long)oh,
            (long long)ow);
    return fail(g, UT_ERR_SHAPE, x, w);
  }
  ut_conv_geom gm = { .b = B, .c = O, .h = oh, .w = ow, .kh = kh, .kw = kw, .stride = stride, .pad = pad, .reflect = 0 };
  ut_status st = ut_conv_geom_check("conv_transpose2d", &gm);
  if (st != UT_OK) return fail(g, st, x, w);
  if (gm.oh != H || gm.ow != W) { /* cannot happen with output_padding < stride; keeps the pieces honest */
    ut_fail(UT_ERR_SHAPE, "conv_transpose2d: internal geometry mismatch (%lldx%lld from %lldx%lld)", (long long)gm.oh,
            (long long)gm.ow, (long long)H, (long long)W);
    return fail(g, UT_ERR_SHAPE, x, w);
  }
  return ut_conv_grad_input_node(g, x, w, bias, &gm);
}

ut_tensor *ut_conv_transpose2d_layer(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_channels, int kernel,
                                     int stride, int pad, int output_padding, int with_bias) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (!prefix || x->shape.rank != 4 || out_channels < 1 || kernel < 1) {
    char s[64];
    ut_fail(UT_ERR_INVALID_ARGUMENT,
            "conv_transpose2d layer '%s': input '%s' %s must be [B, C, H, W], with %lld output channels and kernel %d",
            prefix ? prefix : "(null)", x->name, ut_shape_str(x->shape, s, sizeof s), (long long)out_channels, kernel);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  /* PyTorch takes the fan-in of a [C, O, k, k] weight from dimension 1: O * k * k, which is
   * also what UT_INIT_FAN_IN_UNIFORM computes (numel / d[0]). */
  int64_t fan_in = out_channels * kernel * kernel;
  char wname[128], bname[128];
  snprintf(wname, sizeof wname, "%s.w", prefix);
  snprintf(bname, sizeof bname, "%s.b", prefix);
  ut_tensor *w = ut_param(g, wname, UT_SHAPE(x->shape.d[1], out_channels, kernel, kernel),
                          (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 });
  ut_tensor *b = NULL;
  if (with_bias) {
    b = ut_param(g, bname, UT_SHAPE(out_channels), (ut_init){ UT_INIT_FAN_IN_UNIFORM, (float)fan_in, 0 });
    if (!b) return ut_graph_fail(g, ut_graph_status(g));
  }
  return ut_conv_transpose2d(g, x, w, b, stride, pad, output_padding);
}
