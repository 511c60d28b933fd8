"""Section 2: the grid occlusion map, ours against a per-cell loop and Captum."""
from __future__ import annotations

import numpy as np

from deepfake import explain

from .. import alternatives as alt
from ..context import Ctx
from ..timing import measure

def bench_grid(c: Ctx, grid: int = 16) -> None:
    net = c.det.network
    n = grid * grid + 1
    maps = {}
    methods = {"ours": lambda x, g, b: explain.occlusion_changes(net.probabilities, x, g, b)[1],
               "loop": lambda x, g, b: alt.loop_occlusion(net.probabilities, x, g, b),
               "captum": lambda x, g, b: alt.captum_occlusion(net.probabilities, x, g, b)}
    keep = {k: (lambda k=k: maps.__setitem__(k, methods[k](c.x1, grid, "mean"))) for k in methods}
    ours = measure({"ours": keep["ours"]}, c.reps(5))["ours"]
    slow = measure({"loop": keep["loop"], "captum": keep["captum"]}, c.reps(3, 1), warmup=0)
    diff = max(float(np.abs(maps["ours"] - maps[k]).max()) for k in ("loop", "captum"))
    floor = n * c.floor_s
    r = c.report
    r.row("2 grid", f"ours, {grid}x{grid} ({n} forwards, batched)", ours, f"{ours.median / floor:.2f}x floor")
    r.row("2 grid", "per-cell Python loop (seed's method)", slow["loop"],
          f"{slow['loop'].median / floor:.2f}x floor, {slow['loop'].median / ours.median:.2f}x ours")
    r.row("2 grid", "Captum Occlusion, default settings", slow["captum"],
          f"{slow['captum'].median / floor:.2f}x floor, {slow['captum'].median / ours.median:.2f}x ours")
    r.row("2 grid", "max |difference| between the three maps", None, f"{diff:.2e}", max_abs_diff=diff)
    r.target(f"grid {grid}x{grid}: ours / floor ({n} forwards at batch {c.best_batch})", ours.median / floor,
             1.25, "<=", "x", "per-batch mask building and the softmax/copy around each forward",
             profile=lambda: explain.occlusion_changes(net.probabilities, c.x1, grid, "mean"))
    why = (f"a batch-1 forward costs only {c.forward1.median / c.floor_s:.2f}x the floor on this backend, so "
           "batching the 257 forwards cannot gain 2x: the loop pays per-call overhead, not slower forwards")
    r.target("grid: per-cell loop / ours", slow["loop"].median / ours.median, 2.0, ">=", "x", why)
    r.target("grid: Captum Occlusion / ours", slow["captum"].median / ours.median, 2.0, ">=", "x",
             why + "; Captum adds its own bookkeeping per window")
    r.target("grid: max |difference| of the three maps", diff, 1e-4, "<=")
