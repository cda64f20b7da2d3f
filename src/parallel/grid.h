/* The rank grid: dp x pp x tp ranks, tp varying fastest (a tensor-parallel
 * group sits on one node), then dp, then pp:
 *
 *   world = tp_rank + tp * (dp_rank + dp * pp_rank)
 *
 * 16 ranks as dp2 x pp2 x tp4:
 *
 *   world   0  1  2  3 |  4  5  6  7 |  8  9 10 11 | 12 13 14 15
 *   pp      0  0  0  0 |  0  0  0  0 |  1  1  1  1 |  1  1  1  1
 *   dp      0  0  0  0 |  1  1  1  1 |  0  0  0  0 |  1  1  1  1
 *   tp      0  1  2  3 |  0  1  2  3 |  0  1  2  3 |  0  1  2  3
 *
 *   tp groups {0..3} {4..7} {8..11} {12..15}   (one node each with 4 cores/node)
 *   dp groups {0,4} {1,5} {2,6} {3,7} {8,12} ... (same stage, same shard)
 *   pp groups {0,8} {1,9} ... {7,15}            (stage 0 -> stage 1)
 *   model-parallel (tp x pp) groups {0-3, 8-11} {4-7, 12-15}: one model replica
 *
 * Built once in main from the world communicator and passed down; nothing
 * else touches MPI_COMM_WORLD. Every communicator returns errors (they are
 * split from one that does).
 *
 *   dlm_grid *g;
 *   DLM_CALL(dlm_grid_create(MPI_COMM_WORLD, dp, tp, pp, &g));
 *   ...
 *   st = dlm_agree(g->world, st);   // every rank learns if any failed
 *   dlm_grid_destroy(&g);
 */
#ifndef DLM_GRID_H
#define DLM_GRID_H

#include <mpi.h>
#include <stdint.h>

#include "core/agree.h"
#include "core/status.h"

typedef struct {
    int size, rank;           /* the world */
    int dp, tp, pp;           /* the layout */
    int dp_rank, tp_rank, pp_rank;
    MPI_Comm world;           /* a duplicate of the communicator given */
    MPI_Comm dp_comm;         /* same (pp, tp): the data-parallel replicas of this shard */
    MPI_Comm tp_comm;         /* same (pp, dp) */
    MPI_Comm pp_comm;         /* same (dp, tp) */
    MPI_Comm mp_comm;         /* same dp: one model replica (tp x pp ranks) */
    MPI_Comm node_comm;       /* the ranks sharing this rank's node (shared memory) */
    int node_rank, node_size;
} dlm_grid;

/* Fails on every rank unless dp * tp * pp equals the communicator's size
 * (an agreed error: rank 0 carries the message). Collective over world. */
dlm_status dlm_grid_create(MPI_Comm world, int dp, int tp, int pp, dlm_grid **out);
void dlm_grid_destroy(dlm_grid **g);

/* The layout's short name: the factors > 1 as dpN, tpM, ppK in that
 * order ("dp2tp2", "pp2"; "dp1" for one rank). */
const char *dlm_grid_name(const dlm_grid *g, char *buf, int len);
/* The reverse: dp, tp, pp from such a name; what (the option or key it
 * came from) opens the error. */
dlm_status dlm_grid_parse_layout(const char *what, const char *name, int *dp, int *tp, int *pp);

/* Collective over comm: DLM_OK when every rank passed the same value (a
 * hash of what the ranks must hold alike), else on every rank an agreed
 * error, "the ranks hold different <what>", from rank 0. */
dlm_status dlm_grid_check_same(MPI_Comm comm, uint64_t value, const char *what);

#endif
