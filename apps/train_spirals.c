/* `untangle train spirals`: trains the two-spirals MLP (models/spirals.h) with a progress
 * line, checkpoints into the output folder, and reports accuracy, speed and memory. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "progress.h"
#include "spirals.h"

#define CMD "train spirals"
#define CHECKPOINT_NAME "checkpoint.safetensors"

void help_train_spirals(FILE *out) {
  spirals_cfg d = spirals_default_cfg();
  fprintf(out,
          "Usage: untangle train spirals [OPTIONS]\n"
          "\n"
          "Trains an MLP (2 -> %lld x %d %s -> 1 tanh) with Adam (learning rate %g) on the squared\n"
          "error to +-1 labels, to tell two interleaved spirals apart: %lld training and %lld held-out\n"
          "points. Writes DIR/" CHECKPOINT_NAME " every --save-every steps and at the end, then\n"
          "prints the training and held-out accuracy, the time per step, the plan's memory and the\n"
          "OpenCL program cache counts.\n"
          "\n"
          "Options:\n"
          "  -d, --device D      the OpenCL device: an index from 'untangle devices', gpu, cpu, best,\n"
          "                      or part of a device or platform name (default: $UNTANGLE_DEVICE,\n"
          "                      else best: the GPU with most compute units, else the first CPU)\n"
          "  -n, --steps N       train until step N (default 1000); with --resume, N counts the\n"
          "                      checkpoint's steps too\n"
          "  -o, --out DIR       the output folder, created if missing (default untangle-out)\n"
          "  -r, --resume        continue from DIR/" CHECKPOINT_NAME " with the settings it was\n"
          "                      trained with; without it, training starts afresh and replaces it\n"
          "  -s, --seed S        seed of the parameters, the data and the batches (default %llu)\n"
          "  -b, --batch B       points per step, drawn anew each step; 0 trains on all %lld at\n"
          "                      once (default %lld)\n"
          "      --save-every N  write the checkpoint every N steps (default: a tenth of the run)\n"
          "  -h, --help          show this help\n",
          (long long)d.width, d.depth, mlp_activation_name(d.act), (double)d.lr, (long long)d.n_train,
          (long long)d.n_test, (unsigned long long)d.seed, (long long)d.n_train, (long long)d.batch);
}

typedef struct {
  const char *device;
  int64_t steps;
  const char *out;
  int resume;
  uint64_t seed;
  int seed_given;
  int64_t batch;
  int batch_given;
  int64_t save_every; /* 0: a tenth of the run */
} options;

enum { OPT_SAVE_EVERY = 256 };

/* CLI_OK to go on, or the exit status (help shown, or a usage error). `*done` tells which. */
static int parse_options(int argc, char **argv, options *o, int *done) {
  static const struct option long_options[] = {
    { "device", required_argument, NULL, 'd' }, { "steps", required_argument, NULL, 'n' },
    { "out", required_argument, NULL, 'o' },    { "resume", no_argument, NULL, 'r' },
    { "seed", required_argument, NULL, 's' },   { "batch", required_argument, NULL, 'b' },
    { "save-every", required_argument, NULL, OPT_SAVE_EVERY },
    { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
  };
  spirals_cfg d = spirals_default_cfg();
  *o = (options){ .device = cli_default_device(), .steps = 1000, .out = "untangle-out",
                  .seed = d.seed, .batch = d.batch };
  *done = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":d:n:o:rs:b:h", long_options, NULL)) != -1;) {
    switch (c) {
    case 'd': o->device = optarg; break;
    case 'n': rc = cli_parse_i64(CMD, "--steps", optarg, 0, INT64_C(1) << 40, &o->steps); break;
    case 'o': o->out = optarg; break;
    case 'r': o->resume = 1; break;
    case 's':
      rc = cli_parse_u64(CMD, "--seed", optarg, (uint64_t)INT64_MAX, &o->seed);
      o->seed_given = 1;
      break;
    case 'b':
      rc = cli_parse_i64(CMD, "--batch", optarg, 0, INT64_C(1) << 24, &o->batch);
      o->batch_given = 1;
      break;
    case OPT_SAVE_EVERY: rc = cli_parse_i64(CMD, "--save-every", optarg, 1, INT64_C(1) << 40, &o->save_every); break;
    case 'h': help_train_spirals(stdout); return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind < argc) return cli_usage_error(CMD, "takes no arguments, got '%s'", argv[optind]);
  if (!*o->out) return cli_usage_error(CMD, "--out expects a folder name, not an empty string");
  if (!*o->device) return cli_usage_error(CMD, "--device expects an index, gpu, cpu, best or a name, not ''");
  if (o->batch > d.n_train)
    return cli_usage_error(CMD, "--batch %lld is more than the %lld training points", (long long)o->batch,
                           (long long)d.n_train);
  *done = 0;
  return CLI_OK;
}

/* The configuration to train with: the defaults with the options, or the checkpoint's own
 * settings when resuming (options given as well must agree with them). */
static int choose_config(ut_runtime *rt, const options *o, const char *path, spirals_cfg *cfg) {
  *cfg = spirals_default_cfg();
  if (!o->resume) {
    cfg->seed = o->seed;
    cfg->batch = o->batch;
    return CLI_OK;
  }
  if (access(path, R_OK) != 0) {
    fprintf(stderr, "untangle " CMD ": cannot resume: no readable checkpoint at %s (%s)\n", path, strerror(errno));
    return CLI_FAILED;
  }
  if (spirals_read_config(rt, path, cfg) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": cannot resume: %s\n", ut_last_error());
    return CLI_FAILED;
  }
  if (o->seed_given && o->seed != cfg->seed)
    return cli_usage_error(CMD, "--seed %llu differs from the seed %llu of %s; leave it out to resume",
                           (unsigned long long)o->seed, (unsigned long long)cfg->seed, path);
  if (o->batch_given && o->batch != cfg->batch)
    return cli_usage_error(CMD, "--batch %lld differs from the batch %lld of %s; leave it out to resume",
                           (long long)o->batch, (long long)cfg->batch, path);
  return CLI_OK;
}

static int save(spirals_trainer *t, const char *path) {
  if (spirals_save(t, path) != UT_OK) {
    fprintf(stderr, "\nuntangle " CMD ": cannot write the checkpoint: %s\n", ut_last_error());
    return CLI_FAILED;
  }
  return CLI_OK;
}

/* Trains from the current step to o->steps, saving on the way. *seconds gets the time spent
 * in training steps alone, without checkpoints. */
static int train_loop(spirals_trainer *t, const options *o, const char *path, double *seconds) {
  int64_t first = spirals_step(t), total = o->steps;
  int64_t save_every = o->save_every ? o->save_every : (total - first) / 10;
  if (save_every < 1) save_every = 1;
  progress bar;
  progress_begin(&bar, stderr, "spirals", first, total);
  char metrics[64] = "";
  *seconds = 0;
  for (int64_t step = first; step < total;) {
    float loss;
    double t0 = ut_seconds();
    if (spirals_train(t, 1, &loss) != UT_OK) {
      fprintf(stderr, "\nuntangle " CMD ": %s\n", ut_last_error());
      return CLI_FAILED;
    }
    *seconds += ut_seconds() - t0;
    step = spirals_step(t);
    if (!isfinite(loss)) {
      fprintf(stderr, "\nuntangle " CMD ": the loss became %g at step %lld; the last checkpoint is kept\n",
              (double)loss, (long long)step);
      return CLI_FAILED;
    }
    snprintf(metrics, sizeof metrics, "loss %.5f", (double)loss);
    /* Saving on multiples of save_every (not of this run's steps) keeps resumed runs in step. */
    if ((step % save_every == 0 || step == total) && save(t, path) != CLI_OK) return CLI_FAILED;
    progress_update(&bar, step, metrics);
  }
  if (total > first) progress_end(&bar, total, metrics);
  return CLI_OK;
}

static void print_report(ut_runtime *rt, spirals_trainer *t, int64_t trained, double seconds) {
  ut_plan_stats ps = ut_plan_get_stats(spirals_train_plan(t));
  ut_runtime_stats rs = ut_runtime_get_stats(rt);
  char peak[32], inter[32];
  cli_format_bytes(ps.arena_peak_bytes, peak, sizeof peak);
  cli_format_bytes(ps.intermediate_bytes, inter, sizeof inter);
  if (trained > 0)
    printf("time: %.3f ms per step (%lld steps in %.2f s, checkpoints not counted)\n", 1e3 * seconds / (double)trained,
           (long long)trained, seconds);
  printf("plan: %d nodes, %d launches per step; arena %s at its peak vs %s of intermediates without reuse", ps.nodes,
         ps.launches, peak, inter);
  if (ps.intermediate_bytes > 0) printf(" (%.0f%%)", 100.0 * (double)ps.arena_peak_bytes / (double)ps.intermediate_bytes);
  printf("\nprogram cache: %u built from source, %u loaded from disk, %u cache entries rejected\n", rs.programs_built,
         rs.programs_cached, rs.cache_rejected);
}

static int run(const options *o) {
  size_t path_size = strlen(o->out) + sizeof "/" CHECKPOINT_NAME;
  char *path = malloc(path_size);
  if (!path) return CLI_FAILED;
  snprintf(path, path_size, "%s/" CHECKPOINT_NAME, o->out);

  int rc = CLI_OK;
  spirals_trainer *t = NULL;
  ut_runtime *rt = cli_open_runtime(CMD, o->device, 1);
  if (!rt) {
    rc = CLI_FAILED;
    goto done;
  }

  spirals_cfg cfg;
  if ((rc = choose_config(rt, o, path, &cfg)) != CLI_OK) goto done;
  t = spirals_new(rt, &cfg);
  if (!t) {
    fprintf(stderr, "untangle " CMD ": cannot build the model: %s\n", ut_last_error());
    rc = CLI_FAILED;
    goto done;
  }
  if (o->resume && spirals_load(t, path) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": cannot resume: %s\n", ut_last_error());
    rc = CLI_FAILED;
    goto done;
  }
  if (cli_mkdirs(o->out) != 0) {
    fprintf(stderr, "untangle " CMD ": cannot create the folder %s: %s\n", o->out, strerror(errno));
    rc = CLI_FAILED;
    goto done;
  }

  int64_t first = spirals_step(t);
  char batch[32] = "full";
  if (cfg.batch) snprintf(batch, sizeof batch, "%lld points", (long long)cfg.batch);
  printf("spirals: MLP 2 -> %lld x %d %s -> 1 tanh, %lld parameters; Adam, learning rate %g; %lld training and %lld "
         "held-out points; batch %s; seed %llu\n",
         (long long)cfg.width, cfg.depth, mlp_activation_name(cfg.act), (long long)spirals_parameter_count(t),
         (double)cfg.lr, (long long)cfg.n_train, (long long)cfg.n_test, batch, (unsigned long long)cfg.seed);
  if (o->resume) printf("resuming from %s at step %lld\n", path, (long long)first);
  if (first >= o->steps)
    printf("the checkpoint is at step %lld already, --steps is %lld: nothing to train\n", (long long)first,
           (long long)o->steps);

  /* The header lines belong before the progress lines when both go to one log. */
  fflush(stdout);
  double seconds = 0;
  if (first < o->steps && (rc = train_loop(t, o, path, &seconds)) != CLI_OK) goto done;

  double train_acc, test_acc;
  if (spirals_accuracy(t, SPIRALS_TRAIN, &train_acc) != UT_OK || spirals_accuracy(t, SPIRALS_TEST, &test_acc) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": cannot evaluate: %s\n", ut_last_error());
    rc = CLI_FAILED;
    goto done;
  }
  printf("accuracy at step %lld: training set %.1f%%, held-out set %.1f%%\n", (long long)spirals_step(t),
         100 * train_acc, 100 * test_acc);
  print_report(rt, t, spirals_step(t) - first, seconds);
  if (spirals_step(t) > first) printf("checkpoint: %s (step %lld)\n", path, (long long)spirals_step(t));

done:
  spirals_free(t);
  ut_runtime_close(rt);
  free(path);
  return rc;
}

int train_spirals(int argc, char **argv) {
  options o;
  int done;
  int rc = parse_options(argc, argv, &o, &done);
  if (done) return rc;
  return run(&o);
}
