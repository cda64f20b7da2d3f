/* Synthetic sources written as byte-level shards: train, val and test are
 * consecutive segments of the source's one stream (a Markov chain carries
 * its context across the cuts), each with metadata holding the exact
 * entropy rate and the window entropy H(x_1..x_T)/T. */
#ifndef DLM_SYNTHETIC_SHARDS_H
#define DLM_SYNTHETIC_SHARDS_H

#include <stdint.h>

#include "core/status.h"
#include "io/synthetic.h"

/* Exactly one of iid, mk is non-NULL. Writes out_dir/name_{train,val,test}.bin
 * (+ .json) with n_train, n_eval, n_eval tokens; T is the window the
 * metadata's window entropy is for. */
dlm_status dlm_synthetic_write_splits(const char *out_dir, const char *name,
                                      const dlm_iid_source *iid, const dlm_markov_source *mk,
                                      int64_t n_train, int64_t n_eval, int T);

#endif
