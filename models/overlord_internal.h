/* Shared by the OverLORD files: the network builders (overlord_net.c) the model
 * (overlord.c) composes, and the parameter prefixes that tie its plans to one store. */
#ifndef UNTANGLE_MODELS_OVERLORD_INTERNAL_H
#define UNTANGLE_MODELS_OVERLORD_INTERNAL_H

#include "overlord.h"

#define OVERLORD_VGG_PREFIX "vgg."
/* Stage 1's codes and networks; the generator is also stage 2's. */
#define OV_LABEL_EMB "ov.label_emb"
#define OV_UNCORR_EMB "ov.uncorr_emb"
#define OV_GEN "ov.gen"
#define OV_ENC_T "ov.enc_t" /* E_c, reading T(x) */
/* Stage 2's encoders, and stage 3's copies of them and of the generator. */
#define OV_S2 "ov.s2."
#define OV_S3 "ov.s3."
#define OV_DIS "ov.dis"

/* latent [B, uncorr + label + corr] -> images [B, C, S, S]: StyleGAN2's synthesis network
 * without a mapping network or noise inputs, the one latent driving every layer. */
ut_tensor *overlord_generator(ut_graph *g, const overlord_cfg *c, ut_tensor *latent, const char *prefix);
/* images -> [B, code_dim]: StarGAN v2's encoder (residual down-sampling blocks, no norm). */
ut_tensor *overlord_encoder(ut_graph *g, const overlord_cfg *c, ut_tensor *images, const char *prefix, int code_dim);
/* The discriminator's minibatch standard deviation takes groups of this many consecutive
 * images (kit_minibatch_stddev), so a data-parallel share must hold a multiple of it. */
#define OVERLORD_STDDEV_GROUP 4

/* images -> logits [B, 1]: rosinality's StyleGAN2 Discriminator with minibatch stddev. With
 * class_rows [B, overlord_dis_features] (dis_projection; NULL: unconditional, the official
 * model) the logit adds the projection of the last hidden features onto each image's row
 * (Miyato and Koyama, ICLR 2018), so the discriminator judges an image as one of its class. */
ut_tensor *overlord_discriminator(ut_graph *g, const overlord_cfg *c, ut_tensor *images, ut_tensor *class_rows,
                                  const char *prefix);
/* The width of those features, and the rows of the discriminator's class table for labels
 * [B] (a parameter under prefix; NULL when dis_projection is off). */
int64_t overlord_dis_features(const overlord_cfg *c);
#define OV_DIS_CLASS_TABLE "class_embed" /* the table's name under the discriminator's prefix */
static const ut_init OV_DIS_CLASS_INIT = { UT_INIT_NORMAL, 0, 1 };
ut_tensor *overlord_dis_class_rows(ut_graph *g, const overlord_cfg *c, ut_tensor *labels, const char *prefix);
/* What the correlated encoder reads: T(x) with fresh random crops (streams "<stream>.crop",
 * "<stream>.rot") in the pose-invariant form, x times its mask in the localized one.
 * `random` 0 gives the untransformed image (inference) in the pose-invariant form. */
ut_tensor *overlord_transform(ut_graph *g, const overlord_cfg *c, ut_tensor *x, ut_tensor *mask, const char *stream,
                              int random);
/* cat(uncorr, label, corr) along the features. */
ut_tensor *overlord_latent(ut_graph *g, ut_tensor *uncorr, ut_tensor *label, ut_tensor *corr);
/* OverLORD's VGGDistance: LORD's (pixel L1 + VGG taps, or pixel L1 alone) on images that are
 * first normalised by ImageNet's mean and std when cfg->normalize. */
ut_tensor *overlord_reconstruction_loss(ut_graph *g, const overlord_cfg *c, ut_tensor *generated, ut_tensor *images);

#endif
