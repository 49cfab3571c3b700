/* The model kit's layers (kit_blocks.h), written with the engine's ops. */
#include <stdio.h>

#include "kit_blocks.h"
#include "kit_layers.h"

char *kit_scope(char *buf, const char *scope, const char *name) {
  snprintf(buf, KIT_SCOPE_MAX, "%s.%s", scope, name);
  return buf;
}

char *kit_scope_i(char *buf, const char *scope, int index) {
  snprintf(buf, KIT_SCOPE_MAX, "%s.%d", scope, index);
  return buf;
}

ut_tensor *kit_norm_act(ut_graph *g, ut_tensor *x, const char *scope, const kit_conv *c) {
  if (!x) return NULL;
  int64_t ch = ut_tensor_shape(x).d[1];
  char w[KIT_SCOPE_MAX], b[KIT_SCOPE_MAX];
  kit_scope(w, scope, "norm.w");
  kit_scope(b, scope, "norm.b");
  switch (c->norm) {
  case KIT_NORM_NONE: break;
  case KIT_NORM_INSTANCE: x = ut_instance_norm(g, x, NULL, NULL, 1e-5f); break;
  case KIT_NORM_INSTANCE_AFFINE:
  case KIT_NORM_LAYER: {
    ut_tensor *scale = ut_param(g, w, UT_SHAPE(ch), (ut_init){ UT_INIT_CONST, 1, 0 });
    ut_tensor *shift = ut_param(g, b, UT_SHAPE(ch), (ut_init){ UT_INIT_ZERO, 0, 0 });
    x = c->norm == KIT_NORM_LAYER ? ut_layer_norm(g, x, scale, shift, 1e-5f)
                                  : ut_instance_norm(g, x, scale, shift, 1e-5f);
    break;
  }
  case KIT_NORM_LAYER_MUNIT: {
    ut_shape sh = ut_tensor_shape(x);
    int64_t per_sample = ut_shape_numel(sh) / sh.d[0];
    unsigned axes = 0xe; /* C, H, W */
    ut_tensor *centred = ut_sub(g, x, ut_mean(g, x, axes));
    ut_tensor *var = ut_scale(g, ut_sum(g, ut_square(g, centred), axes), 1.0f / (float)(per_sample > 1 ? per_sample - 1 : 1));
    x = ut_div(g, centred, ut_shift(g, ut_sqrt(g, var), 1e-5f));
    ut_tensor *scale = ut_param(g, w, UT_SHAPE(ch), (ut_init){ UT_INIT_UNIFORM, 0, 1 });
    ut_tensor *shift = ut_param(g, b, UT_SHAPE(ch), (ut_init){ UT_INIT_ZERO, 0, 0 });
    x = ut_add(g, ut_mul(g, x, ut_reshape(g, scale, UT_SHAPE(1, ch, 1, 1))), ut_reshape(g, shift, UT_SHAPE(1, ch, 1, 1)));
    break;
  }
  case KIT_NORM_BATCH: {
    char prefix[KIT_SCOPE_MAX];
    x = kit_batch_norm(g, x, kit_scope(prefix, scope, "norm"), &(kit_batch_norm_cfg){ .eval = c->eval });
    break;
  }
  }
  switch (c->act) {
  case KIT_ACT_NONE: return x;
  case KIT_ACT_RELU: return ut_relu(g, x);
  case KIT_ACT_LEAKY: return ut_leaky_relu(g, x, c->slope > 0 ? c->slope : 0.2f);
  case KIT_ACT_TANH: return ut_tanh(g, x);
  case KIT_ACT_SIGMOID: return ut_sigmoid(g, x);
  }
  return x;
}

ut_tensor *kit_conv_block(ut_graph *g, ut_tensor *x, const char *scope, int64_t out_channels, const kit_conv *c) {
  if (!x) return NULL;
  int64_t in = ut_tensor_shape(x).d[1];
  int k = c->kernel > 0 ? c->kernel : 1, stride = c->stride > 0 ? c->stride : 1;
  char wname[KIT_SCOPE_MAX], bname[KIT_SCOPE_MAX];
  kit_scope(wname, scope, "w");
  kit_scope(bname, scope, "b");
  /* PyTorch's fan-in: C_in k^2 for a convolution's [O, C, k, k] weight, and O k^2 for a
   * transposed one's [C, O, k, k] (its dimension 1), which is also what the bias takes. */
  ut_shape wshape = c->transposed ? UT_SHAPE(in, out_channels, k, k) : UT_SHAPE(out_channels, in, k, k);
  int64_t fan_in = (c->transposed ? out_channels : in) * k * k;
  ut_init winit = c->init_std > 0 ? (ut_init){ UT_INIT_NORMAL, 0, c->init_std } : (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 };
  ut_tensor *w = ut_param(g, wname, wshape, winit);
  ut_tensor *b = c->no_bias ? NULL : ut_param(g, bname, UT_SHAPE(out_channels), (ut_init){ UT_INIT_FAN_IN_UNIFORM, (float)fan_in, 0 });
  ut_tensor *y = c->transposed ? ut_conv_transpose2d(g, x, w, b, stride, c->pad, stride - 1)
                               : ut_conv2d(g, x, w, b, (ut_conv_cfg){ .stride = stride, .pad = c->pad, .pad_mode = c->pad_mode });
  return kit_norm_act(g, y, scope, c);
}

ut_tensor *kit_res_block(ut_graph *g, ut_tensor *x, const char *scope, const kit_conv *c) {
  if (!x) return NULL;
  int64_t ch = ut_tensor_shape(x).d[1];
  char s0[KIT_SCOPE_MAX], s1[KIT_SCOPE_MAX];
  kit_conv second = *c;
  second.act = KIT_ACT_NONE;
  ut_tensor *h = kit_conv_block(g, x, kit_scope_i(s0, scope, 0), ch, c);
  h = kit_conv_block(g, h, kit_scope_i(s1, scope, 1), ch, &second);
  return h ? ut_add(g, x, h) : NULL;
}

ut_tensor *kit_res_blocks(ut_graph *g, ut_tensor *x, const char *scope, int n, const kit_conv *c) {
  char s[KIT_SCOPE_MAX];
  for (int i = 0; i < n && x; i++) x = kit_res_block(g, x, kit_scope_i(s, scope, i), c);
  return x;
}

ut_tensor *kit_upsample_conv_block(ut_graph *g, ut_tensor *x, const char *scope, int64_t out_channels,
                                   const kit_conv *c) {
  return x ? kit_conv_block(g, ut_upsample_nearest2x(g, x), scope, out_channels, c) : NULL;
}

ut_tensor *kit_conv_stack(ut_graph *g, ut_tensor *x, const char *scope, int n, int64_t first_channels,
                          int64_t max_channels, const kit_conv *c, int64_t *channels_out) {
  char s[KIT_SCOPE_MAX];
  int64_t ch = first_channels;
  for (int i = 0; i < n && x; i++) {
    if (i > 0) ch *= 2;
    if (max_channels > 0 && ch > max_channels) ch = max_channels;
    x = kit_conv_block(g, x, kit_scope_i(s, scope, i), ch, c);
  }
  if (channels_out) *channels_out = ch;
  return x;
}

ut_status kit_multiscale(ut_graph *g, ut_tensor *x, const char *scope, int scales, kit_discriminator_fn one,
                         const void *user, ut_tensor **outs) {
  char s[KIT_SCOPE_MAX];
  for (int i = 0; i < scales; i++) {
    if (i > 0) x = ut_avg_pool2d(g, x, 3, 2, 1, 0);
    outs[i] = one(g, x, kit_scope_i(s, scope, i), user);
    if (!outs[i]) return ut_graph_status(g) ? ut_graph_status(g) : UT_ERR_INVALID_ARGUMENT;
  }
  return UT_OK;
}

ut_tensor *kit_adain(ut_graph *g, ut_tensor *x, ut_tensor *code, const char *scope, float eps) {
  if (!x || !code) return NULL;
  int64_t ch = ut_tensor_shape(x).d[1];
  char s[KIT_SCOPE_MAX], b[KIT_SCOPE_MAX];
  ut_tensor *scale = ut_linear(g, code, kit_scope(s, scope, "scale"), ch);
  ut_tensor *bias = ut_linear(g, code, kit_scope(b, scope, "bias"), ch);
  return ut_adain(g, x, scale, bias, eps);
}

ut_tensor *kit_to_signed(ut_graph *g, ut_tensor *x) { return ut_shift(g, ut_scale(g, x, 2.0f), -1.0f); }

ut_tensor *kit_to_unit(ut_graph *g, ut_tensor *x) { return ut_scale(g, ut_shift(g, x, 1.0f), 0.5f); }
