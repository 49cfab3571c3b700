/* Seeded host-side randomness for the models and their evaluations: splits, shuffles, priors.
 * Everything follows from a seed, the same on every machine. (Device-side noise is the
 * engine's Philox streams; this is for choices the host makes.)
 *
 * kit_hash64 is splitmix64's finaliser: hashing (seed, index) pairs gives independent random
 * values without generator state. kit_next64 is splitmix64 as a generator: each call returns
 * kit_hash64 of the state and advances it. kit_permutation writes a seeded random permutation
 * of 0 .. n-1 into perm[n].
 */
#ifndef UNTANGLE_MODELS_KIT_RANDOM_H
#define UNTANGLE_MODELS_KIT_RANDOM_H

#include <stdint.h>

#include "untangle.h"

uint64_t kit_hash64(uint64_t z);
uint64_t kit_next64(uint64_t *state);
void kit_permutation(uint64_t seed, int64_t n, int64_t *perm);
/* Marks floor(ratio * n) of n items in held[n] (1 held out, 0 not), drawn by a partial
 * Fisher-Yates shuffle keyed by seed: a model's held-out share. */
ut_status kit_draw_held_out(int64_t n, double ratio, uint64_t seed, uint8_t *held);

#endif
