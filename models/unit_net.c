/* UNIT's networks as cocogan_nets.py (version_02) builds them: COCOResGen2 and COCOSharedDis
 * (MODELS.md 3a). Every convolution, transposed ones included, starts from N(0, 0.02) as the
 * code's init.py does for modules named Conv*; biases keep PyTorch's default. */
#include <stdio.h>

#include "kit_blocks.h"
#include "unit_internal.h"

#define LEAKY_SLOPE 0.01f /* nn.LeakyReLU's default, which LeakyReLUConv2d uses */
#define INIT_STD 0.02f

static const char *domain_name(int d) { return d == UNIT_A ? "a" : "b"; }

static kit_conv leaky_conv(int kernel, int stride, int pad) {
  kit_conv c = KIT_CONV(kernel, stride, pad);
  c.act = KIT_ACT_LEAKY;
  c.slope = LEAKY_SLOPE;
  c.init_std = INIT_STD;
  return c;
}

/* INSResBlock: conv 3x3, IN, ReLU, conv 3x3, IN, plus the input. */
static kit_conv res_conv(void) {
  kit_conv c = KIT_CONV(3, 1, 1);
  c.norm = KIT_NORM_INSTANCE;
  c.act = KIT_ACT_RELU;
  c.init_std = INIT_STD;
  return c;
}

ut_tensor *unit_encode(ut_graph *g, const unit_cfg *c, ut_tensor *x, int d, const char *noise) {
  char scope[KIT_SCOPE_MAX], s[KIT_SCOPE_MAX];
  snprintf(scope, sizeof scope, UNIT_GEN_PREFIX "enc_%s", domain_name(d));
  kit_conv head = leaky_conv(7, 1, 3), down = leaky_conv(3, 2, 1), res = res_conv();
  ut_tensor *h = kit_conv_block(g, x, kit_scope_i(s, scope, 0), c->ch, &head);
  h = kit_conv_block(g, h, kit_scope_i(s, scope, 1), 2 * c->ch, &down);
  h = kit_conv_block(g, h, kit_scope_i(s, scope, 2), 4 * c->ch, &down);
  h = kit_res_blocks(g, h, kit_scope(s, scope, "res"), c->res_blocks, &res);
  h = kit_res_blocks(g, h, UNIT_GEN_PREFIX "enc_shared", c->shared_blocks, &res);
  return noise && h ? ut_gaussian_noise(g, h, noise, c->noise_std) : h;
}

ut_tensor *unit_decode_shared(ut_graph *g, const unit_cfg *c, ut_tensor *code) {
  kit_conv res = res_conv();
  return kit_res_blocks(g, code, UNIT_GEN_PREFIX "dec_shared", c->shared_blocks, &res);
}

ut_tensor *unit_decode_domain(ut_graph *g, const unit_cfg *c, ut_tensor *h, int d) {
  char scope[KIT_SCOPE_MAX], s[KIT_SCOPE_MAX];
  snprintf(scope, sizeof scope, UNIT_GEN_PREFIX "dec_%s", domain_name(d));
  kit_conv res = res_conv(), up = leaky_conv(3, 2, 1), out = KIT_CONV(1, 1, 0);
  up.transposed = 1;
  out.transposed = 1;
  out.init_std = INIT_STD;
  out.act = KIT_ACT_TANH;
  h = kit_res_blocks(g, h, kit_scope(s, scope, "res"), c->res_blocks, &res);
  h = kit_conv_block(g, h, kit_scope_i(s, scope, 0), 2 * c->ch, &up);
  h = kit_conv_block(g, h, kit_scope_i(s, scope, 1), c->ch, &up);
  return kit_conv_block(g, h, kit_scope_i(s, scope, 2), c->channels, &out);
}

ut_tensor *unit_discriminate(ut_graph *g, const unit_cfg *c, ut_tensor *x, int d) {
  char scope[KIT_SCOPE_MAX], s[KIT_SCOPE_MAX];
  snprintf(scope, sizeof scope, UNIT_DIS_PREFIX "front_%s", domain_name(d));
  kit_conv head = leaky_conv(7, 2, 3), down = leaky_conv(3, 2, 1), logit = KIT_CONV(1, 1, 0);
  logit.init_std = INIT_STD;
  int64_t ch;
  ut_tensor *h = kit_conv_block(g, x, kit_scope_i(s, scope, 0), c->dis_ch, &head);
  h = kit_conv_block(g, h, kit_scope_i(s, scope, 1), 2 * c->dis_ch, &down);
  h = kit_conv_stack(g, h, UNIT_DIS_PREFIX "shared", c->dis_shared, 4 * c->dis_ch, 0, &down, &ch);
  return kit_conv_block(g, h, UNIT_DIS_PREFIX "logit", 1, &logit);
}
