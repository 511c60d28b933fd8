"""Section 4: one video: frame sampling, detection, classification, frame importance."""
from __future__ import annotations

import numpy as np

from deepfake import media, video

from .. import alternatives as alt
from .. import inputs
from ..context import Ctx, analyze_stats
from ..timing import measure

def bench_video(c: Ctx, frames: int = 32) -> None:
    det, net = c.det, c.det.network
    path = inputs.make_clip("1080p", 10.0)
    info = media.probe_video(path)
    wanted = media.sample_indices(info.frame_count, frames)
    reps = c.reps(5, 2)
    samp = measure({"ours": lambda: media.sample_frames(path, frames),
                    "seek": lambda: alt.seek_every_sample(path, wanted),
                    "all": lambda: alt.decode_every_frame(path, wanted)}, reps)
    total, parts = analyze_stats(c, path, frames, reps)
    res = parts.pop("result")
    scored = np.array([f.fake_probability for f in res.frames if f.fake_probability is not None])
    n_crops = sum(len(f.faces) for f in res.frames)

    def blank_uncached():
        det._blank_p = None
        return video.blank_frame(scored, det.blank_probability())

    forwards = count_forwards(net, blank_uncached)
    cached = count_forwards(net, lambda: video.blank_frame(scored, det.blank_probability()))
    imp = measure({"loo": lambda: video.leave_one_out(scored), "blank": blank_uncached,
                   "blank_cached": lambda: video.blank_frame(scored, det.blank_probability()),
                   "forward1": lambda: net.probabilities(c.x1, 1)}, c.reps(9, 3))
    f1 = imp["forward1"].median
    budget = frames * c.floor_s + parts["face_detection"].median
    r = c.report
    r.row_list("4 video", [
        ("input", None, f"10 s 1080p mp4v clip, {info.frame_count} frames at {info.fps:g} fps, {frames} sampled, "
         f"{n_crops} faces found"),
        ("sampling, ours (media.sample_frames)", samp["ours"],
         f"decode-all is {samp['all'].median / samp['ours'].median:.2f}x ours"),
        ("sampling by one OpenCV seek per frame", samp["seek"],
         f"{samp['seek'].median / samp['ours'].median:.2f}x ours"),
        ("decoding every frame (read + convert all)", samp["all"], ""),
        (f"face detection ({frames} frames, {det.face_detector.name})", parts["face_detection"],
         f"{parts['face_detection'].median / total.median:.0%} of total"),
        (f"classification ({n_crops} crops)", parts["classification"],
         f"{parts['classification'].median / (n_crops * c.floor_s):.2f}x floor for {n_crops} forwards"),
        ("frame importance, leave-one-out (closed form)", imp["loo"],
         f"{imp['loo'].median / total.median:.4%} of total"),
        ("frame importance, blank frame (first call)", imp["blank"],
         f"{forwards} forward counted, {imp['blank'].median / f1:.2f}x fwd1"),
        ("frame importance, blank frame (cached)", imp["blank_cached"], f"{cached} forwards counted"),
        ("total analyze_video", total,
         f"{total.median / budget:.2f}x ({frames} x floor + face detection = {budget * 1e3:.0f} ms)")])
    dec = parts["decode"].median
    r.target(f"video {frames} frames / ({frames} forwards at best batch + face detection)", total.median / budget,
             1.5, "<=", "x", f"decoding the 1080p frames ({dec * 1e3:.0f} ms, {dec / total.median:.0%} of the total) "
             "is not in the budget", profile=lambda: det.analyze_video(path, frames))
    r.target("leave-one-out / video analysis", imp["loo"].median / total.median, 0.01, "<=")
    r.target("blank frame: forwards added (first call; cached after)", forwards, 1, "<=")
    r.target("sampling: decode every frame / ours", samp["all"].median / samp["ours"].median, 3.0, ">=", "x",
             "a 32-of-300 sample is one frame in 9 and mp4v has a keyframe every 12 frames, so every frame up "
             "to the last sample must be decoded either way (a seek costs more: OpenCV restarts decoding at a "
             "keyframe 16+ frames back); only the colour conversion of unsampled frames is saved",
             profile=lambda: media.sample_frames(path, frames))
    c.report.extra["video_clip"] = {"path": str(path), "frame_count": info.frame_count, "fps": info.fps}


def count_forwards(net, fn) -> int:
    """Inputs scored by the network (any backend) while fn runs."""
    scored = [0]
    inner = net.probabilities

    def counting(x, *a, **kw):
        scored[0] += int(x.shape[0])
        return inner(x, *a, **kw)

    net.probabilities = counting  # an instance attribute shadows the method until deleted
    try:
        fn()
    finally:
        del net.probabilities
    return scored[0]
