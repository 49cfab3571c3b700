/* StyleGAN2's layers with an equalized learning rate, its fused leaky ReLU and the minibatch
 * standard deviation of its discriminator, all compositions of existing ops (so they are
 * differentiable to any order, as R1 needs).
 *
 * Equalized learning rate: the stored weight is N(0, 1) / lr_mul and the graph multiplies it by
 * lr_mul / sqrt(fan_in) on every run, so Adam's per-parameter steps act on unit-scale values
 * whatever the layer's fan-in (Karras et al., "Progressive growing of GANs"). */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "graph_internal.h"

static float lr_mul_of(ut_equal_cfg cfg) { return cfg.lr_mul != 0.0f ? cfg.lr_mul : 1.0f; }

/* The bias parameter `prefix`.b [n] already times lr_mul, or NULL without one (or on failure,
 * which the graph records). */
static ut_tensor *equal_bias(ut_graph *g, const char *prefix, int64_t n, ut_equal_cfg cfg) {
  if (cfg.no_bias) return NULL;
  char name[160];
  snprintf(name, sizeof name, "%s.b", prefix);
  ut_tensor *b = ut_param(g, name, UT_SHAPE(n), (ut_init){ UT_INIT_CONST, cfg.bias_init, 0 });
  float m = lr_mul_of(cfg);
  return m == 1.0f ? b : ut_scale(g, b, m);
}

static ut_tensor *equal_weight(ut_graph *g, const char *prefix, ut_shape shape, int64_t fan_in, ut_equal_cfg cfg) {
  char name[160];
  snprintf(name, sizeof name, "%s.w", prefix);
  float m = lr_mul_of(cfg);
  ut_tensor *w = ut_param(g, name, shape, (ut_init){ UT_INIT_NORMAL, 0, 1.0f / m });
  return ut_scale(g, w, (float)(m / sqrt((double)fan_in)));
}

/* A [C] vector shaped to broadcast along dimension 1 of a rank-`rank` tensor. */
static ut_tensor *along_channels(ut_graph *g, ut_tensor *v, int rank) {
  ut_shape s = { .rank = rank - 1 };
  s.d[0] = v->shape.d[0];
  for (int i = 1; i < s.rank; i++) s.d[i] = 1;
  return ut_reshape(g, v, s);
}

ut_tensor *ut_fused_leaky_relu(ut_graph *g, ut_tensor *x, ut_tensor *bias) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  char a[64], b[64];
  if (x->shape.rank < 2 || (bias && (bias->shape.rank != 1 || bias->shape.d[0] != x->shape.d[1]))) {
    ut_fail(UT_ERR_SHAPE, "fused_leaky_relu: input '%s' %s must be [B, C, ...] and bias '%s' %s [C]", x->name,
            ut_shape_str(x->shape, a, sizeof a), bias ? bias->name : "(none)",
            bias ? ut_shape_str(bias->shape, b, sizeof b) : "-");
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  if (bias) x = ut_add(g, x, along_channels(g, bias, x->shape.rank));
  return ut_scale(g, ut_leaky_relu(g, x, 0.2f), (float)sqrt(2.0));
}

ut_tensor *ut_equal_linear(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_features, ut_equal_cfg cfg) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (!prefix || x->shape.rank != 2 || out_features < 1) {
    char s[64];
    ut_fail(UT_ERR_SHAPE, "equal_linear '%s': input '%s' %s must be [batch, features], with %lld outputs",
            prefix ? prefix : "(null)", x->name, ut_shape_str(x->shape, s, sizeof s), (long long)out_features);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t in = x->shape.d[1];
  ut_tensor *w = equal_weight(g, prefix, UT_SHAPE(out_features, in), in, cfg);
  ut_tensor *b = equal_bias(g, prefix, out_features, cfg);
  if (g->status != UT_OK) return NULL;
  ut_tensor *y = ut_matmul(g, x, w, 0, 1);
  if (cfg.activate) return ut_fused_leaky_relu(g, y, b);
  return b ? ut_add(g, y, b) : y;
}

ut_tensor *ut_equal_conv2d(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_channels, int kernel,
                           ut_conv_cfg conv, ut_equal_cfg cfg) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (!prefix || x->shape.rank != 4 || out_channels < 1 || kernel < 1) {
    char s[64];
    ut_fail(UT_ERR_SHAPE, "equal_conv2d '%s': input '%s' %s must be [B, C, H, W], with %lld output channels and kernel %d",
            prefix ? prefix : "(null)", x->name, ut_shape_str(x->shape, s, sizeof s), (long long)out_channels, kernel);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t c = x->shape.d[1];
  ut_tensor *w = equal_weight(g, prefix, UT_SHAPE(out_channels, c, kernel, kernel), c * kernel * kernel, cfg);
  ut_tensor *b = equal_bias(g, prefix, out_channels, cfg);
  if (g->status != UT_OK) return NULL;
  if (cfg.activate) return ut_fused_leaky_relu(g, ut_conv2d(g, x, w, NULL, conv), b);
  return ut_conv2d(g, x, w, b, conv);
}

/* x viewed as [G, M, F, (C / F) H W] (sample b = group index * M + m, as x.view(G, -1, F, ...)
 * in rosinality's code): the std over the G members, averaged over the last dimension, gives
 * [1, M, F, 1], which is stretched to [G, M, F, H W] (sample b gets the value of b % M) and
 * appended to the channels. */
ut_tensor *ut_minibatch_stddev(ut_graph *g, ut_tensor *x, int group, int features) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  char s[64];
  if (x->shape.rank != 4 || group < 1 || features < 1 || x->shape.d[1] % features) {
    ut_fail(UT_ERR_SHAPE, "minibatch_stddev: input '%s' %s must be [B, C, H, W] with C divisible by %d features, and "
            "the group (%d) positive", x->name, ut_shape_str(x->shape, s, sizeof s), features, group);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t B = x->shape.d[0], C = x->shape.d[1], HW = x->shape.d[2] * x->shape.d[3];
  int64_t G = group < B ? group : B, M = B / G, F = features;
  if (B % G) {
    ut_fail(UT_ERR_SHAPE, "minibatch_stddev: the batch of '%s' %s does not split into groups of %lld samples", x->name,
            ut_shape_str(x->shape, s, sizeof s), (long long)G);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  ut_tensor *v = ut_reshape(g, x, UT_SHAPE(G, M, F, (C / F) * HW));
  ut_tensor *centered = ut_sub(g, v, ut_mean(g, v, 1u));
  ut_tensor *sd = ut_sqrt(g, ut_shift(g, ut_mean(g, ut_square(g, centered), 1u), 1e-8f)); /* [1, M, F, K] */
  ut_tensor *feat = ut_mean(g, sd, 1u << 3);                                              /* [1, M, F, 1] */
  ut_tensor *maps = ut_broadcast(g, feat, UT_SHAPE(G, M, F, HW));
  return ut_concat(g, x, ut_reshape(g, maps, UT_SHAPE(B, F, x->shape.d[2], x->shape.d[3])));
}
