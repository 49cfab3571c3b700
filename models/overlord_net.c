/* OverLORD's networks as graphs (MODELS.md 2a): the StyleGAN2 synthesis network without a
 * mapping network, StarGAN v2's encoder, rosinality's StyleGAN2 discriminator, the transform T
 * and the reconstruction loss. Every builder takes its parameter prefix, so stage 3's copies
 * of the encoders and the generator are the same builders under another prefix. */
#include <math.h>
#include <stdio.h>

#include "kit_blocks.h"
#include "kit_layers.h"
#include "kit_losses.h"
#include "overlord_internal.h"
#include "vgg.h"

#define SQRT1_2 0.70710678118654752f

/* rosinality's channel table with channel_multiplier 2: `base` (512) up to 64x64, halved per
 * octave above. */
static int64_t width_at(int base, int res) {
  int64_t w = base;
  for (int r = 64; r < res; r *= 2) w /= 2;
  return w > 0 ? w : 1;
}

static int log2i(int v) {
  int n = 0;
  while ((1 << n) < v) n++;
  return n;
}

static char *name2(char *buf, const char *prefix, const char *a, int i) {
  if (i >= 0) snprintf(buf, KIT_SCOPE_MAX, "%s.%s%d", prefix, a, i);
  else snprintf(buf, KIT_SCOPE_MAX, "%s.%s", prefix, a);
  return buf;
}

/* ---- generator -------------------------------------------------------------------------------- */

/* StyledConv without NoiseInjection (OverLORD comments it out): modulated, demodulated
 * convolution, then FusedLeakyReLU with its own bias. */
static ut_tensor *styled_conv(ut_graph *g, ut_tensor *x, ut_tensor *latent, const char *scope, int64_t out, int up) {
  char name[KIT_SCOPE_MAX];
  ut_tensor *h = kit_modulated_conv2d_layer(g, x, latent, scope, out, 3, (ut_modconv_cfg){ .demodulate = 1, .up = up });
  ut_tensor *bias = ut_param(g, kit_scope(name, scope, "act_b"), UT_SHAPE(out), (ut_init){ UT_INIT_ZERO, 0, 0 });
  return ut_fused_leaky_relu(g, h, bias);
}

/* ToRGB: a modulated 1x1 convolution without demodulation plus a bias, added to the previous
 * resolution's image upsampled by the [1, 3, 3, 1] FIR filter. */
static ut_tensor *to_rgb(ut_graph *g, ut_tensor *x, ut_tensor *latent, const char *scope, int channels, ut_tensor *skip) {
  char name[KIT_SCOPE_MAX];
  ut_tensor *h = kit_modulated_conv2d_layer(g, x, latent, scope, channels, 1, (ut_modconv_cfg){ .demodulate = 0 });
  h = ut_add(g, h, ut_param(g, kit_scope(name, scope, "b"), UT_SHAPE(1, channels, 1, 1), (ut_init){ UT_INIT_ZERO, 0, 0 }));
  return skip ? ut_add(g, h, ut_fir_upsample2x(g, skip)) : h;
}

ut_tensor *overlord_generator(ut_graph *g, const overlord_cfg *c, ut_tensor *latent, const char *prefix) {
  if (!latent) return ut_graph_fail(g, ut_graph_status(g));
  char name[KIT_SCOPE_MAX];
  int64_t b = ut_tensor_shape(latent).d[0], w = width_at(c->gen_channels, 4);
  ut_tensor *start = ut_param(g, name2(name, prefix, "const", -1), UT_SHAPE(1, w, 4, 4), (ut_init){ UT_INIT_NORMAL, 0, 1 });
  ut_tensor *h = ut_broadcast(g, start, UT_SHAPE(b, w, 4, 4));
  h = styled_conv(g, h, latent, name2(name, prefix, "conv", 0), w, 0);
  ut_tensor *rgb = to_rgb(g, h, latent, name2(name, prefix, "rgb", 0), c->channels, NULL);
  for (int i = 1, res = 8; res <= c->size; i++, res *= 2) {
    w = width_at(c->gen_channels, res);
    h = styled_conv(g, h, latent, name2(name, prefix, "up", i), w, 1);
    h = styled_conv(g, h, latent, name2(name, prefix, "conv", i), w, 0);
    rgb = to_rgb(g, h, latent, name2(name, prefix, "rgb", i), c->channels, rgb);
  }
  return rgb;
}

/* ---- encoder ---------------------------------------------------------------------------------- */

static ut_tensor *lrelu(ut_graph *g, ut_tensor *x) { return ut_leaky_relu(g, x, 0.2f); }

/* StarGAN v2's ResBlk(downsample=True, normalize=False): residual LReLU, conv 3x3, avg pool,
 * LReLU, conv 3x3; shortcut a 1x1 convolution without bias when the width changes, then avg
 * pool; the sum divided by sqrt(2). */
static ut_tensor *res_down(ut_graph *g, ut_tensor *x, const char *scope, int64_t out) {
  char name[KIT_SCOPE_MAX];
  int64_t in = ut_tensor_shape(x).d[1];
  ut_tensor *r = ut_conv2d_layer(g, lrelu(g, x), kit_scope(name, scope, "conv1"), in, 3, UT_CONV(1, 1), 1);
  r = ut_conv2d_layer(g, lrelu(g, ut_avg_pool2x2(g, r)), kit_scope(name, scope, "conv2"), out, 3, UT_CONV(1, 1), 1);
  ut_tensor *s = in != out ? ut_conv2d_layer(g, x, kit_scope(name, scope, "skip"), out, 1, UT_CONV(1, 0), 0) : x;
  return ut_scale(g, ut_add(g, ut_avg_pool2x2(g, s), r), SQRT1_2);
}

ut_tensor *overlord_encoder(ut_graph *g, const overlord_cfg *c, ut_tensor *images, const char *prefix, int code_dim) {
  if (!images) return ut_graph_fail(g, ut_graph_status(g));
  char name[KIT_SCOPE_MAX];
  int64_t b = ut_tensor_shape(images).d[0], width = c->enc_channels;
  ut_tensor *h = ut_conv2d_layer(g, images, name2(name, prefix, "stem", -1), width, 3, UT_CONV(1, 1), 1);
  for (int i = 0; i < log2i(c->size) - 2; i++) {
    int64_t out = width * 2 < c->enc_max ? width * 2 : c->enc_max;
    h = res_down(g, h, name2(name, prefix, "down", i), out);
    width = out;
  }
  h = ut_conv2d_layer(g, lrelu(g, h), name2(name, prefix, "head4", -1), width, 4, UT_CONV(1, 0), 1); /* 4x4 -> 1x1 */
  h = ut_conv2d_layer(g, lrelu(g, h), name2(name, prefix, "out", -1), code_dim, 1, UT_CONV(1, 0), 1);
  return ut_reshape(g, h, UT_SHAPE(b, code_dim));
}

/* ---- discriminator ---------------------------------------------------------------------------- */

/* rosinality's ConvLayer(downsample=True): the [1, 3, 3, 1] blur padded so that the stride-2
 * convolution after it halves the size, p = 2 + kernel - 1 split ((p + 1) / 2, p / 2). */
static ut_tensor *blur_down_conv(ut_graph *g, ut_tensor *x, const char *scope, int64_t out, int kernel, int activate) {
  int p = 2 + kernel - 1;
  ut_tensor *h = ut_upfirdn2d(g, x, (ut_fir_cfg){ .pad0 = (p + 1) / 2, .pad1 = p / 2 });
  return kit_equal_conv2d(g, h, scope, out, kernel, UT_CONV(2, 0), (kit_equal_cfg){ .activate = activate, .no_bias = !activate });
}

static ut_tensor *dis_block(ut_graph *g, ut_tensor *x, const char *scope, int64_t out) {
  char name[KIT_SCOPE_MAX];
  int64_t in = ut_tensor_shape(x).d[1];
  ut_tensor *h = kit_equal_conv2d(g, x, kit_scope(name, scope, "conv1"), in, 3, UT_CONV(1, 1), (kit_equal_cfg){ .activate = 1 });
  h = blur_down_conv(g, h, kit_scope(name, scope, "conv2"), out, 3, 1);
  ut_tensor *skip = blur_down_conv(g, x, kit_scope(name, scope, "skip"), out, 1, 0);
  return ut_scale(g, ut_add(g, h, skip), SQRT1_2);
}

int64_t overlord_dis_features(const overlord_cfg *c) { return width_at(c->dis_channels, 4); }

ut_tensor *overlord_dis_class_rows(ut_graph *g, const overlord_cfg *c, ut_tensor *labels, const char *prefix) {
  if (!c->dis_projection) return NULL;
  char name[KIT_SCOPE_MAX];
  ut_tensor *table =
    ut_param(g, name2(name, prefix, OV_DIS_CLASS_TABLE, -1), UT_SHAPE(c->n_classes, overlord_dis_features(c)), OV_DIS_CLASS_INIT);
  return ut_embedding(g, table, labels);
}

ut_tensor *overlord_discriminator(ut_graph *g, const overlord_cfg *c, ut_tensor *images, ut_tensor *class_rows,
                                  const char *prefix) {
  if (!images) return ut_graph_fail(g, ut_graph_status(g));
  char name[KIT_SCOPE_MAX];
  int64_t b = ut_tensor_shape(images).d[0];
  ut_tensor *h = kit_equal_conv2d(g, images, name2(name, prefix, "from_rgb", -1), width_at(c->dis_channels, c->size), 1,
                                  UT_CONV(1, 0), (kit_equal_cfg){ .activate = 1 });
  for (int i = 0, res = c->size; res > 4; i++, res /= 2)
    h = dis_block(g, h, name2(name, prefix, "block", i), width_at(c->dis_channels, res / 2));
  int64_t w = width_at(c->dis_channels, 4);
  h = kit_minibatch_stddev(g, h, OVERLORD_STDDEV_GROUP, 1);
  h = kit_equal_conv2d(g, h, name2(name, prefix, "final_conv", -1), w, 3, UT_CONV(1, 1), (kit_equal_cfg){ .activate = 1 });
  h = ut_reshape(g, h, UT_SHAPE(b, w * 16));
  h = kit_equal_linear(g, h, name2(name, prefix, "fc", -1), w, (kit_equal_cfg){ .activate = 1 });
  ut_tensor *logit = kit_equal_linear(g, h, name2(name, prefix, "logit", -1), 1, (kit_equal_cfg){ 0 });
  if (!class_rows) return logit;
  /* The projection: <features, the class's row> / sqrt(w), as StyleGAN2-ADA's conditional
   * discriminator scales it, so that rows of unit variance start the term at about the size
   * of the unconditional logit. */
  return ut_add(g, logit, ut_scale(g, ut_sum(g, ut_mul(g, h, class_rows), 1u << 1), 1.0f / sqrtf((float)w)));
}

/* ---- transform, latent and loss --------------------------------------------------------------- */

ut_tensor *overlord_transform(ut_graph *g, const overlord_cfg *c, ut_tensor *x, ut_tensor *mask, const char *stream,
                              int random) {
  if (c->correlation == OVERLORD_LOCALIZED) return ut_mul(g, x, mask);
  if (!random) return x;
  char name[KIT_SCOPE_MAX];
  int64_t b = ut_tensor_shape(x).d[0];
  ut_tensor *theta = ut_random_resized_crop_theta(g, kit_scope(name, stream, "crop"), b, c->crop_min, c->crop_max, c->flip);
  if (c->rotation > 0)
    theta = ut_affine_compose(g, ut_random_rotation_theta(g, kit_scope(name, stream, "rot"), b, c->rotation), theta);
  return ut_affine_grid_sample(g, x, theta);
}

ut_tensor *overlord_latent(ut_graph *g, ut_tensor *uncorr, ut_tensor *label, ut_tensor *corr) {
  return ut_concat(g, ut_concat(g, uncorr, label), corr);
}

/* torchvision's ImageNet statistics, as OverLORD's VGGDistance(normalize=True) applies them to
 * both images before the pixel term and the VGG taps. */
static ut_tensor *imagenet_normalize(ut_graph *g, ut_tensor *x) {
  static const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };
  float scale[3], shift[3];
  for (int i = 0; i < 3; i++) {
    scale[i] = 1.0f / std[i];
    shift[i] = -mean[i] / std[i];
  }
  if (ut_tensor_shape(x).d[1] == 1) x = ut_concat(g, ut_concat(g, x, x), x); /* as VGGDistance repeats gray to RGB */
  return ut_add(g, ut_mul(g, x, ut_constant(g, UT_SHAPE(1, 3, 1, 1), scale)), ut_constant(g, UT_SHAPE(1, 3, 1, 1), shift));
}

ut_tensor *overlord_reconstruction_loss(ut_graph *g, const overlord_cfg *c, ut_tensor *generated, ut_tensor *images) {
  if (c->normalize) {
    generated = imagenet_normalize(g, generated);
    images = imagenet_normalize(g, images);
  }
  if (c->recon == OVERLORD_RECON_L1) return ut_l1_loss(g, generated, images);
  return vgg16_distance(g, generated, images, OVERLORD_VGG_PREFIX);
}
