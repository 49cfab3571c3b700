/* OverLORD's label and paint judges on independent renders (overlord_judges.h). */
#include "overlord_judges.h"

#include <stdlib.h>

#include "image_judge.h"

#define HELDOUT_VIEW_EVERY 5 /* views 4, 9, 14, ... are held out */

typedef struct {
  float *images;
  int32_t *label, *paint;
  int64_t n;
} renders;

static void renders_free(renders *r) {
  free(r->images);
  free(r->label);
  free(r->paint);
}

static int view_held_out(int v) { return v % HELDOUT_VIEW_EVERY == HELDOUT_VIEW_EVERY - 1; }

/* Whether view v is rendered for the part `held` (held-out views or the others): every
 * `view_step`-th view of that part, counted within the part, so thinning never empties one
 * (a step of 5 over all views would skip every held-out view). */
static int view_taken(int v, int held, int view_step) {
  if (view_held_out(v) != held) return 0;
  int index = held ? v / HELDOUT_VIEW_EVERY : v - (v + 1) / HELDOUT_VIEW_EVERY;
  return index % view_step == 0;
}

/* How many views both parts render with `view_step`. */
static int64_t rendered_views(int views, int view_step) {
  int64_t n = 0;
  for (int v = 0; v < views; v++) n += view_taken(v, 0, view_step) + view_taken(v, 1, view_step);
  return n;
}

/* Every (class, view, paint) of the part, its views thinned by `view_step` so the whole stays
 * under the image cap. */
static ut_status render_part(const ut_synth_cfg *synth, int paints, int held, int view_step, renders *r) {
  int64_t per = 3 * (int64_t)synth->size * synth->size, cap = 0;
  for (int v = 0; v < synth->views; v++) cap += view_taken(v, held, view_step);
  cap *= (int64_t)synth->classes * paints;
  *r = (renders){ .images = malloc((size_t)(cap * per) * sizeof(float)), .label = malloc((size_t)cap * sizeof(int32_t)),
                  .paint = malloc((size_t)cap * sizeof(int32_t)) };
  uint8_t *rgb = malloc((size_t)per);
  ut_status st = r->images && r->label && r->paint && rgb ? UT_OK
                                                          : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld judge renders", (long long)cap);
  for (int v = 0; st == UT_OK && v < synth->views; v++) {
    if (!view_taken(v, held, view_step)) continue;
    for (int c = 0; st == UT_OK && c < synth->classes; c++)
      for (int p = 1; st == UT_OK && p <= paints; p++) {
        ut_synth_cfg one = *synth;
        one.paint = p;
        st = ut_synth_render(&one, c, v, rgb);
        ut_image_bytes_to_chw(rgb, (size_t)(per / 3), 3, r->images + r->n * per);
        r->label[r->n] = c;
        r->paint[r->n++] = p - 1;
      }
  }
  free(rgb);
  if (st != UT_OK) renders_free(r);
  return st;
}

/* One judge by image_judge's recipe (mirrored, at least IMAGE_JUDGE_MIN_STEPS steps), scored on
 * the held-out renders here, since those are split by view and not by class. */
static ut_status train_one(ut_runtime *rt, const renders *tr, const renders *held, const int32_t *train_labels,
                           const int32_t *held_labels, int n_classes, int size, const image_judge_cfg *jc,
                           image_classifier **clf, double *accuracy, int *epochs) {
  image_judge_report jr = { 0 };
  ut_status st = image_judge_train(rt, tr->images, tr->n, 3, size, size, train_labels, n_classes, jc, clf, &jr);
  *epochs = jr.epochs;
  int32_t *predicted = st == UT_OK ? malloc((size_t)held->n * sizeof *predicted) : NULL;
  if (st == UT_OK && !predicted) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the judge's scores");
  if (st == UT_OK) st = image_classifier_predict(*clf, held->images, held->n, predicted);
  int64_t right = 0;
  for (int64_t i = 0; st == UT_OK && i < held->n; i++) right += predicted[i] == held_labels[i];
  *accuracy = st == UT_OK ? (double)right / (double)held->n : 0;
  free(predicted);
  return st;
}

ut_status overlord_judges_train(ut_runtime *rt, const ut_synth_cfg *synth, int paints, const overlord_judges_cfg *cfg,
                                overlord_judges *j) {
  *j = (overlord_judges){ 0 };
  if (cfg->epochs < 1 || !(cfg->min_accuracy >= 0 && cfg->min_accuracy <= 1) || cfg->max_images < 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "the judges need 1 epoch, a minimum accuracy in [0, 1] and 2 images (got %d, %g, %lld)",
                   cfg->epochs, cfg->min_accuracy, (long long)cfg->max_images);
  if (synth->views < HELDOUT_VIEW_EVERY || synth->classes < 2 || paints < 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "the judges need at least %d views, 2 classes and 2 paints (the set has %d, %d, %d)",
                   HELDOUT_VIEW_EVERY, synth->views, synth->classes, paints);
  int view_step = 1;
  while (view_step < synth->views && rendered_views(synth->views, view_step) * synth->classes * paints > cfg->max_images)
    view_step++;
  int64_t fewest = rendered_views(synth->views, view_step) * synth->classes * paints;
  if (fewest > cfg->max_images)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "the judges need one training and one held-out view of every class and paint, %lld renders, "
                   "more than the cap of %lld", (long long)fewest, (long long)cfg->max_images);
  renders tr = { 0 }, held = { 0 };
  ut_status st = render_part(synth, paints, 0, view_step, &tr);
  if (st == UT_OK) st = render_part(synth, paints, 1, view_step, &held);
  j->n_train = tr.n;
  j->n_heldout = held.n;
  image_judge_cfg jc = { .epochs = cfg->epochs, .min_accuracy = cfg->min_accuracy, .seed = cfg->seed };
  if (st == UT_OK)
    st = train_one(rt, &tr, &held, tr.label, held.label, synth->classes, synth->size, &jc, &j->label, &j->label_accuracy,
                   &j->epochs);
  jc.seed = cfg->seed + 1;
  if (st == UT_OK)
    st = train_one(rt, &tr, &held, tr.paint, held.paint, paints, synth->size, &jc, &j->paint, &j->paint_accuracy,
                   &j->epochs);
  renders_free(&tr);
  renders_free(&held);
  if (st == UT_OK) st = overlord_judges_check(j, cfg->min_accuracy);
  if (st != UT_OK) {
    image_classifier_free(j->label);
    image_classifier_free(j->paint);
    j->label = j->paint = NULL;
  }
  return st;
}

ut_status overlord_judges_check(const overlord_judges *j, double min_accuracy) {
  const char *weak = j->label_accuracy < min_accuracy ? "label" : j->paint_accuracy < min_accuracy ? "paint" : NULL;
  if (!weak) return UT_OK;
  return ut_fail(UT_ERR_STATE,
                 "the %s judge recognises only %.3f of %lld held-out renders after %d epochs on %lld (it must reach %.2f "
                 "before it judges translations); give it more --judge-epochs, or lower --judge-min-accuracy knowingly",
                 weak, weak[0] == 'l' ? j->label_accuracy : j->paint_accuracy, (long long)j->n_heldout, j->epochs,
                 (long long)j->n_train, min_accuracy);
}

void overlord_judges_free(overlord_judges *j) {
  image_classifier_free(j->label);
  image_classifier_free(j->paint);
  j->label = j->paint = NULL;
}
