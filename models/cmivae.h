/* CMI-VAE (Tang, Zhou, He & Ma, ICPR 2020; seeds/001_*): a VAE whose latent code is split in
 * two. z1 is encoded from the image by E1 (Gaussian, reparameterised), z2 from a specified
 * feature f(x) by E2, and the generator G(z1, z2) draws the image. A plain VAE can ignore z2
 * because z1 alone holds the whole image; the paper's conditional mutual information terms
 * stop that. Each step also draws a fused image G(z1 of x, z2 of an independent x~) and asks
 * that it carry x~'s feature:
 *  - a continuous feature (hue): L_f2 = ||f(G(z1, z2~)) - f(x~)||^2 with a differentiable f
 *    (cmivae_soft_hue);
 *  - a discrete feature (class): L_f1 = -log q(z2~ | z1, x^), with an auxiliary classifier q
 *    that reads an image and z1 and names the class behind z2 (z2 is a function of it); q
 *    learns on real images, and the fused image must convince it;
 * and a conditional GAN D(z2, x) tells real (z2 of x, x) from fused (z2~, x^) pairs. There is
 * no public code (MODELS.md section 5); the choices the paper leaves open are in
 * docs/cmivae.md with their measurements.
 *
 *   cmivae_cfg cfg = cmivae_preset(CMIVAE_PRESET_SMALL, CMIVAE_FEATURE_HUE, 0);
 *   cmivae_model *m = cmivae_new(rt, &cfg);
 *   cmivae_train_step(m, &batch, &losses);             // D update, then E1, E2, G (and q) update
 *   cmivae_encode(m, images, n, z1);                   // the mean of q(z1 | x)
 *   cmivae_generate(m, z1, features, n, out);          // G(z1, E2(features))
 *   cmivae_save(m, "run/checkpoint.safetensors");
 *
 * Images in training batches are in [-1, 1] (G ends in tanh); cmivae_encode and
 * cmivae_generate take and give images in [0, 1]. A feature row is (cos h, sin h) of the hue h
 * for the hue feature, and the one-hot class for the class feature (cmivae_feature_row).
 */
#ifndef UNTANGLE_MODELS_CMIVAE_H
#define UNTANGLE_MODELS_CMIVAE_H

#include "kit_config.h"
#include "kit_team.h"
#include "untangle.h"

typedef enum { CMIVAE_FEATURE_HUE = 0, CMIVAE_FEATURE_CLASS = 1 } cmivae_feature;
typedef enum { CMIVAE_PRESET_DEFAULT = 0, CMIVAE_PRESET_SMALL = 1 } cmivae_preset_kind;

typedef struct {
  int size, channels;   /* square side (a multiple of 4, at least 8) and channels (3 for hue) */
  int feature;          /* cmivae_feature */
  int n_classes;        /* classes of the class feature (2 or more); 0 for hue */
  int z1_dim, z2_dim;   /* code widths */
  int ch;               /* channels of E1's first convolution; G and q mirror it */
  int dis_ch;           /* channels of D's first convolution */
  int e2_hidden;        /* width of E2's hidden layer */
  int cmi;              /* 1: the CMI term L_f is trained; 0: the paper's ablation without it */
  float w_recon;        /* weight of the per-image sum of squared errors (pixels in [-1, 1]) */
  float w_kl;           /* weight of KL(q(z1 | x) || N(0, I)) per image */
  float w_f;            /* lambda3: L_f2 (hue) or L_f1 (class) */
  float w_gan;          /* lambda4: the generator's conditional GAN loss; 0 (the default, by the
                           measurement in docs/cmivae.md) leaves D out entirely */
  float lr, beta1, beta2;
  int batch, epochs;
  float test_ratio;     /* share of the images held out for the grid and 'untangle eval' */
  uint64_t seed;
} cmivae_cfg;

/* The default model (64x64, width 64) or a small one for a 2-core CPU (32x32, width 32, batch
 * 32). n_classes is the data's class count, needed by the class feature. */
cmivae_cfg cmivae_preset(cmivae_preset_kind kind, cmivae_feature feature, int n_classes);
const char *cmivae_preset_name(cmivae_preset_kind kind);
const char *cmivae_feature_name(int feature); /* "hue" or "class"; NULL out of range */
/* UT_OK, or UT_ERR_INVALID_ARGUMENT naming the field and what it must be. */
ut_status cmivae_cfg_check(const cmivae_cfg *cfg);
const kit_config_table *cmivae_cfg_table(void);
/* Floats per feature row: 2 for hue, n_classes for class. */
int cmivae_feature_width(const cmivae_cfg *cfg);
/* The feature row of a hue in degrees (cos, sin) or of a class (one-hot) into row. */
void cmivae_feature_row(const cmivae_cfg *cfg, float hue_deg, int class_id, float *row);

typedef struct cmivae_model cmivae_model;

cmivae_model *cmivae_new(ut_runtime *rt, const cmivae_cfg *cfg);
void cmivae_free(cmivae_model *m);
const cmivae_cfg *cmivae_config(const cmivae_model *m);
ut_store *cmivae_store(cmivae_model *m);

/* Makes the model train on `team` (kit_team.h, not owned; NULL: alone): its steps then take
 * this rank's share of cfg->batch, cfg->batch / team->size images, and reduce gradients over
 * the team. Call it before the first step. */
ut_status cmivae_set_team(cmivae_model *m, const kit_team *team);

/* One training step's inputs: cfg->batch images x in [-1, 1] (on a team, the rank's share)
 * with their feature rows, the feature rows of the independent images x~ whose z2 is fused with
 * x's z1, and (class feature) the class ids of x (q learns from them) and of x~. */
typedef struct {
  const float *images;        /* [batch, C, size, size] in [-1, 1] */
  const float *features;      /* [batch, feature width] */
  const float *fuse_features; /* [batch, feature width]: f(x~) */
  const int32_t *classes;     /* [batch]: class of x (class feature; ignored for hue) */
  const int32_t *fuse_classes;/* [batch]: class of x~ (class feature; ignored for hue) */
} cmivae_batch;

/* The terms of a step, before its updates: D's loss; the total of E1, E2, G and q; its weighted
 * reconstruction, KL, feature (L_f, weighted even when cmi is 0 so the ablation still reports
 * it, though it is then not trained) and GAN terms. */
typedef struct {
  float dis, total, recon, kl, feature, gan;
} cmivae_losses;
#define CMIVAE_LOSS_COUNT 6
extern const char *const cmivae_loss_names[CMIVAE_LOSS_COUNT];

/* A discriminator update (none when w_gan is 0), then an update of E1, E2 and G, and (class
 * feature) one of q on the real images. */
ut_status cmivae_train_step(cmivae_model *m, const cmivae_batch *b, cmivae_losses *losses);

/* The means of q(z1 | x) of n images (float [n, C, size, size] in [0, 1]) into z1 [n, z1_dim]. */
ut_status cmivae_encode(cmivae_model *m, const float *images, int64_t n, float *z1);
/* G(z1, E2(features)) for n rows: z1 [n, z1_dim], features [n, feature width]; out [n, C, size,
 * size] in [0, 1]. */
ut_status cmivae_generate(cmivae_model *m, const float *z1, const float *features, int64_t n, float *out);
/* E2(features) into z2 [n, z2_dim] (the probes' "informativeness of z2"). */
ut_status cmivae_feature_code(cmivae_model *m, const float *features, int64_t n, float *z2);

/* Checkpoints: every trained tensor, optimiser state, counters, the configuration
 * ("cmivae.config") and the caller's metadata, written atomically. */
ut_status cmivae_save(cmivae_model *m, const char *path);
/* The configuration a checkpoint was made with; UT_ERR_FORMAT when it is no CMI-VAE checkpoint. */
ut_status cmivae_read_config(ut_runtime *rt, const char *path, cmivae_cfg *cfg);
/* Loads a checkpoint of the same configuration (epochs and the loss weights w_recon, w_kl and
 * w_f may differ; the model's are kept). */
ut_status cmivae_load(cmivae_model *m, const char *path);

#endif
