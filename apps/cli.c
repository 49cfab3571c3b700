/* Shared command-line plumbing for the subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "untangle_data.h"

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "untangle %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'untangle help %s'.\n", cmd);
  va_end(ap);
  return CLI_USAGE;
}

int cli_option_error(const char *cmd, int c, char *const argv[]) {
  /* getopt leaves optind just past the element it choked on, and optopt holds a short
   * option's letter (0 for a long option). */
  const char *arg = optind > 0 ? argv[optind - 1] : "?";
  if (c == ':') {
    if (optopt && optopt != '-' && arg[0] == '-' && arg[1] != '-')
      return cli_usage_error(cmd, "option '-%c' needs a value", optopt);
    return cli_usage_error(cmd, "option '%s' needs a value", arg);
  }
  if (optopt && !(arg[0] == '-' && arg[1] == '-'))
    return cli_usage_error(cmd, "unknown option '-%c'", optopt);
  return cli_usage_error(cmd, "unknown option '%s'", arg);
}

void cli_getopt_reset(void) { optind = 0; }

int cli_parse_i64(const char *cmd, const char *option, const char *text, int64_t min, int64_t max, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = text && *text ? strtoll(text, &end, 10) : 0;
  if (!text || !*text || *end || errno == ERANGE || v < min || v > max)
    return cli_usage_error(cmd, "%s expects a whole number from %lld to %lld, not '%s'", option, (long long)min,
                           (long long)max, text ? text : "");
  *out = (int64_t)v;
  return CLI_OK;
}

int cli_parse_double(const char *cmd, const char *option, const char *text, double min, double max, double *out) {
  char *end = NULL;
  errno = 0;
  double v = text && *text ? strtod(text, &end) : 0;
  /* !(v >= min) also rejects NaN. */
  if (!text || !*text || *end || errno == ERANGE || !(v >= min) || !(v <= max))
    return cli_usage_error(cmd, "%s expects a number from %g to %g, not '%s'", option, min, max, text ? text : "");
  *out = v;
  return CLI_OK;
}

int cli_parse_u64(const char *cmd, const char *option, const char *text, uint64_t max, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  /* strtoull accepts "-1" as a huge number; a seed is never negative. */
  int ok = text && *text && text[0] != '-' && text[0] != '+';
  unsigned long long v = ok ? strtoull(text, &end, 10) : 0;
  if (!ok || *end || errno == ERANGE || v > max)
    return cli_usage_error(cmd, "%s expects a whole number from 0 to %llu, not '%s'", option, (unsigned long long)max,
                           text ? text : "");
  *out = (uint64_t)v;
  return CLI_OK;
}

int cli_mkdirs(const char *path) {
  size_t len = strlen(path);
  char *buf = malloc(len + 1);
  if (!buf) return -1;
  memcpy(buf, path, len + 1);
  /* Create each parent in turn; one that exists already is fine, anything else stops. */
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char keep = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
      free(buf);
      return -1;
    }
    buf[i] = keep;
  }
  struct stat sb;
  int ok = stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode);
  free(buf);
  if (!ok) errno = ENOTDIR;
  return ok ? 0 : -1;
}

char *cli_format_bytes(uint64_t bytes, char *buf, size_t size) {
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(buf, size, "%llu B", (unsigned long long)bytes);
  else
    snprintf(buf, size, v < 100 && v != (double)(uint64_t)v ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

const char *cli_default_device(void) {
  const char *env = getenv("UNTANGLE_DEVICE");
  return env && *env ? env : "best";
}

int cli_eval_operands(const char *cmd, int argc, char **argv, const char *data, const char **run) {
  if (optind >= argc) return cli_usage_error(cmd, "needs the run folder RUN (from 'untangle train MODEL --out RUN')");
  *run = argv[optind++];
  if (optind < argc) return cli_usage_error(cmd, "takes one run folder, got also '%s'", argv[optind]);
  if (!data) return cli_usage_error(cmd, "needs --data FILE, the data set the run was trained on");
  return CLI_OK;
}

void cli_eval_part(void *start_seconds, const char *part) {
  fprintf(stderr, "eval: %s (at %.1f s)\n", part, ut_seconds() - *(const double *)start_seconds);
}

int cli_write_eval_json(const char *cmd, const char *run, const char *out, const char *json, double seconds) {
  size_t len = strlen(run) + sizeof "/eval.json";
  char *path = json ? (out ? strdup(out) : malloc(len)) : NULL;
  if (!path) {
    fprintf(stderr, "untangle %s: out of memory\n", cmd);
    return CLI_FAILED;
  }
  if (!out) snprintf(path, len, "%s/eval.json", run);
  int rc = CLI_OK;
  if (ut_data_write_atomic(path, json, strlen(json)) != UT_OK) {
    fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
    rc = CLI_FAILED;
  } else {
    printf("wrote %s (%.1f s)\n", path, seconds);
  }
  free(path);
  return rc;
}

ut_runtime *cli_open_runtime(const char *cmd, const char *device, int announce) {
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = device });
  if (!rt) {
    fprintf(stderr, "untangle %s: cannot open the OpenCL device '%s': %s\n", cmd, device, ut_last_error());
    return NULL;
  }
  if (announce) {
    const ut_device_info *dev = ut_runtime_device(rt);
    printf("device %d: %s (%s, %s)\n", dev->index, dev->name, ut_device_type_name(dev->type), dev->platform);
  }
  return rt;
}

int cli_collect_set(const char *cmd, const char *arg, const char **sets, int *n_sets, int max) {
  if (*n_sets == max) return cli_usage_error(cmd, "at most %d --set options", max);
  if (!strchr(arg, '=')) return cli_usage_error(cmd, "--set expects FIELD=VALUE, not '%s'", arg);
  sets[(*n_sets)++] = arg;
  return CLI_OK;
}

int cli_apply_sets(const char *cmd, const kit_config_table *table, void *cfg, const char *const *sets, int n_sets) {
  for (int i = 0; i < n_sets; i++) {
    char field[64];
    const char *eq = strchr(sets[i], '=');
    snprintf(field, sizeof field, "%.*s", (int)(eq - sets[i]), sets[i]);
    if (kit_config_set(table, cfg, field, eq + 1) != UT_OK)
      return cli_usage_error(cmd, "--set %s: %s", sets[i], ut_last_error());
  }
  return CLI_OK;
}
