/* The built-in rendered set with a correlated factor: every class in every view, class-major,
 * each image in the paint scheme it draws from its class's distribution (ut_synth_paint_of),
 * with the paint as the per-image attribute "paint" and, when asked, the painted region as
 * the image's mask. Three factors with exact ground truth for every combination: the class,
 * the paint (correlated with the class) and the pose (content id = view). One thread: a
 * 32x32 set of thousands of images renders in a second or two. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

ut_status ut_synth_write_paints(const ut_synth_cfg *cfg, int paints, int masks, const char *out_path,
                                void (*progress)(void *user, int64_t done, int64_t total), void *user) {
  if (!cfg || !out_path) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_synth_write_paints: no configuration or path");
  if (paints < 1 || paints > 4096)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d paints, expected 1 .. 4096", out_path, paints);
  if (cfg->classes < 1 || cfg->views < 1 || cfg->size < 1 || cfg->size > 4096 ||
      (int64_t)cfg->classes * cfg->views > INT32_MAX)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: needs classes, views >= 1, size 1..4096 and at most 2^31 - 1 images",
                   out_path);
  if (!ut_synth_domain_name(cfg->domain))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: look %d, expected 0 .. %d", out_path, cfg->domain, ut_synth_domain_count() - 1);
  char **names = calloc((size_t)cfg->classes, sizeof *names);
  size_t pixels = (size_t)cfg->size * (size_t)cfg->size;
  uint8_t *rgb = malloc(pixels * 3), *mask = malloc(pixels);
  json_t *src = json_pack("{s:s, s:i, s:i, s:i, s:I, s:i}", "kind", "synth", "classes", cfg->classes, "views", cfg->views,
                          "size", cfg->size, "seed", (json_int_t)cfg->seed, "paints", paints);
  if (src && cfg->domain != UT_SYNTH_DAY) json_object_set_new(src, "domain", json_string(ut_synth_domain_name(cfg->domain)));
  char *source = src ? json_dumps(src, JSON_COMPACT) : NULL;
  json_decref(src);
  ut_status s = names && rgb && mask && source ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
  for (int c = 0; s == UT_OK && c < cfg->classes; c++) {
    if (!(names[c] = malloc(24))) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
    else snprintf(names[c], 24, "object-%03d", c);
  }
  static const char *const attribute_names[1] = { "paint" };
  ut_dataset_writer *w = NULL;
  if (s == UT_OK) {
    ut_dataset_desc desc = { .height = cfg->size, .width = cfg->size, .channels = 3, .n_classes = cfg->classes,
                             .class_names = (const char *const *)names, .n_contents = cfg->views, .source_json = source,
                             .n_attributes = 1, .attribute_names = attribute_names, .has_masks = masks != 0 };
    if (!(w = ut_dataset_writer_open(out_path, &desc))) s = UT_ERR_IO;
  }
  int64_t total = (int64_t)cfg->classes * cfg->views;
  for (int64_t i = 0; s == UT_OK && i < total; i++) {
    int c = (int)(i / cfg->views), v = (int)(i % cfg->views);
    ut_synth_cfg one = *cfg;
    one.paint = ut_synth_paint_of(cfg, paints, c, v);
    float paint = (float)one.paint;
    s = ut_synth_render(&one, c, v, rgb);
    if (s == UT_OK && masks) s = ut_synth_body_mask(&one, c, v, mask);
    if (s == UT_OK)
      s = ut_dataset_writer_add_labels(w, rgb, &(ut_image_labels){ .class_id = c, .content_id = v, .domain_id = -1,
                                                                    .attributes = &paint, .mask = masks ? mask : NULL });
    if (s == UT_OK && progress && ((i + 1) % 256 == 0 || i + 1 == total)) progress(user, i + 1, total);
  }
  if (w) {
    if (s == UT_OK) s = ut_dataset_writer_finish(w);
    else ut_dataset_writer_abort(w);
  }
  for (int c = 0; names && c < cfg->classes; c++) free(names[c]);
  free(names);
  free(rgb);
  free(mask);
  free(source);
  return s;
}
