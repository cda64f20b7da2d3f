"""The sweep report's figures (PNG, matplotlib's Agg backend): IsoFLOP
profiles per objective, loss against compute with each objective's
frontier, the compute multiplier M(C), every run's training curve, and loss
against epochs for data-constrained sweeps. Each function takes the
analysis results (report.analyse) and a path."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 120


def _colours(n):
    return plt.cm.viridis(np.linspace(0.1, 0.85, max(n, 1)))


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _objective_row(res, path, xlabel, ylabel, draw):
    """One panel per objective, log x, a colour per budget: draw(ax, o,
    colours) fills a panel (colours: budget -> colour); the legend names the
    budgets."""
    objs = res["objectives"]
    fig, axes = plt.subplots(1, len(objs), figsize=(4.6 * len(objs), 3.8), sharey=True, squeeze=False)
    for ax, obj in zip(axes[0], objs):
        o = res["per_objective"][obj]
        budgets = np.unique(o["runs"]["budget"])
        colours = dict(zip(budgets, _colours(len(budgets))))
        draw(ax, o, colours)
        for C, col in colours.items():
            ax.plot([], [], color=col, label=f"C = {C:.0e}")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(obj)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=8)
    _save(fig, path)


def isoflop(res, path):
    def draw(ax, o, colours):
        r = o["runs"]
        for C, col in colours.items():
            m = r["budget"] == C
            n, y, s = r["n_params"][m], r["estimate_nats_per_token"][m], r["stderr_nats_per_token"][m]
            ax.errorbar(n, y, yerr=s, fmt="o", ms=4, color=col)
            prof = o["isoflop"].get(float(C))
            if prof and "fit" in prof:
                c0, c1, c2 = prof["fit"]["coef"]
                x = np.linspace(np.log(n.min()), np.log(n.max()), 100)
                ax.plot(np.exp(x), c0 + c1 * x + c2 * x * x, "-", color=col, lw=1)
                ax.plot(prof["fit"]["n_star"], prof["fit"]["l_star"], "*", color=col, ms=12, mec="k")
    _objective_row(res, path, "non-embedding parameters N", "eval loss (nats/token)", draw)


def frontier(res, path):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    objs = res["objectives"]
    for col, obj in zip(plt.cm.tab10(np.arange(len(objs))), objs):
        o = res["per_objective"][obj]
        r = o["runs"]
        ax.scatter(r["budget"], r["estimate_nats_per_token"], s=10, color=col, alpha=0.35)
        f = o["frontier"]
        if f is None:
            continue
        ax.errorbar(f["budgets"], f["l_star"], yerr=np.abs(np.array(f["l_star_ci"]).T - f["l_star"]),
                    fmt="*", ms=10, color=col, mec="k", label=f"{obj}: L* = {f['l_star_law'][0]:.3g} C^{f['l_star_law'][1]:.3f}")
        C = np.geomspace(f["budgets"].min() / 3, f["budgets"].max() * 3, 60)
        h, b = f["l_star_law"]
        ax.plot(C, h * C ** b, "-", color=col, lw=1.2)
        H, B = f["boot_laws"][2], f["boot_laws"][3]
        band = H[:, None] * C[None, :] ** B[:, None]
        lo, hi = np.quantile(band, [(1 - f["level"]) / 2, 1 - (1 - f["level"]) / 2], axis=0)
        ax.fill_between(C, lo, hi, color=col, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C (FLOPs)")
    ax.set_ylabel("eval loss (nats/token)")
    ax.set_title("loss against compute: IsoFLOP minima and frontiers")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    _save(fig, path)


def multiplier(res, path):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for col, (obj, m) in zip(plt.cm.tab10(np.arange(len(res["multiplier"]))), res["multiplier"].items()):
        curve = m["curve"]
        C, M, ext = curve["C"], curve["M"], curve["extrapolated"]
        inside = np.where(ext, np.nan, M)
        ax.plot(C, inside, "-", color=col, lw=1.8, label=f"{obj} vs ar")
        ax.plot(C, M, "--", color=col, lw=1)
        ax.fill_between(C, curve["lo"], curve["hi"], color=col, alpha=0.15, lw=0)
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("AR compute C (FLOPs)")
    ax.set_ylabel("M(C): diffusion compute / AR compute at equal loss")
    ax.set_title("compute multiplier (an upper bound; dashed: extrapolated)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if res["multiplier"]:
        ax.legend(fontsize=8)
    _save(fig, path)


def curves(res, path):
    def draw(ax, o, colours):
        for name, C, fpt, c in o["curves"]:
            if c is None:
                continue
            tokens_per_step = c["tokens"][-1] / max(c["step"][-1], 1)
            if "val_loss" in c:
                ax.plot(c["val_step"] * tokens_per_step * fpt, c["val_loss"], "-", color=colours[C], lw=0.9, alpha=0.8)
            else:
                ax.plot(c["tokens"] * fpt, c["loss"], "-", color=colours[C], lw=0.6, alpha=0.6)
    _objective_row(res, path, "training compute (FLOPs)",
                   "validation loss (nats/token; training loss without validation)", draw)


def epochs(res, path):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    objs = res["objectives"]
    for col, obj in zip(plt.cm.tab10(np.arange(len(objs))), objs):
        for k, row in enumerate(res["per_objective"][obj]["epochs"]):
            ax.errorbar(row["epochs"], row["loss"], yerr=row["se"], fmt="o-", ms=3, color=col, alpha=0.5 + 0.5 * k /
                        max(len(res["per_objective"][obj]["epochs"]), 1), label=f"{obj}, C = {row['budget']:.0e}")
    ax.set_xscale("log")
    ax.set_xlabel("epochs over the unique tokens")
    ax.set_ylabel("eval loss (nats/token)")
    ax.set_title("loss against repetition at fixed compute")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    _save(fig, path)
