"""Scaling-law fits for dlm sweeps: IsoFLOP parabolas, power laws in compute,
the parametric L(N, D) = E + A/N^alpha + B/D^beta, and the compute multiplier
between two objectives, with parametric-bootstrap intervals that include each
run's evaluation standard error. numpy and scipy only; no plotting here.

Conventions: N is the non-embedding parameter count, C the budget in FLOPs,
losses in nats/token; logs are natural.
"""
import numpy as np
from scipy import optimize


class FitError(ValueError):
    """A fit that cannot be trusted, with the reason in its message."""


# ---- IsoFLOP parabolas --------------------------------------------------

def _quad_fit(x, y, w):
    """Weighted least squares of y on (1, x, x^2): coefficients (c0, c1, c2)."""
    X = np.stack([np.ones_like(x), x, x * x], axis=-1)
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    return beta


def isoflop_fit(n_params, loss, se=None, budget=None):
    """A quadratic of loss in log N for one budget; its minimum.

    Returns a dict: log_n_star, n_star, l_star, coef (c0, c1, c2), edge (the
    minimum lies in the outermost interval of the sampled sizes), suggest
    (sizes to add when at an edge). Raises FitError when the parabola opens
    downwards or its minimum falls outside the sampled sizes."""
    x = np.log(np.asarray(n_params, float))
    y = np.asarray(loss, float)
    w = np.ones_like(y) if se is None else 1.0 / np.maximum(np.asarray(se, float), 1e-12) ** 2
    what = f"budget {budget:g}" if budget is not None else "an IsoFLOP profile"
    if len(x) < 3:
        raise FitError(f"{what}: {len(x)} sizes; a parabola needs at least 3")
    c0, c1, c2 = _quad_fit(x, y, w)
    if not c2 > 0:
        raise FitError(f"{what}: the parabola opens downwards (curvature {c2:.3g}): no minimum")
    xs = -c1 / (2 * c2)
    lo, hi = x.min(), x.max()
    if not lo <= xs <= hi:
        side = "below the smallest" if xs < lo else "above the largest"
        raise FitError(f"{what}: the minimum N = {np.exp(xs):.4g} lies {side} sampled size "
                       f"({np.exp(lo):.4g} .. {np.exp(hi):.4g}); add sizes there")
    xo = np.sort(x)
    step = np.median(np.diff(xo)) if len(xo) > 1 else 0.0
    edge = xs < xo[1] or xs > xo[-2]
    suggest = []
    if edge:
        base = xo[0] if xs < xo[1] else xo[-1]
        sign = -1 if xs < xo[1] else 1
        suggest = [float(np.exp(base + sign * k * step)) for k in (1, 2)]
    return dict(log_n_star=float(xs), n_star=float(np.exp(xs)), l_star=float(c0 + c1 * xs + c2 * xs * xs),
                coef=(float(c0), float(c1), float(c2)), edge=bool(edge), suggest=suggest)


def _interval(v, level):
    """The central percentile interval of the finite values of v (NaNs when none)."""
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return (float("nan"), float("nan"))
    return tuple(float(t) for t in np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2]))


def power_law_fit(c, y):
    """log y = log k + e log c by least squares: (k, e)."""
    lc, ly = np.log(np.asarray(c, float)), np.log(np.asarray(y, float))
    e, lk = np.polyfit(lc, ly, 1)
    return float(np.exp(lk)), float(e)


# ---- one objective's frontier, with a parametric bootstrap ----------------

def _profiles(budget, n_params, loss, se):
    """Per budget (ascending): arrays of log N, loss, se."""
    out = []
    for C in np.unique(budget):
        m = budget == C
        order = np.argsort(n_params[m])
        out.append((float(C), np.log(n_params[m][order]), loss[m][order], se[m][order]))
    return out


def _batched_minima(x, Y, w):
    """Weighted quadratics of every row of Y on x: (log N*, L*), NaN where
    the minimum is no minimum or outside [min x, max x]."""
    X = np.stack([np.ones_like(x), x, x * x], axis=-1) * np.sqrt(w)[:, None]
    pinv = np.linalg.pinv(X)                          # (3, n)
    B = (Y * np.sqrt(w)) @ pinv.T                     # (R, 3)
    c0, c1, c2 = B[:, 0], B[:, 1], B[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = -c1 / (2 * c2)
    ok = (c2 > 0) & (xs >= x.min()) & (xs <= x.max())
    ls = c0 + c1 * xs + c2 * xs * xs
    return np.where(ok, xs, np.nan), np.where(ok, ls, np.nan)


def isoflop_minima(budget, n_params, loss, se, reps=1000, level=0.9, seed=1):
    """Every budget's IsoFLOP minimum with percentile intervals from a
    parametric bootstrap: each replicate redraws every run's loss around its
    budget's fitted parabola with variance se^2 + tau^2 (tau^2: the scatter
    beyond the evaluation error, pooled over budgets, 0 when there is none)
    and refits. Budgets whose fit is rejected are listed in 'rejected' with
    the reason. Returns the per-budget results and the replicates (XS: log
    N*, LS: L*; NaN where a replicate has no minimum inside the sizes)."""
    budget, n_params = np.asarray(budget, float), np.asarray(n_params, float)
    loss, se = np.asarray(loss, float), np.asarray(se, float)
    per, rejected, resid, dof = [], [], [], 0
    for C, x, y, s in _profiles(budget, n_params, loss, se):
        try:
            f = isoflop_fit(np.exp(x), y, s, budget=C)
        except FitError as e:
            rejected.append((C, str(e)))
            continue
        c0, c1, c2 = f["coef"]
        resid.append((y - (c0 + c1 * x + c2 * x * x), s))
        dof += len(x) - 3
        per.append(dict(budget=C, x=x, y=y, se=s, fit=f))
    ss = sum(float(np.sum(r * r - s * s)) for r, s in resid)
    tau2 = max(0.0, ss / dof) if dof > 0 else 0.0
    rng = np.random.default_rng(seed)
    XS = np.empty((reps, len(per)))
    LS = np.empty((reps, len(per)))
    for j, p in enumerate(per):
        c0, c1, c2 = p["fit"]["coef"]
        x = p["x"]
        mean = c0 + c1 * x + c2 * x * x
        sd = np.sqrt(p["se"] ** 2 + tau2)
        Y = mean + rng.standard_normal((reps, len(x))) * sd
        XS[:, j], LS[:, j] = _batched_minima(x, Y, 1.0 / sd ** 2)
    good = np.all(np.isfinite(XS), axis=1)
    for j, p in enumerate(per):
        p["n_star_ci"] = _interval(np.exp(XS[:, j]), level)
        p["l_star_ci"] = _interval(LS[:, j], level)
        p["boot_valid"] = float(np.isfinite(XS[:, j]).mean())
    return dict(profiles=per, rejected=rejected, tau2=tau2, XS=XS, LS=LS, good=good, level=level, reps=reps)


def frontier_fit(budget, n_params, loss, se, reps=1000, level=0.9, seed=1):
    """IsoFLOP minima per budget (isoflop_minima) and the power laws
    N*(C) = g C^a and L*(C) = h C^b (frontier_from_minima)."""
    return frontier_from_minima(isoflop_minima(budget, n_params, loss, se, reps=reps, level=level, seed=seed))


def frontier_from_minima(m):
    """The power laws N*(C) = g C^a and L*(C) = h C^b through the minima of
    isoflop_minima, with percentile intervals from its bootstrap replicates:
    a replicate in which every budget keeps a minimum inside its sizes
    refits both laws. Rejected budgets are left out of the power laws;
    fewer than 2 left raises FitError."""
    per, rejected, reps, level = m["profiles"], m["rejected"], m["reps"], m["level"]
    if len(per) < 2:
        raise FitError(f"{len(per)} budget(s) with an IsoFLOP minimum inside their sizes: a power law in C "
                       f"needs at least 2" + "".join(f"; {msg}" for _, msg in rejected))
    Cs = np.array([p["budget"] for p in per])
    ns = np.array([p["fit"]["n_star"] for p in per])
    ls = np.array([p["fit"]["l_star"] for p in per])
    g, a = power_law_fit(Cs, ns)
    h, b = power_law_fit(Cs, ls)
    XS, LS, good = m["XS"], m["LS"], m["good"]
    lc = np.log(Cs)
    P = np.linalg.pinv(np.stack([np.ones_like(lc), lc], axis=1))
    ba = XS[good] @ P.T                      # log g, a
    bb = np.log(LS[good]) @ P.T              # log h, b
    ci = lambda v: _interval(v, level)
    return dict(
        budgets=Cs, n_star=ns, l_star=ls, profiles=per, rejected=rejected, tau2=m["tau2"],
        n_star_law=(g, a), l_star_law=(h, b),
        a_ci=ci(ba[:, 1]), g_ci=ci(np.exp(ba[:, 0])), b_ci=ci(bb[:, 1]), h_ci=ci(np.exp(bb[:, 0])),
        n_star_ci=[p["n_star_ci"] for p in per], l_star_ci=[p["l_star_ci"] for p in per],
        boot_laws=(np.exp(ba[:, 0]), ba[:, 1], np.exp(bb[:, 0]), bb[:, 1]),
        boot_valid=float(good.mean()), reps=reps, level=level,
        edge=[p["budget"] for p in per if p["fit"]["edge"]],
    )


# ---- the compute multiplier ----------------------------------------------

def compute_multiplier(diff, ar, C, level=0.9):
    """M(C): the factor by which the diffusion objective's compute must grow
    to reach the AR frontier's loss at budget C, from the two frontiers'
    power laws L*(C) = h C^b (fits from frontier_fit), with percentile
    intervals over their bootstrap replicates (paired by index). Since the
    diffusion loss is an upper bound, so is M. 'extrapolated' marks C whose
    AR budget or whose matching diffusion budget lies outside the budgets
    each objective sampled."""
    C = np.asarray(C, float)
    hd, bd = diff["l_star_law"]
    ha, ba = ar["l_star_law"]
    m = ((ha * C ** ba) / hd) ** (1.0 / bd) / C
    Hd, Bd = diff["boot_laws"][2], diff["boot_laws"][3]
    Ha, Ba = ar["boot_laws"][2], ar["boot_laws"][3]
    r = min(len(Hd), len(Ha))
    M = ((Ha[:r, None] * C[None, :] ** Ba[:r, None]) / Hd[:r, None]) ** (1.0 / Bd[:r, None]) / C[None, :]
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    lo, hi = np.quantile(M, q, axis=0)
    cd = m * C
    tol = 1 + 1e-9  # a budget at a sampled end is inside
    ext = ((C * tol < ar["budgets"].min()) | (C > ar["budgets"].max() * tol) |
           (cd * tol < diff["budgets"].min()) | (cd > diff["budgets"].max() * tol))
    return dict(C=C, M=m, lo=lo, hi=hi, extrapolated=ext)


# ---- parametric L(N, D) ---------------------------------------------------

def _huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _lse_objective(lN, lD, lL, delta):
    """The Huber loss of log L against LSE(a - alpha log N, b - beta log D, e)
    and its gradient in (a, b, e, alpha, beta)."""
    def objective(p):
        a, b, e, al, be = p
        t = np.stack([a - al * lN, b - be * lD, np.full_like(lN, e)])
        mx = t.max(axis=0)
        s = np.exp(t - mx)
        pred = mx + np.log(s.sum(axis=0))
        r = pred - lL
        w = s / s.sum(axis=0)
        dr = np.where(np.abs(r) <= delta, r, delta * np.sign(r))
        grad = np.array([np.sum(dr * w[0]), np.sum(dr * w[1]), np.sum(dr * w[2]),
                         -np.sum(dr * w[0] * lN), -np.sum(dr * w[1] * lD)])
        return float(np.sum(_huber(r, delta))), grad
    return objective


# the starting grid in (a, b, e, alpha, beta), as Hoffmann et al. and Besiroglu et al.
_GRID = np.array(np.meshgrid([0.0, 5.0, 10.0, 15.0, 20.0], [0.0, 5.0, 10.0, 15.0, 20.0], [-1.0, 0.0, 1.0],
                             [0.2, 0.5, 0.8], [0.2, 0.5, 0.8], indexing="ij")).reshape(5, -1).T
_BOUNDS = [(-50, 60), (-50, 60), (-10, 10), (0, 5), (0, 5)]


def _grid_losses(lN, lD, lL, delta):
    """The Huber loss at every grid start, vectorised over the grid."""
    a, b, e, al, be = (_GRID[:, k:k + 1] for k in range(5))
    t = np.stack([a - al * lN, b - be * lD, np.broadcast_to(e, (len(_GRID), len(lN)))])
    mx = t.max(axis=0)
    pred = mx + np.log(np.exp(t - mx).sum(axis=0))
    return _huber(pred - lL, delta).sum(axis=1)


def parametric_fit(n_params, tokens, loss, delta=1e-3, min_points=10, optimise=25, x0=None):
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al.'s approach 3, as
    Besiroglu et al. redo it): the Huber loss (delta) of log L against
    LSE(a - alpha log N, b - beta log D, e), minimised by L-BFGS-B run to
    convergence from the 'optimise' best of a 675-point grid of starts
    (every grid point is evaluated, the best by Huber loss are optimised:
    optimising all 675 took minutes per fit), plus x0 when given (a
    bootstrap's warm start). Returns the constants unrounded with the optimizer's
    status and message, or raises FitError when the data cannot identify
    the five constants (fewer than min_points runs, or fewer than 3
    distinct N or D)."""
    N, D, L = (np.asarray(v, float) for v in (n_params, tokens, loss))
    if len(L) < min_points or len(np.unique(N)) < 3 or len(np.unique(D)) < 3:
        raise FitError(f"{len(L)} runs with {len(np.unique(N))} distinct N and {len(np.unique(D))} "
                       f"distinct D: not enough to identify E, A, alpha, B, beta (need >= {min_points} runs "
                       f"and 3 of each)")
    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    objective = _lse_objective(lN, lD, lL, delta)
    starts = list(_GRID[np.argsort(_grid_losses(lN, lD, lL, delta), kind="stable")[:optimise]])
    if x0 is not None:
        starts.append(np.asarray(x0, float))
    best = None
    for p0 in starts:
        res = optimize.minimize(objective, p0, jac=True, method="L-BFGS-B", bounds=_BOUNDS,
                                options=dict(maxiter=20000, ftol=1e-15, gtol=1e-13))
        if best is None or res.fun < best.fun:
            best = res
    a, b, e, al, be = best.x
    return dict(E=float(np.exp(e)), A=float(np.exp(a)), alpha=float(al), B=float(np.exp(b)), beta=float(be),
                huber=float(best.fun), converged=bool(best.success), status=int(best.status),
                message=str(best.message), iterations=int(best.nit), starts=len(_GRID),
                optimised=len(starts), x=best.x.copy())


def parametric_bootstrap(n_params, tokens, loss, fit, reps=100, level=0.9, seed=1, delta=1e-3, optimise=5):
    """Percentile intervals of E, A, alpha, B, beta from a bootstrap over
    runs (Besiroglu et al.): resample the runs with replacement, refit (the
    'optimise' best grid starts plus the full fit as a warm start). Returns
    {name: (lo, hi)} and 'valid' (the fraction of replicates that could be
    fitted: a resample with under 3 distinct N or D cannot)."""
    N, D, L = (np.asarray(v, float) for v in (n_params, tokens, loss))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(reps):
        i = rng.integers(0, len(L), len(L))
        try:
            p = parametric_fit(N[i], D[i], L[i], delta=delta, min_points=1, optimise=optimise, x0=fit["x"])
        except FitError:
            continue
        vals.append([p["E"], p["A"], p["alpha"], p["B"], p["beta"]])
    out = dict(valid=len(vals) / reps, reps=reps, level=level)
    if vals:
        v = np.array(vals)
        for k, name in enumerate(("E", "A", "alpha", "B", "beta")):
            out[name] = _interval(v[:, k], level)
    return out


def parametric_predict(p, n_params, tokens):
    N, D = np.asarray(n_params, float), np.asarray(tokens, float)
    return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]


# ---- data-constrained sweeps ----------------------------------------------

def repetition_limit(epochs, loss, se):
    """At fixed compute, runs at increasing epochs over the same unique
    data: the largest number of epochs up to which more repetition still
    lowered the loss by more than 2 standard errors of the difference
    (None when the first step already did not)."""
    order = np.argsort(epochs)
    e, y, s = (np.asarray(v, float)[order] for v in (epochs, loss, se))
    best, limit = y[0], None
    for k in range(1, len(e)):
        if best - y[k] > 2 * np.hypot(s[k], s[k - 1]):
            limit, best = float(e[k]), y[k]
        else:
            break
    return limit
