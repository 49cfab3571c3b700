/* UNIT's evaluation report as JSON and as the summary `untangle eval` prints (unit_eval.h).
 * Figures that were not measured are null in the JSON and "-" in the summary. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>

#include "unit_eval.h"

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *string_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *direction(const unit_eval_direction *d) {
  json_t *o = json_object();
  json_object_set_new(o, "images", json_integer((json_int_t)d->n_images));
  json_object_set_new(o, "paired_images", json_integer((json_int_t)d->n_paired));
  json_object_set_new(o, "translation_l1", number(d->translation_l1));
  json_object_set_new(o, "copy_l1", number(d->copy_l1));
  json_object_set_new(o, "colour_matched_l1", number(d->colour_matched_l1));
  json_object_set_new(o, "cycle_l1", number(d->cycle_l1));
  json_object_set_new(o, "reconstruction_l1", number(d->recon_l1));
  json_object_set_new(o, "judged_target_domain", number(d->judged_target_domain));
  json_object_set_new(o, "copy_judged_target_domain", number(d->copy_judged_target_domain));
  json_object_set_new(o, "colour_matched_judged_target_domain", number(d->colour_matched_judged_target_domain));
  json_object_set_new(o, "true_image_judged_target_domain", number(d->true_judged_target_domain));
  json_object_set_new(o, "class_kept", number(d->class_kept));
  json_object_set_new(o, "copy_class_kept", number(d->copy_class_kept));
  json_object_set_new(o, "colour_matched_class_kept", number(d->colour_matched_class_kept));
  json_object_set_new(o, "true_image_class_kept", number(d->true_class_kept));
  return o;
}

static json_t *judge(const unit_eval_judge *j, int epochs) {
  json_t *o = json_object();
  json_object_set_new(o, "measured", json_boolean(j->measured));
  if (j->measured) {
    json_object_set_new(o, "heldout_accuracy", number(j->heldout_accuracy));
    json_object_set_new(o, "reliable", json_boolean(j->reliable));
    json_object_set_new(o, "reliable_from", json_real(UNIT_EVAL_RELIABLE_ACCURACY));
    json_object_set_new(o, "classes", json_integer(j->classes));
    json_object_set_new(o, "train_images", json_integer((json_int_t)j->n_train));
    json_object_set_new(o, "held_out_images", json_integer((json_int_t)j->n_heldout));
    json_object_set_new(o, "epochs", json_integer(epochs));
  }
  if (j->note[0]) json_object_set_new(o, j->measured ? "warning" : "not_measured", json_string(j->note));
  return o;
}

static json_t *stats(const double *v, int channels) {
  json_t *a = json_array();
  for (int c = 0; c < channels; c++) json_array_append_new(a, number(v[c]));
  return a;
}

/* A seed as a JSON integer where it fits one, else as its decimal text. */
static json_t *seed_value(uint64_t seed) {
  if (seed <= (uint64_t)INT64_MAX) return json_integer((json_int_t)seed);
  char text[24];
  snprintf(text, sizeof text, "%llu", (unsigned long long)seed);
  return json_string(text);
}

char *unit_eval_json(const unit_eval_report *r, const char *run_dir, const char *data_path, const char *device) {
  json_t *root = json_object();
  if (!root) return NULL;
  json_object_set_new(root, "model", json_string("unit"));
  json_object_set_new(root, "run", string_or_null(run_dir));
  json_object_set_new(root, "data", string_or_null(data_path));
  json_object_set_new(root, "device", string_or_null(device));
  json_object_set_new(root, "seed", seed_value(r->seed));
  json_object_set_new(root, "max_images", json_integer((json_int_t)r->max_images));
  json_object_set_new(root, "domains", json_pack("{ss ss}", "a", r->domain_name[0], "b", r->domain_name[1]));
  json_object_set_new(root, "split",
                      json_pack("{sb s{si sI sI} s{si sI sI}}", "paired", r->paired, "a", "domain_id", r->domain_id[0],
                                "train_images", (json_int_t)r->n_train[0], "held_out_images", (json_int_t)r->n_test[0],
                                "b", "domain_id", r->domain_id[1], "train_images", (json_int_t)r->n_train[1],
                                "held_out_images", (json_int_t)r->n_test[1]));
  if (r->why_no_translation[0])
    json_object_set_new(root, "translation_not_measured", json_string(r->why_no_translation));
  json_object_set_new(root, "a_to_b", direction(&r->dir[0]));
  json_object_set_new(root, "b_to_a", direction(&r->dir[1]));
  json_object_set_new(root, "colour_statistics",
                      json_pack("{s{so so} s{so so}}", "a", "mean", stats(r->colour_mean[0], r->channels), "std",
                                stats(r->colour_std[0], r->channels), "b", "mean", stats(r->colour_mean[1], r->channels),
                                "std", stats(r->colour_std[1], r->channels)));
  json_object_set_new(root, "domain_judge", judge(&r->domain_judge, r->judge_epochs));
  json_t *cj = judge(&r->class_judge, r->judge_epochs);
  if (cj && r->class_judge.measured) json_object_set_new(cj, "chance", number(r->class_chance));
  json_object_set_new(root, "class_judge", cj);
  json_object_set_new(root, "seconds", json_real(r->seconds));
  char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
  json_decref(root);
  return text;
}

/* ---- the summary ------------------------------------------------------------------------------ */

static void cell(FILE *out, double v) {
  if (isfinite(v)) fprintf(out, "  %8.4f", v);
  else fprintf(out, "  %8s", "-");
}

static void row(FILE *out, const char *name, double ab, double ba) {
  fprintf(out, "  %-30s", name);
  cell(out, ab);
  cell(out, ba);
}

static void judge_note(FILE *out, const unit_eval_judge *j) {
  if (!isfinite(j->heldout_accuracy)) fprintf(out, "  (judge's held-out accuracy unknown: UNRELIABLE)\n");
  else
    fprintf(out, "  (judge's held-out accuracy %.3f%s)\n", j->heldout_accuracy, j->reliable ? "" : ": UNRELIABLE");
}

static void judged_rows(FILE *out, const unit_eval_judge *j, const char *const names[4], const double ab[4],
                        const double ba[4]) {
  for (int k = 0; k < 4; k++) {
    if (k == 3 && !isfinite(ab[k]) && !isfinite(ba[k])) break; /* no true images without pairs */
    row(out, names[k], ab[k], ba[k]);
    judge_note(out, j);
  }
}

void unit_eval_print(FILE *out, const unit_eval_report *r) {
  const unit_eval_direction *ab = &r->dir[0], *ba = &r->dir[1];
  fprintf(out, "UNIT evaluation: domain A '%s' (%lld training, %lld held-out images), domain B '%s' (%lld, %lld);\n",
          r->domain_name[0], (long long)r->n_train[0], (long long)r->n_test[0], r->domain_name[1],
          (long long)r->n_train[1], (long long)r->n_test[1]);
  fprintf(out, "measured on %lld held-out images A -> B and %lld B -> A (seed %llu, %.1f s)\n",
          (long long)ab->n_images, (long long)ba->n_images, (unsigned long long)r->seed, r->seconds);
  fprintf(out, "  %-30s  %8s  %8s\n", "", "A -> B", "B -> A");

  fprintf(out, "translation against the true paired image (mean pixel L1, lower is better):\n");
  if (r->why_no_translation[0] && ab->n_paired + ba->n_paired == 0) {
    fprintf(out, "  not measured: %s\n", r->why_no_translation);
  } else {
    row(out, "model", ab->translation_l1, ba->translation_l1);
    fprintf(out, "  (%lld and %lld pairs)\n", (long long)ab->n_paired, (long long)ba->n_paired);
    row(out, "baseline: copy of the input", ab->copy_l1, ba->copy_l1);
    fprintf(out, "\n");
    row(out, "baseline: colour-matched input", ab->colour_matched_l1, ba->colour_matched_l1);
    fprintf(out, "\n");
    if (r->why_no_translation[0]) fprintf(out, "  partly measured: %s\n", r->why_no_translation);
  }
  fprintf(out, "reconstruction of the input (mean pixel L1, lower is better):\n");
  row(out, "cycle (to the other and back)", ab->cycle_l1, ba->cycle_l1);
  fprintf(out, "\n");
  row(out, "within the domain", ab->recon_l1, ba->recon_l1);
  fprintf(out, "\n");

  static const char *const names[4] = { "model", "baseline: copy of the input", "baseline: colour-matched input",
                                        "reference: the true image" };
  fprintf(out, "domain judge: share judged as the target domain (higher is better; chance 0.5):\n");
  if (r->domain_judge.measured) {
    double a[4] = { ab->judged_target_domain, ab->copy_judged_target_domain, ab->colour_matched_judged_target_domain,
                    ab->true_judged_target_domain };
    double b[4] = { ba->judged_target_domain, ba->copy_judged_target_domain, ba->colour_matched_judged_target_domain,
                    ba->true_judged_target_domain };
    judged_rows(out, &r->domain_judge, names, a, b);
    if (!r->domain_judge.reliable) fprintf(out, "  WARNING: the domain judge is %s\n", r->domain_judge.note);
  } else {
    fprintf(out, "  not measured: %s\n", r->domain_judge.note);
  }
  if (r->class_judge.measured) {
    fprintf(out, "class judge: share in which the input's class is still recognised (higher is better; chance %.3f):\n",
            r->class_chance);
    double a[4] = { ab->class_kept, ab->copy_class_kept, ab->colour_matched_class_kept, ab->true_class_kept };
    double b[4] = { ba->class_kept, ba->copy_class_kept, ba->colour_matched_class_kept, ba->true_class_kept };
    judged_rows(out, &r->class_judge, names, a, b);
    if (!r->class_judge.reliable) fprintf(out, "  WARNING: the class judge is %s\n", r->class_judge.note);
  } else {
    fprintf(out, "class judge: not measured: %s\n", r->class_judge.note);
  }
}
