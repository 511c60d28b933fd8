"""Section 6: peak memory of video analysis and of concurrent requests, each in a fresh process."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

from deepfake.detector import load_detector
from support.paths import ROOT
from support.server import peak_rss_mb

from .. import inputs
from ..context import Ctx

RUN = ROOT / "bench" / "run.py"  # the child runs there: `run.py --child KIND`

def child_memory(kind: str, model: str, face: str, clip: str, frames: int = 32) -> dict:
    """Runs in a subprocess: load the detector, do the work, report peak RSS (VmHWM: unlike ru_maxrss, it
    does not inherit the parent's peak through fork + exec)."""
    det = load_detector(model, face_detector=face)
    det.warm_up()
    base = peak_rss_mb()
    if kind == "video":
        res = det.analyze_video(clip, frames)
        return {"loaded_mb": round(base, 1), "peak_mb": round(peak_rss_mb(), 1),
                "frames_with_face": res.frames_with_face, "frames_sampled": res.frames_sampled}
    rgb = inputs.photo(1024)
    jobs = [lambda: det.analyze_video(clip, 32), lambda: det.grad_cam(rgb),
            lambda: det.occlusion_map(rgb, 16), lambda: det.analyze_image(rgb)]
    errors = []

    def run(job):
        try:
            job()
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return {"loaded_mb": round(base, 1), "peak_mb": round(peak_rss_mb(), 1)}


def bench_memory(c: Ctx) -> None:
    r = c.report
    clip = inputs.make_clip("1080p", 10.0)
    # 128 frames (the most a request may sample) of a 4K clip: 3.4 GB were they all held at once. A smooth
    # background keeps the file small (~5 MB); the decoded frames are full size all the same.
    clip4k = inputs.make_clip("4K", 16.0, 8.0, noise=0)
    for kind, label, path, frames in (
            ("video", "video analysis, 10 s 1080p, 32 frames", clip, 32),
            ("video", "video analysis, 16 s 4K, 128 frames", clip4k, 128),
            ("concurrent", "4 concurrent requests (video, Grad-CAM, 16x16 grid, image)", clip, 32)):
        out = subprocess.run([sys.executable, str(RUN), "--child", kind, "--model", str(c.model_dir),
                              "--face-detector", c.face_spec, "--clip", str(path), "--frames", str(frames)],
                             capture_output=True, text=True, cwd=str(ROOT))
        try:
            mem = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            r.row("6 memory", label, None, "failed: " + out.stderr[-300:].replace("\n", " | "))
            continue
        faces = (f", faces in {mem['frames_with_face']}/{mem['frames_sampled']} frames"
                 if "frames_sampled" in mem else "")
        r.row("6 memory", f"peak RSS, {label}", None,
              f"{mem['peak_mb']:.0f} MB (after load + warm-up: {mem['loaded_mb']:.0f} MB{faces})", **mem)
        if kind == "video" and frames == 32:
            r.target("peak RSS during video analysis", mem["peak_mb"] / 1024, 1.5, "<=", " GB",
                     "decoded 1080p frames and the network's activations")
        elif kind == "video":
            r.target("peak RSS, 128 frames of 4K video", mem["peak_mb"] / 1024, 1.5, "<=", " GB",
                     "one 4K frame (25 MB) decoded at a time; previews and face crops kept, not frames")
