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
          "it was trained on (with the run's held-out classes), and writes RUN/eval.json:\n"
          "  content transfer  the content of a training image drawn in another image's class,\n"
          "                    against the true image of that class in that pose (needs content\n"
          "                    labels for every class and pose, as 'data synth' sets have): mean\n"
          "                    pixel L1 in [0, 1] for held-out classes (one-shot, stage 2) and for\n"
          "                    training classes; with --vgg also LORD's VGG distance\n"
          "  probes            class predicted from content codes and content from class codes by\n"
          "                    logistic regression and an MLP (80%% train, 20%% test), next to\n"
          "                    chance (the most frequent label's share); low means disentangled\n"
          "  reconstruction    mean pixel L1 of training images and of held-out classes' images\n"
          "  class transfer    a CNN trained here on the real images judges translations into a\n"
          "                    random other class: the share judged as that class (high is good)\n"
          "                    and as the content image's own class (low is good)\n"
          "Stage-2 runs are measured with their encoders, stage-1 runs with their embeddings.\n"
          "\n"
          "Options:\n"
          "      --data FILE          the data set the run was trained on (required)\n"
          "  -o, --out JSON           write the report here instead of RUN/eval.json\n"
          "  -d, --device D           an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "                           (default: $UNTANGLE_DEVICE, else best)\n"
          "      --vgg FILE           torchvision vgg16 weights (safetensors) for the VGG distance\n"
          "      --pairs N            translations per transfer measure (default 1000)\n"
          "      --probe-samples N    codes per probe at most (default 10000)\n"
          "      --judge-images N     real images that train the judge at most (default 10000)\n"
          "      --judge-epochs N     the judge's training epochs (default 5)\n"
          "  -s, --seed S             seed of every random choice (default 1)\n"
          "  -h, --help               show this help\n");
}

typedef struct {
  const char *run, *data, *out, *device, *vgg;
  lord_eval_cfg cfg;
} options;

enum { OPT_DATA = 256, OPT_VGG, OPT_PAIRS, OPT_PROBE, OPT_JUDGE_IMAGES, OPT_JUDGE_EPOCHS };

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
    case 's': rc = cli_parse_u64(CMD, "--seed", optarg, UINT64_MAX, &o->cfg.seed); break;
    case 'h': lord_help_eval(stdout); return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  o->cfg.classifier_epochs = (int)epochs;
  o->cfg.vgg_weights = o->vgg;
  if (optind >= argc) return cli_usage_error(CMD, "needs the run folder RUN (from 'untangle train lord --out RUN')");
  o->run = argv[optind++];
  if (optind < argc) return cli_usage_error(CMD, "takes one run folder, got also '%s'", argv[optind]);
  if (!o->data) return cli_usage_error(CMD, "needs --data FILE, the data set the run was trained on");
  *done = 0;
  return CLI_OK;
}

/* Each part's start, with the time since evaluation began (user: the start time). */
static void on_part(void *user, const char *part) {
  fprintf(stderr, "eval: %s (at %.1f s)\n", part, cli_now() - *(const double *)user);
}

static void print_probe(const char *name, const lord_eval_probe *p) {
  if (p->measured)
    printf("  %-32s logistic %.3f  mlp %.3f  chance %.3f  (%lld test codes)\n", name, p->result.linear_accuracy,
           p->result.mlp_accuracy, p->result.chance, (long long)p->result.n_test);
}

static void print_error(const char *name, const lord_eval_transfer *t, const char *unit) {
  if (t->pairs == 0) return;
  printf("  %-32s L1 %.4f", name, t->l1);
  if (isfinite(t->vgg)) printf("  VGG distance %.4f", t->vgg);
  printf("  (%lld %s)\n", (long long)t->pairs, unit);
}

static void print_summary(const lord_eval_report *r) {
  printf("content transfer (lower is better):\n");
  print_error("held-out classes (one-shot)", &r->transfer_unseen, "pairs");
  print_error("training classes", &r->transfer_seen, "pairs");
  if (r->why_no_transfer[0]) printf("  held-out classes not measured: %s\n", r->why_no_transfer);
  printf("probes on %s codes of training images (near chance is better):\n", r->stage >= 2 ? "encoder" : "embedded");
  print_probe("class from content", &r->class_from_content);
  print_probe("content from class", &r->content_from_class);
  if (r->stage >= 2) {
    print_probe("class from content (stage 1)", &r->class_from_content_embedded);
    print_probe("content from class (stage 1)", &r->content_from_class_embedded);
  }
  printf("reconstruction:\n");
  print_error("training images", &r->recon_train, "images");
  print_error("held-out classes' images", &r->recon_unseen, "images");
  printf("class transfer (%lld translations; judge's held-out accuracy %.3f):\n", (long long)r->judged,
         r->judge_heldout_accuracy);
  printf("  judged as the target class       %.3f  (chance %.3f)\n", r->judged_target, r->judge_chance);
  printf("  judged as the content's class    %.3f\n", r->judged_content_class);
}

static int run(const options *o) {
  int rc = CLI_FAILED;
  lord_model *m = NULL;
  ut_dataset *ds = NULL;
  char *json = NULL, *path = NULL;
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = o->device });
  if (!rt) {
    fprintf(stderr, "untangle " CMD ": cannot open the OpenCL device '%s': %s\n", o->device, ut_last_error());
    return CLI_FAILED;
  }
  int stage = 0, test_classes = 0;
  double test_ratio = 0;
  const char *split = NULL;
  if (!(m = lord_open_run(rt, o->run, 1, &stage)) || !(ds = ut_dataset_open(o->data))) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  if ((split = ut_store_get_meta(lord_store(m), "lord.split")) && sscanf(split, "%d %lf", &test_classes, &test_ratio) != 2) {
    fprintf(stderr, "untangle " CMD ": %s/" LORD_CHECKPOINT ": metadata lord.split '%s' is not '<classes> <ratio>'\n",
            o->run, split);
    goto done;
  }
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("evaluating %s (stage %d) on %s, device %d: %s\n", o->run, stage, o->data, dev->index, dev->name);
  fflush(stdout);
  lord_eval_cfg cfg = o->cfg;
  double start = cli_now();
  cfg.on_part = on_part;
  cfg.user = &start;
  lord_eval_report r;
  if (lord_evaluate(rt, m, stage, ds, test_classes, test_ratio, &cfg, &r) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  print_summary(&r);
  size_t len = strlen(o->run) + sizeof "/eval.json";
  if (!(path = o->out ? strdup(o->out) : malloc(len)) || !(json = lord_eval_json(&r, o->run, o->data, dev->name))) {
    fprintf(stderr, "untangle " CMD ": out of memory\n");
    goto done;
  }
  if (!o->out) snprintf(path, len, "%s/eval.json", o->run);
  if (ut_data_write_atomic(path, json, strlen(json)) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  printf("wrote %s (%.1f s)\n", path, r.seconds);
  rc = CLI_OK;
done:
  free(json);
  free(path);
  ut_dataset_close(ds);
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
