"""Section 7: how time grows with the grid size, the frames sampled and the pixels per frame."""
from __future__ import annotations

import numpy as np

from deepfake import explain

from .. import inputs
from ..context import Ctx, analyze_stats
from ..timing import measure

def growth(xs, ys) -> str:
    slope = np.polyfit(np.log(xs), np.log(ys), 1)[0]
    return f"time ~ n^{slope:.2f}"


def linear(xs, ys) -> tuple[float, float]:
    """Least-squares time = a + b * x: (a, b)."""
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(a), float(b)


def bench_scaling(c: Ctx) -> None:
    net, r = c.det.network, c.report
    grids = (4, 8, 16, 32)
    st = measure({g: (lambda g=g: explain.occlusion_changes(net.probabilities, c.x1, g, "mean")) for g in grids},
                 c.reps(3, 1))
    cells = [g * g + 1 for g in grids]
    for g, n in zip(grids, cells):
        r.row("7 scaling", f"grid {g}x{g} ({n} forwards)", st[g], f"{st[g].median / (n * c.floor_s):.2f}x floor")
    a, b = linear(cells, [st[g].median for g in grids])
    r.row("7 scaling", "growth with forwards (grid^2 + 1)", None,
          growth(cells, [st[g].median for g in grids]) + f": linear, {b * 1e3:.1f} ms per occluded copy "
          f"({b / c.floor_s:.2f}x floor): every cell is one forward pass, batched")
    path = inputs.make_clip("1080p", 10.0)
    counts = (8, 16, 32, 64)
    ts = {}
    for n in counts:
        ts[n], _ = analyze_stats(c, path, n, c.reps(3, 1))
        r.row("7 scaling", f"video 10 s 1080p, {n} frames", ts[n], f"{ts[n].median / n * 1e3:.0f} ms/frame")
    a, b = linear(counts, [ts[n].median for n in counts])
    r.row("7 scaling", "growth with frames sampled", None,
          growth(counts, [ts[n].median for n in counts]) + f": {a:.2f} s fixed + {b * 1e3:.0f} ms per frame; the "
          "fixed part is decoding the clip up to its last sample (needed whatever the count), the per-frame part "
          "is face detection + a forward + colour conversion")
    res = {}
    secs = 2.0 if c.quick else 5.0
    for name in inputs.RESOLUTIONS:
        clip = inputs.make_clip(name, secs)
        res[name], _ = analyze_stats(c, clip, 32, c.reps(3, 1))
        r.row("7 scaling", f"video {secs:g} s {name}, 32 frames", res[name], "")
    pixels = [w * h for w, h in inputs.RESOLUTIONS.values()]
    a, b = linear([p / 1e6 for p in pixels], [res[k].median for k in inputs.RESOLUTIONS])
    r.row("7 scaling", "growth with pixels per frame", None,
          growth(pixels, [res[k].median for k in inputs.RESOLUTIONS]) + f": {a:.2f} s + {b * 1e3:.0f} ms per "
          "megapixel; decoding, colour conversion and the detection resize grow with pixels, while detection "
          "(capped at 640 px) and the forwards (224 px crops) do not")
