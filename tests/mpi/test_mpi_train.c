/* Data-parallel training over MPI (models/kit_team.h, kit_mpi.c), as a user runs it:
 * `mpirun -np 2 untangle train MODEL --mpi` against one process at the same global batch, on
 * tiny data (PoCL in CI). Registered only when CMake found MPI; MPIEXEC is its mpirun.
 *
 * Equivalence: the two runs compute the same mathematics in another summation order (each
 * rank sums half of the batch, then the halves are added), so their losses agree to rounding
 * at first and then drift apart as Adam amplifies the difference (see the note at
 * EARLY_STEPS). The test asserts both parts: rounding-level agreement over the first steps
 * and a bounded drift over 50 steps; a rank that skipped the reduction fails both at once. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_runner.h"
#include "safetensors.h"

#ifndef MPIEXEC
#error "MPIEXEC must name mpirun"
#endif

/* Steps over which one process and two ranks must agree to EARLY_TOL relative: rounding only
 * (measured below 1e-6 for LORD and UNIT). Later steps diverge: Adam divides each gradient by
 * its running magnitude, so an element whose gradient is near zero moves by about the learning
 * rate in whatever direction rounding gave it, and the trajectories separate. A second
 * process run with gradients scaled by 1 + 2^-23 (one ulp) drifts from the first as far. */
#define EARLY_STEPS 4
#define EARLY_TOL 1e-5
#define LORD_LATE_TOL 0.1
#define UNIT_LATE_TOL 1.0
/* CMI-VAE drifts far less at these sizes: 4e-6 measured over 51 steps (the KL term, ~0.01). */
#define CMIVAE_LATE_TOL 1e-3
/* OverLORD's three stages as little: 3.1e-7 measured over 21 steps, 6 of them stage 3's. */
#define OVERLORD_LATE_TOL 1e-3
/* DMIT's columns but one agree to 9e-7 over the first 4 steps and drift to 0.06 over 54. The
 * adversarial column (losses.tsv's third from dis: the generator's hinge terms, means of
 * logits of both signs, and the content term) differs by 6.6e-4 relative over the first 4
 * steps (3.1e-4 of step 0's value with the direct loops of conv_direct.c, whose different
 * rounding took the column from 0.71 to 0.04 by step 3, where the difference is 5.3e-3 of its
 * own value) and crosses zero later: the discriminators' update before it moves each first bias,
 * whose gradient is rounding (test_dmit_one_iteration_gradients), by Adam's learning rate in
 * a direction rounding decides, which shifts the logits by about 1e-5. */
#define DMIT_LATE_TOL 0.2
#define DMIT_ADV_COLUMN 2
#define DMIT_ADV_EARLY_TOL 5e-3

static char data_lord[1024], data_unit[1024];

static void make_data(void) {
  if (data_lord[0]) return;
  snprintf(data_lord, sizeof data_lord, "%s", test_tmp_path("mpi-lord.utd"));
  snprintf(data_unit, sizeof data_unit, "%s", test_tmp_path("mpi-unit.utd"));
  char args[8192];
  snprintf(args, sizeof args, "data synth --classes 4 --views 8 --size 16 -o '%s'", data_lord);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "data synth: %s", r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "data synth --classes 4 --views 8 --size 16 --domains day,night -o '%s'", data_unit);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "data synth: %s", r.err);
  cli_result_free(&r);
}

/* Runs `mpirun -np ranks untangle <args>` (args is shell text). */
static cli_result mpi_run(int ranks, const char *args) {
  char launcher[4200];
  snprintf(launcher, sizeof launcher, "'%s' --oversubscribe -np %d", MPIEXEC, ranks);
  return cli_run_under(launcher, args);
}

/* Runs untangle with the arguments formatted from `fmt`: as one process when `ranks` is 0, else
 * under mpirun with `ranks` processes; asserts that it succeeded, naming `what` if not. */
static void run_ok(int ranks, const char *what, const char *fmt, ...) {
  char args[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  cli_result r = ranks ? mpi_run(ranks, args) : cli_run(args);
  ck_assert_msg(r.status == 0, "%s: %s", what, r.err);
  cli_result_free(&r);
}

/* A fresh run folder path under the test's temporary folder. */
static const char *run_dir(const char *name, char *buf, size_t size) {
  snprintf(buf, size, "%s", test_tmp_path(name));
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
  ck_assert_int_eq(system(cmd), 0);
  return buf;
}

/* The loss columns of losses.tsv (from column `first`), rows in order: *rows lines of *cols. */
static double *read_losses(const char *dir, int first, int *rows, int *cols) {
  char path[4200];
  snprintf(path, sizeof path, "%s/losses.tsv", dir);
  char *text = cli_slurp(path, NULL);
  double *v = malloc(4096 * sizeof *v);
  int n = 0, c = 0;
  *rows = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line == text) continue; /* the header */
    int col = 0;
    for (char *f = line, *end; *f; f = *end ? end + 1 : end, col++) {
      double x = strtod(f, &end);
      if (col >= first && n < 4096) v[n++] = x;
      if (!*end) {
        col++;
        break;
      }
    }
    c = col - first;
    (*rows)++;
  }
  free(text);
  *cols = c;
  return v;
}

/* The largest relative difference of two runs' losses over steps [from, to), in every column but
 * `skip` (-1: none). */
static double drift(const double *a, const double *b, int cols, int from, int to, int skip, int *worst) {
  double m = 0;
  for (int s = from; s < to; s++)
    for (int k = 0; k < cols; k++) {
      if (k == skip) continue;
      double d = fabs(a[s * cols + k] - b[s * cols + k]) / fmax(fabs(b[s * cols + k]), 1e-12);
      if (d > m) {
        m = d;
        *worst = s;
      }
    }
  return m;
}

/* One process and two ranks at one global batch: EARLY_STEPS steps agree to EARLY_TOL, and all
 * `steps` stay within `late_tol` (the measured drift, with margin; printed for the record).
 * Column `loose_col` (-1: none) is a loss whose terms cancel, so that its relative difference
 * says little: its first steps agree to `loose_tol` of the larger of their value and step 0's,
 * and later ones are only printed. */
static void check_equivalence(const char *model, const char *args, int first_col, int steps, double late_tol,
                              int loose_col, double loose_tol) {
  char one[1024], two[1024], name[64], cmd[16384];
  snprintf(name, sizeof name, "%s-one", model);
  run_dir(name, one, sizeof one);
  snprintf(name, sizeof name, "%s-two", model);
  run_dir(name, two, sizeof two);
  run_ok(0, "one process", "train %s %s -o '%s'", model, args, one);
  snprintf(cmd, sizeof cmd, "train %s --mpi %s -o '%s'", model, args, two);
  cli_result r = mpi_run(2, cmd);
  ck_assert_msg(r.status == 0, "two ranks: %s%s", r.out, r.err);
  assert_contains(r.out, "data-parallel over 2 ranks");
  cli_result_free(&r);
  int rows1, cols1, rows2, cols2, worst = -1;
  double *a = read_losses(one, first_col, &rows1, &cols1), *b = read_losses(two, first_col, &rows2, &cols2);
  ck_assert_int_eq(rows1, steps);
  ck_assert_int_eq(rows2, steps); /* rank 0 alone wrote: one line per step */
  ck_assert_int_eq(cols1, cols2);
  double early = drift(a, b, cols1, 0, EARLY_STEPS, loose_col, &worst);
  ck_assert_msg(early <= EARLY_TOL, "%s: steps 0-%d differ by %.3g relative (step %d), more than %g", model,
                EARLY_STEPS - 1, early, worst, EARLY_TOL);
  if (loose_col >= 0) {
    int w_early = -1, w_late = -1;
    double loose = 0, loose_late = 0;
    for (int s = 0; s < steps; s++) {
      /* Relative to the larger of the step's value and step 0's: the net value of terms that
       * cancel nears zero as training goes (DMIT's: 0.71 at step 0, 0.04 at step 3), and a
       * difference from rounding keeps the terms' scale, not the net value's. */
      const double scale = fmax(fmax(fabs(b[s * cols1 + loose_col]), fabs(b[loose_col])), 1e-12);
      double d = fabs(a[s * cols1 + loose_col] - b[s * cols1 + loose_col]) / scale;
      if (s < EARLY_STEPS && d > loose) {
        loose = d;
        w_early = s;
      }
      if (d > loose_late) {
        loose_late = d;
        w_late = s;
      }
    }
    printf("%s: column %d (terms that cancel): %.3g of its scale over steps 0-%d (step %d), %.3g over %d (step %d)\n",
           model, first_col + loose_col, loose, EARLY_STEPS - 1, w_early, loose_late, steps, w_late);
    ck_assert_msg(loose <= loose_tol, "%s: column %d differs by %.3g of its scale over steps 0-%d, more than %g", model,
                  first_col + loose_col, loose, EARLY_STEPS - 1, loose_tol);
  }
  double late = drift(a, b, cols1, 0, steps, loose_col, &worst);
  printf("%s: two ranks against one process: %.3g relative over steps 0-%d, %.3g over %d steps (worst at step %d)\n",
         model, early, EARLY_STEPS - 1, late, steps, worst);
  ck_assert_msg(late <= late_tol, "%s: the losses drift %.3g relative (step %d), more than %g", model, late, worst,
                late_tol);
  free(a);
  free(b);
}

START_TEST(test_lord_equivalence) {
  make_data();
  char args[2048];
  snprintf(args, sizeof args, "--data '%s' --preset small --batch 8 --epochs1 13 --epochs2 0 --test-classes 0 -d cpu",
           data_lord);
  check_equivalence("lord", args, 3, 52, LORD_LATE_TOL, -1, 0);
}
END_TEST

/* The class feature with the GAN on: all three optimisers (D; E1, E2 and G; q) on a team. */
static void cmivae_args(char *args, size_t size) {
  snprintf(args, size, "--data '%s' --feature class --preset small --size 16 --batch 8 --set ch=4 --set dis_ch=4 "
           "--set z1_dim=4 --set e2_hidden=8 --set test_ratio=0.25 --set w_gan=0.5 -d cpu", data_lord);
}

START_TEST(test_cmivae_equivalence) {
  make_data();
  char args[2048];
  cmivae_args(args, sizeof args);
  strncat(args, " --epochs 17", sizeof args - strlen(args) - 1); /* 3 steps an epoch */
  check_equivalence("cmivae", args, 2, 51, CMIVAE_LATE_TOL, -1, 0);
}
END_TEST

START_TEST(test_unit_equivalence) {
  make_data();
  char args[2048];
  snprintf(args, sizeof args, "--data '%s' --preset small --batch 4 --epochs 8 -d cpu", data_unit);
  check_equivalence("unit", args, 2, 56, UNIT_LATE_TOL, -1, 0);
}
END_TEST

/* DMIT at 16x16 with tiny widths, two domains, batch 4 of each: two ranks take 2 of each. */
static void dmit_args(char *args, size_t size, const char *data) {
  snprintf(args, size, "--data '%s' --preset small --size 16 --batch 4 --set nef=4 --set ndf=4 --set n_style=2 "
           "--set down_blocks=1 --set content_res=1 --set style_blocks=2 --set dec_res=1 --set content_dis_blocks=2 "
           "--set image_dis_blocks=2 --set test_ratio=0.25 -d cpu", data);
}

START_TEST(test_dmit_equivalence) {
  make_data();
  char args[2048];
  dmit_args(args, sizeof args, data_unit);
  strncat(args, " --epochs 9", sizeof args - strlen(args) - 1); /* 6 steps an epoch */
  check_equivalence("dmit", args, 2, 54, DMIT_LATE_TOL, DMIT_ADV_COLUMN, DMIT_ADV_EARLY_TOL);
}
END_TEST

/* The tensors of a checkpoint whose name ends in `suffix`: *n of them, names and values. */
static float **read_tensors(const char *path, const char *suffix, char ***names, int64_t **sizes, int *n) {
  ut_st_file f;
  ck_assert_msg(ut_st_read(path, &f) == UT_OK, "%s", ut_last_error());
  float **values = calloc((size_t)f.n_tensors, sizeof *values);
  *names = calloc((size_t)f.n_tensors, sizeof **names);
  *sizes = calloc((size_t)f.n_tensors, sizeof **sizes);
  *n = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    size_t len = strlen(f.tensors[i].name), sl = strlen(suffix);
    if (len < sl || strcmp(f.tensors[i].name + len - sl, suffix)) continue;
    int64_t count = (int64_t)((f.tensors[i].end - f.tensors[i].begin) / sizeof(float));
    values[*n] = malloc((size_t)(count ? count : 1) * sizeof(float));
    ut_st_decode_f32(f.data + f.tensors[i].begin, values[*n], (size_t)count);
    (*names)[*n] = strdup(f.tensors[i].name);
    (*sizes)[(*n)++] = count;
  }
  ut_st_file_free(&f);
  return values;
}

/* One DMIT iteration (six training images a domain: one step an epoch) by one process and by
 * two ranks: Adam's first moments after it, (1 - beta1) times each gradient of the five
 * updates (the decoder's through the diversity term's team means), agree to rounding. Where
 * a gradient is itself rounding (norm below GRAD_FLOOR: the discriminators' first biases,
 * whose hinge terms cancel exactly while every logit is inside the margin) nothing can agree,
 * and Adam's first step moves such a bias by the learning rate either way: what makes the
 * adversarial column differ at step 0 in test_dmit_equivalence. */
#define GRAD_FLOOR 1e-5
#define GRAD_TOL 1e-4

START_TEST(test_dmit_one_iteration_gradients) {
  char data[1024], one[1024], two[1024], args[2048], path[1100];
  snprintf(data, sizeof data, "%s", test_tmp_path("mpi-dmit-one-step.utd"));
  run_ok(0, "data synth", "data synth --classes 2 --views 4 --size 16 --domains day,night -o '%s'", data);
  run_dir("dmit-step-one", one, sizeof one);
  run_dir("dmit-step-two", two, sizeof two);
  dmit_args(args, sizeof args, data);
  run_ok(0, "one process", "train dmit %s --epochs 1 -o '%s'", args, one);
  run_ok(2, "two ranks", "train dmit --mpi %s --epochs 1 -o '%s'", args, two);
  char **na, **nb;
  int64_t *sa, *sb;
  int n1, n2, compared = 0;
  snprintf(path, sizeof path, "%s/checkpoint.safetensors", one);
  float **a = read_tensors(path, ".adam.m", &na, &sa, &n1);
  snprintf(path, sizeof path, "%s/checkpoint.safetensors", two);
  float **b = read_tensors(path, ".adam.m", &nb, &sb, &n2);
  ck_assert_int_eq(n1, n2);
  ck_assert_int_gt(n1, 20);
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < n1; i++) {
    ck_assert_str_eq(na[i], nb[i]);
    ck_assert_int_eq(sa[i], sb[i]);
    double diff = 0, norm = 0;
    for (int64_t k = 0; k < sa[i]; k++) {
      diff += ((double)a[i][k] - b[i][k]) * ((double)a[i][k] - b[i][k]);
      norm += (double)a[i][k] * a[i][k];
    }
    if (sqrt(norm) < GRAD_FLOOR) {
      ck_assert_msg(strstr(na[i], "dmit.dis_") == na[i] && strstr(na[i], ".b.dmit.dis_"), "dmit: the gradient of %s "
                    "has norm %.3g, rounding alone; only the discriminators' biases cancel so", na[i], sqrt(norm));
      continue;
    }
    compared++;
    if (sqrt(diff / norm) > worst) {
      worst = sqrt(diff / norm);
      worst_name = na[i];
    }
  }
  printf("dmit: one iteration, two ranks against one process: gradients (Adam's first moments) of %d of %d tensors "
         "agree to %.3g relative (worst %s)\n", compared, n1, worst, worst_name);
  ck_assert_msg(worst <= GRAD_TOL, "dmit: the gradient of %s differs by %.3g relative, more than %g", worst_name, worst,
                GRAD_TOL);
  for (int i = 0; i < n1; i++) {
    free(a[i]);
    free(b[i]);
    free(na[i]);
    free(nb[i]);
  }
  free(a);
  free(b);
  free(na);
  free(nb);
  free(sa);
  free(sb);
}
END_TEST

/* Refused with a message: a batch that does not split (with both numbers), mpirun without
 * --mpi, a --device list too short for the ranks, and a model that does not train on a team. */
START_TEST(test_refusals) {
  make_data();
  char dir[1024], cmd[16384];
  run_dir("refused", dir, sizeof dir);
  snprintf(cmd, sizeof cmd, "train lord --mpi --data '%s' --preset small --batch 7 --epochs1 1 --epochs2 0 -d cpu -o '%s'",
           data_lord, dir);
  cli_result r = mpi_run(2, cmd);
  ck_assert_int_ne(r.status, 0);
  assert_contains(r.err, "batch 7 does not split into 2 equal shares");
  cli_result_free(&r);
  snprintf(cmd, sizeof cmd, "train unit --data '%s' --preset small --batch 4 --epochs 1 -d cpu -o '%s'", data_unit, dir);
  r = mpi_run(2, cmd);
  ck_assert_int_ne(r.status, 0);
  assert_contains(r.err, "one of 2 that mpirun started; add --mpi");
  cli_result_free(&r);
  snprintf(cmd, sizeof cmd, "train unit --mpi --device cpu, --data '%s' --preset small --batch 4 --epochs 1 -o '%s'",
           data_unit, dir);
  r = mpi_run(2, cmd);
  ck_assert_int_ne(r.status, 0);
  assert_contains(r.err, "--device 'cpu,' names no device for rank 1 of 2");
  cli_result_free(&r);
  snprintf(cmd, sizeof cmd, "train spirals --mpi -o '%s'", dir);
  r = mpi_run(2, cmd);
  ck_assert_int_ne(r.status, 0);
  assert_contains(r.err, "built for lord, unit, cmivae, overlord and dmit only");
  cli_result_free(&r);
}
END_TEST

/* Steps numbered 0 .. rows - 1 in order, one line each (no rank but 0 wrote, no step twice);
 * `column` is the step's in losses.tsv. */
static void check_numbering(const char *dir, int column, int expect) {
  int rows, cols;
  double *steps = read_losses(dir, column, &rows, &cols); /* from the step column on */
  ck_assert_int_eq(rows, expect);
  for (int i = 0; i < rows; i++) ck_assert_int_eq((int)steps[i * cols], i);
  free(steps);
}

/* Two ranks, then one process, then two again continue one run (rank 0 alone logs, every step
 * once); and two ranks resumed by two ranks give the uninterrupted run's checkpoint bit for
 * bit. */
START_TEST(test_resume_with_other_rank_counts) {
  make_data();
  char a[1024], b[1024], cmd[16384], base[2048];
  run_dir("resume-a", a, sizeof a);
  run_dir("resume-b", b, sizeof b);
  snprintf(base, sizeof base, "--data '%s' --preset small --batch 8 --epochs2 0 --test-classes 0 -d cpu", data_lord);
  run_ok(2, "two ranks", "train lord --mpi %s --epochs1 2 -o '%s'", base, a);
  run_ok(0, "one process resuming two ranks' run",
         "train lord --resume --data '%s' --epochs1 3 -d cpu -o '%s'", data_lord, a);
  check_numbering(a, 2, 12);
  run_ok(2, "two ranks resuming", "train lord --mpi --resume --data '%s' --epochs1 4 -d cpu -o '%s'", data_lord, a);
  check_numbering(a, 2, 16);

  /* Stopped and resumed by the same count: the same bytes as straight through (UNIT, whose
   * learning rate is constant; LORD's cosine schedule follows the run's length). */
  snprintf(base, sizeof base, "--data '%s' --preset small --batch 4 -d cpu", data_unit);
  run_ok(2, "two ranks", "train unit --mpi %s --epochs 1 -o '%s'", base, b);
  run_ok(2, "two ranks", "train unit --mpi --resume --data '%s' --epochs 2 -d cpu -o '%s'", data_unit, b);
  char straight[1024];
  run_dir("resume-straight", straight, sizeof straight);
  run_ok(2, "two ranks", "train unit --mpi %s --epochs 2 -o '%s'", base, straight);
  snprintf(cmd, sizeof cmd, "cmp -s '%s/checkpoint.safetensors' '%s/checkpoint.safetensors' && cmp -s '%s/losses.tsv' "
           "'%s/losses.tsv'", b, straight, b, straight);
  ck_assert_msg(system(cmd) == 0, "two ranks resumed by two ranks ended elsewhere than straight through");
}
END_TEST

/* CMI-VAE: two ranks, then one process, then two ranks again continue one run; each count takes
 * over where the other stopped: the first steps after a change agree with a run that kept two
 * ranks to rounding, as two ranks and one process agree from a fresh start. */
START_TEST(test_cmivae_resume_with_other_rank_counts) {
  make_data();
  char a[1024], straight[1024], cmd[16384], base[2048];
  run_dir("cmivae-resume", a, sizeof a);
  run_dir("cmivae-straight", straight, sizeof straight);
  cmivae_args(base, sizeof base);
  run_ok(2, "two ranks", "train cmivae --mpi %s --epochs 2 -o '%s'", base, a);
  snprintf(cmd, sizeof cmd, "train cmivae --resume --data '%s' --epochs 4 -d cpu -o '%s'", data_lord, a);
  cli_result r = cli_run(cmd);
  ck_assert_msg(r.status == 0, "one process resuming two ranks' run: %s", r.err);
  assert_contains(r.out, "after step 6");
  cli_result_free(&r);
  snprintf(cmd, sizeof cmd, "train cmivae --mpi --resume --data '%s' --epochs 5 -d cpu -o '%s'", data_lord, a);
  r = mpi_run(2, cmd);
  ck_assert_msg(r.status == 0, "two ranks resuming one process's run: %s", r.err);
  assert_contains(r.out, "after step 12");
  cli_result_free(&r);
  check_numbering(a, 1, 15);
  run_ok(2, "two ranks", "train cmivae --mpi %s --epochs 5 -o '%s'", base, straight);
  int rows1, cols1, rows2, cols2, worst = -1;
  double *x = read_losses(a, 2, &rows1, &cols1), *y = read_losses(straight, 2, &rows2, &cols2);
  ck_assert_int_eq(rows1, 15);
  ck_assert_int_eq(rows2, 15);
  /* Steps 0-5: two ranks in both runs, the same bytes. */
  ck_assert_msg(drift(x, y, cols1, 0, 6, -1, &worst) == 0, "two ranks stopped after step 6 differ from two ranks at step %d",
                worst);
  double early = drift(x, y, cols1, 6, 6 + EARLY_STEPS, -1, &worst);
  ck_assert_msg(early <= EARLY_TOL, "one process resuming two ranks' checkpoint: %.3g relative at step %d, more than %g",
                early, worst, EARLY_TOL);
  double late = drift(x, y, cols1, 0, 15, -1, &worst);
  ck_assert_msg(late <= CMIVAE_LATE_TOL, "the resumed run drifts %.3g relative (step %d), more than %g", late, worst,
                CMIVAE_LATE_TOL);
  free(x);
  free(y);
}
END_TEST

/* Whether the first `rows` loss lines of run a continue run b's: lines before `same` the same
 * bytes (the same number of ranks trained them from the same start), the EARLY_STEPS after it
 * within EARLY_TOL (another number of ranks took over from the same checkpoint), every line
 * within late_tol. */
static void check_continues(const char *a, const char *b, int first_col, int rows, int same, double late_tol) {
  int rows1, cols1, rows2, cols2, worst = -1;
  double *x = read_losses(a, first_col, &rows1, &cols1), *y = read_losses(b, first_col, &rows2, &cols2);
  ck_assert_int_ge(rows1, rows);
  ck_assert_int_ge(rows2, rows);
  ck_assert_int_eq(cols1, cols2);
  ck_assert_msg(drift(x, y, cols1, 0, same, -1, &worst) == 0, "%s differs from %s at line %d, before the ranks changed", a,
                b, worst);
  double early = drift(x, y, cols1, same, same + EARLY_STEPS, -1, &worst);
  ck_assert_msg(early <= EARLY_TOL, "%s: another rank count resuming the checkpoint: %.3g relative at line %d, more "
                "than %g", a, early, worst, EARLY_TOL);
  double late = drift(x, y, cols1, 0, rows, -1, &worst);
  printf("%s continuing %s from line %d: %.3g relative over the %d lines after, %.3g over %d lines\n", a, b, same,
         early, EARLY_STEPS, late, rows);
  ck_assert_msg(late <= late_tol, "%s drifts %.3g relative from %s (line %d), more than %g", a, late, b, worst,
                late_tol);
  free(x);
  free(y);
}

/* OverLORD at 16x16: 24 training images in batches of 8, 3 steps an epoch; stage 3 with its
 * optional terms on (the label changes pair images inside the discriminator's groups of 4,
 * which each share holds whole, and are read back by stage 2's encoders, the label also as a
 * classification). */
static void overlord_args(char *args, size_t size) {
  snprintf(args, size, "--data '%s' --preset small --batch 8 --test-ratio 0.25 --set size=16 --set gen_channels=8 "
           "--set enc_channels=4 --set enc_max=8 --set dis_channels=8 --set label_dim=4 --set uncorr_dim=4 "
           "--set corr_dim=4 --set w_adv_swap=1 --set w_swap_label=2 --set w_swap_corr=2 --set w_swap_class=1 -d cpu",
           data_lord);
}

/* OverLORD's three stages on a team: two ranks against one process from a fresh start; then
 * each taking over the other's checkpoint at a stage boundary (the cosine schedules follow a
 * stage's length, so a run cut inside a stage would learn at other rates): two ranks stage 1
 * and stage 3, one process stage 2, against one process throughout; then a batch whose shares
 * split the discriminator's groups of 4 refused before anything is written. */
START_TEST(test_overlord_equivalence_and_resume) {
  make_data();
  char base[2048], args[4096], a[1024], b[1024], one[1024], two[1024], refused[1024], cmd[16384];
  overlord_args(base, sizeof base);
  snprintf(args, sizeof args, "%s --epochs 3,2,2", base);
  check_equivalence("overlord", args, 3, 21, OVERLORD_LATE_TOL, -1, 0);
  snprintf(one, sizeof one, "%s", test_tmp_path("overlord-one"));
  snprintf(two, sizeof two, "%s", test_tmp_path("overlord-two"));
  run_dir("overlord-a", a, sizeof a);
  run_dir("overlord-b", b, sizeof b);

  /* Two ranks train stage 1, one process stage 2, two ranks stage 3. */
  run_ok(2, "two ranks", "train overlord --mpi %s --epochs 3,0,0 -o '%s'", base, a);
  run_ok(0, "one process resuming two ranks' run",
         "train overlord --resume --data '%s' --epochs 3,2,0 -d cpu -o '%s'", data_lord, a);
  check_continues(a, two, 3, 15, 9, OVERLORD_LATE_TOL);
  run_ok(2, "two ranks resuming one process's run for stage 3",
         "train overlord --mpi --resume --data '%s' --epochs 3,2,2 -d cpu -o '%s'", data_lord, a);
  int rows, cols;
  double *stages = read_losses(a, 0, &rows, &cols);
  ck_assert_int_eq(rows, 21);
  for (int i = 0; i < rows; i++) ck_assert_int_eq((int)stages[i * cols], i < 9 ? 1 : i < 15 ? 2 : 3);
  free(stages);

  /* One process trains stage 1, two ranks stage 2, one process stage 3. */
  run_ok(0, "one process", "train overlord %s --epochs 3,0,0 -o '%s'", base, b);
  run_ok(2, "two ranks resuming one process's run",
         "train overlord --mpi --resume --data '%s' --epochs 3,2,0 -d cpu -o '%s'", data_lord, b);
  check_continues(b, one, 3, 15, 9, OVERLORD_LATE_TOL);

  /* Stage 3 by one process and by two ranks from the same checkpoint of stages 1 and 2: its
   * first steps agree to rounding, as the three stages do from a fresh start. */
  snprintf(cmd, sizeof cmd, "rm -rf '%s.s3' && cp -r '%s' '%s.s3'", b, b, b);
  ck_assert_int_eq(system(cmd), 0);
  run_ok(0, "one process, stage 3", "train overlord --resume --data '%s' --epochs 3,2,2 -d cpu -o '%s'", data_lord, b);
  snprintf(cmd, sizeof cmd, "train overlord --mpi --resume --data '%s' --epochs 3,2,2 -d cpu -o '%s.s3'", data_lord, b);
  run_ok(2, "two ranks, stage 3", "%s", cmd);
  snprintf(cmd, sizeof cmd, "%s.s3", b);
  check_continues(cmd, b, 3, 21, 15, OVERLORD_LATE_TOL);

  /* Batch 4 on two ranks: shares of 2, which split the groups of 4. */
  run_dir("overlord-refused", refused, sizeof refused);
  snprintf(cmd, sizeof cmd, "train overlord --mpi %s --batch 4 --epochs 1,1,1 -o '%s'", base, refused);
  cli_result r = mpi_run(2, cmd);
  ck_assert_int_ne(r.status, 0);
  assert_contains(r.err, "stage 3 on 2 processes needs each share of the batch to hold whole groups of 4");
  assert_contains(r.err, "batch 4 gives shares of 2; use a batch that is a multiple of 8");
  cli_result_free(&r);
  struct stat info;
  ck_assert_msg(stat(refused, &info) != 0, "the refused run made %s", refused);
}
END_TEST

/* The processes whose parent is `parent`, from /proc (no ps needed). */
static int children_of(pid_t parent, pid_t *out, int max) {
  int n = 0;
  FILE *p = popen("ls /proc", "r");
  ck_assert_ptr_nonnull(p);
  char name[64];
  while (n < max && fscanf(p, "%63s", name) == 1) {
    char path[128], comm[256];
    int pid, ppid;
    char state;
    if (atoi(name) <= 0) continue;
    snprintf(path, sizeof path, "/proc/%s/stat", name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fscanf(f, "%d %255s %c %d", &pid, comm, &state, &ppid) == 4 && ppid == parent) out[n++] = pid;
    fclose(f);
  }
  pclose(p);
  return n;
}

/* Lines in a file (0 when it does not exist yet). */
static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int n = 0;
  for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
  fclose(f);
  return n;
}

/* A rank killed during training: the job stops with a message naming the rank, and the last
 * checkpoint loads and resumes. */
START_TEST(test_rank_dies) {
  make_data();
  char dir[1024], out[1100], err[1100], losses[1100];
  run_dir("dies", dir, sizeof dir);
  snprintf(out, sizeof out, "%s.out", dir);
  snprintf(err, sizeof err, "%s.err", dir);
  snprintf(losses, sizeof losses, "%s/losses.tsv", dir);
  pid_t job = fork();
  ck_assert_int_ge(job, 0);
  if (job == 0) {
    if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr)) _exit(127);
    char data[1024];
    snprintf(data, sizeof data, "%s", data_lord);
    execl(MPIEXEC, MPIEXEC, "--oversubscribe", "-np", "2", cli_program(), "train", "lord", "--mpi", "--data", data,
          "--preset", "small", "--batch", "8", "--epochs1", "400", "--epochs2", "0", "--test-classes", "0", "-d", "cpu",
          "--save-every", "3", "-o", dir, (char *)NULL);
    _exit(127);
  }
  /* Wait for a few checkpoints (losses.tsv grows at each), then kill the last-started rank. */
  for (int i = 0; i < 1200 && count_lines(losses) < 10; i++) nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
  ck_assert_int_ge(count_lines(losses), 10);
  pid_t ranks[8];
  int n = children_of(job, ranks, 8);
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(kill(ranks[0] > ranks[1] ? ranks[0] : ranks[1], SIGKILL), 0);
  int w = 0;
  ck_assert_int_eq(waitpid(job, &w, 0), job);
  ck_assert(!WIFEXITED(w) || WEXITSTATUS(w) != 0);
  char *text = cli_slurp(err, NULL);
  assert_contains(text, "exited on signal 9");
  assert_contains(text, "rank");
  free(text);
  /* Resume (4 steps an epoch) for two epochs more than the checkpoint reached. */
  int epochs = (count_lines(losses) - 1) / 4 + 2;
  run_ok(0, "resuming after the kill",
         "train lord --resume --data '%s' --epochs1 %d -d cpu -o '%s'", data_lord, epochs, dir);
  check_numbering(dir, 2, epochs * 4);
}
END_TEST

static Suite *mpi_suite(void) {
  Suite *s = suite_create("mpi_train");
  TCase *tc = tcase_create("mpirun");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_lord_equivalence);
  tcase_add_test(tc, test_unit_equivalence);
  tcase_add_test(tc, test_refusals);
  tcase_add_test(tc, test_resume_with_other_rank_counts);
  tcase_add_test(tc, test_rank_dies);
  suite_add_tcase(s, tc);
  /* A case per model the LORD and UNIT cases do not cover (CK_RUN_CASE=cmivae runs one). */
  TCase *cmivae = tcase_create("cmivae");
  tcase_set_timeout(cmivae, 300);
  tcase_add_test(cmivae, test_cmivae_equivalence);
  tcase_add_test(cmivae, test_cmivae_resume_with_other_rank_counts);
  suite_add_tcase(s, cmivae);
  TCase *overlord = tcase_create("overlord");
  tcase_set_timeout(overlord, 300);
  tcase_add_test(overlord, test_overlord_equivalence_and_resume);
  suite_add_tcase(s, overlord);
  TCase *dmit = tcase_create("dmit");
  tcase_set_timeout(dmit, 300);
  tcase_add_test(dmit, test_dmit_equivalence);
  tcase_add_test(dmit, test_dmit_one_iteration_gradients);
  suite_add_tcase(s, dmit);
  return s;
}

int main(void) { return test_run_suite(mpi_suite()); }
