/* dlm-train: trains a masked-diffusion (mdlm) or autoregressive (ar) model.
 * For now a single-rank demo on the built-in synthetic source with known
 * entropy; configs, data shards, run files and checkpoints come next. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/status.h"
#include "core/timer.h"
#include "diffusion/objective.h"
#include "io/synthetic.h"
#include "kernels/blis_info.h"
#include "model/model.h"
#include "model/step.h"
#include "optim/optim.h"

typedef struct {
    const char *objective, *schedule;
    int steps, layers, width, heads, seq_len, batch, micro_batch, threads, log_every, val_seqs;
    int warmup, tied;
    double lr, min_lr, weight_decay, clip;
    long long seed;
} train_args;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dlm-train [options]\n"
            "Trains a tiny transformer on the built-in synthetic source (16 symbols drawn\n"
            "i.i.d., entropy printed at start) and prints the loss as it goes.\n\n"
            "  --objective ar|mdlm    training objective (default mdlm)\n"
            "  --schedule NAME        mdlm noise schedule: loglinear, cosine, linear-sigma\n"
            "  --steps N              optimizer steps (default 300)\n"
            "  --layers N --width N --heads N --seq-len N\n"
            "                         model shape (default 2, 64, 4, 64)\n"
            "  --tied                 tie the LM head to the embedding\n"
            "  --batch N              sequences per step (default 16)\n"
            "  --micro-batch N        sequences per forward pass (default: --batch)\n"
            "  --lr X --min-lr X      peak and final learning rate (default 3e-3, 3e-4)\n"
            "  --warmup N             warmup steps (default 20)\n"
            "  --weight-decay X       AdamW decoupled decay on 2-D weights (default 0.1)\n"
            "  --clip X               global gradient-norm bound, 0 disables (default 1)\n"
            "  --seed N               seed of initialisation, masks and data (default 1)\n"
            "  --threads N            BLIS and OpenMP threads (default: OMP_NUM_THREADS or cores)\n"
            "  --log-every N          progress line every N steps (default 25)\n"
            "  --val-seqs N           held-out sequences per validation (default 256)\n"
            "  --help                 this text\n"
            "Exit status: 0 done, 1 bad arguments or failure.\n");
}

static dlm_status parse_int(const char *opt, const char *s, int lo, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    DLM_CHECK(errno == 0 && end != s && *end == '\0' && v >= lo && v <= INT_MAX, DLM_ERR_ARG,
              "%s expects an integer >= %d, got '%s'", opt, lo, s);
    *out = (int)v;
    return DLM_OK;
}

static dlm_status parse_double(const char *opt, const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    DLM_CHECK(errno == 0 && end != s && *end == '\0' && isfinite(v) && v >= lo, DLM_ERR_ARG,
              "%s expects a number >= %g, got '%s'", opt, lo, s);
    *out = v;
    return DLM_OK;
}

static dlm_status parse_args(int argc, char **argv, train_args *a, int *help)
{
    *a = (train_args){.objective = "mdlm", .schedule = "loglinear", .steps = 300, .layers = 2,
                      .width = 64, .heads = 4, .seq_len = 64, .batch = 16, .micro_batch = 0,
                      .threads = 0, .log_every = 25, .val_seqs = 256, .warmup = 20, .lr = 3e-3,
                      .min_lr = 3e-4, .weight_decay = 0.1, .clip = 1.0, .seed = 1};
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            *help = 1;
            return DLM_OK;
        }
        if (!strcmp(o, "--tied")) {
            a->tied = 1;
            continue;
        }
        DLM_CHECK(i + 1 < argc, DLM_ERR_ARG, "option %s needs a value (see --help)", o);
        const char *v = argv[++i];
        int seed_int;
        if (!strcmp(o, "--objective")) a->objective = v;
        else if (!strcmp(o, "--schedule")) a->schedule = v;
        else if (!strcmp(o, "--steps")) DLM_CALL(parse_int(o, v, 1, &a->steps));
        else if (!strcmp(o, "--layers")) DLM_CALL(parse_int(o, v, 1, &a->layers));
        else if (!strcmp(o, "--width")) DLM_CALL(parse_int(o, v, 2, &a->width));
        else if (!strcmp(o, "--heads")) DLM_CALL(parse_int(o, v, 1, &a->heads));
        else if (!strcmp(o, "--seq-len")) DLM_CALL(parse_int(o, v, 2, &a->seq_len));
        else if (!strcmp(o, "--batch")) DLM_CALL(parse_int(o, v, 1, &a->batch));
        else if (!strcmp(o, "--micro-batch")) DLM_CALL(parse_int(o, v, 1, &a->micro_batch));
        else if (!strcmp(o, "--threads")) DLM_CALL(parse_int(o, v, 1, &a->threads));
        else if (!strcmp(o, "--log-every")) DLM_CALL(parse_int(o, v, 1, &a->log_every));
        else if (!strcmp(o, "--val-seqs")) DLM_CALL(parse_int(o, v, 1, &a->val_seqs));
        else if (!strcmp(o, "--warmup")) DLM_CALL(parse_int(o, v, 0, &a->warmup));
        else if (!strcmp(o, "--lr")) DLM_CALL(parse_double(o, v, 0.0, &a->lr));
        else if (!strcmp(o, "--min-lr")) DLM_CALL(parse_double(o, v, 0.0, &a->min_lr));
        else if (!strcmp(o, "--weight-decay")) DLM_CALL(parse_double(o, v, 0.0, &a->weight_decay));
        else if (!strcmp(o, "--clip")) DLM_CALL(parse_double(o, v, 0.0, &a->clip));
        else if (!strcmp(o, "--seed")) {
            DLM_CALL(parse_int(o, v, 0, &seed_int));
            a->seed = seed_int;
        } else DLM_CHECK(0, DLM_ERR_ARG, "unknown option '%s' (see --help)", o);
    }
    if (a->micro_batch == 0) a->micro_batch = a->batch;
    DLM_CHECK(a->batch % a->micro_batch == 0, DLM_ERR_ARG,
              "--batch %d is not divisible into micro-batches of %d", a->batch, a->micro_batch);
    return DLM_OK;
}

static int default_threads(void)
{
    const char *e = getenv("OMP_NUM_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static dlm_status run(const train_args *a)
{
    dlm_status st = DLM_OK;
    dlm_model *model = NULL;
    dlm_optimizer *opt = NULL;
    dlm_step_buffers buf = {0};
    int32_t *batch = NULL, *val = NULL;

    dlm_blis_init(a->threads > 0 ? a->threads : default_threads());
    char blis[512];
    DLM_CALL(dlm_blis_describe(blis, sizeof blis));
    DLM_INFO("%s", blis);

    dlm_objective obj = {.seed = (uint64_t)a->seed, .bos_id = DLM_BYTE_SEP, .mask_id = DLM_BYTE_VOCAB};
    DLM_CALL(dlm_objective_parse(a->objective, &obj.kind));
    dlm_schedule_kind sk;
    DLM_CALL(dlm_schedule_parse(a->schedule, &sk));
    dlm_schedule_default(&obj.schedule, sk);

    dlm_model_config cfg;
    dlm_model_config_bytes(&cfg, a->layers, a->width, a->heads, a->seq_len);
    cfg.tied_head = a->tied;
    DLM_CALL(dlm_model_create(&cfg, a->micro_batch, &model));
    dlm_model_init(model, (uint64_t)a->seed);
    dlm_adamw_config oc;
    dlm_adamw_config_default(&oc);
    oc.weight_decay = (float)a->weight_decay;
    oc.grad_clip = (float)a->clip;
    DLM_CALL_GOTO(st, dlm_optimizer_create(model, &oc, &opt), done);
    DLM_CALL_GOTO(st, dlm_step_buffers_create(model, &buf), done);

    dlm_iid_source src;
    dlm_iid_source_default(&src, (uint64_t)a->seed);
    int T = a->seq_len, G = a->batch;
    batch = malloc((size_t)G * T * sizeof *batch);
    val = malloc((size_t)a->val_seqs * T * sizeof *val);
    st = batch && val ? DLM_OK : DLM_ERR_NOMEM;
    DLM_CALL_GOTO(st, st, done);
    for (int i = 0; i < a->val_seqs; i++)
        dlm_iid_fill(&src, DLM_HELDOUT_SAMPLE0 + (uint64_t)i, T, val + (int64_t)i * T);

    double fpt = dlm_model_flops_per_token(&cfg);
    DLM_INFO("objective %s%s%s, model L=%d d=%d H=%d T=%d V=%d (padded %d), %lld parameters "
             "(%lld non-embedding)",
             a->objective, obj.kind == DLM_OBJECTIVE_MDLM ? ", schedule " : "",
             obj.kind == DLM_OBJECTIVE_MDLM ? a->schedule : "", cfg.n_layer, cfg.d_model,
             cfg.n_head, cfg.seq_len, cfg.vocab_size, cfg.vocab_padded,
             (long long)dlm_model_param_count(model),
             (long long)dlm_model_nonembedding_params(&cfg));
    DLM_INFO("%s = %.4g MFLOP", DLM_FLOPS_DEFINITION, fpt / 1e6);
    DLM_INFO("data: 16 symbols i.i.d., entropy %.4f nats/token (the best possible loss)",
             dlm_iid_entropy(&src));

    dlm_lr_schedule lrs = {.kind = DLM_LR_COSINE, .lr = a->lr, .min_lr = a->min_lr,
                           .warmup = a->warmup, .total = a->steps};
    double t0 = dlm_now(), t_last = t0;
    int steps_since = 0;
    for (int step = 0; step < a->steps; step++) {
        for (int g = 0; g < G; g++)
            dlm_iid_fill(&src, (uint64_t)step * G + g, T, batch + (int64_t)g * T);
        double loss, gnorm, lr = dlm_lr_at(&lrs, step);
        DLM_CALL_GOTO(st, dlm_train_step(model, opt, &buf, &obj, batch, G, (uint32_t)step, lr,
                                         &loss, &gnorm), done);
        steps_since++;
        if ((step + 1) % a->log_every == 0 || step + 1 == a->steps) {
            double now = dlm_now(), dt = now - t_last;
            double vloss;
            DLM_CALL_GOTO(st, dlm_eval_loss(model, &buf, &obj, val, a->val_seqs, 0, &vloss), done);
            double tps = (double)steps_since * G * T / dt;
            double eta = (now - t0) / (step + 1) * (a->steps - step - 1);
            DLM_INFO("step %d/%d loss %.4f val %.4f lr %.2e gnorm %.3f %.0f tokens/s %.2f GFLOP/s "
                     "eta %.0fs",
                     step + 1, a->steps, loss, vloss, lr, gnorm, tps, tps * fpt / 1e9, eta);
            t_last = dlm_now();
            steps_since = 0;
        }
    }
    DLM_INFO("done in %.1fs", dlm_now() - t0);
done:
    free(batch);
    free(val);
    dlm_step_buffers_destroy(&buf);
    dlm_optimizer_destroy(&opt);
    dlm_model_destroy(&model);
    return st;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    dlm_log_set_rank(rank);
    train_args a;
    int help;
    dlm_status st = parse_args(argc, argv, &a, &help);
    if (st == DLM_OK && help) {
        if (rank == 0) usage(stdout);
        MPI_Finalize();
        return 0;
    }
    if (st == DLM_OK && size != 1)
        st = dlm_error_push(DLM_ERR_ARG, __FILE__, __LINE__, __func__,
                            "dlm-train runs on 1 rank for now (got %d); parallel layouts come "
                            "with the parallelism work", size);
    if (st == DLM_OK) st = run(&a);
    if (st != DLM_OK) {
        fprintf(stderr, "[%d] dlm-train failed: %s", rank, dlm_error_text());
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    MPI_Finalize();
    return 0;
}
