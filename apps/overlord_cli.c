/* `untangle train overlord`, and translate and grid of an OverLORD run (models/overlord*.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_team.h"
#include "commands.h"
#include "kit_trainer.h"
#include "overlord_eval.h"
#include "overlord_train.h"
#include "progress.h"

#define MAX_SETS 32

void overlord_help_train(FILE *out) {
  fprintf(out,
          "Usage: untangle train overlord --data FILE --out RUN [OPTIONS]\n"
          "\n"
          "Trains OverLORD (Gabbay & Hoshen, ICCV 2021) in three stages, to change an image's label\n"
          "(its class) while keeping its correlated attributes (appearance that varies within a class,\n"
          "read by an encoder that cannot see the pose) and its uncorrelated ones (the pose):\n"
          "  1. a label code per class and a code per image are optimised directly, with noise and a\n"
          "     decay on the per-image codes, and the correlated code comes from an encoder reading a\n"
          "     transformed image: a random resized crop, rotation and flip (pose-invariant) or the image\n"
          "     times its mask (localized), into a StyleGAN2 generator without mapping network;\n"
          "  2. encoders learn to predict those codes from the image alone;\n"
          "  3. copies of the encoders and the generator are fine-tuned with the reconstruction, the\n"
          "     codes and an adversarial loss (StyleGAN2 discriminator, R1 penalty every step); the\n"
          "     small preset also draws each image under another label, which the discriminator\n"
          "     judges and stage 2's encoders read back (w_adv_swap, w_swap_label, w_swap_corr;\n"
          "     w_swap_class, off in both presets, reads the label as a classification).\n"
          "A share of the images is held out for the grids and 'untangle eval'. After every epoch\n"
          "RUN/" OVERLORD_CHECKPOINT " is written atomically, losses are appended to RUN/losses.tsv\n"
          "(stage, epoch, step, total, recon, decay, regression, adv, dis, adv_swap with\n"
          "w_adv_swap > 0, swap_label, swap_corr and swap_class up to the last of w_swap_label,\n"
          "w_swap_corr and w_swap_class > 0; 0 where a stage has no such term) and RUN/grid.jpg\n"
          "shows inputs down the side and each of their labels across.\n"
          "\n"
          "Options:\n"
          "      --data FILE          the data set (required); the localized form needs masks\n"
          "  -o, --out RUN            the run folder, created if missing (required)\n"
          "  -d, --device D           an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "                           (default: $UNTANGLE_DEVICE, else best)\n"
          "      --preset P           default (64x64, the official widths: generator and discriminator\n"
          "                           512, encoders 64 to 256, label 512, codes 64, batch 16) or small\n"
          "                           (32x32, widths 16 to 64, label 32, codes 16); default on a GPU,\n"
          "                           small otherwise\n"
          "      --correlation C      pose-invariant (default) or localized\n"
          "      --epochs A[,B,C]     epochs of stages 1, 2 and 3 (one number: stage 1 only)\n"
          "  -b, --batch B            images per step (1 to 3 or a multiple of 4)\n"
          "      --recon R            l1 (pixel L1, the default), vgg (pixel L1 + VGG16 features, needs\n"
          "                           --vgg) or vgg-random (the VGG computation untrained, for timing)\n"
          "      --vgg FILE           torchvision vgg16 weights as safetensors; implies --recon vgg\n"
          "      --test-ratio R       share of every class's images held out (default 0.1)\n"
          "      --set FIELD=VALUE    any configuration field (label_dim, uncorr_dim, corr_dim,\n"
          "                           gen_channels, enc_channels, enc_max, dis_channels, uncorr_std,\n"
          "                           uncorr_decay, crop_min, crop_max, rotation, flip, normalize,\n"
          "                           lr_latent, lr_gen, lr_corr, lr_enc, lr_min, lr_gan, lr_dis, w_latent,\n"
          "                           w_r1, w_adv, w_adv_swap, w_swap_label, w_swap_corr, w_swap_class,\n"
          "                           dis_projection);\n"
          "                           may repeat.\n"
          "                           w_adv_swap > 0 (1 in the small preset, 0 in the default one as in\n"
          "                           the official code) makes stage 3's discriminator also judge each\n"
          "                           image drawn under another image's label, and the generator side\n"
          "                           learn from that with this weight; w_swap_label > 0 (small 30,\n"
          "                           default 0; needs w_adv_swap > 0) adds, at this weight, the MSE\n"
          "                           between the label code stage 2's label encoder reads from those\n"
          "                           images and the target's; w_swap_corr > 0 (small 100, default 0)\n"
          "                           the same for stage 2's correlated encoder, against its code of\n"
          "                           the input; w_swap_class > 0 (off by default; needs w_adv_swap > 0)\n"
          "                           the cross-entropy of the target label when stage 2's label\n"
          "                           encoder's code of those images is classified as its nearest\n"
          "                           label row; dis_projection=1 (off by default) makes the\n"
          "                           discriminator judge every image as one of its label\n"
          "      --save-every N       also write the checkpoint every N steps\n"
          "  -s, --seed S             seed of parameters, noise, transforms, batches and the split\n"
          "                           (default 1)\n"
          "  -r, --resume             continue RUN from its checkpoint with its own settings, inside a\n"
          "                           stage or at the start of the next\n");
  cli_team_help(out);
#ifdef UNTANGLE_HAVE_MPI
  fprintf(out, "                         (with stage 3, each share a multiple of 4 images: the groups of\n"
               "                         its discriminator's minibatch standard deviation)\n");
#endif
  fprintf(out, "  -h, --help               show this help\n");
}

typedef struct {
  const char *data, *out, *device, *vgg, *correlation;
  int preset, recon; /* -1: by device type / not given */
  int64_t epochs[3], batch, save_every;
  int n_epochs;
  double test_ratio;
  const char *sets[MAX_SETS];
  int n_sets;
  uint64_t seed;
  int resume, mpi;
} train_options;

enum { OPT_DATA = 256, OPT_PRESET, OPT_EPOCHS, OPT_CORRELATION, OPT_RECON, OPT_VGG, OPT_TEST_RATIO, OPT_SET,
       OPT_SAVE_EVERY, OPT_LABEL, OPT_CONTENT, OPT_REFERENCE, OPT_MASK, OPT_REFERENCE_MASK, OPT_STAGE, OPT_IMAGES,
       OPT_LABELS, OPT_MASKS, OPT_LORD, OPT_MAX_IMAGES, OPT_JUDGE_EPOCHS, OPT_JUDGE_MIN, OPT_MPI,
       OPT_TARGETS };

static int parse_epochs(const char *cmd, const char *text, train_options *o) {
  char buf[96];
  snprintf(buf, sizeof buf, "%s", text);
  o->n_epochs = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (o->n_epochs == 3) return cli_usage_error(cmd, "--epochs takes at most three numbers A,B,C, not '%s'", text);
    int rc = cli_parse_i64(cmd, "--epochs", tok, 0, 1 << 20, &o->epochs[o->n_epochs++]);
    if (rc != CLI_OK) return rc;
  }
  return o->n_epochs ? CLI_OK : cli_usage_error(cmd, "--epochs expects A[,B,C], not '%s'", text);
}

static int parse_train(int argc, char **argv, train_options *o, int *done) {
  static const char *cmd = "train overlord";
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },       { "out", required_argument, NULL, 'o' },
    { "device", required_argument, NULL, 'd' },          { "preset", required_argument, NULL, OPT_PRESET },
    { "correlation", required_argument, NULL, OPT_CORRELATION }, { "epochs", required_argument, NULL, OPT_EPOCHS },
    { "batch", required_argument, NULL, 'b' },           { "recon", required_argument, NULL, OPT_RECON },
    { "vgg", required_argument, NULL, OPT_VGG },         { "test-ratio", required_argument, NULL, OPT_TEST_RATIO },
    { "set", required_argument, NULL, OPT_SET },         { "save-every", required_argument, NULL, OPT_SAVE_EVERY },
    { "seed", required_argument, NULL, 's' },            { "resume", no_argument, NULL, 'r' },
    { "mpi", no_argument, NULL, OPT_MPI },
    { "help", no_argument, NULL, 'h' },                  { NULL, 0, NULL, 0 },
  };
  *o = (train_options){ .device = cli_default_device(), .preset = -1, .recon = -1, .batch = -1, .test_ratio = 0.1,
                        .seed = 1 };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK, ratio_given = 0;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:b:s:rh", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_DATA: o->data = optarg; break;
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case OPT_PRESET:
      if (!strcmp(optarg, "default")) o->preset = OVERLORD_PRESET_DEFAULT;
      else if (!strcmp(optarg, "small")) o->preset = OVERLORD_PRESET_SMALL;
      else rc = cli_usage_error(cmd, "--preset expects default or small, not '%s'", optarg);
      break;
    case OPT_CORRELATION:
      if (strcmp(optarg, "pose-invariant") && strcmp(optarg, "localized"))
        rc = cli_usage_error(cmd, "--correlation expects pose-invariant or localized, not '%s'", optarg);
      o->correlation = optarg;
      break;
    case OPT_EPOCHS: rc = parse_epochs(cmd, optarg, o); break;
    case 'b': rc = cli_parse_i64(cmd, "--batch", optarg, 1, 65536, &o->batch); break;
    case OPT_RECON:
      if (!strcmp(optarg, "l1")) o->recon = OVERLORD_RECON_L1;
      else if (!strcmp(optarg, "vgg")) o->recon = OVERLORD_RECON_VGG;
      else if (!strcmp(optarg, "vgg-random")) o->recon = OVERLORD_RECON_VGG_RANDOM;
      else rc = cli_usage_error(cmd, "--recon expects l1, vgg or vgg-random, not '%s'", optarg);
      break;
    case OPT_VGG: o->vgg = optarg; break;
    case OPT_TEST_RATIO:
      rc = cli_parse_double(cmd, "--test-ratio", optarg, 0, 0.9, &o->test_ratio);
      ratio_given = 1;
      break;
    case OPT_SET: rc = cli_collect_set(cmd, optarg, o->sets, &o->n_sets, MAX_SETS); break;
    case OPT_SAVE_EVERY: rc = cli_parse_i64(cmd, "--save-every", optarg, 1, INT64_MAX / 2, &o->save_every); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &o->seed); break;
    case 'r': o->resume = 1; break;
    case OPT_MPI: o->mpi = 1; break;
    case 'h': overlord_help_train(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind < argc) return cli_usage_error(cmd, "takes no arguments, got '%s'", argv[optind]);
  if (!o->data) return cli_usage_error(cmd, "needs --data FILE (make one with 'untangle data synth --paints 4')");
  if (!o->out || !*o->out) return cli_usage_error(cmd, "needs --out RUN, the run folder");
  if (o->vgg && o->recon >= 0 && o->recon != OVERLORD_RECON_VGG)
    return cli_usage_error(cmd, "--vgg gives VGG weights, which only --recon vgg uses");
  if (o->vgg) o->recon = OVERLORD_RECON_VGG;
  if (o->recon == OVERLORD_RECON_VGG && !o->vgg) return cli_usage_error(cmd, "--recon vgg needs --vgg FILE");
  if (o->resume && (o->preset >= 0 || o->correlation || o->batch > 0 || o->n_sets || ratio_given || o->recon >= 0))
    return cli_usage_error(cmd, "--resume continues with the run's own settings; only --epochs may change");
  *done = 0;
  return CLI_OK;
}

/* The preset with the options and the data's shape, or the checkpoint's when resuming. */
static int choose_config(ut_runtime *rt, const train_options *o, const ut_dataset *ds, const char *ckpt, overlord_cfg *cfg,
                         double *test_ratio) {
  const char *cmd = "train overlord";
  *test_ratio = o->test_ratio;
  if (o->resume) {
    if (access(ckpt, R_OK) != 0) {
      fprintf(stderr, "untangle %s: cannot resume: no readable checkpoint at %s (%s)\n", cmd, ckpt, strerror(errno));
      return CLI_FAILED;
    }
    char *ratio = NULL;
    if (overlord_read_config(rt, ckpt, cfg) != UT_OK || ut_checkpoint_meta(ckpt, "overlord.split", &ratio) != UT_OK) {
      fprintf(stderr, "untangle %s: cannot resume: %s\n", cmd, ut_last_error());
      return CLI_FAILED;
    }
    if (ratio) *test_ratio = strtod(ratio, NULL);
    free(ratio);
  } else {
    int preset = o->preset;
    if (preset < 0) preset = ut_runtime_device(rt)->type == UT_DEVICE_GPU ? OVERLORD_PRESET_DEFAULT : OVERLORD_PRESET_SMALL;
    *cfg = overlord_preset((overlord_preset_kind)preset, ut_dataset_channels(ds), ut_dataset_count(ds), ut_dataset_n_classes(ds));
    if (o->correlation) cfg->correlation = strcmp(o->correlation, "localized") ? OVERLORD_POSE_INVARIANT : OVERLORD_LOCALIZED;
    if (o->batch > 0) cfg->batch = (int)o->batch;
    if (o->recon >= 0) cfg->recon = (overlord_recon)o->recon;
    cfg->seed = o->seed;
    if (cli_apply_sets(cmd, overlord_cfg_table(), cfg, o->sets, o->n_sets) != CLI_OK) return CLI_USAGE;
    printf("preset %s%s\n", overlord_preset_name((overlord_preset_kind)preset), o->preset < 0 ? " (chosen by device type)" : "");
  }
  int *epochs[3] = { &cfg->epochs1, &cfg->epochs2, &cfg->epochs3 };
  for (int i = 0; i < o->n_epochs; i++) *epochs[i] = (int)o->epochs[i];
  if (overlord_cfg_check(cfg) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    return CLI_FAILED;
  }
  return CLI_OK;
}

typedef struct {
  progress bar;
  int stage; /* whose bar it is: each stage has its own */
  const overlord_cfg *cfg; /* which of stage 3's optional terms the run has */
  const kit_team *team;
} stage_bar;

static void on_step(void *user, const overlord_progress *p) {
  stage_bar *sb = user;
  progress *bar = &sb->bar;
  if (sb->stage != p->stage) {
    char label[32];
    snprintf(label, sizeof label, "overlord stage %d", p->stage);
    *bar = (progress){ 0 };
    progress_begin(bar, stderr, label, p->step, p->steps);
    sb->stage = p->stage;
  }
  const float *l = p->losses;
  char metrics[300], swap[128];
  int k = snprintf(swap, sizeof swap, " label changes %.3f", (double)l[OVERLORD_LOSS_ADV_SWAP]);
  if (sb->cfg->w_swap_label > 0 && k > 0 && (size_t)k < sizeof swap)
    k += snprintf(swap + k, sizeof swap - (size_t)k, " label read %.4f", (double)l[OVERLORD_LOSS_SWAP_LABEL]);
  if (sb->cfg->w_swap_corr > 0 && k > 0 && (size_t)k < sizeof swap)
    k += snprintf(swap + k, sizeof swap - (size_t)k, " corr read %.4f", (double)l[OVERLORD_LOSS_SWAP_CORR]);
  if (sb->cfg->w_swap_class > 0 && k > 0 && (size_t)k < sizeof swap)
    snprintf(swap + k, sizeof swap - (size_t)k, " class read %.4f", (double)l[OVERLORD_LOSS_SWAP_CLASS]);
  int n;
  if (p->stage == 1)
    n = snprintf(metrics, sizeof metrics, "epoch %lld/%lld loss %.4f (recon %.4f decay %.4f) %.0f img/s", (long long)p->epoch + 1,
             (long long)p->epochs, (double)l[OVERLORD_LOSS_TOTAL], (double)l[OVERLORD_LOSS_RECON],
             (double)l[OVERLORD_LOSS_DECAY], p->images_per_second);
  else if (p->stage == 2)
    n = snprintf(metrics, sizeof metrics, "epoch %lld/%lld regression %.5f %.0f img/s", (long long)p->epoch + 1,
             (long long)p->epochs, (double)l[OVERLORD_LOSS_REGRESSION], p->images_per_second);
  else
    n = snprintf(metrics, sizeof metrics, "epoch %lld/%lld D %.3f G %.3f (recon %.4f regression %.5f adv %.3f%s) %.0f img/s",
             (long long)p->epoch + 1, (long long)p->epochs, (double)l[OVERLORD_LOSS_DIS], (double)l[OVERLORD_LOSS_TOTAL],
             (double)l[OVERLORD_LOSS_RECON], (double)l[OVERLORD_LOSS_REGRESSION], (double)l[OVERLORD_LOSS_ADV],
             sb->cfg->w_adv_swap > 0 ? swap : "", p->images_per_second);
  if (sb->team && n > 0 && (size_t)n < sizeof metrics)
    snprintf(metrics + n, sizeof metrics - (size_t)n, " (%d ranks, comm %.0f%%)", sb->team->size, 100 * p->comm_share);
  if (p->step == p->steps) progress_end(bar, p->step, metrics);
  else progress_update(bar, p->step, metrics);
}

static int train(const void *options, kit_team *team);

int overlord_cmd_train(int argc, char **argv) {
  train_options o;
  int done, rc = parse_train(argc, argv, &o, &done);
  return done ? rc : cli_team_run("train overlord", o.mpi, train, &o);
}

static int train(const void *options, kit_team *team) {
  static const char *cmd = "train overlord";
  train_options o = *(const train_options *)options;
  int rc = CLI_FAILED;
  overlord_model *m = NULL;
  ut_dataset *ds = NULL;
  ut_runtime *rt = NULL;
  char *ckpt = kit_path(o.out, OVERLORD_CHECKPOINT), device_buf[64];
  const char *device = cli_team_device(cmd, o.device, team, device_buf, sizeof device_buf);
  if (!device || !ckpt || !(rt = cli_open_runtime(cmd, device, 1))) goto done;
  if (!(ds = ut_dataset_open(o.data))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  overlord_cfg cfg;
  double test_ratio;
  if ((rc = choose_config(rt, &o, ds, ckpt, &cfg, &test_ratio)) != CLI_OK) goto done;
  rc = CLI_FAILED;
  if (!(m = overlord_new(rt, &cfg, o.vgg)) || (o.resume && overlord_load(m, ckpt) != UT_OK) ||
      overlord_check_data(m, ds) != UT_OK || overlord_set_team(m, team) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  if (o.resume) {
    const char *stage = ut_store_get_meta(overlord_store(m), OVERLORD_STAGE_KEY);
    printf("resuming %s in stage %s\n", ckpt, stage ? stage : "1");
  }
  if (cli_mkdirs(o.out) != 0) {
    fprintf(stderr, "untangle %s: cannot create the folder %s: %s\n", cmd, o.out, strerror(errno));
    goto done;
  }
  printf("OverLORD %dx%dx%d, %s: %lld images of %lld classes, codes %d label + %d uncorrelated + %d correlated, "
         "generator %d, discriminator %d, batch %d, epochs %d + %d + %d, reconstruction %s%s, seed %llu\n",
         cfg.channels, cfg.size, cfg.size, overlord_correlation_name(cfg.correlation), (long long)cfg.n_images,
         (long long)cfg.n_classes, cfg.label_dim, cfg.uncorr_dim, cfg.corr_dim, cfg.gen_channels, cfg.dis_channels,
         cfg.batch, cfg.epochs1, cfg.epochs2, cfg.epochs3, overlord_recon_name(cfg.recon),
         cfg.normalize ? " (ImageNet-normalised)" : "", (unsigned long long)cfg.seed);
  if (cfg.recon == OVERLORD_RECON_L1)
    printf("note: without VGG weights (--vgg) the reconstruction is pixel L1 alone, not the paper's perceptual loss\n");
  if (team) printf("data-parallel over %d ranks: %d images each per step\n", team->size, cfg.batch / team->size);
  fflush(stdout);
  stage_bar bar = { .team = team, .cfg = &cfg };
  double t0 = ut_seconds();
  if (overlord_train(m, ds, &(overlord_train_opts){ .run_dir = o.out, .test_ratio = test_ratio, .save_every = o.save_every,
                                                   .on_step = on_step, .user = &bar, .team = team }) != UT_OK) {
    if (team) fprintf(stderr, "\nuntangle %s: rank %d: %s\n", cmd, team->rank, ut_last_error());
    else fprintf(stderr, "\nuntangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  printf("trained in %.1f s; checkpoint %s, grid %s/grid.jpg\n", ut_seconds() - t0, ckpt, o.out);
  rc = CLI_OK;
done:
  overlord_free(m);
  ut_dataset_close(ds);
  ut_runtime_close(rt);
  free(ckpt);
  return rc;
}

/* ---- translate and grid ----------------------------------------------------------------------- */

void overlord_help_translate(FILE *out) {
  fprintf(out,
          "Usage: untangle translate RUN --label CLASS --content-from IN.jpg [--reference REF.jpg] -o OUT.jpg\n"
          "\n"
          "Draws IN.jpg with the label CLASS (a class name of the run's data set, or its index) with the\n"
          "OverLORD run RUN: the pose (uncorrelated code) comes from IN.jpg, the correlated attributes\n"
          "from REF.jpg (default: IN.jpg itself), the label from the run's label code. Images are\n"
          "centre-cropped and resized to the model's size.\n"
          "\n"
          "Options:\n"
          "      --stage S                2 or 3: whose encoders and generator (default: the last trained)\n"
          "      --mask M.jpg             IN.jpg's mask (localized runs; gray, white = the region)\n"
          "      --reference-mask M.jpg   REF.jpg's mask (localized runs)\n"
          "  -d, --device D               an index from 'untangle devices', gpu, cpu, best or part of a name\n");
}

void overlord_help_grid(FILE *out) {
  fprintf(out,
          "Usage: untangle grid RUN --images A.jpg B.jpg ... --labels L1,L2,... -o GRID.jpg [-d D]\n"
          "\n"
          "A grid of the OverLORD run RUN: the given images (1 to 16) down the side, and for stage 2 and\n"
          "stage 3 side by side (a white column between) each image drawn with each label across (class\n"
          "names or indices, 1 to 16; default: the first 8 classes). Localized runs take the masks as\n"
          "--masks A_mask.jpg ... in the same order.\n");
}

/* A label from a class name kept in the checkpoint, or an index. -1 with a message. */
static int label_of(const char *cmd, overlord_model *m, const char *text) {
  const char *names = ut_store_get_meta(overlord_store(m), OVERLORD_CLASSES_KEY);
  int64_t n = overlord_config(m)->n_classes;
  if (names) {
    int k = 0;
    for (const char *p = names; *p; k++) {
      size_t len = strcspn(p, "\n");
      if (len == strlen(text) && !strncmp(p, text, len)) return k;
      p += len + (p[len] == '\n');
    }
  }
  char *end;
  long v = strtol(text, &end, 10);
  if (*text && !*end && v >= 0 && v < n) return (int)v;
  fprintf(stderr, "untangle %s: the run has no label '%s' (class names of its data set, or 0 .. %lld)\n", cmd, text,
          (long long)n - 1);
  return -1;
}

static int read_image(const char *cmd, const overlord_cfg *c, const char *path, int channels, float *out) {
  if (ut_jpeg_read_float(path, channels, c->size, out) == UT_OK) return CLI_OK;
  fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
  return CLI_FAILED;
}

typedef struct {
  const char *run, *out, *device, *label, *content, *reference, *mask, *reference_mask, *labels;
  char **images, **masks;
  int n_images, n_masks;
  int64_t stage;
} infer_options;

static int parse_infer(const char *cmd, int argc, char **argv, int grid, infer_options *o, int *done) {
  static const struct option long_options[] = {
    { "out", required_argument, NULL, 'o' },           { "device", required_argument, NULL, 'd' },
    { "label", required_argument, NULL, OPT_LABEL },   { "content-from", required_argument, NULL, OPT_CONTENT },
    { "reference", required_argument, NULL, OPT_REFERENCE }, { "mask", required_argument, NULL, OPT_MASK },
    { "reference-mask", required_argument, NULL, OPT_REFERENCE_MASK }, { "stage", required_argument, NULL, OPT_STAGE },
    { "images", no_argument, NULL, OPT_IMAGES },       { "masks", no_argument, NULL, OPT_MASKS },
    { "labels", required_argument, NULL, OPT_LABELS }, { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  *o = (infer_options){ .device = cli_default_device() };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK, with_masks = 0;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:h", long_options, NULL)) != -1;) {
    switch (c) {
    case 'o': o->out = optarg; break;
    case 'd': o->device = optarg; break;
    case OPT_LABEL: o->label = optarg; break;
    case OPT_CONTENT: o->content = optarg; break;
    case OPT_REFERENCE: o->reference = optarg; break;
    case OPT_MASK: o->mask = optarg; break;
    case OPT_REFERENCE_MASK: o->reference_mask = optarg; break;
    case OPT_STAGE: rc = cli_parse_i64(cmd, "--stage", optarg, 2, 3, &o->stage); break;
    case OPT_LABELS: o->labels = optarg; break;
    case OPT_IMAGES: break;
    case OPT_MASKS: with_masks = 1; break;
    case 'h': (grid ? overlord_help_grid : overlord_help_translate)(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind >= argc) return cli_usage_error(cmd, "needs the run folder RUN first");
  o->run = argv[optind++];
  if (!o->out) return cli_usage_error(cmd, "needs -o OUT.jpg");
  if (!grid) {
    if (optind < argc) return cli_usage_error(cmd, "takes the image as --content-from IN.jpg, not '%s'", argv[optind]);
    if (!o->label) return cli_usage_error(cmd, "needs --label CLASS");
    if (!o->content) return cli_usage_error(cmd, "needs --content-from IN.jpg");
  } else {
    /* getopt moves the file names after the options: the images first, then the masks. */
    o->images = argv + optind;
    o->n_images = argc - optind;
    if (with_masks) {
      o->n_masks = o->n_images / 2;
      o->n_images -= o->n_masks;
      o->masks = o->images + o->n_images;
    }
    if (o->n_images < 1 || o->n_images > 16) return cli_usage_error(cmd, "needs 1 to 16 images after --images");
    if (o->n_masks && o->n_masks != o->n_images) return cli_usage_error(cmd, "--masks needs one mask per image");
  }
  *done = 0;
  return CLI_OK;
}

static overlord_model *open_run(const char *cmd, ut_runtime **rt, const infer_options *o, int *stage) {
  *rt = ut_runtime_open(&(ut_device_query){ .select = o->device });
  if (!*rt) {
    fprintf(stderr, "untangle %s: cannot open the OpenCL device '%s': %s\n", cmd, o->device, ut_last_error());
    return NULL;
  }
  overlord_model *m = overlord_open_run(*rt, o->run, o->stage ? (int)o->stage : 2, stage);
  if (!m) fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
  else if (overlord_config(m)->correlation == OVERLORD_LOCALIZED && !(o->mask || o->n_masks)) {
    fprintf(stderr, "untangle %s: %s is a localized run: give each image's mask (%s)\n", cmd, o->run,
            o->images ? "--masks" : "--mask");
    overlord_free(m);
    return NULL;
  }
  if (o->stage) *stage = (int)o->stage;
  return m;
}

int overlord_cmd_translate(int argc, char **argv) {
  static const char *cmd = "translate";
  infer_options o;
  int done, rc = parse_infer(cmd, argc, argv, 0, &o, &done), stage;
  if (done) return rc;
  ut_runtime *rt;
  overlord_model *m = open_run(cmd, &rt, &o, &stage);
  float *buf = NULL;
  rc = CLI_FAILED;
  if (!m) goto done;
  const overlord_cfg *c = overlord_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size, pixels = (int64_t)c->size * c->size;
  int label = label_of(cmd, m, o.label);
  if (label < 0 || !(buf = malloc((size_t)(3 * per + 2 * pixels + c->uncorr_dim + 2 * c->corr_dim + c->label_dim) * sizeof *buf)))
    goto done;
  float *in = buf, *ref = in + per, *out = ref + per, *mask = out + per, *ref_mask = mask + pixels;
  float *u = ref_mask + pixels, *corr = u + c->uncorr_dim, *lab = corr + c->corr_dim;
  int localized = c->correlation == OVERLORD_LOCALIZED;
  if (read_image(cmd, c, o.content, c->channels, in) != CLI_OK ||
      read_image(cmd, c, o.reference ? o.reference : o.content, c->channels, ref) != CLI_OK)
    goto done;
  if (localized && (read_image(cmd, c, o.mask, 1, mask) != CLI_OK ||
                    read_image(cmd, c, o.reference_mask ? o.reference_mask : o.mask, 1, ref_mask) != CLI_OK))
    goto done;
  if (localized && o.reference && !o.reference_mask) {
    fprintf(stderr, "untangle %s: a localized run needs --reference-mask with --reference\n", cmd);
    goto done;
  }
  ut_status st = overlord_encode(m, stage, in, localized ? mask : NULL, 1, u, NULL, NULL);
  if (st == UT_OK) st = overlord_encode(m, stage, ref, localized ? ref_mask : NULL, 1, NULL, NULL, corr);
  if (st == UT_OK) st = overlord_embedded_codes(m, NULL, (int32_t[]){ label }, 1, NULL, lab);
  if (st == UT_OK) st = overlord_generate(m, stage, u, lab, corr, 1, out);
  for (int64_t i = 0; i < per; i++) out[i] = out[i] < 0 ? 0 : out[i] > 1 ? 1 : out[i];
  if (st == UT_OK) st = ut_grid_write_jpeg(o.out, out, 1, c->channels, c->size, c->size, 1, 95);
  if (st != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  printf("wrote %s (stage %d)\n", o.out, stage);
  rc = CLI_OK;
done:
  free(buf);
  overlord_free(m);
  ut_runtime_close(rt);
  return rc;
}

int overlord_cmd_grid(int argc, char **argv) {
  static const char *cmd = "grid";
  infer_options o;
  int done, rc = parse_infer(cmd, argc, argv, 1, &o, &done), stage;
  if (done) return rc;
  ut_runtime *rt;
  overlord_model *m = open_run(cmd, &rt, &o, &stage);
  float *images = NULL, *masks = NULL;
  rc = CLI_FAILED;
  if (!m) goto done;
  const overlord_cfg *c = overlord_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size, pixels = (int64_t)c->size * c->size;
  int32_t labels[16];
  int n_labels = 0;
  if (o.labels) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", o.labels);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      if (n_labels == 16) {
        cli_usage_error(cmd, "--labels takes 1 to 16 labels");
        goto done;
      }
      if ((labels[n_labels] = label_of(cmd, m, tok)) < 0) goto done;
      n_labels++;
    }
  } else {
    for (; n_labels < 8 && n_labels < c->n_classes; n_labels++) labels[n_labels] = n_labels;
  }
  if (!(images = malloc((size_t)(o.n_images * per) * sizeof *images)) ||
      !(masks = malloc((size_t)(o.n_images * pixels) * sizeof *masks)))
    goto done;
  for (int i = 0; i < o.n_images; i++)
    if (read_image(cmd, c, o.images[i], c->channels, images + i * per) != CLI_OK ||
        (o.n_masks && read_image(cmd, c, o.masks[i], 1, masks + i * pixels) != CLI_OK))
      goto done;
  /* Stage 2 beside stage 3 when the run has both. */
  int stages[2] = { 2, 3 }, n_stages = stage >= 3 ? 2 : 1;
  if (o.stage) {
    stages[0] = (int)o.stage;
    n_stages = 1;
  }
  if (overlord_grid_write(m, images, o.n_masks ? masks : NULL, NULL, o.n_images, labels, NULL, n_labels, stages, n_stages,
                          o.out) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  printf("wrote %s (%s)\n", o.out, n_stages == 2 ? "stage 2 left, stage 3 right" : stages[0] == 2 ? "stage 2" : "stage 3");
  rc = CLI_OK;
done:
  free(images);
  free(masks);
  overlord_free(m);
  ut_runtime_close(rt);
  return rc;
}

/* ---- eval ------------------------------------------------------------------------------------- */

void overlord_help_eval(FILE *out) {
  fprintf(out,
          "Usage: untangle eval RUN --data FILE [OPTIONS]\n"
          "\n"
          "Measures the OverLORD run RUN on its held-out images of FILE, a rendered set with paints\n"
          "('untangle data synth --paints P', whose every class, paint and pose can be rendered), and\n"
          "writes RUN/eval.json. Each held-out image (class, paint, pose) is given other labels, and\n"
          "each translation is compared with the render of the target label in the image's paint and\n"
          "pose, for stage 2 and stage 3 (and LORD with --lord):\n"
          "  L1             mean pixel L1 (pixels in [0, 1]), beside the input copied\n"
          "  label judged   the share a CNN assigns to the target label (beside the share it assigns\n"
          "                 to the input's own label, and per target label), and\n"
          "  paint kept     the share another CNN assigns to the input's paint; both are trained here on\n"
          "                 renders of every (label, view, paint), where label and paint are independent\n"
          "                 (in the data the paint hints at the label), and must reach\n"
          "                 --judge-min-accuracy on renders of views they did not see before they judge\n"
          "  sharpness      mean absolute difference of neighbouring pixels, beside the true images'\n"
          "  probes         the label and the paint predicted from the uncorrelated codes (leakage),\n"
          "                 beside the label from the label codes and the paint from the correlated ones\n"
          "Stage 1 is measured the same way on training images, whose uncorrelated codes are rows of\n"
          "its embedding, and those rows are probed: a run of stage 1 alone can be evaluated.\n"
          "\n"
          "Options:\n"
          "      --data FILE          the data set the run was trained on (required)\n"
          "      --lord RUN2          a LORD run of the same set, translated on the same pairs\n"
          "  -o, --out JSON           write the report here instead of RUN/eval.json\n"
          "  -d, --device D           an index from 'untangle devices', gpu, cpu, best or part of a name\n"
          "      --max-images N       held-out images at most (default 200)\n"
          "      --targets K          target labels per image (default 0: every other label, so each image\n"
          "                           is changed into every class once; K >= the classes - 1 the same)\n"
          "      --judge-epochs N     training epochs of the judges (default 30, at least 600 steps)\n"
          "      --judge-min-accuracy A  the judges' held-out accuracy needed to judge (default 0.9)\n"
          "  -s, --seed S             seed of the judges and probes (default 1)\n"
          "  -h, --help               show this help\n");
}

int overlord_cmd_eval(int argc, char **argv) {
  static const char *cmd = "eval";
  static const struct option long_options[] = {
    { "data", required_argument, NULL, OPT_DATA },         { "lord", required_argument, NULL, OPT_LORD },
    { "out", required_argument, NULL, 'o' },               { "device", required_argument, NULL, 'd' },
    { "max-images", required_argument, NULL, OPT_MAX_IMAGES }, { "judge-epochs", required_argument, NULL, OPT_JUDGE_EPOCHS },
    { "judge-min-accuracy", required_argument, NULL, OPT_JUDGE_MIN }, { "targets", required_argument, NULL, OPT_TARGETS },
    { "seed", required_argument, NULL, 's' },              { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *data = NULL, *out = NULL, *lord = NULL, *device = cli_default_device();
  overlord_eval_cfg cfg = overlord_eval_default_cfg();
  int64_t epochs = cfg.judge_epochs, targets = 0;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:d:s:h", long_options, NULL)) != -1;) {
    switch (c) {
    case OPT_DATA: data = optarg; break;
    case OPT_LORD: lord = optarg; break;
    case 'o': out = optarg; break;
    case 'd': device = optarg; break;
    case OPT_MAX_IMAGES: rc = cli_parse_i64(cmd, "--max-images", optarg, 1, 1 << 20, &cfg.max_images); break;
    case OPT_JUDGE_EPOCHS: rc = cli_parse_i64(cmd, "--judge-epochs", optarg, 1, 1000, &epochs); break;
    case OPT_TARGETS: rc = cli_parse_i64(cmd, "--targets", optarg, 0, 1 << 20, &targets); break;
    case OPT_JUDGE_MIN: rc = cli_parse_double(cmd, "--judge-min-accuracy", optarg, 0, 1, &cfg.judge_min_accuracy); break;
    case 's': rc = cli_parse_u64(cmd, "--seed", optarg, UINT64_MAX, &cfg.seed); break;
    case 'h': overlord_help_eval(stdout); return CLI_OK;
    default: return cli_option_error(cmd, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  cfg.judge_epochs = (int)epochs;
  cfg.targets = targets == 0 ? INT_MAX : (int)targets; /* every other label */
  const char *run = NULL;
  if ((rc = cli_eval_operands(cmd, argc, argv, data, &run)) != CLI_OK) return rc;
  rc = CLI_FAILED;
  overlord_model *m = NULL;
  ut_dataset *ds = NULL;
  char *json = NULL, *ratio = NULL;
  int stage = 0;
  ut_runtime *rt = cli_open_runtime(cmd, device, 0);
  if (!rt) return CLI_FAILED;
  char *ckpt = kit_path(run, OVERLORD_CHECKPOINT);
  if (!ckpt || !(m = overlord_open_run(rt, run, 1, &stage)) || ut_checkpoint_meta(ckpt, "overlord.split", &ratio) != UT_OK ||
      !(ds = ut_dataset_open(data))) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  const ut_device_info *dev = ut_runtime_device(rt);
  printf("evaluating OverLORD run %s (stages 1 to %d) on %s, device %d: %s\n", run, stage, data, dev->index, dev->name);
  fflush(stdout);
  double start = ut_seconds();
  cfg.on_part = cli_eval_part;
  cfg.user = &start;
  overlord_eval_report r;
  if (overlord_evaluate(rt, m, stage, ds, ratio ? strtod(ratio, NULL) : 0.1, lord, &cfg, &r) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    goto done;
  }
  overlord_eval_print(stdout, &r);
  json = overlord_eval_json(&r, run, data, dev->name);
  if (cli_write_eval_json(cmd, run, out, json, ut_seconds() - start) != CLI_OK) goto done;
  rc = CLI_OK;
done:
  free(json);
  free(ratio);
  free(ckpt);
  ut_dataset_close(ds);
  overlord_free(m);
  ut_runtime_close(rt);
  return rc;
}
