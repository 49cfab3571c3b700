/* Shared inside the data layer (engine/data/): small helpers and the entry points the fuzz
 * targets call on memory buffers instead of files. */
#ifndef UT_DATA_INTERNAL_H
#define UT_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "untangle_data.h"

/* splitmix64: one 64-bit state, good statistical quality, the same on every machine. Splits
 * and loader permutations come from it, so a seed gives the same order everywhere. */
static inline uint64_t ut_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias (Lemire's multiply-and-reject). */
static inline uint32_t ut_splitmix_below(uint64_t *state, uint32_t n) {
  uint64_t m = (uint64_t)(uint32_t)(ut_splitmix64(state) >> 32) * n;
  if ((uint32_t)m < n) {
    uint32_t floor = (uint32_t)(-n) % n;
    while ((uint32_t)m < floor) m = (uint64_t)(uint32_t)(ut_splitmix64(state) >> 32) * n;
  }
  return (uint32_t)(m >> 32);
}

/* Validates a data set image held in memory (`buf` stays the caller's and must outlive the
 * result); `name` stands for the file in messages. What ut_dataset_open does after mmap. */
ut_dataset *ut_dataset_from_memory(const void *buf, size_t len, const char *name);

/* Reads a whole file into a malloc'd buffer (with a spare NUL byte after it); files larger
 * than `max_bytes` fail with UT_ERR_FORMAT. Errors name the file. */
ut_status ut_data_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len);

/* Creates a temporary file "<path>.tmp-XXXXXX" (mode 0644); *tmp is malloc'd. -1 on failure
 * with the error set. */
int ut_data_temp_file(const char *path, char **tmp);

/* fsyncs the folder holding `path` so a rename survives a crash (best effort). */
void ut_data_sync_parent(const char *path);

/* A parsed IDX file: dims[0..ndims-1] big-endian sizes, unsigned-byte data. */
typedef struct {
  int ndims;
  uint32_t dims[4];
  const uint8_t *data; /* points into the parsed buffer */
  size_t n_bytes;
} ut_idx_view;

/* Parses an (uncompressed) IDX buffer of unsigned bytes; `name` is used in messages. */
ut_status ut_idx_parse(const uint8_t *buf, size_t len, const char *name, ut_idx_view *out);

/* Resamples a square side x side HWC image to size x size (area average when shrinking,
 * bilinear when enlarging). */
void ut_resize_square(const uint8_t *src, int src_stride, int side, int channels, int size, uint8_t *dst);

#endif
