/* `untangle eval` of a CMI-VAE run (models/cmivae_eval.h). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmivae_eval.h"
#include "cmivae_train.h"
#include "commands.h"

void cmivae_help_eval(FILE *out) {
  fprintf(out,
          "Usage: untangle eval RUN --data FILE [--baseline RUN2] [OPTIONS]\n"
          "\n"
          "Measures the CMI-VAE run RUN on its held-out images of FILE (the data set it was trained\n"
          "on): each image's z1 is fused with the z2 of another held-out image x~. Writes RUN/eval.json:\n"
          "  feature error   hue: the distance in degrees between the fused image's hue and x~'s\n"
          "                  (a fused image without colour counts 180); class: the share of fused\n"
          "                  images a judge does not take for x~'s class. Baselines on the same pairs:\n"
          "                  the z1 source copied, and the reconstruction against its own feature\n"
          "  class kept      the share of fused images whose z1 source's class a CNN judge, trained\n"
          "                  here on grey versions of real training images, still recognises, beside\n"
          "                  the share of the z1 sources themselves it recognises (the copy). The judge\n"
          "                  is scored first on a fifth of each class held out from its training; below\n"
          "                  --judge-min-accuracy eval stops, since a weak judge says nothing\n"
          "  probes          the hue in 12 bins (or the class) predicted from z1 (leakage) and from\n"
          "                  z2 (informativeness), and the class from z1, by logistic regression and\n"
          "                  an MLP on 80%% of the pairs, scored on the rest\n"
          "With --baseline RUN2 (a --no-cmi run of the same data, seed and size) every figure is also\n"
          "given for it, and 'claims' compares the two with issue 15's bars.\n"
          "\n"
          "Options:\n"
          "      --data FILE          the data set the run was trained on (required)\n"
          "      --baseline RUN2      a second run to measure on the same pairs\n"
          "  -o, --out JSON           write the report here instead of RUN/eval.json\n"
          "  -d, --device D           an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "      --max-images N       held-out images (pairs) at most (default 2000)\n"
          "      --judge-images N     training images that train and score the judge at most (default 10000)\n"
          "      --judge-data FILE    train the judge on this set's images instead of the run's training\n"
          "                           images (same classes; none of the run's held-out images)\n"
          "      --judge-epochs N     training epochs of the class judge, or more for 600 steps (default 15)\n"
          "      --judge-width N      channels of the judge's first convolution (default 32)\n"
          "      --judge-head H       flat (its last feature map read where it lies; default) or avg\n"
          "                           (averaged, as LORD's judge)\n"
          "      --judge-min-accuracy A  the judge's held-out accuracy needed before it judges (default 0.9)\n"
          "  -s, --seed S             seed of the pairs, the judge and the probes (default 1)\n"
          "  -h, --help               show this help\n");
}

enum { OPT_DATA = 256, OPT_BASELINE, OPT_MAX_IMAGES, OPT_JUDGE_IMAGES, OPT_JUDGE_EPOCHS, OPT_JUDGE_WIDTH, OPT_JUDGE_HEAD, OPT_JUDGE_MIN, OPT_JUDGE_DATA };

int cmivae_cmd_eval(int argc, char **argv) {
  static const char *cmd = "eval";
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },         { "baseline", required_argument, NULL, OPT_BASELINE },
    { "out", required_argument, NULL, 'o' },               { "device", required_argument, NULL, 'd' },
    { "max-images", required_argument, NULL, OPT_MAX_IMAGES }, { "judge-epochs", required_argument, NULL, OPT_JUDGE_EPOCHS },
    { "judge-images", required_argument, NULL, OPT_JUDGE_IMAGES }, { "judge-width", required_argument, NULL, OPT_JUDGE_WIDTH },
    { "judge-min-accuracy", required_argument, NULL, OPT_JUDGE_MIN }, { "judge-head", required_argument, NULL, OPT_JUDGE_HEAD },
    { "judge-data", required_argument, NULL, OPT_JUDGE_DATA },
    { "seed", required_argument, NULL, 's' },              { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *data = NULL, *base = NULL, *out = NULL, *judge_data = NULL, *device = cli_default_device();
  cmivae_eval_cfg cfg = cmivae_eval_default_cfg();
  int64_t epochs = cfg.judge_epochs;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:s:h", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_DATA: data = optarg; break;
    case OPT_BASELINE: base = optarg; break;
    case 'o': out = optarg; break;
    case 'd': device = optarg; break;
    case OPT_MAX_IMAGES: rc = cli_parse_i64(cmd, "--max-images", optarg, 10, 1 << 24, &cfg.max_images); break;
    case OPT_JUDGE_EPOCHS: rc = cli_parse_i64(cmd, "--judge-epochs", optarg, 1, 1000, &epochs); break;
    case OPT_JUDGE_IMAGES: rc = cli_parse_i64(cmd, "--judge-images", optarg, 10, 1 << 24, &cfg.judge_images); break;
    case OPT_JUDGE_WIDTH: rc = cli_parse_i64(cmd, "--judge-width", optarg, 1, 1024, &cfg.judge_width); break;
    case OPT_JUDGE_DATA: judge_data = optarg; break;
    case OPT_JUDGE_HEAD:
      if (strcmp(optarg, "avg") && strcmp(optarg, "flat"))
        return cli_usage_error(cmd, "--judge-head is avg or flat, not '%s'", optarg);
      cfg.judge_flatten = !strcmp(optarg, "flat");
      break;
    case OPT_JUDGE_MIN: rc = cli_parse_double(cmd, "--judge-min-accuracy", optarg, 0, 1, &cfg.judge_min_accuracy); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &cfg.seed); break;
    case 'h': cmivae_help_eval(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  cfg.judge_epochs = (int)epochs;
  const char *run = NULL;
  if ((rc = cli_eval_operands(cmd, argc, argv, data, &run)) != CLI_OK) return rc;

  rc = CLI_FAILED;
  cmivae_model *m = NULL, *b = NULL;
  ut_dataset *ds = NULL, *jds = NULL;
  char *json = NULL;
  ut_runtime *rt = cli_open_runtime(cmd, device, 0);
  if (!rt) return CLI_FAILED;
  if (!(m = cmivae_open_run(rt, run)) || (base && !(b = cmivae_open_run(rt, base))) || !(ds = ut_dataset_open(data)) ||
      (judge_data && !(jds = ut_dataset_open(judge_data)))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("evaluating CMI-VAE run %s%s%s on %s, device %d: %s\n", run, base ? " against " : "", base ? base : "", data,
         dev->index, dev->name);
  fflush(stdout);
  double start = ut_seconds();
  cfg.judge_data = jds;
  cfg.on_part = cli_eval_part;
  cfg.user = &start;
  cmivae_eval_report r;
  if (cmivae_evaluate(rt, m, b, ds, &cfg, &r) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  cmivae_eval_print(stdout, &r);
  json = cmivae_eval_json(&r, run, data, base, dev->name);
  if (cli_write_eval_json(cmd, run, out, json, ut_seconds() - start) != CLI_OK) goto done;
  rc = CLI_OK;
done:
  free(json);
  ut_dataset_close(ds);
  ut_dataset_close(jds);
  cmivae_free(m);
  cmivae_free(b);
  ut_runtime_close(rt);
  return rc;
}
