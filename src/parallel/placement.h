/* Where each rank runs: its host, the cores it may use and its BLIS
 * thread count, set together and printed at start. Two ranks with two BLIS
 * threads each under Open MPI's default --bind-to core (one core per rank)
 * fell to 22 GFLOP/s per rank here: threads beyond the cores a rank is
 * bound to only take turns. */
#ifndef DLM_PLACEMENT_H
#define DLM_PLACEMENT_H

#include "core/status.h"
#include "parallel/grid.h"

/* The BLIS/OpenMP threads for this rank: requested when > 0 (source names
 * where it came from), else OMP_NUM_THREADS, else this rank's share of the
 * cores in its affinity mask (the mask's cores divided by the ranks on the
 * node whose masks overlap it). Collective over g->node_comm. */
dlm_status dlm_placement_threads(const dlm_grid *g, int requested, const char *source,
                                 int *threads, const char **chosen);

/* Logs on rank 0 one line per rank (host, cores, threads) and warns when a
 * rank runs more threads than it has cores or ranks on a node share cores
 * beyond what the node has. hosts (may be NULL) gets every rank's host
 * name, "r0=host r1=host ..." (for the run file). Collective over g->world. */
dlm_status dlm_placement_report(const dlm_grid *g, int threads, char *hosts, int hosts_len);

/* The start of an inference program (dlm-eval, dlm-sample): the grid
 * (tp ranks per stage, from --tp, pp stages, from --pp; dp = the world's
 * size / (tp pp)),
 * this rank's BLIS threads (requested > 0, from --threads, else as
 * dlm_placement_threads chooses), BLIS started and described in the log,
 * and with more than one rank the placement report. Collective over
 * world; a failure (tp x pp not dividing the ranks) is agreed.
 * dlm_grid_destroy(out) when done. */
dlm_status dlm_placement_start(MPI_Comm world, int tp, int pp, int requested, dlm_grid **out);

#endif
