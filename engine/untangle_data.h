/* untangle data layer: image data sets on disk, JPEG in and out, sample grids, and the
 * built-in rendered data set. Host-side only; it needs no OpenCL device.
 */
#ifndef UNTANGLE_DATA_H
#define UNTANGLE_DATA_H

#include "untangle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * The built-in rendered data set: lit, shaded 3-D objects on a plain background. A class is an
 * object identity (shape, proportions, colours, texture pattern) drawn from Philox keyed by
 * (seed, class); a content is a pose (azimuth x elevation). Any class can be drawn in any pose,
 * so the ground truth of every class/content swap is known exactly.
 */
typedef struct {
  int classes;   /* object identities */
  int views;     /* poses per class; ut_synth_view_angles says how a view index maps to angles */
  int size;      /* image side in pixels (square RGB images) */
  uint64_t seed; /* selects the set of identities */
} ut_synth_cfg;

/* The azimuth and elevation (degrees) of view `view` of a data set with `views` views. */
void ut_synth_view_angles(int views, int view, float *azimuth_deg, float *elevation_deg);

/* Renders class `class_id` in view `view` into rgb (size * size * 3 bytes, rows top to bottom,
 * pixels RGB interleaved). The same arguments give the same bytes on every machine. */
ut_status ut_synth_render(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *rgb);

#ifdef __cplusplus
}
#endif
#endif
