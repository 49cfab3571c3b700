/* CMI-VAE's evaluation report as JSON and as the summary `untangle eval` prints
 * (cmivae_eval.h). Figures not measured for a feature are null in the JSON and "-" in the
 * summary. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>

#include "cmivae_eval.h"

/* The bars of issue 15's closing note. */
#define HUE_ERROR_RATIO 0.2  /* fused hue error at most a fifth of the ablation's */
#define CLASS_KEPT 0.8       /* the z1 source's class kept in at least this share */
#define LEAKAGE_RATIO 1.5    /* hue bins from z1 within this multiple of chance */

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *probe(const probe_result *p) {
  if (p->n_classes < 2) return json_null();
  return json_pack("{so so so si sI sI}", "linear_accuracy", number(p->linear_accuracy), "mlp_accuracy",
                   number(p->mlp_accuracy), "chance", number(p->chance), "classes", p->n_classes, "train",
                   (json_int_t)p->n_train, "test", (json_int_t)p->n_test);
}

static json_t *run_json(const cmivae_eval_run *r, int hue, double judge_accuracy) {
  json_t *o = json_object();
  json_object_set_new(o, "pairs", json_integer((json_int_t)r->n_pairs));
  json_object_set_new(o, "fused_hue_error_deg", number(r->fused_hue_error));
  json_object_set_new(o, "fused_hue_error_median_deg", number(r->fused_hue_error_median));
  json_object_set_new(o, "copy_hue_error_deg", number(r->copy_hue_error));
  json_object_set_new(o, "reconstruction_hue_error_deg", number(r->recon_hue_error));
  json_object_set_new(o, "fused_class_error", number(r->fused_class_error));
  json_object_set_new(o, "copy_class_error", number(r->copy_class_error));
  json_object_set_new(o, "class_kept", number(r->class_kept));
  json_object_set_new(o, "copy_class_kept", number(r->copy_class_kept));
  json_object_set_new(o, "reconstruction_class_kept", number(r->recon_class_kept));
  json_object_set_new(o, "judge_heldout_accuracy", number(judge_accuracy)); /* beside what it judged */
  json_object_set_new(o, hue ? "hue_bins_from_z1" : "class_from_z1", probe(&r->z1_feature));
  json_object_set_new(o, hue ? "hue_bins_from_z2" : "class_from_z2", probe(&r->z2_feature));
  if (hue) json_object_set_new(o, "class_from_z1", probe(&r->z1_class));
  return o;
}

/* The better of the two probes: leakage is what either can read. */
static double best(const probe_result *p) { return p->mlp_accuracy > p->linear_accuracy ? p->mlp_accuracy : p->linear_accuracy; }

char *cmivae_eval_json(const cmivae_eval_report *r, const char *run, const char *data, const char *baseline_run,
                       const char *device) {
  int hue = r->feature == CMIVAE_FEATURE_HUE;
  json_t *root = json_object();
  if (!root) return NULL;
  json_object_set_new(root, "model", json_string("cmivae"));
  json_object_set_new(root, "run", json_string(run));
  json_object_set_new(root, "data", json_string(data));
  json_object_set_new(root, "device", device ? json_string(device) : json_null());
  json_object_set_new(root, "feature", json_string(cmivae_feature_name(r->feature)));
  json_object_set_new(root, "class_judge",
                      json_pack("{ss so sI sI si sI ss ss}", "images",
                                r->judge_data ? r->judge_data : "the run's training images", "heldout_accuracy", number(r->judge_heldout_accuracy), "train_images",
                                (json_int_t)r->judge_train_images, "heldout_images", (json_int_t)r->judge_heldout_images,
                                "epochs", r->judge_epochs, "width", (json_int_t)r->judge_width, "head",
                                r->judge_flatten ? "flat" : "avg", "reads",
                                "grey images (the painted grey level)"));
  json_object_set_new(root, "result", run_json(&r->run, hue, r->judge_heldout_accuracy));
  if (r->has_baseline) {
    json_object_set_new(root, "baseline_run", json_string(baseline_run ? baseline_run : ""));
    json_object_set_new(root, "baseline", run_json(&r->baseline, hue, r->judge_heldout_accuracy));
  }
  if (hue) {
    json_t *claims = json_object();
    if (r->has_baseline) {
      double ratio = r->run.fused_hue_error / r->baseline.fused_hue_error;
      json_object_set_new(claims, "hue_error_ratio_to_baseline", number(ratio));
      json_object_set_new(claims, "hue_error_at_most_a_fifth_of_baseline", json_boolean(ratio <= HUE_ERROR_RATIO));
    }
    json_object_set_new(claims, "class_kept", number(r->run.class_kept));
    json_object_set_new(claims, "class_kept_by_the_copy", number(r->run.copy_class_kept));
    json_object_set_new(claims, "class_judge_heldout_accuracy", number(r->judge_heldout_accuracy));
    json_object_set_new(claims, "class_kept_at_least_0.8", json_boolean(r->run.class_kept >= CLASS_KEPT));
    double leak = best(&r->run.z1_feature) / r->run.z1_feature.chance;
    json_object_set_new(claims, "hue_bins_from_z1_over_chance", number(leak));
    json_object_set_new(claims, "hue_bins_from_z1_within_1.5x_chance", json_boolean(leak <= LEAKAGE_RATIO));
    json_object_set_new(root, "claims", claims);
  }
  char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
  json_decref(root);
  return text;
}

static void cell(FILE *out, double v) {
  if (isfinite(v)) fprintf(out, "  %10.3f", v);
  else fprintf(out, "  %10s", "-");
}

static void row(FILE *out, const cmivae_eval_report *r, const char *name, double a, double b) {
  fprintf(out, "  %-36s", name);
  cell(out, a);
  if (r->has_baseline) cell(out, b);
  fprintf(out, "\n");
}

void cmivae_eval_print(FILE *out, const cmivae_eval_report *r) {
  const cmivae_eval_run *a = &r->run, *b = &r->baseline;
  int hue = r->feature == CMIVAE_FEATURE_HUE;
  fprintf(out, "  %-36s  %10s%s\n", "", "run", r->has_baseline ? "    baseline" : "");
  if (hue) {
    row(out, r, "fused hue error (deg, mean)", a->fused_hue_error, b->fused_hue_error);
    row(out, r, "fused hue error (deg, median)", a->fused_hue_error_median, b->fused_hue_error_median);
    row(out, r, "copy of the z1 source (deg)", a->copy_hue_error, b->copy_hue_error);
    row(out, r, "reconstruction hue error (deg)", a->recon_hue_error, b->recon_hue_error);
  } else {
    row(out, r, "fused not judged x~'s class", a->fused_class_error, b->fused_class_error);
    row(out, r, "copy not judged x~'s class", a->copy_class_error, b->copy_class_error);
    fprintf(out, "  (judged by the class judge below)\n");
  }
  /* Judged figures name the judge's own accuracy on held-out real images. */
  char kept[64], copy[64], recon[64];
  snprintf(kept, sizeof kept, "class of z1 source kept (judge %.3f)", r->judge_heldout_accuracy);
  snprintf(copy, sizeof copy, "class kept by the copy (judge %.3f)", r->judge_heldout_accuracy);
  snprintf(recon, sizeof recon, "kept by reconstruction (judge %.3f)", r->judge_heldout_accuracy);
  row(out, r, kept, a->class_kept, b->class_kept);
  row(out, r, copy, a->copy_class_kept, b->copy_class_kept);
  row(out, r, recon, a->recon_class_kept, b->recon_class_kept);
  row(out, r, hue ? "hue bins from z1 (linear)" : "class from z1 (linear)", a->z1_feature.linear_accuracy,
      b->z1_feature.linear_accuracy);
  row(out, r, hue ? "hue bins from z1 (MLP)" : "class from z1 (MLP)", a->z1_feature.mlp_accuracy, b->z1_feature.mlp_accuracy);
  row(out, r, "  chance", a->z1_feature.chance, b->z1_feature.chance);
  row(out, r, hue ? "hue bins from z2 (MLP)" : "class from z2 (MLP)", a->z2_feature.mlp_accuracy, b->z2_feature.mlp_accuracy);
  if (hue) row(out, r, "class from z1 (MLP)", a->z1_class.mlp_accuracy, b->z1_class.mlp_accuracy);
  fprintf(out, "  (%lld pairs; class judge: %.3f of %lld held-out grey real images, trained %d epochs on %lld, width %lld, head %s%s%s)\n",
          (long long)a->n_pairs, r->judge_heldout_accuracy, (long long)r->judge_heldout_images, r->judge_epochs,
          (long long)r->judge_train_images, (long long)r->judge_width, r->judge_flatten ? "flat" : "avg",
          r->judge_data ? ", images of " : "", r->judge_data ? r->judge_data : "");
}
