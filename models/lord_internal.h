/* Shared by the LORD files: the network builders (lord_net.c) the model (lord.c) composes. */
#ifndef UNTANGLE_MODELS_LORD_INTERNAL_H
#define UNTANGLE_MODELS_LORD_INTERNAL_H

#include "lord.h"

#define LORD_ADAIN_LAYERS 4 /* upsampling blocks, each with an AdaIN layer: size / 16 grows to size */
#define LORD_VGG_PREFIX "vgg."

/* content [B, content_dim] and class_code [B, class_dim] -> images [B, C, S, S] in (0, 1). */
ut_tensor *lord_generator(ut_graph *g, const lord_cfg *c, ut_tensor *content, ut_tensor *class_code);
/* images -> [B, code_dim]; `which` ("content" or "class") names the parameters. */
ut_tensor *lord_encoder(ut_graph *g, const lord_cfg *c, ut_tensor *images, const char *which, int code_dim);
/* Pixel L1, or LORD's VGG distance, as cfg->recon says. */
ut_tensor *lord_reconstruction_loss(ut_graph *g, const lord_cfg *c, ut_tensor *generated, ut_tensor *images);

#endif
