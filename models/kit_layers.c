/* The kit's layers with parameters (kit_layers.h), written with the public engine API alone.
 *
 * Equalized learning rate: the stored weight is N(0, 1) / lr_mul and the graph multiplies it by
 * lr_mul / sqrt(fan_in) on every run, so Adam's per-parameter steps act on unit-scale values
 * whatever the layer's fan-in (Karras et al., "Progressive growing of GANs").
 *
 * Batch normalization folds the statistics and the affine part into one per-channel scale and
 * shift, computed on [C]-sized tensors, so the full-size passes are few: training mode makes
 * centered = x - mean (needed for the two-pass variance anyway) and y = centered * a + b with
 * a = w / sqrt(var + eps); evaluation mode makes y = x * a + (b - running_mean * a), as
 * PyTorch's CPU inference kernel does. The running statistics are written by the engine's
 * ut_running_average update nodes.
 *
 * CBIN(x, code) = instance_norm(x, eps 1e-5) + tanh(SN-Linear(code))[:, :, None, None]: DMIT
 * wraps the Linear in spectral_norm, like every layer of its networks. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "kit_layers.h"

static ut_tensor *fail(ut_graph *g, ut_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ut_tensor *fail(ut_graph *g, ut_status s, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ut_fail(s, "%s", msg);
  return ut_graph_fail(g, s);
}

/* ---- equalized learning rate ------------------------------------------------------------------ */

static float lr_mul_of(kit_equal_cfg cfg) { return cfg.lr_mul != 0.0f ? cfg.lr_mul : 1.0f; }

/* The bias parameter `prefix`.b [n] already times lr_mul, or NULL without one (or on failure,
 * which the graph records). */
static ut_tensor *equal_bias(ut_graph *g, const char *prefix, int64_t n, kit_equal_cfg cfg) {
  if (cfg.no_bias) return NULL;
  char name[160];
  snprintf(name, sizeof name, "%s.b", prefix);
  ut_tensor *b = ut_param(g, name, UT_SHAPE(n), (ut_init){ UT_INIT_CONST, cfg.bias_init, 0 });
  float m = lr_mul_of(cfg);
  return m == 1.0f ? b : ut_scale(g, b, m);
}

static ut_tensor *equal_weight(ut_graph *g, const char *prefix, ut_shape shape, int64_t fan_in, kit_equal_cfg cfg) {
  char name[160];
  snprintf(name, sizeof name, "%s.w", prefix);
  float m = lr_mul_of(cfg);
  ut_tensor *w = ut_param(g, name, shape, (ut_init){ UT_INIT_NORMAL, 0, 1.0f / m });
  return ut_scale(g, w, (float)(m / sqrt((double)fan_in)));
}

ut_tensor *kit_equal_linear(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_features, kit_equal_cfg cfg) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  ut_shape xs = ut_tensor_shape(x);
  if (!prefix || xs.rank != 2 || out_features < 1) {
    char s[64];
    return fail(g, UT_ERR_SHAPE, "equal_linear '%s': input '%s' %s must be [batch, features], with %lld outputs",
                prefix ? prefix : "(null)", ut_tensor_name(x), ut_shape_str(xs, s, sizeof s), (long long)out_features);
  }
  int64_t in = xs.d[1];
  ut_tensor *w = equal_weight(g, prefix, UT_SHAPE(out_features, in), in, cfg);
  ut_tensor *b = equal_bias(g, prefix, out_features, cfg);
  if (ut_graph_status(g) != UT_OK) return NULL;
  ut_tensor *y = ut_matmul(g, x, w, 0, 1);
  if (cfg.activate) return ut_fused_leaky_relu(g, y, b);
  return b ? ut_add(g, y, b) : y;
}

ut_tensor *kit_equal_conv2d(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_channels, int kernel,
                            ut_conv_cfg conv, kit_equal_cfg cfg) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  ut_shape xs = ut_tensor_shape(x);
  if (!prefix || xs.rank != 4 || out_channels < 1 || kernel < 1) {
    char s[64];
    return fail(g, UT_ERR_SHAPE, "equal_conv2d '%s': input '%s' %s must be [B, C, H, W], with %lld output channels and kernel %d",
                prefix ? prefix : "(null)", ut_tensor_name(x), ut_shape_str(xs, s, sizeof s), (long long)out_channels, kernel);
  }
  int64_t c = xs.d[1];
  ut_tensor *w = equal_weight(g, prefix, UT_SHAPE(out_channels, c, kernel, kernel), c * kernel * kernel, cfg);
  ut_tensor *b = equal_bias(g, prefix, out_channels, cfg);
  if (ut_graph_status(g) != UT_OK) return NULL;
  if (cfg.activate) return ut_fused_leaky_relu(g, ut_conv2d(g, x, w, NULL, conv), b);
  return ut_conv2d(g, x, w, b, conv);
}

/* ---- modulated convolution layer -------------------------------------------------------------- */

ut_tensor *kit_modulated_conv2d_layer(ut_graph *g, ut_tensor *x, ut_tensor *latent, const char *prefix,
                                      int64_t out_channels, int kernel, ut_modconv_cfg cfg) {
  if (!g) return NULL;
  if (!x || !latent) return ut_graph_fail(g, ut_graph_status(g));
  ut_shape xs = ut_tensor_shape(x);
  if (!prefix || xs.rank != 4 || out_channels < 1 || kernel < 1) {
    char s[64];
    return fail(g, UT_ERR_INVALID_ARGUMENT, "modulated conv layer '%s': input '%s' %s must be [B, C, H, W], with %lld output "
                "channels and kernel %d", prefix ? prefix : "(null)", ut_tensor_name(x), ut_shape_str(xs, s, sizeof s),
                (long long)out_channels, kernel);
  }
  int64_t C = xs.d[1];
  char name[160];
  snprintf(name, sizeof name, "%s.w", prefix);
  ut_tensor *w = ut_param(g, name, UT_SHAPE(out_channels, C, kernel, kernel), (ut_init){ UT_INIT_NORMAL, 0, 1 });
  snprintf(name, sizeof name, "%s.mod", prefix);
  ut_tensor *style = kit_equal_linear(g, latent, name, C, (kit_equal_cfg){ .bias_init = 1.0f });
  ut_tensor *ws = ut_scale(g, w, (float)(1.0 / sqrt((double)(C * kernel * kernel))));
  return ut_modulated_conv2d(g, x, ws, style, cfg);
}

/* ---- batch normalization ---------------------------------------------------------------------- */

/* A store tensor "<prefix>.<what>" of shape [C] as a source node of g. */
static ut_tensor *named(ut_graph *g, const char *prefix, const char *what, int64_t c, ut_init init, int is_param) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", prefix, what);
  if (is_param) return ut_param(g, name, UT_SHAPE(c), init);
  ut_store_tensor *t = ut_store_tensor_get(ut_graph_store(g), name, UT_SHAPE(c), init);
  return t ? ut_state(g, t) : ut_graph_fail(g, UT_ERR_SHAPE);
}

ut_tensor *kit_batch_norm(ut_graph *g, ut_tensor *x, const char *prefix, const kit_batch_norm_cfg *cfg) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  kit_batch_norm_cfg c = cfg ? *cfg : (kit_batch_norm_cfg){ 0 };
  float eps = c.eps > 0 ? c.eps : 1e-5f, momentum = c.momentum > 0 ? c.momentum : 0.1f;
  ut_shape xs = ut_tensor_shape(x);
  const char *xname = ut_tensor_name(x);
  char sx[64];
  ut_shape_str(xs, sx, sizeof sx);
  if (!prefix || !*prefix) return fail(g, UT_ERR_INVALID_ARGUMENT, "batch_norm: input '%s' %s: no name prefix", xname, sx);
  if (ut_tensor_dtype(x) != UT_F32 || xs.rank < 2)
    return fail(g, UT_ERR_SHAPE, "batch_norm '%s': input '%s' of shape %s must be an f32 [B, C], [B, C, L] or [B, C, H, W] tensor",
                prefix, xname, sx);
  if (!(c.eps >= 0) || !(c.momentum >= 0 && c.momentum <= 1))
    return fail(g, UT_ERR_INVALID_ARGUMENT, "batch_norm '%s': eps %g must be >= 0 and momentum %g in [0, 1]", prefix,
                (double)c.eps, (double)c.momentum);

  int rank = xs.rank;
  int64_t channels = xs.d[1], count = ut_shape_numel(xs) / channels;
  unsigned axes = ((1u << rank) - 1) & ~2u; /* every dimension but the channels */
  /* [C] vectors broadcast along dimension 1 as [C, 1, ..., 1] (rank - 1 dimensions). */
  ut_shape vec = { .rank = rank - 1 };
  vec.d[0] = channels;
  for (int i = 1; i < vec.rank; i++) vec.d[i] = 1;

  ut_tensor *w = NULL, *b = NULL;
  if (!c.no_affine) {
    w = ut_reshape(g, named(g, prefix, "w", channels, (ut_init){ UT_INIT_CONST, 1, 0 }, 1), vec);
    b = ut_reshape(g, named(g, prefix, "b", channels, (ut_init){ UT_INIT_ZERO, 0, 0 }, 1), vec);
  }
  ut_tensor *rmean = named(g, prefix, "running_mean", channels, (ut_init){ UT_INIT_ZERO, 0, 0 }, 0);
  ut_tensor *rvar = named(g, prefix, "running_var", channels, (ut_init){ UT_INIT_CONST, 1, 0 }, 0);
  if (ut_graph_status(g) != UT_OK) return NULL;
  ut_tensor *one = w ? w : ut_scalar(g, 1.0f);

  if (c.eval) {
    ut_tensor *rm = ut_reshape(g, rmean, vec);
    ut_tensor *a = ut_div(g, one, ut_sqrt(g, ut_shift(g, ut_reshape(g, rvar, vec), eps)));
    ut_tensor *shift = ut_mul(g, rm, a);
    shift = b ? ut_sub(g, b, shift) : ut_neg(g, shift);
    return ut_add(g, ut_mul(g, x, a), shift);
  }

  /* nn.BatchNorm refuses to train on one value per channel: the variance would be 0 and the
   * running variance's unbiased factor n / (n - 1) infinite. */
  if (count < 2)
    return fail(g, UT_ERR_SHAPE, "batch_norm '%s': training needs more than one value per channel, input '%s' %s has %lld",
                prefix, xname, sx, (long long)count);
  ut_tensor *mean = ut_mean(g, x, axes);
  ut_tensor *centered = ut_sub(g, x, mean);
  ut_tensor *var = ut_mean(g, ut_square(g, centered), axes); /* biased, as used to normalize */
  ut_tensor *a = ut_div(g, one, ut_sqrt(g, ut_shift(g, var, eps)));
  ut_tensor *y = ut_mul(g, centered, a);
  if (b) y = ut_add(g, y, b);
  if (!y || !ut_running_average(g, rmean, mean, momentum, 1.0f) ||
      !ut_running_average(g, rvar, var, momentum, (float)((double)count / (double)(count - 1))))
    return ut_graph_fail(g, ut_graph_status(g));
  return y;
}

/* ---- CBIN ------------------------------------------------------------------------------------- */

ut_tensor *kit_cbin(ut_graph *g, ut_tensor *x, ut_tensor *code, const char *prefix, const ut_sn_cfg *sn) {
  if (!g) return NULL;
  if (!x || !code) return ut_graph_fail(g, ut_graph_status(g));
  ut_shape xs = ut_tensor_shape(x), cs = ut_tensor_shape(code);
  char a[64], b[64];
  if (!prefix || xs.rank != 4 || cs.rank != 2 || cs.d[0] != xs.d[0])
    return fail(g, UT_ERR_SHAPE, "cbin '%s': input '%s' %s and code '%s' %s must be [B, C, H, W] and [B, n]",
                prefix ? prefix : "(null)", ut_tensor_name(x), ut_shape_str(xs, a, sizeof a), ut_tensor_name(code),
                ut_shape_str(cs, b, sizeof b));
  int64_t B = xs.d[0], C = xs.d[1];
  char name[160];
  snprintf(name, sizeof name, "%s.w", prefix);
  ut_tensor *w = ut_param(g, name, UT_SHAPE(C, cs.d[1]), (ut_init){ UT_INIT_NORMAL, 0, 0.02f });
  snprintf(name, sizeof name, "%s.b", prefix);
  ut_tensor *bias = ut_param(g, name, UT_SHAPE(C), (ut_init){ UT_INIT_ZERO, 0, 0 });
  if (sn) {
    ut_sn_cfg cfg = *sn;
    cfg.dim = 0; /* a Linear weight's rows are its outputs */
    w = ut_spectral_norm(g, w, prefix, cfg);
  }
  ut_tensor *shift = ut_tanh(g, ut_add(g, ut_matmul(g, code, w, 0, 1), bias));
  return ut_add(g, ut_instance_norm(g, x, NULL, NULL, 1e-5f), ut_reshape(g, shift, UT_SHAPE(B, C, 1, 1)));
}
