/* The model kit's layers: the convolution blocks, residual blocks, down and up blocks and
 * discriminator stacks that the translation models are written in (MUNIT/UNIT's
 * Conv2dBlock, ResBlocks and MsImageDis, StarGAN v2's ResBlk, in our terms).
 *
 * Parameters are named by scope: a block called with scope "unit.gen.enc_a.0" owns
 * "unit.gen.enc_a.0.w" and "unit.gen.enc_a.0.b" (and its norm's ".norm.w" / ".norm.b"). The
 * store finds a parameter by name, so calling a block twice with one scope shares its weights
 * (UNIT's shared encoder and decoder blocks), and with two scopes does not.
 *
 *   kit_conv c = KIT_CONV(3, 2, 1);                 // 3x3, stride 2, pad 1
 *   c.norm = KIT_NORM_INSTANCE; c.act = KIT_ACT_RELU;
 *   h = kit_conv_block(g, x, "gen.down1", 128, &c);
 *   h = kit_res_blocks(g, h, "gen.res", 3, &KIT_CONV(3, 1, 1));
 */
#ifndef UNTANGLE_MODELS_KIT_BLOCKS_H
#define UNTANGLE_MODELS_KIT_BLOCKS_H

#include "untangle.h"

#define KIT_SCOPE_MAX 128

typedef enum {
  KIT_NORM_NONE = 0,
  KIT_NORM_INSTANCE,        /* per (sample, channel) plane, no affine (nn.InstanceNorm2d) */
  KIT_NORM_INSTANCE_AFFINE, /* the same with a learned scale (1) and bias (0) per channel */
  KIT_NORM_LAYER,           /* per sample over C, H, W, biased variance inside the root (F.layer_norm,
                               DMIT's), then a per-channel scale (1) and bias (0) */
  KIT_NORM_LAYER_MUNIT,     /* MUNIT's and UNIT master's LayerNorm: (x - mean) / (std + eps) per sample
                               with the unbiased std, eps 1e-5, then a per-channel scale drawn from
                               U(0, 1) and a bias (0) */
  KIT_NORM_BATCH,           /* batch statistics with running averages (kit_batch_norm) */
} kit_norm;

typedef enum { KIT_ACT_NONE = 0, KIT_ACT_RELU, KIT_ACT_LEAKY, KIT_ACT_TANH, KIT_ACT_SIGMOID } kit_act;

/* How a convolution block is made. A zeroed kit_conv is a 1x1 unpadded convolution with a
 * bias, PyTorch's default initialisation, no norm and no activation. */
typedef struct {
  int kernel, stride, pad;
  ut_pad_mode pad_mode;
  kit_norm norm;
  kit_act act;
  float slope;      /* KIT_ACT_LEAKY's negative slope; 0 means 0.2 */
  int no_bias;      /* 1: no bias (a norm right after makes one redundant) */
  float init_std;   /* > 0: weights drawn from N(0, init_std^2) (UNIT's and DMIT's 0.02); 0: PyTorch's
                       default. Biases always take PyTorch's default. */
  int transposed;   /* 1: nn.ConvTranspose2d with output_padding = stride - 1 (doubles the size at
                       kernel 3, stride 2, pad 1) */
  int eval;         /* KIT_NORM_BATCH: 1 uses the running statistics (evaluation mode) */
} kit_conv;
#define KIT_CONV(kernel_, stride_, pad_) ((kit_conv){ .kernel = (kernel_), .stride = (stride_), .pad = (pad_) })

/* Convolution (or transposed convolution), then the norm, then the activation. */
ut_tensor *kit_conv_block(ut_graph *g, ut_tensor *x, const char *scope, int64_t out_channels, const kit_conv *c);

/* The norm and the activation of c alone, on x (channels from x); parameters "<scope>.norm.*". */
ut_tensor *kit_norm_act(ut_graph *g, ut_tensor *x, const char *scope, const kit_conv *c);

/* One residual block: x + conv(norm, act)(conv(norm)(x)) with channels and size kept. The first
 * convolution takes c's norm and activation, the second c's norm only (UNIT's INSResBlock,
 * MUNIT's ResBlock). c's stride must be 1 and its padding keep the size. Scopes "<scope>.0"
 * and "<scope>.1". */
ut_tensor *kit_res_block(ut_graph *g, ut_tensor *x, const char *scope, const kit_conv *c);
/* n residual blocks in a row, scopes "<scope>.0" ... "<scope>.<n-1>". */
ut_tensor *kit_res_blocks(ut_graph *g, ut_tensor *x, const char *scope, int n, const kit_conv *c);

/* Nearest-neighbour 2x upsampling, then kit_conv_block (MUNIT's decoder); the size-doubling
 * transposed convolution is kit_conv_block with c->transposed. */
ut_tensor *kit_upsample_conv_block(ut_graph *g, ut_tensor *x, const char *scope, int64_t out_channels,
                                   const kit_conv *c);

/* A stack of n convolution blocks of c, channels doubling from `first_channels` (capped at
 * max_channels when > 0), scopes "<scope>.0" ...: the body of UNIT's and MUNIT's
 * discriminators. *channels_out gets the last block's channels (may be NULL). */
ut_tensor *kit_conv_stack(ut_graph *g, ut_tensor *x, const char *scope, int n, int64_t first_channels,
                          int64_t max_channels, const kit_conv *c, int64_t *channels_out);

/* A multi-scale discriminator as MUNIT's MsImageDis: `scales` copies of `one` (each with its own
 * scope "<scope>.<s>"), the s-th applied to x average-pooled s times (3x3, stride 2, pad 1, count
 * without padding). outs[s] gets scale s's logit map. UT_OK or the graph's error. */
typedef ut_tensor *(*kit_discriminator_fn)(ut_graph *g, ut_tensor *x, const char *scope, const void *user);
ut_status kit_multiscale(ut_graph *g, ut_tensor *x, const char *scope, int scales, kit_discriminator_fn one,
                         const void *user, ut_tensor **outs);

/* Adaptive instance norm driven by a code [B, D]: a per-channel scale and bias computed from it
 * by two linear layers ("<scope>.scale", "<scope>.bias", PyTorch's default initialisation),
 * then ut_adain (LORD's and MUNIT's decoders). */
ut_tensor *kit_adain(ut_graph *g, ut_tensor *x, ut_tensor *code, const char *scope, float eps);

/* "<scope>.<name>" into buf (KIT_SCOPE_MAX bytes); returns buf. */
char *kit_scope(char *buf, const char *scope, const char *name);
/* "<scope>.<index>" into buf; returns buf. */
char *kit_scope_i(char *buf, const char *scope, int index);

/* Images in [0, 1] to [-1, 1] and back, for the models whose output is tanh. */
ut_tensor *kit_to_signed(ut_graph *g, ut_tensor *x);
ut_tensor *kit_to_unit(ut_graph *g, ut_tensor *x);

#endif
