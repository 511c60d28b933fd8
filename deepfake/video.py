"""Video-level scoring from per-frame probabilities: aggregation and the two frame-importance methods.
Pure functions of arrays; the Detector feeds them (sampling and face scoring live there)."""
from __future__ import annotations

import numpy as np

AGGREGATIONS = ("mean", "confident")


def confident_mean(p: np.ndarray) -> float:
    """The DFDC winner's 'confident strategy' (Seferbekov): trust a confident majority if there is one."""
    n = len(p)
    confident_fake = p > 0.8
    if confident_fake.sum() > n / 2.5 and confident_fake.sum() > 11:
        return float(p[confident_fake].mean())
    confident_real = p < 0.2
    if confident_real.sum() > 0.9 * n:
        return float(p[confident_real].mean())
    return float(p.mean())


def aggregate(p: np.ndarray, method: str = "mean") -> float:
    """Video probability from the probabilities of frames that have a face; NaN if there are none."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    if method == "mean":
        return float(p.mean())
    if method == "confident":
        return confident_mean(p)
    raise ValueError(f"Unknown aggregation '{method}'. Choose one of: {', '.join(AGGREGATIONS)}")


def leave_one_out(p: np.ndarray, method: str = "mean") -> np.ndarray:
    """For each frame, video probability minus the video probability without it (exact, no model runs).
    NaN where removing the frame leaves nothing to aggregate."""
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    full = aggregate(p, method)
    if n <= 1:
        return np.full(n, np.nan)
    if method == "mean":  # closed form: mean without i = (sum - p_i) / (n - 1)
        return full - (p.sum() - p) / (n - 1)
    keep = ~np.eye(n, dtype=bool)
    return np.array([full - aggregate(p[keep[i]], method) for i in range(n)])


def blank_frame(p: np.ndarray, p_blank: float, method: str = "mean") -> np.ndarray:
    """For each frame, video probability minus that with the frame replaced by a blank frame whose
    score is p_blank (one forward pass in total, done by the caller)."""
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    full = aggregate(p, method)
    if method == "mean":
        return full - (p.sum() - p + p_blank) / n
    out = np.empty(n)
    for i in range(n):
        q = p.copy()
        q[i] = p_blank
        out[i] = full - aggregate(q, method)
    return out


def frames_probability(frame_p: list[float | None], method: str) -> float | None:
    """Video probability of sampled frames whose probabilities are frame_p (None: a frame left out); None when
    no frame is left. importance() gives the same with the frame importances."""
    scored = [p for p in frame_p if p is not None]
    return aggregate(np.asarray(scored, dtype=np.float64), method) if scored else None


def importance(frame_p: list[float | None], method: str, p_blank: float | None):
    """(video probability or None, leave-one-out importance, blank-frame importance) of sampled frames whose
    probabilities are frame_p, None for a frame without a face: left out of the video score, NaN importance."""
    has_face = np.array([p is not None for p in frame_p], dtype=bool)
    scored = np.array([p for p in frame_p if p is not None], dtype=np.float64)
    loo, blank = np.full(len(frame_p), np.nan), np.full(len(frame_p), np.nan)
    if not scored.size:
        return None, loo, blank
    loo[has_face] = leave_one_out(scored, method)
    blank[has_face] = blank_frame(scored, p_blank, method)
    return aggregate(scored, method), loo, blank
