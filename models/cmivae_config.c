/* CMI-VAE's configuration: the presets, checks, feature rows and the field table that writes it
 * into checkpoints and reads it back (cmivae.h). The defaults come from the measurements in
 * docs/cmivae.md. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "cmivae.h"

static const char *const feature_names[] = { "hue", "class", NULL };

cmivae_cfg cmivae_preset(cmivae_preset_kind kind, cmivae_feature feature, int n_classes) {
  cmivae_cfg c = { .size = 64, .channels = 3, .feature = feature, .n_classes = feature == CMIVAE_FEATURE_CLASS ? n_classes : 0,
                   .z1_dim = 32, .z2_dim = 8, .ch = 64, .dis_ch = 64, .e2_hidden = 64, .cmi = 1, .w_recon = 1.0f,
                   .w_kl = 1.0f, .w_f = 100.0f, .w_gan = 0.0f, .lr = 2e-4f, .beta1 = 0.5f, .beta2 = 0.999f,
                   .batch = 64, .epochs = 50, .test_ratio = 0.1f, .seed = 1 };
  if (kind == CMIVAE_PRESET_SMALL) {
    c.size = 32;
    c.z1_dim = 16;
    c.ch = 32;
    c.dis_ch = 32;
    c.batch = 32;
    c.epochs = 32; /* 8, 16 and 32 measured on 9000 images: 32 best on every figure (docs/cmivae.md) */
  }
  return c;
}

const char *cmivae_preset_name(cmivae_preset_kind kind) { return kind == CMIVAE_PRESET_SMALL ? "small" : "default"; }

const char *cmivae_feature_name(int feature) {
  return feature >= 0 && feature <= CMIVAE_FEATURE_CLASS ? feature_names[feature] : NULL;
}

const char *const cmivae_loss_names[CMIVAE_LOSS_COUNT] = { "dis", "total", "recon", "kl", "feature", "gan" };

int cmivae_feature_width(const cmivae_cfg *c) { return c->feature == CMIVAE_FEATURE_HUE ? 2 : c->n_classes; }

void cmivae_feature_row(const cmivae_cfg *c, float hue_deg, int class_id, float *row) {
  if (c->feature == CMIVAE_FEATURE_HUE) {
    double h = (double)hue_deg * 3.14159265358979323846 / 180.0;
    row[0] = (float)cos(h);
    row[1] = (float)sin(h);
    return;
  }
  for (int k = 0; k < c->n_classes; k++) row[k] = k == class_id ? 1.0f : 0.0f;
}

ut_status cmivae_cfg_check(const cmivae_cfg *c) {
#define REQUIRE(cond, ...) \
  if (!(cond)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "CMI-VAE configuration: " __VA_ARGS__)
  REQUIRE(c->size >= 8 && c->size % 4 == 0 && c->size <= 1024, "size %d must be a multiple of 4 in [8, 1024]", c->size);
  REQUIRE(c->feature == CMIVAE_FEATURE_HUE || c->feature == CMIVAE_FEATURE_CLASS, "feature must be hue or class");
  REQUIRE(c->feature != CMIVAE_FEATURE_HUE || c->channels == 3, "the hue feature needs colour images (channels 3), not %d channel%s",
          c->channels, c->channels == 1 ? "" : "s");
  REQUIRE(c->channels == 1 || c->channels == 3, "channels %d must be 1 or 3", c->channels);
  REQUIRE(c->feature != CMIVAE_FEATURE_CLASS || (c->n_classes >= 2 && c->n_classes <= 4096),
          "the class feature needs 2 to 4096 classes, not %d", c->n_classes);
  REQUIRE(c->feature != CMIVAE_FEATURE_HUE || c->n_classes == 0, "n_classes must be 0 for the hue feature");
  REQUIRE(c->z1_dim >= 1 && c->z1_dim <= 4096 && c->z2_dim >= 1 && c->z2_dim <= 4096, "z1_dim and z2_dim must be in [1, 4096]");
  REQUIRE(c->ch >= 1 && c->ch <= 4096 && c->dis_ch >= 1 && c->dis_ch <= 4096 && c->e2_hidden >= 1 && c->e2_hidden <= 4096,
          "ch, dis_ch and e2_hidden must be in [1, 4096]");
  REQUIRE(c->cmi == 0 || c->cmi == 1, "cmi must be 0 or 1");
  REQUIRE(c->w_recon >= 0 && c->w_kl >= 0 && c->w_f >= 0 && c->w_gan >= 0, "loss weights must not be negative");
  REQUIRE(c->lr > 0 && c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1, "Adam needs lr > 0 and betas in [0, 1)");
  REQUIRE(c->batch >= 2 && c->batch <= 65536, "batch %d must be in [2, 65536]", c->batch);
  REQUIRE(c->epochs >= 0, "epochs must not be negative");
  REQUIRE(c->test_ratio >= 0 && c->test_ratio < 1, "test_ratio %g must be in [0, 1)", (double)c->test_ratio);
#undef REQUIRE
  return UT_OK;
}

#define FIELD(name, kind) { #name, kind, offsetof(cmivae_cfg, name), NULL, 0 }
static const kit_field fields[] = {
  FIELD(size, KIT_FIELD_INT),       FIELD(channels, KIT_FIELD_INT),
  { "feature", KIT_FIELD_ENUM, offsetof(cmivae_cfg, feature), feature_names, 0 },
  FIELD(n_classes, KIT_FIELD_INT),  FIELD(z1_dim, KIT_FIELD_INT),    FIELD(z2_dim, KIT_FIELD_INT),
  FIELD(ch, KIT_FIELD_INT),         FIELD(dis_ch, KIT_FIELD_INT),    FIELD(e2_hidden, KIT_FIELD_INT),
  FIELD(cmi, KIT_FIELD_INT),        FIELD(w_recon, KIT_FIELD_F32),   FIELD(w_kl, KIT_FIELD_F32),
  FIELD(w_f, KIT_FIELD_F32),        FIELD(w_gan, KIT_FIELD_F32),     FIELD(lr, KIT_FIELD_F32),
  FIELD(beta1, KIT_FIELD_F32),      FIELD(beta2, KIT_FIELD_F32),     FIELD(batch, KIT_FIELD_INT),
  FIELD(epochs, KIT_FIELD_INT),     FIELD(test_ratio, KIT_FIELD_F32), FIELD(seed, KIT_FIELD_SEED),
};
#undef FIELD

static const kit_config_table table = { "CMI-VAE configuration", fields, (int)(sizeof fields / sizeof fields[0]) };

const kit_config_table *cmivae_cfg_table(void) { return &table; }
