/* Shared between the spirals files: the configuration's MLP and its checkpoint form. */
#ifndef UNTANGLE_MODELS_SPIRALS_INTERNAL_H
#define UNTANGLE_MODELS_SPIRALS_INTERNAL_H

#include <stddef.h>

#include "spirals.h"

/* The store metadata key holding the configuration as JSON. */
#define SPIRALS_CONFIG_KEY "spirals.config"
/* The store counter of training steps done. */
#define SPIRALS_STEP_COUNTER "spirals.step"

/* The MLP of a (checked) configuration: 2 -> width x depth -> 1, tanh output. */
mlp_cfg spirals_mlp_cfg(const spirals_cfg *cfg);

/* The configuration as compact JSON (malloc'd; NULL when out of memory) and back. */
char *spirals_cfg_to_json(const spirals_cfg *cfg);
ut_status spirals_cfg_from_json(const char *text, spirals_cfg *out);

/* 0 when a and b are the same; otherwise 1 and `why` gets "lr = 0.01, not 0.02" (a's value
 * first) for the first field that differs. */
int spirals_cfg_diff(const spirals_cfg *a, const spirals_cfg *b, char *why, size_t size);

#endif
