/* LORD's evaluation report as JSON (lord_eval.h). Numbers that were not measured are null. */
#include <jansson.h>
#include <math.h>

#include "lord_eval.h"

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *transfer(const lord_eval_transfer *t, const char *count_name) {
  if (t->pairs == 0) return json_null();
  return json_pack("{sI so so}", count_name, (json_int_t)t->pairs, "l1", number(t->l1), "vgg_distance", number(t->vgg));
}

static json_t *probe(const lord_eval_probe *p) {
  if (!p->measured) return json_null();
  const probe_result *r = &p->result;
  return json_pack("{so so so sI sI si}", "logistic_regression", number(r->linear_accuracy), "mlp",
                   number(r->mlp_accuracy), "chance", number(r->chance), "train_codes", (json_int_t)r->n_train,
                   "test_codes", (json_int_t)r->n_test, "classes", r->n_classes);
}

char *lord_eval_json(const lord_eval_report *r, const char *run_dir, const char *data_path, const char *device) {
  json_t *transfer_obj = json_pack("{so so}", "unseen_classes", transfer(&r->transfer_unseen, "pairs"), "seen_classes",
                                   transfer(&r->transfer_seen, "pairs"));
  if (transfer_obj && r->why_no_transfer[0])
    json_object_set_new(transfer_obj, "not_measured", json_string(r->why_no_transfer));
  json_t *probes = json_pack("{s{so so}}", r->stage >= 2 ? "encoders" : "embeddings", "class_from_content",
                             probe(&r->class_from_content), "content_from_class", probe(&r->content_from_class));
  if (probes && r->stage >= 2)
    json_object_set_new(probes, "embeddings",
                        json_pack("{so so}", "class_from_content", probe(&r->class_from_content_embedded),
                                  "content_from_class", probe(&r->content_from_class_embedded)));
  json_t *root = json_pack(
      "{ss ss ss si s{si sI sI} so so s{so so} s{sI so so so so} sf}", "run", run_dir, "data", data_path, "device",
      device, "stage", r->stage, "split", "held_out_classes", r->n_test_classes, "train_images", (json_int_t)r->n_train,
      "held_out_class_images", (json_int_t)r->n_unseen, "content_transfer", transfer_obj, "probes", probes,
      "reconstruction", "train_images", transfer(&r->recon_train, "images"), "held_out_class_images",
      transfer(&r->recon_unseen, "images"), "class_transfer", "translations", (json_int_t)r->judged,
      "judged_target_class", number(r->judged_target), "judged_content_class", number(r->judged_content_class),
      "chance", number(r->judge_chance), "judge_heldout_accuracy", number(r->judge_heldout_accuracy), "seconds",
      r->seconds);
  char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
  json_decref(root);
  return text;
}
