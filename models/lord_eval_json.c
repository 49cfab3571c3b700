/* LORD's evaluation report as JSON (lord_eval.h). Numbers that were not measured are null;
 * stages are keyed "stage1" (embeddings) and "stage2" (encoders), present when measured; an
 * other run scored on the same pairs (--baseline) is "baseline_run" beside them. */
#include <jansson.h>
#include <math.h>

#include "lord_eval.h"

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *errors(const lord_eval_transfer *t) {
  return json_pack("{so so so so}", "l1", number(t->l1), "foreground_l1", number(t->foreground_l1), "foreground_colour",
                   number(t->colour), "vgg_distance", number(t->vgg));
}

static json_t *reconstruction(const lord_eval_transfer *t) {
  if (t->pairs == 0) return json_null();
  return json_pack("{sI so}", "images", (json_int_t)t->pairs, "l1", number(t->l1));
}

/* One pair set: its size, each measured stage's figures and the baselines on the same pairs. */
static json_t *transfer(const lord_eval_report *r, int unseen) {
  const lord_eval_transfer *base = unseen ? r->baseline_unseen : r->baseline_seen;
  if (base[0].pairs == 0) return json_null();
  json_t *o = json_pack("{sI}", "pairs", (json_int_t)base[0].pairs);
  for (int s = 0; o && s < 2; s++) {
    const lord_eval_transfer *t = unseen ? &r->stages[s].transfer_unseen : &r->stages[s].transfer_seen;
    if (r->stages[s].measured && t->pairs > 0) json_object_set_new(o, s ? "stage2" : "stage1", errors(t));
  }
  json_t *b = json_object();
  for (int k = 0; b && k < LORD_BASELINE_COUNT; k++)
    json_object_set_new(b, lord_eval_baseline_name(k), base[k].pairs ? errors(&base[k]) : json_null());
  if (o) json_object_set_new(o, "baselines", b);
  const lord_eval_transfer *run = unseen ? &r->baseline_run.transfer_unseen : &r->baseline_run.transfer_seen;
  if (o && r->baseline_run.measured) json_object_set_new(o, "baseline_run", run->pairs ? errors(run) : json_null());
  return o;
}

/* leakage: the best is chance; informativeness: the best is high. */
static json_t *probe(const lord_eval_probe *p, const char *measures) {
  if (p->degenerate) return json_pack("{ss ss}", "measures", measures, "degenerate", p->degenerate);
  if (!p->measured) return json_null();
  const probe_result *r = &p->result;
  return json_pack("{ss ss so so so sI sI si}", "measures", measures, "best",
                   measures[0] == 'l' ? "chance" : "high", "logistic_regression", number(r->linear_accuracy), "mlp",
                   number(r->mlp_accuracy), "chance", number(r->chance), "train_codes", (json_int_t)r->n_train,
                   "test_codes", (json_int_t)r->n_test, "classes", r->n_classes);
}

static json_t *per_stage(const lord_eval_report *r, int part) {
  json_t *o = json_object();
  for (int s = 0; o && s < 2; s++) {
    const lord_eval_stage_report *st = &r->stages[s];
    if (!st->measured) continue;
    json_t *v = NULL;
    if (part == 0)
      v = json_pack("{ss so so so so}", "codes", s ? "encoders" : "embeddings", "class_from_content",
                    probe(&st->class_from_content, "leakage"), "content_from_content",
                    probe(&st->content_from_content, "informativeness"), "content_from_class",
                    probe(&st->content_from_class, "leakage"), "class_from_class",
                    probe(&st->class_from_class, "informativeness"));
    else if (part == 1)
      v = json_pack("{so so}", "train_images", reconstruction(&st->recon_train), "held_out_class_images",
                    reconstruction(&st->recon_unseen));
    else
      v = json_pack("{so so}", "judged_target_class", number(st->judged_target), "judged_content_class",
                    number(st->judged_content_class));
    json_object_set_new(o, s ? "stage2" : "stage1", v);
  }
  return o;
}

char *lord_eval_json(const lord_eval_report *r, const char *run_dir, const char *baseline_dir, const char *data_path,
                     const char *device) {
  json_t *transfer_obj = json_pack("{so so}", "unseen_classes", transfer(r, 1), "seen_classes", transfer(r, 0));
  if (transfer_obj && r->why_no_transfer[0])
    json_object_set_new(transfer_obj, "not_measured", json_string(r->why_no_transfer));
  if (transfer_obj && r->why_no_foreground[0])
    json_object_set_new(transfer_obj, "foreground_not_measured", json_string(r->why_no_foreground));
  json_t *judge = json_pack("{so sI sI}", "heldout_accuracy", number(r->judge_heldout_accuracy), "train_images",
                            (json_int_t)r->judge_train_images, "heldout_images", (json_int_t)r->judge_heldout_images);
  json_t *class_transfer = per_stage(r, 2);
  if (class_transfer) {
    json_object_set_new(class_transfer, "translations", json_integer(r->judged));
    json_object_set_new(class_transfer, "chance", number(r->judge_chance));
    json_object_set_new(class_transfer, "judge_heldout_accuracy", number(r->judge_heldout_accuracy));
  }
  if (class_transfer && r->baseline_run.measured)
    json_object_set_new(class_transfer, "baseline_run",
                        json_pack("{so so}", "judged_target_class", number(r->baseline_run.judged_target),
                                  "judged_content_class", number(r->baseline_run.judged_content_class)));
  json_t *root = json_pack("{ss ss ss si s{si sI sI} so so so so so sf}", "run", run_dir, "data", data_path, "device",
                           device, "stage", r->stage, "split", "held_out_classes", r->n_test_classes, "train_images",
                           (json_int_t)r->n_train, "held_out_class_images", (json_int_t)r->n_unseen, "judge", judge,
                           "content_transfer", transfer_obj, "probes", per_stage(r, 0), "reconstruction",
                           per_stage(r, 1), "class_transfer", class_transfer, "seconds", r->seconds);
  if (root && r->baseline_run.measured)
    json_object_set_new(root, "baseline_run", json_pack("{ss si}", "run", baseline_dir ? baseline_dir : "", "stage",
                                                         r->baseline_run.stage));
  char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
  json_decref(root);
  return text;
}
