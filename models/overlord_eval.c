/* OverLORD's evaluation on the rendered three-factor set (overlord_eval.h). */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "overlord_judges.h"
#include "kit_random.h"
#include "lord_train.h"
#include "overlord_eval.h"
#include "overlord_train.h"

overlord_eval_cfg overlord_eval_default_cfg(void) {
  /* Every other label: 3 per image moved the share judged by a few changes between runs that
   * differ in nothing that matters (docs/overlord.md, "Every other label judged"). */
  return (overlord_eval_cfg){ .max_images = 200, .targets = INT_MAX, .judge_epochs = 30, .judge_min_accuracy = 0.9,
                              .judge_images = 20000, .max_probe = 1500, .seed = 1 };
}

typedef struct {
  ut_synth_cfg synth;
  int paints, attr;
} three_factors;

/* The renderer's settings from the set's source, which must say it was rendered with paints. */
static ut_status read_source(const ut_dataset *ds, three_factors *t) {
  const char *path = ut_dataset_path(ds);
  json_t *src = json_loads(ut_dataset_source_json(ds), 0, NULL);
  const char *kind = src ? json_string_value(json_object_get(src, "kind")) : NULL;
  json_t *paints = src ? json_object_get(src, "paints") : NULL, *seed = src ? json_object_get(src, "seed") : NULL;
  ut_status st = UT_OK;
  if (!kind || strcmp(kind, "synth") || !json_is_integer(paints) || json_object_get(src, "domain"))
    st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: source %s is not a rendered set with paints; OverLORD's evaluation needs the "
                 "ground truth of 'untangle data synth --paints P'", path, ut_dataset_source_json(ds));
  if (st == UT_OK) {
    t->synth = (ut_synth_cfg){ .classes = (int)json_integer_value(json_object_get(src, "classes")),
                               .views = (int)json_integer_value(json_object_get(src, "views")),
                               .size = (int)json_integer_value(json_object_get(src, "size")) };
    t->synth.seed = json_is_string(seed) ? strtoull(json_string_value(seed), NULL, 10) : (uint64_t)json_integer_value(seed);
    t->paints = (int)json_integer_value(paints);
    t->attr = ut_dataset_find_attribute(ds, "paint");
    if (t->attr < 0) st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: no attribute \"paint\"", path);
  }
  json_decref(src);
  return st;
}

static double mean_abs_diff(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] - b[i]);
  return s / (double)n;
}

/* Mean absolute difference of horizontally and vertically neighbouring pixels. */
static double sharpness(const float *x, int64_t n, int c, int s) {
  double acc = 0;
  int64_t count = 0;
  for (int64_t p = 0; p < n * c; p++) {
    const float *im = x + p * s * s;
    for (int y = 0; y < s; y++)
      for (int xx = 0; xx < s; xx++) {
        if (xx + 1 < s) acc += fabs(im[y * s + xx + 1] - im[y * s + xx]), count++;
        if (y + 1 < s) acc += fabs(im[(y + 1) * s + xx] - im[y * s + xx]), count++;
      }
  }
  return count ? acc / (double)count : 0;
}

static void clamp01(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
}

/* Images to translate and their pairs: `targets` target labels per image, other than its own
 * and spread over the classes; a pair's truth is the target class rendered in the image's paint
 * and view. */
typedef struct {
  int64_t n, pairs, per, pixels;
  int32_t *ids;
  float *images, *masks, *truth, *out;
  int32_t *target, *source, *paint; /* per pair: target label, input's label, input's paint - 1 */
  uint8_t *foreign; /* per pair: 1 when the target class never comes in the input's paint */
} pair_set;

static void pair_set_free(pair_set *ps) {
  free(ps->ids);
  free(ps->images);
  free(ps->masks);
  free(ps->truth);
  free(ps->out);
  free(ps->target);
  free(ps->source);
  free(ps->paint);
  free(ps->foreign);
  *ps = (pair_set){ 0 };
}

/* n images picked evenly from pool[0 .. n_pool) and their pairs. */
static ut_status pair_set_make(const ut_dataset *ds, const three_factors *t, const overlord_cfg *c, const int32_t *pool,
                               int64_t n_pool, int64_t n, int targets, pair_set *ps) {
  *ps = (pair_set){ .n = n, .pairs = n * targets, .per = (int64_t)c->channels * c->size * c->size,
                    .pixels = (int64_t)c->size * c->size };
  ps->ids = malloc((size_t)n * sizeof *ps->ids);
  ps->images = malloc((size_t)(n * ps->per) * sizeof *ps->images);
  ps->masks = malloc((size_t)(n * ps->pixels) * sizeof *ps->masks);
  ps->truth = malloc((size_t)(ps->pairs * ps->per) * sizeof *ps->truth);
  ps->out = malloc((size_t)(ps->pairs * ps->per) * sizeof *ps->out);
  ps->target = malloc((size_t)ps->pairs * sizeof *ps->target);
  ps->source = malloc((size_t)ps->pairs * sizeof *ps->source);
  ps->paint = malloc((size_t)ps->pairs * sizeof *ps->paint);
  ps->foreign = malloc((size_t)ps->pairs);
  uint8_t *rgb = malloc((size_t)ps->pixels * 3);
  ut_status st = ps->ids && ps->images && ps->masks && ps->truth && ps->out && ps->target && ps->source && ps->paint &&
                     ps->foreign && rgb
                   ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the evaluation");
  for (int64_t i = 0; st == UT_OK && i < n; i++) {
    int32_t id = ps->ids[i] = pool[(i * (n_pool / n)) % n_pool];
    int cls = ut_dataset_class(ds, id), view = ut_dataset_content(ds, id);
    int p = (int)ut_dataset_attribute(ds, id, t->attr);
    ut_dataset_image_chw(ds, id, ps->images + i * ps->per);
    const uint8_t *mk = ut_dataset_mask(ds, id);
    for (int64_t q = 0; q < ps->pixels; q++) ps->masks[i * ps->pixels + q] = mk ? (float)mk[q] / 255.0f : 1.0f;
    for (int k = 0; st == UT_OK && k < targets; k++) {
      int64_t pi = i * targets + k;
      ps->target[pi] = (int32_t)((cls + 1 + (i * 7 + k) % (c->n_classes - 1)) % c->n_classes);
      ps->source[pi] = cls;
      ps->paint[pi] = p - 1;
      ps->foreign[pi] = ut_synth_paint_probability(&t->synth, t->paints, ps->target[pi], p) == 0;
      ut_synth_cfg one = t->synth;
      one.paint = p;
      st = ut_synth_render(&one, ps->target[pi], view, rgb);
      ut_image_bytes_to_chw(rgb, (size_t)ps->pixels, 3, ps->truth + pi * ps->per);
    }
  }
  free(rgb);
  return st;
}

/* The share of pairs where a[i] == b[i], over the pairs whose foreign[i] is `which` (all pairs
 * count as usual when foreign is NULL); -1 when there are none. Their number goes to *pairs
 * unless that is NULL. */
static double split_share(const int32_t *a, const int32_t *b, const uint8_t *foreign, int which, int64_t n, int64_t *pairs) {
  int64_t hit = 0, count = 0;
  for (int64_t i = 0; i < n; i++)
    if ((foreign ? foreign[i] != 0 : 0) == which) hit += a[i] == b[i], count++;
  if (pairs) *pairs = count;
  return count ? (double)hit / (double)count : -1;
}

void overlord_eval_tally_labels(const int32_t *judged, const int32_t *target, const int32_t *source, const uint8_t *foreign,
                                int64_t n, int64_t n_classes, overlord_eval_scores *sc) {
  sc->usual_paint.label_judged = split_share(judged, target, foreign, 0, n, &sc->usual_paint.pairs);
  sc->foreign_paint.label_judged = split_share(judged, target, foreign, 1, n, &sc->foreign_paint.pairs);
  enum { L = OVERLORD_EVAL_MAX_LISTED_LABELS };
  int64_t hit = 0, kept = 0, per_n[L] = { 0 }, judged_as[L][L] = { { 0 } }; /* [target][judged] */
  sc->n_listed = n_classes <= L ? (int)n_classes : 0;
  for (int64_t i = 0; i < n; i++) {
    hit += judged[i] == target[i];
    kept += judged[i] == source[i];
    if (sc->n_listed) judged_as[target[i]][judged[i]]++, per_n[target[i]]++;
  }
  sc->label_judged = n ? (double)hit / (double)n : 0;
  sc->label_of_input = n ? (double)kept / (double)n : 0;
  for (int k = 0; k < sc->n_listed; k++) {
    sc->label_judged_by_target[k] = per_n[k] ? (double)judged_as[k][k] / (double)per_n[k] : -1;
    int instead = -1;
    for (int m = 0; m < sc->n_listed; m++)
      if (m != k && judged_as[k][m] > 0 && (instead < 0 || judged_as[k][m] > judged_as[k][instead])) instead = m;
    sc->label_instead[k] = instead;
    sc->label_instead_share[k] = instead < 0 ? 0 : (double)judged_as[k][instead] / (double)per_n[k];
  }
}

typedef struct {
  image_classifier *label_judge, *paint_judge;
  int32_t *predicted; /* [pairs] of the larger pair set */
} judging;

/* Scores `out` (ps->out, or the truth itself) against the pairs of ps. */
static ut_status score(const judging *j, const pair_set *ps, const float *out, overlord_eval_scores *sc, int c, int s,
                       int64_t n_classes) {
  sc->l1 = mean_abs_diff(out, ps->truth, ps->pairs * ps->per);
  sc->sharpness = sharpness(out, ps->pairs, c, s);
  ut_status st = image_classifier_predict(j->label_judge, out, ps->pairs, j->predicted);
  if (st == UT_OK) overlord_eval_tally_labels(j->predicted, ps->target, ps->source, ps->foreign, ps->pairs, n_classes, sc);
  if (st == UT_OK) st = image_classifier_predict(j->paint_judge, out, ps->pairs, j->predicted);
  if (st != UT_OK) return st;
  int64_t hit = 0;
  for (int64_t i = 0; i < ps->pairs; i++) hit += j->predicted[i] == ps->paint[i];
  sc->paint_kept = (double)hit / (double)ps->pairs;
  /* The counts of each part are the label tally's. */
  sc->usual_paint.paint_kept = split_share(j->predicted, ps->paint, ps->foreign, 0, ps->pairs, NULL);
  sc->foreign_paint.paint_kept = split_share(j->predicted, ps->paint, ps->foreign, 1, ps->pairs, NULL);
  return st;
}

static void part(const overlord_eval_cfg *c, const char *what) {
  if (c->on_part) c->on_part(c->user, what);
}

/* Stage `stage`'s translations of the pairs: pose and correlated codes of each input image,
 * the label code of the pair's target. Stage 1 reads the uncorrelated codes of training images
 * `ids` from the embedding and the correlated ones from E_c. */
static ut_status translate_pairs(overlord_model *m, int stage, const int32_t *ids, const float *images, const float *masks,
                                 int64_t n, int targets, const int32_t *target, float *out) {
  const overlord_cfg *c = overlord_config(m);
  int64_t pairs = n * targets;
  float *u = malloc((size_t)n * c->uncorr_dim * sizeof *u), *corr = malloc((size_t)n * c->corr_dim * sizeof *corr);
  float *pu = malloc((size_t)pairs * c->uncorr_dim * sizeof *pu), *pc = malloc((size_t)pairs * c->corr_dim * sizeof *pc);
  float *pl = malloc((size_t)pairs * c->label_dim * sizeof *pl);
  ut_status st = u && corr && pu && pc && pl ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the evaluation");
  if (st == UT_OK && stage == 1) st = overlord_embedded_codes(m, ids, NULL, n, u, NULL);
  if (st == UT_OK) st = overlord_encode(m, stage, images, masks, n, stage == 1 ? NULL : u, NULL, corr);
  if (st == UT_OK) st = overlord_embedded_codes(m, NULL, target, pairs, NULL, pl);
  for (int64_t p = 0; st == UT_OK && p < pairs; p++) {
    memcpy(pu + p * c->uncorr_dim, u + (p / targets) * c->uncorr_dim, (size_t)c->uncorr_dim * sizeof(float));
    memcpy(pc + p * c->corr_dim, corr + (p / targets) * c->corr_dim, (size_t)c->corr_dim * sizeof(float));
  }
  if (st == UT_OK) st = overlord_generate(m, stage, pu, pl, pc, pairs, out);
  if (st == UT_OK) clamp01(out, pairs * (int64_t)c->channels * c->size * c->size);
  free(u);
  free(corr);
  free(pu);
  free(pc);
  free(pl);
  return st;
}

/* LORD's translations of the same pairs: content code from the image, class code of the target. */
static ut_status lord_pairs(ut_runtime *rt, const char *run, const overlord_cfg *oc, const float *images, int64_t n,
                            int targets, const int32_t *target, float *out) {
  int stage = 0;
  lord_model *l = lord_open_run(rt, run, 2, &stage);
  if (!l) return UT_ERR_STATE;
  const lord_cfg *c = lord_config(l);
  ut_status st = UT_OK;
  if (c->size != oc->size || c->channels != oc->channels || c->n_classes != oc->n_classes)
    st = ut_fail(UT_ERR_MISMATCH, "LORD run %s: %dx%d images of %lld classes, not this set's %dx%d of %lld", run, c->size,
                 c->size, (long long)c->n_classes, oc->size, oc->size, (long long)oc->n_classes);
  int64_t pairs = n * targets;
  float *content = malloc((size_t)n * c->content_dim * sizeof *content);
  float *pc = malloc((size_t)pairs * c->content_dim * sizeof *pc), *pk = malloc((size_t)pairs * c->class_dim * sizeof *pk);
  if (st == UT_OK && !(content && pc && pk)) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for LORD's pairs");
  if (st == UT_OK) st = lord_encode(l, images, n, content, NULL);
  if (st == UT_OK) st = lord_embedded_codes(l, NULL, target, pairs, NULL, pk);
  for (int64_t p = 0; st == UT_OK && p < pairs; p++)
    memcpy(pc + p * c->content_dim, content + (p / targets) * c->content_dim, (size_t)c->content_dim * sizeof(float));
  if (st == UT_OK) st = lord_generate(l, pc, pk, pairs, out);
  free(content);
  free(pc);
  free(pk);
  lord_free(l);
  return st;
}

/* One image of the set for the probes: its pixels, its mask (all ones where it has none), its
 * label and its paint (counted from 0). */
static void read_example(const ut_dataset *ds, const three_factors *t, int32_t id, float *image, float *mask,
                         int32_t *label, int32_t *paint) {
  int64_t pixels = (int64_t)ut_dataset_height(ds) * ut_dataset_width(ds);
  ut_dataset_image_chw(ds, id, image);
  const uint8_t *mk = ut_dataset_mask(ds, id);
  for (int64_t q = 0; q < pixels; q++) mask[q] = mk ? (float)mk[q] / 255.0f : 1.0f;
  *label = ut_dataset_class(ds, id);
  *paint = (int32_t)ut_dataset_attribute(ds, id, t->attr) - 1;
}

/* The four probes on the last stage's codes of up to max_probe images of the set. */
static ut_status run_probes(ut_runtime *rt, overlord_model *m, int stage, const ut_dataset *ds, const three_factors *t,
                            const overlord_eval_cfg *cfg, overlord_eval_report *r) {
  const overlord_cfg *c = overlord_config(m);
  int64_t n = ut_dataset_count(ds) < cfg->max_probe ? ut_dataset_count(ds) : cfg->max_probe;
  int64_t per = (int64_t)c->channels * c->size * c->size, pixels = (int64_t)c->size * c->size;
  int64_t *order = malloc((size_t)ut_dataset_count(ds) * sizeof *order);
  float *images = malloc((size_t)(n * per) * sizeof *images), *masks = malloc((size_t)(n * pixels) * sizeof *masks);
  float *u = malloc((size_t)n * c->uncorr_dim * sizeof *u), *l = malloc((size_t)n * c->label_dim * sizeof *l);
  float *corr = malloc((size_t)n * c->corr_dim * sizeof *corr);
  int32_t *labels = malloc((size_t)n * sizeof *labels), *paints = malloc((size_t)n * sizeof *paints);
  ut_status st = order && images && masks && u && l && corr && labels && paints
                   ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the probes");
  if (st == UT_OK) kit_permutation(cfg->seed ^ 0x70726f6265ull, ut_dataset_count(ds), order);
  for (int64_t i = 0; st == UT_OK && i < n; i++)
    read_example(ds, t, (int32_t)order[i], images + i * per, masks + i * pixels, labels + i, paints + i);
  const float *mk = c->correlation == OVERLORD_LOCALIZED ? masks : NULL;
  if (st == UT_OK) st = overlord_encode(m, stage, images, mk, n, u, l, corr);
  probe_cfg pc = probe_default_cfg();
  pc.stratified = 1;
  if (st == UT_OK) st = probe_accuracy_cfg(rt, u, n, c->uncorr_dim, labels, (int)c->n_classes, cfg->seed, &pc, &r->label_from_uncorr);
  if (st == UT_OK) st = probe_accuracy_cfg(rt, l, n, c->label_dim, labels, (int)c->n_classes, cfg->seed, &pc, &r->label_from_label);
  if (st == UT_OK) st = probe_accuracy_cfg(rt, u, n, c->uncorr_dim, paints, t->paints, cfg->seed, &pc, &r->paint_from_uncorr);
  if (st == UT_OK) st = probe_accuracy_cfg(rt, corr, n, c->corr_dim, paints, t->paints, cfg->seed, &pc, &r->paint_from_corr);
  free(order);
  free(images);
  free(masks);
  free(u);
  free(l);
  free(corr);
  free(labels);
  free(paints);
  return st;
}

/* Stage 1's own codes of up to max_probe training images: the label and the paint from the
 * uncorrelated embedding's rows (leakage; the rows of held-out images are never trained), and
 * the paint from E_c's code of the untransformed image (what the correlated branch carries). */
static ut_status probe_stage1(ut_runtime *rt, overlord_model *m, const ut_dataset *ds, const three_factors *t,
                              const ut_dataset_split *sp, const overlord_eval_cfg *cfg, overlord_eval_report *r) {
  const overlord_cfg *c = overlord_config(m);
  int64_t n = sp->n_train < cfg->max_probe ? sp->n_train : cfg->max_probe;
  int64_t per = (int64_t)c->channels * c->size * c->size, pixels = (int64_t)c->size * c->size;
  float *u = malloc((size_t)n * c->uncorr_dim * sizeof *u), *corr = malloc((size_t)n * c->corr_dim * sizeof *corr);
  float *images = malloc((size_t)(n * per) * sizeof *images), *masks = malloc((size_t)(n * pixels) * sizeof *masks);
  int32_t *labels = malloc((size_t)n * sizeof *labels), *paints = malloc((size_t)n * sizeof *paints);
  ut_status st = u && corr && images && masks && labels && paints
                   ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the probes");
  for (int64_t i = 0; st == UT_OK && i < n; i++)
    read_example(ds, t, sp->train[i], images + i * per, masks + i * pixels, labels + i, paints + i);
  if (st == UT_OK) st = overlord_embedded_codes(m, sp->train, NULL, n, u, NULL);
  if (st == UT_OK) st = overlord_encode(m, 1, images, c->correlation == OVERLORD_LOCALIZED ? masks : NULL, n, NULL, NULL, corr);
  probe_cfg pc = probe_default_cfg();
  pc.stratified = 1;
  if (st == UT_OK) st = probe_accuracy_cfg(rt, u, n, c->uncorr_dim, labels, (int)c->n_classes, cfg->seed, &pc, &r->label_from_uncorr_emb);
  if (st == UT_OK) st = probe_accuracy_cfg(rt, u, n, c->uncorr_dim, paints, t->paints, cfg->seed, &pc, &r->paint_from_uncorr_emb);
  if (st == UT_OK) st = probe_accuracy_cfg(rt, corr, n, c->corr_dim, paints, t->paints, cfg->seed, &pc, &r->paint_from_corr_s1);
  free(u);
  free(corr);
  free(images);
  free(masks);
  free(labels);
  free(paints);
  return st;
}

ut_status overlord_evaluate(ut_runtime *rt, overlord_model *m, int stage, const ut_dataset *ds, double test_ratio,
                            const char *lord_run, const overlord_eval_cfg *cfg, overlord_eval_report *r) {
  const overlord_cfg *c = overlord_config(m);
  *r = (overlord_eval_report){ 0 };
  three_factors t = { 0 };
  ut_status st = overlord_check_data(m, ds);
  if (st == UT_OK) st = read_source(ds, &t);
  if (st != UT_OK) return st;
  /* Every other label, when there are fewer than cfg->targets. */
  int targets = cfg->targets < c->n_classes - 1 ? cfg->targets : (int)c->n_classes - 1;
  if (targets < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%d target labels per image", cfg->targets);
  r->stage = stage;
  r->targets = targets;
  r->paints = t.paints;
  ut_dataset_split sp;
  if ((st = overlord_run_split(ds, c, test_ratio, &sp)) != UT_OK) return st;
  int64_t n = sp.n_test_sample < cfg->max_images ? sp.n_test_sample : cfg->max_images;
  int64_t n1 = sp.n_train < cfg->max_images ? sp.n_train : cfg->max_images;
  if (n < 1 && stage >= 2) st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: the run holds out no images to evaluate", ut_dataset_path(ds));
  /* Held-out images for stages 2 and 3, LORD and the baselines; training images for stage 1,
   * whose uncorrelated codes are their embedding's rows. */
  pair_set held = { 0 }, trained = { 0 };
  if (st == UT_OK && n > 0) st = pair_set_make(ds, &t, c, sp.test_sample, sp.n_test_sample, n, targets, &held);
  if (st == UT_OK && n1 > 0) st = pair_set_make(ds, &t, c, sp.train, sp.n_train, n1, targets, &trained);
  judging j = { 0 };
  int64_t most = held.pairs > trained.pairs ? held.pairs : trained.pairs;
  if (st == UT_OK && !(j.predicted = malloc((size_t)(most > 0 ? most : 1) * sizeof *j.predicted)))
    st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the evaluation");
  r->n_images = (int)held.n;
  r->n_pairs = (int)held.pairs;
  r->n_train_pairs = (int)trained.pairs;
  overlord_judges judges = { 0 };
  if (st == UT_OK) {
    part(cfg, "training the label and paint judges on renders where label and paint are independent");
    overlord_judges_cfg jc = { .epochs = cfg->judge_epochs, .min_accuracy = cfg->judge_min_accuracy,
                               .max_images = cfg->judge_images, .seed = cfg->seed };
    st = overlord_judges_train(rt, &t.synth, t.paints, &jc, &judges);
    r->label_judge_accuracy = judges.label_accuracy;
    r->paint_judge_accuracy = judges.paint_accuracy;
    r->judge_train_images = judges.n_train;
    r->judge_heldout_images = judges.n_heldout;
    j.label_judge = judges.label;
    j.paint_judge = judges.paint;
  }
  int localized = c->correlation == OVERLORD_LOCALIZED;
  if (st == UT_OK && trained.n > 0) {
    part(cfg, "translating training images with stage 1");
    st = translate_pairs(m, 1, trained.ids, trained.images, localized ? trained.masks : NULL, trained.n, targets,
                         trained.target, trained.out);
    if (st == UT_OK) st = score(&j, &trained, trained.out, &r->stage1, c->channels, c->size, c->n_classes);
  }
  if (st == UT_OK && held.n > 0) {
    part(cfg, "scoring the true images and the copy baseline");
    st = score(&j, &held, held.truth, &r->truth, c->channels, c->size, c->n_classes);
    for (int64_t p = 0; p < held.pairs; p++)
      memcpy(held.out + p * held.per, held.images + (p / targets) * held.per, (size_t)held.per * sizeof(float));
    if (st == UT_OK) st = score(&j, &held, held.out, &r->copy, c->channels, c->size, c->n_classes);
  }
  for (int s = 2; st == UT_OK && s <= 3 && s <= stage; s++) {
    part(cfg, s == 2 ? "translating with stage 2" : "translating with stage 3");
    st = translate_pairs(m, s, NULL, held.images, localized ? held.masks : NULL, held.n, targets, held.target, held.out);
    if (st == UT_OK) st = score(&j, &held, held.out, s == 2 ? &r->stage2 : &r->stage3, c->channels, c->size, c->n_classes);
  }
  if (st == UT_OK && lord_run && held.n > 0) {
    part(cfg, "translating with LORD");
    st = lord_pairs(rt, lord_run, c, held.images, held.n, targets, held.target, held.out);
    if (st == UT_OK) {
      clamp01(held.out, held.pairs * held.per);
      st = score(&j, &held, held.out, &r->lord, c->channels, c->size, c->n_classes);
      r->has_lord = 1;
    }
  }
  if (st == UT_OK && sp.n_train > 1) {
    part(cfg, "probing stage 1's codes");
    st = probe_stage1(rt, m, ds, &t, &sp, cfg, r);
  }
  if (st == UT_OK && r->stage >= 2) {
    part(cfg, "probing the codes");
    st = run_probes(rt, m, r->stage >= 3 ? 3 : 2, ds, &t, cfg, r);
  }
  overlord_judges_free(&judges);
  ut_dataset_split_free(&sp);
  pair_set_free(&held);
  pair_set_free(&trained);
  free(j.predicted);
  return st;
}

static json_t *share_or_null(double share) { return share < 0 ? json_null() : json_real(share); }

static json_t *split_json(const overlord_eval_split *p) {
  return json_pack("{s:I, s:o, s:o}", "pairs", (json_int_t)p->pairs, "label_judged", share_or_null(p->label_judged),
                   "paint_kept", share_or_null(p->paint_kept));
}

static json_t *scores_json(const overlord_eval_scores *s) {
  json_t *o = json_pack("{s:f, s:f, s:f, s:f, s:f}", "l1", s->l1, "label_judged", s->label_judged, "label_of_input",
                        s->label_of_input, "paint_kept", s->paint_kept, "sharpness", s->sharpness);
  if (o && s->n_listed) {
    json_t *by = json_array();
    for (int k = 0; k < s->n_listed; k++)
      json_array_append_new(by, s->label_judged_by_target[k] < 0 ? json_null() : json_real(s->label_judged_by_target[k]));
    json_object_set_new(o, "label_judged_by_target", by);
    json_t *instead = json_array();
    for (int k = 0; k < s->n_listed; k++)
      json_array_append_new(instead, s->label_instead[k] < 0 ? json_null()
                                                             : json_pack("{s:i, s:f}", "label", s->label_instead[k], "share",
                                                                         s->label_instead_share[k]));
    json_object_set_new(o, "label_judged_instead_by_target", instead);
  }
  if (o) {
    json_object_set_new(o, "usual_paint", split_json(&s->usual_paint));
    json_object_set_new(o, "foreign_paint", split_json(&s->foreign_paint));
  }
  return o;
}

static json_t *probe_json(const probe_result *p) {
  return json_pack("{s:f, s:f, s:f}", "linear", p->linear_accuracy, "mlp", p->mlp_accuracy, "chance", p->chance);
}

char *overlord_eval_json(const overlord_eval_report *r, const char *run, const char *data, const char *device) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "model", "overlord", "run", run, "data", data,
                        "device", device, "stage", r->stage, "images", r->n_images, "targets_per_image", r->targets, "pairs",
                        r->n_pairs, "paints", r->paints);
  if (!o) return NULL;
  json_t *tr = json_object();
  if (r->n_train_pairs) json_object_set_new(tr, "stage1_training_images", scores_json(&r->stage1));
  if (r->stage >= 2) json_object_set_new(tr, "stage2", scores_json(&r->stage2));
  if (r->stage >= 3) json_object_set_new(tr, "stage3", scores_json(&r->stage3));
  if (r->has_lord) json_object_set_new(tr, "lord", scores_json(&r->lord));
  json_object_set_new(tr, "copy", scores_json(&r->copy));
  json_object_set_new(tr, "truth", scores_json(&r->truth));
  json_object_set_new(o, "translation", tr);
  json_object_set_new(o, "judges", json_pack("{s:f, s:f, s:I, s:I, s:s}", "label_heldout_accuracy", r->label_judge_accuracy,
                                             "paint_heldout_accuracy", r->paint_judge_accuracy, "train_renders",
                                             (json_int_t)r->judge_train_images, "heldout_renders",
                                             (json_int_t)r->judge_heldout_images, "trained_on",
                                             "renders of every (label, view, paint); views v % 5 == 4 held out"));
  json_object_set_new(o, "stage1_probes", json_pack("{s:o, s:o, s:o}", "label_from_uncorrelated_embedding",
                                                     probe_json(&r->label_from_uncorr_emb),
                                                     "paint_from_uncorrelated_embedding", probe_json(&r->paint_from_uncorr_emb),
                                                     "paint_from_correlated_encoder", probe_json(&r->paint_from_corr_s1)));
  if (r->stage >= 2)
    json_object_set_new(o, "probes", json_pack("{s:o, s:o, s:o, s:o}", "label_from_uncorrelated", probe_json(&r->label_from_uncorr),
                                               "paint_from_uncorrelated", probe_json(&r->paint_from_uncorr),
                                               "label_from_label", probe_json(&r->label_from_label),
                                               "paint_from_correlated", probe_json(&r->paint_from_corr)));
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(o);
  return text;
}

static void print_split(FILE *out, const char *what, const overlord_eval_split *p) {
  if (p->pairs) fprintf(out, "  %s (%lld): label %.3f, paint %.3f", what, (long long)p->pairs, p->label_judged, p->paint_kept);
}

static void print_scores(FILE *out, const char *name, const overlord_eval_scores *s) {
  fprintf(out, "  %-8s L1 %.4f   label judged %.3f (the input's %.3f)   paint kept %.3f   sharpness %.4f\n", name, s->l1,
          s->label_judged, s->label_of_input, s->paint_kept, s->sharpness);
  fprintf(out, "  %-8s input's paint", "");
  print_split(out, "one the target class comes in", &s->usual_paint);
  print_split(out, "never the target class's", &s->foreign_paint);
  fprintf(out, "\n");
  if (!s->n_listed) return;
  fprintf(out, "  %-8s label judged per target label:", "");
  for (int k = 0; k < s->n_listed; k++)
    if (s->label_judged_by_target[k] < 0) fprintf(out, " -");
    else fprintf(out, " %.2f", s->label_judged_by_target[k]);
  fprintf(out, "\n");
  static const char *const heading = "           read instead (target->label judged, share of the target's changes):";
  int misses = 0;
  for (int k = 0; k < s->n_listed; k++)
    if (s->label_instead[k] >= 0)
      fprintf(out, "%s %d->%d %.2f", misses++ ? "," : heading, k, s->label_instead[k], s->label_instead_share[k]);
  if (misses) fprintf(out, "\n");
}

void overlord_eval_print(FILE *out, const overlord_eval_report *r) {
  fprintf(out, "%d held-out images, %d label changes (%d target labels each), against the renders of the target label in "
          "the input's paint and pose\n", r->n_images, r->n_pairs, r->targets);
  if (r->n_train_pairs) {
    fprintf(out, "stage 1 on %d label changes of training images (their embedding's rows):\n", r->n_train_pairs);
    print_scores(out, "stage 1", &r->stage1);
  }
  if (r->stage >= 2) print_scores(out, "stage 2", &r->stage2);
  if (r->stage >= 3) print_scores(out, "stage 3", &r->stage3);
  if (r->has_lord) print_scores(out, "LORD", &r->lord);
  print_scores(out, "copy", &r->copy);
  print_scores(out, "truth", &r->truth);
  fprintf(out, "judges' held-out accuracy: label %.3f, paint %.3f (trained on %lld renders in which label and paint are "
          "independent, scored on %lld of other views)\n", r->label_judge_accuracy, r->paint_judge_accuracy,
          (long long)r->judge_train_images, (long long)r->judge_heldout_images);
  fprintf(out, "stage 1's codes of training images (linear / MLP, chance):\n");
  fprintf(out, "  label from uncorrelated embedding %.3f / %.3f (%.3f)   paint from it %.3f / %.3f (%.3f)\n",
          r->label_from_uncorr_emb.linear_accuracy, r->label_from_uncorr_emb.mlp_accuracy, r->label_from_uncorr_emb.chance,
          r->paint_from_uncorr_emb.linear_accuracy, r->paint_from_uncorr_emb.mlp_accuracy, r->paint_from_uncorr_emb.chance);
  fprintf(out, "  paint from E_c's code %.3f / %.3f\n", r->paint_from_corr_s1.linear_accuracy, r->paint_from_corr_s1.mlp_accuracy);
  if (r->stage >= 2) {
    fprintf(out, "probes (linear / MLP, chance):\n");
    fprintf(out, "  label from uncorrelated %.3f / %.3f (%.3f)   label from label code %.3f / %.3f\n",
            r->label_from_uncorr.linear_accuracy, r->label_from_uncorr.mlp_accuracy, r->label_from_uncorr.chance,
            r->label_from_label.linear_accuracy, r->label_from_label.mlp_accuracy);
    fprintf(out, "  paint from uncorrelated %.3f / %.3f (%.3f)   paint from correlated code %.3f / %.3f\n",
            r->paint_from_uncorr.linear_accuracy, r->paint_from_uncorr.mlp_accuracy, r->paint_from_uncorr.chance,
            r->paint_from_corr.linear_accuracy, r->paint_from_corr.mlp_accuracy);
  }
}
