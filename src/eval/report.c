/* dlm-eval's output: the text table and the JSON object of a session. */
#include "eval/report.h"

#include <math.h>
#include <stdio.h>

#include "eval/evalfile.h"
#include "io/json.h"

static void model_table(FILE *f, const dlm_eval_model *em, const dlm_chunk_set *cs,
                        const char *label)
{
    const dlm_estimate *x = &em->nats;
    double ln2 = log(2.0), bpb = dlm_eval_bpb_factor(cs);
    int ar = em->est.kind == DLM_EST_AR;
    char def[512];
    dlm_estimator_describe(&em->est, cs->T, def, sizeof def);
    fprintf(f, "%s%s (step %lld, %lld training tokens), %s weights\n", label, em->info.path,
            (long long)em->info.step, (long long)em->info.tokens, em->use_ema ? "EMA" : "raw");
    fprintf(f, "  model      %s, objective %s", em->info.shape, dlm_eval_model_objective(em));
    if (!ar)
        fprintf(f, ", trained with the %s schedule",
                dlm_schedule_name(em->info.cfg.objective.schedule));
    fprintf(f, "\n  estimator  %s\n", def);
    if (!ar)
        fprintf(f, "  samples    K = %d per chunk, seed %llu\n", em->K,
                (unsigned long long)em->est.seed);
    fprintf(f, "\n  %-34s %10s %10s   %s\n", ar ? "NLL (exact)" : "NELBO (UPPER BOUND on the NLL)",
            "estimate", "std.err", "95% interval");
    fprintf(f, "  %-34s %10.4f %10.4f   [%.4f, %.4f]\n", "nats/token", x->mean, x->se, x->lo,
            x->hi);
    fprintf(f, "  %-34s %10.4f %10.4f   [%.4f, %.4f]\n", "bits/token", x->mean / ln2, x->se / ln2,
            x->lo / ln2, x->hi / ln2);
    if (isfinite(bpb))
        fprintf(f, "  %-34s %10.4f %10.4f   [%.4f, %.4f]\n", "bits/byte", x->mean * bpb,
                x->se * bpb, x->lo * bpb, x->hi * bpb);
    else
        fprintf(f, "  %-34s %10s\n", "bits/byte", "n/a (not byte-level data)");
    fprintf(f, "  %-34s %10.3f %10s   [%.3f, %.3f]\n", "perplexity", exp(x->mean), "",
            exp(x->lo), exp(x->hi));
    if (isfinite(cs->entropy))
        fprintf(f, "  source entropy H(x_1..x_T)/T %.4f nats/token: %s - entropy = %.4f +- %.4f\n",
                cs->entropy, ar ? "NLL" : "bound", x->mean - cs->entropy, x->se);
    if (cs->true_nll) {
        dlm_estimate truth, gap;
        dlm_estimate_from(cs->true_nll, cs->n, &truth);
        dlm_estimate_difference(em->chunk_values, cs->true_nll, cs->n, &gap);
        fprintf(f, "  true NLL of these chunks %.4f nats/token (exact, the source is known): %s - "
                   "true NLL = %.4f +- %.4f (paired over chunks)\n",
                truth.mean, ar ? "NLL" : "bound", gap.mean, gap.se);
    }
    double train = em->train_tokens_per_s, tps = dlm_eval_model_tokens_per_s(em);
    fprintf(f, "  throughput %.0f tokens/s forward (%lld sequences of %d tokens in %.2f s)", tps,
            (long long)(em->tokens / cs->T), cs->T, em->seconds);
    if (isfinite(train))
        fprintf(f, "; training ran at %.0f tokens/s (median in run.h5): %.2fx", train,
                tps / train);
    fprintf(f, "\n");
}

void dlm_eval_report_text(FILE *f, const dlm_eval_session *s)
{
    const dlm_chunk_set *cs = &s->cs;
    const dlm_estimate *d = &s->d;
    int compare = s->opt.compare != NULL;
    double bpb = dlm_eval_bpb_factor(cs);
    fprintf(f, "data         %s: %lld of %lld chunks of %d tokens (%lld tokens", cs->source,
            (long long)cs->n, (long long)cs->available, cs->T, (long long)(cs->n * cs->T));
    if (cs->text_bytes >= 0) fprintf(f, ", %lld text bytes", (long long)cs->text_bytes);
    fprintf(f, "), chunk set %s\n\n", s->hash);
    model_table(f, &s->a, cs, compare ? "model A      " : "checkpoint   ");
    if (compare) {
        fprintf(f, "\n");
        model_table(f, &s->b, cs, "model B      ");
        fprintf(f, "\n  paired difference A - B (same chunks%s): %.4f +- %.4f nats/token, 95%% "
                   "[%.4f, %.4f]",
                !dlm_eval_model_is_ar(&s->a) && !dlm_eval_model_is_ar(&s->b) ? " and masks" : "",
                d->mean, d->se, d->lo, d->hi);
        if (isfinite(bpb)) fprintf(f, "; %.4f +- %.4f bits/byte", d->mean * bpb, d->se * bpb);
        fprintf(f, "\n");
    }
    if (s->out[0]) fprintf(f, "\nresults      %s, group %s\n", s->out, s->a.group);
}

static void json_num(FILE *f, const char *key, double v, int last)
{
    if (isfinite(v)) fprintf(f, "  \"%s\": %.10g%s\n", key, v, last ? "" : ",");
    else fprintf(f, "  \"%s\": null%s\n", key, last ? "" : ",");
}

static void json_str(FILE *f, const char *key, const char *v)
{
    fprintf(f, "  \"%s\": ", key);
    dlm_json_write_string(f, v);
    fprintf(f, ",\n");
}

static void json_model(FILE *f, const dlm_eval_model *em, const dlm_chunk_set *cs,
                       const char *prefix)
{
    char k[128];
    const dlm_estimate *x = &em->nats;
    double ln2 = log(2.0), bpb = dlm_eval_bpb_factor(cs);
#define KEY(name) (snprintf(k, sizeof k, "%s%s", prefix, name), k)
    json_str(f, KEY("checkpoint"), em->info.path);
    json_num(f, KEY("step"), (double)em->info.step, 0);
    json_num(f, KEY("tokens_seen"), (double)em->info.tokens, 0);
    json_num(f, KEY("parameters"), (double)dlm_model_param_count(em->m), 0);
    json_str(f, KEY("objective"), dlm_eval_model_objective(em));
    json_str(f, KEY("estimator"), dlm_estimator_name(em->est.kind));
    json_str(f, KEY("bound"), em->est.kind == DLM_EST_AR ? "exact" : "upper bound");
    json_str(f, KEY("weights"), em->use_ema ? "ema" : "raw");
    json_num(f, KEY("K"), em->K, 0);
    json_num(f, KEY("estimate_nats_per_token"), x->mean, 0);
    json_num(f, KEY("stderr_nats_per_token"), x->se, 0);
    json_num(f, KEY("ci95_low"), x->lo, 0);
    json_num(f, KEY("ci95_high"), x->hi, 0);
    json_num(f, KEY("estimate_bits_per_token"), x->mean / ln2, 0);
    json_num(f, KEY("stderr_bits_per_token"), x->se / ln2, 0);
    json_num(f, KEY("bits_per_byte"), x->mean * bpb, 0);
    json_num(f, KEY("stderr_bits_per_byte"), x->se * bpb, 0);
    json_num(f, KEY("bits_per_byte_ci95_low"), x->lo * bpb, 0);
    json_num(f, KEY("bits_per_byte_ci95_high"), x->hi * bpb, 0);
    json_num(f, KEY("perplexity"), exp(x->mean), 0);
    json_num(f, KEY("perplexity_ci95_low"), exp(x->lo), 0);
    json_num(f, KEY("perplexity_ci95_high"), exp(x->hi), 0);
    json_num(f, KEY("tokens_per_s"), dlm_eval_model_tokens_per_s(em), 0);
    json_num(f, KEY("training_tokens_per_s"), em->train_tokens_per_s, 0);
    dlm_estimate gap = {.mean = NAN, .se = NAN};
    if (cs->true_nll) dlm_estimate_difference(em->chunk_values, cs->true_nll, cs->n, &gap);
    json_num(f, KEY("minus_true_nll_nats_per_token"), gap.mean, 0);
    json_num(f, KEY("minus_true_nll_stderr_nats_per_token"), gap.se, 0);
#undef KEY
}

void dlm_eval_report_json(FILE *f, const dlm_eval_session *s)
{
    const dlm_chunk_set *cs = &s->cs;
    const dlm_estimate *d = &s->d;
    double bpb = dlm_eval_bpb_factor(cs);
    fprintf(f, "{\n");
    json_model(f, &s->a, cs, "");
    json_str(f, "data", cs->source);
    json_str(f, "chunk_set_hash", s->hash);
    json_num(f, "n_chunks", (double)cs->n, 0);
    json_num(f, "T", cs->T, 0);
    json_num(f, "text_bytes", cs->text_bytes >= 0 ? (double)cs->text_bytes : NAN, 0);
    json_num(f, "seed", (double)s->opt.seed, 0);
    json_num(f, "source_entropy_nats_per_token", cs->entropy, 0);
    dlm_estimate truth = {.mean = NAN};
    if (cs->true_nll) dlm_estimate_from(cs->true_nll, cs->n, &truth);
    json_num(f, "true_nll_nats_per_token", truth.mean, 0);
    if (s->opt.compare) {
        json_model(f, &s->b, cs, "compare_");
        json_num(f, "difference_nats_per_token", d->mean, 0);
        json_num(f, "difference_stderr_nats_per_token", d->se, 0);
        json_num(f, "difference_ci95_low", d->lo, 0);
        json_num(f, "difference_ci95_high", d->hi, 0);
        json_num(f, "difference_bits_per_byte", d->mean * bpb, 0);
        json_num(f, "difference_stderr_bits_per_byte", d->se * bpb, 0);
    }
    json_str(f, "results_file", s->out);
    json_num(f, "target_se_reached", s->opt.target_se > 0 ? s->target_reached : NAN, 1);
    fprintf(f, "}\n");
}
