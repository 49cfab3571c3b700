/* `untangle train lord`: LORD's two stages on a data set file (models/lord_train.h), with a
 * progress line per stage, a checkpoint and a sample grid after every epoch, and --resume. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_team.h"
#include "commands.h"
#include "lord_train.h"
#include "progress.h"

#define CMD "train lord"

void help_train_lord(FILE *out) {
  fprintf(out,
          "Usage: untangle train lord --data FILE --out RUN [OPTIONS]\n"
          "\n"
          "Trains LORD (latent optimisation of class and content codes, then amortised encoders) on a\n"
          "data set file from 'untangle data'. After every epoch RUN/" LORD_CHECKPOINT " is written\n"
          "atomically, losses are appended to RUN/losses.tsv, and RUN/grid.jpg shows translations\n"
          "(first row: content sources, first column: class sources).\n"
          "\n"
          "Options:\n"
          "      --data FILE        the data set (required)\n"
          "  -o, --out RUN          the run folder, created if missing (required)\n"
          "  -d, --device D         an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "                         (default: $UNTANGLE_DEVICE, else best)\n"
          "      --preset P         default (the official widths: content 128, class 256, 256-channel\n"
          "                         generator, batch 128) or small (content 32, class 64, 32 channels,\n"
          "                         batch 32); default on a GPU, small otherwise. The image size is the\n"
          "                         data's (a multiple of 16).\n"
          "      --content-dim N, --class-dim N   the code sizes (default: the preset's)\n"
          "      --epochs N         epochs of each stage (default: the preset's, 200 or 60/30)\n"
          "      --epochs1 N, --epochs2 N   epochs of one stage\n"
          "  -b, --batch B          images per step (default: the preset's)\n"
          "      --stage S          1 or 2: train only that stage (default both)\n"
          "      --recon R          l1 (pixel L1), vgg (pixel L1 + VGG16 features, needs --vgg) or\n"
          "                         vgg-random (the VGG computation with untrained weights, for timing)\n"
          "      --vgg FILE         torchvision vgg16 weights as safetensors (features.N.weight/bias);\n"
          "                         implies --recon vgg\n"
          "      --test-classes N   classes held out of training for one-shot evaluation (default: a\n"
          "                         tenth of the classes, none below 5 classes)\n"
          "      --content-noise S  standard deviation of the Gaussian noise added to content codes in\n"
          "                         stage 1 (default 1)\n"
          "      --content-decay W  weight of the activation decay on content codes (default 1e-4);\n"
          "                         --content-noise 0 --content-decay 0 trains the plain autoencoder\n"
          "                         baseline the paper compares against\n"
          "      --content-invariance W   not in LORD: weight of a stage-2 term that pulls each\n"
          "                         class's mean and second moment of the content encoder's codes\n"
          "                         within a batch to the batch's, so the codes stop carrying the class\n"
          "                         (default 0: off, the paper's loss; with --resume, the checkpoint's);\n"
          "                         refused with --mpi when stage 2 runs\n"
          "      --save-every N     also write the checkpoint every N steps (default: every epoch)\n"
          "  -s, --seed S           seed of parameters, noise, batches and the split (default 1)\n"
          "  -r, --resume           continue RUN from its checkpoint with its own settings\n");
  cli_team_help(out);
  fprintf(out, "  -h, --help             show this help\n");
}

typedef struct {
  const char *data, *out, *device, *vgg;
  int preset; /* -1: by device type */
  int64_t epochs1, epochs2, batch, stage, test_classes, recon, save_every;
  int64_t content_dim, class_dim; /* -1: the preset's */
  double content_noise, content_decay; /* negative: the preset's */
  double content_invariance;           /* negative: off, or the checkpoint's when resuming */
  uint64_t seed;
  int resume, mpi;
} options;

enum { OPT_DATA = 256, OPT_PRESET, OPT_EPOCHS, OPT_EPOCHS1, OPT_EPOCHS2, OPT_STAGE, OPT_RECON, OPT_VGG, OPT_TEST, OPT_NOISE, OPT_DECAY, OPT_INVARIANCE,
       OPT_SAVE_EVERY, OPT_MPI, OPT_CONTENT_DIM, OPT_CLASS_DIM };

static int parse_options(int argc, char **argv, options *o, int *done) {
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },       { "out", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },          { "preset", required_argument, NULL, OPT_PRESET },
    { "epochs", required_argument, NULL, OPT_EPOCHS },   { "epochs1", required_argument, NULL, OPT_EPOCHS1 },
    { "epochs2", required_argument, NULL, OPT_EPOCHS2 }, { "batch", required_argument, NULL, 'b' },
    { "stage", required_argument, NULL, OPT_STAGE },     { "recon", required_argument, NULL, OPT_RECON },
    { "vgg", required_argument, NULL, OPT_VGG },         { "test-classes", required_argument, NULL, OPT_TEST },
    { "content-noise", required_argument, NULL, OPT_NOISE }, { "content-decay", required_argument, NULL, OPT_DECAY },
    { "content-invariance", required_argument, NULL, OPT_INVARIANCE },
    { "content-dim", required_argument, NULL, OPT_CONTENT_DIM }, { "class-dim", required_argument, NULL, OPT_CLASS_DIM },
    { "save-every", required_argument, NULL, OPT_SAVE_EVERY },
    { "seed", required_argument, NULL, 's' },            { "resume", no_argument, NULL, 'r' },
    { "mpi", no_argument, NULL, OPT_MPI },
    { "help", no_argument, NULL, 'h' },                  { NULL, 0, NULL, 0 },
  };
  *o = (options){ .device = cli_default_device(), .preset = -1, .epochs1 = -1,
                  .epochs2 = -1, .batch = -1, .test_classes = -1, .recon = -1, .content_noise = -1, .content_invariance = -1,
                  .content_decay = -1, .content_dim = -1, .class_dim = -1, .seed = 1 };
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
      if (!strcmp(optarg, "default")) o->preset = LORD_PRESET_DEFAULT;
      else if (!strcmp(optarg, "small")) o->preset = LORD_PRESET_SMALL;
      else rc = cli_usage_error(CMD, "--preset expects default or small, not '%s'", optarg);
      break;
    case OPT_EPOCHS:
      rc = cli_parse_i64(CMD, "--epochs", optarg, 0, 1 << 20, &o->epochs1);
      o->epochs2 = o->epochs1;
      break;
    case OPT_EPOCHS1: rc = cli_parse_i64(CMD, "--epochs1", optarg, 0, 1 << 20, &o->epochs1); break;
    case OPT_EPOCHS2: rc = cli_parse_i64(CMD, "--epochs2", optarg, 0, 1 << 20, &o->epochs2); break;
    case 'b': rc = cli_parse_i64(CMD, "--batch", optarg, 1, 65536, &o->batch); break;
    case OPT_STAGE: rc = cli_parse_i64(CMD, "--stage", optarg, 1, 2, &o->stage); break;
    case OPT_RECON:
      if (!strcmp(optarg, "l1")) o->recon = LORD_RECON_L1;
      else if (!strcmp(optarg, "vgg")) o->recon = LORD_RECON_VGG;
      else if (!strcmp(optarg, "vgg-random")) o->recon = LORD_RECON_VGG_RANDOM;
      else rc = cli_usage_error(CMD, "--recon expects l1, vgg or vgg-random, not '%s'", optarg);
      break;
    case OPT_VGG: o->vgg = optarg; break;
    case OPT_TEST: rc = cli_parse_i64(CMD, "--test-classes", optarg, 0, INT32_MAX, &o->test_classes); break;
    case OPT_NOISE: rc = cli_parse_double(CMD, "--content-noise", optarg, 0, 100, &o->content_noise); break;
    case OPT_DECAY: rc = cli_parse_double(CMD, "--content-decay", optarg, 0, 100, &o->content_decay); break;
    case OPT_INVARIANCE:
      rc = cli_parse_double(CMD, "--content-invariance", optarg, 0, 1e6, &o->content_invariance);
      break;
    case OPT_CONTENT_DIM: rc = cli_parse_i64(CMD, "--content-dim", optarg, 1, 65536, &o->content_dim); break;
    case OPT_CLASS_DIM: rc = cli_parse_i64(CMD, "--class-dim", optarg, 1, 65536, &o->class_dim); break;
    case OPT_SAVE_EVERY: rc = cli_parse_i64(CMD, "--save-every", optarg, 1, INT64_MAX / 2, &o->save_every); break;
    case 's': rc = cli_parse_u64(CMD, "--seed", optarg, UINT64_MAX, &o->seed); break;
    case 'r': o->resume = 1; break;
    case OPT_MPI: o->mpi = 1; break;
    case 'h': help_train_lord(stdout); return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind < argc) return cli_usage_error(CMD, "takes no arguments, got '%s'", argv[optind]);
  if (!o->data) return cli_usage_error(CMD, "needs --data FILE (make one with 'untangle data synth' or 'data import')");
  if (!o->out || !*o->out) return cli_usage_error(CMD, "needs --out RUN, the run folder");
  if (o->vgg && o->recon == -1) o->recon = LORD_RECON_VGG;
  if (o->recon == LORD_RECON_VGG && !o->vgg) return cli_usage_error(CMD, "--recon vgg needs --vgg FILE");
  *done = 0;
  return CLI_OK;
}

typedef struct {
  progress bar;
  int stage;
  const kit_team *team;
} progress_state;

static void on_step(void *user, const lord_progress *p) {
  progress_state *s = user;
  if (s->stage != p->stage) {
    char label[32];
    snprintf(label, sizeof label, "stage %d", p->stage);
    progress_begin(&s->bar, stderr, label, p->step, p->steps);
    s->stage = p->stage;
  }
  char metrics[96];
  int n = snprintf(metrics, sizeof metrics, "epoch %lld/%lld loss %.4f %.0f img/s", (long long)p->epoch + 1,
                   (long long)p->epochs, (double)p->loss, p->images_per_second);
  if (s->team && n > 0 && (size_t)n < sizeof metrics)
    snprintf(metrics + n, sizeof metrics - (size_t)n, " (%d ranks, comm %.0f%%)", s->team->size, 100 * p->comm_share);
  if (p->step == p->steps) progress_end(&s->bar, p->step, metrics);
  else progress_update(&s->bar, p->step, metrics);
}

/* The configuration: the checkpoint's when resuming, else the preset with the data's sizes and
 * the options. */
static int choose_config(ut_runtime *rt, const options *o, const ut_dataset *ds, const char *ckpt, lord_cfg *cfg) {
  if (o->resume) {
    if (access(ckpt, R_OK) != 0) {
      fprintf(stderr, "untangle " CMD ": cannot resume: no readable checkpoint at %s (%s)\n", ckpt, strerror(errno));
      return CLI_FAILED;
    }
    if (lord_read_config(rt, ckpt, cfg) != UT_OK) {
      fprintf(stderr, "untangle " CMD ": cannot resume: %s\n", ut_last_error());
      return CLI_FAILED;
    }
  } else {
    int preset = o->preset;
    if (preset < 0) preset = ut_runtime_device(rt)->type == UT_DEVICE_GPU ? LORD_PRESET_DEFAULT : LORD_PRESET_SMALL;
    *cfg = lord_preset((lord_preset_kind)preset, ut_dataset_channels(ds), ut_dataset_count(ds), ut_dataset_n_classes(ds));
    cfg->size = ut_dataset_height(ds);
    cfg->seed = o->seed;
    if (o->recon >= 0) cfg->recon = (lord_recon)o->recon;
    if (o->batch > 0) cfg->batch = (int)o->batch;
    if (o->content_noise >= 0) cfg->content_std = (float)o->content_noise;
    if (o->content_decay >= 0) cfg->content_decay = (float)o->content_decay;
    if (o->content_dim > 0) cfg->content_dim = (int)o->content_dim;
    if (o->class_dim > 0) cfg->class_dim = (int)o->class_dim;
    printf("preset %s%s\n", lord_preset_name((lord_preset_kind)preset), o->preset < 0 ? " (chosen by device type)" : "");
  }
  if (o->epochs1 >= 0) cfg->epochs1 = (int)o->epochs1;
  if (o->epochs2 >= 0) cfg->epochs2 = (int)o->epochs2;
  /* A loss weight, so it may change when resuming (lord_load accepts that), e.g. to train
   * stage 2 with the term on a stage-1 run made without it. */
  if (o->content_invariance >= 0) cfg->content_invariance = (float)o->content_invariance;
  if (ut_dataset_width(ds) != ut_dataset_height(ds)) {
    fprintf(stderr, "untangle " CMD ": %s holds %dx%d images; LORD needs square ones\n", o->data,
            ut_dataset_width(ds), ut_dataset_height(ds));
    return CLI_FAILED;
  }
  if (lord_cfg_check(cfg) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s: %s\n", o->data, ut_last_error());
    return CLI_FAILED;
  }
  return CLI_OK;
}

static int run(const void *parsed, kit_team *team) {
  const options *o = parsed;
  int rc = CLI_FAILED;
  lord_model *m = NULL;
  ut_dataset *ds = NULL;
  ut_runtime *rt = NULL;
  char *ckpt = malloc(strlen(o->out) + sizeof "/" LORD_CHECKPOINT), device_buf[64];
  const char *device = cli_team_device(CMD, o->device, team, device_buf, sizeof device_buf);
  if (!device) goto done;
  if (!(rt = cli_open_runtime(CMD, device, 0))) goto done;
  sprintf(ckpt, "%s/" LORD_CHECKPOINT, o->out);
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("device %d: %s (%s, %s)\n", dev->index, dev->name, ut_device_type_name(dev->type), dev->platform);
  if (!(ds = ut_dataset_open(o->data))) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  lord_cfg cfg;
  if ((rc = choose_config(rt, o, ds, ckpt, &cfg)) != CLI_OK) goto done;
  rc = CLI_FAILED;
  if (!(m = lord_new(rt, &cfg, o->vgg))) {
    fprintf(stderr, "untangle " CMD ": cannot build the model: %s\n", ut_last_error());
    goto done;
  }
  if (lord_set_team(m, team) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  /* By default a tenth of the classes (at least one) is held out, none below 5 classes. */
  int test_classes = (int)o->test_classes;
  if (test_classes < 0) test_classes = cfg.n_classes < 5 ? 0 : cfg.n_classes < 20 ? 1 : (int)(cfg.n_classes / 10);
  double test_ratio = 0;
  if (o->resume) {
    if (lord_load(m, ckpt) != UT_OK) {
      fprintf(stderr, "untangle " CMD ": cannot resume: %s\n", ut_last_error());
      goto done;
    }
    const char *split = ut_store_get_meta(lord_store(m), "lord.split");
    if (split && sscanf(split, "%d %lf", &test_classes, &test_ratio) != 2) {
      fprintf(stderr, "untangle " CMD ": %s: metadata lord.split '%s' is not '<classes> <ratio>'\n", ckpt, split);
      goto done;
    }
    const char *stage_done = ut_store_get_meta(lord_store(m), "lord.stage");
    char key[32];
    snprintf(key, sizeof key, "lord.stage%s.step", stage_done ? stage_done : "1");
    const char *steps = ut_store_get_meta(lord_store(m), key);
    printf("resuming %s: stage %s, %s epochs (%s steps) done\n", ckpt, stage_done ? stage_done : "1",
           ut_store_get_meta(lord_store(m), "lord.epoch"), steps ? steps : "?");
  }
  if (cli_mkdirs(o->out) != 0) {
    fprintf(stderr, "untangle " CMD ": cannot create the folder %s: %s\n", o->out, strerror(errno));
    goto done;
  }
  printf("LORD %dx%dx%d: %lld images of %lld classes (%d held out), content %d, class %d, generator %d channels, "
         "batch %d, epochs %d + %d, content noise %g decay %g, reconstruction %s, seed %llu\n",
         cfg.channels, cfg.size, cfg.size, (long long)cfg.n_images, (long long)cfg.n_classes, test_classes,
         cfg.content_dim, cfg.class_dim, cfg.gen_channels, cfg.batch, cfg.epochs1, cfg.epochs2,
         (double)cfg.content_std, (double)cfg.content_decay, lord_recon_name(cfg.recon), (unsigned long long)cfg.seed);
  if (cfg.content_invariance > 0) printf("stage 2 content invariance term, weight %g\n", (double)cfg.content_invariance);
  if (team) printf("data-parallel over %d ranks: %d images each per step\n", team->size, cfg.batch / team->size);
  fflush(stdout);
  progress_state ps = { .stage = 0, .team = team };
  lord_train_opts opts = { .run_dir = o->out, .first_stage = o->stage ? (int)o->stage : 1,
                           .last_stage = o->stage ? (int)o->stage : 2, .test_classes = test_classes,
                           .test_ratio = test_ratio, .save_every = o->save_every, .on_step = on_step, .user = &ps,
                           .team = team };
  double t0 = ut_seconds();
  if (lord_train(m, ds, &opts) != UT_OK) {
    if (team) fprintf(stderr, "\nuntangle " CMD ": rank %d: %s\n", team->rank, ut_last_error());
    else fprintf(stderr, "\nuntangle " CMD ": %s\n", ut_last_error());
    goto done;
  }
  double took = ut_seconds() - t0;
  printf("trained in %.2f s; checkpoint %s, grid %s/grid.jpg\n", took, ckpt, o->out);
  if (team)
    printf("communication %.2f s of rank 0's %.2f s (%.0f%%, waiting for the other ranks included)\n",
           team->comm_seconds(team->user), took, 100 * team->comm_seconds(team->user) / took);
  rc = CLI_OK;
done:
  lord_free(m);
  ut_dataset_close(ds);
  ut_runtime_close(rt);
  free(ckpt);
  return rc;
}

int train_lord(int argc, char **argv) {
  options o;
  int done;
  int rc = parse_options(argc, argv, &o, &done);
  return done ? rc : cli_team_run(CMD, o.mpi, run, &o);
}
