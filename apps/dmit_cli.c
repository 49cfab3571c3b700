/* `untangle train dmit`, and translate, grid and eval of a DMIT run (models/dmit*.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_team.h"
#include "commands.h"
#include "dmit_eval.h"
#include "dmit_train.h"
#include "progress.h"

#define MAX_SETS 32
#define MAX_SAMPLES 64
#define MAX_GRID_IMAGES 16

void dmit_help_train(FILE *out) {
  fprintf(out,
          "Usage: untangle train dmit --data FILE --out RUN [OPTIONS]\n"
          "\n"
          "Trains DMIT (Yu et al., NeurIPS 2019, the season-transfer model) to translate between the 2\n"
          "to %d domains of a data set ('untangle data synth --domains day,night,dusk', or 'untangle\n"
          "data import DIR --domains' of trainA/ trainB/ ... folders): one content encoder, one style\n"
          "encoder and one decoder conditioned on [domain || style], so an image can be drawn in any\n"
          "domain with any number of styles. Each step takes a batch of every domain (drawn\n"
          "independently, so pairs in the data are never seen) and runs four updates, each recomputing\n"
          "its forward pass: the discriminators; the encoders and decoder; the decoder alone (style\n"
          "regression and diversity); the content encoder alone. A share of the images is held out\n"
          "(whole (class, view) keys where the data has them). After every epoch RUN/" DMIT_CHECKPOINT "\n"
          "is written atomically, losses are appended to RUN/losses.tsv and RUN/grid.jpg shows held-out\n"
          "images of every domain (down the side) in every domain with 3 fixed prior styles (across).\n"
          "\n"
          "Options:\n"
          "      --data FILE        the data set (required)\n"
          "  -o, --out RUN          the run folder, created if missing (required)\n"
          "  -d, --device D         an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "                         (default: $UNTANGLE_DEVICE, else best)\n"
          "      --preset P         default (the official widths: 256x256 crops, width 64, 4 + 6 residual\n"
          "                         blocks, batch 1 per domain, 100 + 100 epochs) or small (32x32, width\n"
          "                         16, 2 + 3 residual blocks, batch 4, 8 + 4 epochs); default on a GPU,\n"
          "                         small otherwise\n"
          "      --epochs N         passes over the smallest domain's training images (with\n"
          "                         --resume: a new total)\n"
          "      --decay-epochs N   the last N epochs, over which the learning rate falls linearly to\n"
          "                         about 0 (default: half of --epochs; may change on --resume)\n"
          "  -b, --batch B          images of each domain per step\n"
          "      --size S           model input side; larger data images are cropped at random\n"
          "                         (default: the preset's, or the data's side when smaller)\n"
          "      --set FIELD=VALUE  any configuration field (nef, ndf, n_style, down_blocks, content_res,\n"
          "                         style_blocks, dec_res, content_dis_blocks, image_dis_blocks, dropout,\n"
          "                         w_rec, w_kl, w_cyc, w_style, w_div, w_content, lr, beta1, beta2,\n"
          "                         decay_epochs, flip, test_ratio, and beyond the official ones\n"
          "                         w_adv_content, dis_content_steps and w_content_invariance: the\n"
          "                         weight of a term that pulls each domain's per-dimension mean and\n"
          "                         second moment of the content codes to the batch's, default 0;\n"
          "                         content_norm 1 ends the content encoder in an instance norm;\n"
          "                         w_domain_confusion: the weight of the content encoder's confusion\n"
          "                         of a linear domain classifier trained on its codes, default 0);\n"
          "                         may repeat\n"
          "      --save-every N     also write the checkpoint every N steps\n"
          "  -s, --seed S           seed of parameters, noise, batches and the split (default 1)\n"
          "  -r, --resume           continue RUN from its checkpoint with its own settings\n",
          DMIT_MAX_DOMAINS);
  cli_team_help(out);
  fprintf(out, "  -h, --help             show this help\n");
}

typedef struct {
  const char *data, *out, *device;
  int preset; /* -1: by device type */
  int64_t epochs, decay_epochs, batch, size, save_every;
  const char *sets[MAX_SETS];
  int n_sets;
  uint64_t seed;
  int resume, mpi;
} train_options;

enum { OPT_DATA = 256, OPT_PRESET, OPT_EPOCHS, OPT_DECAY, OPT_SIZE, OPT_SET, OPT_SAVE_EVERY, OPT_TO, OPT_SAMPLES, OPT_STYLE_FROM,
       OPT_IMAGES, OPT_STYLES, OPT_MPI };

static int parse_train(int argc, char **argv, train_options *o, int *done) {
  static const char *cmd = "train dmit";
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },     { "out", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },        { "preset", required_argument, NULL, OPT_PRESET },
    { "epochs", required_argument, NULL, OPT_EPOCHS }, { "decay-epochs", required_argument, NULL, OPT_DECAY },
    { "batch", required_argument, NULL, 'b' },
    { "size", required_argument, NULL, OPT_SIZE },     { "set", required_argument, NULL, OPT_SET },
    { "save-every", required_argument, NULL, OPT_SAVE_EVERY }, { "seed", required_argument, NULL, 's' },
    { "resume", no_argument, NULL, 'r' },              { "help", no_argument, NULL, 'h' },
    { "mpi", no_argument, NULL, OPT_MPI },             { NULL, 0, NULL, 0 },
  };
  *o = (train_options){ .device = cli_default_device(), .preset = -1, .epochs = -1, .decay_epochs = -1, .batch = -1, .size = -1, .seed = 1 };
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
      if (!strcmp(optarg, "default")) o->preset = DMIT_PRESET_DEFAULT;
      else if (!strcmp(optarg, "small")) o->preset = DMIT_PRESET_SMALL;
      else rc = cli_usage_error(cmd, "--preset expects default or small, not '%s'", optarg);
      break;
    case OPT_EPOCHS: rc = cli_parse_i64(cmd, "--epochs", optarg, 0, 1 << 20, &o->epochs); break;
    case OPT_DECAY: rc = cli_parse_i64(cmd, "--decay-epochs", optarg, 0, 1 << 20, &o->decay_epochs); break;
    case 'b': rc = cli_parse_i64(cmd, "--batch", optarg, 1, 65536, &o->batch); break;
    case OPT_SIZE: rc = cli_parse_i64(cmd, "--size", optarg, 8, 1024, &o->size); break;
    case OPT_SET: rc = cli_collect_set(cmd, optarg, o->sets, &o->n_sets, MAX_SETS); break;
    case OPT_SAVE_EVERY: rc = cli_parse_i64(cmd, "--save-every", optarg, 1, INT64_MAX / 2, &o->save_every); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &o->seed); break;
    case 'r': o->resume = 1; break;
    case OPT_MPI: o->mpi = 1; break;
    case 'h': dmit_help_train(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind < argc) return cli_usage_error(cmd, "takes no arguments, got '%s'", argv[optind]);
  if (!o->data) return cli_usage_error(cmd, "needs --data FILE (make one with 'untangle data synth --domains day,night,dusk')");
  if (!o->out || !*o->out) return cli_usage_error(cmd, "needs --out RUN, the run folder");
  if (o->resume && (o->preset >= 0 || o->batch > 0 || o->size > 0 || o->n_sets))
    return cli_usage_error(cmd, "--resume continues with the run's own settings; only --epochs and --decay-epochs may change");
  for (int i = 0; i < o->n_sets; i++) {
    const char *eq = strchr(o->sets[i], '=');
    if (!strncmp(o->sets[i], "domains=", 8) || !strncmp(o->sets[i], "n_domains=", 10) || !strncmp(o->sets[i], "channels=", 9))
      return cli_usage_error(cmd, "--set %.*s: the domains and channels come from the data set", (int)(eq - o->sets[i]),
                             o->sets[i]);
  }
  *done = 0;
  return CLI_OK;
}

/* The preset with the options and the data's domains, or the checkpoint's when resuming. */
static int choose_config(ut_runtime *rt, const train_options *o, const ut_dataset *ds, const char *ckpt, dmit_cfg *cfg) {
  const char *cmd = "train dmit";
  if (o->resume) {
    if (access(ckpt, R_OK) != 0) {
      fprintf(stderr, "untangle %s: cannot resume: no readable checkpoint at %s (%s)\n", cmd, ckpt, strerror(errno));
      return CLI_FAILED;
    }
    *cfg = dmit_preset(DMIT_PRESET_SMALL, 3, 2);
    if (dmit_read_config(rt, ckpt, cfg) != UT_OK) {
      fprintf(stderr, "untangle %s: cannot resume: %s\n", cmd, ut_last_error());
      return CLI_FAILED;
    }
    if (o->epochs >= 0) cfg->epochs = (int)o->epochs;
  } else {
    int preset = o->preset;
    if (preset < 0) preset = ut_runtime_device(rt)->type == UT_DEVICE_GPU ? DMIT_PRESET_DEFAULT : DMIT_PRESET_SMALL;
    int n = ut_dataset_n_domains(ds);
    *cfg = dmit_preset((dmit_preset_kind)preset, ut_dataset_channels(ds), n >= 2 && n <= DMIT_MAX_DOMAINS ? n : 2);
    if (ut_dataset_height(ds) < cfg->size) cfg->size = ut_dataset_height(ds);
    if (o->size > 0) cfg->size = (int)o->size;
    if (o->batch > 0) cfg->batch = (int)o->batch;
    /* Images smaller than the preset's keep as many halvings as they have pixels for (the
     * default preset's five content-discriminator blocks need 256x256 inputs). */
    while (cfg->style_blocks > 1 && (cfg->size >> cfg->style_blocks) < 1) cfg->style_blocks--;
    while (cfg->content_dis_blocks > 1 && ((cfg->size >> cfg->down_blocks) >> cfg->content_dis_blocks) < 1)
      cfg->content_dis_blocks--;
    while (cfg->image_dis_blocks > 1 && ((cfg->size / 2) >> cfg->image_dis_blocks) < 1) cfg->image_dis_blocks--;
    if (o->epochs >= 0) {
      /* The official split: half the epochs constant, half decaying. */
      cfg->epochs = (int)o->epochs;
      cfg->decay_epochs = (int)(o->epochs / 2);
    }
    if (o->decay_epochs >= 0) cfg->decay_epochs = (int)o->decay_epochs;
    cfg->seed = o->seed;
    if (cli_apply_sets(cmd, dmit_cfg_table(), cfg, o->sets, o->n_sets) != CLI_OK) return CLI_USAGE;
    printf("preset %s%s\n", dmit_preset_name((dmit_preset_kind)preset), o->preset < 0 ? " (chosen by device type)" : "");
  }
  if (o->resume && o->decay_epochs >= 0) cfg->decay_epochs = (int)o->decay_epochs;
  /* A resumed run that is now shorter than its decay decays over all of it. */
  if (o->resume && cfg->decay_epochs > cfg->epochs) cfg->decay_epochs = cfg->epochs;
  if (dmit_resolve_domains(ds, cfg) != UT_OK) {
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
  if (bar->total == 0) progress_begin(bar, stderr, "dmit", p->step, p->steps);
  char metrics[240];
  int n = snprintf(metrics, sizeof metrics, "epoch %lld/%lld D %.3f (content %.3f) adv %.3f rec %.3f cyc %.3f latent %.3f "
                   "%.0f img/s", (long long)p->epoch + 1, (long long)p->epochs, (double)p->losses[0],
                   (double)p->losses[1], (double)p->losses[2], (double)p->losses[3], (double)p->losses[4],
                   (double)p->losses[6], p->images_per_second);
  if (tp->team && n > 0 && (size_t)n < sizeof metrics)
    snprintf(metrics + n, sizeof metrics - (size_t)n, " (%d ranks, comm %.0f%%)", tp->team->size, 100 * p->comm_share);
  if (p->step == p->steps) progress_end(bar, p->step, metrics);
  else progress_update(bar, p->step, metrics);
}

static int train(const void *options, kit_team *team);

int dmit_cmd_train(int argc, char **argv) {
  train_options o;
  int done, rc = parse_train(argc, argv, &o, &done);
  return done ? rc : cli_team_run("train dmit", o.mpi, train, &o);
}

static int train(const void *options, kit_team *team) {
  train_options o = *(const train_options *)options;
  int rc = CLI_FAILED;
  dmit_model *m = NULL;
  ut_dataset *ds = NULL;
  char device_buf[64];
  const char *device = cli_team_device("train dmit", o.device, team, device_buf, sizeof device_buf);
  char *ckpt = device ? kit_path(o.out, DMIT_CHECKPOINT) : NULL;
  ut_runtime *rt = ckpt ? cli_open_runtime("train dmit", device, 1) : NULL;
  if (!rt) goto done;
  if (!(ds = ut_dataset_open(o.data))) {
    fprintf(stderr, "untangle train dmit: %s\n", ut_last_error());
    goto done;
  }
  dmit_cfg cfg;
  if ((rc = choose_config(rt, &o, ds, ckpt, &cfg)) != CLI_OK) goto done;
  rc = CLI_FAILED;
  if (!(m = dmit_new(rt, &cfg)) || (o.resume && dmit_load(m, ckpt) != UT_OK) || dmit_set_team(m, team) != UT_OK) {
    fprintf(stderr, "untangle train dmit: %s\n", ut_last_error());
    goto done;
  }
  if (o.resume) printf("resuming %s after step %lld\n", ckpt, (long long)kit_steps_done(dmit_store(m), NULL));
  if (cli_mkdirs(o.out) != 0) {
    fprintf(stderr, "untangle train dmit: cannot create the folder %s: %s\n", o.out, strerror(errno));
    goto done;
  }
  printf("DMIT %dx%dx%d: domains %s, width %d/%d, style %d, %d + %d residual blocks, batch %d per domain, %d epochs "
         "(%d decaying), seed %llu\n", cfg.channels, cfg.size, cfg.size, cfg.domains, cfg.nef, cfg.ndf, cfg.n_style,
         cfg.content_res, cfg.dec_res, cfg.batch, cfg.epochs, cfg.decay_epochs, (unsigned long long)cfg.seed);
  if (team) printf("data-parallel over %d ranks: %d images of each domain each per step\n", team->size,
                  cfg.batch / team->size);
  fflush(stdout);
  train_progress bar = { .team = team };
  double t0 = ut_seconds();
  if (dmit_train(m, ds, &(dmit_train_opts){ .run_dir = o.out, .save_every = o.save_every, .on_step = on_step,
                                            .user = &bar, .team = team }) != UT_OK) {
    if (team) fprintf(stderr, "\nuntangle train dmit: rank %d: %s\n", team->rank, ut_last_error());
    else fprintf(stderr, "\nuntangle train dmit: %s\n", ut_last_error());
    goto done;
  }
  printf("trained in %.1f s; checkpoint %s, grid %s/grid.jpg\n", ut_seconds() - t0, ckpt, o.out);
  rc = CLI_OK;
done:
  dmit_free(m);
  ut_dataset_close(ds);
  ut_runtime_close(rt);
  free(ckpt);
  return rc;
}

/* ---- translate and grid ----------------------------------------------------------------------- */

void dmit_help_translate(FILE *out) {
  fprintf(out,
          "Usage: untangle translate RUN --to DOMAIN IN.jpg -o OUT.jpg [--samples N] [--seed S]\n"
          "                          [--style-from REF.jpg] [-d D]\n"
          "\n"
          "Draws IN.jpg in DOMAIN (a domain's name, or its index from 0) with the DMIT run RUN: N\n"
          "translations (default 4) side by side, each with a style drawn from the prior N(0, I) by\n"
          "--seed S (default 1; the same seed gives the same styles), or one translation with the\n"
          "style the style encoder finds in REF.jpg (its mean). Images are centre-cropped and resized\n"
          "to the model's size.\n");
}

void dmit_help_grid(FILE *out) {
  fprintf(out,
          "Usage: untangle grid RUN --images A.jpg B.jpg ... -o GRID.jpg [--styles K] [--seed S] [-d D]\n"
          "\n"
          "A grid of the given images (1 to %d) with the DMIT run RUN: the images down the side and,\n"
          "across, each image, then its translation into every domain of the run with K prior styles\n"
          "(default 3) drawn by --seed S (default 1), the same K styles in every row and domain.\n",
          MAX_GRID_IMAGES);
}

typedef struct {
  const char *run, *out, *device, *domain, *style_from;
  char **images;
  int n_images;
  int64_t samples;
  int samples_given;
  uint64_t seed;
} infer_options;

static int parse_infer(const char *cmd, int argc, char **argv, int grid, infer_options *o, int *done) {
  static const struct option long_options[] = {
    { "out", required_argument, NULL, 'o' },        { "device", required_argument, NULL, 'd' },
    { "to", required_argument, NULL, OPT_TO },      { "samples", required_argument, NULL, OPT_SAMPLES },
    { "styles", required_argument, NULL, OPT_STYLES }, { "style-from", required_argument, NULL, OPT_STYLE_FROM },
    { "seed", required_argument, NULL, 's' },       { "images", no_argument, NULL, OPT_IMAGES },
    { "help", no_argument, NULL, 'h' },             { NULL, 0, NULL, 0 },
  };
  *o = (infer_options){ .device = cli_default_device(), .samples = grid ? 3 : 4, .seed = 1 };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:s:h", long_options, NULL)) != -1;) {
    switch (c) {
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case OPT_TO:
      if (grid) return cli_usage_error(cmd, "draws every domain; it takes no --to");
      o->domain = optarg;
      break;
    case OPT_SAMPLES:
      if (grid) return cli_usage_error(cmd, "takes --styles K, not --samples");
      rc = cli_parse_i64(cmd, "--samples", optarg, 1, MAX_SAMPLES, &o->samples);
      o->samples_given = 1;
      break;
    case OPT_STYLES:
      if (!grid) return cli_usage_error(cmd, "takes --samples N, not --styles");
      rc = cli_parse_i64(cmd, "--styles", optarg, 1, 16, &o->samples);
      break;
    case OPT_STYLE_FROM:
      if (grid) return cli_usage_error(cmd, "draws prior styles; it takes no --style-from");
      o->style_from = optarg;
      break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &o->seed); break;
    case OPT_IMAGES: break;
    case 'h': (grid ? dmit_help_grid : dmit_help_translate)(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind >= argc) return cli_usage_error(cmd, "needs the run folder RUN first");
  o->run = argv[optind++];
  o->images = argv + optind;
  o->n_images = argc - optind;
  if (o->style_from && o->samples_given)
    return cli_usage_error(cmd, "--style-from gives one translation in the reference's style; --samples is for prior styles");
  if (!grid && !o->domain) return cli_usage_error(cmd, "needs --to DOMAIN (a domain's name or index)");
  if (!o->out) return cli_usage_error(cmd, "needs -o OUT.jpg");
  if (!grid && o->n_images != 1) return cli_usage_error(cmd, "translates one image, got %d", o->n_images);
  if (grid && (o->n_images < 1 || o->n_images > MAX_GRID_IMAGES))
    return cli_usage_error(cmd, "needs 1 to %d images after --images", MAX_GRID_IMAGES);
  *done = 0;
  return CLI_OK;
}

/* The domain index from a name or a number; -1 with a message naming the run's domains. */
static int domain_of(const char *cmd, const dmit_cfg *c, const char *name) {
  int d = dmit_find_domain(c, name);
  char *end;
  long k = strtol(name, &end, 10);
  if (d < 0 && *name && !*end && k >= 0 && k < c->n_domains) d = (int)k;
  if (d < 0) fprintf(stderr, "untangle %s: the run's domains are %s, not '%s'\n", cmd, c->domains, name);
  return d;
}

static int run_infer(const char *cmd, const infer_options *o, int grid) {
  int rc = CLI_FAILED;
  float *images = NULL, *out = NULL, *styles = NULL;
  dmit_model *m = NULL;
  ut_runtime *rt = cli_open_runtime(cmd, o->device, 0);
  if (!rt) return CLI_FAILED;
  if (!(m = dmit_open_run(rt, o->run))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const dmit_cfg *c = dmit_config(m);
  int d = grid ? 0 : domain_of(cmd, c, o->domain), n = o->n_images + (o->style_from ? 1 : 0);
  int64_t per = (int64_t)c->channels * c->size * c->size, k = o->style_from ? 1 : o->samples;
  if (d < 0) goto done;
  images = malloc((size_t)((n > k ? n : k) * per) * sizeof *images);
  out = malloc((size_t)(k * per) * sizeof *out);
  styles = malloc((size_t)(k * c->n_style) * sizeof *styles);
  if (!images || !out || !styles) {
    fprintf(stderr, "untangle %s: out of memory\n", cmd);
    goto done;
  }
  const char *paths[MAX_GRID_IMAGES + 1];
  for (int i = 0; i < o->n_images; i++) paths[i] = o->images[i];
  if (o->style_from) paths[o->n_images] = o->style_from;
  for (int i = 0; i < n; i++)
    if (ut_jpeg_read_float(paths[i], c->channels, c->size, images + i * per) != UT_OK) {
      fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
      goto done;
    }
  ut_status st;
  if (grid) {
    st = dmit_write_grid(m, images, n, (int)o->samples, o->seed, o->out);
  } else {
    if (o->style_from) st = dmit_encode_style(m, images + per, 1, styles);
    else dmit_prior_styles(c, o->seed, k, styles), st = UT_OK;
    /* The input repeated once per style. */
    for (int64_t i = 1; i < k; i++) memcpy(images + i * per, images, (size_t)per * sizeof *images);
    if (st == UT_OK) st = dmit_translate(m, images, k, d, styles, out);
    if (st == UT_OK) st = ut_grid_write_jpeg(o->out, out, (int)k, c->channels, c->size, c->size, (int)k, 95);
  }
  if (st != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  printf("wrote %s\n", o->out);
  rc = CLI_OK;
done:
  free(images);
  free(out);
  free(styles);
  dmit_free(m);
  ut_runtime_close(rt);
  return rc;
}

int dmit_cmd_translate(int argc, char **argv) {
  infer_options o;
  int done, rc = parse_infer("translate", argc, argv, 0, &o, &done);
  return done ? rc : run_infer("translate", &o, 0);
}

int dmit_cmd_grid(int argc, char **argv) {
  infer_options o;
  int done, rc = parse_infer("grid", argc, argv, 1, &o, &done);
  return done ? rc : run_infer("grid", &o, 1);
}

/* ---- eval ------------------------------------------------------------------------------------- */

void dmit_help_eval(FILE *out) {
  fprintf(out,
          "Usage: untangle eval RUN --data FILE [OPTIONS]\n"
          "\n"
          "Measures the DMIT run RUN on its held-out images of FILE (the data set it was trained on) and\n"
          "writes RUN/eval.json:\n"
          "  domain judge   a CNN trained here on real images labelled by domain: its held-out accuracy\n"
          "                 and the share of translations (every input into every other domain, prior\n"
          "                 styles) it takes for the target domain, beside the input copied\n"
          "  content kept   (sets with content labels, as 'data synth' sets) pixel L1 of a translation\n"
          "                 with a reference image's style against the true image of the input's\n"
          "                 (class, view) in the target domain and the reference's style, beside the copy\n"
          "  diversity      mean pairwise L1 between translations with 4 prior styles, beside real\n"
          "                 images of the domain (the same (class, view) in its styles, with styles)\n"
          "  leakage        probes on the codes of training and held-out images, scored over folds of\n"
          "                 whole (class, view) groups: domain (and style) from content codes, view and\n"
          "                 class from style codes, beside chance (the majority share); and view and\n"
          "                 class from content, style from style codes, which must be high\n"
          "  content D      how often the content discriminator rates a code's own domain most real\n"
          "\n"
          "Options:\n"
          "      --data FILE          the data set the run was trained on (required)\n"
          "  -o, --out JSON           write the report here instead of RUN/eval.json\n"
          "  -d, --device D           an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "      --max-images N       held-out images per domain at most (default 200)\n"
          "      --judge-epochs N     training epochs of the domain judge (default 5)\n"
          "      --judge-images N     real training images the judge learns from, at most (default 3000)\n"
          "      --judge-min-accuracy A  the judge's held-out accuracy needed before it judges (default\n"
          "                           0.9); below it eval stops, since a weak judge says nothing\n"
          "      --probe-images N     images per domain whose codes the leakage probes see (default 1000)\n"
          "      --probe-folds K      folds of whole (class, view) groups the probes are scored over\n"
          "                           (default 5; every code is scored once)\n"
          "  -s, --seed S             seed of every random choice (default 1)\n"
          "  -h, --help               show this help\n");
}

int dmit_cmd_eval(int argc, char **argv) {
  static const char *cmd = "eval";
  enum { OPT_EVAL_DATA = 300, OPT_MAX_IMAGES, OPT_JUDGE_EPOCHS, OPT_PROBE_IMAGES, OPT_PROBE_FOLDS, OPT_JUDGE_MIN, OPT_JUDGE_IMAGES };
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_EVAL_DATA },    { "out", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },            { "max-images", required_argument, NULL, OPT_MAX_IMAGES },
    { "judge-epochs", required_argument, NULL, OPT_JUDGE_EPOCHS }, { "seed", required_argument, NULL, 's' },
    { "judge-min-accuracy", required_argument, NULL, OPT_JUDGE_MIN }, { "judge-images", required_argument, NULL, OPT_JUDGE_IMAGES },
    { "probe-images", required_argument, NULL, OPT_PROBE_IMAGES }, { "probe-folds", required_argument, NULL, OPT_PROBE_FOLDS },
    { "help", no_argument, NULL, 'h' },                    { NULL, 0, NULL, 0 },
  };
  const char *data = NULL, *out = NULL, *device = cli_default_device();
  dmit_eval_cfg cfg = dmit_eval_default_cfg();
  int64_t epochs = cfg.judge_epochs, folds = cfg.probe_folds;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:s:h", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_EVAL_DATA: data = optarg; break;
    case 'o': out = optarg; break;
    case 'd': device = optarg; break;
    case OPT_MAX_IMAGES: rc = cli_parse_i64(cmd, "--max-images", optarg, 1, 1 << 20, &cfg.max_images); break;
    case OPT_JUDGE_EPOCHS: rc = cli_parse_i64(cmd, "--judge-epochs", optarg, 1, 1000, &epochs); break;
    case OPT_JUDGE_IMAGES: rc = cli_parse_i64(cmd, "--judge-images", optarg, 2, 1 << 24, &cfg.judge_images); break;
    case OPT_JUDGE_MIN: rc = cli_parse_double(cmd, "--judge-min-accuracy", optarg, 0, 1, &cfg.judge_min_accuracy); break;
    case OPT_PROBE_IMAGES: rc = cli_parse_i64(cmd, "--probe-images", optarg, 1, 1 << 20, &cfg.probe_images); break;
    case OPT_PROBE_FOLDS: rc = cli_parse_i64(cmd, "--probe-folds", optarg, 2, 100, &folds); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &cfg.seed); break;
    case 'h': dmit_help_eval(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  cfg.judge_epochs = (int)epochs;
  cfg.probe_folds = (int)folds;
  const char *run = NULL;
  if ((rc = cli_eval_operands(cmd, argc, argv, data, &run)) != CLI_OK) return rc;
  rc = CLI_FAILED;
  dmit_model *m = NULL;
  ut_dataset *ds = NULL;
  char *json = NULL;
  ut_runtime *rt = cli_open_runtime(cmd, device, 0);
  if (!rt) return CLI_FAILED;
  if (!(m = dmit_open_run(rt, run)) || !(ds = ut_dataset_open(data))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("evaluating DMIT run %s on %s, device %d: %s\n", run, data, dev->index, dev->name);
  fflush(stdout);
  double start = ut_seconds();
  cfg.on_part = cli_eval_part;
  cfg.user = &start;
  dmit_eval_report r;
  if (dmit_evaluate(rt, m, ds, &cfg, &r) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  dmit_eval_print(stdout, &r);
  json = dmit_eval_json(&r, run, data, dev->name);
  if (cli_write_eval_json(cmd, run, out, json, ut_seconds() - start) != CLI_OK) goto done;
  rc = CLI_OK;
done:
  free(json);
  ut_dataset_close(ds);
  dmit_free(m);
  ut_runtime_close(rt);
  return rc;
}
