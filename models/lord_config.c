/* LORD's configuration: the two presets, validation, and JSON for checkpoints (lord.h). */
#include <stddef.h>

#include "kit_config.h"
#include "lord.h"

lord_cfg lord_preset(lord_preset_kind kind, int channels, int64_t n_images, int64_t n_classes) {
  /* MODELS.md 1a and 1c: lord-pytorch's config.py at 64x64. */
  lord_cfg c = { .size = 64, .channels = channels, .n_images = n_images, .n_classes = n_classes,
                 .content_dim = 128, .class_dim = 256, .gen_channels = 256, .head_channels = 64,
                 .enc_channels = 64, .enc_hidden = 256, .content_std = 1.0f, .content_decay = 1e-4f,
                 .batch = 128, .epochs1 = 200, .epochs2 = 200, .lr_gen = 3e-4f, .lr_emb = 3e-3f,
                 .lr_enc = 1e-4f, .lr_min = 1e-5f, .recon = LORD_RECON_L1, .seed = 1 };
  if (kind == LORD_PRESET_SMALL) {
    /* 32x32 and an eighth of the width: one step of a batch of 32 costs about 1/50 of the
     * official model's FLOPs per image, so a 2-core CPU trains a useful model in minutes. */
    c.size = 32;
    c.content_dim = 32;
    c.class_dim = 64;
    c.gen_channels = 32;
    c.head_channels = 16;
    c.enc_channels = 16;
    c.enc_hidden = 128;
    c.batch = 32;
    c.epochs1 = 60;
    c.epochs2 = 30;
    c.lr_gen = 1e-3f;
    c.lr_emb = 1e-2f;
    c.lr_enc = 3e-4f;
  }
  return c;
}

const char *lord_preset_name(lord_preset_kind kind) { return kind == LORD_PRESET_SMALL ? "small" : "default"; }

static const char *const recon_names[] = { "l1", "vgg", "vgg-random", NULL };

const char *lord_recon_name(lord_recon r) {
  return (unsigned)r < sizeof recon_names / sizeof recon_names[0] - 1 ? recon_names[r] : "?";
}

ut_status lord_cfg_check(const lord_cfg *c) {
#define REQUIRE(cond, ...) \
  if (!(cond)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "LORD configuration: " __VA_ARGS__)
  REQUIRE(c->size >= 16 && c->size % 16 == 0 && c->size <= 1024, "size %d must be a multiple of 16 in [16, 1024]",
          c->size);
  REQUIRE(c->channels == 1 || c->channels == 3, "channels %d must be 1 or 3", c->channels);
  REQUIRE(c->n_images >= 1 && c->n_images <= INT32_MAX, "n_images %lld must be in [1, 2^31)", (long long)c->n_images);
  REQUIRE(c->n_classes >= 1 && c->n_classes <= INT32_MAX, "n_classes %lld must be in [1, 2^31)",
          (long long)c->n_classes);
  REQUIRE(c->content_dim >= 1 && c->class_dim >= 1, "content_dim and class_dim must be positive");
  REQUIRE(c->gen_channels >= 8 && c->gen_channels % 8 == 0, "gen_channels %d must be a positive multiple of 8",
          c->gen_channels);
  REQUIRE(c->head_channels >= 1 && c->enc_channels >= 1 && c->enc_hidden >= 1, "layer widths must be positive");
  REQUIRE(c->content_std >= 0 && c->content_decay >= 0, "content_std and content_decay must not be negative");
  REQUIRE(c->batch >= 1 && c->batch <= 65536, "batch %d must be in [1, 65536]", c->batch);
  REQUIRE(c->epochs1 >= 0 && c->epochs2 >= 0, "epochs must not be negative");
  REQUIRE(c->lr_gen > 0 && c->lr_emb > 0 && c->lr_enc > 0 && c->lr_min >= 0, "learning rates must be positive");
  REQUIRE(c->content_invariance >= 0 && c->content_invariance <= 1e6f,
          "content_invariance %g must be in [0, 1e6] (0: off)", (double)c->content_invariance);
  REQUIRE((unsigned)c->recon <= LORD_RECON_VGG_RANDOM, "recon %d is not l1, vgg or vgg-random", (int)c->recon);
  REQUIRE(c->recon == LORD_RECON_L1 || c->size >= 32, "the VGG loss needs images of at least 32x32");
#undef REQUIRE
  return UT_OK;
}

/* One row per field of lord_cfg; the JSON in checkpoints follows it (kit_config.h). */
_Static_assert(sizeof(lord_recon) == sizeof(int), "recon travels as a KIT_FIELD_ENUM, an int");
static const kit_field lord_fields[] = {
  { "size", KIT_FIELD_INT, offsetof(lord_cfg, size), NULL, 0 },
  { "channels", KIT_FIELD_INT, offsetof(lord_cfg, channels), NULL, 0 },
  { "n_images", KIT_FIELD_I64, offsetof(lord_cfg, n_images), NULL, 0 },
  { "n_classes", KIT_FIELD_I64, offsetof(lord_cfg, n_classes), NULL, 0 },
  { "content_dim", KIT_FIELD_INT, offsetof(lord_cfg, content_dim), NULL, 0 },
  { "class_dim", KIT_FIELD_INT, offsetof(lord_cfg, class_dim), NULL, 0 },
  { "gen_channels", KIT_FIELD_INT, offsetof(lord_cfg, gen_channels), NULL, 0 },
  { "head_channels", KIT_FIELD_INT, offsetof(lord_cfg, head_channels), NULL, 0 },
  { "enc_channels", KIT_FIELD_INT, offsetof(lord_cfg, enc_channels), NULL, 0 },
  { "enc_hidden", KIT_FIELD_INT, offsetof(lord_cfg, enc_hidden), NULL, 0 },
  { "content_std", KIT_FIELD_F32, offsetof(lord_cfg, content_std), NULL, 0 },
  { "content_decay", KIT_FIELD_F32, offsetof(lord_cfg, content_decay), NULL, 0 },
  { "batch", KIT_FIELD_INT, offsetof(lord_cfg, batch), NULL, 0 },
  { "epochs1", KIT_FIELD_INT, offsetof(lord_cfg, epochs1), NULL, 0 },
  { "epochs2", KIT_FIELD_INT, offsetof(lord_cfg, epochs2), NULL, 0 },
  { "lr_gen", KIT_FIELD_F32, offsetof(lord_cfg, lr_gen), NULL, 0 },
  { "lr_emb", KIT_FIELD_F32, offsetof(lord_cfg, lr_emb), NULL, 0 },
  { "lr_enc", KIT_FIELD_F32, offsetof(lord_cfg, lr_enc), NULL, 0 },
  { "lr_min", KIT_FIELD_F32, offsetof(lord_cfg, lr_min), NULL, 0 },
  { "recon", KIT_FIELD_ENUM, offsetof(lord_cfg, recon), recon_names, 0 },
  { "seed", KIT_FIELD_SEED, offsetof(lord_cfg, seed), NULL, 0 },
  /* Added later, optional: checkpoints made before it read with the term off. Keep it last:
   * lord_cfg_to_json leaves it out when it is off. */
  { "content_invariance", KIT_FIELD_F32, offsetof(lord_cfg, content_invariance), NULL, 1 },
};
static const kit_config_table lord_table = { "LORD configuration", lord_fields,
                                             (int)(sizeof lord_fields / sizeof lord_fields[0]) };
/* The fields before content_invariance: with the term off a checkpoint's JSON is the same as
 * before the field existed, so such runs are unchanged byte for byte. */
static const kit_config_table lord_table_without_invariance = { "LORD configuration", lord_fields,
                                                                (int)(sizeof lord_fields / sizeof lord_fields[0]) - 1 };

char *lord_cfg_to_json(const lord_cfg *c) {
  return kit_config_to_json(c->content_invariance != 0 ? &lord_table : &lord_table_without_invariance, c);
}

ut_status lord_cfg_from_json(const char *text, lord_cfg *out) {
  lord_cfg c = { 0 }; /* every field is required: nothing of the caller's struct survives */
  ut_status st = kit_config_from_json(&lord_table, text, &c);
  if (st == UT_OK) st = lord_cfg_check(&c);
  if (st == UT_OK) *out = c;
  return st;
}

int lord_cfg_differs(const lord_cfg *a, const lord_cfg *b, char *why, size_t size) {
  return kit_config_differs(&lord_table, a, b, why, size);
}
