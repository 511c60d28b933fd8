"""Section 8: inference backends (eager, onnxruntime, int8, torch.compile): speed and agreement."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from deepfake import media
from support.paths import SHARED_DATA

from .. import alternatives as alt
from ..context import Ctx, face_crop
from ..timing import Stat, measure

def shared_crops(c: Ctx, limit: int) -> tuple[list[np.ndarray], list[str]]:
    """Face crops of `limit` images (a third from each image folder) and 4 frames of each video."""
    files = []
    for sub in ("images/ciplab/val", "images/stylegan", "images/dfdc_faces"):
        found = sorted(p for p in (SHARED_DATA / sub).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        step = max(1, len(found) // max(1, limit // 3))
        files += found[::step][:limit // 3]
    crops, names = [], []
    for p in files:
        crops.append(face_crop(c.det, media.load_image(p)))
        names.append(str(p.relative_to(SHARED_DATA)))
    for p in sorted((SHARED_DATA / "videos").rglob("*.mp4"))[: (2 if c.quick else 20)]:
        _, frames = media.sample_frames(p, 4)
        for f in frames:
            crops.append(face_crop(c.det, f.rgb))
            names.append(f"{p.relative_to(SHARED_DATA)}#{f.index}")
    return crops, names


def bench_backends(c: Ctx, compile_: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as workdir:  # the exported models go with it
        backends_in(c, compile_, Path(workdir))


def backends_in(c: Ctx, compile_: bool, workdir: Path) -> None:
    net, r = c.det.network, c.report
    b = c.best_batch
    t0 = time.perf_counter()
    fp32 = alt.export_onnx(net.net, workdir / "model.onnx", net.input_size)
    r.row("8 backend", "ONNX export (once per weights; cached by Network)", Stat([time.perf_counter() - t0]), "")
    backends = {"eager": alt.eager_probabilities(net.net, c.det.config.fake_index),
                "onnxruntime": alt.ort_probabilities(fp32, c.det.config.fake_index)}
    try:
        int8 = alt.quantize_int8(fp32, workdir / "model.int8.onnx")
        backends["onnxruntime int8"] = alt.ort_probabilities(int8, c.det.config.fake_index)
    except Exception as exc:
        r.row("8 backend", "onnxruntime int8 dynamic quantisation", None, f"skipped: {exc.__class__.__name__}: {exc}")
    if compile_:
        try:
            t0 = time.perf_counter()
            comp = alt.compiled_probabilities(net.net, c.det.config.fake_index)
            comp(net.preprocess([c.crop] * b))
            backends["torch.compile"] = comp
            r.row("8 backend", "torch.compile first call (compilation)", Stat([time.perf_counter() - t0]), "")
        except Exception as exc:
            r.row("8 backend", "torch.compile", None, f"skipped: {exc.__class__.__name__}: {str(exc)[:120]}")
    xb = net.preprocess([np.roll(c.crop, 3 * i, axis=1) for i in range(b)])
    st = measure({k: (lambda f=f: f(xb)) for k, f in backends.items()}, c.reps(9, 3))
    if SHARED_DATA.is_dir():
        crops, _ = shared_crops(c, 48 if c.quick else 450)
        x = net.preprocess(crops)
        probs = {k: np.concatenate([f(x[i:i + b]) for i in range(0, len(x), b)]) for k, f in backends.items()}
        where = f"{len(crops)} crops of ../shared/data"
    else:
        where = "../shared/data absent: agreement on the synthetic batch only"
        probs = {k: f(xb) for k, f in backends.items()}
    t = c.det.threshold
    best, decision = None, "keep torch eager"
    for k, s in st.items():
        speed = st["eager"].median / s.median
        d = float(np.abs(probs[k] - probs["eager"]).max())
        flips = int(((probs[k] >= t) != (probs["eager"] >= t)).sum())
        ok = flips == 0 and (d <= 0.01)
        r.row("8 backend", f"{k}, batch {b}", s,
              f"{speed:.2f}x eager; max |dp| {d:.1e}, {flips} verdict flips on {where}",
              speedup=speed, max_abs_diff=d, verdict_flips=flips)
        if k != "eager" and ok and speed >= 1.3 and (best is None or speed > best[1]):
            best = (k, speed)
    if best:
        decision = f"adopt {best[0]} ({best[1]:.2f}x, identical verdicts)"
    r.row("8 backend", "decision (>= 1.3x and identical verdicts)", None, decision)
    r.extra["backend_decision"] = decision
    speeds = {k: st["eager"].median / s.median for k, s in st.items() if k != "eager"}
    r.target("best alternative backend / eager speed-up", max(speeds.values()) if speeds else None, 1.3, ">=", "x",
             "eager PyTorch is already close to the CPU's throughput for this small network")
