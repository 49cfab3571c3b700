/* The tiny DMIT model that the DMIT tests train (test_dmit.c, test_dmit_confusion.c): three
 * domains of 16x16 images, encoders and discriminators 4 channels wide with one or two blocks
 * each, so a step takes milliseconds on PoCL and every code path of the small preset runs. */
#ifndef UT_TEST_DMIT_TINY_H
#define UT_TEST_DMIT_TINY_H

#include <stdio.h>

#include "dmit.h"

enum { DMIT_TINY_DOMAINS = 3, DMIT_TINY_BATCH = 2, DMIT_TINY_SIZE = 16 };

static inline dmit_cfg dmit_tiny_cfg(void) {
  dmit_cfg c = dmit_preset(DMIT_PRESET_SMALL, 3, DMIT_TINY_DOMAINS);
  c.size = DMIT_TINY_SIZE;
  c.nef = 4;
  c.ndf = 4;
  c.n_style = 2;
  c.down_blocks = 1;
  c.content_res = 1;
  c.style_blocks = 2;
  c.dec_res = 1;
  c.content_dis_blocks = 1;
  c.image_dis_blocks = 2;
  c.batch = DMIT_TINY_BATCH;
  c.lr = 1e-3f;
  c.seed = 7;
  snprintf(c.domains, sizeof c.domains, "red,green,blue");
  return c;
}

#endif
