/* `untangle devices`: what OpenCL offers on this machine, as a table or as JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "untangle.h"

void help_devices(FILE *out) {
  fprintf(out,
          "Usage: untangle devices [--json]\n"
          "\n"
          "Lists every device of every OpenCL platform: its index (what --device takes),\n"
          "platform, name, type, compute units, clock, global and local memory, largest\n"
          "allocation, OpenCL C version, driver, and half (fp16) and double (fp64) support;\n"
          "then the OpenBLAS kernels that CPU devices' products and convolutions run on, and\n"
          "where OpenBLAS did not know this processor, what it would have chosen by itself.\n"
          "\n"
          "Options:\n"
          "  -j, --json   print a JSON array of objects instead of a table\n"
          "  -h, --help   show this help\n"
          "\n"
          "Exits with 1 when there is no device.\n");
}

enum { COLS = 13 };
static const char *const headers[COLS] = { "#",      "type",  "name",      "platform",  "CUs",  "MHz", "global",
                                           "local",  "max alloc", "OpenCL C", "driver", "fp16", "fp64" };
/* Numbers read best right-aligned. */
static const int right_aligned[COLS] = { 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0 };

typedef struct {
  char cell[COLS][132];
} row;

static void fill_row(const ut_device_info *d, row *r) {
  snprintf(r->cell[0], sizeof r->cell[0], "%d", d->index);
  snprintf(r->cell[1], sizeof r->cell[1], "%s", ut_device_type_name(d->type));
  snprintf(r->cell[2], sizeof r->cell[2], "%s", d->name);
  snprintf(r->cell[3], sizeof r->cell[3], "%s", d->platform);
  snprintf(r->cell[4], sizeof r->cell[4], "%u", d->compute_units);
  snprintf(r->cell[5], sizeof r->cell[5], "%u", d->clock_mhz);
  cli_format_bytes(d->global_mem_bytes, r->cell[6], sizeof r->cell[6]);
  cli_format_bytes(d->local_mem_bytes, r->cell[7], sizeof r->cell[7]);
  cli_format_bytes(d->max_alloc_bytes, r->cell[8], sizeof r->cell[8]);
  snprintf(r->cell[9], sizeof r->cell[9], "%s", d->opencl_c_version);
  snprintf(r->cell[10], sizeof r->cell[10], "%s", d->driver_version);
  snprintf(r->cell[11], sizeof r->cell[11], "%s", d->fp16 ? "yes" : "no");
  snprintf(r->cell[12], sizeof r->cell[12], "%s", d->fp64 ? "yes" : "no");
}

static void print_line(const char *const cells[COLS], const int width[COLS]) {
  for (int c = 0; c < COLS; c++) {
    int last = c == COLS - 1;
    if (right_aligned[c])
      printf("%*s", width[c], cells[c]);
    else if (last) /* no trailing blanks */
      printf("%s", cells[c]);
    else
      printf("%-*s", width[c], cells[c]);
    printf(last ? "\n" : "  ");
  }
}

/* What OpenBLAS chose by itself where this process was started again with other kernels
 * (apps/main.c), else NULL. */
static const char *blas_detected(void) {
  const char *d = getenv(CLI_BLAS_DETECTED_ENV);
  return d && *d ? d : NULL;
}

static void print_blas(void) {
  const char *detected = blas_detected();
  printf("\nCPU devices multiply on the host with OpenBLAS's %s kernels", ut_blas_kernels());
  if (detected)
    printf(" (OpenBLAS by itself chose %s on this processor, which it does not know; untangle set "
           "OPENBLAS_CORETYPE=%s)", detected, getenv("OPENBLAS_CORETYPE"));
  const int lanes = ut_host_conv_lanes();
  if (lanes)
    printf(", and run narrow convolutions as direct loops in %d-float vectors (%s)", lanes,
           lanes == 16 ? "AVX-512" : "AVX2 or SSE");
  printf(".\n");
  if (!lanes) printf("%s\n", ut_last_error());
}

static int print_table(const ut_device_info *devs, int n) {
  row *rows = calloc((size_t)n, sizeof *rows);
  if (!rows) {
    fprintf(stderr, "untangle devices: out of memory\n");
    return CLI_FAILED;
  }
  int width[COLS];
  for (int c = 0; c < COLS; c++) width[c] = (int)strlen(headers[c]);
  for (int i = 0; i < n; i++) {
    fill_row(&devs[i], &rows[i]);
    for (int c = 0; c < COLS; c++) {
      int w = (int)strlen(rows[i].cell[c]);
      if (w > width[c]) width[c] = w;
    }
  }
  print_line(headers, width);
  for (int i = 0; i < n; i++) {
    const char *cells[COLS];
    for (int c = 0; c < COLS; c++) cells[c] = rows[i].cell[c];
    print_line(cells, width);
  }
  int cpu = 0;
  for (int i = 0; i < n; i++) cpu |= devs[i].type == UT_DEVICE_CPU;
  if (cpu) print_blas();
  free(rows);
  return CLI_OK;
}

static json_t *device_fields(const ut_device_info *d) {
  /* Sizes are bytes as integers, so scripts need not parse "12.5 GiB". */
  return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:b, s:b}",
                   "index", d->index, "platform", d->platform, "platform_version", d->platform_version, "name",
                   d->name, "vendor", d->vendor, "type", ut_device_type_name(d->type), "compute_units",
                   (json_int_t)d->compute_units, "clock_mhz", (json_int_t)d->clock_mhz, "global_mem_bytes",
                   (json_int_t)d->global_mem_bytes, "local_mem_bytes", (json_int_t)d->local_mem_bytes,
                   "max_alloc_bytes", (json_int_t)d->max_alloc_bytes, "max_work_group_size",
                   (json_int_t)d->max_work_group_size, "device_version", d->device_version, "opencl_c_version",
                   d->opencl_c_version, "driver_version", d->driver_version, "fp16", d->fp16 != 0, "fp64",
                   d->fp64 != 0);
}

static json_t *device_json(const ut_device_info *d) {
  json_t *o = device_fields(d);
  if (o && d->type == UT_DEVICE_CPU) {
    json_object_set_new(o, "host_blas_kernels", json_string(ut_blas_kernels()));
    json_object_set_new(o, "host_conv_lanes", json_integer(ut_host_conv_lanes()));
    if (blas_detected()) json_object_set_new(o, "host_blas_detected", json_string(blas_detected()));
  }
  return o;
}

static int print_json(const ut_device_info *devs, int n) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < n; i++) {
    json_t *obj = device_json(&devs[i]);
    if (!obj || json_array_append_new(arr, obj) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  char *text = arr ? json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(arr);
  if (!text) {
    fprintf(stderr, "untangle devices: could not write the JSON (out of memory, or a device name that is not UTF-8)\n");
    return CLI_FAILED;
  }
  printf("%s\n", text);
  free(text);
  return CLI_OK;
}

int cmd_devices(int argc, char **argv) {
  static const struct option options[] = {
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int json = 0;
  cli_getopt_reset();
  opterr = 0;
  for (int c; (c = getopt_long(argc, argv, ":jh", options, NULL)) != -1;) {
    switch (c) {
    case 'j': json = 1; break;
    case 'h': help_devices(stdout); return CLI_OK;
    default: return cli_option_error("devices", c, argv);
    }
  }
  if (optind < argc) return cli_usage_error("devices", "takes no arguments, got '%s'", argv[optind]);

  ut_device_info *devs = NULL;
  int n = 0;
  ut_status s = ut_devices_list(&devs, &n);
  if (s != UT_OK) {
    fprintf(stderr, "untangle devices: cannot list the OpenCL devices: %s\n", ut_last_error());
    return CLI_FAILED;
  }
  if (n == 0) {
    if (json) printf("[]\n");
    fprintf(stderr,
            "untangle devices: no OpenCL device found. Install an OpenCL driver (pocl-opencl-icd runs on\n"
            "the CPU; GPUs need their vendor's ICD) and check what the ICD loader sees with 'clinfo -l'.\n");
    free(devs);
    return CLI_FAILED;
  }
  int rc = json ? print_json(devs, n) : print_table(devs, n);
  free(devs);
  return rc;
}
