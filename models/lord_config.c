/* LORD's configuration: the two presets, validation, and JSON for checkpoints (lord.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char *recon_names[] = { "l1", "vgg", "vgg-random" };

const char *lord_recon_name(lord_recon r) {
  return (unsigned)r < sizeof recon_names / sizeof recon_names[0] ? recon_names[r] : "?";
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
  REQUIRE((unsigned)c->recon <= LORD_RECON_VGG_RANDOM, "recon %d is not l1, vgg or vgg-random", (int)c->recon);
  REQUIRE(c->recon == LORD_RECON_L1 || c->size >= 32, "the VGG loss needs images of at least 32x32");
#undef REQUIRE
  return UT_OK;
}

char *lord_cfg_to_json(const lord_cfg *c) {
  /* The seed is a full 64-bit value; JSON integers are signed, so it travels as a string. */
  char seed[24];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
  json_t *o = json_pack("{s:i,s:i,s:I,s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:s,s:s}",
                        "size", c->size, "channels", c->channels, "n_images", (json_int_t)c->n_images, "n_classes",
                        (json_int_t)c->n_classes, "content_dim", c->content_dim, "class_dim", c->class_dim,
                        "gen_channels", c->gen_channels, "head_channels", c->head_channels, "enc_channels",
                        c->enc_channels, "enc_hidden", c->enc_hidden, "content_std", (double)c->content_std,
                        "content_decay", (double)c->content_decay, "batch", c->batch, "epochs1", c->epochs1,
                        "epochs2", c->epochs2, "lr_gen", (double)c->lr_gen, "lr_emb", (double)c->lr_emb, "lr_enc",
                        (double)c->lr_enc, "lr_min", (double)c->lr_min, "recon", lord_recon_name(c->recon), "seed",
                        seed);
  if (!o) return NULL;
  char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(o);
  return s;
}

ut_status lord_cfg_from_json(const char *text, lord_cfg *out) {
  json_error_t err;
  json_t *o = json_loads(text, 0, &err);
  if (!o) return ut_fail(UT_ERR_FORMAT, "LORD configuration: not JSON (%s at line %d)", err.text, err.line);
  lord_cfg c;
  json_int_t n_images = 0, n_classes = 0;
  double std = 0, decay = 0, lr_gen = 0, lr_emb = 0, lr_enc = 0, lr_min = 0;
  const char *recon = NULL, *seed = NULL;
  int rc = json_unpack_ex(o, &err, JSON_STRICT,
                          "{s:i,s:i,s:I,s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:F,s:F,s:i,s:i,s:i,s:F,s:F,s:F,s:F,s:s,s:s}", "size",
                          &c.size, "channels", &c.channels, "n_images", &n_images, "n_classes", &n_classes,
                          "content_dim", &c.content_dim, "class_dim", &c.class_dim, "gen_channels", &c.gen_channels,
                          "head_channels", &c.head_channels, "enc_channels", &c.enc_channels, "enc_hidden",
                          &c.enc_hidden, "content_std", &std, "content_decay", &decay, "batch", &c.batch, "epochs1",
                          &c.epochs1, "epochs2", &c.epochs2, "lr_gen", &lr_gen, "lr_emb", &lr_emb, "lr_enc", &lr_enc,
                          "lr_min", &lr_min, "recon", &recon, "seed", &seed);
  ut_status st = UT_OK;
  if (rc != 0) {
    st = ut_fail(UT_ERR_FORMAT, "LORD configuration: %s", err.text);
  } else {
    c.n_images = n_images;
    c.n_classes = n_classes;
    c.content_std = (float)std;
    c.content_decay = (float)decay;
    c.lr_gen = (float)lr_gen;
    c.lr_emb = (float)lr_emb;
    c.lr_enc = (float)lr_enc;
    c.lr_min = (float)lr_min;
    c.recon = (lord_recon)-1;
    for (int i = 0; i < 3; i++)
      if (!strcmp(recon, recon_names[i])) c.recon = (lord_recon)i;
    char *end;
    c.seed = strtoull(seed, &end, 10);
    if (*end || !*seed) st = ut_fail(UT_ERR_FORMAT, "LORD configuration: seed '%s' is not a decimal number", seed);
    else if (c.recon == (lord_recon)-1)
      st = ut_fail(UT_ERR_FORMAT, "LORD configuration: recon '%s' is not l1, vgg or vgg-random", recon);
    else st = lord_cfg_check(&c);
  }
  json_decref(o);
  if (st == UT_OK) *out = c;
  return st;
}

int lord_cfg_differs(const lord_cfg *a, const lord_cfg *b, char *why, size_t size) {
  char *ja = lord_cfg_to_json(a), *jb = lord_cfg_to_json(b);
  json_t *oa = ja ? json_loads(ja, 0, NULL) : NULL, *ob = jb ? json_loads(jb, 0, NULL) : NULL;
  int differs = !oa || !ob;
  if (differs) snprintf(why, size, "out of host memory");
  const char *key;
  json_t *va;
  if (!differs)
    json_object_foreach(oa, key, va) {
      json_t *vb = json_object_get(ob, key);
      if (vb && json_equal(va, vb)) continue;
      char *sa = json_dumps(va, JSON_ENCODE_ANY), *sb = vb ? json_dumps(vb, JSON_ENCODE_ANY) : NULL;
      snprintf(why, size, "%s is %s, not %s", key, sa ? sa : "?", sb ? sb : "?");
      free(sa);
      free(sb);
      differs = 1;
      break;
    }
  json_decref(oa);
  json_decref(ob);
  free(ja);
  free(jb);
  return differs;
}
