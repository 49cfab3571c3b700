/* Shared by the CMI-VAE files: the networks (cmivae_net.c) that the model (cmivae.c) composes.
 * Parameters of E1, E2 and G are under CMIVAE_GEN_PREFIX (one optimiser trains them together,
 * as the paper's L), q's under CMIVAE_Q_PREFIX (trained on real images, see cmivae.c), D's under
 * CMIVAE_DIS_PREFIX. */
#ifndef UNTANGLE_MODELS_CMIVAE_INTERNAL_H
#define UNTANGLE_MODELS_CMIVAE_INTERNAL_H

#include "cmivae.h"

#define CMIVAE_GEN_PREFIX "cmivae.gen."
#define CMIVAE_DIS_PREFIX "cmivae.dis."
#define CMIVAE_Q_PREFIX "cmivae.q."

/* E1: images [B, C, S, S] in [-1, 1] -> the mean and log-variance of q(z1 | x), [B, z1_dim] each. */
void cmivae_e1(ut_graph *g, const cmivae_cfg *c, ut_tensor *x, ut_tensor **mu, ut_tensor **logvar);
/* E2: feature rows [B, feature width] -> z2 [B, z2_dim]. */
ut_tensor *cmivae_e2(ut_graph *g, const cmivae_cfg *c, ut_tensor *f);
/* G: z1 [B, z1_dim] and z2 [B, z2_dim] -> images [B, C, S, S] in [-1, 1]. */
ut_tensor *cmivae_g(ut_graph *g, const cmivae_cfg *c, ut_tensor *z1, ut_tensor *z2);
/* D: a logit [B, 1] for the pair (z2, image); z2 is tiled over the image as extra channels. */
ut_tensor *cmivae_d(ut_graph *g, const cmivae_cfg *c, ut_tensor *z2, ut_tensor *x);
/* q: class logits [B, n_classes] of z2 from an image and z1. */
ut_tensor *cmivae_q(ut_graph *g, const cmivae_cfg *c, ut_tensor *z1, ut_tensor *x);

#endif
