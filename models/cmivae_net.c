/* CMI-VAE's networks (cmivae_internal.h). The paper gives no architecture; these are the
 * smallest DCGAN-style stacks that draw 32x32 images well: two stride-2 4x4 convolutions down,
 * a linear layer across, two size-doubling transposed convolutions up, leaky ReLU (0.2)
 * between, PyTorch's default initialisation. */
#include <stdio.h>

#include "cmivae_internal.h"
#include "kit_blocks.h"

#define SLOPE 0.2f

static kit_conv down_conv(void) {
  kit_conv c = KIT_CONV(4, 2, 1);
  c.act = KIT_ACT_LEAKY;
  c.slope = SLOPE;
  return c;
}

/* Two stride-2 convolutions (width, 2 width), flattened: [B, 2 width (S/4)^2]. */
static ut_tensor *down_stack(ut_graph *g, ut_tensor *x, const char *scope, int width) {
  char s[KIT_SCOPE_MAX];
  kit_conv down = down_conv();
  ut_tensor *h = kit_conv_block(g, x, kit_scope_i(s, scope, 0), width, &down);
  h = kit_conv_block(g, h, kit_scope_i(s, scope, 1), 2 * width, &down);
  if (!h) return NULL;
  ut_shape hs = ut_tensor_shape(h);
  return ut_reshape(g, h, UT_SHAPE(hs.d[0], hs.d[1] * hs.d[2] * hs.d[3]));
}

void cmivae_e1(ut_graph *g, const cmivae_cfg *c, ut_tensor *x, ut_tensor **mu, ut_tensor **logvar) {
  ut_tensor *h = down_stack(g, x, CMIVAE_GEN_PREFIX "e1.conv", c->ch);
  *mu = ut_linear(g, h, CMIVAE_GEN_PREFIX "e1.mu", c->z1_dim);
  *logvar = ut_linear(g, h, CMIVAE_GEN_PREFIX "e1.logvar", c->z1_dim);
}

ut_tensor *cmivae_e2(ut_graph *g, const cmivae_cfg *c, ut_tensor *f) {
  ut_tensor *h = ut_leaky_relu(g, ut_linear(g, f, CMIVAE_GEN_PREFIX "e2.fc1", c->e2_hidden), SLOPE);
  return ut_linear(g, h, CMIVAE_GEN_PREFIX "e2.fc2", c->z2_dim);
}

ut_tensor *cmivae_g(ut_graph *g, const cmivae_cfg *c, ut_tensor *z1, ut_tensor *z2) {
  int64_t side = c->size / 4, B = z1 ? ut_tensor_shape(z1).d[0] : 0;
  ut_tensor *h = ut_linear(g, ut_concat(g, z1, z2), CMIVAE_GEN_PREFIX "g.fc", 2 * c->ch * side * side);
  h = ut_reshape(g, ut_leaky_relu(g, h, SLOPE), UT_SHAPE(B, 2 * c->ch, side, side));
  kit_conv up = KIT_CONV(3, 2, 1), out = KIT_CONV(3, 1, 1);
  up.transposed = 1;
  up.act = KIT_ACT_LEAKY;
  up.slope = SLOPE;
  out.act = KIT_ACT_TANH;
  h = kit_conv_block(g, h, CMIVAE_GEN_PREFIX "g.up0", c->ch, &up);
  h = kit_conv_block(g, h, CMIVAE_GEN_PREFIX "g.up1", c->ch, &up);
  return kit_conv_block(g, h, CMIVAE_GEN_PREFIX "g.out", c->channels, &out);
}

ut_tensor *cmivae_d(ut_graph *g, const cmivae_cfg *c, ut_tensor *z2, ut_tensor *x) {
  if (!z2 || !x) return NULL;
  int64_t B = ut_tensor_shape(x).d[0];
  ut_tensor *tiled = ut_broadcast(g, ut_reshape(g, z2, UT_SHAPE(B, c->z2_dim, 1, 1)), UT_SHAPE(B, c->z2_dim, c->size, c->size));
  ut_tensor *h = down_stack(g, ut_concat(g, x, tiled), CMIVAE_DIS_PREFIX "conv", c->dis_ch);
  return ut_linear(g, h, CMIVAE_DIS_PREFIX "logit", 1);
}

ut_tensor *cmivae_q(ut_graph *g, const cmivae_cfg *c, ut_tensor *z1, ut_tensor *x) {
  ut_tensor *h = ut_concat(g, down_stack(g, x, CMIVAE_Q_PREFIX "conv", c->ch), z1);
  h = ut_leaky_relu(g, ut_linear(g, h, CMIVAE_Q_PREFIX "fc1", c->e2_hidden), SLOPE);
  return ut_linear(g, h, CMIVAE_Q_PREFIX "fc2", c->n_classes);
}
