/* The peak suite: measured FP32 FMA throughput and device-memory bandwidth from our own
 * micro-kernels (cl/bench_peak.cl), next to the FMA figure the device info implies. The engine
 * has no call to run arbitrary kernels, so this suite opens its own context and queue (with
 * profiling) on the same device; the figures are kernel times from OpenCL profiling events.
 *
 * The measured peaks become the reference of every later figure's pct_peak on this device:
 * the fastest run of the better FMA kernel for GFLOP/s, of the better of copy and triad for
 * GB/s. The fastest run rather than the median, because a peak is what the device can do,
 * and on a shared machine the median of a short kernel mostly measures the neighbours. */
#include <CL/cl.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

extern const char bench_peak_source[]; /* cl/bench_peak.cl, embedded at build time */

#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000 /* cl_nv_device_attribute_query */
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001

enum { N_FMA = 2, N_FIGURES = 4 };
static const char *const fma_kernel[N_FMA] = { "fma_float", "fma_float16" };
static const double fma_flops_per_iter[N_FMA] = { 128, 1024 }; /* per work-item, see the kernel file */

int bench_peak_count(const bench_ctx *c) {
  (void)c;
  return N_FIGURES;
}

typedef struct {
  cl_device_id device;
  cl_context ctx;
  cl_command_queue q;
  cl_program prog;
} peak_cl;

static ut_status find_device(int index, cl_device_id *out) {
  cl_uint np = 0;
  cl_platform_id plats[16];
  if (clGetPlatformIDs(16, plats, &np) != CL_SUCCESS) return ut_fail(UT_ERR_NO_DEVICE, "clGetPlatformIDs failed");
  /* The same flat order as ut_devices_list: platforms in order, every device of each. */
  int seen = 0;
  for (cl_uint p = 0; p < np && p < 16; p++) {
    cl_uint nd = 0;
    cl_device_id devs[64];
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 64, devs, &nd) != CL_SUCCESS) continue;
    if (index < seen + (int)nd) {
      *out = devs[index - seen];
      return UT_OK;
    }
    seen += (int)nd;
  }
  return ut_fail(UT_ERR_NO_DEVICE, "device %d is not in the OpenCL platform list", index);
}

static ut_status open_cl(int index, peak_cl *k) {
  cl_int err = CL_SUCCESS;
  ut_status st = find_device(index, &k->device);
  if (st != UT_OK) return st;
  k->ctx = clCreateContext(NULL, 1, &k->device, NULL, NULL, &err);
  if (err == CL_SUCCESS) k->q = clCreateCommandQueue(k->ctx, k->device, CL_QUEUE_PROFILING_ENABLE, &err);
  const char *src = bench_peak_source;
  if (err == CL_SUCCESS) k->prog = clCreateProgramWithSource(k->ctx, 1, &src, NULL, &err);
  if (err != CL_SUCCESS) return ut_fail(err, "peak suite: cannot set up OpenCL (%s)", ut_status_name(err));
  if ((err = clBuildProgram(k->prog, 1, &k->device, "-cl-std=CL1.2", NULL, NULL)) != CL_SUCCESS) {
    char log[2048] = "";
    clGetProgramBuildInfo(k->prog, k->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    return ut_fail(UT_ERR_BUILD, "peak suite: cl/bench_peak.cl does not build: %s", log);
  }
  return UT_OK;
}

static void close_cl(peak_cl *k) {
  if (k->prog) clReleaseProgram(k->prog);
  if (k->q) clReleaseCommandQueue(k->q);
  if (k->ctx) clReleaseContext(k->ctx);
}

/* One launch of `kern` over `global` work-items; its device time in ms, or < 0 on failure. */
static double launch(peak_cl *k, cl_kernel kern, size_t global) {
  cl_event ev;
  cl_ulong t0 = 0, t1 = 0;
  if (clEnqueueNDRangeKernel(k->q, kern, 1, NULL, &global, NULL, 0, NULL, &ev) != CL_SUCCESS) return -1;
  cl_int err = clWaitForEvents(1, &ev);
  if (err == CL_SUCCESS) err = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
  if (err == CL_SUCCESS) err = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
  clReleaseEvent(ev);
  return err == CL_SUCCESS ? (double)(t1 - t0) * 1e-6 : -1;
}

/* Warm-up launches, then the timed ones. */
static bench_ms time_kernel(bench_ctx *c, peak_cl *k, cl_kernel kern, size_t global) {
  bench_ms fail = { 0 };
  double *ms = calloc((size_t)c->repeats, sizeof *ms);
  if (!ms) return fail;
  for (int i = 0; i < c->warmup; i++)
    if (launch(k, kern, global) < 0) goto done;
  for (int r = 0; r < c->repeats; r++)
    if ((ms[r] = launch(k, kern, global)) < 0) goto done;
  fail = bench_summarize(ms, c->repeats);
done:
  free(ms);
  if (!fail.ok) ut_fail(UT_ERR_STATE, "a peak kernel failed to run");
  return fail;
}

/* FP32 lanes per compute unit, guessed from the vendor: an estimate, since OpenCL reports
 * neither the SIMD width nor the number of FMA pipes. NVIDIA: 64 FP32 cores per SM on compute
 * capability 6.0, 7.x and 8.0 (P100, V100, T4, A100), 128 on the others since Maxwell (H100,
 * consumer parts). AMD: 64 ALUs per CU (GCN, CDNA, RDNA; RDNA3's dual issue not counted).
 * Intel GPUs report EUs: 8 lanes each. Apple: 128 per core. CPUs report hardware threads:
 * the native float vector width times two FMA units per core (SMT threads share them, so
 * this overestimates a CPU with SMT twofold). 0: unknown. */
static int guess_lanes(const peak_cl *k, const ut_device_info *d) {
  if (d->type == UT_DEVICE_CPU) {
    cl_uint w = 0;
    clGetDeviceInfo(k->device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof w, &w, NULL);
    return w ? (int)w * 2 : 0;
  }
  if (strstr(d->vendor, "NVIDIA")) {
    cl_uint major = 0, minor = 0;
    if (clGetDeviceInfo(k->device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof major, &major, NULL) == CL_SUCCESS &&
        clGetDeviceInfo(k->device, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, sizeof minor, &minor, NULL) == CL_SUCCESS &&
        ((major == 6 && minor == 0) || major == 7 || (major == 8 && minor == 0)))
      return 64;
    return 128;
  }
  if (strstr(d->vendor, "Advanced Micro Devices") || strstr(d->vendor, "AMD")) return 64;
  if (strstr(d->vendor, "Intel")) return 8;
  if (strstr(d->vendor, "Apple")) return 128;
  return 0;
}

static void fma_figures(bench_ctx *c, peak_cl *k, cl_mem out, size_t global) {
  double target_ms = c->cfg->size == BENCH_SIZE_FULL ? 20 : c->cfg->size == BENCH_SIZE_QUICK ? 5 : 2;
  int lanes = guess_lanes(k, c->dev);
  double estimate = (double)c->dev->compute_units * c->dev->clock_mhz * 1e-3 * lanes * 2;
  for (int v = 0; v < N_FMA; v++) {
    char what[64];
    snprintf(what, sizeof what, "peak %s", fma_kernel[v]);
    bench_step(c, what);
    cl_int err;
    cl_kernel kern = clCreateKernel(k->prog, fma_kernel[v], &err);
    float a = 0.999f, b = 0.001f;
    cl_int iters = 16;
    bench_ms t = { 0 };
    if (err == CL_SUCCESS) {
      clSetKernelArg(kern, 0, sizeof out, &out);
      clSetKernelArg(kern, 1, sizeof a, &a);
      clSetKernelArg(kern, 2, sizeof b, &b);
      clSetKernelArg(kern, 3, sizeof iters, &iters);
      /* Grow the loop until one launch lasts about target_ms, long enough to hide the launch
       * cost. The first launch is left out: PoCL compiles the kernel for its work-group size
       * then. */
      double probe = launch(k, kern, global);
      for (int round = 0; probe > 0 && round < 4; round++) {
        if ((probe = launch(k, kern, global)) <= 0 || probe >= target_ms / 2) break;
        double scale = target_ms / probe;
        iters = (cl_int)(iters * (scale > 1000 ? 1000 : scale));
        clSetKernelArg(kern, 3, sizeof iters, &iters);
      }
      if (probe > 0) t = time_kernel(c, k, kern, global);
      clReleaseKernel(kern);
    }
    if (!t.ok) {
      bench_failed(c, what);
      continue;
    }
    double gflops = fma_flops_per_iter[v] * (double)iters * (double)global / (t.median * 1e6);
    char shape[64];
    snprintf(shape, sizeof shape, "%zu items x %d iters", global, (int)iters);
    json_t *extra = json_pack("{s:i}", "lanes_guess", lanes);
    json_object_set_new(extra, "estimate_gflops", lanes ? json_real(estimate) : json_null());
    json_object_set_new(extra, "pct_estimate", lanes ? json_real(100 * gflops / estimate) : json_null());
    bench_record r = { .suite = "peak", .name = v ? "fma.float16" : "fma.float", .shape = shape, .ms = t,
                       .repeats = c->repeats, .gflops = gflops, .gbps = -1, .extra = extra };
    /* Emitted before it becomes the reference, so its own pct_peak stays null. */
    double prev = c->peak_gflops, best = gflops * t.median / t.min;
    c->peak_gflops = 0;
    bench_emit(c, &r);
    c->peak_gflops = best > prev ? best : prev;
  }
}

static void bandwidth_figures(bench_ctx *c, peak_cl *k) {
  size_t bytes = c->cfg->size == BENCH_SIZE_FULL ? 256u << 20 : c->cfg->size == BENCH_SIZE_QUICK ? 64u << 20 : 4u << 20;
  while (bytes > c->dev->max_alloc_bytes || 3 * bytes > c->dev->global_mem_bytes / 2) bytes /= 2;
  cl_int err = CL_SUCCESS;
  cl_mem buf[3] = { 0 };
  for (int i = 0; i < 3 && err == CL_SUCCESS; i++) buf[i] = clCreateBuffer(k->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
  float zero = 0;
  for (int i = 0; i < 3 && err == CL_SUCCESS; i++) err = clEnqueueFillBuffer(k->q, buf[i], &zero, sizeof zero, 0, bytes, 0, NULL, NULL);
  if (err == CL_SUCCESS) err = clFinish(k->q);
  double best = 0;
  for (int v = 0; v < 2; v++) {
    const char *name = v ? "triad" : "copy";
    char what[64];
    snprintf(what, sizeof what, "peak %s", name);
    bench_step(c, what);
    bench_ms t = { 0 };
    cl_kernel kern = err == CL_SUCCESS ? clCreateKernel(k->prog, v ? "triad_float4" : "copy_float4", &err) : NULL;
    if (err == CL_SUCCESS) {
      float s = 0.5f;
      for (int i = 0; i < 2 + v; i++) clSetKernelArg(kern, (cl_uint)i, sizeof buf[i], &buf[i]);
      if (v) clSetKernelArg(kern, 3, sizeof s, &s);
      t = time_kernel(c, k, kern, bytes / 16);
      clReleaseKernel(kern);
    }
    if (!t.ok) {
      if (err != CL_SUCCESS) ut_fail(err, "peak suite: %s over 3 buffers of %zu MiB: %s", name, bytes >> 20, ut_status_name(err));
      bench_failed(c, what);
      continue;
    }
    double moved = (double)bytes * (2 + v), gbps = moved / (t.median * 1e6);
    char shape[64];
    snprintf(shape, sizeof shape, "%zu MiB x %d", bytes >> 20, 2 + v);
    bench_record r = { .suite = "peak", .name = name, .shape = shape, .ms = t, .repeats = c->repeats, .gflops = -1,
                       .gbps = gbps, .extra = json_pack("{s:I}", "bytes_moved", (json_int_t)moved) };
    bench_emit(c, &r);
    if (gbps * t.median / t.min > best) best = gbps * t.median / t.min;
  }
  c->peak_gbps = best;
  for (int i = 0; i < 3; i++)
    if (buf[i]) clReleaseMemObject(buf[i]);
}

ut_status bench_peak_run(bench_ctx *c) {
  peak_cl k = { 0 };
  /* Enough work-items to fill every lane several times over. */
  size_t global = (size_t)(c->dev->compute_units ? c->dev->compute_units : 1) *
                  (c->dev->type == UT_DEVICE_GPU ? 2048 : 256);
  cl_int err = CL_SUCCESS;
  cl_mem out = NULL;
  if (open_cl(c->dev->index, &k) == UT_OK) out = clCreateBuffer(k.ctx, CL_MEM_WRITE_ONLY, global * sizeof(float), NULL, &err);
  if (!out) {
    if (err != CL_SUCCESS) ut_fail(err, "peak suite: clCreateBuffer: %s", ut_status_name(err));
    for (int i = 0; i < N_FIGURES; i++) {
      bench_step(c, "peak");
      bench_failed(c, "peak suite");
    }
    close_cl(&k);
    return UT_OK;
  }
  fma_figures(c, &k, out, global);
  clReleaseMemObject(out);
  bandwidth_figures(c, &k);
  close_cl(&k);
  return UT_OK;
}
