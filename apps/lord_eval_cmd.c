/* `untangle eval` of a LORD run: its evaluation (models/lord_eval.h), printed as a summary and
 * written as JSON into the run folder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "lord_eval.h"
#include "lord_train.h"

#define CMD "eval"

void lord_help_eval(FILE *out) {
  fprintf(out,
          "Usage: untangle eval RUN --data FILE [OPTIONS]\n"
          "\n"
          "Measures how well the LORD run in RUN separates class from content, on FILE, the data set\n"
          "it was trained on (with the run's held-out classes), and writes RUN/eval.json. A run that\n"
          "trained both stages is measured twice, side by side: with its stage-1 embeddings and with\n"
          "its stage-2 encoders (both through the final generator).\n"
          "  judge             first, a CNN is trained here on the real images (a fifth of each class\n"
          "                    held out); it must recognise at least 0.9 of the held-out images, or\n"
          "                    eval stops, since a weak judge says nothing about translations\n"
          "  content transfer  the content of a training image drawn in another image's class (of\n"
          "                    another pose, never the true image itself), against the true image of\n"
          "                    that class in that pose (needs content labels for every class and pose,\n"
          "                    as 'data synth' sets have), for held-out classes (one-shot, stage 2)\n"
          "                    and training classes. Rows: mean pixel L1 in [0, 1]; foreground L1, on\n"
          "                    the object's pixels only (re-rendered masks, rendered sets only); colour\n"
          "                    error, the difference of the object's mean colour; with --vgg LORD's\n"
          "                    VGG distance. Columns: the stages, then baselines on the same pairs:\n"
          "                    class-agn (the mean training image in that pose), content-agn (the\n"
          "                    mean image of that class), copy (the content image itself) and\n"
          "                    background (the background colour alone). A translation is worth\n"
          "                    something only where it beats every baseline\n"
          "  probes            labels predicted from codes by logistic regression and an MLP (each\n"
          "                    label 80%% train, 20%% test): leakage (class from content codes,\n"
          "                    content from class codes; near chance is good) beside informativeness\n"
          "                    (content from content codes, class from class codes; high is good).\n"
          "                    Stage-1 class codes are one per class, so their probes are degenerate\n"
          "                    and not measured\n"
          "  reconstruction    mean pixel L1 of training images and of held-out classes' images\n"
          "  class transfer    translations into a random other class, judged: the share judged as\n"
          "                    that class (high is good) and as the content image's own class (low\n"
          "                    is good), with the judge's held-out accuracy\n"
          "\n"
          "Options:\n"
          "      --data FILE          the data set the run was trained on (required)\n"
          "  -o, --out JSON           write the report here instead of RUN/eval.json\n"
          "  -d, --device D           an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "                           (default: $UNTANGLE_DEVICE, else best)\n"
          "      --vgg FILE           torchvision vgg16 weights (safetensors) for the VGG distance\n"
          "      --pairs N            translations per transfer measure (default 1000)\n"
          "      --probe-samples N    codes per probe at most (default 10000)\n"
          "      --judge-images N     real images that train and test the judge at most (default 10000)\n"
          "      --judge-epochs N     the judge's training epochs, at least 600 steps (default 10)\n"
          "      --judge-min-accuracy A  the judge's held-out accuracy needed to judge (default 0.9)\n"
          "      --baseline RUN2      also score run RUN2 (its last stage) on the same pairs and judged\n"
          "                           translations, as the column 'RUN2': the plain autoencoder trained\n"
          "                           with the same budget, say ('train lord --content-noise 0\n"
          "                           --content-decay 0'); it needs the same data, preset, --seed and\n"
          "                           --test-classes\n"
          "  -s, --seed S             seed of every random choice (default 1)\n"
          "  -h, --help               show this help\n");
}

typedef struct {
  const char *run, *data, *out, *device, *vgg, *baseline;
  lord_eval_cfg cfg;
} options;

enum { OPT_DATA = 256, OPT_VGG, OPT_PAIRS, OPT_PROBE, OPT_JUDGE_IMAGES, OPT_JUDGE_EPOCHS, OPT_JUDGE_MIN, OPT_BASELINE };

static int parse_options(int argc, char **argv, options *o, int *done) {
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },
    { "out", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },
    { "vgg", required_argument, NULL, OPT_VGG },
    { "pairs", required_argument, NULL, OPT_PAIRS },
    { "probe-samples", required_argument, NULL, OPT_PROBE },
    { "judge-images", required_argument, NULL, OPT_JUDGE_IMAGES },
    { "judge-epochs", required_argument, NULL, OPT_JUDGE_EPOCHS },
    { "judge-min-accuracy", required_argument, NULL, OPT_JUDGE_MIN },
    { "baseline", required_argument, NULL, OPT_BASELINE },
    { "seed", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  *o = (options){ .device = cli_default_device(), .cfg = lord_eval_default_cfg() };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  int64_t epochs = o->cfg.classifier_epochs;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:s:h", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_DATA: o->data = optarg; break;
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case OPT_VGG: o->vgg = optarg; break;
    case OPT_PAIRS: rc = cli_parse_i64(CMD, "--pairs", optarg, 1, 1 << 24, &o->cfg.pairs); break;
    case OPT_PROBE: rc = cli_parse_i64(CMD, "--probe-samples", optarg, 10, 1 << 24, &o->cfg.probe_samples); break;
    case OPT_JUDGE_IMAGES:
      rc = cli_parse_i64(CMD, "--judge-images", optarg, 10, 1 << 24, &o->cfg.classifier_images);
      break;
    case OPT_JUDGE_EPOCHS: rc = cli_parse_i64(CMD, "--judge-epochs", optarg, 1, 1000, &epochs); break;
    case OPT_JUDGE_MIN:
      rc = cli_parse_double(CMD, "--judge-min-accuracy", optarg, 0, 1, &o->cfg.judge_min_accuracy);
      break;
    case OPT_BASELINE: o->baseline = optarg; break;
    case 's': rc = cli_parse_u64(CMD, "--seed", optarg, UINT64_MAX, &o->cfg.seed); break;
    case 'h': lord_help_eval(stdout); return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  o->cfg.classifier_epochs = (int)epochs;
  o->cfg.vgg_weights = o->vgg;
  if ((rc = cli_eval_operands(CMD, argc, argv, o->data, &o->run)) != CLI_OK) return rc;
  *done = 0;
  return CLI_OK;
}

/* A table cell: the value, or "-" where it was not measured. */
static void cell(double v) {
  if (isfinite(v)) printf(" %10.4f", v);
  else printf(" %10s", "-");
}

/* The last folder name of a path, at most 10 characters: a column header. */
static void column_name(const char *path, char *name, size_t size) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  size_t start = n;
  while (start > 0 && path[start - 1] != '/') start--;
  snprintf(name, size, "%.*s", (int)(n - start < 10 ? n - start : 10), path + start);
}

/* One pair set's figures: a row per measure, a column per stage measured, for the baseline
 * run (named `other`) when there is one, and per baseline. */
static void print_transfer(const lord_eval_report *r, int unseen, const char *other) {
  const lord_eval_transfer *base = unseen ? r->baseline_unseen : r->baseline_seen;
  const lord_eval_transfer *run = unseen ? &r->baseline_run.transfer_unseen : &r->baseline_run.transfer_seen;
  if (!r->baseline_run.measured || run->pairs == 0) run = NULL;
  const lord_eval_transfer *stage[2];
  for (int s = 0; s < 2; s++) {
    stage[s] = unseen ? &r->stages[s].transfer_unseen : &r->stages[s].transfer_seen;
    if (!r->stages[s].measured || stage[s]->pairs == 0) stage[s] = NULL;
  }
  printf("  %s (%lld pairs)\n", unseen ? "held-out classes, one-shot" : "training classes", (long long)base[0].pairs);
  printf("    %-18s", "");
  for (int s = 0; s < 2; s++)
    if (stage[s]) printf(" %10s", s ? "stage 2" : "stage 1");
  if (run) printf(" %10s", other);
  printf(" %10s %10s %10s %10s\n", "class-agn", "content-agn", "copy", "background");
  static const char *const rows[] = { "L1", "foreground L1", "colour error", "VGG distance" };
  for (int row = 0; row < 4; row++) {
    if (row == 3 && !(stage[1] ? isfinite(stage[1]->vgg) : stage[0] && isfinite(stage[0]->vgg))) continue;
    printf("    %-18s", rows[row]);
    for (int s = 0; s < 2; s++) {
      if (!stage[s]) continue;
      cell(row == 0 ? stage[s]->l1 : row == 1 ? stage[s]->foreground_l1 : row == 2 ? stage[s]->colour : stage[s]->vgg);
    }
    if (run) cell(row == 0 ? run->l1 : row == 1 ? run->foreground_l1 : row == 2 ? run->colour : run->vgg);
    for (int b = 0; b < LORD_BASELINE_COUNT; b++)
      cell(row == 0 ? base[b].l1 : row == 1 ? base[b].foreground_l1 : row == 2 ? base[b].colour : NAN);
    printf("\n");
  }
}

enum { CLASS_FROM_CONTENT, CONTENT_FROM_CONTENT, CONTENT_FROM_CLASS, CLASS_FROM_CLASS };

static const lord_eval_probe *probe_of(const lord_eval_stage_report *s, int which) {
  switch (which) {
  case CLASS_FROM_CONTENT: return &s->class_from_content;
  case CONTENT_FROM_CONTENT: return &s->content_from_content;
  case CONTENT_FROM_CLASS: return &s->content_from_class;
  default: return &s->class_from_class;
  }
}

static void print_probe_row(const lord_eval_report *r, const char *name, int which) {
  double chance = NAN;
  char cells[2][40] = { "", "" };
  for (int s = 0; s < 2; s++) {
    if (!r->stages[s].measured) continue;
    const lord_eval_probe *p = probe_of(&r->stages[s], which);
    if (p->degenerate) snprintf(cells[s], sizeof cells[s], "one code per class");
    else if (p->measured) {
      snprintf(cells[s], sizeof cells[s], "%.3f / %.3f", p->result.linear_accuracy, p->result.mlp_accuracy);
      chance = p->result.chance;
    } else snprintf(cells[s], sizeof cells[s], "-");
  }
  if (!cells[0][0] && !cells[1][0]) return;
  printf("    %-36s", name);
  for (int s = 0; s < 2; s++)
    if (r->stages[s].measured) printf(" %-20s", cells[s]);
  if (isfinite(chance)) printf(" %.3f", chance);
  printf("\n");
}

static void print_summary(const lord_eval_report *r, const char *baseline_run) {
  char other[16] = "";
  if (baseline_run) column_name(baseline_run, other, sizeof other);
  printf("content transfer: error against the true image (lower is better), with baselines on the same pairs\n");
  if (r->baseline_unseen[0].pairs) print_transfer(r, 1, other);
  if (r->baseline_seen[0].pairs) print_transfer(r, 0, other);
  if (r->why_no_transfer[0]) printf("  held-out classes not measured: %s\n", r->why_no_transfer);
  if (r->why_no_foreground[0]) printf("  foreground and background not measured: %s\n", r->why_no_foreground);
  printf("probes on the training images' codes: logistic / MLP accuracy on held-out codes\n");
  printf("    %-36s", "");
  for (int s = 0; s < 2; s++)
    if (r->stages[s].measured) printf(" %-20s", s ? "stage 2 (encoders)" : "stage 1 (embeddings)");
  printf(" chance\n");
  print_probe_row(r, "class from content (leak: chance)", CLASS_FROM_CONTENT);
  print_probe_row(r, "content from content (inform: high)", CONTENT_FROM_CONTENT);
  print_probe_row(r, "content from class (leak: chance)", CONTENT_FROM_CLASS);
  print_probe_row(r, "class from class (inform: high)", CLASS_FROM_CLASS);
  printf("reconstruction L1:\n");
  for (int s = 0; s < 2; s++) {
    const lord_eval_stage_report *st = &r->stages[s];
    if (!st->measured) continue;
    printf("    stage %d  training images %.4f", s + 1, st->recon_train.l1);
    if (st->recon_unseen.pairs) printf("  held-out classes' images %.4f", st->recon_unseen.l1);
    printf("\n");
  }
  printf("class transfer: %lld translations into another training class, judged by a CNN with %.3f held-out\n"
         "accuracy on %lld real images (chance %.3f)\n",
         (long long)r->judged, r->judge_heldout_accuracy, (long long)r->judge_heldout_images, r->judge_chance);
  for (int s = 0; s < 2; s++) {
    const lord_eval_stage_report *st = &r->stages[s];
    if (st->measured)
      printf("    stage %d  judged as the target class %.3f (high is good), as the content's class %.3f (judge %.3f)\n",
             s + 1, st->judged_target, st->judged_content_class, r->judge_heldout_accuracy);
  }
  if (r->baseline_run.measured)
    printf("    %s (stage %d)  judged as the target class %.3f, as the content's class %.3f (judge %.3f)\n", other,
           r->baseline_run.stage, r->baseline_run.judged_target, r->baseline_run.judged_content_class,
           r->judge_heldout_accuracy);
}

/* The held-out classes and ratio of run `dir` (its "lord.split" metadata); 0 and 0 without. */
static int read_split(lord_model *m, const char *dir, int *test_classes, double *test_ratio) {
  const char *split = ut_store_get_meta(lord_store(m), "lord.split");
  *test_classes = 0, *test_ratio = 0;
  if (split && sscanf(split, "%d %lf", test_classes, test_ratio) != 2) {
    fprintf(stderr, "untangle " CMD ": %s/" LORD_CHECKPOINT ": metadata lord.split '%s' is not '<classes> <ratio>'\n", dir,
            split);
    return 0;
  }
  return 1;
}

static int run(const options *o) {
  int rc = CLI_FAILED;
  lord_model *m = NULL, *baseline = NULL;
  ut_dataset *ds = NULL;
  char *json = NULL;
  ut_runtime *rt = cli_open_runtime(CMD, o->device, 0);
  if (!rt) return CLI_FAILED;
  int stage = 0, test_classes = 0;
  double test_ratio = 0;
  lord_eval_cfg cfg = o->cfg;
  if (!(m = lord_open_run(rt, o->run, 1, &stage)) || !(ds = ut_dataset_open(o->data)) ||
      (o->baseline && !(baseline = lord_open_run(rt, o->baseline, 1, &cfg.baseline_stage)))) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  if (!read_split(m, o->run, &test_classes, &test_ratio) ||
      (baseline && !read_split(baseline, o->baseline, &cfg.baseline_test_classes, &cfg.baseline_test_ratio)))
    goto done;
  cfg.baseline = baseline;
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("evaluating %s (stage %d) on %s, device %d: %s\n", o->run, stage, o->data, dev->index, dev->name);
  if (baseline) printf("beside %s (stage %d) on the same pairs\n", o->baseline, cfg.baseline_stage);
  fflush(stdout);
  double start = ut_seconds();
  cfg.on_part = cli_eval_part;
  cfg.user = &start;
  lord_eval_report r;
  if (lord_evaluate(rt, m, stage, ds, test_classes, test_ratio, &cfg, &r) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  print_summary(&r, o->baseline);
  json = lord_eval_json(&r, o->run, o->baseline, o->data, dev->name);
  if (cli_write_eval_json(CMD, o->run, o->out, json, r.seconds) != CLI_OK) goto done;
  rc = CLI_OK;
done:
  free(json);
  ut_dataset_close(ds);
  lord_free(baseline);
  lord_free(m);
  ut_runtime_close(rt);
  return rc;
}

int lord_cmd_eval(int argc, char **argv) {
  options o;
  int done;
  int rc = parse_options(argc, argv, &o, &done);
  if (done) return rc;
  return run(&o);
}
