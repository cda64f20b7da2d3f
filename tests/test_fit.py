"""tests/test_fit.py <case>: analysis/fits.py on synthetic sweeps generated
from known constants (run with Debian's /usr/bin/python3: numpy, scipy).
  isoflop     noiseless IsoFLOP profiles: minima, N*(C) and L*(C) power laws
              recovered to 1e-9 (the exact case); a minimum outside the sizes
              rejected with its message, one in the outer interval marked as
              an edge with sizes to add
  coverage    400 replicated noisy sweeps: the 90% bootstrap intervals of the
              exponents of N*(C) and L*(C) cover the truth in a fraction
              inside [0.85, 0.95]; 50% intervals of the same replicates cover
              near 0.5 (so the measure tells intervals apart)
  parametric  L(N, D) = E + A/N^alpha + B/D^beta recovered from noiseless
              (1e-4 relative) and low-noise (0.1%: 10%, E 1%) data; too few
              points refused
  multiplier  a diffusion frontier needing 16x AR's compute gives M(C) = 16
              at every budget, extrapolation marked outside the sampled ones
  report      analysis/report.py on a synthetic sweep.h5 (the isoflop case's
              profiles as `ar`, the same at 16x the compute as `mdlm`, a
              unique-token limit, one failed run): report.md prints the true
              exponents, M = 16, the failed run by name, the repetition
              table, and every figure is a PNG; a sweep.h5 without a needed
              column is refused naming the file and the column
"""
import os
import re
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
import fits  # noqa: E402

G, A_N, H, B_L, K = 0.08, 0.5, 40.0, -0.09, 0.06   # N* = G C^A_N, L* = H C^B_L, curvature K
BUDGETS = np.array([1e15, 1e16, 1e17, 1e18])


def sweep(rng=None, se=0.004, sizes=7, span=8.0, shift=0.0):
    """Runs of an IsoFLOP sweep whose profiles are exact parabolas in log N
    around the true N*(C), optionally off-centre by shift (in log N)."""
    b, n, y = [], [], []
    for C in BUDGETS:
        xs = np.log(G * C ** A_N)
        x = xs + shift + np.log(span) * (np.arange(sizes) / (sizes - 1) - 0.5)
        yy = H * C ** B_L + K * (x - xs) ** 2
        if rng is not None:
            yy = yy + rng.standard_normal(sizes) * se
        b += [C] * sizes
        n += list(np.exp(x))
        y += list(yy)
    return np.array(b), np.array(n), np.array(y), np.full(len(y), se)


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def case_isoflop():
    b, n, y, se = sweep()
    f = fits.frontier_fit(b, n, y, se, reps=50)
    for C, ns, ls in zip(f["budgets"], f["n_star"], f["l_star"]):
        check(abs(ns / (G * C ** A_N) - 1) < 1e-9 and abs(ls / (H * C ** B_L) - 1) < 1e-9,
              f"budget {C:g}: N* {ns:.6g}, L* {ls:.6g} exact")
    g, a = f["n_star_law"]
    h, bb = f["l_star_law"]
    check(abs(a - A_N) < 1e-9 and abs(g / G - 1) < 1e-7, f"N*(C) = {g:.6g} C^{a:.9f}")
    check(abs(bb - B_L) < 1e-9 and abs(h / H - 1) < 1e-7, f"L*(C) = {h:.6g} C^{bb:.9f}")
    check(f["tau2"] == 0.0 and not f["edge"], "no scatter beyond the evaluation error, no edge")
    # off-centre by more than half the span: every minimum outside, rejected
    b, n, y, se = sweep(shift=1.2)
    try:
        fits.isoflop_fit(n[:7], y[:7], se[:7], budget=b[0])
        check(False, "a minimum outside the sizes is rejected")
    except fits.FitError as e:
        check("lies below the smallest sampled size" in str(e), f"rejected: {e}")
    b, n, y, se = sweep(shift=0.9)   # inside, in the outermost interval
    f = fits.isoflop_fit(n[:7], y[:7], se[:7], budget=b[0])
    check(f["edge"] and len(f["suggest"]) == 2 and f["suggest"][0] < n[:7].min(),
          f"edge marked, sizes to add {f['suggest']}")


def coverage(level, reps=200, sweeps=400):
    rng = np.random.default_rng(20261207)
    hit_a = hit_b = 0
    for i in range(sweeps):
        b, n, y, se = sweep(rng)
        f = fits.frontier_fit(b, n, y, se, reps=reps, level=level, seed=i + 1)
        hit_a += f["a_ci"][0] <= A_N <= f["a_ci"][1]
        hit_b += f["b_ci"][0] <= B_L <= f["b_ci"][1]
    return hit_a / sweeps, hit_b / sweeps


def case_coverage():
    ca, cb = coverage(0.9)
    check(0.85 <= ca <= 0.95, f"90% intervals of N*(C)'s exponent cover {ca:.3f} of 400 sweeps")
    check(0.85 <= cb <= 0.95, f"90% intervals of L*(C)'s exponent cover {cb:.3f} of 400 sweeps")
    ha, hb = coverage(0.5, reps=100, sweeps=400)
    check(0.38 <= ha <= 0.62 and 0.38 <= hb <= 0.62, f"50% intervals cover {ha:.3f}, {hb:.3f}")


def case_parametric():
    E, A, al, B, be = 1.69, 406.4, 0.34, 410.7, 0.28
    N = np.repeat(np.logspace(6, 9, 6), 6)
    D = np.tile(np.logspace(8, 11, 6), 6)
    L = E + A / N ** al + B / D ** be
    p = fits.parametric_fit(N, D, L)
    rel = max(abs(p["E"] / E - 1), abs(p["A"] / A - 1), abs(p["alpha"] / al - 1), abs(p["B"] / B - 1),
              abs(p["beta"] / be - 1))
    check(rel < 1e-4 and p["converged"], f"noiseless: E {p['E']!r} A {p['A']!r} alpha {p['alpha']!r} "
          f"B {p['B']!r} beta {p['beta']!r} (worst {rel:.2e}; {p['message']})")
    rng = np.random.default_rng(3)
    q = fits.parametric_fit(N, D, L * np.exp(rng.standard_normal(len(L)) * 1e-3))
    rel = max(abs(q["A"] / A - 1), abs(q["alpha"] / al - 1), abs(q["B"] / B - 1), abs(q["beta"] / be - 1))
    check(rel < 0.10 and abs(q["E"] / E - 1) < 0.01,
          f"0.1% noise: E {q['E']:.4f} A {q['A']:.1f} alpha {q['alpha']:.4f} B {q['B']:.1f} beta {q['beta']:.4f}")
    try:
        fits.parametric_fit(N[:8], D[:8], L[:8])
        check(False, "8 runs refused")
    except fits.FitError as e:
        check("not enough to identify" in str(e), f"refused: {e}")


def case_multiplier():
    b, n, y, se = sweep()
    ar = fits.frontier_fit(b, n, y, se, reps=50)
    # the same profiles at 16x the compute: L_d*(C) = L_ar*(C / 16)
    diff = fits.frontier_fit(b * 16.0, n, y, se, reps=50)
    C = np.array([1e16, 1e17, 1e18, 1e19])
    m = fits.compute_multiplier(diff, ar, C)
    check(np.allclose(m["M"], 16.0, rtol=1e-7), f"M(C) = {m['M']}")
    check(list(m["extrapolated"]) == [False, False, False, True], f"extrapolated {list(m['extrapolated'])}")


def write_sweep(path, columns, attrs):
    import h5py
    with h5py.File(path, "w") as f:
        g = f.create_group("runs")
        for k, v in columns.items():
            g[k] = np.array(v, dtype=h5py.string_dtype()) if isinstance(v[0], str) else np.asarray(v)
        for k, v in attrs.items():
            f.attrs[k] = v


def case_report():
    import report
    b, n, y, se = sweep()
    cols = dict(name=[], objective=[], budget=[], n_params=[], tokens=[], state=[], detail=[],
                estimate_nats_per_token=[], stderr_nats_per_token=[], flops_per_token=[])
    for obj, scale in (("ar", 1.0), ("mdlm", 16.0)):
        for k in range(len(b)):
            C = b[k] * scale
            cols["name"].append(f"{obj}_{k}")
            cols["objective"].append(obj)
            cols["budget"].append(C)
            cols["n_params"].append(int(round(n[k])))
            cols["tokens"].append(int(C / (6 * n[k])))
            cols["state"].append("done")
            cols["detail"].append("")
            cols["estimate_nats_per_token"].append(y[k])
            cols["stderr_nats_per_token"].append(se[k])
            cols["flops_per_token"].append(6 * n[k])
    for k, v in dict(name="ar_failed", objective="ar", budget=1e15, n_params=1000, tokens=10, state="failed",
                     detail="exit 1", estimate_nats_per_token=np.nan, stderr_nats_per_token=np.nan,
                     flops_per_token=6000.0).items():
        cols[k].append(v)
    # N rounded to whole parameters moves the minima by < 1e-6 relative
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sweep.h5")
        write_sweep(path, cols, dict(name="synthetic", unique_tokens=1e9, n_definition="N", flops_definition="6N"))
        check(report.main([path, "--reps", "50", "--param-reps", "3"]) == 0, "report.py exits 0")
        md = open(os.path.join(tmp, "report", "report.md")).read()
        row = re.search(r"^\| ar \| (\S+) C\^(\S+) \| .*? \| (\S+) C\^(\S+) \|", md, re.M)
        check(row is not None and abs(float(row[2]) - A_N) < 1e-6 and abs(float(row[4]) - B_L) < 1e-6,
              f"ar's exponents printed as {row and (row[2], row[4])} (true {A_N}, {B_L})")
        check("| 1e+18 | 16 |" in md and "extrapolated" in md, "M(C) = 16 at C = 1e18, extrapolation marked")
        check("`ar_failed`: failed (exit 1)" in md, "the failed run named with its state")
        check("## Repetition" in md and "still gaining up to" in md, "the repetition table")
        for fig in ("isoflop", "frontier", "multiplier", "curves", "epochs"):
            with open(os.path.join(tmp, "report", fig + ".png"), "rb") as f:
                check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"{fig}.png is a PNG")
        del cols["stderr_nats_per_token"]
        write_sweep(path, cols, {})
        try:
            report.sweep_data.load_sweep(path)
            check(False, "a sweep.h5 without stderr refused")
        except report.sweep_data.DataError as e:
            check(path in str(e) and "stderr_nats_per_token" in str(e), f"refused: {e}")


if __name__ == "__main__":
    {"isoflop": case_isoflop, "coverage": case_coverage, "parametric": case_parametric,
     "multiplier": case_multiplier, "report": case_report}[sys.argv[1]]()
    print(f"fit {sys.argv[1]}: ok")
