"""Section 1: the floor, seconds per forward at each batch size (the best is the unit of the others)."""
from __future__ import annotations

import numpy as np

from ..context import Ctx, backend_of
from ..timing import measure

BATCH_SIZES = (1, 2, 4, 8, 16, 32)

def bench_floor(c: Ctx) -> None:
    net = c.det.network
    crops = [np.roll(c.crop, 3 * i, axis=1) for i in range(max(BATCH_SIZES))]
    xb = net.preprocess(crops)
    fns = {b: (lambda b=b: net.probabilities(xb[:b], batch_size=b)) for b in BATCH_SIZES}
    stats = measure(fns, c.reps(7, 3))
    per = {b: s.median / b for b, s in stats.items()}
    c.best_batch = min(per, key=per.get)
    c.floor_s = per[c.best_batch]
    c.forward1 = stats[1]
    for b, s in stats.items():
        how = "torch, channels_last, inference_mode" if backend_of(net) == "torch" else backend_of(net)
        c.report.row("1 floor", f"forward, batch {b} ({how})", s,
                     f"{per[b] * 1e3:.1f} ms/image = {per[b] / c.floor_s:.2f}x floor"
                     + ("  <- best: the floor" if b == c.best_batch else ""))
    c.report.info.update(floor_ms_per_forward=round(c.floor_s * 1e3, 3), best_batch=c.best_batch)
