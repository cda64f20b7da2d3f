/* A sweep's objectives are named with their whole recipe, so a report
 * says exactly what was trained:
 *   "ar"                          autoregressive
 *   "mdlm"                        masked diffusion, mc-t, loglinear (MDLM's)
 *   "mdlm/<schedule>"             mc-t under loglinear, cosine, linear-sigma
 *                                 or power (objective.power from the base)
 *   "mdlm/exact-k[/<proposal>]"   exact k masked, P(k) uniform (default),
 *                                 inverse or power (objective.k_power)
 * dlm_recipe_apply sets the objective keys of a run config by the name. */
#ifndef DLM_SWEEP_RECIPE_H
#define DLM_SWEEP_RECIPE_H

#include "core/status.h"
#include "train/run_config.h"

/* Checks name; on success sets c's objective.kind, estimator, schedule and
 * k_proposal (other keys untouched). The error names the name and lists
 * what is accepted. */
dlm_status dlm_recipe_apply(const char *name, dlm_run_config *c);

#endif
