/* The runtime object as the rest of the engine sees it: the OpenCL handles, the program cache
 * and the embedded kernel sources. */
#ifndef UT_RUNTIME_INTERNAL_H
#define UT_RUNTIME_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "untangle.h"

typedef struct ut_program_entry ut_program_entry;

struct ut_runtime {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  ut_device_info info;
  int profiling;
  int host_gemm; /* GEMMs (and convolutions) run on the host with OpenBLAS (host_gemm.c) */
  int conv_chunk_images; /* > 0: at most this many images per convolution chunk (tests) */
  int conv_direct; /* host convolutions with few channels use direct loops (conv_direct.c) in vectors of this many floats
                   * (8 or 16; 0: off). Tests turn it off or pick the width */
  int conv_winograd; /* wide 3x3 host convolutions run as Winograd F(2x2, 3x3) (conv_winograd.c); tests turn it off */
  int conv_flip;   /* host input gradients run as flipped-kernel convolutions where they can (conv_internal.h);
                      tests turn it off */
  int subbuffer_refusal_said; /* the device refused a sub-buffer for a GEMM operand, and stderr was told */
  char *cache_dir; /* NULL: no disk cache */
  ut_runtime_stats stats;
  ut_program_entry *programs; /* built programs of this runtime, by source name and options */
};

/* An OpenCL C source embedded at build time from cl/<name>.cl. */
typedef struct {
  const char *name;
  const char *source;
} ut_kernel_source;
extern const ut_kernel_source ut_kernel_sources[];
extern const int ut_kernel_source_count;

/* The built program of embedded source `name` (a file of cl/ without ".cl"), built once per
 * runtime and options, through the on-disk cache. The runtime owns it. */
ut_status ut_runtime_program(ut_runtime *rt, const char *name, const char *options, cl_program *out);

/* Builds arbitrary source (through the disk cache); the runtime owns the program. On a build
 * failure the message holds the compiler's log. `label` names the source in messages. */
ut_status ut_runtime_build(ut_runtime *rt, const char *label, const char *source, const char *options,
                           cl_program *out);

/* A new kernel object (the caller releases it): each launch of a plan owns its kernel so its
 * arguments can be set once at compile time. */
ut_status ut_runtime_kernel(ut_runtime *rt, const char *source_name, const char *kernel_name, cl_kernel *out);

/* Device memory: size in bytes; a failure names `what` and the device's memory. */
ut_status ut_runtime_alloc(ut_runtime *rt, size_t bytes, const char *what, cl_mem *out);
ut_status ut_runtime_write(ut_runtime *rt, cl_mem buf, size_t offset_bytes, size_t bytes, const void *src);
ut_status ut_runtime_read(ut_runtime *rt, cl_mem buf, size_t offset_bytes, size_t bytes, void *dst);

/* The on-disk program cache (program_cache.c). `key` identifies platform, device, driver,
 * source and options; a lookup that finds a corrupt entry, or a PoCL binary that is not whole,
 * removes it and reports a miss; such a binary is not stored either. */
int ut_program_cache_load(const char *dir, const char *key, unsigned char **binary, size_t *size, int *rejected);
void ut_program_cache_store(const char *dir, const char *key, const unsigned char *binary, size_t size);

/* 0 when binary is PoCL's and one of the files it carries is empty or cut short: PoCL aborts
 * loading such a binary (pocl_binary_check.c says how one comes about). 1 otherwise, also for
 * any other driver's binary. */
int ut_pocl_binary_whole(const unsigned char *binary, size_t size);

/* Device enumeration (devices.c): calls visit for every device of every platform, in the order
 * of ut_devices_list, stopping at the first failure. */
ut_status ut_devices_each(ut_status (*visit)(cl_platform_id, cl_device_id, int index, void *ctx), void *ctx);
void ut_device_info_fill(cl_platform_id p, cl_device_id d, int index, ut_device_info *info);

/* 64-bit FNV-1a, used for cache keys and initialisation streams. */
uint64_t ut_hash64(const void *data, size_t n, uint64_t seed);

#endif
