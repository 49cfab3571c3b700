/* The scaling suite (bench_scaling.h). A figure is a whole training run of LORD's stage 1
 * (small preset, 32x32 synthetic data, global batch 16), timed by the program's own "trained
 * in" line, so start-up, checkpoints and grids are in it for both configurations alike. Each
 * rank gets one thread (POCL_MAX_PTHREAD_COUNT=1 makes PoCL report one compute unit, which is
 * also how many threads the host convolutions take), so two ranks on two cores are compared
 * with one process on one core. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "bench_scaling.h"
#include "cli.h"

#ifdef MPIEXEC
#define BATCH 16
#define PER_EPOCH 8 /* 128 images, none held out */

/* Runs a shell command, its output into `log`; the exit status. */
static int run(const char *cmd, const char *log) {
  char full[8192];
  snprintf(full, sizeof full, "%s >'%s' 2>&1", cmd, log);
  int w = system(full);
  return w == -1 ? -1 : (w >> 8) & 0xff;
}

/* A number that follows `key` in the file, or -1. */
static double number_after(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[4096];
  double v = -1;
  while (fgets(line, sizeof line, f)) {
    const char *at = strstr(line, key);
    if (at) v = strtod(at + strlen(key), NULL);
  }
  fclose(f);
  return v;
}

static void show(const char *path) {
  FILE *f = fopen(path, "r");
  char line[4096];
  while (f && fgets(line, sizeof line, f)) fputs(line, stderr);
  if (f) fclose(f);
}

static double load_average(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f && fscanf(f, "%lf", &l) != 1) l = -1;
  if (f) fclose(f);
  return l;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  double ms[3]; /* per step: median, min, max */
  double images_per_s, comm_share, load;
} figure;

/* `repeats` runs (after one warm-up) of `ranks` processes; per-step times from "trained in". */
static int measure(const char *self, const char *dir, int ranks, int epochs, int repeats, figure *fig) {
  char cmd[4096], log[1100], run_dir[1100];
  snprintf(log, sizeof log, "%s/run.log", dir);
  snprintf(run_dir, sizeof run_dir, "%s/run%d", dir, ranks);
  double per_step[64], comm[64];
  int steps = epochs * PER_EPOCH;
  fig->load = load_average();
  for (int i = -1; i < repeats && i < 64; i++) {
    char launcher[256] = "";
    if (ranks > 1) snprintf(launcher, sizeof launcher, "'%s' --oversubscribe -np %d -x POCL_MAX_PTHREAD_COUNT ", MPIEXEC, ranks);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && POCL_MAX_PTHREAD_COUNT=1 %s'%s' train lord %s --data '%s/data.utd' "
             "--preset small --batch %d --epochs1 %d --epochs2 0 --test-classes 0 -d cpu -o '%s'", run_dir, launcher,
             self, ranks > 1 ? "--mpi" : "", dir, BATCH, i < 0 ? 1 : epochs, run_dir);
    if (run(cmd, log) != 0) {
      fprintf(stderr, "untangle bench: scaling: the run of %d rank%s failed:\n", ranks, ranks > 1 ? "s" : "");
      show(log);
      return CLI_FAILED;
    }
    if (i < 0) continue;
    double s = number_after(log, "trained in ");
    per_step[i] = 1e3 * s / steps;
    comm[i] = ranks > 1 ? number_after(log, "communication ") : 0;
    if (s <= 0 || comm[i] < 0) {
      fprintf(stderr, "untangle bench: scaling: no timing in the run's output:\n");
      show(log);
      return CLI_FAILED;
    }
    comm[i] /= s;
  }
  qsort(per_step, (size_t)repeats, sizeof *per_step, compare);
  qsort(comm, (size_t)repeats, sizeof *comm, compare);
  fig->ms[0] = per_step[repeats / 2];
  fig->ms[1] = per_step[0];
  fig->ms[2] = per_step[repeats - 1];
  fig->images_per_s = BATCH * 1e3 / fig->ms[0];
  fig->comm_share = comm[repeats / 2];
  return CLI_OK;
}

static void emit(FILE *out, int ranks, const figure *f, double efficiency, int epochs, int repeats) {
  char shape[128];
  snprintf(shape, sizeof shape, "32x32 batch %d, %d steps, %d rank%s of 1 thread", BATCH, epochs * PER_EPOCH, ranks,
           ranks > 1 ? "s" : "");
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:f,s:f,s:f},s:s,s:i,s:f,s:i,s:i,s:f,s:f}",
                        "schema", BENCH_SCHEMA, "framework", "untangle", "device", "PoCL CPU, 1 thread per rank",
                        "device_type", "cpu", "driver", "", "platform", "Portable Computing Language", "clblast", "",
                        "suite", "scaling", "case", "lord.stage1.small", "shape", shape, "ms", "median", f->ms[0],
                        "min", f->ms[1], "max", f->ms[2], "timing", "wall", "repeats", repeats, "images_per_s",
                        f->images_per_s, "ranks", ranks, "threads_per_rank", 1, "comm_share", f->comm_share,
                        "load_average", f->load);
  if (efficiency > 0) json_object_set_new(o, "efficiency", json_real(efficiency));
  char *text = json_dumps(o, JSON_COMPACT);
  fprintf(out, "%s\n", text);
  fflush(out);
  free(text);
  json_decref(o);
}

int bench_scaling(FILE *out, int quick, int repeats) {
  char self[1024], dir[] = "/tmp/untangle-scaling-XXXXXX", cmd[4096], log[1100];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || !mkdtemp(dir)) {
    fprintf(stderr, "untangle bench: scaling: cannot find the program or make a folder: %s\n", strerror(errno));
    return CLI_FAILED;
  }
  self[n] = '\0';
  if (repeats < 1) repeats = quick ? 2 : 3;
  int epochs = quick ? 2 : 5;
  snprintf(log, sizeof log, "%s/run.log", dir);
  snprintf(cmd, sizeof cmd, "'%s' data synth --classes 8 --views 16 --size 32 -o '%s/data.utd'", self, dir);
  int rc = run(cmd, log) == 0 ? CLI_OK : CLI_FAILED;
  if (rc != CLI_OK) show(log);
  figure one, two;
  if (rc == CLI_OK) rc = measure(self, dir, 1, epochs, repeats, &one);
  if (rc == CLI_OK) rc = measure(self, dir, 2, epochs, repeats, &two);
  if (rc == CLI_OK) {
    double efficiency = two.images_per_s / (2 * one.images_per_s);
    emit(out, 1, &one, 0, epochs, repeats);
    emit(out, 2, &two, efficiency, epochs, repeats);
    fprintf(stderr, "scaling, LORD stage 1 small, global batch %d: 1 process %.1f images/s; 2 ranks %.1f images/s "
            "(%.0f%% of twice one), %.0f%% of the time communicating; load average %.2f / %.2f\n", BATCH,
            one.images_per_s, two.images_per_s, 100 * efficiency, 100 * two.comm_share, one.load, two.load);
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "untangle bench: scaling: could not remove %s\n", dir);
  return rc;
}

#else

int bench_scaling(FILE *out, int quick, int repeats) {
  (void)out, (void)quick, (void)repeats;
  fprintf(stderr, "untangle bench: the scaling suite runs 'mpirun -np 2 untangle train lord --mpi'; this untangle was "
          "built without MPI (install libopenmpi-dev openmpi-bin and rebuild with -DUNTANGLE_MPI=ON)\n");
  return CLI_USAGE;
}

#endif
