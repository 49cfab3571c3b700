/* DMIT's networks as models/modules/network.py builds them (MODELS.md 4a). Every convolution,
 * transposed convolution and linear layer is spectrally normalised and starts from N(0, 0.02)
 * with zero biases (weights_init('normal')); convolutions pad by reflection unless they are
 * 1x1. Widths are capped where the official code caps them (256 in the style encoder, 512 in
 * the discriminators), as multiples of the configured widths so the small preset scales. */
#include <stdio.h>

#include "dmit_internal.h"
#include "kit_blocks.h"
#include "kit_layers.h"

#define SLOPE 0.2f
#define INIT_STD 0.02f

enum { BIAS = 1, TRANSPOSED = 2 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* A spectrally normalised convolution (or, with TRANSPOSED, a size-doubling transposed one
 * whose weight [C, O, k, k] is normalised along dimension 1, as PyTorch does for it). */
static ut_tensor *sn_conv(ut_graph *g, const dmit_net *n, ut_tensor *x, const char *scope, int64_t out, int k,
                          int stride, int pad, int flags) {
  if (!x) return NULL;
  int64_t in = ut_tensor_shape(x).d[1];
  char name[KIT_SCOPE_MAX];
  int transposed = flags & TRANSPOSED;
  ut_tensor *w = ut_param(g, kit_scope(name, scope, "w"), transposed ? UT_SHAPE(in, out, k, k) : UT_SHAPE(out, in, k, k),
                          (ut_init){ UT_INIT_NORMAL, 0, INIT_STD });
  w = ut_spectral_norm(g, w, scope, (ut_sn_cfg){ .dim = transposed ? 1 : 0, .frozen = n->frozen });
  ut_tensor *b = flags & BIAS ? ut_param(g, kit_scope(name, scope, "b"), UT_SHAPE(out), (ut_init){ UT_INIT_ZERO, 0, 0 }) : NULL;
  if (transposed) return ut_conv_transpose2d(g, x, w, b, stride, pad, 0);
  return ut_conv2d(g, x, w, b, (ut_conv_cfg){ .stride = stride, .pad = pad, .pad_mode = pad ? UT_PAD_REFLECT : UT_PAD_ZERO });
}

static ut_tensor *sn_linear(ut_graph *g, const dmit_net *n, ut_tensor *x, const char *scope, int64_t out) {
  if (!x) return NULL;
  char name[KIT_SCOPE_MAX];
  ut_tensor *w = ut_param(g, kit_scope(name, scope, "w"), UT_SHAPE(out, ut_tensor_shape(x).d[1]),
                          (ut_init){ UT_INIT_NORMAL, 0, INIT_STD });
  w = ut_spectral_norm(g, w, scope, (ut_sn_cfg){ .dim = 0, .frozen = n->frozen });
  ut_tensor *b = ut_param(g, kit_scope(name, scope, "b"), UT_SHAPE(out), (ut_init){ UT_INIT_ZERO, 0, 0 });
  return ut_add(g, ut_matmul(g, x, w, 0, 1), b);
}

static ut_tensor *in_lrelu(ut_graph *g, ut_tensor *x) {
  return ut_leaky_relu(g, ut_instance_norm(g, x, NULL, NULL, 1e-5f), SLOPE);
}

static ut_tensor *cbin(ut_graph *g, const dmit_net *n, ut_tensor *x, ut_tensor *code, const char *scope) {
  ut_sn_cfg sn = { .frozen = n->frozen };
  return kit_cbin(g, x, code, scope, &sn);
}

ut_tensor *dmit_content_encoder(ut_graph *g, const dmit_net *n, ut_tensor *x) {
  const dmit_cfg *c = n->c;
  char s[KIT_SCOPE_MAX], t[KIT_SCOPE_MAX];
  int64_t ch = c->nef;
  ut_tensor *h = in_lrelu(g, sn_conv(g, n, x, DMIT_ENC_CONTENT "head", ch, 7, 1, 3, 0));
  for (int i = 0; i < c->down_blocks; i++) {
    ch = min64(2 * ch, 1024);
    h = in_lrelu(g, sn_conv(g, n, h, kit_scope_i(s, DMIT_ENC_CONTENT "down", i), ch, 4, 2, 1, 0));
  }
  /* ResidualBlock: conv, IN, LReLU, conv, IN, plus the input. */
  for (int i = 0; i < c->content_res; i++) {
    kit_scope_i(s, DMIT_ENC_CONTENT "res", i);
    ut_tensor *y = in_lrelu(g, sn_conv(g, n, h, kit_scope(t, s, "0"), ch, 3, 1, 1, 0));
    y = ut_instance_norm(g, sn_conv(g, n, y, kit_scope(t, s, "1"), ch, 3, 1, 1, 0), NULL, NULL, 1e-5f);
    h = ut_add(g, h, y);
  }
  /* Not in DMIT (content_norm): every channel of the code standardised per image takes out the
   * channel statistics, where most of the domain sits that a probe reads from channel means. */
  return c->content_norm ? ut_instance_norm(g, h, NULL, NULL, 1e-5f) : h;
}

/* DownResidualBlock: IN, LReLU, conv 3x3 + IN + LReLU, conv 3x3, average pool; plus the
 * pooled input through a 1x1 convolution. */
static ut_tensor *down_residual(ut_graph *g, const dmit_net *n, ut_tensor *x, const char *scope, int64_t out) {
  char t[KIT_SCOPE_MAX];
  int64_t in = x ? ut_tensor_shape(x).d[1] : 0;
  ut_tensor *y = in_lrelu(g, x);
  y = in_lrelu(g, sn_conv(g, n, y, kit_scope(t, scope, "0"), in, 3, 1, 1, 0));
  y = ut_avg_pool2x2(g, sn_conv(g, n, y, kit_scope(t, scope, "1"), out, 3, 1, 1, 0));
  return ut_add(g, y, sn_conv(g, n, ut_avg_pool2x2(g, x), kit_scope(t, scope, "shortcut"), out, 1, 1, 0, BIAS));
}

ut_status dmit_style_encoder(ut_graph *g, const dmit_net *n, ut_tensor *x, ut_tensor **mu, ut_tensor **logvar) {
  const dmit_cfg *c = n->c;
  char s[KIT_SCOPE_MAX];
  int64_t cap = 4 * (int64_t)c->nef, out = c->nef;
  ut_tensor *h = sn_conv(g, n, x, DMIT_ENC_STYLE "head", c->nef, 4, 2, 1, BIAS);
  for (int i = 1; i < c->style_blocks; i++) {
    out = min64((int64_t)c->nef * (i + 1), cap);
    h = down_residual(g, n, h, kit_scope_i(s, DMIT_ENC_STYLE "down", i), out);
  }
  h = ut_global_avg_pool(g, ut_leaky_relu(g, h, SLOPE));
  h = h ? ut_reshape(g, h, UT_SHAPE(ut_tensor_shape(h).d[0], out)) : NULL;
  *mu = sn_linear(g, n, h, DMIT_ENC_STYLE "mu", c->n_style);
  *logvar = sn_linear(g, n, h, DMIT_ENC_STYLE "logvar", c->n_style);
  return ut_graph_status(g);
}

ut_tensor *dmit_decoder(ut_graph *g, const dmit_net *n, ut_tensor *content, ut_tensor *code, const char *dropout) {
  const dmit_cfg *c = n->c;
  char s[KIT_SCOPE_MAX], t[KIT_SCOPE_MAX], d[KIT_SCOPE_MAX + 16];
  ut_tensor *h = content;
  int64_t ch = h ? ut_tensor_shape(h).d[1] : 0;
  /* ConResidualBlock: conv, CBIN, ReLU, conv, CBIN, dropout, plus the input. */
  for (int i = 0; i < c->dec_res; i++) {
    kit_scope_i(s, DMIT_DEC "res", i);
    ut_tensor *y = sn_conv(g, n, h, kit_scope(t, s, "0"), ch, 3, 1, 1, 0);
    y = ut_relu(g, cbin(g, n, y, code, kit_scope(t, s, "cbin0")));
    y = sn_conv(g, n, y, kit_scope(t, s, "1"), ch, 3, 1, 1, 0);
    y = cbin(g, n, y, code, kit_scope(t, s, "cbin1"));
    if (dropout && c->dropout > 0) {
      snprintf(d, sizeof d, "%s.%d", dropout, i);
      y = ut_dropout(g, y, d, c->dropout);
    }
    h = ut_add(g, h, y);
  }
  /* Transposed conv 4x4 stride 2, LayerNorm over C, H, W with a per-channel affine, ReLU. */
  kit_conv ln = { .norm = KIT_NORM_LAYER, .act = KIT_ACT_RELU };
  for (int i = 0; i < c->down_blocks; i++) {
    ch /= 2;
    kit_scope_i(s, DMIT_DEC "up", i);
    h = kit_norm_act(g, sn_conv(g, n, h, s, ch, 4, 2, 1, TRANSPOSED), s, &ln);
  }
  return ut_tanh(g, sn_conv(g, n, h, DMIT_DEC "out", c->channels, 7, 1, 3, BIAS));
}

/* ConDownResidualBlock: CBIN, LReLU, conv 3x3, CBIN, LReLU, conv 3x3, average pool; plus the
 * pooled input through a 1x1 convolution. */
static ut_tensor *con_down_residual(ut_graph *g, const dmit_net *n, ut_tensor *x, ut_tensor *attr, const char *scope,
                                    int64_t out) {
  char t[KIT_SCOPE_MAX];
  int64_t in = x ? ut_tensor_shape(x).d[1] : 0;
  ut_tensor *y = ut_leaky_relu(g, cbin(g, n, x, attr, kit_scope(t, scope, "cbin0")), SLOPE);
  y = sn_conv(g, n, y, kit_scope(t, scope, "0"), in, 3, 1, 1, 0);
  y = ut_leaky_relu(g, cbin(g, n, y, attr, kit_scope(t, scope, "cbin1")), SLOPE);
  y = ut_avg_pool2x2(g, sn_conv(g, n, y, kit_scope(t, scope, "1"), out, 3, 1, 1, 0));
  return ut_add(g, y, sn_conv(g, n, ut_avg_pool2x2(g, x), kit_scope(t, scope, "shortcut"), out, 1, 1, 0, BIAS));
}

/* StyleDiscriminator: a stride-2 head, blocks - 1 conditional down blocks, a 1x1 logit. */
static ut_tensor *style_discriminator(ut_graph *g, const dmit_net *n, ut_tensor *x, ut_tensor *attr, const char *scope,
                                      int64_t ndf, int blocks, int64_t cap) {
  char s[KIT_SCOPE_MAX], t[KIT_SCOPE_MAX];
  ut_tensor *h = sn_conv(g, n, x, kit_scope(t, scope, "head"), ndf, 4, 2, 1, BIAS);
  int64_t ch = ndf;
  for (int i = 1; i < blocks; i++) {
    int64_t out = min64(2 * ch, cap);
    h = con_down_residual(g, n, h, attr, kit_scope_i(s, kit_scope(t, scope, "down"), i), out);
    ch = out;
  }
  return sn_conv(g, n, h, kit_scope(t, scope, "logit"), 1, 1, 1, 0, BIAS);
}

ut_tensor *dmit_content_discriminator(ut_graph *g, const dmit_net *n, ut_tensor *content, ut_tensor *attr) {
  int64_t ch = content ? ut_tensor_shape(content).d[1] : 1;
  return style_discriminator(g, n, content, attr, DMIT_DIS_CONTENT "net", ch, n->c->content_dis_blocks, 2 * ch);
}

ut_status dmit_image_discriminator(ut_graph *g, const dmit_net *n, const char *prefix, ut_tensor *x, ut_tensor *attr,
                                   ut_tensor *outs[2]) {
  const dmit_cfg *c = n->c;
  char s[KIT_SCOPE_MAX];
  int64_t cap = 8 * (int64_t)c->ndf;
  snprintf(s, sizeof s, "%s0", prefix);
  outs[0] = style_discriminator(g, n, x, attr, s, c->ndf, c->image_dis_blocks, cap);
  snprintf(s, sizeof s, "%s1", prefix);
  outs[1] = style_discriminator(g, n, ut_avg_pool2d(g, x, 3, 2, 1, 0), attr, s, c->ndf / 2, c->image_dis_blocks, cap);
  return ut_graph_status(g);
}
