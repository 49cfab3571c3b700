/* Opening a device: selection, context and queue, programs (through the disk cache), kernels
 * and device memory. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "host_gemm.h"
#include "ops/conv_direct.h"
#include "runtime_internal.h"

struct ut_program_entry {
  char *label;
  char *options;
  cl_program program;
  ut_program_entry *next;
};

/* ---- selection ---------------------------------------------------------------------------- */

typedef struct {
  const char *select;
  int best_index;
  ut_device_info best;
  cl_platform_id platform;
  cl_device_id device;
  char seen[2048]; /* the list, for the "no match" message */
} selection;

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

static int is_number(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

/* Ranks a device for the selection; higher wins, 0 means "does not match". */
static long rank(const char *sel, const ut_device_info *d) {
  if (!sel || !*sel || !strcmp(sel, "best")) {
    if (d->type == UT_DEVICE_GPU) return 1000000L + d->compute_units;
    return d->type == UT_DEVICE_CPU ? 1000 : 1;
  }
  if (!strcmp(sel, "gpu")) return d->type == UT_DEVICE_GPU ? 1 + (long)d->compute_units : 0;
  if (!strcmp(sel, "cpu")) return d->type == UT_DEVICE_CPU ? 1 + (long)d->compute_units : 0;
  if (is_number(sel)) return atol(sel) == d->index ? 1 : 0;
  return contains_nocase(d->name, sel) || contains_nocase(d->platform, sel) ? 1 : 0;
}

static ut_status consider(cl_platform_id p, cl_device_id d, int index, void *ctx) {
  selection *s = ctx;
  ut_device_info info;
  ut_device_info_fill(p, d, index, &info);
  size_t len = strlen(s->seen);
  snprintf(s->seen + len, sizeof s->seen - len, "%s%d: %s (%s, %s)", len ? "; " : "", index, info.name,
           info.platform, ut_device_type_name(info.type));
  long r = rank(s->select, &info);
  /* Strictly greater keeps the first of equals, so ties go to the lower index. */
  if (r > 0 && (s->best_index < 0 || r > rank(s->select, &s->best))) {
    s->best_index = index;
    s->best = info;
    s->platform = p;
    s->device = d;
  }
  return UT_OK;
}

/* ---- open and close ------------------------------------------------------------------------ */

/* The widest the processor runs, or 8 where $UNTANGLE_CONV_LANES says so (one binary timed both
 * ways side by side, benchmarks/README.md); 16 there on a processor without x86-64-v4 is an error. */
int ut_host_conv_lanes(void) {
  const char *lanes = getenv("UNTANGLE_CONV_LANES");
  int widest = ut_conv_direct_widest_lanes();
  if (!lanes || !*lanes) return widest;
  if (!strcmp(lanes, "8")) return 8;
  if (!strcmp(lanes, "16") && widest == 16) return 16;
  ut_fail(UT_ERR_INVALID_ARGUMENT,
          "$UNTANGLE_CONV_LANES is '%s'; expected 8 (the direct convolution loops in 8-float vectors) or, on a processor "
          "with AVX-512 (x86-64-v4), 16 (the default there); this processor and build run at most %d",
          lanes, widest);
  return 0;
}

static char *default_cache_dir(void) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char path[4096];
  if (xdg && *xdg) snprintf(path, sizeof path, "%s/untangle", xdg);
  else if (home && *home) snprintf(path, sizeof path, "%s/.cache/untangle", home);
  else return NULL;
  return strdup(path);
}

ut_runtime *ut_runtime_open(const ut_device_query *query) {
  ut_device_query q = query ? *query : (ut_device_query){ 0 };
  selection s = { .select = q.select, .best_index = -1 };
  if (ut_devices_each(consider, &s) != UT_OK) return NULL;
  if (s.best_index < 0) {
    if (!s.seen[0]) ut_fail(UT_ERR_NO_DEVICE, "no OpenCL device found: is an OpenCL driver installed (for a CPU: pocl-opencl-icd)?");
    else ut_fail(UT_ERR_NO_DEVICE, "no OpenCL device matches '%s'; the devices are: %s", q.select, s.seen);
    return NULL;
  }
  ut_runtime *rt = calloc(1, sizeof *rt);
  if (!rt) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory opening the runtime");
    return NULL;
  }
  rt->platform = s.platform;
  rt->device = s.device;
  rt->info = s.best;
  rt->profiling = q.profiling;
  cl_int err;
  cl_context_properties props[] = { CL_CONTEXT_PLATFORM, (cl_context_properties)rt->platform, 0 };
  rt->context = clCreateContext(props, 1, &rt->device, NULL, NULL, &err);
  if (err != CL_SUCCESS) {
    ut_fail_cl(err, "clCreateContext", "for device %d (%s)", s.best_index, s.best.name);
    free(rt);
    return NULL;
  }
  /* clCreateCommandQueue is deprecated in 2.0 but is the one call every 1.2 driver has. */
  rt->queue = clCreateCommandQueue(rt->context, rt->device, q.profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (err != CL_SUCCESS) {
    ut_fail_cl(err, "clCreateCommandQueue", "for device %d (%s)", s.best_index, s.best.name);
    clReleaseContext(rt->context);
    free(rt);
    return NULL;
  }
  rt->cache_dir = q.cache_dir ? (q.cache_dir[0] ? strdup(q.cache_dir) : NULL) : default_cache_dir();
  if (ut_host_gemm_choose(rt) != UT_OK) {
    ut_runtime_close(rt);
    return NULL;
  }
  rt->conv_flip = 1;
  if ((rt->conv_direct = ut_host_conv_lanes()) == 0) {
    ut_runtime_close(rt);
    return NULL;
  }
  /* UNTANGLE_CONV_WINOGRAD=0 keeps wide 3x3 layers on im2col + GEMM, so one binary can be timed
   * both ways side by side (benchmarks/README.md). */
  const char *winograd = getenv("UNTANGLE_CONV_WINOGRAD");
  if (winograd && *winograd && strcmp(winograd, "0") && strcmp(winograd, "1")) {
    ut_fail(UT_ERR_INVALID_ARGUMENT,
            "$UNTANGLE_CONV_WINOGRAD is '%s'; expected 1 (wide 3x3 convolutions on the host as Winograd F(2x2, 3x3), "
            "the default) or 0 (im2col + GEMM)",
            winograd);
    ut_runtime_close(rt);
    return NULL;
  }
  rt->conv_winograd = !(winograd && !strcmp(winograd, "0"));
  return rt;
}

void ut_runtime_close(ut_runtime *rt) {
  if (!rt) return;
  if (rt->queue) clFinish(rt->queue);
  for (ut_program_entry *e = rt->programs, *next; e; e = next) {
    next = e->next;
    clReleaseProgram(e->program);
    free(e->label);
    free(e->options);
    free(e);
  }
  if (rt->queue) clReleaseCommandQueue(rt->queue);
  if (rt->context) clReleaseContext(rt->context);
  free(rt->cache_dir);
  free(rt);
}

const ut_device_info *ut_runtime_device(const ut_runtime *rt) { return &rt->info; }
ut_runtime_stats ut_runtime_get_stats(const ut_runtime *rt) { return rt->stats; }

ut_status ut_runtime_finish(ut_runtime *rt) {
  cl_int err = clFinish(rt->queue);
  return err == CL_SUCCESS ? UT_OK : ut_fail_cl(err, "clFinish", "on %s", rt->info.name);
}

/* ---- programs and kernels ------------------------------------------------------------------- */

static ut_status build_failure(ut_runtime *rt, cl_program prog, cl_int err, const char *label) {
  size_t n = 0;
  clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  char *log = malloc(n + 1);
  if (log && clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) log[n] = '\0';
  else if (log) log[0] = '\0';
  ut_status st = ut_fail(UT_ERR_BUILD, "building OpenCL program '%s' for %s failed: %s (%d)\nbuild log:\n%s", label,
                         rt->info.name, ut_status_name(err), err, log ? log : "(no memory for the log)");
  free(log);
  return st;
}

static cl_int program_binary(ut_runtime *rt, cl_program prog, unsigned char **bin, size_t *size) {
  cl_int err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof *size, size, NULL);
  if (err != CL_SUCCESS || *size == 0) return err != CL_SUCCESS ? err : CL_INVALID_BINARY;
  *bin = malloc(*size);
  if (!*bin) return CL_OUT_OF_HOST_MEMORY;
  err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof *bin, bin, NULL);
  if (err != CL_SUCCESS) {
    free(*bin);
    *bin = NULL;
  }
  return err;
}

/* The cache key: everything that changes the binary. */
static char *cache_key(ut_runtime *rt, const char *source, const char *options) {
  size_t n = strlen(rt->info.platform) + strlen(rt->info.platform_version) + strlen(rt->info.name) +
             strlen(rt->info.driver_version) + strlen(rt->info.device_version) + strlen(options) + 128;
  char *key = malloc(n);
  if (key)
    snprintf(key, n, "%s|%s|%s|%s|%s|%016llx|%zu|%s", rt->info.platform, rt->info.platform_version, rt->info.name,
             rt->info.driver_version, rt->info.device_version,
             (unsigned long long)ut_hash64(source, strlen(source), 0), strlen(source), options);
  return key;
}

static cl_program from_cache(ut_runtime *rt, const char *key, const char *options) {
  unsigned char *bin = NULL;
  size_t size = 0;
  int rejected = 0;
  if (!ut_program_cache_load(rt->cache_dir, key, &bin, &size, &rejected)) {
    rt->stats.cache_rejected += (unsigned)rejected;
    return NULL;
  }
  cl_int err, bin_status;
  const unsigned char *bins[1] = { bin };
  cl_program prog = clCreateProgramWithBinary(rt->context, 1, &rt->device, &size, bins, &bin_status, &err);
  free(bin);
  if (err == CL_SUCCESS && bin_status == CL_SUCCESS && clBuildProgram(prog, 1, &rt->device, options, NULL, NULL) == CL_SUCCESS)
    return prog;
  /* The driver refused the binary (a driver update, a damaged entry): rebuild from source. */
  if (err == CL_SUCCESS) clReleaseProgram(prog);
  rt->stats.cache_rejected++;
  return NULL;
}

/* A program this runtime already built under this label and these options, or NULL. */
static cl_program built_program(const ut_runtime *rt, const char *label, const char *options) {
  for (const ut_program_entry *e = rt->programs; e; e = e->next)
    if (!strcmp(e->label, label) && !strcmp(e->options, options)) return e->program;
  return NULL;
}

ut_status ut_runtime_build(ut_runtime *rt, const char *label, const char *source, const char *options, cl_program *out) {
  options = options ? options : "";
  if ((*out = built_program(rt, label, options))) return UT_OK;
  char *key = rt->cache_dir ? cache_key(rt, source, options) : NULL;
  cl_program prog = key ? from_cache(rt, key, options) : NULL;
  if (prog) {
    rt->stats.programs_cached++;
  } else {
    cl_int err;
    prog = clCreateProgramWithSource(rt->context, 1, &source, NULL, &err);
    if (err != CL_SUCCESS) {
      free(key);
      return ut_fail_cl(err, "clCreateProgramWithSource", "for program '%s'", label);
    }
    err = clBuildProgram(prog, 1, &rt->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
      ut_status st = build_failure(rt, prog, err, label);
      clReleaseProgram(prog);
      free(key);
      return st;
    }
    rt->stats.programs_built++;
    unsigned char *bin = NULL;
    size_t size = 0;
    if (key && program_binary(rt, prog, &bin, &size) == CL_SUCCESS) ut_program_cache_store(rt->cache_dir, key, bin, size);
    free(bin);
  }
  free(key);
  ut_program_entry *e = calloc(1, sizeof *e);
  if (!e || !(e->label = strdup(label)) || !(e->options = strdup(options))) {
    if (e) free(e->label);
    free(e);
    clReleaseProgram(prog);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory keeping program '%s'", label);
  }
  e->program = prog;
  e->next = rt->programs;
  rt->programs = e;
  *out = prog;
  return UT_OK;
}

static const char *embedded_source(const char *name) {
  for (int i = 0; i < ut_kernel_source_count; i++)
    if (!strcmp(ut_kernel_sources[i].name, name)) return ut_kernel_sources[i].source;
  return NULL;
}

ut_status ut_runtime_program(ut_runtime *rt, const char *name, const char *options, cl_program *out) {
  /* Checked here too so that a hit (every launch of a plan asks) skips joining the sources. */
  if ((*out = built_program(rt, name, options ? options : ""))) return UT_OK;
  const char *source = embedded_source(name), *common = embedded_source("common");
  if (!source || !common) return ut_fail(UT_ERR_NOT_FOUND, "no embedded OpenCL source 'cl/%s.cl'", source ? "common" : name);
  /* Every family is built with the shared helpers of cl/common.cl in front of it. */
  size_t n = strlen(common) + strlen(source) + 2;
  char *whole = malloc(n);
  if (!whole) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory building cl/%s.cl", name);
  snprintf(whole, n, "%s\n%s", common, source);
  ut_status st = ut_runtime_build(rt, name, whole, options, out);
  free(whole);
  return st;
}

ut_status ut_runtime_kernel(ut_runtime *rt, const char *source_name, const char *kernel_name, cl_kernel *out) {
  cl_program prog;
  ut_status st = ut_runtime_program(rt, source_name, "-cl-std=CL1.2", &prog);
  if (st != UT_OK) return st;
  cl_int err;
  *out = clCreateKernel(prog, kernel_name, &err);
  if (err != CL_SUCCESS) return ut_fail_cl(err, "clCreateKernel", "for kernel '%s' of cl/%s.cl", kernel_name, source_name);
  return UT_OK;
}

/* ---- memory ------------------------------------------------------------------------------ */

ut_status ut_runtime_alloc(ut_runtime *rt, size_t bytes, const char *what, cl_mem *out) {
  if (bytes == 0) bytes = 4; /* a zero-sized buffer is invalid in OpenCL; empty tensors still need a handle */
  if (bytes > rt->info.max_alloc_bytes)
    return ut_fail(CL_INVALID_BUFFER_SIZE, "%s needs %.1f MiB in one buffer, but %s allows at most %.1f MiB per buffer (%.1f MiB in all); try a smaller batch",
                   what, bytes / 1048576.0, rt->info.name, rt->info.max_alloc_bytes / 1048576.0, rt->info.global_mem_bytes / 1048576.0);
  cl_int err;
  *out = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (err != CL_SUCCESS)
    return ut_fail_cl(err, "clCreateBuffer", "allocating %.1f MiB for %s on %s (%.1f MiB device memory); try a smaller batch",
                      bytes / 1048576.0, what, rt->info.name, rt->info.global_mem_bytes / 1048576.0);
  return UT_OK;
}

ut_status ut_runtime_write(ut_runtime *rt, cl_mem buf, size_t offset_bytes, size_t bytes, const void *src) {
  if (bytes == 0) return UT_OK;
  cl_int err = clEnqueueWriteBuffer(rt->queue, buf, CL_TRUE, offset_bytes, bytes, src, 0, NULL, NULL);
  return err == CL_SUCCESS ? UT_OK : ut_fail_cl(err, "clEnqueueWriteBuffer", "(%zu bytes at %zu)", bytes, offset_bytes);
}

ut_status ut_runtime_read(ut_runtime *rt, cl_mem buf, size_t offset_bytes, size_t bytes, void *dst) {
  if (bytes == 0) return UT_OK;
  cl_int err = clEnqueueReadBuffer(rt->queue, buf, CL_TRUE, offset_bytes, bytes, dst, 0, NULL, NULL);
  return err == CL_SUCCESS ? UT_OK : ut_fail_cl(err, "clEnqueueReadBuffer", "(%zu bytes at %zu)", bytes, offset_bytes);
}
