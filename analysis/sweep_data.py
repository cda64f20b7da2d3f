"""Reading a dlm-sweep's results: sweep.h5 (written by `dlm-sweep collect`)
and each run's run.h5 (training and validation curves). h5py and numpy only.
"""
import os

import h5py
import numpy as np

# the /runs columns the analysis needs; collect writes more
REQUIRED = ("name", "objective", "budget", "n_params", "tokens", "flops_per_token", "state",
            "estimate_nats_per_token", "stderr_nats_per_token")


class DataError(ValueError):
    """A sweep file the analysis cannot use, with the file and what is wrong."""


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load_sweep(path):
    """The runs of a sweep as a dict of numpy arrays (text columns as str),
    plus 'attrs' (the file's attributes as text or numbers) and 'dir' (the
    folder holding the run folders)."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: cannot open as HDF5 ({e})") from None
    with f:
        if "runs" not in f:
            raise DataError(f"{path}: no /runs group (expected the output of `dlm-sweep collect`)")
        g = f["runs"]
        missing = [c for c in REQUIRED if c not in g]
        if missing:
            raise DataError(f"{path}: /runs lacks column(s) {', '.join(missing)}")
        n = g["name"].shape[0]
        runs = {}
        for k in g:
            v = g[k][()]
            if v.shape != (n,):
                raise DataError(f"{path}: /runs/{k} has shape {v.shape}, expected ({n},)")
            runs[k] = np.array([_text(x) for x in v]) if v.dtype.kind in "OSU" else np.asarray(v)
        attrs = {k: (_text(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}
    runs["attrs"] = attrs
    runs["dir"] = os.path.dirname(os.path.abspath(path))
    return runs


def select(runs, mask):
    """The rows of runs where mask holds (attrs and dir kept)."""
    return {k: (v[mask] if isinstance(v, np.ndarray) else v) for k, v in runs.items()}


def load_curves(run_dir):
    """A run's training curve: dict of step, tokens, loss (training) and
    val_step, val_loss, val_stderr; None when the run has no run.h5."""
    path = os.path.join(run_dir, "run.h5")
    if not os.path.exists(path):
        return None
    try:
        with h5py.File(path, "r") as f:
            out = dict(step=f["train/step"][()], tokens=f["train/tokens"][()], loss=f["train/loss"][()])
            if "val" in f and "loss" in f["val"]:
                out.update(val_step=f["val/step"][()], val_loss=f["val/loss"][()], val_stderr=f["val/stderr"][()])
            return out
    except (OSError, KeyError) as e:
        raise DataError(f"{path}: not a dlm run file with /train/step, tokens, loss ({e})") from None
