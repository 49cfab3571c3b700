/* UNIT's evaluation (unit_eval.h): translation against true pairs beside a copy and a
 * colour-matched baseline, cycle and within-domain reconstruction, and two independent judges
 * (domain, class) scoring the translations and both baselines on the same images. Images are
 * handled in chunks so host memory stays bounded for any data set size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_classifier.h"
#include "kit_random.h"
#include "probe.h"
#include "unit_eval.h"
#include "unit_eval_internal.h"
#include "unit_train.h"

#define CHUNK 32 /* images per translate / judge round */

unit_eval_cfg unit_eval_default_cfg(void) {
  return (unit_eval_cfg){ .seed = 1, .max_images = 500, .judge_epochs = 5, .judge_images = 4000 };
}

/* Everything one evaluation shares: the model, the data, the judges, scratch for one chunk. */
typedef struct {
  unit_model *m;
  const ut_dataset *ds;
  const unit_split *sp;
  int size, channels;
  int64_t pixels, per;                 /* pixels per channel, floats per image */
  float *in, *truth, *out, *cyc, *rec, *cm; /* CHUNK images each */
  int32_t *judged;                     /* CHUNK predictions */
  image_classifier *domain_clf, *class_clf;
} eval_ctx;

static void part(const unit_eval_cfg *cfg, const char *name) {
  if (cfg->on_part) cfg->on_part(cfg->user, name);
}

/* Image id as float CHW in [0, 1], its centred size x size square when the set's images are
 * larger (the crop the trainer's random crops are centred on). */
static void load_image(const eval_ctx *x, int32_t id, float *dst) {
  int h = ut_dataset_height(x->ds), w = ut_dataset_width(x->ds);
  if (h == x->size && w == x->size) {
    ut_dataset_image_chw(x->ds, id, dst);
    return;
  }
  const uint8_t *px = ut_dataset_image(x->ds, id);
  int oy = (h - x->size) / 2, ox = (w - x->size) / 2, c = x->channels;
  for (int k = 0; k < c; k++)
    for (int y = 0; y < x->size; y++)
      for (int i = 0; i < x->size; i++)
        dst[(int64_t)k * x->pixels + (int64_t)y * x->size + i] =
            (float)px[((size_t)(y + oy) * (size_t)w + (size_t)(i + ox)) * (size_t)c + (size_t)k] * (1.0f / 255.0f);
}

/* Each domain's average per-image channel mean and standard deviation over its training
 * images: the target of the colour-matched baseline. */
static void colour_statistics(eval_ctx *x, unit_eval_report *r) {
  for (int d = 0; d < 2; d++) {
    double mean[3], std[3], sum_mean[3] = { 0 }, sum_std[3] = { 0 };
    for (int32_t i = 0; i < x->sp->n_train[d]; i++) {
      load_image(x, x->sp->train[d][i], x->in);
      unit_eval_channel_stats(x->in, x->channels, x->pixels, mean, std);
      for (int c = 0; c < x->channels; c++) {
        sum_mean[c] += mean[c];
        sum_std[c] += std[c];
      }
    }
    for (int c = 0; c < x->channels; c++) {
      r->colour_mean[d][c] = sum_mean[c] / (double)x->sp->n_train[d];
      r->colour_std[d][c] = sum_std[c] / (double)x->sp->n_train[d];
    }
  }
}

static void judge_report(const image_classifier *clf, unit_eval_judge *j) {
  const image_classifier_report *cr = image_classifier_get_report(clf);
  j->measured = 1;
  j->classes = image_classifier_classes(clf);
  j->n_train = cr->n_train;
  j->n_heldout = cr->n_heldout;
  j->heldout_accuracy = cr->heldout_accuracy;
  j->reliable = isfinite(cr->heldout_accuracy) && cr->heldout_accuracy >= UNIT_EVAL_RELIABLE_ACCURACY;
  if (!isfinite(cr->heldout_accuracy))
    snprintf(j->note, sizeof j->note, "unreliable: no held-out images to score it on");
  else if (!j->reliable)
    snprintf(j->note, sizeof j->note, "unreliable: its held-out accuracy %.3f is below %.2f", cr->heldout_accuracy,
             UNIT_EVAL_RELIABLE_ACCURACY);
}

/* Both judges, trained on the same real training images: up to judge_images / 2 of each
 * domain, a seeded random draw from its training list. */
static ut_status train_judges(eval_ctx *x, ut_runtime *rt, const unit_eval_cfg *cfg, unit_eval_report *r) {
  const unit_split *sp = x->sp;
  int64_t take[2], n = 0;
  for (int d = 0; d < 2; d++) {
    take[d] = sp->n_train[d] < cfg->judge_images / 2 ? sp->n_train[d] : cfg->judge_images / 2;
    n += take[d];
  }
  int64_t *perm = malloc((size_t)(sp->n_train[0] > sp->n_train[1] ? sp->n_train[0] : sp->n_train[1]) * sizeof *perm);
  float *images = malloc((size_t)(n * x->per) * sizeof *images);
  int32_t *domains = malloc((size_t)n * sizeof *domains), *classes = malloc((size_t)n * sizeof *classes);
  ut_status st = perm && images && domains && classes
                     ? UT_OK
                     : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld judge images", (long long)n);
  int64_t k = 0;
  for (int d = 0; st == UT_OK && d < 2; d++) {
    kit_permutation(cfg->seed * 0x9E3779B97F4A7C15ull + 101 + (uint64_t)d, sp->n_train[d], perm);
    for (int64_t i = 0; i < take[d]; i++, k++) {
      int32_t id = sp->train[d][perm[i]];
      load_image(x, id, images + k * x->per);
      domains[k] = d;
      classes[k] = ut_dataset_class(x->ds, id);
    }
  }
  if (st == UT_OK) {
    part(cfg, "domain judge");
    st = image_classifier_train(rt, images, n, x->channels, x->size, x->size, domains, 2, cfg->seed, cfg->judge_epochs,
                                &x->domain_clf);
    if (st == UT_OK) judge_report(x->domain_clf, &r->domain_judge);
    else ut_error_prefix("domain judge");
  }
  if (st == UT_OK && r->n_classes < 2) {
    snprintf(r->class_judge.note, sizeof r->class_judge.note, "the data set has %d class", r->n_classes);
  } else if (st == UT_OK) {
    part(cfg, "class judge");
    st = image_classifier_train(rt, images, n, x->channels, x->size, x->size, classes, r->n_classes, cfg->seed + 1,
                                cfg->judge_epochs, &x->class_clf);
    if (st == UT_OK) {
      judge_report(x->class_clf, &r->class_judge);
      r->class_chance = 1.0 / r->n_classes;
    } else {
      ut_error_prefix("class judge");
    }
  }
  free(perm);
  free(images);
  free(domains);
  free(classes);
  return st;
}

/* How many of the n images the judge assigns `label` (labels[i] when labels is given). */
static ut_status judge_hits(eval_ctx *x, image_classifier *clf, const float *images, int64_t n, int32_t label,
                            const int32_t *labels, int64_t *hits) {
  if (!clf) return UT_OK;
  ut_status st = image_classifier_predict(clf, images, n, x->judged);
  for (int64_t i = 0; st == UT_OK && i < n; i++) *hits += x->judged[i] == (labels ? labels[i] : label);
  return st;
}

/* One direction over up to max_images held-out images of `from`, spread over its list. */
static ut_status measure(eval_ctx *x, const unit_eval_cfg *cfg, int from, unit_eval_report *r) {
  const unit_split *sp = x->sp;
  int to = 1 - from;
  const int32_t *list = sp->test[from];
  int64_t n_list = sp->n_test[from], n = n_list < cfg->max_images ? n_list : cfg->max_images;
  double tr = 0, copy = 0, cm = 0, cycle = 0, rec = 0;
  int64_t paired = 0, dom[4] = { 0 }, cls[4] = { 0 }; /* translation, copy, colour-matched, true image */
  ut_status st = UT_OK;
  for (int64_t at = 0; st == UT_OK && at < n; at += CHUNK) {
    int64_t take = n - at < CHUNK ? n - at : CHUNK;
    int32_t ids[CHUNK], own[CHUNK], truth_class[CHUNK];
    int64_t n_truth = 0;
    for (int64_t i = 0; i < take; i++) {
      ids[i] = list[(at + i) * n_list / n];
      own[i] = ut_dataset_class(x->ds, ids[i]);
      load_image(x, ids[i], x->in + i * x->per);
    }
    st = unit_translate(x->m, x->in, take, from, to, x->out);
    if (st == UT_OK) st = unit_cycle(x->m, x->in, take, from, x->cyc);
    if (st == UT_OK) st = unit_translate(x->m, x->in, take, from, from, x->rec);
    if (st != UT_OK) break;
    for (int64_t i = 0; i < take; i++) {
      const float *in = x->in + i * x->per;
      float *matched = x->cm + i * x->per;
      unit_eval_colour_match(in, x->channels, x->pixels, r->colour_mean[to], r->colour_std[to], matched);
      cycle += unit_eval_l1_sum(x->cyc + i * x->per, in, x->per);
      rec += unit_eval_l1_sum(x->rec + i * x->per, in, x->per);
      int32_t partner = sp->paired ? unit_partner(x->ds, ids[i], sp->domain[to]) : -1;
      if (partner < 0) continue;
      /* The true images gather at the front of x->truth for the judges. */
      float *truth = x->truth + n_truth * x->per;
      load_image(x, partner, truth);
      truth_class[n_truth++] = ut_dataset_class(x->ds, partner);
      tr += unit_eval_l1_sum(x->out + i * x->per, truth, x->per);
      copy += unit_eval_l1_sum(in, truth, x->per);
      cm += unit_eval_l1_sum(matched, truth, x->per);
    }
    const float *sets[3] = { x->out, x->in, x->cm };
    for (int k = 0; st == UT_OK && k < 3; k++) st = judge_hits(x, x->domain_clf, sets[k], take, to, NULL, &dom[k]);
    for (int k = 0; st == UT_OK && k < 3; k++) st = judge_hits(x, x->class_clf, sets[k], take, 0, own, &cls[k]);
    if (st == UT_OK && n_truth > 0) st = judge_hits(x, x->domain_clf, x->truth, n_truth, to, NULL, &dom[3]);
    if (st == UT_OK && n_truth > 0) st = judge_hits(x, x->class_clf, x->truth, n_truth, 0, truth_class, &cls[3]);
    paired += n_truth;
  }
  if (st != UT_OK) return st;
  unit_eval_direction *d = &r->dir[from];
  double pixels = (double)x->per;
  *d = (unit_eval_direction){ .from = from, .to = to, .n_images = n, .n_paired = paired };
  d->translation_l1 = paired ? tr / ((double)paired * pixels) : NAN;
  d->copy_l1 = paired ? copy / ((double)paired * pixels) : NAN;
  d->colour_matched_l1 = paired ? cm / ((double)paired * pixels) : NAN;
  d->cycle_l1 = cycle / ((double)n * pixels);
  d->recon_l1 = rec / ((double)n * pixels);
  double *dom_share[3] = { &d->judged_target_domain, &d->copy_judged_target_domain,
                           &d->colour_matched_judged_target_domain };
  double *cls_share[3] = { &d->class_kept, &d->copy_class_kept, &d->colour_matched_class_kept };
  for (int k = 0; k < 3; k++) {
    *dom_share[k] = x->domain_clf ? (double)dom[k] / (double)n : NAN;
    *cls_share[k] = x->class_clf ? (double)cls[k] / (double)n : NAN;
  }
  d->true_judged_target_domain = x->domain_clf && paired ? (double)dom[3] / (double)paired : NAN;
  d->true_class_kept = x->class_clf && paired ? (double)cls[3] / (double)paired : NAN;
  if (sp->paired && paired == 0 && !r->why_no_translation[0])
    snprintf(r->why_no_translation, sizeof r->why_no_translation,
             "no held-out image of %s has its true translation in %s", r->domain_name[from], r->domain_name[to]);
  return UT_OK;
}

static ut_status evaluate(eval_ctx *x, ut_runtime *rt, const unit_eval_cfg *cfg, unit_eval_report *r) {
  part(cfg, "colour statistics");
  colour_statistics(x, r);
  ut_status st = train_judges(x, rt, cfg, r);
  if (st == UT_OK) {
    part(cfg, "A -> B");
    st = measure(x, cfg, UNIT_A, r);
  }
  if (st == UT_OK) {
    part(cfg, "B -> A");
    st = measure(x, cfg, UNIT_B, r);
  }
  return st;
}

static ut_status check_inputs(const unit_cfg *c, const ut_dataset *ds, const unit_eval_cfg *cfg) {
  if (cfg->max_images < 1 || cfg->judge_epochs < 1 || cfg->judge_images < 4)
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "unit_evaluate: max_images (%lld) and judge_epochs (%d) must be positive and judge_images (%lld) "
                   "at least 4",
                   (long long)cfg->max_images, cfg->judge_epochs, (long long)cfg->judge_images);
  if (ut_dataset_channels(ds) != c->channels || ut_dataset_height(ds) < c->size || ut_dataset_width(ds) < c->size)
    return ut_fail(UT_ERR_MISMATCH,
                   "%s holds %dx%d images with %d channels; the run was trained on %dx%d with %d: evaluate it on "
                   "the data set it was trained on",
                   ut_dataset_path(ds), ut_dataset_width(ds), ut_dataset_height(ds), ut_dataset_channels(ds), c->size,
                   c->size, c->channels);
  return UT_OK;
}

ut_status unit_evaluate(ut_runtime *rt, unit_model *m, const ut_dataset *ds, const unit_eval_cfg *cfg_in,
                        unit_eval_report *r) {
  if (!rt || !m || !ds || !r) return ut_fail(UT_ERR_INVALID_ARGUMENT, "unit_evaluate: NULL argument");
  unit_eval_cfg cfg = cfg_in ? *cfg_in : unit_eval_default_cfg();
  unit_cfg c = *unit_config(m);
  ut_status st = check_inputs(&c, ds, &cfg);
  if (st == UT_OK) st = unit_resolve_domains(ds, &c);
  if (st != UT_OK) return st;
  double t0 = ut_seconds();
  unit_split sp;
  if ((st = unit_run_split(ds, &c, &sp)) != UT_OK) return st;
  for (int d = 0; st == UT_OK && d < 2; d++)
    if (sp.n_train[d] < 1 || sp.n_test[d] < 1)
      st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain '%s' has %d training and %d held-out images; the evaluation needs both",
                   ut_dataset_path(ds), d == 0 ? c.domain_a : c.domain_b, sp.n_train[d], sp.n_test[d]);
  if (st != UT_OK) {
    unit_split_free(&sp);
    return st;
  }

  *r = (unit_eval_report){ .paired = sp.paired, .channels = c.channels, .n_classes = ut_dataset_n_classes(ds),
                           .class_chance = NAN, .judge_epochs = cfg.judge_epochs, .seed = cfg.seed,
                           .max_images = cfg.max_images };
  snprintf(r->domain_name[0], sizeof r->domain_name[0], "%s", c.domain_a);
  snprintf(r->domain_name[1], sizeof r->domain_name[1], "%s", c.domain_b);
  for (int d = 0; d < 2; d++) {
    r->domain_id[d] = sp.domain[d];
    r->n_train[d] = sp.n_train[d];
    r->n_test[d] = sp.n_test[d];
  }
  r->domain_judge.heldout_accuracy = r->class_judge.heldout_accuracy = NAN;
  if (!sp.paired)
    snprintf(r->why_no_translation, sizeof r->why_no_translation,
             "%s: the domains are not paired (an image of every class and content in both), so the true "
             "translations are unknown",
             ut_dataset_path(ds));

  eval_ctx x = { .m = m, .ds = ds, .sp = &sp, .size = c.size, .channels = c.channels,
                 .pixels = (int64_t)c.size * c.size };
  x.per = x.pixels * c.channels;
  float **bufs[6] = { &x.in, &x.truth, &x.out, &x.cyc, &x.rec, &x.cm };
  for (int i = 0; i < 6; i++)
    if (!(*bufs[i] = malloc((size_t)(CHUNK * x.per) * sizeof(float)))) st = UT_ERR_HOST_MEMORY;
  if (!(x.judged = malloc(CHUNK * sizeof(int32_t)))) st = UT_ERR_HOST_MEMORY;
  if (st != UT_OK) st = ut_fail(st, "out of host memory for the evaluation's images");
  if (st == UT_OK) st = evaluate(&x, rt, &cfg, r);
  r->seconds = ut_seconds() - t0;
  image_classifier_free(x.domain_clf);
  image_classifier_free(x.class_clf);
  for (int i = 0; i < 6; i++) free(*bufs[i]);
  free(x.judged);
  unit_split_free(&sp);
  return st;
}
