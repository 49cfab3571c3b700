/* DMIT (Yu et al., NeurIPS 2019) as Xiaoming-Yu/DMIT builds its season-transfer model:
 * MODELS.md section 4. One content encoder, one style encoder (a Gaussian code with mean and
 * log-variance) and one decoder serve every domain: the decoder takes the content and a code
 * [one-hot domain || style] through conditional residual blocks (CBIN). A conditional
 * discriminator on the content codes pushes the content to carry no domain, and two
 * conditional multi-scale image discriminators (translations with prior styles, translations
 * with encoded styles) judge the images. Every convolution and linear layer is spectrally
 * normalised.
 *
 *   dmit_cfg cfg = dmit_preset(DMIT_PRESET_SMALL, 3, 3);    // 3 channels, 3 domains
 *   dmit_model *m = dmit_new(rt, &cfg);
 *   dmit_train_step(m, &batch, losses);                      // the four updates of an iteration
 *   dmit_translate(m, images, n, to, styles, out);           // into domain `to` with given styles
 *   dmit_save(m, "run/checkpoint.safetensors");
 *
 * Plans are built when first needed and kept. Training images are in [-1, 1] (the decoder
 * ends in tanh); translate and the style encoder take and give images in [0, 1].
 */
#ifndef UNTANGLE_MODELS_DMIT_H
#define UNTANGLE_MODELS_DMIT_H

#include "kit_config.h"
#include "kit_team.h"
#include "untangle.h"

#define DMIT_MAX_DOMAINS 4 /* one loader stream per domain (KIT_MAX_STREAMS) */

typedef enum { DMIT_PRESET_DEFAULT = 0, DMIT_PRESET_SMALL = 1 } dmit_preset_kind;

typedef struct {
  int size, channels;    /* images: square side and 1 or 3 channels */
  int n_domains;         /* 2 .. DMIT_MAX_DOMAINS: the one-hot attribute's length */
  int nef, ndf;          /* widths of the encoders' first layer and of the image discriminators (64, 64) */
  int n_style;           /* style code length (8) */
  int down_blocks;       /* stride-2 layers of the content encoder, and upsampling layers of the decoder (2) */
  int content_res;       /* residual blocks of the content encoder (4) */
  int style_blocks;      /* the style encoder's stride-2 head plus down-residual blocks (4) */
  int dec_res;           /* conditional residual blocks of the decoder (6) */
  int content_dis_blocks;/* the content discriminator's head plus conditional down blocks (5) */
  int image_dis_blocks;  /* each image discriminator's head plus conditional down blocks (3) */
  float dropout;         /* in the decoder's residual blocks while training (0.5; 0: none) */
  float w_rec, w_kl, w_cyc, w_style, w_div, w_content; /* 10, 0.01, 10, 1, 0.05, 1 */
  float w_adv_content;   /* the content adversarial term in the encoders' update (1, as official) */
  int dis_content_steps; /* extra content-discriminator-only updates per iteration, before the four (0, as official) */
  float w_content_invariance; /* the domains' moment gap of the content codes in the encoders' update (0: not official) */
  int content_norm;      /* 1: the content encoder ends in an instance normalisation (0, as official) */
  float w_domain_confusion; /* the content encoder's confusion of a linear domain classifier on its codes (0: not official, off) */
  float lr, beta1, beta2;/* every network's Adam: 1e-4, 0.5, 0.999 */
  int batch;             /* images of each domain per step (1) */
  int epochs;            /* passes over the smallest domain's training images (200) */
  int decay_epochs;      /* of those, the last ones over which the learning rate falls linearly (100) */
  int flip;              /* 1: random horizontal flips while training */
  float test_ratio;      /* share of the images held out (whole (class, view) keys where the data is paired) */
  char domains[KIT_STRING_MAX]; /* the data set's domain names in attribute order, comma-separated */
  uint64_t seed;
} dmit_cfg;

/* The official season-transfer sizes (256x256, widths 64, batch 1 per domain, 100 + 100 epochs)
 * or a small model for a 2-core CPU (32x32, widths 16, fewer blocks, batch 4). Domains are left
 * empty (the data set's, in its order). */
dmit_cfg dmit_preset(dmit_preset_kind kind, int channels, int n_domains);
const char *dmit_preset_name(dmit_preset_kind kind);
/* UT_OK, or UT_ERR_INVALID_ARGUMENT naming the field and what it must be. */
ut_status dmit_cfg_check(const dmit_cfg *cfg);
const kit_config_table *dmit_cfg_table(void);
/* Domain `d`'s name from cfg->domains into buf (KIT_STRING_MAX bytes); "" when there is none. */
const char *dmit_domain_name(const dmit_cfg *cfg, int d, char *buf);
/* The index of the domain called `name`, or -1. */
int dmit_find_domain(const dmit_cfg *cfg, const char *name);

typedef struct dmit_model dmit_model;

dmit_model *dmit_new(ut_runtime *rt, const dmit_cfg *cfg);
void dmit_free(dmit_model *m);
const dmit_cfg *dmit_config(const dmit_model *m);
ut_store *dmit_store(dmit_model *m);

/* Makes the model train on `team` (kit_team.h, not owned; NULL: alone): its steps then take
 * this rank's share of every domain's batch, cfg->batch / team->size images of each, domain
 * after domain, reduce gradients over the team and compute the diversity term's two means over
 * the whole batch together. cfg->batch must split into equal shares (else refused with the
 * numbers). Call it before the first step. */
ut_status dmit_set_team(dmit_model *m, const kit_team *team);

/* One step's batch: cfg->batch images of each domain (on a team, the rank's share of each),
 * domain after domain (float [n_domains * batch, C, size, size] in [-1, 1]), and `shift` in
 * 1 .. n_domains - 1: image i is translated into the domain of image (i + shift * batch) mod
 * (n_domains * batch), whose encoded style it also borrows (DMIT's index_target, which for two
 * domains swaps them). */
typedef struct {
  const float *images;
  int shift;
} dmit_batch;

/* The losses of one iteration, each read before its update. */
typedef struct {
  float dis;     /* the three discriminators' losses, summed */
  float dis_content; /* of which the content discriminator's (LSGAN; 0.5 where it cannot tell the domain) */
  float gen;     /* the encoders' and decoder's total (content_invariance included) */
  float adv;     /* its adversarial terms (content, prior and encoded-style image) */
  float adv_content; /* of which the content term, weighted (w_adv_content 0.25 at that balance) */
  float content_invariance; /* w_content_invariance times the domains' moment gap of the content codes (0 when off) */
  float rec;     /* w_rec L1 reconstruction */
  float cyc;     /* w_cyc L1 cycle reconstruction */
  float kl;      /* w_kl KL of the style codes, summed over the batch */
  float latent;  /* the decoder-only step: style regression plus diversity term */
  float content; /* the content-encoder-only step */
  float domain_confusion; /* w_domain_confusion times the classifier's cross-entropy against uniform domains (0 when off) */
  float domain_cls;       /* the linear domain classifier's cross-entropy on the batch's codes, before its update (0 when off) */
  float domain_cls_accuracy; /* its share of the batch's codes put in their own domain, before its update (0 when off) */
} dmit_losses;
/* losses.tsv's columns: the 8 of every run, then invariance in runs with w_content_invariance >
 * 0, then confusion, domain_cls and domain_cls_acc in runs with w_domain_confusion > 0. */
#define DMIT_LOSS_COUNT 12
extern const char *const dmit_loss_names[DMIT_LOSS_COUNT];

/* The four updates of update_model (MODELS.md 4b), each a plan of its own that recomputes its
 * forward pass: the discriminators; the encoders and decoder; the decoder alone (latent
 * regression and diversity); the content encoder alone; after cfg->dis_content_steps updates of
 * the content discriminator alone and, with w_domain_confusion > 0, one update of the linear
 * domain classifier. `lr_scale` multiplies every learning rate (the schedule). */
ut_status dmit_train_step(dmit_model *m, const dmit_batch *b, float lr_scale, dmit_losses *losses);
/* Runs update `which` (0 discriminators, 1 generator, 2 decoder, 3 content encoder, 4 the
 * content discriminator alone, 5 the linear domain classifier alone) once; out[] gets its losses
 * (2, 8, 1, 1, 1 and 2 of them: dis and dis_content; gen, adv, rec, cyc, kl, adv_content,
 * content_invariance and domain_confusion; latent; content; the content discriminator's; the
 * domain classifier's cross-entropy and accuracy). A term that is off reads 0. */
ut_status dmit_update(dmit_model *m, int which, const dmit_batch *b, float lr_scale, float *out);
/* The most losses an update reports: out[] of dmit_update holds this many. */
#define DMIT_UPDATE_LOSSES_MAX 8

/* n images (float [n, C, size, size] in [0, 1]) drawn in domain `to` with styles [n, n_style]
 * (from the prior N(0, I), or dmit_encode_style of references); out [n, C, size, size] in [0, 1].
 * Deterministic: no dropout, no noise, spectral norms frozen at their stored vectors. */
ut_status dmit_translate(dmit_model *m, const float *images, int64_t n, int to, const float *styles, float *out);
/* The style encoder's means [n, n_style] of n images in [0, 1]. */
ut_status dmit_encode_style(dmit_model *m, const float *images, int64_t n, float *styles);
/* The content encoder's codes of n images in [0, 1]: out [n, dmit_content_size(cfg)] (each
 * [C, S / 2^down_blocks, S / 2^down_blocks], flattened). */
ut_status dmit_encode_content(dmit_model *m, const float *images, int64_t n, float *out);
int64_t dmit_content_size(const dmit_cfg *cfg);
/* The content discriminator's output, averaged over its map, for n content codes (as
 * dmit_encode_content gives them) each paired with domain `domain`: LSGAN's 1 for "a code of
 * this domain", 0 for "a code of another". Frozen like the other inference plans. */
ut_status dmit_content_dis_score(dmit_model *m, const float *codes, int64_t n, int domain, float *out);
/* n standard normal style codes [n, n_style] from `seed` (the same on every machine). */
void dmit_prior_styles(const dmit_cfg *cfg, uint64_t seed, int64_t n, float *styles);

/* Checkpoints: every trained tensor (spectral norms' vectors too), optimiser states, random
 * stream counters, the configuration ("dmit.config") and the caller's metadata, atomically. */
ut_status dmit_save(dmit_model *m, const char *path);
ut_status dmit_read_config(ut_runtime *rt, const char *path, dmit_cfg *cfg);
ut_status dmit_load(dmit_model *m, const char *path);

#endif
