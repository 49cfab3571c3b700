/* What the DMIT tests share (test_dmit.c, test_dmit_confusion.c): the tiny model they train,
 * three domains of 16x16 images with encoders and discriminators 4 channels wide and one or two
 * blocks each, so a step takes milliseconds on PoCL and every code path of the small preset
 * runs; and how a checkpoint written before a configuration field existed reads. */
#ifndef UT_TEST_DMIT_TINY_H
#define UT_TEST_DMIT_TINY_H

#include <stdio.h>
#include <stdlib.h>

#include "dmit.h"
#include "kit_config.h"
#include "test_support.h"

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

/* c as a checkpoint written before `field` existed reads back: its configuration JSON without
 * the field, read over the small preset. */
static inline dmit_cfg dmit_read_without(const dmit_cfg *c, const char *field) {
  char *json = kit_config_to_json(dmit_cfg_table(), c);
  ck_assert_ptr_nonnull(json);
  test_json_drop_field(json, field);
  dmit_cfg read = dmit_preset(DMIT_PRESET_SMALL, 3, DMIT_TINY_DOMAINS);
  ck_assert_ut_ok(kit_config_from_json(dmit_cfg_table(), json, &read));
  free(json);
  return read;
}

#endif
