/* UNIT's configuration: the two presets, checks, and the field table that writes it into
 * checkpoints and reads it back (unit.h). */
#include <stddef.h>

#include "unit.h"

unit_cfg unit_preset(unit_preset_kind kind, int channels) {
  /* MODELS.md 3a: the exps/unit configurations and cocogan_trainer.py. */
  unit_cfg c = { .size = 128, .channels = channels, .ch = 64, .res_blocks = 3, .shared_blocks = 1,
                 .dis_ch = 64, .dis_shared = 4, .noise_std = 1.0f, .w_gan = 10.0f, .w_recon = 100.0f,
                 .w_cycle = 100.0f, .w_kl = 0.1f, .w_kl_cycle = 0.1f, .lr = 1e-4f, .beta1 = 0.5f,
                 .beta2 = 0.999f, .weight_decay = 1e-4f, .batch = 1, .epochs = 100, .flip = 1,
                 .test_ratio = 0.1f, .seed = 1 };
  if (kind == UNIT_PRESET_SMALL) {
    /* 32x32 and a quarter of the width, one residual block per domain (the shared ones stay),
     * and a discriminator whose two shared layers end at 2x2 as the official six do at 128. A
     * batch of 8 per domain keeps two CPU cores busy. */
    c.size = 32;
    c.ch = 16;
    c.res_blocks = 1;
    c.dis_ch = 16;
    c.dis_shared = 2;
    c.batch = 8;
    c.epochs = 15;
    c.lr = 2e-4f;
  }
  return c;
}

const char *unit_preset_name(unit_preset_kind kind) { return kind == UNIT_PRESET_SMALL ? "small" : "default"; }

const char *const unit_loss_names[UNIT_LOSS_COUNT] = { "dis", "gen", "gan", "recon", "cycle", "kl" };

ut_status unit_cfg_check(const unit_cfg *c) {
#define REQUIRE(cond, ...) \
  if (!(cond)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "UNIT configuration: " __VA_ARGS__)
  REQUIRE(c->size >= 16 && c->size % 4 == 0 && c->size <= 1024, "size %d must be a multiple of 4 in [16, 1024]", c->size);
  REQUIRE(c->channels == 1 || c->channels == 3, "channels %d must be 1 or 3", c->channels);
  REQUIRE(c->ch >= 1 && c->ch <= 4096, "ch %d must be in [1, 4096]", c->ch);
  REQUIRE(c->dis_ch >= 1 && c->dis_ch <= 4096, "dis_ch %d must be in [1, 4096]", c->dis_ch);
  REQUIRE(c->res_blocks >= 0 && c->res_blocks <= 64, "res_blocks %d must be in [0, 64]", c->res_blocks);
  REQUIRE(c->shared_blocks >= 0 && c->shared_blocks <= 64, "shared_blocks %d must be in [0, 64]", c->shared_blocks);
  /* The discriminator halves the image 2 + dis_shared times; past 1x1 a stride-2 layer with
   * padding 1 keeps 1x1, which trains but wastes the layer. */
  REQUIRE(c->dis_shared >= 0 && (c->size >> (2 + c->dis_shared)) >= 1,
          "dis_shared %d: %d + 2 stride-2 layers need images of at least %d pixels, not %d", c->dis_shared,
          c->dis_shared, 1 << (2 + c->dis_shared), c->size);
  REQUIRE(c->noise_std >= 0, "noise_std must not be negative");
  REQUIRE(c->w_gan >= 0 && c->w_recon >= 0 && c->w_cycle >= 0 && c->w_kl >= 0 && c->w_kl_cycle >= 0,
          "loss weights must not be negative");
  REQUIRE(c->lr > 0 && c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->weight_decay >= 0,
          "Adam needs lr > 0, betas in [0, 1) and weight_decay >= 0");
  REQUIRE(c->batch >= 1 && c->batch <= 65536, "batch %d must be in [1, 65536]", c->batch);
  REQUIRE(c->epochs >= 0, "epochs must not be negative");
  REQUIRE(c->flip == 0 || c->flip == 1, "flip must be 0 or 1");
  REQUIRE(c->test_ratio >= 0 && c->test_ratio < 1, "test_ratio %g must be in [0, 1)", (double)c->test_ratio);
#undef REQUIRE
  return UT_OK;
}

#define FIELD(name, kind) { #name, kind, offsetof(unit_cfg, name), NULL, 0 }
static const kit_field fields[] = {
  FIELD(size, KIT_FIELD_INT),          FIELD(channels, KIT_FIELD_INT),     FIELD(ch, KIT_FIELD_INT),
  FIELD(res_blocks, KIT_FIELD_INT),    FIELD(shared_blocks, KIT_FIELD_INT), FIELD(dis_ch, KIT_FIELD_INT),
  FIELD(dis_shared, KIT_FIELD_INT),    FIELD(noise_std, KIT_FIELD_F32),    FIELD(w_gan, KIT_FIELD_F32),
  FIELD(w_recon, KIT_FIELD_F32),       FIELD(w_cycle, KIT_FIELD_F32),      FIELD(w_kl, KIT_FIELD_F32),
  FIELD(w_kl_cycle, KIT_FIELD_F32),    FIELD(lr, KIT_FIELD_F32),           FIELD(beta1, KIT_FIELD_F32),
  FIELD(beta2, KIT_FIELD_F32),         FIELD(weight_decay, KIT_FIELD_F32), FIELD(batch, KIT_FIELD_INT),
  FIELD(epochs, KIT_FIELD_INT),        FIELD(flip, KIT_FIELD_INT),         FIELD(test_ratio, KIT_FIELD_F32),
  FIELD(domain_a, KIT_FIELD_STRING),   FIELD(domain_b, KIT_FIELD_STRING),  FIELD(seed, KIT_FIELD_SEED),
};
#undef FIELD

static const kit_config_table table = { "UNIT configuration", fields, (int)(sizeof fields / sizeof fields[0]) };

const kit_config_table *unit_cfg_table(void) { return &table; }
