/* FNV-1a, 64 bits: cache keys and per-name random streams need a stable hash, not a strong one. */
#include "runtime_internal.h"

uint64_t ut_hash64(const void *data, size_t n, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  /* Final avalanche so that nearby seeds and short names give unrelated keys. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}
