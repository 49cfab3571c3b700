/* Enumerates every device of every OpenCL platform into plain structs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "runtime_internal.h"

const char *ut_device_type_name(ut_device_type t) {
  switch (t) {
  case UT_DEVICE_CPU: return "cpu";
  case UT_DEVICE_GPU: return "gpu";
  case UT_DEVICE_ACCELERATOR: return "accelerator";
  default: return "other";
  }
}

/* Drivers refuse a buffer shorter than the whole string (PoCL's version string is long), so
 * fetch it whole and keep what fits. */
static void device_string(cl_device_id d, cl_device_info what, char *dst, size_t size) {
  dst[0] = '\0';
  size_t n = 0;
  if (clGetDeviceInfo(d, what, 0, NULL, &n) != CL_SUCCESS || n == 0) return;
  char *whole = malloc(n + 1);
  if (!whole) return;
  if (clGetDeviceInfo(d, what, n, whole, NULL) == CL_SUCCESS) {
    whole[n] = '\0';
    snprintf(dst, size, "%s", whole);
  }
  free(whole);
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *dst, size_t size) {
  dst[0] = '\0';
  size_t n = 0;
  if (clGetPlatformInfo(p, what, 0, NULL, &n) != CL_SUCCESS || n == 0) return;
  char *whole = malloc(n + 1);
  if (!whole) return;
  if (clGetPlatformInfo(p, what, n, whole, NULL) == CL_SUCCESS) {
    whole[n] = '\0';
    snprintf(dst, size, "%s", whole);
  }
  free(whole);
}

static int has_extension(cl_device_id d, const char *ext) {
  size_t n = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0) return 0;
  char *s = malloc(n + 1);
  if (!s) return 0;
  int found = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, s, NULL) == CL_SUCCESS) {
    s[n] = '\0';
    size_t len = strlen(ext);
    for (const char *at = strstr(s, ext); at; at = strstr(at + 1, ext))
      if ((at == s || at[-1] == ' ') && (at[len] == ' ' || at[len] == '\0')) found = 1;
  }
  free(s);
  return found;
}

void ut_device_info_fill(cl_platform_id p, cl_device_id d, int index, ut_device_info *info) {
  memset(info, 0, sizeof *info);
  info->index = index;
  platform_string(p, CL_PLATFORM_NAME, info->platform, sizeof info->platform);
  platform_string(p, CL_PLATFORM_VERSION, info->platform_version, sizeof info->platform_version);
  device_string(d, CL_DEVICE_NAME, info->name, sizeof info->name);
  device_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
  device_string(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
  device_string(d, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
  device_string(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version, sizeof info->opencl_c_version);
  cl_device_type type = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  info->type = (type & CL_DEVICE_TYPE_GPU)           ? UT_DEVICE_GPU
               : (type & CL_DEVICE_TYPE_CPU)         ? UT_DEVICE_CPU
               : (type & CL_DEVICE_TYPE_ACCELERATOR) ? UT_DEVICE_ACCELERATOR
                                                     : UT_DEVICE_OTHER;
  cl_uint u = 0;
  cl_ulong ul = 0;
  size_t sz = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, NULL) == CL_SUCCESS) info->compute_units = u;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u, &u, NULL) == CL_SUCCESS) info->clock_mhz = u;
  if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS) info->global_mem_bytes = ul;
  if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS) info->local_mem_bytes = ul;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS) info->max_alloc_bytes = ul;
  if (clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof u, &u, NULL) == CL_SUCCESS) info->base_align_bytes = u / 8;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS) info->max_work_group_size = sz;
  info->fp16 = has_extension(d, "cl_khr_fp16");
  info->fp64 = has_extension(d, "cl_khr_fp64");
}

ut_status ut_devices_each(ut_status (*visit)(cl_platform_id, cl_device_id, int index, void *ctx), void *ctx) {
  cl_uint n_platforms = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &n_platforms);
  /* The ICD loader reports "no platform" as an error; for us it is an empty list. */
  if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR, from cl_ext.h */ || n_platforms == 0) return UT_OK;
  if (err != CL_SUCCESS) return ut_fail_cl(err, "clGetPlatformIDs", NULL);
  cl_platform_id *platforms = calloc(n_platforms, sizeof *platforms);
  if (!platforms) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory listing platforms");
  err = clGetPlatformIDs(n_platforms, platforms, NULL);
  if (err != CL_SUCCESS) {
    free(platforms);
    return ut_fail_cl(err, "clGetPlatformIDs", NULL);
  }
  int index = 0;
  ut_status st = UT_OK;
  for (cl_uint p = 0; p < n_platforms && st == UT_OK; p++) {
    cl_uint n_devices = 0;
    err = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n_devices);
    if (err == CL_DEVICE_NOT_FOUND || n_devices == 0) continue;
    if (err != CL_SUCCESS) continue; /* a broken platform must not hide the others */
    cl_device_id *devices = calloc(n_devices, sizeof *devices);
    if (!devices) {
      st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory listing devices");
      break;
    }
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, n_devices, devices, NULL) == CL_SUCCESS)
      for (cl_uint d = 0; d < n_devices && st == UT_OK; d++) st = visit(platforms[p], devices[d], index++, ctx);
    free(devices);
  }
  free(platforms);
  return st;
}

typedef struct {
  ut_device_info *list;
  int n, cap;
} device_list;

static ut_status append_device(cl_platform_id p, cl_device_id d, int index, void *ctx) {
  device_list *l = ctx;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 8;
    ut_device_info *grown = realloc(l->list, (size_t)cap * sizeof *grown);
    if (!grown) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory listing devices");
    l->list = grown;
    l->cap = cap;
  }
  ut_device_info_fill(p, d, index, &l->list[l->n++]);
  return UT_OK;
}

ut_status ut_devices_list(ut_device_info **out, int *count) {
  device_list l = { 0 };
  ut_status st = ut_devices_each(append_device, &l);
  if (st != UT_OK) {
    free(l.list);
    return st;
  }
  *out = l.list;
  *count = l.n;
  return UT_OK;
}
