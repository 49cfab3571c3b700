/* `untangle train unit`, and translate, grid and eval of a UNIT run (models/unit*.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_team.h"
#include "commands.h"
#include "progress.h"
#include "unit_eval.h"
#include "unit_train.h"

#define MAX_SETS 32

void unit_help_train(FILE *out) {
  fprintf(out,
          "Usage: untangle train unit --data FILE --out RUN [OPTIONS]\n"
          "\n"
          "Trains UNIT (Liu et al., NIPS 2017, the paper's code with shared encoder and decoder blocks)\n"
          "to translate between two domains of a data set with domains ('untangle data synth --domains\n"
          "day,night', or 'untangle data import DIR --domains' of trainA/ trainB/ folders). Batches of\n"
          "the two domains are drawn independently, so pairs in the data are never seen. A share of the\n"
          "images is held out for 'untangle eval' (whole pairs, where the data is paired). After every\n"
          "epoch RUN/" UNIT_CHECKPOINT " is written atomically, losses are appended to RUN/losses.tsv and\n"
          "RUN/grid.jpg shows held-out images of each domain, their translations and their cycle\n"
          "reconstructions (rows: A, A->B, A->B->A, B, B->A, B->A->B).\n"
          "\n"
          "Options:\n"
          "      --data FILE        the data set (required)\n"
          "  -o, --out RUN          the run folder, created if missing (required)\n"
          "  -d, --device D         an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "                         (default: $UNTANGLE_DEVICE, else best)\n"
          "      --preset P         default (the official widths: 128x128 crops, 64 channels, 3 residual\n"
          "                         blocks, batch 1) or small (32x32, 16 channels, 1 residual block,\n"
          "                         batch 8); default on a GPU, small otherwise\n"
          "      --domains A,B      the two domains by name (default: the data set's first two)\n"
          "      --epochs N         passes over the smaller domain's training images\n"
          "  -b, --batch B          images of each domain per step\n"
          "      --size S           model input side; larger data images are cropped at random\n"
          "                         (default: the preset's, or the data's side when smaller)\n"
          "      --set FIELD=VALUE  any configuration field (ch, res_blocks, shared_blocks, dis_ch,\n"
          "                         dis_shared, noise_std, w_gan, w_recon, w_cycle, w_kl, w_kl_cycle, lr,\n"
          "                         beta1, beta2, weight_decay, flip, test_ratio); may repeat\n"
          "      --save-every N     also write the checkpoint every N steps\n"
          "  -s, --seed S           seed of parameters, noise, batches and the split (default 1)\n"
          "  -r, --resume           continue RUN from its checkpoint with its own settings\n");
  cli_team_help(out);
  fprintf(out, "  -h, --help             show this help\n");
}

typedef struct {
  const char *data, *out, *device, *domains;
  int preset; /* -1: by device type */
  int64_t epochs, batch, size, save_every;
  const char *sets[MAX_SETS];
  int n_sets;
  uint64_t seed;
  int resume, mpi;
} train_options;

enum { OPT_DATA = 256, OPT_PRESET, OPT_EPOCHS, OPT_DOMAINS, OPT_SIZE, OPT_SET, OPT_SAVE_EVERY, OPT_TO, OPT_FROM,
       OPT_IMAGES, OPT_JUDGE_EPOCHS, OPT_MAX_IMAGES, OPT_MPI };

static int parse_train(int argc, char **argv, train_options *o, int *done) {
  static const char *cmd = "train unit";
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },     { "out", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },        { "preset", required_argument, NULL, OPT_PRESET },
    { "domains", required_argument, NULL, OPT_DOMAINS }, { "epochs", required_argument, NULL, OPT_EPOCHS },
    { "batch", required_argument, NULL, 'b' },         { "size", required_argument, NULL, OPT_SIZE },
    { "set", required_argument, NULL, OPT_SET },       { "save-every", required_argument, NULL, OPT_SAVE_EVERY },
    { "seed", required_argument, NULL, 's' },          { "resume", no_argument, NULL, 'r' },
    { "mpi", no_argument, NULL, OPT_MPI },
    { "help", no_argument, NULL, 'h' },                { NULL, 0, NULL, 0 },
  };
  *o = (train_options){ .device = cli_default_device(), .preset = -1, .epochs = -1, .batch = -1, .size = -1, .seed = 1 };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:b:s:rh", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_DATA: o->data = optarg; break;
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case OPT_PRESET:
      if (!strcmp(optarg, "default")) o->preset = UNIT_PRESET_DEFAULT;
      else if (!strcmp(optarg, "small")) o->preset = UNIT_PRESET_SMALL;
      else rc = cli_usage_error(cmd, "--preset expects default or small, not '%s'", optarg);
      break;
    case OPT_DOMAINS: o->domains = optarg; break;
    case OPT_EPOCHS: rc = cli_parse_i64(cmd, "--epochs", optarg, 0, 1 << 20, &o->epochs); break;
    case 'b': rc = cli_parse_i64(cmd, "--batch", optarg, 1, 65536, &o->batch); break;
    case OPT_SIZE: rc = cli_parse_i64(cmd, "--size", optarg, 16, 1024, &o->size); break;
    case OPT_SET: rc = cli_collect_set(cmd, optarg, o->sets, &o->n_sets, MAX_SETS); break;
    case OPT_SAVE_EVERY: rc = cli_parse_i64(cmd, "--save-every", optarg, 1, INT64_MAX / 2, &o->save_every); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &o->seed); break;
    case 'r': o->resume = 1; break;
    case OPT_MPI: o->mpi = 1; break;
    case 'h': unit_help_train(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind < argc) return cli_usage_error(cmd, "takes no arguments, got '%s'", argv[optind]);
  if (!o->data) return cli_usage_error(cmd, "needs --data FILE (make one with 'untangle data synth --domains day,night')");
  if (!o->out || !*o->out) return cli_usage_error(cmd, "needs --out RUN, the run folder");
  if (o->resume && (o->preset >= 0 || o->domains || o->batch > 0 || o->size > 0 || o->n_sets))
    return cli_usage_error(cmd, "--resume continues with the run's own settings; only --epochs may change");
  *done = 0;
  return CLI_OK;
}

/* The preset with the options and the data's domains, or the checkpoint's when resuming. */
static int choose_config(ut_runtime *rt, const train_options *o, const ut_dataset *ds, const char *ckpt, unit_cfg *cfg) {
  const char *cmd = "train unit";
  if (o->resume) {
    if (access(ckpt, R_OK) != 0) {
      fprintf(stderr, "untangle %s: cannot resume: no readable checkpoint at %s (%s)\n", cmd, ckpt, strerror(errno));
      return CLI_FAILED;
    }
    *cfg = unit_preset(UNIT_PRESET_SMALL, 3);
    if (unit_read_config(rt, ckpt, cfg) != UT_OK) {
      fprintf(stderr, "untangle %s: cannot resume: %s\n", cmd, ut_last_error());
      return CLI_FAILED;
    }
  } else {
    int preset = o->preset;
    if (preset < 0) preset = ut_runtime_device(rt)->type == UT_DEVICE_GPU ? UNIT_PRESET_DEFAULT : UNIT_PRESET_SMALL;
    *cfg = unit_preset((unit_preset_kind)preset, ut_dataset_channels(ds));
    if (ut_dataset_height(ds) < cfg->size) cfg->size = ut_dataset_height(ds);
    if (o->size > 0) cfg->size = (int)o->size;
    if (o->batch > 0) cfg->batch = (int)o->batch;
    cfg->seed = o->seed;
    if (o->domains) {
      const char *comma = strchr(o->domains, ',');
      if (!comma || strchr(comma + 1, ',') || comma == o->domains || !comma[1] ||
          (size_t)(comma - o->domains) >= KIT_STRING_MAX || strlen(comma + 1) >= KIT_STRING_MAX)
        return cli_usage_error(cmd, "--domains expects two names A,B, not '%s'", o->domains);
      snprintf(cfg->domain_a, KIT_STRING_MAX, "%.*s", (int)(comma - o->domains), o->domains);
      snprintf(cfg->domain_b, KIT_STRING_MAX, "%s", comma + 1);
    }
    if (cli_apply_sets(cmd, unit_cfg_table(), cfg, o->sets, o->n_sets) != CLI_OK) return CLI_USAGE;
    printf("preset %s%s\n", unit_preset_name((unit_preset_kind)preset), o->preset < 0 ? " (chosen by device type)" : "");
  }
  if (o->epochs >= 0) cfg->epochs = (int)o->epochs;
  if (unit_cfg_check(cfg) != UT_OK || unit_resolve_domains(ds, cfg) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    return CLI_FAILED;
  }
  return CLI_OK;
}

typedef struct {
  progress bar;
  const kit_team *team;
} train_progress;

static void on_step(void *user, const kit_progress *p) {
  train_progress *tp = user;
  progress *bar = &tp->bar;
  if (bar->total == 0) progress_begin(bar, stderr, "unit", p->step, p->steps);
  char metrics[200];
  int n = snprintf(metrics, sizeof metrics, "epoch %lld/%lld D %.3f G %.3f (gan %.3f recon %.3f cycle %.3f) %.0f img/s",
                   (long long)p->epoch + 1, (long long)p->epochs, (double)p->losses[0], (double)p->losses[1],
                   (double)p->losses[2], (double)p->losses[3], (double)p->losses[4], p->images_per_second);
  if (tp->team && n > 0 && (size_t)n < sizeof metrics)
    snprintf(metrics + n, sizeof metrics - (size_t)n, " (%d ranks, comm %.0f%%)", tp->team->size, 100 * p->comm_share);
  if (p->step == p->steps) progress_end(bar, p->step, metrics);
  else progress_update(bar, p->step, metrics);
}

static int train(const void *options, kit_team *team);

int unit_cmd_train(int argc, char **argv) {
  train_options o;
  int done, rc = parse_train(argc, argv, &o, &done);
  return done ? rc : cli_team_run("train unit", o.mpi, train, &o);
}

static int train(const void *options, kit_team *team) {
  train_options o = *(const train_options *)options;
  int rc = CLI_FAILED;
  unit_model *m = NULL;
  ut_dataset *ds = NULL;
  ut_runtime *rt = NULL;
  char *ckpt = malloc(strlen(o.out) + sizeof "/" UNIT_CHECKPOINT), device_buf[64];
  const char *device = cli_team_device("train unit", o.device, team, device_buf, sizeof device_buf);
  if (!device || !ckpt) goto done;
  if (!(rt = cli_open_runtime("train unit", device, 0))) goto done;
  sprintf(ckpt, "%s/" UNIT_CHECKPOINT, o.out);
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("device %d: %s (%s, %s)\n", dev->index, dev->name, ut_device_type_name(dev->type), dev->platform);
  if (!(ds = ut_dataset_open(o.data))) {
    fprintf(stderr, "untangle train unit: %s\n", ut_last_error());
    goto done;
  }
  unit_cfg cfg;
  if ((rc = choose_config(rt, &o, ds, ckpt, &cfg)) != CLI_OK) goto done;
  rc = CLI_FAILED;
  if (!(m = unit_new(rt, &cfg)) || (o.resume && unit_load(m, ckpt) != UT_OK) || unit_set_team(m, team) != UT_OK) {
    fprintf(stderr, "untangle train unit: %s\n", ut_last_error());
    goto done;
  }
  if (o.resume) printf("resuming %s after step %lld\n", ckpt, (long long)kit_steps_done(unit_store(m), NULL));
  if (cli_mkdirs(o.out) != 0) {
    fprintf(stderr, "untangle train unit: cannot create the folder %s: %s\n", o.out, strerror(errno));
    goto done;
  }
  printf("UNIT %dx%dx%d: %s -> %s, width %d, %d + %d shared residual blocks, discriminator %d (+%d shared), batch %d "
         "per domain, %d epochs, seed %llu\n", cfg.channels, cfg.size, cfg.size, cfg.domain_a, cfg.domain_b, cfg.ch,
         cfg.res_blocks, cfg.shared_blocks, cfg.dis_ch, cfg.dis_shared, cfg.batch, cfg.epochs,
         (unsigned long long)cfg.seed);
  if (team) printf("data-parallel over %d ranks: %d images of each domain each per step\n", team->size,
                  cfg.batch / team->size);
  fflush(stdout);
  train_progress bar = { .team = team };
  double t0 = ut_seconds();
  if (unit_train(m, ds, &(unit_train_opts){ .run_dir = o.out, .save_every = o.save_every, .on_step = on_step,
                                            .user = &bar, .team = team }) != UT_OK) {
    if (team) fprintf(stderr, "\nuntangle train unit: rank %d: %s\n", team->rank, ut_last_error());
    else fprintf(stderr, "\nuntangle train unit: %s\n", ut_last_error());
    goto done;
  }
  printf("trained in %.1f s; checkpoint %s, grid %s/grid.jpg\n", ut_seconds() - t0, ckpt, o.out);
  rc = CLI_OK;
done:
  unit_free(m);
  ut_dataset_close(ds);
  ut_runtime_close(rt);
  free(ckpt);
  return rc;
}

/* ---- translate and grid ----------------------------------------------------------------------- */

void unit_help_translate(FILE *out) {
  fprintf(out,
          "Usage: untangle translate RUN --to DOMAIN IN.jpg -o OUT.jpg [-d D]\n"
          "\n"
          "Draws IN.jpg (an image of the other domain) in DOMAIN (A or B, or the domain's name) with\n"
          "the encoder and decoder of the UNIT run RUN. The image is centre-cropped and resized to the\n"
          "model's size. --to of the image's own domain reconstructs it.\n");
}

void unit_help_grid(FILE *out) {
  fprintf(out,
          "Usage: untangle grid RUN --from DOMAIN --images A.jpg B.jpg ... -o GRID.jpg [-d D]\n"
          "\n"
          "A grid of the given images of DOMAIN (1 to 16): the first row the images, the second their\n"
          "translations into the other domain, the third the cycle back, with the UNIT run RUN.\n");
}

typedef struct {
  const char *run, *out, *device, *domain;
  char **images;
  int n_images;
} infer_options;

static int parse_infer(const char *cmd, int argc, char **argv, int grid, infer_options *o, int *done) {
  static const struct option long_options[] = {
    { "out", required_argument, NULL, 'o' },   { "device", required_argument, NULL, 'd' },
    { "to", required_argument, NULL, OPT_TO }, { "from", required_argument, NULL, OPT_FROM },
    { "images", no_argument, NULL, OPT_IMAGES }, { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  *o = (infer_options){ .device = cli_default_device() };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  for (int c; (c = getopt_long(argc, argv, ":o:d:h", long_options, NULL)) != -1;) {
    switch (c) {
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case OPT_TO:
      if (grid) return cli_usage_error(cmd, "takes --from DOMAIN, not --to");
      o->domain = optarg;
      break;
    case OPT_FROM:
      if (!grid) return cli_usage_error(cmd, "takes --to DOMAIN, not --from");
      o->domain = optarg;
      break;
    case OPT_IMAGES: break;
    case 'h': (grid ? unit_help_grid : unit_help_translate)(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (optind >= argc) return cli_usage_error(cmd, "needs the run folder RUN first");
  o->run = argv[optind++];
  o->images = argv + optind;
  o->n_images = argc - optind;
  if (!o->domain) return cli_usage_error(cmd, "needs %s DOMAIN (A or B, or a domain's name)", grid ? "--from" : "--to");
  if (!o->out) return cli_usage_error(cmd, "needs -o OUT.jpg");
  if (!grid && o->n_images != 1) return cli_usage_error(cmd, "translates one image, got %d", o->n_images);
  if (grid && (o->n_images < 1 || o->n_images > 16)) return cli_usage_error(cmd, "needs 1 to 16 images after --images");
  *done = 0;
  return CLI_OK;
}

/* UNIT_A or UNIT_B from "A", "B" or a domain name of the run; -1 with a message. */
static int domain_of(const char *cmd, const unit_cfg *c, const char *name) {
  if (!strcmp(name, "A") || !strcmp(name, c->domain_a)) return UNIT_A;
  if (!strcmp(name, "B") || !strcmp(name, c->domain_b)) return UNIT_B;
  fprintf(stderr, "untangle %s: the run's domains are A (%s) and B (%s), not '%s'\n", cmd, c->domain_a, c->domain_b, name);
  return -1;
}

static int run_infer(const char *cmd, const infer_options *o, int grid) {
  int rc = CLI_FAILED;
  float *images = NULL;
  unit_model *m = NULL;
  ut_runtime *rt = cli_open_runtime(cmd, o->device, 0);
  if (!rt) return CLI_FAILED;
  if (!(m = unit_open_run(rt, o->run))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const unit_cfg *c = unit_config(m);
  int d = domain_of(cmd, c, o->domain), n = o->n_images;
  int64_t per = (int64_t)c->channels * c->size * c->size;
  if (d < 0) goto done;
  if (!(images = malloc((size_t)(3 * n * per) * sizeof *images))) {
    fprintf(stderr, "untangle %s: out of memory\n", cmd);
    goto done;
  }
  for (int i = 0; i < n; i++)
    if (ut_jpeg_read_float(o->images[i], c->channels, c->size, images + i * per) != UT_OK) {
      fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
      goto done;
    }
  /* translate: the image's domain is the other one; grid: d is the images' own domain. */
  ut_status st = grid ? unit_translate(m, images, n, d, 1 - d, images + n * per) : unit_translate(m, images, 1, 1 - d, d, images + per);
  if (st == UT_OK && grid) st = unit_cycle(m, images, n, d, images + 2 * n * per);
  if (st == UT_OK)
    st = grid ? ut_grid_write_jpeg(o->out, images, 3 * n, c->channels, c->size, c->size, n, 92)
              : ut_grid_write_jpeg(o->out, images + per, 1, c->channels, c->size, c->size, 1, 95);
  if (st != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  printf("wrote %s\n", o->out);
  rc = CLI_OK;
done:
  free(images);
  unit_free(m);
  ut_runtime_close(rt);
  return rc;
}

int unit_cmd_translate(int argc, char **argv) {
  infer_options o;
  int done, rc = parse_infer("translate", argc, argv, 0, &o, &done);
  return done ? rc : run_infer("translate", &o, 0);
}

int unit_cmd_grid(int argc, char **argv) {
  infer_options o;
  int done, rc = parse_infer("grid", argc, argv, 1, &o, &done);
  return done ? rc : run_infer("grid", &o, 1);
}

/* ---- eval ------------------------------------------------------------------------------------- */

void unit_help_eval(FILE *out) {
  fprintf(out,
          "Usage: untangle eval RUN --data FILE [OPTIONS]\n"
          "\n"
          "Measures the UNIT run RUN on its held-out images of FILE (the data set it was trained on)\n"
          "in both directions, and writes RUN/eval.json:\n"
          "  translation error  mean pixel L1 (pixels in [0, 1]) against the true image of the other\n"
          "                     domain, where the data is paired (as 'data synth --domains' sets are),\n"
          "                     beside two baselines on the same images: the input copied, and the\n"
          "                     input with its colour statistics matched to the target domain\n"
          "  cycle error        A -> B -> A against the input, and the reconstruction A -> A\n"
          "  domain judge       a CNN trained here on real images of both domains: the share of\n"
          "                     translations it takes for the target domain (and of the baselines),\n"
          "                     with its own held-out accuracy\n"
          "  class judge        with 2+ classes: the share of translations whose class a CNN trained\n"
          "                     on real images still recognises\n"
          "\n"
          "Options:\n"
          "      --data FILE          the data set the run was trained on (required)\n"
          "  -o, --out JSON           write the report here instead of RUN/eval.json\n"
          "  -d, --device D           an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "      --max-images N       held-out images per domain and measure at most\n"
          "      --judge-epochs N     training epochs of the judges\n"
          "  -s, --seed S             seed of every random choice (default 1)\n"
          "  -h, --help               show this help\n");
}

int unit_cmd_eval(int argc, char **argv) {
  static const char *cmd = "eval";
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },         { "out", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },            { "max-images", required_argument, NULL, OPT_MAX_IMAGES },
    { "judge-epochs", required_argument, NULL, OPT_JUDGE_EPOCHS }, { "seed", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },                    { NULL, 0, NULL, 0 },
  };
  const char *data = NULL, *out = NULL, *device = cli_default_device();
  unit_eval_cfg cfg = unit_eval_default_cfg();
  int64_t epochs = cfg.judge_epochs;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:s:h", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_DATA: data = optarg; break;
    case 'o': out = optarg; break;
    case 'd': device = optarg; break;
    case OPT_MAX_IMAGES: rc = cli_parse_i64(cmd, "--max-images", optarg, 1, 1 << 24, &cfg.max_images); break;
    case OPT_JUDGE_EPOCHS: rc = cli_parse_i64(cmd, "--judge-epochs", optarg, 1, 1000, &epochs); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &cfg.seed); break;
    case 'h': unit_help_eval(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  cfg.judge_epochs = (int)epochs;
  const char *run = NULL;
  if ((rc = cli_eval_operands(cmd, argc, argv, data, &run)) != CLI_OK) return rc;

  rc = CLI_FAILED;
  unit_model *m = NULL;
  ut_dataset *ds = NULL;
  char *json = NULL;
  ut_runtime *rt = cli_open_runtime(cmd, device, 0);
  if (!rt) return CLI_FAILED;
  if (!(m = unit_open_run(rt, run)) || !(ds = ut_dataset_open(data))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("evaluating UNIT run %s on %s, device %d: %s\n", run, data, dev->index, dev->name);
  fflush(stdout);
  double start = ut_seconds();
  cfg.on_part = cli_eval_part;
  cfg.user = &start;
  unit_eval_report r;
  if (unit_evaluate(rt, m, ds, &cfg, &r) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  unit_eval_print(stdout, &r);
  json = unit_eval_json(&r, run, data, dev->name);
  if (cli_write_eval_json(cmd, run, out, json, ut_seconds() - start) != CLI_OK) goto done;
  rc = CLI_OK;
done:
  free(json);
  ut_dataset_close(ds);
  unit_free(m);
  ut_runtime_close(rt);
  return rc;
}
