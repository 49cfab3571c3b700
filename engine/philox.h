/* Philox 4x32-10 on the host (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011). A counter-based generator: the output is a pure function of a 128-bit
 * counter and a 64-bit key, so any element of any run can be computed on its own, in any order,
 * on the host or on a device (cl/random.cl holds the same algorithm), with identical results.
 *
 * How untangle maps a stream (key, run) onto counters, here and in cl/random.cl:
 *   element i uses Philox block b = i / 4 and lane l = i % 4, where block b is
 *     philox4x32_10(ctr = { lo32(b), hi32(b), lo32(run), hi32(run) }, key = { lo32(key), hi32(key) })
 *   uniform:  u_i = ut_philox_u01(word[l]) -- an odd multiple of 2^-24, so 0 < u < 1 exactly,
 *             and the same float on every IEEE-754 machine;
 *   normal:   Box-Muller on the pair of lanes (2p, 2p + 1), p = l / 2, of the same block:
 *               r = sqrt(-2 ln u_{2p}),  z_{2p} = r cos(2 pi u_{2p+1}),  z_{2p+1} = r sin(2 pi u_{2p+1})
 *             so one block gives four independent N(0, 1) values. The host computes this in
 *             double and rounds once; a device's log/cospi/sinpi are not correctly rounded, so
 *             device normals agree to a few ulp (see cl/random.cl), uniforms bit for bit.
 */
#ifndef UT_PHILOX_H
#define UT_PHILOX_H

#include <stddef.h>
#include <stdint.h>

/* One Philox 4x32-10 block: out = the ten-round bijection of ctr under key. */
void ut_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The uniform float in (0, 1) of one 32-bit word: ((w >> 8) | 1) * 2^-24. The top 24 bits
 * with the lowest forced to one give odd multiples of 2^-24: exactly representable, never 0
 * or 1, and symmetric around 1/2 (the popular ((w >> 8) + 0.5f) * 2^-24 rounds its largest
 * value up to 1.0f because the sum needs 25 bits). */
static inline float ut_philox_u01(uint32_t w) { return (float)((w >> 8) | 1u) * 0x1p-24f; }

/* Elements [start, start + n) of the uniform (0, 1) stream (key, run) into dst. */
void ut_philox_fill_uniform(uint64_t key, uint64_t run, uint64_t start, float *dst, size_t n);

/* Elements [start, start + n) of the standard normal stream (key, run) into dst. */
void ut_philox_fill_normal(uint64_t key, uint64_t run, uint64_t start, float *dst, size_t n);

#endif
