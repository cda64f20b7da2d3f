#!/usr/bin/python3
"""analysis/report.py SWEEP_H5 [--out DIR] [--reps R] [--param-reps R] [--level P]

The scaling report of a dlm sweep: reads sweep.h5 (`dlm-sweep collect`) and
each run's run.h5, fits IsoFLOP parabolas and power laws in compute per
objective (analysis/fits.py), the compute multiplier of every diffusion
objective against `ar`, the parametric L(N, D) where the runs identify it,
loss against repetition when the sweep limits unique tokens, and writes
DIR/report.md with the PNG figures beside it (DIR defaults to report/ next
to sweep.h5). Needs Debian's python3-numpy, -scipy, -h5py, -matplotlib.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figures  # noqa: E402
import fits  # noqa: E402
import sweep_data  # noqa: E402


# ---- the analysis -----------------------------------------------------------

def analyse(runs, reps=1000, param_reps=100, level=0.9, seed=1):
    """Every fit the report prints, as one dict (see the keys below)."""
    done = (runs["state"] == "done") & np.isfinite(runs["estimate_nats_per_token"])
    d = sweep_data.select(runs, done)
    objectives = list(dict.fromkeys(d["objective"]))
    unique = float(runs["attrs"].get("unique_tokens", 0) or 0)
    per = {}
    for k, obj in enumerate(objectives):
        r = sweep_data.select(d, d["objective"] == obj)
        print(f"report: {obj}: {len(r['name'])} runs: IsoFLOP minima, frontier, parametric fit "
              f"({param_reps} resamples)", flush=True)
        o = dict(runs=r, frontier=None, frontier_error=None, isoflop={}, parametric=None,
                 parametric_error=None, epochs=[])
        mins = fits.isoflop_minima(r["budget"], r["n_params"], r["estimate_nats_per_token"],
                                   r["stderr_nats_per_token"], reps=reps, level=level, seed=seed + k)
        o["isoflop"] = {float(p["budget"]): p for p in mins["profiles"]}
        o["isoflop"].update({float(C): dict(error=msg) for C, msg in mins["rejected"]})
        try:
            o["frontier"] = fits.frontier_from_minima(mins)
        except fits.FitError as e:
            o["frontier_error"] = str(e)
        try:
            p = fits.parametric_fit(r["n_params"], r["tokens"], r["estimate_nats_per_token"])
            p["boot"] = fits.parametric_bootstrap(r["n_params"], r["tokens"], r["estimate_nats_per_token"], p,
                                                  reps=param_reps, level=level, seed=seed + k)
            p["identified"], p["why"] = _identified(p)
            o["parametric"] = p
        except fits.FitError as e:
            o["parametric_error"] = str(e)
        if unique > 0:
            for C in np.unique(r["budget"]):
                m = r["budget"] == C
                ep = r["tokens"][m] / unique
                order = np.argsort(ep)
                y, s = r["estimate_nats_per_token"][m][order], r["stderr_nats_per_token"][m][order]
                o["epochs"].append(dict(budget=float(C), epochs=ep[order], loss=y, se=s,
                                        limit=fits.repetition_limit(ep[order], y, s)))
        o["curves"] = [(name, float(C), float(fpt), sweep_data.load_curves(os.path.join(runs["dir"], name)))
                       for name, C, fpt in zip(r["name"], r["budget"], r["flops_per_token"])]
        per[obj] = o
    mult = {}
    if "ar" in per and per["ar"]["frontier"] is not None:
        ar = per["ar"]["frontier"]
        for obj in objectives:
            f = per[obj]["frontier"]
            if obj == "ar" or f is None:
                continue
            lo, hi = min(ar["budgets"].min(), f["budgets"].min()), max(ar["budgets"].max(), f["budgets"].max())
            table_C = np.concatenate([ar["budgets"], ar["budgets"].max() * np.array([10.0, 100.0])])
            mult[obj] = dict(curve=fits.compute_multiplier(f, ar, np.geomspace(lo / 3, hi * 30, 80), level),
                             table=fits.compute_multiplier(f, ar, table_C, level))
    not_done = sweep_data.select(runs, ~done)
    return dict(objectives=objectives, per_objective=per, multiplier=mult, not_done=not_done,
                unique_tokens=unique, reps=reps, param_reps=param_reps, level=level, n_runs=len(runs["name"]),
                n_done=int(done.sum()), attrs=runs["attrs"])


def _identified(p):
    """The rule the report states: the parametric fit is taken as identified
    when the optimizer converged, every bootstrap replicate could be fitted,
    and the bootstrap intervals of both exponents stay off the bounds of the
    search box (0 and 5) and span less than a factor of 3."""
    b = p["boot"]
    if not p["converged"]:
        return False, f"the optimizer did not converge ({p['message']})"
    if b["valid"] < 1.0 or "alpha" not in b:
        return False, f"only {b['valid']:.0%} of the bootstrap resamples could be fitted"
    for name in ("alpha", "beta"):
        lo, hi = b[name]
        if lo < 0.01 or hi > 4.99:
            return False, f"{name}'s interval [{lo:.3g}, {hi:.3g}] reaches the bound of the search box"
        if hi > 3 * lo:
            return False, f"{name}'s interval [{lo:.3g}, {hi:.3g}] spans more than a factor of 3"
    return True, "converged; both exponents' intervals inside the box and within a factor of 3"


# ---- the Markdown ---------------------------------------------------------

def _ci(t, fmt="{:.4g}"):
    return "[" + fmt.format(t[0]) + ", " + fmt.format(t[1]) + "]"


def markdown(res, figs):
    a = res["attrs"]
    pct = f"{res['level']:.0%}"
    out = [f"# Sweep `{a.get('name', '?')}`: scaling report", ""]
    out += [f"{res['n_done']} of {res['n_runs']} runs done; objectives: "
            + ", ".join(f"`{o}`" for o in res["objectives"]) + ".", ""]
    out += ["- N: " + str(a.get("n_definition", "non-embedding parameters")) + ".",
            "- C (the budget each IsoFLOP profile holds fixed): " + str(a.get("flops_definition", "?")) + ".",
            "- Loss: each run's `dlm-eval` estimate in nats/token on the sweep's evaluation chunks; for a "
            "diffusion objective it is the NELBO, an upper bound on its negative log-likelihood, so its "
            "frontier and the compute multiplier M are upper bounds too. For `ar` it is the exact NLL.",
            f"- Intervals: {pct} percentile intervals from a parametric bootstrap of {res['reps']} replicates: "
            "every run's loss redrawn around its budget's fitted parabola with its evaluation SE plus tau, the "
            "pooled scatter beyond it, and everything refitted.", ""]
    if len(res["not_done"]["name"]):
        out += ["Runs left out (not done):", ""]
        nd = res["not_done"]
        det = nd["detail"] if "detail" in nd else [""] * len(nd["name"])
        out += [f"- `{n}`: {s}" + (f" ({t})" if t else "") for n, s, t in zip(nd["name"], nd["state"], det)] + [""]

    out += ["## IsoFLOP minima", "",
            f"| objective | C (FLOPs) | sizes | N* | {pct} interval | L* (nats/token) | {pct} interval | note |",
            "|---|---|---|---|---|---|---|---|"]
    edges = []
    for obj in res["objectives"]:
        o = res["per_objective"][obj]
        for C, prof in sorted(o["isoflop"].items()):
            k = int(np.sum(o["runs"]["budget"] == C))
            if "error" in prof:
                out.append(f"| {obj} | {C:.3g} | {k} | - | - | - | - | rejected: {prof['error']} |")
                continue
            p = prof["fit"]
            nci, lci = prof["n_star_ci"], prof["l_star_ci"]
            note = ""
            if p["edge"]:
                note = "minimum in the outermost interval (N* biased): add N = " + ", ".join(f"{s:.3g}" for s in p["suggest"])
                edges.append((obj, C, p["suggest"]))
            out.append(f"| {obj} | {C:.3g} | {k} | {p['n_star']:.4g} | {_ci(nci)} | {p['l_star']:.4f} | "
                       f"{_ci(lci, '{:.4f}')} | {note} |")
    out += [""]
    if edges:
        out += ["Budgets whose minimum lies at the edge of the sampled sizes (rerun with the sizes named):", ""]
        out += [f"- `{o}` at C = {C:.3g}: add N = " + ", ".join(f"{s:.4g}" for s in s_) for o, C, s_ in edges] + [""]

    out += ["## Frontiers in compute", "",
            "Power laws fitted to the IsoFLOP minima, constants unrounded:", "",
            f"| objective | N*(C) = g C^a | a: {pct} interval | L*(C) = h C^b | b: {pct} interval | tau | replicates used |",
            "|---|---|---|---|---|---|---|"]
    for obj in res["objectives"]:
        o = res["per_objective"][obj]
        f = o["frontier"]
        if f is None:
            out.append(f"| {obj} | not fitted: {o['frontier_error']} | | | | | |")
            continue
        (g, ea), (h, eb) = f["n_star_law"], f["l_star_law"]
        out.append(f"| {obj} | {g!r} C^{ea!r} | {_ci(f['a_ci'])} | {h!r} C^{eb!r} | {_ci(f['b_ci'])} | "
                   f"{np.sqrt(f['tau2']):.4g} | {f['boot_valid']:.1%} |")
    out += [""]

    out += ["## Compute multiplier", ""]
    if not res["multiplier"]:
        out += ["Not computed: it needs fitted frontiers for `ar` and a diffusion objective.", ""]
    for obj, m in res["multiplier"].items():
        t = m["table"]
        out += [f"`{obj}` against `ar`: M(C) = the factor by which `{obj}`'s compute must grow to reach the AR "
                "frontier's loss at AR compute C (an upper bound, as the diffusion loss is).", "",
                f"| AR compute C | M(C) | {pct} interval | diffusion compute M C | |", "|---|---|---|---|---|"]
        for C, M, lo, hi, ext in zip(t["C"], t["M"], t["lo"], t["hi"], t["extrapolated"]):
            out.append(f"| {C:.3g} | {M:.4g} | {_ci((lo, hi))} | {M * C:.3g} | {'extrapolated' if ext else 'inside the sampled budgets'} |")
        out += [""]

    out += ["## Parametric fit L(N, D) = E + A / N^alpha + B / D^beta", "",
            "Huber loss (delta 1e-3) on log L, L-BFGS-B from the best of a 675-point grid of starts run to "
            f"convergence; {pct} intervals from {res['param_reps']} bootstrap resamples of the runs. Taken as "
            "identified when the optimizer converged, every resample could be fitted, and both exponents' "
            "intervals stay off the search box's bounds (0, 5) and within a factor of 3.", ""]
    for obj in res["objectives"]:
        o = res["per_objective"][obj]
        p = o["parametric"]
        if p is None:
            out += [f"- `{obj}`: not fitted: {o['parametric_error']}"]
            continue
        b = p["boot"]
        consts = ", ".join(f"{k} = {p[k]!r}" + (f" {_ci(b[k])}" if k in b else "") for k in ("E", "A", "alpha", "B", "beta"))
        verdict = "identified" if p["identified"] else "NOT identified by this sweep"
        out += [f"- `{obj}`: {verdict} ({p['why']}): {consts}; optimizer: {p['message']} "
                f"(status {p['status']}, {p['iterations']} iterations, {p['optimised']} of {p['starts']} starts optimised)"]
    out += [""]

    if res["unique_tokens"] > 0:
        out += ["## Repetition", "",
                f"The sweep limits each run to {res['unique_tokens']:.4g} unique tokens; at fixed compute, the number "
                "of epochs up to which more repetition still lowered the loss by more than 2 SE of the difference:", "",
                "| objective | C | epochs sampled | still gaining up to |", "|---|---|---|---|"]
        for obj in res["objectives"]:
            for row in res["per_objective"][obj]["epochs"]:
                lim = "no gain past the fewest epochs" if row["limit"] is None else f"{row['limit']:.3g} epochs"
                out.append(f"| {obj} | {row['budget']:.3g} | " + ", ".join(f"{e:.3g}" for e in row["epochs"]) + f" | {lim} |")
        out += [""]

    out += ["## Figures", ""] + [f"![{t}]({os.path.basename(p)})" for t, p in figs] + [""]

    out += ["## Runs", "", "| run | objective | C | N | tokens D | D / N | loss (nats/token) | SE |",
            "|---|---|---|---|---|---|---|---|"]
    for obj in res["objectives"]:
        r = res["per_objective"][obj]["runs"]
        for i in np.lexsort((r["n_params"], r["budget"])):
            out.append(f"| {r['name'][i]} | {obj} | {r['budget'][i]:.3g} | {r['n_params'][i]} | {r['tokens'][i]} | "
                       f"{r['tokens'][i] / r['n_params'][i]:.3g} | {r['estimate_nats_per_token'][i]:.4f} | "
                       f"{r['stderr_nats_per_token'][i]:.4f} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="The scaling report of a dlm sweep (sweep.h5 from `dlm-sweep collect`).")
    ap.add_argument("sweep_h5")
    ap.add_argument("--out", help="report folder (default: report/ next to sweep.h5)")
    ap.add_argument("--reps", type=int, default=1000, help="parametric-bootstrap replicates of the frontiers (1000)")
    ap.add_argument("--param-reps", type=int, default=100, help="bootstrap resamples of the parametric fit (100)")
    ap.add_argument("--level", type=float, default=0.9, help="interval level (0.9)")
    args = ap.parse_args(argv)
    if not 0 < args.level < 1 or args.reps < 10 or args.param_reps < 1:
        ap.error("--level must lie in (0, 1), --reps be at least 10 and --param-reps at least 1")
    try:
        runs = sweep_data.load_sweep(args.sweep_h5)
    except sweep_data.DataError as e:
        print(f"report: {e}", file=sys.stderr)
        return 1
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.sweep_h5)), "report")
    os.makedirs(out, exist_ok=True)
    print(f"report: {len(runs['name'])} runs in {args.sweep_h5}; fitting ({args.reps} replicates)", flush=True)
    res = analyse(runs, reps=args.reps, param_reps=args.param_reps, level=args.level)
    if not res["objectives"]:
        print(f"report: {args.sweep_h5}: no run is done: nothing to fit", file=sys.stderr)
        return 1
    figs = [("IsoFLOP profiles", os.path.join(out, "isoflop.png")),
            ("loss against compute", os.path.join(out, "frontier.png")),
            ("compute multiplier", os.path.join(out, "multiplier.png")),
            ("training curves", os.path.join(out, "curves.png"))]
    figures.isoflop(res, figs[0][1])
    figures.frontier(res, figs[1][1])
    figures.multiplier(res, figs[2][1])
    figures.curves(res, figs[3][1])
    if res["unique_tokens"] > 0:
        figs.append(("loss against repetition", os.path.join(out, "epochs.png")))
        figures.epochs(res, figs[-1][1])
    # written whole, then renamed: a crash never leaves half a report
    tmp = os.path.join(out, "report.md.tmp")
    with open(tmp, "w") as f:
        f.write(markdown(res, figs))
    os.replace(tmp, os.path.join(out, "report.md"))
    print(f"report: {os.path.join(out, 'report.md')} and {len(figs)} figures written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
