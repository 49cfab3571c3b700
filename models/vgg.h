/* VGG16's convolutional part (torchvision's `vgg16().features`), as the perceptual loss of LORD
 * and OverLORD uses it: five feature taps (relu1_2, relu2_2, relu3_2, relu4_3, pool5) of an
 * image, compared by L1 between a generated and a real image, plus the pixel L1 itself.
 *
 * The weights are store tensors "<prefix>features.<i>.weight" / ".bias", named as torchvision
 * names them, so a safetensors export of torchvision's weights loads with ut_store_import.
 * They are never trained: a model leaves them out of ut_backward and marks the prefix external
 * (ut_store_set_external), so checkpoints do not carry 59 MB of VGG. Without a weight file they
 * are initialised as nn.Conv2d would be, which keeps the cost and the shapes of the real loss
 * ("vgg-random", for timing parity) but carries no perceptual meaning.
 */
#ifndef UNTANGLE_MODELS_VGG_H
#define UNTANGLE_MODELS_VGG_H

#include "untangle.h"

#define VGG_TAPS 5

/* The taps of x [B, C, H, W] with C = 1 (repeated to RGB) or 3; H and W at least 32 so pool5
 * has a pixel. No input normalisation, as in lord-pytorch. */
ut_status vgg16_taps(ut_graph *g, ut_tensor *x, const char *prefix, ut_tensor *taps[VGG_TAPS]);

/* LORD's VGGDistance: mean|a - b| + sum over taps of mean|phi(a) - phi(b)|, averaged over the
 * batch as lord-pytorch does (each L1 term is a mean over all its elements). NULL on error. */
ut_tensor *vgg16_distance(ut_graph *g, ut_tensor *a, ut_tensor *b, const char *prefix);

#endif
