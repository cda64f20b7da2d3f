/* The 1F1B and forward-only schedules and their runner over MPI
 * point-to-point messages (see pipeline.h). */
#include "parallel/pipeline.h"

#include <limits.h>
#include <stdlib.h>

#include "core/mpicall.h"
#include "core/timer.h"

dlm_status dlm_pipe_ops(dlm_pipe_schedule sched, int pp, int stage, int m, dlm_pipe_op *ops,
                        int *n)
{
    DLM_CHECK(pp >= 1 && stage >= 0 && stage < pp && m >= 1, DLM_ERR_ARG,
              "pipeline schedule for stage %d of %d with %d micro-batches", stage, pp, m);
    int k = 0;
    if (sched == DLM_PIPE_FORWARD_ONLY) {
        for (int i = 0; i < m; i++) ops[k++] = (dlm_pipe_op){DLM_PIPE_FORWARD, i};
        *n = k;
        return DLM_OK;
    }
    int warm = pp - stage - 1 < m ? pp - stage - 1 : m;
    for (int i = 0; i < warm; i++) ops[k++] = (dlm_pipe_op){DLM_PIPE_FORWARD, i};
    for (int i = 0; i < m - warm; i++) { /* steady state: one forward, one backward */
        ops[k++] = (dlm_pipe_op){DLM_PIPE_FORWARD, warm + i};
        ops[k++] = (dlm_pipe_op){DLM_PIPE_BACKWARD, i};
    }
    for (int i = m - warm; i < m; i++) ops[k++] = (dlm_pipe_op){DLM_PIPE_BACKWARD, i};
    *n = k;
    return DLM_OK;
}

int dlm_pipe_peak_in_flight(const dlm_pipe_op *ops, int n, dlm_pipe_schedule sched)
{
    int held = 0, peak = 0;
    for (int i = 0; i < n; i++) {
        held += ops[i].kind == DLM_PIPE_FORWARD ? 1 : -1;
        peak = held > peak ? held : peak;
        if (sched == DLM_PIPE_FORWARD_ONLY) held = 0; /* nothing kept for a backward */
    }
    return peak;
}

double dlm_pipe_ideal_bubble(int pp, int m) { return (double)(pp - 1) / (double)(m + pp - 1); }

/* A small ring of send buffers: a slot is reused only once its previous
 * send completed, so a stage runs ahead of a slow neighbour by at most
 * the ring's length. */
enum { SEND_SLOTS = 2 };
typedef struct {
    float *buf[SEND_SLOTS];
    MPI_Request req[SEND_SLOTS];
    int next;
} send_ring;

typedef struct {
    MPI_Comm comm;
    size_t n;
    double wait_seconds, bytes_sent;
} link_state;

static dlm_status wait_req(link_state *l, MPI_Request *r)
{
    double t0 = dlm_now();
    DLM_MPI(MPI_Wait(r, MPI_STATUS_IGNORE));
    l->wait_seconds += dlm_now() - t0;
    return DLM_OK;
}

/* A free slot of the ring (waiting for its last send if need be). */
static dlm_status ring_slot(link_state *l, send_ring *r, float **buf, MPI_Request **req)
{
    int i = r->next;
    r->next = (i + 1) % SEND_SLOTS;
    if (r->req[i] != MPI_REQUEST_NULL) DLM_CALL(wait_req(l, &r->req[i]));
    *buf = r->buf[i];
    *req = &r->req[i];
    return DLM_OK;
}

/* Tags: micro-batch k's activations 2k, its gradient 2k + 1, k modulo
 * 16384 (MPI promises tags up to 32767). Wrapping is safe: each link's
 * sends and posted receives of a kind both run in micro-batch order, and
 * MPI keeps the order of messages with the same source, tag and
 * communicator. */
static int tag_of(int micro, dlm_pipe_kind kind)
{
    return 2 * (micro % 16384) + (kind == DLM_PIPE_BACKWARD);
}

/* The micro-batch of the next op of kind after position i, or -1. */
static int next_of(const dlm_pipe_op *ops, int n, int i, dlm_pipe_kind kind)
{
    for (int j = i; j < n; j++)
        if (ops[j].kind == kind) return ops[j].micro;
    return -1;
}

static dlm_status post_recv(link_state *l, float *buf, int micro, dlm_pipe_kind kind, int from,
                            MPI_Request *req)
{
    if (micro < 0) return DLM_OK;
    DLM_MPI(MPI_Irecv(buf, (int)l->n, MPI_FLOAT, from, tag_of(micro, kind), l->comm, req));
    return DLM_OK;
}

/* Sends the slot's n floats (written in place by the stage). */
static dlm_status send_slot(link_state *l, float *buf, MPI_Request *req, int micro,
                            dlm_pipe_kind kind, int to)
{
    DLM_MPI(MPI_Isend(buf, (int)l->n, MPI_FLOAT, to, tag_of(micro, kind), l->comm, req));
    l->bytes_sent += (double)l->n * sizeof(float);
    return DLM_OK;
}

dlm_status dlm_pipe_run(MPI_Comm pp_comm, const dlm_pipe_stage *stage, dlm_pipe_schedule sched,
                        int m, size_t n, dlm_pipe_stats *stats)
{
    int pp = 1, s = 0;
    if (pp_comm != MPI_COMM_NULL) {
        DLM_MPI(MPI_Comm_size(pp_comm, &pp));
        DLM_MPI(MPI_Comm_rank(pp_comm, &s));
    }
    DLM_CHECK(n <= INT_MAX && m <= INT_MAX / 2, DLM_ERR_ARG,
              "pipeline messages of %zu floats for %d micro-batches: at most 2^31 - 1 floats",
              n, m);
    int first = s == 0, last = s == pp - 1, train = sched == DLM_PIPE_1F1B;
    dlm_pipe_op *ops = malloc((size_t)2 * m * sizeof *ops);
    DLM_CHECK(ops != NULL, DLM_ERR_NOMEM, "the schedule of %d micro-batches", m);
    int n_ops;
    dlm_status st = dlm_pipe_ops(sched, pp, s, m, ops, &n_ops);
    if (st != DLM_OK) {
        free(ops);
        DLM_CALL(st);
    }
    /* buffers: forward input (from s - 1), gradient input (from s + 1), and
     * a send ring each way that the stage writes its output into; a stage
     * only holds what its links need */
    link_state l = {pp_comm, n, 0.0, 0.0};
    send_ring fwd = {{NULL}, {MPI_REQUEST_NULL, MPI_REQUEST_NULL}, 0};
    send_ring bwd = {{NULL}, {MPI_REQUEST_NULL, MPI_REQUEST_NULL}, 0};
    float *x_in = NULL, *g_in = NULL, *out = NULL;
    MPI_Request *out_req = NULL;
    MPI_Request x_req = MPI_REQUEST_NULL, g_req = MPI_REQUEST_NULL;
    int ok = 1;
    if (!first) ok &= (x_in = malloc(n * sizeof *x_in)) != NULL;
    if (!last && train) ok &= (g_in = malloc(n * sizeof *g_in)) != NULL;
    for (int i = 0; i < SEND_SLOTS; i++) {
        if (!last) ok &= (fwd.buf[i] = malloc(n * sizeof(float))) != NULL;
        if (!first && train) ok &= (bwd.buf[i] = malloc(n * sizeof(float))) != NULL;
    }
    if (!ok) st = dlm_error_push(DLM_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                 "pipeline buffers of %zu floats", n);
    double t0 = dlm_now();
    int held = 0, peak = 0;
    /* the first receive of each kind posted before any work */
    if (st == DLM_OK && !first)
        st = post_recv(&l, x_in, next_of(ops, n_ops, 0, DLM_PIPE_FORWARD), DLM_PIPE_FORWARD, s - 1,
                       &x_req);
    if (st == DLM_OK && !last && train)
        st = post_recv(&l, g_in, next_of(ops, n_ops, 0, DLM_PIPE_BACKWARD), DLM_PIPE_BACKWARD,
                       s + 1, &g_req);
    for (int i = 0; i < n_ops && st == DLM_OK; i++) {
        int k = ops[i].micro;
        if (ops[i].kind == DLM_PIPE_FORWARD) {
            out = NULL; /* the last stage sends nothing on */
            if (!first) st = wait_req(&l, &x_req);
            if (st == DLM_OK && !last) st = ring_slot(&l, &fwd, &out, &out_req);
            if (st == DLM_OK) st = stage->forward(stage->ctx, k, x_in, out);
            /* the input is consumed: its buffer takes the next forward's */
            if (st == DLM_OK && !first)
                st = post_recv(&l, x_in, next_of(ops, n_ops, i + 1, DLM_PIPE_FORWARD),
                               DLM_PIPE_FORWARD, s - 1, &x_req);
            if (st == DLM_OK && !last) st = send_slot(&l, out, out_req, k, DLM_PIPE_FORWARD, s + 1);
            held = train ? held + 1 : 1;
            peak = held > peak ? held : peak;
            if (!train) held = 0;
        } else {
            out = NULL; /* the first stage sends nothing back */
            if (!last) st = wait_req(&l, &g_req);
            if (st == DLM_OK && !first) st = ring_slot(&l, &bwd, &out, &out_req);
            if (st == DLM_OK) st = stage->backward(stage->ctx, k, g_in, out);
            if (st == DLM_OK && !last)
                st = post_recv(&l, g_in, next_of(ops, n_ops, i + 1, DLM_PIPE_BACKWARD),
                               DLM_PIPE_BACKWARD, s + 1, &g_req);
            if (st == DLM_OK && !first) st = send_slot(&l, out, out_req, k, DLM_PIPE_BACKWARD, s - 1);
            held--;
        }
    }
    for (int i = 0; i < SEND_SLOTS && st == DLM_OK; i++) {
        if (fwd.req[i] != MPI_REQUEST_NULL) st = wait_req(&l, &fwd.req[i]);
        if (st == DLM_OK && bwd.req[i] != MPI_REQUEST_NULL) st = wait_req(&l, &bwd.req[i]);
    }
    free(ops);
    if (st != DLM_OK) {
        /* messages may still be in flight into or out of the buffers: they are left
         * allocated for the abort that follows */
        return dlm_error_push(st, __FILE__, __LINE__, __func__, "pipeline stage %d of %d", s, pp);
    }
    free(x_in), free(g_in);
    for (int i = 0; i < SEND_SLOTS; i++) free(fwd.buf[i]), free(bwd.buf[i]);
    if (stats)
        *stats = (dlm_pipe_stats){.seconds = dlm_now() - t0, .wait_seconds = l.wait_seconds,
                                  .peak_in_flight = peak, .bytes_sent = l.bytes_sent};
    return DLM_OK;
}
