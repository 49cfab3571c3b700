/* The colour feature of CMI-VAE's coloured data (the paper's Color MNIST, issue 15): how a grey
 * image is painted with a hue, how the hue of a colour image is measured, and the same measure
 * as a differentiable graph for the L_f2 loss.
 *
 * Hue here is the angle of a pixel's chroma vector in the opponent-colour plane,
 *   a = r - (g + b) / 2,   b = sqrt(3) / 2 (g - b),   hue = atan2(b, a),
 * which every grey (r = g = b) maps to (0, 0). The painting colour of hue h is
 *   c(h) = 0.5 (1 + cos(h - 120 k)) for k = 0, 1, 2 (red, green, blue),
 * whose chroma is exactly 0.75 (cos h, sin h), so a pixel of grey level v painted v c(h) has
 * hue h whatever v is, and the measure below returns h for a painted image up to the rounding
 * of its bytes. The wheel is a smooth sinusoid (a pure red is (1, .25, .25)), not HSV's
 * hexagon, whose hue would not be what the measure reads.
 */
#ifndef UNTANGLE_MODELS_CMIVAE_COLOUR_H
#define UNTANGLE_MODELS_CMIVAE_COLOUR_H

#include "untangle.h"

/* c(hue) into rgb[3], each in [0, 1]. */
void cmivae_hue_colour(double hue_deg, double rgb[3]);

/* Paints `pixels` grey bytes with c(hue): rgb (3 bytes per pixel, interleaved) gets
 * round(grey c(hue)). Black stays black, so the foreground of a dark-background set takes the
 * colour. */
void cmivae_paint(const uint8_t *grey, int64_t pixels, double hue_deg, uint8_t *rgb);

/* The hue in degrees [0, 360) of an image (float [3, h, w], any offset: the chroma ignores it)
 * from its mean chroma vector, which weights each pixel by how coloured it is (black and grey
 * background pixels weigh nothing). NAN for an image without chroma. */
double cmivae_image_hue(const float *chw, int64_t pixels);

/* The grey level each pixel of an image (float [3, pixels] in [0, 1]) was painted from: every
 * colour c(h) has the same length, sqrt(1.125), so |rgb| / sqrt(1.125) undoes cmivae_paint
 * whatever the hue (clipped to 1 for colours no painting gives). The judge of 'untangle eval'
 * reads these, so that it sees the garment and nothing of its hue. */
void cmivae_grey(const float *chw, int64_t pixels, float *grey);

/* |a - b| on the circle, in [0, 180]. */
double cmivae_hue_distance(double a_deg, double b_deg);

/* The differentiable measure L_f2 compares: for x [B, 3, H, W] the mean chroma vector m [B, 2]
 * of each image scaled to about unit length, m / sqrt(|m|^2 + eps), eps = 1e-4 (chroma in the
 * units of x). Its angle is cmivae_image_hue's; an image without colour gives about (0, 0), as
 * far from every hue, so a generator that draws grey is penalised. */
ut_tensor *cmivae_soft_hue(ut_graph *g, ut_tensor *x);

#endif
