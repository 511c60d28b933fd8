"""The label rule: each face's band or failed quality gates, and an image's or frame's verdict over its faces.

A face that fails a quality gate is UNCERTAIN with the gates as reasons, whatever its probability. An image or
frame is judged on the faces that pass: its probability is their maximum and its label that probability's
band. When no face passes, the probability is the maximum over all faces (shown, not judged) and the label is
UNCERTAIN with every failed gate as a reason; with no face at all it is NO_FACE.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .band import NO_FACE, UNCERTAIN, Band
from .quality import REASONS


@dataclass(frozen=True)
class Verdict:
    label: str
    probability: float | None
    reasons: tuple[str, ...]  # set only when no face passed the gates
    passing: tuple[bool, ...]  # per face: passed every gate


def face_label(p: float, reasons: tuple[str, ...], band: Band) -> str:
    return UNCERTAIN if reasons else band.label(p)


def merged_reasons(reason_lists) -> tuple[str, ...]:
    """Every reason of any list, once each, in deepfake.quality.REASONS order."""
    seen = {r for rs in reason_lists for r in rs}
    return tuple(r for r in REASONS if r in seen)


def judge(probs, reasons: list[tuple[str, ...]], band: Band) -> Verdict:
    """The verdict over one image's (or frame's) faces, from each face's probability and failed gates."""
    probs = np.asarray(probs, dtype=np.float64)
    passing = tuple(not r for r in reasons)
    if not len(probs):
        return Verdict(NO_FACE, None, (), ())
    ok = np.asarray(passing, dtype=bool)
    if ok.any():
        p = float(probs[ok].max())
        return Verdict(band.label(p), p, (), passing)
    return Verdict(UNCERTAIN, float(probs.max()), merged_reasons(reasons), passing)
