/* VGG16 feature taps and LORD's perceptual distance (vgg.h). */
#include "vgg.h"

#include <stdio.h>

/* torchvision's vgg16().features: a conv index with its channels, or a pool (out = 0). */
typedef struct {
  int index, in, out;
} vgg_layer;

static const vgg_layer layers[] = {
  { 0, 3, 64 },     { 2, 64, 64 },    { 4, 0, 0 },      { 5, 64, 128 },   { 7, 128, 128 },  { 9, 0, 0 },
  { 10, 128, 256 }, { 12, 256, 256 }, { 14, 256, 256 }, { 16, 0, 0 },     { 17, 256, 512 }, { 19, 512, 512 },
  { 21, 512, 512 }, { 23, 0, 0 },     { 24, 512, 512 }, { 26, 512, 512 }, { 28, 512, 512 }, { 30, 0, 0 },
};

/* The tapped layers. lord-pytorch appends the outputs of conv 2, 7, 12 and 21, but the in-place
 * ReLU that follows overwrites each of them, so the loss really sees the ReLU outputs; 30 is
 * pool5. */
static const int tap_index[VGG_TAPS] = { 2, 7, 12, 21, 30 };

ut_status vgg16_taps(ut_graph *g, ut_tensor *x, const char *prefix, ut_tensor *taps[VGG_TAPS]) {
  if (!x) return ut_graph_status(g);
  ut_shape s = ut_tensor_shape(x);
  if (s.rank != 4 || (s.d[1] != 1 && s.d[1] != 3) || s.d[2] < 32 || s.d[3] < 32)
    return ut_fail(UT_ERR_SHAPE, "vgg16: images must be [B, 1 or 3, H >= 32, W >= 32], got %s",
                   ut_shape_str(s, (char[64]){ 0 }, 64));
  ut_tensor *h = s.d[1] == 1 ? ut_concat(g, ut_concat(g, x, x), x) : x;
  int tap = 0;
  for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
    const vgg_layer *l = &layers[i];
    if (l->out == 0) {
      h = ut_max_pool2d(g, h, 2, 2);
    } else {
      char wname[160], bname[160];
      snprintf(wname, sizeof wname, "%sfeatures.%d.weight", prefix, l->index);
      snprintf(bname, sizeof bname, "%sfeatures.%d.bias", prefix, l->index);
      ut_tensor *w = ut_param(g, wname, UT_SHAPE(l->out, l->in, 3, 3), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 });
      ut_tensor *bias = ut_param(g, bname, UT_SHAPE(l->out), (ut_init){ UT_INIT_FAN_IN_UNIFORM, (float)(l->in * 9), 0 });
      h = ut_relu(g, ut_conv2d(g, h, w, bias, UT_CONV(1, 1)));
    }
    if (tap < VGG_TAPS && l->index == tap_index[tap]) taps[tap++] = h;
  }
  return ut_graph_status(g);
}

ut_tensor *vgg16_distance(ut_graph *g, ut_tensor *a, ut_tensor *b, const char *prefix) {
  ut_tensor *ta[VGG_TAPS], *tb[VGG_TAPS];
  if (vgg16_taps(g, a, prefix, ta) != UT_OK || vgg16_taps(g, b, prefix, tb) != UT_OK) return NULL;
  ut_tensor *d = ut_l1_loss(g, a, b);
  for (int i = 0; i < VGG_TAPS; i++) d = ut_add(g, d, ut_l1_loss(g, ta[i], tb[i]));
  return d;
}
