/* LORD's networks as graphs (MODELS.md 1a) in the kit's blocks: the AdaIN generator with its
 * modulation, the two encoders and the reconstruction loss. Parameter names are fixed here, so
 * every plan of a model (the two training steps, generation, encoding) shares the same store
 * tensors, and checkpoints written before the kit still open. */
#include <stdio.h>

#include "kit_blocks.h"
#include "lord_internal.h"
#include "vgg.h"

#define LEAK 0.01f /* nn.LeakyReLU()'s default slope, which lord-pytorch uses everywhere */
#define ADAIN_EPS 1e-5f

static ut_tensor *lrelu(ut_graph *g, ut_tensor *x) { return ut_leaky_relu(g, x, LEAK); }

static kit_conv leaky(int kernel, int stride, int pad) {
  kit_conv c = KIT_CONV(kernel, stride, pad);
  c.act = KIT_ACT_LEAKY;
  c.slope = LEAK;
  return c;
}

/* lord-pytorch's Modulation is one Linear(class_dim -> 2 C) per AdaIN layer whose output is
 * read as interleaved (bias, scale) pairs. kit_adain's two Linear layers, one for the scale
 * and one for the bias ("lord.mod.<i>.scale", ".bias"), compute the same family of functions
 * with the same initialisation (PyTorch's per-element fan-in uniform), without a strided
 * slice. */
ut_tensor *lord_generator(ut_graph *g, const lord_cfg *c, ut_tensor *content, ut_tensor *class_code) {
  int64_t b = ut_tensor_shape(content).d[0], start = c->size / 16, area = start * start;
  ut_tensor *h = lrelu(g, ut_linear(g, content, "lord.gen.fc1", area * (c->gen_channels / 8)));
  h = lrelu(g, ut_linear(g, h, "lord.gen.fc2", area * (c->gen_channels / 4)));
  h = lrelu(g, ut_linear(g, h, "lord.gen.fc3", area * c->gen_channels));
  h = ut_reshape(g, h, UT_SHAPE(b, c->gen_channels, start, start));
  kit_conv up = leaky(3, 1, 1), head = leaky(5, 1, 2), out = KIT_CONV(7, 1, 3);
  out.act = KIT_ACT_SIGMOID;
  for (int i = 0; i < LORD_ADAIN_LAYERS; i++) {
    char conv[64], mod[64];
    snprintf(conv, sizeof conv, "lord.gen.up%d", i);
    snprintf(mod, sizeof mod, "lord.mod.%d", i);
    h = kit_adain(g, kit_upsample_conv_block(g, h, conv, c->gen_channels, &up), class_code, mod, ADAIN_EPS);
  }
  h = kit_conv_block(g, h, "lord.gen.c1", c->head_channels, &head);
  return kit_conv_block(g, h, "lord.gen.c2", c->channels, &out);
}

ut_tensor *lord_encoder(ut_graph *g, const lord_cfg *c, ut_tensor *images, const char *which, int code_dim) {
  char name[80];
  int64_t b = ut_tensor_shape(images).d[0];
  kit_conv stem = leaky(7, 1, 3), down = leaky(4, 2, 1);
  snprintf(name, sizeof name, "lord.enc_%s.stem", which);
  ut_tensor *h = kit_conv_block(g, images, name, c->enc_channels, &stem);
  /* 64 -> 128 -> 256 -> 256 -> 256 in the official model: doubling twice, then flat. */
  static const int width_factor[4] = { 2, 4, 4, 4 };
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "lord.enc_%s.down%d", which, i);
    h = kit_conv_block(g, h, name, (int64_t)c->enc_channels * width_factor[i], &down);
  }
  int64_t side = c->size / 16;
  h = ut_reshape(g, h, UT_SHAPE(b, (int64_t)c->enc_channels * 4 * side * side));
  snprintf(name, sizeof name, "lord.enc_%s.fc1", which);
  h = lrelu(g, ut_linear(g, h, name, c->enc_hidden));
  snprintf(name, sizeof name, "lord.enc_%s.fc2", which);
  h = lrelu(g, ut_linear(g, h, name, c->enc_hidden));
  snprintf(name, sizeof name, "lord.enc_%s.fc3", which);
  return ut_linear(g, h, name, code_dim);
}

ut_tensor *lord_reconstruction_loss(ut_graph *g, const lord_cfg *c, ut_tensor *generated, ut_tensor *images) {
  if (c->recon == LORD_RECON_L1) return ut_l1_loss(g, generated, images);
  return vgg16_distance(g, generated, images, LORD_VGG_PREFIX);
}
