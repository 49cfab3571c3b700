/* Shared by the UNIT files: the networks (unit_net.c) that the model (unit.c) composes. */
#ifndef UNTANGLE_MODELS_UNIT_INTERNAL_H
#define UNTANGLE_MODELS_UNIT_INTERNAL_H

#include "unit.h"

#define UNIT_GEN_PREFIX "unit.gen."
#define UNIT_DIS_PREFIX "unit.dis."

/* Domain d's images [B, C, S, S] in [-1, 1] -> the shared code [B, 4 ch, S/4, S/4]: the domain's
 * encoder, then the shared blocks. With `noise` (a random stream name) the code gets the
 * training noise; NULL leaves it out (inference). */
ut_tensor *unit_encode(ut_graph *g, const unit_cfg *c, ut_tensor *x, int d, const char *noise);
/* The shared code -> domain d's images in [-1, 1]: the shared decoder blocks (unit_decode_shared,
 * computed once when a code is decoded into both domains), then the domain's decoder. */
ut_tensor *unit_decode_shared(ut_graph *g, const unit_cfg *c, ut_tensor *code);
ut_tensor *unit_decode_domain(ut_graph *g, const unit_cfg *c, ut_tensor *shared, int d);
/* Domain d's discriminator: its two front layers, then the shared ones -> a logit map. */
ut_tensor *unit_discriminate(ut_graph *g, const unit_cfg *c, ut_tensor *x, int d);

#endif
