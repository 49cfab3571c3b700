/* OverLORD (Gabbay & Hoshen, ICCV 2021) as avivga/overlord builds it (MODELS.md section 2).
 *
 * An image is generated from cat(uncorrelated, label, correlated) codes by a StyleGAN2
 * synthesis network without a mapping network. Three stages:
 *  1. disentanglement: a label code per class and an uncorrelated code per image are optimised
 *     directly (embeddings, with Gaussian noise and a decay on the pre-noise uncorrelated code,
 *     as LORD's asymmetric noise), and the correlated code comes from an encoder E_c reading a
 *     transformed image T(x) (a random resized crop, rotation and flip: pose-invariant; or the
 *     image times a mask: localized), so it cannot carry the pose;
 *  2. amortisation: label, uncorrelated and correlated encoders learn to predict the stage-1
 *     codes from the image alone;
 *  3. synthesis: copies of the stage-2 encoders and of the generator are fine-tuned with the
 *     reconstruction, 10 x the stage-2 regression and a non-saturating GAN loss against a
 *     StyleGAN2 discriminator with R1 every step. Stage 2's networks are kept, so their
 *     translations can be shown beside stage 3's.
 *
 *   overlord_cfg cfg = overlord_preset(OVERLORD_PRESET_SMALL, channels, n_images, n_classes);
 *   overlord_model *m = overlord_new(rt, &cfg, NULL);
 *   overlord_step(m, 1, &batch, progress, losses);       // stage 1, 2 or 3
 *   overlord_encode(m, 3, images, n, uncorr, label, corr); // a stage's encoders
 *   overlord_generate(m, 3, uncorr, label, corr, n, out);
 *
 * Plans are built when first needed and kept. Images are float [B, C, S, S] in [0, 1].
 */
#ifndef UNTANGLE_MODELS_OVERLORD_H
#define UNTANGLE_MODELS_OVERLORD_H

#include "kit_config.h"
#include "kit_team.h"
#include "untangle.h"

typedef enum {
  OVERLORD_RECON_L1 = 0,     /* pixel L1 only (no VGG weights given) */
  OVERLORD_RECON_VGG,        /* pixel L1 + VGG16 taps (LORD's VGG distance), weights from a file */
  OVERLORD_RECON_VGG_RANDOM, /* the same computation with untrained VGG weights: timing parity */
} overlord_recon;

typedef enum {
  OVERLORD_POSE_INVARIANT = 0, /* E_c reads a random resized crop, rotation and flip of x */
  OVERLORD_LOCALIZED = 1,      /* E_c reads x times its mask */
} overlord_correlation;

typedef enum { OVERLORD_PRESET_DEFAULT = 0, OVERLORD_PRESET_SMALL = 1 } overlord_preset_kind;

typedef struct {
  int size, channels;          /* square side (a power of two, 8 .. 256) and 1 or 3 channels */
  int64_t n_images, n_classes; /* rows of the uncorrelated and label embeddings */
  overlord_correlation correlation;
  int label_dim, uncorr_dim, corr_dim;
  int gen_channels;            /* generator width up to 64x64 (512), halved per octave above */
  int enc_channels, enc_max;   /* encoders: first convolution (64), cap of the doubling (256) */
  int dis_channels;            /* discriminator width up to 64x64 (512) */
  float uncorr_std;            /* stage-1 noise on the uncorrelated code (0.1) */
  float uncorr_decay;          /* weight of mean_b mean_d u^2 on the pre-noise code (0.1) */
  float crop_min, crop_max;    /* T's crop area fraction (0.6, 1) */
  float rotation;              /* T's rotation range in degrees, +- (0 in the official configs) */
  int flip;                    /* T mirrors half the images */
  int normalize;               /* ImageNet mean/std normalisation of the reconstruction's inputs */
  int batch;
  int epochs1, epochs2, epochs3;
  float lr_latent, lr_gen, lr_corr; /* stage 1: 0.01, 1e-3, 1e-4; cosine down to lr_min */
  float lr_enc, lr_min;        /* stage 2: 1e-4 cosine to 1e-5 */
  float lr_gan;                /* stage 3, encoders and generator: 1e-4, constant */
  float lr_dis;                /* stage 3, the discriminator: 1e-4, constant */
  float w_latent;              /* stage 3's weight of the regression terms (10) */
  float w_r1;                  /* R1 = w_r1 / 2 mean_b sum (dD/dx)^2 (1) */
  float w_adv;                 /* stage 3's weight of the generator's adversarial term (1, the official) */
  float w_adv_swap;            /* stage 3's weight of the adversarial terms on label changes (0, off: the official
                                * stage 3 judges reconstructions alone) */
  float w_swap_label;          /* stage 3's weight of the label changes' label as stage 2's label encoder reads it: MSE
                                * against the target's row (0, off: not in the official code; needs w_adv_swap > 0) */
  float w_swap_corr;           /* the same for the correlated code: stage 2's correlated encoder on the label change
                                * against the same encoder on the input (0, off; needs w_adv_swap > 0) */
  float w_swap_class;          /* the label changes' label as a classification: cross-entropy of the target label
                                * over logits -|stage 2's E_label(change) - row k|^2 of the label table (0, off; needs
                                * w_adv_swap > 0) */
  int dis_projection;          /* 1: stage 3's discriminator is conditioned on the label by a projection (0, off: the
                                * official discriminator is unconditional) */
  overlord_recon recon;
  uint64_t seed;
} overlord_cfg;

/* The official sizes at 64x64 (DEFAULT) or a 32x32 model narrow enough for a 2-core CPU
 * (SMALL); the data's channels and counts are filled in. */
overlord_cfg overlord_preset(overlord_preset_kind kind, int channels, int64_t n_images, int64_t n_classes);
const char *overlord_preset_name(overlord_preset_kind kind);
const char *overlord_correlation_name(overlord_correlation c);
const char *overlord_recon_name(overlord_recon r);
/* UT_OK, or UT_ERR_INVALID_ARGUMENT naming the field and what it must be. */
ut_status overlord_cfg_check(const overlord_cfg *cfg);
char *overlord_cfg_to_json(const overlord_cfg *cfg);
ut_status overlord_cfg_from_json(const char *json, overlord_cfg *cfg);
int overlord_cfg_differs(const overlord_cfg *a, const overlord_cfg *b, char *why, size_t size);
/* The field table, for --set FIELD=VALUE (kit_config_set). */
const kit_config_table *overlord_cfg_table(void);

typedef struct overlord_model overlord_model;

/* A model on rt with a fresh store (parameters from cfg->seed). With recon VGG, `vgg_weights`
 * names a safetensors file of torchvision's vgg16 `features.*` tensors. */
overlord_model *overlord_new(ut_runtime *rt, const overlord_cfg *cfg, const char *vgg_weights);
void overlord_free(overlord_model *m);
const overlord_cfg *overlord_config(const overlord_model *m);
ut_store *overlord_store(overlord_model *m);

/* Makes the model train on `team` (kit_team.h, not owned; NULL: alone): its steps then take
 * this rank's share of cfg->batch, cfg->batch / team->size images, reduce gradients over the
 * team and exchange only the batch's rows of the per-image codes. With stage 3 (cfg->epochs3
 * > 0) each share must hold whole groups of 4 images, the groups of the discriminator's
 * minibatch standard deviation; other teams are refused, the message giving the numbers.
 * Call it before the first step. */
ut_status overlord_set_team(overlord_model *m, const kit_team *team);

/* One training batch: cfg->batch images (on a team, the rank's share), their rows of the uncorrelated embedding, their
 * labels and (localized only) their masks [B, 1, S, S] in [0, 1]. */
typedef struct {
  const float *images;
  const int32_t *image_ids, *labels;
  const float *masks;
} overlord_batch;

/* The losses a step reports, one layout for every stage (losses.tsv's columns); a stage
 * writes 0 in the columns it has no term for. */
enum {
  OVERLORD_LOSS_TOTAL = 0, /* what the step minimises (stage 3: the generator side's) */
  OVERLORD_LOSS_RECON,     /* stages 1 and 3: the reconstruction */
  OVERLORD_LOSS_DECAY,     /* stage 1: the weighted decay of the uncorrelated codes */
  OVERLORD_LOSS_REGRESSION, /* stages 2 and 3: the encoders' MSE against stage 1's codes, unweighted */
  OVERLORD_LOSS_ADV,       /* stage 3: BCE(D(fake), 1) */
  OVERLORD_LOSS_DIS,       /* stage 3: the discriminator's BCE + R1 */
  OVERLORD_LOSS_ADV_SWAP,  /* stage 3 with w_adv_swap > 0: BCE(D(label change), 1), unweighted */
  OVERLORD_LOSS_SWAP_LABEL, /* stage 3 with w_swap_label > 0: MSE(stage 2's E_label(label change), target row), unweighted */
  OVERLORD_LOSS_SWAP_CORR, /* stage 3 with w_swap_corr > 0: MSE(stage 2's E_corr(T(label change)), E_corr(T(x))), unweighted */
  OVERLORD_LOSS_SWAP_CLASS, /* stage 3 with w_swap_class > 0: the target label's cross-entropy over the label rows, unweighted */
  OVERLORD_N_LOSSES
};
/* One training step of `stage` (1, 2 or 3) with losses[OVERLORD_N_LOSSES] before the update.
 * `progress` in [0, 1] sets the cosine learning rates of stages 1 and 2. Stages 2 and 3 start
 * from copies of the networks before them (overlord_begin_stage). */
ut_status overlord_step(overlord_model *m, int stage, const overlord_batch *b, double progress, float *losses);
/* Stage 3's two halves, which overlord_step runs in this order: the discriminator's update
 * (filling OVERLORD_LOSS_DIS) and the encoders' and generator's (the other stage-3 columns).
 * Each changes only its own networks. */
ut_status overlord_dis_step(overlord_model *m, const overlord_batch *b, float *losses);
ut_status overlord_gen_step(overlord_model *m, const overlord_batch *b, float *losses);
/* Makes the networks a stage starts from: stage 2 copies E_c into its correlated encoder,
 * stage 3 copies stage 2's encoders and the generator. Call once, before the stage's first
 * step (a resumed stage has its own networks in the checkpoint already). */
ut_status overlord_begin_stage(overlord_model *m, int stage);
/* The update plans of a stage (stage 3: which 0 the discriminator's, 1 the generator's). */
ut_plan *overlord_step_plan(overlord_model *m, int stage, int which);

/* Stage-1 codes read from the embeddings: uncorr [n, uncorr_dim], label [n, label_dim]
 * (either may be NULL). */
ut_status overlord_embedded_codes(overlord_model *m, const int32_t *image_ids, const int32_t *labels, int64_t n,
                                  float *uncorr, float *label);
/* Codes of n images from stage 2's or 3's encoders (stage 1: only corr, from E_c reading the
 * untransformed image). masks [n, 1, S, S] for the localized form, else NULL. Outputs may be
 * NULL. */
ut_status overlord_encode(overlord_model *m, int stage, const float *images, const float *masks, int64_t n,
                          float *uncorr, float *label, float *corr);
/* Images [n, C, S, S] from codes, by the generator of `stage` (1 and 2 share one). Not clamped. */
ut_status overlord_generate(overlord_model *m, int stage, const float *uncorr, const float *label, const float *corr,
                            int64_t n, float *images);
/* The discriminator's logits of n images [n] (trained in stage 3), each judged as one of its
 * label labels[i] with dis_projection (NULL otherwise: ignored). */
ut_status overlord_discriminate(overlord_model *m, const float *images, const int32_t *labels, int64_t n, float *logits);

/* Checkpoints: every trained tensor, optimiser states, counters, the configuration
 * ("overlord.config") and the caller's metadata, written atomically. */
ut_status overlord_save(overlord_model *m, const char *path);
ut_status overlord_read_config(ut_runtime *rt, const char *path, overlord_cfg *cfg);
ut_status overlord_load(overlord_model *m, const char *path);

#endif
