/* Shared by the DMIT files: the networks (dmit_net.c) that the model (dmit.c) composes. */
#ifndef UNTANGLE_MODELS_DMIT_INTERNAL_H
#define UNTANGLE_MODELS_DMIT_INTERNAL_H

#include "dmit.h"

#define DMIT_PREFIX "dmit."
#define DMIT_ENC_CONTENT "dmit.enc_content."
#define DMIT_ENC_STYLE "dmit.enc_style."
#define DMIT_DEC "dmit.dec."
#define DMIT_DIS_CONTENT "dmit.dis_content."
#define DMIT_DIS_PRIOR "dmit.dis_prior."
#define DMIT_DIS_ENC "dmit.dis_enc."
#define DMIT_DOMAIN_CLS "dmit.domain_cls."

/* How a network is run: training (spectral norms take a power iteration each run and update
 * their vectors) or inference (frozen at the stored vectors). */
typedef struct {
  const dmit_cfg *c;
  int frozen;
} dmit_net;

/* Images [B, C, S, S] in [-1, 1] -> content [B, nef 2^down_blocks, S / 2^down_blocks, ...]. */
ut_tensor *dmit_content_encoder(ut_graph *g, const dmit_net *n, ut_tensor *x);
/* Images -> the style code's mean and log-variance [B, n_style]. */
ut_status dmit_style_encoder(ut_graph *g, const dmit_net *n, ut_tensor *x, ut_tensor **mu, ut_tensor **logvar);
/* Content and code [B, n_domains + n_style] -> images in [-1, 1]. `dropout` names the dropout
 * masks' random streams (one call, one name; NULL: no dropout, as in inference). */
ut_tensor *dmit_decoder(ut_graph *g, const dmit_net *n, ut_tensor *content, ut_tensor *code, const char *dropout);
/* The conditional content discriminator: content and one-hot domain [B, n_domains] -> logit map. */
ut_tensor *dmit_content_discriminator(ut_graph *g, const dmit_net *n, ut_tensor *content, ut_tensor *attr);
/* A conditional two-scale image discriminator under `prefix` (DMIT_DIS_PRIOR or DMIT_DIS_ENC):
 * outs[0] on the image, outs[1] on it average-pooled (3, 2, 1) with half the width. */
ut_status dmit_image_discriminator(ut_graph *g, const dmit_net *n, const char *prefix, ut_tensor *x,
                                   ut_tensor *attr, ut_tensor *outs[2]);

/* Not in DMIT (issue 13), dmit_domain_classifier.c: a linear domain classifier on the whole
 * flattened content code [B, ...] -> logits [B, n_domains] (parameters under DMIT_DOMAIN_CLS). */
ut_tensor *dmit_domain_logits(ut_graph *g, const dmit_cfg *c, ut_tensor *content);
/* Its cross-entropy against each row's domain: a batch of `rows` images of each domain, domain
 * after domain (the training batch's layout, also a rank's share on a team). */
ut_tensor *dmit_domain_cls_loss(ut_graph *g, const dmit_cfg *c, ut_tensor *logits, int64_t rows);
/* The confusion term: its cross-entropy against the uniform distribution over the domains,
 * mean over rows of log-sum-exp(logits) - mean(logits); least (log n_domains) where every row's
 * logits are equal. */
ut_tensor *dmit_domain_confusion(ut_graph *g, const dmit_cfg *c, ut_tensor *logits);

/* The diversity term of the decoder-only update: mean |s1 - s2| / (mean |fake1 - fake2| + 1e-5)
 * for two prior styles and their translations; falling as the translations move apart. The
 * means are the whole batch's: on a team (NULL: alone), the team's mean of the shares'. */
ut_tensor *dmit_diversity_term(ut_graph *g, const kit_team *team, ut_tensor *s1, ut_tensor *s2, ut_tensor *fake1,
                               ut_tensor *fake2);

#endif
