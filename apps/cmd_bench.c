/* `untangle bench`: the benchmark harness (benchmarks/bench.h) and its report. Options and the
 * progress line only; the work is in benchmarks/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_scaling.h"
#include "cli.h"
#include "commands.h"
#include "progress.h"

#define CMD "bench"

void help_bench(FILE *out) {
  fprintf(out,
          "Usage: untangle bench [--devices D] [--suite LIST] [--quick] [--repeats N] [--warmup N]\n"
          "                     [--profile FILE] -o FILE\n"
          "       untangle bench report RESULTS.jsonl... [-o report.html] [--markdown table.md]\n"
          "\n"
          "Times suites of work on OpenCL devices and writes one JSON object per figure to FILE\n"
          "(JSON lines). Each figure is the median of repeated runs after warm-up, with min and max:\n"
          "device time from OpenCL profiling events for kernels and GEMMs, the wall clock for whole\n"
          "training steps. With -o, a markdown table of the results is printed at the end.\n"
          "\n"
          "Suites:\n"
          "  peak    FP32 FMA throughput and memory bandwidth of our own micro-kernels, next to the\n"
          "          device info's estimate (compute units x clock x lanes)\n"
          "  gemm    SGEMM through the engine (CLBlast) at square sizes 256..4096 and at the GEMM\n"
          "          shapes of the models' convolutions\n"
          "  ops     convolution forward, backward-data and backward-weight at LORD's and VGG16's\n"
          "          layer shapes; AdaIN, instance norm and leaky ReLU at the generator's largest,\n"
          "          forward alone and with their backward pass (NAME.fwd_bwd), in GB/s.\n"
          "          With the gemm suite in the same run, each convolution's GFLOP/s is also given\n"
          "          as a share of the fastest square SGEMM (pct_sgemm_peak, '%% of SGEMM')\n"
          "  models  one LORD training step of stage 1 and 2 (small preset with the VGG loss on\n"
          "          random weights and, as lord.stageN.small.l1, with pixel L1 alone; official\n"
          "          widths at 64x64 with batch 32 and 128 in full runs) and one UNIT iteration,\n"
          "          discriminator then generator update (unit.small: 32x32, batch 8 per domain;\n"
          "          in full runs unit.default: 128x128, width 64, batch 1, and unit.default.b8):\n"
          "          ms per step, images/s, arena bytes, share of step time per op kind, cold\n"
          "          and warm start (empty / full program cache)\n"
          "  scaling (only alone, in a build with MPI) whole LORD stage-1 runs (small preset, 32x32,\n"
          "          global batch 16) as 'mpirun -np 2 ... --mpi' against one process, every process\n"
          "          on one thread: images/s, efficiency (2 ranks / twice one) and the share of\n"
          "          time spent communicating, with the load average\n"
          "  memory  whether the official stage-1 step (default widths, 64x64, batch 128, VGG loss)\n"
          "          fits: compiles its plan and records arena_peak_bytes, intermediate_bytes and\n"
          "          fits; runs and times ONE step only when the arena fits the device's memory and\n"
          "          8 GiB (tens of minutes on a CPU). A plan the engine refuses is recorded with\n"
          "          its message and the size it needed, and the run goes on\n"
          "\n"
          "Options:\n"
          "  -d, --devices D   all (default), gpu, cpu, or indices from 'untangle devices' (0,2)\n"
          "  -s, --suite LIST  peak,gemm,ops,models,memory (default all), comma-separated\n"
          "  -q, --quick       the small preset's shapes, square GEMMs 256 and 512, 3 repeats after\n"
          "                    1 warm-up, only the small presets in 'models'\n"
          "      --tiny        the smallest shapes and 1 repeat: checks that every suite runs (tests)\n"
          "  -r, --repeats N   timed runs per figure (default 5; quick 3; tiny 1)\n"
          "  -w, --warmup N    untimed runs before them (default 2; quick 1; tiny 0)\n"
          "  -o, --out FILE    the JSON lines file (default: standard output, and no table)\n"
          "  -p, --profile FILE  each models case's per-node table (ms per timed step, share of\n"
          "                    the step's device time) goes to FILE: where a step's time goes\n"
          "  -h, --help        show this help\n"
          "\n"
          "Report options:\n"
          "  -o, --out FILE      one self-contained HTML page: a table and a bar chart per case\n"
          "                      comparing the devices (and PyTorch references) in the inputs\n"
          "  -m, --markdown FILE the markdown table also goes to FILE (it is always printed)\n"
          "Lines written by benchmarks/reference/lord_step.py and unit_step.py (PyTorch) are matched\n"
          "to untangle's by suite, case and shape; the table then gives untangle / PyTorch.\n"
          "\n"
          "A progress line goes to stderr. Exit status: 0 done, 1 a figure or the report failed,\n"
          "2 the command line was wrong.\n");
}

typedef struct {
  progress bar;
  int started;
} progress_state;

static void on_progress(void *user, int done, int total, const char *what) {
  progress_state *s = user;
  if (!s->started) {
    progress_begin(&s->bar, stderr, "bench", 0, total);
    s->started = 1;
  }
  progress_update(&s->bar, done, what);
}

static int run_report(int argc, char **argv) {
  static const struct option opts[] = { { "out", required_argument, NULL, 'o' },
                                        { "markdown", required_argument, NULL, 'm' },
                                        { "help", no_argument, NULL, 'h' },
                                        { NULL, 0, NULL, 0 } };
  const char *html = NULL, *md = NULL;
  cli_getopt_reset();
  opterr = 0;
  for (int c; (c = getopt_long(argc, argv, ":o:m:h", opts, NULL)) != -1;) {
    switch (c) {
    case 'o': html = optarg; break;
    case 'm': md = optarg; break;
    case 'h': help_bench(stdout); return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (optind >= argc) return cli_usage_error(CMD, "report expects one or more RESULTS.jsonl files");
  bench_report_cfg rc = { .inputs = (const char *const *)argv + optind, .n_inputs = argc - optind, .html_path = html,
                          .markdown_path = md, .markdown_out = stdout };
  if (bench_report(&rc) != UT_OK) {
    fprintf(stderr, "untangle " CMD " report: %s\n", ut_last_error());
    return CLI_FAILED;
  }
  if (html) fprintf(stderr, "report written to %s\n", html);
  return CLI_OK;
}

enum { OPT_TINY = 256 };

int cmd_bench(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "report")) return run_report(argc - 1, argv + 1);
  static const struct option opts[] = {
    { "devices", required_argument, NULL, 'd' }, { "suite", required_argument, NULL, 's' },
    { "quick", no_argument, NULL, 'q' },         { "tiny", no_argument, NULL, OPT_TINY },
    { "repeats", required_argument, NULL, 'r' }, { "warmup", required_argument, NULL, 'w' },
    { "out", required_argument, NULL, 'o' },     { "profile", required_argument, NULL, 'p' },
    { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
  };
  bench_cfg cfg = { .devices = "all", .suites = BENCH_ALL, .size = BENCH_SIZE_FULL, .repeats = -1, .warmup = -1 };
  const char *out_path = NULL, *profile_path = NULL;
  int64_t v;
  int scaling = 0;
  int rc = CLI_OK;
  cli_getopt_reset();
  opterr = 0;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":d:s:qr:w:o:p:h", opts, NULL)) != -1;) {
    switch (c) {
    case 'd': cfg.devices = optarg; break;
    case 's':
      if (!strcmp(optarg, "scaling")) scaling = 1;
      else if (bench_parse_suites(optarg, &cfg.suites) != UT_OK) rc = cli_usage_error(CMD, "%s", ut_last_error());
      break;
    case 'q': cfg.size = BENCH_SIZE_QUICK; break;
    case OPT_TINY: cfg.size = BENCH_SIZE_TINY; break;
    case 'r':
      if ((rc = cli_parse_i64(CMD, "--repeats", optarg, 1, 1000, &v)) == CLI_OK) cfg.repeats = (int)v;
      break;
    case 'w':
      if ((rc = cli_parse_i64(CMD, "--warmup", optarg, 0, 1000, &v)) == CLI_OK) cfg.warmup = (int)v;
      break;
    case 'o': out_path = optarg; break;
    case 'p': profile_path = optarg; break;
    case 'h': help_bench(stdout); return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (optind < argc) return cli_usage_error(CMD, "takes no arguments (did you mean 'bench report'?), got '%s'", argv[optind]);
  cfg.out = out_path ? fopen(out_path, "w") : stdout;
  if (!cfg.out) {
    fprintf(stderr, "untangle " CMD ": cannot write %s: %s\n", out_path, strerror(errno));
    return CLI_FAILED;
  }
  if (profile_path && !(cfg.profile = fopen(profile_path, "w"))) {
    fprintf(stderr, "untangle " CMD ": cannot write %s: %s\n", profile_path, strerror(errno));
    if (out_path) fclose(cfg.out), remove(out_path);
    return CLI_FAILED;
  }
  if (scaling) {
    rc = bench_scaling(cfg.out, cfg.size != BENCH_SIZE_FULL, cfg.repeats);
    if (out_path && fclose(cfg.out) != 0 && rc == CLI_OK) rc = CLI_FAILED;
    if (cfg.profile) fclose(cfg.profile); /* the scaling runs are whole processes: no plans to profile */
    return rc;
  }
  progress_state ps = { .started = 0 };
  cfg.on_progress = on_progress;
  cfg.user = &ps;
  ut_status st = bench_run(&cfg);
  if (ps.started) progress_end(&ps.bar, ps.bar.total, st == UT_OK ? "done" : "with failures");
  if (out_path && fclose(cfg.out) != 0 && st == UT_OK) st = ut_fail(UT_ERR_IO, "cannot finish writing %s", out_path);
  if (cfg.profile && fclose(cfg.profile) != 0 && st == UT_OK)
    st = ut_fail(UT_ERR_IO, "cannot finish writing %s", profile_path);
  if (st != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    rc = st == UT_ERR_INVALID_ARGUMENT ? CLI_USAGE : CLI_FAILED;
  }
  /* Nothing ran: leave no empty results file behind. */
  if (out_path && (st == UT_ERR_INVALID_ARGUMENT || st == UT_ERR_NO_DEVICE)) remove(out_path);
  else if (out_path) {
    const char *inputs[1] = { out_path };
    bench_report_cfg report = { .inputs = inputs, .n_inputs = 1, .markdown_out = stdout };
    if (bench_report(&report) != UT_OK) {
      fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
      rc = CLI_FAILED;
    }
  }
  return rc;
}
