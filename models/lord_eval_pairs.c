/* Content-transfer pairs, their baselines and scores (lord_eval_pairs.h).
 *
 * Object masks are re-rendered rather than stored: the renderer draws any (class, pose) again
 * exactly (ut_synth_coverage, a third of a render's time), so no data set format changes, every
 * rendered set written before masks existed gets them too, and the mask is the geometry itself,
 * not a guess from colours (an object pixel may happen to have the background's colour). */
#include "lord_eval_pairs.h"
#include "kit_random.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

/* ---- pairs ---------------------------------------------------------------------------------- */

ut_status lord_eval_draw_pairs(const ut_dataset *ds, const int32_t *class_sources, int64_t n_class_sources,
                               const int32_t *content_sources, int64_t n_content_sources, int64_t n, uint64_t seed,
                               lord_eval_pair *pairs, int64_t *drawn) {
  *drawn = 0;
  int64_t k = ut_dataset_n_classes(ds), v = ut_dataset_n_contents(ds);
  if (v < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has no content labels to pair", ut_dataset_path(ds));
  if (n_class_sources < 1 || n_content_sources < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: no class or content sources to pair", ut_dataset_path(ds));
  /* truth[class * v + content]: the first image of that class in that pose, or -1. */
  int32_t *truth = malloc((size_t)(k * v) * sizeof *truth);
  if (!truth) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld x %lld poses", (long long)k, (long long)v);
  for (int64_t i = 0; i < k * v; i++) truth[i] = -1;
  for (int32_t i = ut_dataset_count(ds) - 1; i >= 0; i--)
    truth[(int64_t)ut_dataset_class(ds, i) * v + ut_dataset_content(ds, i)] = i;
  uint64_t key = kit_hash64(seed ^ 0x7061697273ull); /* "pairs" */
  for (int64_t draw = 0; *drawn < n && draw < 20 * n; draw++) {
    int32_t cls = class_sources[kit_hash64(key + 2 * (uint64_t)draw) % (uint64_t)n_class_sources];
    int32_t cnt = content_sources[kit_hash64(key + 2 * (uint64_t)draw + 1) % (uint64_t)n_content_sources];
    int c = ut_dataset_class(ds, cls), pose = ut_dataset_content(ds, cnt);
    if (c == ut_dataset_class(ds, cnt) || ut_dataset_content(ds, cls) == pose || truth[(int64_t)c * v + pose] < 0) continue;
    pairs[(*drawn)++] = (lord_eval_pair){ .content_source = cnt, .class_source = cls, .truth = truth[(int64_t)c * v + pose] };
  }
  free(truth);
  return UT_OK;
}

/* ---- references ----------------------------------------------------------------------------- */

struct lord_eval_refs {
  const ut_dataset *ds;
  int64_t per, pixels;
  float *pose_mean;  /* [n_contents, per] */
  float *class_mean; /* [n_classes, per] */
  ut_synth_cfg synth; /* how to re-render masks; classes 0 when there are none */
  char why_no_mask[200];
};

static const char *const baseline_names[LORD_BASELINE_COUNT] = { "class_agnostic", "content_agnostic", "content_copy",
                                                                 "background" };

const char *lord_eval_baseline_name(int baseline) {
  return baseline >= 0 && baseline < LORD_BASELINE_COUNT ? baseline_names[baseline] : NULL;
}

/* Accumulates the images `ids` into means[group(id)] and divides by the counts. */
static void group_means(const ut_dataset *ds, const int32_t *ids, int64_t n, int by_class, int64_t groups, int64_t per,
                        float *means, double *sums, int64_t *counts, float *image) {
  memset(sums, 0, (size_t)(groups * per) * sizeof *sums);
  memset(counts, 0, (size_t)groups * sizeof *counts);
  for (int64_t i = 0; i < n; i++) {
    int32_t id = ids ? ids[i] : (int32_t)i;
    int64_t g = by_class ? ut_dataset_class(ds, id) : ut_dataset_content(ds, id);
    ut_dataset_image_chw(ds, id, image);
    for (int64_t j = 0; j < per; j++) sums[g * per + j] += image[j];
    counts[g]++;
  }
  for (int64_t g = 0; g < groups; g++)
    for (int64_t j = 0; j < per; j++) means[g * per + j] = counts[g] ? (float)(sums[g * per + j] / (double)counts[g]) : 0.0f;
}

/* Reads the rendering settings from the data set's source, or says in refs->why_no_mask why
 * masks cannot be re-rendered. */
static void find_renderer(lord_eval_refs *r) {
  const ut_dataset *ds = r->ds;
  json_error_t err;
  json_t *src = json_loads(ut_dataset_source_json(ds), 0, &err);
  json_int_t classes = 0, views = 0, size = 0;
  const char *kind = NULL;
  json_t *seed_value = src ? json_object_get(src, "seed") : NULL;
  int ok = src && json_unpack(src, "{s:s, s:I, s:I, s:I}", "kind", &kind, "classes", &classes, "views", &views, "size",
                              &size) == 0 && strcmp(kind, "synth") == 0;
  /* A seed past 2^63 is written as a decimal string (engine/data/rendered.c). */
  unsigned long long seed = 0;
  if (ok && json_is_integer(seed_value)) seed = (unsigned long long)json_integer_value(seed_value);
  else if (ok) ok = json_is_string(seed_value) && sscanf(json_string_value(seed_value), "%llu", &seed) == 1;
  if (!ok)
    snprintf(r->why_no_mask, sizeof r->why_no_mask, "%s is not a rendered set ('untangle data synth'), so the object's pixels are unknown",
             ut_dataset_path(ds));
  else if (classes != ut_dataset_n_classes(ds) || views != ut_dataset_n_contents(ds) || size != ut_dataset_width(ds) ||
           size != ut_dataset_height(ds))
    snprintf(r->why_no_mask, sizeof r->why_no_mask,
             "%s: its source (%lld classes, %lld views, size %lld) does not match its images, so no masks", ut_dataset_path(ds),
             (long long)classes, (long long)views, (long long)size);
  else
    r->synth = (ut_synth_cfg){ .classes = (int)classes, .views = (int)views, .size = (int)size, .seed = seed };
  json_decref(src);
}

lord_eval_refs *lord_eval_refs_new(const ut_dataset *ds, const int32_t *train, int64_t n_train) {
  int64_t k = ut_dataset_n_classes(ds), v = ut_dataset_n_contents(ds);
  if (v < 1) return NULL;
  lord_eval_refs *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->ds = ds;
  r->pixels = (int64_t)ut_dataset_height(ds) * ut_dataset_width(ds);
  r->per = r->pixels * ut_dataset_channels(ds);
  int64_t groups = k > v ? k : v;
  r->pose_mean = malloc((size_t)(v * r->per) * sizeof(float));
  r->class_mean = malloc((size_t)(k * r->per) * sizeof(float));
  double *sums = malloc((size_t)(groups * r->per) * sizeof *sums);
  int64_t *counts = malloc((size_t)groups * sizeof *counts);
  float *image = malloc((size_t)r->per * sizeof *image);
  int ok = r->pose_mean && r->class_mean && sums && counts && image;
  if (ok) {
    group_means(ds, train, n_train, 0, v, r->per, r->pose_mean, sums, counts, image);
    group_means(ds, NULL, ut_dataset_count(ds), 1, k, r->per, r->class_mean, sums, counts, image);
    find_renderer(r);
  }
  free(sums);
  free(counts);
  free(image);
  if (!ok) {
    lord_eval_refs_free(r);
    return NULL;
  }
  return r;
}

void lord_eval_refs_free(lord_eval_refs *r) {
  if (!r) return;
  free(r->pose_mean);
  free(r->class_mean);
  free(r);
}

const char *lord_eval_refs_why_no_mask(const lord_eval_refs *r) { return r->synth.classes ? NULL : r->why_no_mask; }

ut_status lord_eval_refs_mask(const lord_eval_refs *r, int32_t image, uint8_t *mask) {
  if (!r->synth.classes) return ut_fail(UT_ERR_STATE, "%s", r->why_no_mask);
  /* A rendered set's class is the object and its content the view (ut_synth_write_dataset). */
  ut_status st = ut_synth_coverage(&r->synth, ut_dataset_class(r->ds, image), ut_dataset_content(r->ds, image), mask);
  for (int64_t p = 0; st == UT_OK && p < r->pixels; p++) mask[p] = mask[p] > 0;
  return st;
}

void lord_eval_refs_baseline(const lord_eval_refs *r, int baseline, const lord_eval_pair *p, const uint8_t *truth_mask,
                             float *guess) {
  const ut_dataset *ds = r->ds;
  switch (baseline) {
  case LORD_BASELINE_CLASS_AGNOSTIC:
    memcpy(guess, r->pose_mean + ut_dataset_content(ds, p->content_source) * r->per, (size_t)r->per * sizeof *guess);
    break;
  case LORD_BASELINE_CONTENT_AGNOSTIC:
    memcpy(guess, r->class_mean + ut_dataset_class(ds, p->class_source) * r->per, (size_t)r->per * sizeof *guess);
    break;
  case LORD_BASELINE_CONTENT_COPY: ut_dataset_image_chw(ds, p->content_source, guess); break;
  default: {
    /* The mean colour of the truth outside its object (the whole image if the object fills it). */
    ut_dataset_image_chw(ds, p->truth, guess);
    int64_t bg = 0;
    for (int64_t q = 0; q < r->pixels; q++) bg += !truth_mask[q];
    for (int c = 0; c < ut_dataset_channels(ds); c++) {
      float *plane = guess + c * r->pixels;
      double sum = 0;
      for (int64_t q = 0; q < r->pixels; q++) sum += bg == 0 || !truth_mask[q] ? plane[q] : 0.0;
      float colour = (float)(sum / (double)(bg ? bg : r->pixels));
      for (int64_t q = 0; q < r->pixels; q++) plane[q] = colour;
    }
  }
  }
}

/* ---- scores --------------------------------------------------------------------------------- */

void lord_eval_score_add(lord_eval_score *s, const float *guess, const float *truth, const uint8_t *mask, int channels,
                         int64_t pixels) {
  double all = 0, object = 0, colour = 0;
  int64_t on = 0;
  for (int64_t q = 0; mask && q < pixels; q++) on += mask[q] != 0;
  for (int c = 0; c < channels; c++) {
    const float *g = guess + c * pixels, *t = truth + c * pixels;
    double g_sum = 0, t_sum = 0;
    for (int64_t q = 0; q < pixels; q++) {
      double d = fabs((double)g[q] - (double)t[q]);
      all += d;
      if (on && mask[q]) {
        object += d;
        g_sum += g[q];
        t_sum += t[q];
      }
    }
    if (on) colour += fabs(g_sum - t_sum) / (double)on;
  }
  s->pairs++;
  s->l1 += all / (double)(channels * pixels);
  if (on) {
    s->masked_pairs++;
    s->foreground_l1 += object / (double)(channels * on);
    s->colour += colour / channels;
  }
}

void lord_eval_score_means(const lord_eval_score *s, double *l1, double *foreground_l1, double *colour) {
  *l1 = s->pairs ? s->l1 / (double)s->pairs : NAN;
  *foreground_l1 = s->masked_pairs ? s->foreground_l1 / (double)s->masked_pairs : NAN;
  *colour = s->masked_pairs ? s->colour / (double)s->masked_pairs : NAN;
}
