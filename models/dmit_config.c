/* DMIT's configuration: the two presets, checks, domain names, and the field table that writes
 * it into checkpoints and reads it back (dmit.h). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dmit.h"

dmit_cfg dmit_preset(dmit_preset_kind kind, int channels, int n_domains) {
  /* MODELS.md 4a-4c: the options files and scripts/train_season_transfer.sh. */
  dmit_cfg c = { .size = 256, .channels = channels, .n_domains = n_domains, .nef = 64, .ndf = 64, .n_style = 8,
                 .down_blocks = 2, .content_res = 4, .style_blocks = 4, .dec_res = 6, .content_dis_blocks = 5,
                 .image_dis_blocks = 3, .dropout = 0.5f, .w_rec = 10.0f, .w_kl = 0.01f, .w_cyc = 10.0f,
                 .w_style = 1.0f, .w_div = 0.05f, .w_content = 1.0f, .w_adv_content = 1.0f, .lr = 1e-4f, .beta1 = 0.5f, .beta2 = 0.999f,
                 .batch = 1, .epochs = 200, .decay_epochs = 100, .flip = 1, .test_ratio = 0.1f, .seed = 1 };
  if (kind == DMIT_PRESET_SMALL) {
    /* 32x32 at a quarter of the width: the content is 64 channels at 8x8, the style encoder
     * ends at 2x2, the content discriminator's head and one down block end at 2x2 (the
     * official five end at 2x2 from 64x64), the image discriminators keep three blocks. Half
     * the residual blocks, and a batch of 4 per domain to keep two cores busy. */
    c.size = 32;
    c.nef = 16;
    c.ndf = 16;
    c.content_res = 2;
    c.dec_res = 3;
    c.content_dis_blocks = 2;
    c.batch = 4;
    c.epochs = 12;
    c.decay_epochs = 4;
    c.lr = 2e-4f;
  }
  return c;
}

const char *dmit_preset_name(dmit_preset_kind kind) { return kind == DMIT_PRESET_SMALL ? "small" : "default"; }

/* losses.tsv's columns (dmit.h); the generator's total is left out, as it is adv + rec + cyc +
 * kl (+ invariance + confusion). */
const char *const dmit_loss_names[DMIT_LOSS_COUNT] = { "dis", "dis_content", "adv", "rec", "cyc", "kl", "latent",
                                                       "content", "invariance", "confusion", "domain_cls",
                                                       "domain_cls_acc" };

const char *dmit_domain_name(const dmit_cfg *c, int d, char *buf) {
  buf[0] = 0;
  const char *p = c->domains;
  for (int i = 0; i < d && p; i++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  if (!p || !*p || d < 0) return buf;
  size_t len = strcspn(p, ",");
  snprintf(buf, KIT_STRING_MAX, "%.*s", (int)len, p);
  return buf;
}

int dmit_find_domain(const dmit_cfg *c, const char *name) {
  char buf[KIT_STRING_MAX];
  for (int d = 0; d < c->n_domains; d++)
    if (!strcmp(dmit_domain_name(c, d, buf), name)) return d;
  return -1;
}

ut_status dmit_cfg_check(const dmit_cfg *c) {
#define REQUIRE(cond, ...) \
  if (!(cond)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "DMIT configuration: " __VA_ARGS__)
  REQUIRE(c->size >= 8 && c->size <= 1024, "size %d must be in [8, 1024]", c->size);
  REQUIRE(c->channels == 1 || c->channels == 3, "channels %d must be 1 or 3", c->channels);
  REQUIRE(c->n_domains >= 2 && c->n_domains <= DMIT_MAX_DOMAINS, "n_domains %d must be in [2, %d]", c->n_domains,
          DMIT_MAX_DOMAINS);
  REQUIRE(c->nef >= 2 && c->nef <= 1024 && c->ndf >= 2 && c->ndf <= 1024, "nef and ndf must be in [2, 1024]");
  REQUIRE(c->n_style >= 1 && c->n_style <= 1024, "n_style %d must be in [1, 1024]", c->n_style);
  REQUIRE(c->down_blocks >= 0 && c->down_blocks <= 6, "down_blocks %d must be in [0, 6]", c->down_blocks);
  REQUIRE(c->size % (1 << c->down_blocks) == 0, "size %d must divide by 2^down_blocks = %d", c->size,
          1 << c->down_blocks);
  REQUIRE(c->content_res >= 0 && c->content_res <= 64 && c->dec_res >= 0 && c->dec_res <= 64,
          "content_res and dec_res must be in [0, 64]");
  /* Each network halves its input once per block; past 1x1 a pool has nothing to average. */
  REQUIRE(c->style_blocks >= 1 && (c->size >> c->style_blocks) >= 1,
          "style_blocks %d: %d halvings need images of at least %d pixels, not %d", c->style_blocks, c->style_blocks,
          1 << c->style_blocks, c->size);
  int content_side = c->size >> c->down_blocks;
  REQUIRE(c->content_dis_blocks >= 1 && (content_side >> c->content_dis_blocks) >= 1,
          "content_dis_blocks %d: %d halvings of the %dx%d content need at least %d pixels", c->content_dis_blocks,
          c->content_dis_blocks, content_side, content_side, 1 << c->content_dis_blocks);
  REQUIRE(c->image_dis_blocks >= 1 && ((c->size / 2) >> c->image_dis_blocks) >= 1,
          "image_dis_blocks %d: the half-size scale (%d pixels) needs at least %d", c->image_dis_blocks, c->size / 2,
          1 << c->image_dis_blocks);
  REQUIRE(c->dropout >= 0 && c->dropout < 1, "dropout %g must be in [0, 1)", (double)c->dropout);
  REQUIRE(c->w_rec >= 0 && c->w_kl >= 0 && c->w_cyc >= 0 && c->w_style >= 0 && c->w_div >= 0 && c->w_content >= 0 &&
              c->w_adv_content >= 0 && c->w_content_invariance >= 0 && c->w_domain_confusion >= 0,
          "loss weights must not be negative");
  REQUIRE(c->lr > 0 && c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1,
          "Adam needs lr > 0 and betas in [0, 1)");
  REQUIRE(c->batch >= 1 && c->batch <= 65536, "batch %d must be in [1, 65536]", c->batch);
  REQUIRE(c->dis_content_steps >= 0 && c->dis_content_steps <= 100, "dis_content_steps %d must be in [0, 100]",
          c->dis_content_steps);
  REQUIRE(c->epochs >= 0 && c->decay_epochs >= 0 && c->decay_epochs <= c->epochs,
          "decay_epochs %d must be in [0, epochs = %d]", c->decay_epochs, c->epochs);
  REQUIRE(c->flip == 0 || c->flip == 1, "flip must be 0 or 1");
  REQUIRE(c->content_norm == 0 || c->content_norm == 1, "content_norm must be 0 or 1");
  REQUIRE(c->test_ratio >= 0 && c->test_ratio < 1, "test_ratio %g must be in [0, 1)", (double)c->test_ratio);
  if (c->domains[0]) {
    int commas = 0;
    for (const char *p = c->domains; *p; p++) commas += *p == ',';
    REQUIRE(commas + 1 == c->n_domains, "domains '%s' names %d domains, not n_domains = %d", c->domains, commas + 1,
            c->n_domains);
    char a[KIT_STRING_MAX], b[KIT_STRING_MAX];
    for (int i = 0; i < c->n_domains; i++) {
      REQUIRE(dmit_domain_name(c, i, a)[0], "domains '%s' has an empty name", c->domains);
      for (int j = 0; j < i; j++) REQUIRE(strcmp(a, dmit_domain_name(c, j, b)), "domains '%s' names '%s' twice", c->domains, a);
    }
  }
#undef REQUIRE
  return UT_OK;
}

#define FIELD(name, kind) { #name, kind, offsetof(dmit_cfg, name), NULL, 0 }
static const kit_field fields[] = {
  FIELD(size, KIT_FIELD_INT),           FIELD(channels, KIT_FIELD_INT),      FIELD(n_domains, KIT_FIELD_INT),
  FIELD(nef, KIT_FIELD_INT),            FIELD(ndf, KIT_FIELD_INT),           FIELD(n_style, KIT_FIELD_INT),
  FIELD(down_blocks, KIT_FIELD_INT),    FIELD(content_res, KIT_FIELD_INT),   FIELD(style_blocks, KIT_FIELD_INT),
  FIELD(dec_res, KIT_FIELD_INT),        FIELD(content_dis_blocks, KIT_FIELD_INT), FIELD(image_dis_blocks, KIT_FIELD_INT),
  FIELD(dropout, KIT_FIELD_F32),        FIELD(w_rec, KIT_FIELD_F32),         FIELD(w_kl, KIT_FIELD_F32),
  FIELD(w_cyc, KIT_FIELD_F32),          FIELD(w_style, KIT_FIELD_F32),       FIELD(w_div, KIT_FIELD_F32),
  FIELD(w_content, KIT_FIELD_F32),      FIELD(lr, KIT_FIELD_F32),            FIELD(beta1, KIT_FIELD_F32),
  FIELD(beta2, KIT_FIELD_F32),          FIELD(batch, KIT_FIELD_INT),         FIELD(epochs, KIT_FIELD_INT),
  FIELD(decay_epochs, KIT_FIELD_INT),   FIELD(flip, KIT_FIELD_INT),          FIELD(test_ratio, KIT_FIELD_F32),
  FIELD(domains, KIT_FIELD_STRING),     FIELD(seed, KIT_FIELD_SEED),
  /* Added after the first runs: their checkpoints lack them and keep the preset's 1, 0, 0, 0 and 0. */
  { "w_adv_content", KIT_FIELD_F32, offsetof(dmit_cfg, w_adv_content), NULL, 1 },
  { "dis_content_steps", KIT_FIELD_INT, offsetof(dmit_cfg, dis_content_steps), NULL, 1 },
  { "w_content_invariance", KIT_FIELD_F32, offsetof(dmit_cfg, w_content_invariance), NULL, 1 },
  { "content_norm", KIT_FIELD_INT, offsetof(dmit_cfg, content_norm), NULL, 1 },
  { "w_domain_confusion", KIT_FIELD_F32, offsetof(dmit_cfg, w_domain_confusion), NULL, 1 },
};
#undef FIELD

static const kit_config_table table = { "DMIT configuration", fields, (int)(sizeof fields / sizeof fields[0]) };

const kit_config_table *dmit_cfg_table(void) { return &table; }
