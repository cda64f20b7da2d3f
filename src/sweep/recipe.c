/* Objective recipes by name (see recipe.h). */
#include "sweep/recipe.h"

#include <stdio.h>
#include <string.h>

#include "core/names.h"

#define RECIPE_FORMS                                                                    \
    "\"ar\", \"mdlm\", \"mdlm/<schedule>\" (loglinear, cosine, linear-sigma, power) or " \
    "\"mdlm/exact-k[/<proposal>]\" (uniform, inverse, power)"

dlm_status dlm_recipe_apply(const char *name, dlm_run_config *c)
{
    if (strcmp(name, "ar") == 0) {
        c->objective.kind = DLM_OBJECTIVE_AR;
        return DLM_OK;
    }
    char buf[64];
    DLM_CHECK(strlen(name) < sizeof buf, DLM_ERR_FORMAT, "objective \"%.40s...\": too long; expected %s",
              name, RECIPE_FORMS);
    snprintf(buf, sizeof buf, "%s", name);
    char *part[4] = {NULL};
    int n = 0;
    for (char *save = NULL, *p = strtok_r(buf, "/", &save); p && n < 4; p = strtok_r(NULL, "/", &save))
        part[n++] = p;
    DLM_CHECK(n >= 1 && n <= 3 && strcmp(part[0], "mdlm") == 0 && name[strlen(name) - 1] != '/',
              DLM_ERR_FORMAT, "objective \"%s\": expected %s", name, RECIPE_FORMS);
    c->objective.kind = DLM_OBJECTIVE_MDLM;
    c->objective.estimator = DLM_TRAIN_MC_T;
    c->objective.schedule = DLM_SCHEDULE_LOGLINEAR;
    if (n == 1) return DLM_OK;
    if (strcmp(part[1], "exact-k") == 0) {
        c->objective.estimator = DLM_TRAIN_EXACT_K;
        c->objective.k_proposal = DLM_K_UNIFORM;
        if (n == 2) return DLM_OK;
        int v = dlm_names_find(dlm_k_proposal_names, part[2]);
        DLM_CHECK(v >= 0, DLM_ERR_FORMAT, "objective \"%s\": no k proposal \"%s\"; expected %s", name,
                  part[2], RECIPE_FORMS);
        c->objective.k_proposal = (dlm_k_proposal)v;
        return DLM_OK;
    }
    int v = dlm_names_find(dlm_schedule_names, part[1]);
    DLM_CHECK(v >= 0 && n == 2, DLM_ERR_FORMAT, "objective \"%s\": expected %s", name, RECIPE_FORMS);
    c->objective.schedule = (dlm_schedule_kind)v;
    return DLM_OK;
}
