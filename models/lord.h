/* LORD (Gabbay & Hoshen, ICLR 2020) as lord-pytorch builds it (MODELS.md section 1).
 *
 * Stage 1 optimises a class code per class and a content code per image directly (embeddings),
 * with Gaussian noise and an activation decay on the content codes only, through a generator
 * whose four AdaIN layers take their scale and bias from the class code. Stage 2 trains two
 * encoders to predict both codes from an image (so unseen images and classes work one-shot)
 * and fine-tunes the generator.
 *
 *   lord_cfg cfg = lord_preset(LORD_PRESET_SMALL, channels, n_images, n_classes);
 *   lord_model *m = lord_new(rt, &cfg);
 *   lord_stage1_step(m, images, image_ids, class_ids, &loss);   // one Adam step
 *   lord_stage2_step(m, images, image_ids, class_ids, &loss);
 *   lord_encode(m, images, n, content, class_codes);            // stage-2 encoders
 *   lord_generate(m, content, class_codes, n, out_images);
 *   lord_save(m, "run/checkpoint.safetensors");
 *
 * Plans are built when first needed and kept. Batches are float [B, C, S, S] in [0, 1].
 */
#ifndef UNTANGLE_MODELS_LORD_H
#define UNTANGLE_MODELS_LORD_H

#include "kit_team.h"
#include "untangle.h"

typedef enum {
  LORD_RECON_L1 = 0,     /* pixel L1 only (no VGG weights given) */
  LORD_RECON_VGG,        /* pixel L1 + VGG16 taps, weights from a file */
  LORD_RECON_VGG_RANDOM, /* the same computation with untrained VGG weights: timing parity */
} lord_recon;

typedef enum { LORD_PRESET_DEFAULT = 0, LORD_PRESET_SMALL = 1 } lord_preset_kind;

typedef struct {
  int size, channels;          /* images: square side (divisible by 16) and 1 or 3 channels */
  int64_t n_images, n_classes; /* rows of the content and class embeddings */
  int content_dim, class_dim;  /* 128 and 256 in the paper */
  int gen_channels;            /* channels of the AdaIN blocks (256) */
  int head_channels;           /* channels of the 5x5 convolution before the output (64) */
  int enc_channels;            /* first encoder convolution (64); the strided ones go x2 to 4x */
  int enc_hidden;              /* the encoders' fully connected width (256) */
  float content_std;           /* stage-1 noise on content codes (1) */
  float content_decay;         /* weight of mean_b sum_d content^2 (1e-4) */
  int batch;                   /* 128 */
  int epochs1, epochs2;        /* 200 and 200 */
  float lr_gen, lr_emb, lr_enc, lr_min; /* 3e-4, 3e-3, 1e-4, cosine down to 1e-5 */
  lord_recon recon;
  uint64_t seed;
  /* Not in LORD: weight of a stage-2 term pulling each class's mean and second moment of the
   * content encoder's codes within a batch to the batch's (0: off, the paper's loss). */
  float content_invariance;
} lord_cfg;

/* The official sizes at 64x64 (DEFAULT) or a 32x32 model narrow enough for a 2-core CPU
 * (SMALL); the data's channels and counts are filled in. */
lord_cfg lord_preset(lord_preset_kind kind, int channels, int64_t n_images, int64_t n_classes);
const char *lord_preset_name(lord_preset_kind kind);
const char *lord_recon_name(lord_recon r);
/* UT_OK, or UT_ERR_INVALID_ARGUMENT naming the field and what it must be. */
ut_status lord_cfg_check(const lord_cfg *cfg);
/* The configuration as JSON (malloc'd) and back; from_json names the field it rejects. */
char *lord_cfg_to_json(const lord_cfg *cfg);
ut_status lord_cfg_from_json(const char *json, lord_cfg *cfg);
/* 1 when a and b differ, with the first differing field of a and both values written to why. */
int lord_cfg_differs(const lord_cfg *a, const lord_cfg *b, char *why, size_t size);

typedef struct lord_model lord_model;

/* A model on rt with a fresh store (parameters initialised from cfg->seed). With recon VGG,
 * `vgg_weights` names a safetensors file of torchvision's vgg16 `features.*` tensors. */
lord_model *lord_new(ut_runtime *rt, const lord_cfg *cfg, const char *vgg_weights);
void lord_free(lord_model *m);
const lord_cfg *lord_config(const lord_model *m);
ut_store *lord_store(lord_model *m);

/* Makes the model train on `team` (kit_team.h, not owned; NULL: alone): its steps then take
 * this rank's share of cfg->batch, cfg->batch / team->size images, and reduce gradients over
 * the team. Call it before the first step. */
ut_status lord_set_team(lord_model *m, const kit_team *team);

/* One training step of each stage on a batch of cfg->batch images (the rank's share on a team) (float [B, C, S, S]), their
 * indices into the content embedding and their class ids. `progress` in [0, 1] sets the
 * cosine learning rates. *loss gets the loss before the step's update. */
ut_status lord_stage1_step(lord_model *m, const float *images, const int32_t *image_ids, const int32_t *class_ids,
                           double progress, float *loss);
ut_status lord_stage2_step(lord_model *m, const float *images, const int32_t *image_ids, const int32_t *class_ids,
                           double progress, float *loss);
/* The plan of a stage's step (built on first use), for its statistics and profile. */
ut_plan *lord_step_plan(lord_model *m, int stage);

/* Stage-1 codes read from the embeddings: content [n, content_dim], class [n, class_dim]. */
ut_status lord_embedded_codes(lord_model *m, const int32_t *image_ids, const int32_t *class_ids, int64_t n,
                              float *content, float *class_codes);
/* Stage-2 codes of n images (any n; run in batches). Either output may be NULL. */
ut_status lord_encode(lord_model *m, const float *images, int64_t n, float *content, float *class_codes);
/* Images [n, C, S, S] generated from codes. */
ut_status lord_generate(lord_model *m, const float *content, const float *class_codes, int64_t n, float *images);

/* Checkpoints: every trained tensor, the optimizer state, counters, the configuration
 * ("lord.config") and the caller's metadata, written atomically. */
ut_status lord_save(lord_model *m, const char *path);
/* The configuration a checkpoint was made with. UT_ERR_FORMAT when it is not a LORD checkpoint. */
ut_status lord_read_config(ut_runtime *rt, const char *path, lord_cfg *cfg);
ut_status lord_load(lord_model *m, const char *path);

#endif
