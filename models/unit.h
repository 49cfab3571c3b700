/* UNIT (Liu, Breuel & Kautz, NIPS 2017) as the paper's code (branch version_02) builds it:
 * MODELS.md section 3a. Two domains A and B share a latent space: each domain has its own
 * encoder front and decoder back, while the last encoder blocks and the first decoder blocks
 * are one set of weights used by both, and the shared code gets unit-variance Gaussian noise
 * (the "reduced VAE"). A discriminator per domain shares its deeper layers with the other.
 *
 *   unit_cfg cfg = unit_preset(UNIT_PRESET_SMALL, 3);
 *   unit_model *m = unit_new(rt, &cfg);
 *   unit_train_step(m, batch_a, batch_b, &losses);      // D update, then G update
 *   unit_translate(m, images, n, UNIT_A, UNIT_B, out);  // A -> B
 *   unit_save(m, "run/checkpoint.safetensors");
 *
 * Plans are built when first needed and kept. Training batches hold values in [-1, 1] (the
 * decoders end in tanh); translate and cycle take and give images in [0, 1].
 */
#ifndef UNTANGLE_MODELS_UNIT_H
#define UNTANGLE_MODELS_UNIT_H

#include "kit_config.h"
#include "kit_team.h"
#include "untangle.h"

enum { UNIT_A = 0, UNIT_B = 1 };

typedef enum { UNIT_PRESET_DEFAULT = 0, UNIT_PRESET_SMALL = 1 } unit_preset_kind;

typedef struct {
  int size, channels;   /* images: square side (divisible by 4 and at least 16) and 1 or 3 channels */
  int ch;               /* channels of the first encoder convolution (64); the code has 4 ch */
  int res_blocks;       /* residual blocks of each domain's encoder and decoder (3) */
  int shared_blocks;    /* shared residual blocks after the encoders and before the decoders (1) */
  int dis_ch;           /* channels of the discriminators' first layer (64) */
  int dis_shared;       /* shared stride-2 discriminator layers after the two per-domain ones (4) */
  float noise_std;      /* Gaussian noise on the shared code while training (1) */
  float w_gan, w_recon, w_cycle, w_kl, w_kl_cycle; /* 10, 100, 100, 0.1, 0.1 */
  float lr, beta1, beta2, weight_decay;            /* Adam: 1e-4, 0.5, 0.999, 1e-4 */
  int batch;            /* images per domain per step (1) */
  int epochs;           /* passes over the smaller domain's training images */
  int flip;             /* 1: random horizontal flips while training */
  float test_ratio;     /* share of the images (of the pairs, where the data is paired) held out */
  char domain_a[KIT_STRING_MAX], domain_b[KIT_STRING_MAX]; /* domain names in the data set */
  uint64_t seed;
} unit_cfg;

/* The official sizes (128x128, channel width 64) or a small model for a 2-core CPU (32x32,
 * width 16, one residual block per domain, two shared discriminator layers, batch 8, 15 epochs). The
 * domains are left empty: the first two of the data set. */
unit_cfg unit_preset(unit_preset_kind kind, int channels);
const char *unit_preset_name(unit_preset_kind kind);
/* UT_OK, or UT_ERR_INVALID_ARGUMENT naming the field and what it must be. */
ut_status unit_cfg_check(const unit_cfg *cfg);
/* The field table of the configuration (JSON in checkpoints, command-line overrides). */
const kit_config_table *unit_cfg_table(void);

typedef struct unit_model unit_model;

/* A model on rt with a fresh store (parameters initialised from cfg->seed). */
unit_model *unit_new(ut_runtime *rt, const unit_cfg *cfg);
void unit_free(unit_model *m);
const unit_cfg *unit_config(const unit_model *m);
ut_store *unit_store(unit_model *m);

/* The terms of one step, before its updates: the discriminator's loss, the generator's total
 * and the generator's weighted terms (adversarial, within-domain reconstruction, cycle
 * reconstruction, KL of the codes). */
typedef struct {
  float dis, gen, gan, recon, cycle, kl;
} unit_losses;
#define UNIT_LOSS_COUNT 6
extern const char *const unit_loss_names[UNIT_LOSS_COUNT]; /* "dis", "gen", ... as in unit_losses */

/* One iteration as cocogan_train.py runs it: a discriminator update, then a generator update,
 * on batches a and b of cfg->batch images each (float [batch, C, size, size] in [-1, 1]). */
ut_status unit_train_step(unit_model *m, const float *a, const float *b, unit_losses *losses);

/* Makes the model train on `team` (kit_team.h, not owned; NULL: alone): its steps then take
 * this rank's share of cfg->batch images of each domain, cfg->batch / team->size, and reduce
 * gradients over the team. Call it before the first step. */
ut_status unit_set_team(unit_model *m, const kit_team *team);
/* The two halves of a step: the discriminator's update (*loss: its loss) and the generator's
 * (*losses: gen, gan, recon, cycle, kl as in unit_losses), each updating only its own
 * parameters with its own optimiser. */
ut_status unit_dis_step(unit_model *m, const float *a, const float *b, float *loss);
ut_status unit_gen_step(unit_model *m, const float *a, const float *b, float losses[5]);
/* The plan of the discriminator (0) or generator (1) update (built on first use). */
ut_plan *unit_step_plan(unit_model *m, int which);

/* n images (float [n, C, size, size] in [0, 1]) of domain `from` drawn in domain `to` (UNIT_A
 * or UNIT_B; from == to reconstructs them), without noise; out has the same shape, in [0, 1]. */
ut_status unit_translate(unit_model *m, const float *images, int64_t n, int from, int to, float *out);
/* from -> the other domain -> from again (the cycle reconstruction), as unit_translate. */
ut_status unit_cycle(unit_model *m, const float *images, int64_t n, int from, float *out);

/* Checkpoints: every trained tensor, the optimizer state, counters, the configuration
 * ("unit.config") and the caller's metadata, written atomically. */
ut_status unit_save(unit_model *m, const char *path);
/* The configuration a checkpoint was made with. UT_ERR_FORMAT when it is not a UNIT checkpoint. */
ut_status unit_read_config(ut_runtime *rt, const char *path, unit_cfg *cfg);
ut_status unit_load(unit_model *m, const char *path);

#endif
