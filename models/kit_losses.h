/* The model kit's GAN and KL losses and the discriminator's minibatch standard deviation:
 * compositions of engine ops (untangle_ops.h), so differentiable to any order (R1 penalties
 * pass through them). Each loss is a [1] tensor. They follow the engine's conventions: a
 * failing call returns NULL and records the error in the graph, and a NULL input gives NULL.
 * The binary cross-entropy GAN losses need nothing of their own: ut_bce_with_logits_const(d, 1)
 * for real and (d, 0) for fake samples. */
#ifndef UNTANGLE_KIT_LOSSES_H
#define UNTANGLE_KIT_LOSSES_H

#include "untangle.h"

/* ---------------------------------------------------------------------------------------------
 * GAN losses on discriminator outputs.
 */

/* Least-squares GAN losses on discriminator outputs d: mean (d - 1)^2 (real, or the
 * generator's loss) and mean d^2 (fake). */
ut_tensor *kit_lsgan_real_loss(ut_graph *g, ut_tensor *d);
ut_tensor *kit_lsgan_fake_loss(ut_graph *g, ut_tensor *d);
/* Hinge GAN losses: mean relu(1 - d) for real and mean relu(1 + d) for fake samples in the
 * discriminator's step, and -mean d for the generator's step. */
ut_tensor *kit_hinge_real_loss(ut_graph *g, ut_tensor *d);
ut_tensor *kit_hinge_fake_loss(ut_graph *g, ut_tensor *d);
ut_tensor *kit_hinge_gen_loss(ut_graph *g, ut_tensor *d);

/* Minibatch standard deviation, after rosinality's Discriminator: x [B, C, H, W] is split into
 * groups of G = min(group, B) consecutive samples (sample b in group b / G; B must divide by
 * G; rosinality strides its groups across the batch instead, see kit_losses.c), the biased
 * std over the G group members of each (group, feature, channel, pixel) is taken as
 * sqrt(var + 1e-8), averaged over the C / features channels of each feature and over H, W,
 * and appended as `features` channels: [B, C + features, H, W]. OverLORD uses group 4 and 1
 * feature. Differentiable to any order (R1 penalties pass through it). */
ut_tensor *kit_minibatch_stddev(ut_graph *g, ut_tensor *x, int group, int features);

/* ---------------------------------------------------------------------------------------------
 * KL terms of variational encoders.
 */

/* KL(N(mu, exp(logvar)) || N(0, I)) = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), summed over
 * every dimension but the first and averaged over the batch (dimension 0), as a [1] tensor:
 * the usual VAE loss per sample. DMIT's KL term sums over the batch as well, so it is B times
 * this one (ut_scale by B to match it exactly). mu and logvar have the same shape. */
ut_tensor *kit_kl_normal(ut_graph *g, ut_tensor *mu, ut_tensor *logvar);
/* UNIT's "reduced" KL for a code with its variance fixed to 1: mean(mu^2) over all elements,
 * as a [1] tensor (UNIT applies it to the code after the noise is added). */
ut_tensor *kit_kl_unit_variance(ut_graph *g, ut_tensor *mu);

/* ---------------------------------------------------------------------------------------------
 * Invariance of a code to a grouping of the batch.
 */

/* The group moment gap of codes x [B, D] under a grouping onehot [B, K] (f32, each row one 1:
 * the row's group, e.g. its class or domain): the mean over the B rows and D dimensions of the
 * squared gap between the row's group mean and the batch mean, for x and for x^2, summed, as a
 * [1] tensor. Zero when every group present in the batch has the batch's per-dimension mean and
 * second moment; it is the between-group variance of those two moments, each group weighted by
 * its row count, so a loss term of it asks a code to carry no trace of the grouping in its first
 * two moments (LORD's stage-2 content encoder against the class, DMIT's content codes against
 * the domain). Groups absent from the batch count for nothing. */
ut_tensor *kit_group_moment_gap(ut_graph *g, ut_tensor *x, ut_tensor *onehot);

#endif
