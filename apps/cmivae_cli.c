/* `untangle train cmivae`, and translate and grid of a CMI-VAE run (models/cmivae*.h); its eval
 * is in cmivae_eval_cmd.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_team.h"
#include "cmivae_colour.h"
#include "cmivae_train.h"
#include "commands.h"
#include "progress.h"

#define MAX_SETS 32
#define MAX_GRID 16

void cmivae_help_train(FILE *out) {
  fprintf(out,
          "Usage: untangle train cmivae --data FILE --feature hue|class --out RUN [OPTIONS]\n"
          "\n"
          "Trains CMI-VAE (Tang, Zhou, He & Ma, ICPR 2020): a VAE with two codes, z1 encoded from the\n"
          "image and z2 from a specified feature f(x), the hue of a coloured set ('untangle data\n"
          "colorize') or the class. Each step also fuses z1 of an image with z2 of an independent one\n"
          "and trains the conditional mutual information term on the fused image: for hue the squared\n"
          "distance between its measured hue direction and the other image's, for class the\n"
          "cross-entropy of an auxiliary classifier q naming the other image's class. With --set\n"
          "w_gan=W (lambda4; 0 by default, which measured best for hue) a conditional GAN D(z2, x)\n"
          "also judges fused images. --no-cmi drops the CMI term (the paper's ablation: without the\n"
          "GAN the generator then takes the hue from z1 and ignores z2). A share of the images is\n"
          "held out for 'untangle eval'.\n"
          "After every epoch RUN/" CMIVAE_CHECKPOINT " is written atomically, losses are appended to\n"
          "RUN/losses.tsv and RUN/grid.jpg fuses held-out images: z1 sources down the left, z2\n"
          "sources across the top.\n"
          "\n"
          "Options:\n"
          "      --data FILE        the data set (required)\n"
          "      --feature F        hue (needs the attribute 'hue') or class (required)\n"
          "  -o, --out RUN          the run folder, created if missing (required)\n"
          "      --no-cmi           leave out the CMI term L_f (the ablation)\n"
          "  -d, --device D         an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "                         (default: $UNTANGLE_DEVICE, else best)\n"
          "      --preset P         default (64x64, width 64, batch 64) or small (32x32, width 32,\n"
          "                         batch 32, 32 epochs); default on a GPU, small otherwise\n"
          "      --epochs N         passes over the training images\n"
          "  -b, --batch B          images per step\n"
          "      --size S           model input side; larger data images are cropped at random\n"
          "                         (default: the preset's, or the data's side when smaller)\n"
          "      --set FIELD=VALUE  any configuration field (z1_dim, z2_dim, ch, dis_ch, e2_hidden,\n"
          "                         w_recon, w_kl, w_f, w_gan, lr, beta1, beta2, test_ratio); may repeat\n"
          "      --save-every N     also write the checkpoint every N steps\n"
          "  -s, --seed S           seed of parameters, noise, batches and the split (default 1)\n"
          "  -r, --resume           continue RUN from its checkpoint with its own settings; only\n"
          "                         --epochs and --set w_recon, w_kl or w_f may change\n");
  cli_team_help(out);
  fprintf(out, "  -h, --help             show this help\n");
}

typedef struct {
  const char *data, *out, *device, *feature;
  int preset, no_cmi, resume, mpi;
  int64_t epochs, batch, size, save_every;
  const char *sets[MAX_SETS];
  int n_sets;
  uint64_t seed;
} train_options;

enum { OPT_DATA = 256, OPT_FEATURE, OPT_NO_CMI, OPT_PRESET, OPT_EPOCHS, OPT_SIZE, OPT_SET, OPT_SAVE_EVERY,
       OPT_CONTENT, OPT_FROM_FEATURE, OPT_HUE, OPT_CLASS, OPT_MPI };

/* The loss weights of E1, E2 and G: training settings that shape no tensor, so a resumed run may
 * change them (cmivae_load). */
static const char *const resume_weights[] = { "w_recon", "w_kl", "w_f" };

static int resume_may_set(const char *set) {
  size_t n = strcspn(set, "=");
  for (size_t i = 0; i < sizeof resume_weights / sizeof resume_weights[0]; i++)
    if (strlen(resume_weights[i]) == n && !strncmp(set, resume_weights[i], n)) return 1;
  return 0;
}

static int parse_train(int argc, char **argv, train_options *o, int *done) {
  static const char *cmd = "train cmivae";
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },     { "feature", required_argument, NULL, OPT_FEATURE },
    { "out", required_argument, NULL, 'o' },           { "no-cmi", no_argument, NULL, OPT_NO_CMI },
    { "device", required_argument, NULL, 'd' },        { "preset", required_argument, NULL, OPT_PRESET },
    { "epochs", required_argument, NULL, OPT_EPOCHS }, { "batch", required_argument, NULL, 'b' },
    { "size", required_argument, NULL, OPT_SIZE },     { "set", required_argument, NULL, OPT_SET },
    { "save-every", required_argument, NULL, OPT_SAVE_EVERY }, { "seed", required_argument, NULL, 's' },
    { "resume", no_argument, NULL, 'r' },              { "help", no_argument, NULL, 'h' },
    { "mpi", no_argument, NULL, OPT_MPI },             { NULL, 0, NULL, 0 },
  };
  *o = (train_options){ .device = cli_default_device(), .preset = -1, .epochs = -1, .batch = -1, .size = -1, .seed = 1 };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:b:s:rh", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_DATA: o->data = optarg; break;
    case OPT_FEATURE:
      if (strcmp(optarg, "hue") && strcmp(optarg, "class")) rc = cli_usage_error(cmd, "--feature expects hue or class, not '%s'", optarg);
      o->feature = optarg;
      break;
    case 'o': o->out = optarg; break;
    case OPT_NO_CMI: o->no_cmi = 1; break;
    case 'd': o->device = optarg; break;
    case OPT_PRESET:
      if (!strcmp(optarg, "default")) o->preset = CMIVAE_PRESET_DEFAULT;
      else if (!strcmp(optarg, "small")) o->preset = CMIVAE_PRESET_SMALL;
      else rc = cli_usage_error(cmd, "--preset expects default or small, not '%s'", optarg);
      break;
    case OPT_EPOCHS: rc = cli_parse_i64(cmd, "--epochs", optarg, 0, 1 << 20, &o->epochs); break;
    case 'b': rc = cli_parse_i64(cmd, "--batch", optarg, 2, 65536, &o->batch); break;
    case OPT_SIZE: rc = cli_parse_i64(cmd, "--size", optarg, 8, 1024, &o->size); break;
    case OPT_SET: rc = cli_collect_set(cmd, optarg, o->sets, &o->n_sets, MAX_SETS); break;
    case OPT_SAVE_EVERY: rc = cli_parse_i64(cmd, "--save-every", optarg, 1, INT64_MAX / 2, &o->save_every); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &o->seed); break;
    case 'r': o->resume = 1; break;
    case OPT_MPI: o->mpi = 1; break;
    case 'h': cmivae_help_train(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind < argc) return cli_usage_error(cmd, "takes no arguments, got '%s'", argv[optind]);
  if (!o->data) return cli_usage_error(cmd, "needs --data FILE (make a coloured set with 'untangle data colorize')");
  if (!o->out || !*o->out) return cli_usage_error(cmd, "needs --out RUN, the run folder");
  if (o->resume && (o->preset >= 0 || o->feature || o->no_cmi || o->batch > 0 || o->size > 0))
    return cli_usage_error(cmd, "--resume continues with the run's own settings; only --epochs and --set of the loss "
                           "weights w_recon, w_kl and w_f may change");
  for (int i = 0; o->resume && i < o->n_sets; i++)
    if (!resume_may_set(o->sets[i]))
      return cli_usage_error(cmd, "--resume: --set %s: only the loss weights w_recon, w_kl and w_f may change when "
                             "resuming", o->sets[i]);
  if (!o->resume && !o->feature) return cli_usage_error(cmd, "needs --feature hue or --feature class");
  *done = 0;
  return CLI_OK;
}

/* The preset with the options, or the checkpoint's configuration when resuming. */
static int choose_config(ut_runtime *rt, const train_options *o, const ut_dataset *ds, const char *ckpt, cmivae_cfg *cfg) {
  const char *cmd = "train cmivae";
  if (o->resume) {
    if (access(ckpt, R_OK) != 0) {
      fprintf(stderr, "untangle %s: cannot resume: no readable checkpoint at %s (%s)\n", cmd, ckpt, strerror(errno));
      return CLI_FAILED;
    }
    *cfg = cmivae_preset(CMIVAE_PRESET_SMALL, CMIVAE_FEATURE_HUE, 0);
    if (cmivae_read_config(rt, ckpt, cfg) != UT_OK) {
      fprintf(stderr, "untangle %s: cannot resume: %s\n", cmd, ut_last_error());
      return CLI_FAILED;
    }
    const cmivae_cfg was = *cfg;
    if (cli_apply_sets(cmd, cmivae_cfg_table(), cfg, o->sets, o->n_sets) != CLI_OK) return CLI_USAGE;
    const float before[] = { was.w_recon, was.w_kl, was.w_f }, after[] = { cfg->w_recon, cfg->w_kl, cfg->w_f };
    for (int i = 0; i < 3; i++)
      if (before[i] != after[i])
        printf("%s changes from %g to %g (the checkpoint records the new weight)\n", resume_weights[i],
               (double)before[i], (double)after[i]);
  } else {
    int preset = o->preset;
    if (preset < 0) preset = ut_runtime_device(rt)->type == UT_DEVICE_GPU ? CMIVAE_PRESET_DEFAULT : CMIVAE_PRESET_SMALL;
    cmivae_feature feature = strcmp(o->feature, "hue") ? CMIVAE_FEATURE_CLASS : CMIVAE_FEATURE_HUE;
    *cfg = cmivae_preset((cmivae_preset_kind)preset, feature, ut_dataset_n_classes(ds));
    cfg->channels = ut_dataset_channels(ds);
    if (ut_dataset_height(ds) < cfg->size) cfg->size = ut_dataset_height(ds);
    if (o->size > 0) cfg->size = (int)o->size;
    if (o->batch > 0) cfg->batch = (int)o->batch;
    cfg->cmi = !o->no_cmi;
    cfg->seed = o->seed;
    if (cli_apply_sets(cmd, cmivae_cfg_table(), cfg, o->sets, o->n_sets) != CLI_OK) return CLI_USAGE;
    printf("preset %s%s\n", cmivae_preset_name((cmivae_preset_kind)preset), o->preset < 0 ? " (chosen by device type)" : "");
  }
  if (o->epochs >= 0) cfg->epochs = (int)o->epochs;
  if (cmivae_check_data(ds, cfg) != UT_OK || cmivae_cfg_check(cfg) != UT_OK) {
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
  if (bar->total == 0) progress_begin(bar, stderr, "cmivae", p->step, p->steps);
  char metrics[200];
  int n = snprintf(metrics, sizeof metrics, "epoch %lld/%lld D %.3f recon %.1f kl %.1f feature %.3f gan %.3f %.0f img/s",
                   (long long)p->epoch + 1, (long long)p->epochs, (double)p->losses[0], (double)p->losses[2],
                   (double)p->losses[3], (double)p->losses[4], (double)p->losses[5], p->images_per_second);
  if (tp->team && n > 0 && (size_t)n < sizeof metrics)
    snprintf(metrics + n, sizeof metrics - (size_t)n, " (%d ranks, comm %.0f%%)", tp->team->size, 100 * p->comm_share);
  if (p->step == p->steps) progress_end(bar, p->step, metrics);
  else progress_update(bar, p->step, metrics);
}

static int train(const void *options, kit_team *team);

int cmivae_cmd_train(int argc, char **argv) {
  train_options o;
  int done, rc = parse_train(argc, argv, &o, &done);
  return done ? rc : cli_team_run("train cmivae", o.mpi, train, &o);
}

static int train(const void *options, kit_team *team) {
  train_options o = *(const train_options *)options;
  int rc = CLI_FAILED;
  cmivae_model *m = NULL;
  ut_dataset *ds = NULL;
  ut_runtime *rt = NULL;
  char *ckpt = kit_path(o.out, CMIVAE_CHECKPOINT), device_buf[64];
  const char *device = cli_team_device("train cmivae", o.device, team, device_buf, sizeof device_buf);
  if (!device || !ckpt || !(rt = cli_open_runtime("train cmivae", device, 1))) goto done;
  if (!(ds = ut_dataset_open(o.data))) {
    fprintf(stderr, "untangle train cmivae: %s\n", ut_last_error());
    goto done;
  }
  cmivae_cfg cfg;
  if ((rc = choose_config(rt, &o, ds, ckpt, &cfg)) != CLI_OK) goto done;
  rc = CLI_FAILED;
  if (!(m = cmivae_new(rt, &cfg)) || (o.resume && cmivae_load(m, ckpt) != UT_OK) || cmivae_set_team(m, team) != UT_OK) {
    fprintf(stderr, "untangle train cmivae: %s\n", ut_last_error());
    goto done;
  }
  if (o.resume) printf("resuming %s after step %lld\n", ckpt, (long long)kit_steps_done(cmivae_store(m), NULL));
  if (cli_mkdirs(o.out) != 0) {
    fprintf(stderr, "untangle train cmivae: cannot create the folder %s: %s\n", o.out, strerror(errno));
    goto done;
  }
  printf("CMI-VAE %dx%dx%d, feature %s%s, z1 %d, z2 %d, width %d, weights recon %g kl %g feature %g gan %g, batch %d, "
         "%d epochs, seed %llu\n", cfg.channels, cfg.size, cfg.size, cmivae_feature_name(cfg.feature),
         cfg.cmi ? "" : " (no CMI term)", cfg.z1_dim, cfg.z2_dim, cfg.ch, (double)cfg.w_recon, (double)cfg.w_kl,
         (double)cfg.w_f, (double)cfg.w_gan, cfg.batch, cfg.epochs, (unsigned long long)cfg.seed);
  if (team) printf("data-parallel over %d ranks: %d images each per step\n", team->size, cfg.batch / team->size);
  fflush(stdout);
  train_progress bar = { .team = team };
  double t0 = ut_seconds();
  if (cmivae_train(m, ds, &(cmivae_train_opts){ .run_dir = o.out, .save_every = o.save_every, .on_step = on_step,
                                                .user = &bar, .team = team }) != UT_OK) {
    if (team) fprintf(stderr, "\nuntangle train cmivae: rank %d: %s\n", team->rank, ut_last_error());
    else fprintf(stderr, "\nuntangle train cmivae: %s\n", ut_last_error());
    goto done;
  }
  printf("trained in %.1f s; checkpoint %s, grid %s/grid.jpg\n", ut_seconds() - t0, ckpt, o.out);
  rc = CLI_OK;
done:
  cmivae_free(m);
  ut_dataset_close(ds);
  ut_runtime_close(rt);
  free(ckpt);
  return rc;
}
