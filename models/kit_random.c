/* Seeded host-side randomness (kit_random.h). */
#include "kit_random.h"

#include <stdlib.h>

#define SPLITMIX_GAMMA 0x9e3779b97f4a7c15ull

uint64_t kit_hash64(uint64_t z) {
  z += SPLITMIX_GAMMA;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t kit_next64(uint64_t *state) {
  uint64_t r = kit_hash64(*state);
  *state += SPLITMIX_GAMMA;
  return r;
}

void kit_permutation(uint64_t seed, int64_t n, int64_t *perm) {
  uint64_t key = kit_hash64(seed ^ 0x7065726dull); /* "perm" */
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  /* Fisher-Yates; the modulo bias is below 2^-40 for any n that fits in memory. */
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(kit_hash64(key + (uint64_t)i) % (uint64_t)(i + 1));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

ut_status kit_draw_held_out(int64_t n, double ratio, uint64_t seed, uint8_t *held) {
  int64_t take = (int64_t)(ratio * (double)n), *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  if (!order) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
  for (int64_t i = 0; i < n; i++) order[i] = i, held[i] = 0;
  for (int64_t i = 0; i < take; i++) {
    int64_t j = i + (int64_t)(kit_next64(&seed) % (uint64_t)(n - i)), tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
    held[order[i]] = 1;
  }
  free(order);
  return UT_OK;
}
