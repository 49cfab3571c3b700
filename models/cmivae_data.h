/* Coloured data for CMI-VAE (the paper's Color MNIST): a grey data set's images painted with a
 * random hue each (cmivae_colour.h), the hue kept as the per-image attribute "hue". */
#ifndef UNTANGLE_MODELS_CMIVAE_DATA_H
#define UNTANGLE_MODELS_CMIVAE_DATA_H

#include "untangle_data.h"

#define CMIVAE_HUE_ATTRIBUTE "hue"

/* The hue of image i of a set coloured with `seed`: uniform in [0, 360) degrees, from a
 * splitmix64 hash of (seed, i), so each image's hue depends on nothing else. */
float cmivae_uniform_hue(uint64_t seed, int64_t i);

/* Writes to out_path a copy of the grey set `in` (classes, contents and domains kept) with each
 * image painted with cmivae_uniform_hue(seed, i) and that hue in degrees as attribute "hue".
 * A set that is not grey (one channel) or already has attributes is refused with
 * UT_ERR_INVALID_ARGUMENT naming the file, and nothing is written. */
ut_status cmivae_colorize(const ut_dataset *in, uint64_t seed, const char *out_path);

#endif
